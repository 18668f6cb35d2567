//! `pay`: fetch a URL, paying its x402 price with one of three payers:
//!
//! - a session (`--session`, `--key`): aa-native from the session's account, within its grant;
//! - an owner key (`--owner-key`): aa-native from the owner's SimpleAccount (counterfactual
//!   through the canonical SimpleAccountFactory unless `--account-factory` says otherwise), the
//!   owner signing every UserOperation;
//! - a plain key (`--payer-key`): x402's EIP-3009 `exact` from the key's own token balance, as
//!   the official x402 clients pay.
//!
//! Each is the SDK's paying client; this file only chooses and configures one.

use std::path::{Path, PathBuf};

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use anyhow::Context;
use serde_json::json;
use x402_aa::x402::{PAYMENT_REQUIRED_HEADER, decode_payment_required};
use x402_aa_session::{
    SessionFile,
    client::{ClientError, PaidResponse, X402PayingClient, exact_scheme},
    file::load_session_key,
    ledger,
    sdk::{AccountKind, Network, PayingClient},
};

use crate::{
    Cli,
    chain::{Chain, DevnetState},
    output::Out,
};

/// One struct for `pay`, so a new flag changes this type, not every signature it passes through.
///
/// Exactly one payer: `--session` (the default, with `session.json`), `--owner-key` or
/// `--payer-key`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("payer").args(["session", "owner_key", "payer_key"])))]
pub(crate) struct PayArgs {
    url: String,
    /// Session file: pay aa-native with its session key (default session.json).
    #[arg(long)]
    session: Option<PathBuf>,
    /// Session key file (default session.key when it exists); else X402_AA_SESSION_KEY.
    #[arg(long, conflicts_with_all = ["owner_key", "payer_key"])]
    key: Option<PathBuf>,
    /// Budget ledger, shared by every payment of this agent's sessions: an SQLite file, or a
    /// postgres://user:password@host:port/dbname URL that replicas on several machines share.
    #[arg(long, default_value = ".x402-aa/ledger.sqlite")]
    ledger: PathBuf,
    /// This agent is replica N of several paying under one session at once: its ops use their own
    /// EntryPoint nonce keys, so replicas never collide on a nonce. Keep it stable per replica.
    #[arg(long, env = "X402_AA_REPLICA", default_value_t = 0)]
    replica: u32,
    /// Pay aa-native from this owner's account (`--account`, default SimpleAccount), signing as
    /// its owner (no session).
    #[arg(long, value_name = "KEY")]
    owner_key: Option<Key>,
    /// The owner's account contract (Kernel and Safe at their canonical deployments, Biconomy at
    /// its canonical one or the running devnet's).
    #[arg(long, value_enum, requires = "owner_key", default_value_t = OwnerAccount::SimpleAccount)]
    account: OwnerAccount,
    /// The owner's account factory (default: the canonical one of `--account`'s kind).
    #[arg(long, requires = "owner_key")]
    account_factory: Option<Address>,
    /// The owner's account salt in its factory.
    #[arg(long, requires = "owner_key", default_value_t = 0)]
    salt: u64,
    /// Pay x402 `exact` (EIP-3009 transferWithAuthorization) from this key's own token balance.
    #[arg(long, value_name = "KEY")]
    payer_key: Option<Key>,
    /// Paymaster (pm_sponsor_userop) URL and API key for aa-native; default: the running
    /// devnet's.
    #[arg(long)]
    paymaster_url: Option<String>,
    #[arg(long, env = "X402_AA_PAYMASTER_API_KEY", hide_env_values = true)]
    paymaster_api_key: Option<String>,
}

/// A private key argument, boxed: a `PrivateKeySigner` is large, and `PayArgs` sits in the
/// CLI's command enum beside small variants.
#[derive(Debug, Clone)]
struct Key(Box<PrivateKeySigner>);

impl std::str::FromStr for Key {
    type Err = <PrivateKeySigner as std::str::FromStr>::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(|key| Self(Box::new(key)))
    }
}

/// What a payer can pay, for the error when the server offers none of it.
#[derive(Debug, Clone, Copy)]
enum Payer {
    Session,
    Owner,
    Plain,
}

impl Payer {
    fn scheme(self) -> &'static str {
        match self {
            Self::Session | Self::Owner => x402_aa::x402::SCHEME,
            Self::Plain => x402_aa_paywall::EXACT,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Session => "--session pays aa-native",
            Self::Owner => "--owner-key pays aa-native",
            Self::Plain => "--payer-key pays exact (EIP-3009)",
        }
    }
}

