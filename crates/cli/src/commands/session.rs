//! `session grant|show|status|list|revoke|revoke-all`: the owner's side of a session key.

use std::{path::PathBuf, time::Duration};

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use x402_aa::accounts::{
    AccountConfig, AccountKind, kernel,
    safe::{SafeConfig, SafeDeployment},
};
use x402_aa_contracts::SessionKeyAccountFactory;
use x402_aa_session::policy::SessionHost;
use x402_aa_session::{
    Scopes, SessionFile,
    file::{AccountDeployment, save_session_key},
    owner::{self, SessionStatus},
    scopes::GasBudget,
    scopes::{every, per_day},
};

use crate::{Cli, chain::Chain, output::Out};

/// Account contracts that hold sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SessionAccount {
    /// This project's SessionKeyAccount (counterfactual: the first payment deploys it).
    SessionKeyAccount,
    /// ZeroDev Kernel v2.4 with this project's KernelSessionValidator.
    Kernel,
    /// Biconomy Smart Account v2 with this project's BiconomySessionModule.
    Biconomy,
    /// A 1-of-1 Safe 1.4.1 (with Safe4337Module) with this project's SafeSessionModule.
    Safe,
}

impl SessionAccount {
    fn host(self, chain: &Chain) -> anyhow::Result<SessionHost> {
        Ok(match self {
            Self::SessionKeyAccount => SessionHost::Account,
            Self::Kernel => SessionHost::KernelValidator(chain.kernel_session_validator()?),
            Self::Biconomy => SessionHost::BiconomyModule(chain.biconomy_session_module()?),
            Self::Safe => SessionHost::SafeModule(chain.safe_session_module()?),
        })
    }
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once from the command line; `grant` simply has many options"
)]
pub(crate) enum SessionCommand {
    /// Sign a grant as the owner; write a session file and a 0600 session key file.
    Grant {
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
        /// The account contract the session lives in (the owner's account number `--salt`).
        /// `kernel` deploys the owner's Kernel v2.4 account if needed and installs the
        /// KernelSessionValidator (owner transactions: the owner key needs gas); `biconomy`
        /// likewise deploys the owner's Biconomy account and enables the BiconomySessionModule
        /// with an owner UserOperation the owner submits itself; `safe` deploys the owner's
        /// 1-of-1 Safe if needed and enables the SafeSessionModule as module and fallback handler
        /// (one owner transaction).
        #[arg(long, value_enum, default_value_t = SessionAccount::SessionKeyAccount)]
        account: SessionAccount,
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
        /// Most payments per period (a rate limit against runaway loops of small payments).
        #[arg(long)]
        max_payments_per_period: Option<u32>,
        /// Most paid to any one merchant per period, e.g. "5 USDT" (a sub-budget of the spend cap).
        #[arg(long)]
        per_merchant_cap: Option<String>,
        /// Let the account's own deposit pay session gas: "PER_OP,PER_PERIOD,LIFETIME" in wei
        /// (without it a paymaster must sponsor every session op).
        #[arg(long)]
        self_paid_gas: Option<String>,
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
    /// Pause one session (one owner transaction): it stops paying, its counters stay.
    Pause {
        file: PathBuf,
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
    },
    /// Resume a paused session (one owner transaction).
    Resume {
        file: PathBuf,
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
    },
    /// Revoke every session of an account.
    RevokeAll {
        account: Address,
        /// The kind of `account` (where its sessions are kept).
        #[arg(long = "account-kind", value_enum, default_value_t = SessionAccount::SessionKeyAccount)]
        kind: SessionAccount,
        #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
        owner_key: PrivateKeySigner,
    },
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
            account: account_kind,
            salt,
            spend_cap,
            period_secs,
            per_payment,
            lifetime,
            merchants,
            max_payments_per_period,
            per_merchant_cap,
            self_paid_gas,
            valid_for_secs,
            out: out_path,
            key_out,
        } => {
            let chain = Chain::resolve(cli)?;
            let provider = chain.provider(Some(owner_key))?;
            let host = account_kind.host(&chain)?;
            let (account, deployment) = match host {
                SessionHost::Account => {
                    let factory = chain.session_factory()?;
                    let account = SessionKeyAccountFactory::new(factory, &provider)
                        .getAddress(owner_key.address(), U256::from(*salt))
                        .call()
                        .await?;
                    let deployment = AccountDeployment {
                        factory,
                        owner: owner_key.address(),
                        salt: U256::from(*salt),
                    };
                    (account, Some(deployment))
                }
                SessionHost::KernelValidator(validator) => {
                    let _spinner =
                        out.spinner("installing the session validator in the Kernel account");
                    let account = kernel_account(&provider, owner_key, U256::from(*salt)).await?;
                    owner::install_kernel_sessions(
                        &provider,
                        owner_key.address(),
                        account,
                        validator,
                    )
                    .await?;
                    (account, None)
                }
                SessionHost::SafeModule(module) => {
                    let _spinner = out.spinner("installing the session module in the Safe");
                    let account = safe_account(&provider, owner_key, U256::from(*salt)).await?;
                    owner::install_safe_sessions(
                        &provider,
                        owner_key.address(),
                        account,
                        module,
                        SafeDeployment::CANONICAL.multi_send_call_only,
                    )
                    .await?;
                    (account, None)
                }
                SessionHost::BiconomyModule(module) => {
                    let _spinner =
                        out.spinner("enabling the session module in the Biconomy account");
                    let account = biconomy_account(&chain, &provider, owner_key, *salt).await?;
                    owner::install_biconomy_sessions(
                        &provider,
                        owner_key,
                        account,
                        module,
                        chain.biconomy.ecdsa_module,
                    )
                    .await?;
                    (account, None)
                }
            };
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
            if let Some(count) = max_payments_per_period {
                scopes = scopes.max_payments_per_period(*count);
            }
            if let Some(cap) = per_merchant_cap {
                scopes = scopes.merchant_period_cap(cap.parse()?);
            }
            match (self_paid_gas, chain.paymaster) {
                (Some(budget), _) => {
                    scopes = scopes.self_paid_gas(
                        parse_gas_budget(budget)
                            .map_err(|e| anyhow::anyhow!("--self-paid-gas: {e}"))?,
                    );
                }
                (None, Some(paymaster)) => scopes = scopes.only_paymaster(paymaster),
                (None, None) => {}
            }
            let session_key = PrivateKeySigner::random();
            let token = chain.token()?;
            let epoch = owner::session_epoch_in(&provider, host, account).await?;
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
            let mut file = SessionFile::new(
                chain.chain_id,
                account,
                chain.entry_point,
                deployment,
                token,
                owner_key.address(),
                scopes.merchant_list(),
                &grant,
                signature,
            );
            if let SessionHost::KernelValidator(validator) = host {
                file = file.in_kernel(validator);
            }
            if let SessionHost::BiconomyModule(module) = host {
                file = file.in_biconomy(module);
            }
            if let SessionHost::SafeModule(module) = host {
                file = file.in_safe(module);
            }
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
            // The key, not only its address: a Biconomy revocation is an owner signature relayed
            // to the session module.
            let tx =
                owner::revoke_in(&provider, file.host(), owner_key, file.account, file.session_id)
                    .await?;
            out.result(
                format!("session {} revoked (tx {tx})", file.session_id),
                json!({ "revoked": file.session_id, "tx": tx }),
            );
        }
        SessionCommand::Pause { file, owner_key } | SessionCommand::Resume { file, owner_key } => {
            let paused = matches!(command, SessionCommand::Pause { .. });
            let file = SessionFile::load(file)?;
            anyhow::ensure!(
                owner_key.address() == file.owner,
                "the key is not this session's owner {}",
                file.owner
            );
            let chain = Chain::resolve(cli)?;
            let provider = chain.provider(Some(owner_key))?;
            let what = if paused { "paused" } else { "resumed" };
            let _spinner = out.spinner(if paused { "pausing" } else { "resuming" });
            deploy_if_needed(&provider, &file, owner_key).await?;
            let tx = owner::set_paused_in(
                &provider,
                file.host(),
                owner_key,
                file.account,
                file.session_id,
                paused,
            )
            .await?;
            out.result(
                format!("session {} {what} (tx {tx})", file.session_id),
                json!({ "session": file.session_id, "paused": paused, "tx": tx }),
            );
        }
        SessionCommand::RevokeAll { account, kind, owner_key } => {
            let chain = Chain::resolve(cli)?;
            let provider = chain.provider(Some(owner_key))?;
            let host = kind.host(&chain)?;
            let _spinner = out.spinner("revoking every session");
            let tx = owner::revoke_all_in(&provider, host, owner_key, *account).await?;
            out.result(
                format!("every session of {account} revoked (tx {tx})"),
                json!({ "account": account, "tx": tx }),
            );
        }
    }
    Ok(())
}

