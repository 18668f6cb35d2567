//! `devnet`, `account` and `session` subcommands.

use std::{path::PathBuf, time::Duration};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use clap::Subcommand;
use serde_json::json;
use x402_aa_contracts::{SessionKeyAccountFactory, TestStablecoin};
use x402_aa_devnet::Devnet;
use x402_aa_session::{
    Scopes, SessionFile,
    file::{AccountDeployment, save_session_key},
    owner::{self, SessionStatus},
    scopes::{every, per_day},
};
use x402_aa_stack::{LocalStack, StackOptions};

use crate::{
    Cli,
    chain::{Chain, DevnetState},
    output::Out,
};

#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start anvil with EntryPoint v0.6 at its canonical address, our contracts and a paymaster
    /// service; print URLs and funded keys; stay up until Ctrl-C.
    Up {
        /// Port of the paymaster service (0 = any free port).
        #[arg(long, default_value_t = 0)]
        paymaster_port: u16,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// The counterfactual SessionKeyAccount address of an owner.
    Address {
        #[arg(long)]
        owner: Address,
        #[arg(long, default_value_t = 0)]
        salt: u64,
    },
    /// Deploy the owner's SessionKeyAccount (the first payment can also deploy it).
    Create {
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
        #[arg(long, default_value_t = 0)]
        salt: u64,
    },
    /// Token and native balance of an account.
    Balance { account: Address },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    /// Sign a grant as the owner; write a session file and a 0600 session key file.
    Grant {
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
        #[arg(long, default_value_t = 0)]
        salt: u64,
        /// Cap per period, e.g. "10 USDT".
        #[arg(long)]
        spend_cap: String,
        /// Period length in seconds (default one day).
        #[arg(long, default_value_t = 86_400)]
        period_secs: u64,
        /// Largest single payment, e.g. "1 USDT" (default: the spend cap).
        #[arg(long)]
        per_payment: Option<String>,
        /// Total over the session's life (default: cap × periods).
        #[arg(long)]
        lifetime: Option<String>,
        /// Allowed merchant (repeat); none = any merchant.
        #[arg(long = "merchant")]
        merchants: Vec<Address>,
        /// Validity in seconds from now.
        #[arg(long, default_value_t = 86_400)]
        valid_for_secs: u64,
        #[arg(long, default_value = "session.json")]
        out: PathBuf,
        #[arg(long, default_value = "session.key")]
        key_out: PathBuf,
    },
    /// Show a session file's limits.
    Show { file: PathBuf },
    /// Remaining budget and status, read from the chain.
    Status { file: PathBuf },
    /// Every session file in a directory, with its status.
    List {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Revoke one session (one owner transaction).
    Revoke {
        file: PathBuf,
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
    },
    /// Revoke every session of an account.
    RevokeAll {
        account: Address,
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
    },
}

pub(crate) async fn devnet(cli: &Cli, out: &Out, command: &DevnetCommand) -> anyhow::Result<()> {
    let DevnetCommand::Up { paymaster_port } = command;
    let spinner = out.spinner(
        "starting anvil and deploying EntryPoint v0.6, factories, paymaster, settlement, USDT",
    );
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let api_key = "devnet".to_owned();
    // The facilitator submits directly from a funded devnet key; the example API charges 0.01 USDT.
    let merchant = devnet.keys.spare[5].address();
    let options = StackOptions::new(devnet.keys.spare[6].clone(), merchant, "0.01 USDT")
        .registry(cli.devnet_state.with_file_name("facilitator.sqlite"))
        .paymaster_bind(([127, 0, 0, 1], *paymaster_port).into())
        .paymaster_api_key(&api_key);
    let stack = LocalStack::start(&devnet, options).await?;
    // Every funded key's SessionKeyAccount (salt 0) starts with 100 USDT, ready to grant sessions.
    let factory = SessionKeyAccountFactory::new(a.session_account_factory, devnet.provider());
    for key in &devnet.keys.spare {
        let account = factory.getAddress(key.address(), U256::ZERO).call().await?;
        devnet.mint(account, U256::from(100_000_000u64)).await?;
    }
    let api_url = stack.paid_url();
    drop(spinner);
    let state = DevnetState {
        rpc_url: devnet.rpc_url().to_owned(),
        chain_id: devnet.chain_id(),
        entry_point: a.entry_point,
        simple_account_factory: a.simple_account_factory,
        session_account_factory: a.session_account_factory,
        settlement: a.settlement,
        token: a.token,
        verifying_paymaster: a.verifying_paymaster,
        paymaster_url: stack.paymaster.url(),
        paymaster_api_key: api_key,
        funded_keys: devnet.keys.spare.iter().map(|k| k.to_bytes()).collect(),
    };
    if let Some(dir) = cli.devnet_state.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.devnet_state, serde_json::to_string_pretty(&state)?)?;
    let mut text = format!(
        "devnet up (chain {})\n  rpc                        {}\n  paymaster (pm_sponsor_userop) {}  api key: {}\n",
        state.chain_id, state.rpc_url, state.paymaster_url, state.paymaster_api_key
    );
    for (name, address) in [
        ("EntryPoint v0.6", a.entry_point),
        ("SimpleAccountFactory", a.simple_account_factory),
        ("SessionKeyAccountFactory", a.session_account_factory),
        ("SettlementContract", a.settlement),
        ("USDT (6 decimals)", a.token),
        ("VerifyingPaymaster", a.verifying_paymaster),
    ] {
        text.push_str(&format!("  {name:<26} {address}\n"));
    }
    text.push_str(&format!("  facilitator                {}\n", stack.facilitator.url()));
    text.push_str(&format!("  example paid API           {api_url} (0.01 USDT to {merchant})\n"));
    text.push_str("  funded keys (anvil test keys, never use elsewhere):\n");
    for key in &devnet.keys.spare {
        text.push_str(&format!(
            "    {}  {}  (its account holds 100 USDT)\n",
            key.address(),
            key.to_bytes()
        ));
    }
    text.push_str(&format!(
        "state written to {}; Ctrl-C stops everything.",
        cli.devnet_state.display()
    ));
    let mut json = serde_json::to_value(&state)?;
    json["facilitatorUrl"] = stack.facilitator.url().into();
    json["paidApiUrl"] = api_url.into();
    out.result(text, json);
    tokio::signal::ctrl_c().await?;
    let stopped = stack.shutdown().await;
    let _ = std::fs::remove_file(&cli.devnet_state);
    stopped?;
    drop(devnet);
    Ok(())
}