pub(crate) async fn pay(cli: &Cli, out: &Out, args: &PayArgs) -> anyhow::Result<()> {
    let url = &args.url;
    let (payer, result) = if let Some(Key(key)) = &args.payer_key {
        let spinner = out.spinner(&format!("GET {url} (exact from {})", key.address()));
        let client = X402PayingClient::builder().register(exact_scheme(*key.clone())).build();
        let result = client.get(url).await.map_err(|e| Refused::from_client(&e));
        drop(spinner);
        (Payer::Plain, result)
    } else {
        let (payer, client) = match &args.owner_key {
            Some(Key(owner)) => (Payer::Owner, owner_client(cli, args, *owner.clone()).await?),
            None => (Payer::Session, session_client(cli, args).await?),
        };
        let spinner = out.spinner(&format!("GET {url} (aa-native from {})", client.account()));
        let result = client.get(url).send().await.map_err(|e| Refused {
            no_match: matches!(
                &e,
                x402_aa_session::sdk::PayError::Client(ClientError::NothingPayable { refusals })
                    if refusals.is_empty()
            ),
            reason: e.reason(),
            message: e.to_string(),
        });
        drop(spinner);
        (payer, result)
    };
    let paid = match result {
        Ok(paid) => paid,
        Err(refused) if refused.no_match => {
            let offered = offers(url).await.unwrap_or_else(|e| format!("(could not list: {e:#})"));
            anyhow::bail!(
                "{}: the server offers no payment this key can pay ({}); it offers {offered}",
                refused.reason,
                payer.describe()
            )
        }
        Err(refused) => anyhow::bail!("{} ({})", refused.reason, refused.message),
    };
    report(out, payer, paid).await
}

/// Account contracts `pay --owner-key` pays from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OwnerAccount {
    /// eth-infinitism's SimpleAccount v0.6 (canonical factory).
    SimpleAccount,
    /// ZeroDev Kernel v2.4 with the ECDSAValidator (canonical factory).
    Kernel,
    /// Safe 1.4.1 with Safe4337Module v0.2.0, the owner as sole owner (canonical deployment).
    Safe,
    /// Biconomy Smart Account v2 with the ECDSA ownership module (canonical deployment, or the
    /// running devnet's).
    Biconomy,
}

/// A refusal, reduced to what `pay` prints.
struct Refused {
    reason: &'static str,
    message: String,
    /// Nothing the server offered was of this payer's scheme (not: offered but refused).
    no_match: bool,
}

impl Refused {
    fn from_client(e: &ClientError) -> Self {
        let no_match = matches!(e, ClientError::NothingPayable { refusals } if refusals.is_empty());
        Self { reason: e.reason(), message: e.to_string(), no_match }
    }
}

/// The session path: the SDK's session client for the session file's account and key, on the
/// budget ledger `--ledger`. Building it takes the chain's figures into the ledger and settles
/// payments a killed earlier run left pending.
async fn session_client(cli: &Cli, args: &PayArgs) -> anyhow::Result<PayingClient> {
    let given = args.session.as_deref();
    let session = given.unwrap_or(Path::new("session.json"));
    if given.is_none() && !session.exists() {
        anyhow::bail!(
            "pay needs a payer: --session FILE (aa-native, session key), --owner-key KEY \
             (aa-native, SimpleAccount owner) or --payer-key KEY (exact, EIP-3009); \
             no session.json here"
        );
    }
    let file = SessionFile::load(session)?;
    let default_key = Path::new("session.key");
    let key = args.key.as_deref().or_else(|| default_key.exists().then_some(default_key));
    let session_key = load_session_key(key, &file)?;
    let builder = PayingClient::session().session(file).key(session_key);
    let builder = match args.ledger.to_str().filter(|s| ledger::is_postgres_url(s)) {
        Some(url) => builder.ledger_url(url),
        None => {
            if let Some(dir) = args.ledger.parent() {
                std::fs::create_dir_all(dir)?;
            }
            builder.ledger_path(&args.ledger)
        }
    };
    let client = builder.network(network(cli, args)?).replica(args.replica).build().await?;
    Ok(client)
}