/// `PER_OP,PER_PERIOD,LIFETIME` in wei.
fn parse_gas_budget(text: &str) -> Result<GasBudget, String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [per_op, per_period, lifetime] = parts.as_slice() else {
        return Err(format!("{text:?} is not PER_OP,PER_PERIOD,LIFETIME (three wei amounts)"));
    };
    let wei = |s: &str| s.parse::<u128>().map_err(|e| format!("{s:?} is not a wei amount: {e}"));
    Ok(GasBudget { per_op: wei(per_op)?, per_period: wei(per_period)?, lifetime: wei(lifetime)? })
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
    let s = owner::remaining_in(&provider, file.host(), file.chain_id, file.account, &grant, now)
        .await?;
    let status = match s.status {
        SessionStatus::NotEnabled => "granted, not used yet",
        SessionStatus::Enabled => "active",
        SessionStatus::Revoked => "revoked",
        SessionStatus::RevokedAll => "revoked (all sessions)",
        SessionStatus::Paused => "paused",
    };
    let l = &file.limits;
    let count_limit = match l.payments_per_period {
        0 => "no limit".to_owned(),
        n => format!("at most {n}"),
    };
    let per_merchant = l.per_merchant_per_period.as_deref().unwrap_or("no sub-budget");
    let gas = match &l.gas_budget_wei {
        Some([per_op, per_period, lifetime]) => format!(
            "self-paid: {} wei charged of {lifetime} (≤ {per_op} per op, ≤ {per_period} per period)",
            s.gas_lifetime_spent
        ),
        None => "a paymaster must sponsor every op".to_owned(),
    };
    let text = format!(
        "  status      {status}\n  spent       {} this period, {} in total\n  remaining   {} this period, {} in total\n  payments    {} this period ({count_limit})\n  per merchant {per_merchant} per period\n  gas         {gas}",
        file.token.format(s.period_spent),
        file.token.format(s.lifetime_spent),
        file.token.format(s.period_remaining),
        file.token.format(s.lifetime_remaining),
        s.payments_in_period,
    );
    let json = json!({
        "sessionId": file.session_id,
        "status": status,
        "periodSpent": s.period_spent.to_string(),
        "lifetimeSpent": s.lifetime_spent.to_string(),
        "periodRemaining": s.period_remaining.to_string(),
        "lifetimeRemaining": s.lifetime_remaining.to_string(),
        "paymentsInPeriod": s.payments_in_period,
        "maxPaymentsPerPeriod": l.payments_per_period,
        "perMerchantPerPeriod": l.per_merchant_per_period,
        "gasLifetimeSpentWei": s.gas_lifetime_spent.to_string(),
        "gasBudgetWei": l.gas_budget_wei,
        "pauseNonce": s.pause_nonce,
    });
    Ok((text, json))
}