pub(crate) async fn account(cli: &Cli, out: &Out, command: &AccountCommand) -> anyhow::Result<()> {
    let chain = Chain::resolve(cli)?;
    match command {
        AccountCommand::Address { owner, salt } => {
            let provider = chain.provider(None)?;
            let factory = SessionKeyAccountFactory::new(chain.session_factory()?, &provider);
            let address = factory.getAddress(*owner, U256::from(*salt)).call().await?;
            let deployed = !provider.get_code_at(address).await?.is_empty();
            out.result(
                format!("{address} ({})", if deployed { "deployed" } else { "not deployed yet" }),
                json!({ "account": address, "deployed": deployed }),
            );
        }
        AccountCommand::Create { owner_key, salt } => {
            let provider = chain.provider(Some(owner_key))?;
            let factory_address = chain.session_factory()?;
            let factory = SessionKeyAccountFactory::new(factory_address, &provider);
            let address = factory.getAddress(owner_key.address(), U256::from(*salt)).call().await?;
            let _spinner = out.spinner("deploying account");
            let call = SessionKeyAccountFactory::createAccountCall {
                owner: owner_key.address(),
                salt: U256::from(*salt),
            };
            let tx = TransactionRequest::default()
                .with_from(owner_key.address())
                .with_to(factory_address)
                .with_input(call.abi_encode());
            let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
            anyhow::ensure!(receipt.status(), "createAccount reverted");
            out.result(
                format!("account {address} deployed (tx {})", receipt.transaction_hash),
                json!({ "account": address, "tx": receipt.transaction_hash }),
            );
        }
        AccountCommand::Balance { account } => {
            let provider = chain.provider(None)?;
            let token = chain.token()?;
            let balance =
                TestStablecoin::new(token.address, &provider).balanceOf(*account).call().await?;
            let native = provider.get_balance(*account).await?;
            out.result(
                format!("{account}: {} ({} wei native)", token.format(balance), native),
                json!({ "account": account, "token": token.address, "balance": balance.to_string(), "native": native.to_string() }),
            );
        }
    }
    Ok(())
}

fn summary(file: &SessionFile) -> String {
    let merchants = if file.merchants.is_empty() {
        "any merchant".to_owned()
    } else {
        file.merchants.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
    };
    let l = &file.limits;
    format!(
        "session {}\n  account     {}\n  session key {}\n  spend cap   {} per {} s\n  per payment {}\n  lifetime    {}\n  merchants   {}\n  valid       {} .. {}\n  gas         {}",
        file.session_id,
        file.account,
        file.session_key,
        l.per_period,
        l.period_seconds,
        l.per_payment,
        l.lifetime,
        merchants,
        l.valid_after,
        l.valid_until,
        if l.paymaster_required { "paymaster required" } else { "may use the account's deposit" }
    )
}