/// The network `--network` names (or the running devnet), with what the devnet state and the
/// paymaster options add.
fn network(cli: &Cli, args: &PayArgs) -> anyhow::Result<Network> {
    let chain = Chain::resolve(cli)?;
    let mut network = Network::preset(&cli.network)?
        .with_rpc_url(chain.rpc_url.clone())
        .with_entry_point(chain.entry_point);
    if let Some(settlement) = chain.settlement {
        network = network.with_settlement(settlement);
    }
    if let Some(token) = chain.token.clone() {
        network = network.with_token_info(token);
    }
    if let Some(paymaster) = chain.paymaster {
        network = network.with_paymaster_contract(paymaster);
    }
    // The devnet's Biconomy build is not at Biconomy's canonical addresses.
    if chain.biconomy != x402_aa::accounts::biconomy::Deployment::CANONICAL {
        network = network.with_biconomy_deployment(chain.biconomy);
    }
    if let Some((url, api_key)) = paymaster(cli, args)? {
        network = network.with_paymaster(url, api_key);
    }
    Ok(network)
}

/// The owner path: the SDK's owner-key client (NERO's `aaNativeSigner`) for the `--account` kind,
/// on the network `--network` names (or the running devnet).
async fn owner_client(
    cli: &Cli,
    args: &PayArgs,
    owner: PrivateKeySigner,
) -> anyhow::Result<PayingClient> {
    let network = network(cli, args)?;
    let kind = match args.account {
        OwnerAccount::SimpleAccount => AccountKind::SimpleAccount,
        OwnerAccount::Kernel => AccountKind::Kernel,
        OwnerAccount::Safe => AccountKind::Safe,
        OwnerAccount::Biconomy => AccountKind::Biconomy,
    };
    let mut builder = PayingClient::owner(owner, kind).network(network).salt(U256::from(args.salt));
    if let Some(factory) = args.account_factory {
        builder = builder.account_factory(factory);
    }
    Ok(builder.build().await?)
}

/// `--paymaster-url` and `--paymaster-api-key` together, or the running devnet's.
fn paymaster(cli: &Cli, args: &PayArgs) -> anyhow::Result<Option<(String, String)>> {
    let devnet = if cli.network == "devnet" {
        DevnetState::load(&cli.devnet_state).ok().map(|s| (s.paymaster_url, s.paymaster_api_key))
    } else {
        None
    };
    match (args.paymaster_url.clone(), args.paymaster_api_key.clone()) {
        (Some(url), Some(api_key)) => Ok(Some((url, api_key))),
        (None, None) => Ok(devnet),
        _ => anyhow::bail!("pass both --paymaster-url and --paymaster-api-key, or neither"),
    }
}

/// What the server's 402 offers, as `scheme on network in asset`, for a refusal's message.
async fn offers(url: &str) -> anyhow::Result<String> {
    let response = reqwest::get(url).await?;
    let header = response
        .headers()
        .get(PAYMENT_REQUIRED_HEADER)
        .context("no PAYMENT-REQUIRED header in its answer")?;
    let required = decode_payment_required(header.as_bytes())?;
    let offers: Vec<String> = required
        .accepts
        .iter()
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or("?").to_owned();
            format!("{} on {} in {}", field("scheme"), field("network"), field("asset"))
        })
        .collect();
    Ok(if offers.is_empty() { "nothing".into() } else { offers.join(", ") })
}

/// Prints the answer: the merchant's `PAYMENT-RESPONSE` says what was settled (for every
/// scheme); for aa-native the client's own record says how the payment ended on chain.
async fn report(out: &Out, payer: Payer, paid: PaidResponse) -> anyhow::Result<()> {
    let status = paid.status();
    let settlement = paid.settlement.clone();
    let payment = paid.payment.as_ref().map(|p| format!("{:?}", p.outcome));
    let scheme = payer.scheme();
    let shown_payment = match (&settlement, &payment) {
        (Some(s), _) if s.success => format!(
            "{scheme} settled in {} by {}",
            s.transaction,
            s.payer.as_deref().unwrap_or("an unnamed payer")
        ),
        (Some(s), _) => format!(
            "{scheme} failed: {} {}",
            s.error_reason.as_deref().unwrap_or("(no reason given)"),
            s.error_message.as_deref().unwrap_or_default()
        ),
        (None, Some(outcome)) => format!("{scheme}, no PAYMENT-RESPONSE: {outcome}"),
        (None, None) => "none needed".into(),
    };
    let body = paid.response.text().await.unwrap_or_default();
    let shown: String = body.chars().take(2_000).collect();
    out.result(
        format!("HTTP {status}\npayment: {shown_payment}\n\n{shown}"),
        json!({
            "status": status.as_u16(),
            "payment": payment,
            "settlement": settlement.map(|s| serde_json::to_value(s).unwrap_or_default()),
            "body": body,
        }),
    );
    anyhow::ensure!(status.is_success(), "request failed with HTTP {status}");
    Ok(())
}