/// The owner's Kernel v2.4 account number `index` (canonical factory), deployed by the owner if it
/// is not yet.
pub(crate) async fn kernel_account(
    provider: &impl Provider,
    owner_key: &PrivateKeySigner,
    index: U256,
) -> anyhow::Result<Address> {
    let account = kernel::account_address(owner_key.address(), index);
    let init_code = kernel::init_code(owner_key.address(), index);
    owner::deploy_account(provider, owner_key.address(), account, &init_code)
        .await
        .context("deploying the Kernel account (is Kernel v2.4 deployed on this chain?)")?;
    Ok(account)
}

/// The owner's Biconomy v2 account number `index` (the chain's Biconomy deployment), deployed by
/// the owner if it is not yet.
pub(crate) async fn biconomy_account(
    chain: &Chain,
    provider: &impl Provider,
    owner_key: &PrivateKeySigner,
    index: u64,
) -> anyhow::Result<Address> {
    let deployment = chain.biconomy;
    let account = deployment.account_address(owner_key.address(), U256::from(index));
    let init_code = deployment.init_code(owner_key.address(), U256::from(index));
    owner::deploy_account(provider, owner_key.address(), account, &init_code)
        .await
        .context("deploying the Biconomy account (is Biconomy v2 deployed on this chain?)")?;
    Ok(account)
}

/// The owner's 1-of-1 Safe number `salt_nonce` (Safe 1.4.1 with Safe4337Module, canonical
/// deployment: the Safe its owner payments use), deployed by the owner if it is not yet.
pub(crate) async fn safe_account(
    provider: &impl Provider,
    owner_key: &PrivateKeySigner,
    salt_nonce: U256,
) -> anyhow::Result<Address> {
    let config = SafeConfig::single_owner(owner_key.address(), salt_nonce);
    let deployment = SafeDeployment::CANONICAL;
    let account = deployment.account_address(&config)?;
    let init_code = deployment.init_code(&config)?;
    owner::deploy_account(provider, owner_key.address(), account, &init_code)
        .await
        .context("deploying the Safe (is Safe 1.4.1 deployed on this chain?)")?;
    Ok(account)
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
    let config = AccountConfig::single_owner(deployment.factory, deployment.owner, deployment.salt);
    let init_code = AccountKind::SessionKeyAccount.abi().init_code(&config)?;
    owner::deploy_account(provider, owner_key.address(), file.account, &init_code).await?;
    Ok(())
}