pub(crate) async fn session(cli: &Cli, out: &Out, command: &SessionCommand) -> anyhow::Result<()> {
    match command {
        SessionCommand::Grant {
            owner_key,
            salt,
            spend_cap,
            period_secs,
            per_payment,
            lifetime,
            merchants,
            valid_for_secs,
            out: out_path,
            key_out,
        } => {
            let chain = Chain::resolve(cli)?;
            let provider = chain.provider(None)?;
            let factory = chain.session_factory()?;
            let account = SessionKeyAccountFactory::new(factory, &provider)
                .getAddress(owner_key.address(), U256::from(*salt))
                .call()
                .await?;
            let mut scopes = Scopes::new()
                .spend_cap(
                    spend_cap.parse()?,
                    if *period_secs == 86_400 {
                        per_day()
                    } else {
                        every(Duration::from_secs(*period_secs))
                    },
                )
                .valid_for(Duration::from_secs(*valid_for_secs));
            if let Some(p) = per_payment {
                scopes = scopes.per_payment_max(p.parse()?);
            }
            if let Some(l) = lifetime {
                scopes = scopes.lifetime_cap(l.parse()?);
            }
            if !merchants.is_empty() {
                scopes = scopes.merchants(merchants.iter().copied());
            }
            if let Some(paymaster) = chain.paymaster {
                scopes = scopes.only_paymaster(paymaster);
            }
            let session_key = PrivateKeySigner::random();
            let token = chain.token()?;
            let epoch = owner::session_epoch(&provider, account).await?;
            let now = chain.now(&provider).await?;
            let mut salt_bytes = [0u8; 32];
            salt_bytes[..20].copy_from_slice(session_key.address().as_slice());
            let grant = scopes.to_grant(
                session_key.address(),
                &token,
                chain.settlement()?,
                now,
                epoch,
                B256::from(salt_bytes),
            )?;
            let (_, signature) = owner::sign_grant(owner_key, &grant, chain.chain_id, account)?;
            let file = SessionFile::new(
                chain.chain_id,
                account,
                chain.entry_point,
                Some(AccountDeployment {
                    factory,
                    owner: owner_key.address(),
                    salt: U256::from(*salt),
                }),
                token,
                owner_key.address(),
                scopes.merchant_list(),
                &grant,
                signature,
            );
            file.save(out_path)?;
            save_session_key(key_out, &session_key)?;
            out.result(
                format!("{}\nwrote {} and {} (0600)", summary(&file), out_path.display(), key_out.display()),
                json!({ "sessionFile": out_path, "keyFile": key_out, "session": serde_json::from_str::<serde_json::Value>(&file.to_json())? }),
            );
        }
        SessionCommand::Show { file } => {
            let file = SessionFile::load(file)?;
            out.result(summary(&file), serde_json::from_str(&file.to_json())?);
        }
        SessionCommand::Status { file } => {
            let file = SessionFile::load(file)?;
            let (status, json) = status(cli, &file).await?;
            out.result(format!("{}\n{status}", summary(&file)), json);
        }
        SessionCommand::List { dir } => {
            let mut rows = Vec::new();
            let mut text = String::new();
            let mut entries: Vec<_> =
                std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            for path in entries {
                let Ok(file) = SessionFile::load(&path) else { continue };
                let (status, mut json) = status(cli, &file).await?;
                text.push_str(&format!("{}  {}  {status}\n", path.display(), file.session_id));
                json["file"] = path.display().to_string().into();
                rows.push(json);
            }
            out.result(if text.is_empty() { "no session files".into() } else { text }, json!(rows));
        }
        SessionCommand::Revoke { file, owner_key } => {
            let file = SessionFile::load(file)?;
            anyhow::ensure!(
                owner_key.address() == file.owner,
                "the key is not this session's owner {}",
                file.owner
            );
            let chain = Chain::resolve(cli)?;
            let provider = chain.provider(Some(owner_key))?;
            let _spinner = out.spinner("revoking");
            deploy_if_needed(&provider, &file, owner_key).await?;
            let tx = owner::revoke(&provider, owner_key.address(), file.account, file.session_id)
                .await?;
            out.result(
                format!("session {} revoked (tx {tx})", file.session_id),
                json!({ "revoked": file.session_id, "tx": tx }),
            );
        }
        SessionCommand::RevokeAll { account, owner_key } => {
            let chain = Chain::resolve(cli)?;
            let provider = chain.provider(Some(owner_key))?;
            let _spinner = out.spinner("revoking every session");
            let tx = owner::revoke_all(&provider, owner_key.address(), *account).await?;
            out.result(
                format!("every session of {account} revoked (tx {tx})"),
                json!({ "account": account, "tx": tx }),
            );
        }
    }
    Ok(())
}

