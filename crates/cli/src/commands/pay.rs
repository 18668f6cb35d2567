//! `pay`: fetch a URL, paying its x402 price with a session key.

use std::path::{Path, PathBuf};

use serde_json::json;
use x402_aa_session::{
    SessionFile,
    client::{AaNativeScheme, X402PayingClient},
    file::load_session_key,
    ledger::Ledger,
    signer::{PaymentSigner, SessionAccount},
};

use crate::{
    Cli,
    chain::{Chain, DevnetState},
    output::Out,
};

/// One struct for `pay`, so a new flag changes this type, not every signature it passes through.
#[derive(Debug, clap::Args)]
pub(crate) struct PayArgs {
    url: String,
    #[arg(long, default_value = "session.json")]
    session: PathBuf,
    /// Session key file (default session.key when it exists); else X402_AA_SESSION_KEY.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Budget ledger (SQLite), shared by every payment of this agent.
    #[arg(long, default_value = ".x402-aa/ledger.sqlite")]
    ledger: PathBuf,
    /// Paymaster (pm_sponsor_userop) URL and API key; default: the running devnet's.
    #[arg(long)]
    paymaster_url: Option<String>,
    #[arg(long, env = "X402_AA_PAYMASTER_API_KEY", hide_env_values = true)]
    paymaster_api_key: Option<String>,
}

pub(crate) async fn pay(cli: &Cli, out: &Out, args: &PayArgs) -> anyhow::Result<()> {
    let PayArgs { url, session, key, ledger, paymaster_url, paymaster_api_key } = args;
    let chain = Chain::resolve(cli)?;
    let file = SessionFile::load(session)?;
    let default_key = Path::new("session.key");
    let key = key.as_deref().or_else(|| default_key.exists().then_some(default_key));
    let session_key = load_session_key(key, &file)?;
    let provider = chain.provider(None)?;
    let mut signer =
        PaymentSigner::new(SessionAccount::new(file, session_key)?, provider.clone()).await?;
    let devnet_paymaster = if cli.network == "devnet" {
        DevnetState::load(&cli.devnet_state).ok().map(|s| (s.paymaster_url, s.paymaster_api_key))
    } else {
        None
    };
    let paymaster = match (paymaster_url.clone(), paymaster_api_key.clone(), devnet_paymaster) {
        (Some(url), Some(api_key), _) => Some((url, api_key)),
        (None, None, devnet) => devnet,
        _ => anyhow::bail!("pass both --paymaster-url and --paymaster-api-key, or neither"),
    };
    if let Some((url, api_key)) = paymaster {
        signer = signer.paymaster(x402_aa_rpc::PaymasterClient::new(&url)?, api_key);
    }
    if let Some(dir) = ledger.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let ledger = std::sync::Arc::new(Ledger::open(ledger)?);
    let scheme = AaNativeScheme::with_ledger(signer, provider, ledger)?;
    let client = X402PayingClient::builder().register(scheme).build();
    let spinner = out.spinner(&format!("GET {url}"));
    let result = client.get(url).await;
    drop(spinner);
    let paid = match result {
        Ok(paid) => paid,
        Err(e) => anyhow::bail!("{} ({})", e.reason(), e),
    };
    let status = paid.status();
    let settlement = paid.settlement.clone();
    let payment = paid.payment.as_ref().map(|p| format!("{:?}", p.outcome));
    let body = paid.response.text().await.unwrap_or_default();
    let shown: String = body.chars().take(2_000).collect();
    out.result(
        format!(
            "HTTP {status}\npayment: {}\n\n{shown}",
            payment.clone().unwrap_or_else(|| "none needed".into())
        ),
        json!({ "status": status.as_u16(), "payment": payment, "settlement": settlement.map(|s| serde_json::to_value(s).unwrap_or_default()), "body": body }),
    );
    anyhow::ensure!(status.is_success(), "request failed with HTTP {status}");
    Ok(())
}