async fn status(cli: &Cli, file: &SessionFile) -> anyhow::Result<(String, serde_json::Value)> {
    let chain = Chain::resolve(cli)?;
    anyhow::ensure!(
        chain.chain_id == file.chain_id,
        "session is for chain {}, not {}",
        file.chain_id,
        chain.chain_id
    );
    let provider = chain.provider(None)?;
    let grant = file.grant()?;
    let now = chain.now(&provider).await?;
    let s = owner::remaining(&provider, file.chain_id, file.account, &grant, now).await?;
    let status = match s.status {
        SessionStatus::NotEnabled => "granted, not used yet",
        SessionStatus::Enabled => "active",
        SessionStatus::Revoked => "revoked",
        SessionStatus::RevokedAll => "revoked (all sessions)",
    };
    let text = format!(
        "  status      {status}\n  spent       {} this period, {} in total\n  remaining   {} this period, {} in total",
        file.token.format(s.period_spent),
        file.token.format(s.lifetime_spent),
        file.token.format(s.period_remaining),
        file.token.format(s.lifetime_remaining)
    );
    let json = json!({
        "sessionId": file.session_id,
        "status": status,
        "periodSpent": s.period_spent.to_string(),
        "lifetimeSpent": s.lifetime_spent.to_string(),
        "periodRemaining": s.period_remaining.to_string(),
        "lifetimeRemaining": s.lifetime_remaining.to_string(),
    });
    Ok((text, json))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn pay(
    cli: &Cli,
    out: &Out,
    url: &str,
    session: &std::path::Path,
    key: Option<&std::path::Path>,
    ledger: &std::path::Path,
    paymaster_url: Option<String>,
    paymaster_api_key: Option<String>,
) -> anyhow::Result<()> {
    use x402_aa_session::{
        client::{AaNativeScheme, X402PayingClient},
        file::load_session_key,
        ledger::Ledger,
        signer::{PaymentSigner, SessionAccount},
    };
    let chain = Chain::resolve(cli)?;
    let file = SessionFile::load(session)?;
    let default_key = std::path::Path::new("session.key");
    let key = key.or_else(|| default_key.exists().then_some(default_key));
    let session_key = load_session_key(key, &file)?;
    let provider = chain.provider(None)?;
    let mut signer =
        PaymentSigner::new(SessionAccount::new(file, session_key)?, provider.clone()).await?;
    let devnet_paymaster = if cli.network == "devnet" {
        DevnetState::load(&cli.devnet_state).ok().map(|s| (s.paymaster_url, s.paymaster_api_key))
    } else {
        None
    };
    let paymaster = match (paymaster_url, paymaster_api_key, devnet_paymaster) {
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

pub(crate) async fn facilitator(out: &Out, config: &std::path::Path) -> anyhow::Result<()> {
    let mut config = x402_aa_facilitator::Config::from_file(config)?;
    config.apply_env()?;
    let handle = x402_aa_facilitator::FacilitatorService::new(config).await?.bind().await?;
    out.result(
        format!("facilitator listening on {}", handle.url()),
        json!({ "url": handle.url() }),
    );
    handle.wait().await?;
    Ok(())
}

/// A counterfactual account is deployed first (by its owner), so the revocation lands in real storage
/// and a later first payment cannot enable the revoked session.
async fn deploy_if_needed(
    provider: &alloy::providers::DynProvider,
    file: &SessionFile,
    owner_key: &PrivateKeySigner,
) -> anyhow::Result<()> {
    if !provider.get_code_at(file.account).await?.is_empty() {
        return Ok(());
    }
    let deployment = file.deployment.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "account {} is not deployed and the session file says nothing about its factory",
            file.account
        )
    })?;
    let call = SessionKeyAccountFactory::createAccountCall {
        owner: deployment.owner,
        salt: deployment.salt,
    };
    let tx = TransactionRequest::default()
        .with_from(owner_key.address())
        .with_to(deployment.factory)
        .with_input(call.abi_encode());
    let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
    anyhow::ensure!(receipt.status(), "deploying the account reverted");
    Ok(())
}
