//! The owner's side: grant a session to an agent (one signature, no transaction), read its status
//! from the chain, revoke it (one transaction). The owner key comes from `X402_AA_OWNER_KEY`;
//! network settings from `X402_AA_*` variables (`Network::from_env`).
//!
//! ```sh
//! owner grant --spend-cap "10 USDT" --per-payment "1 USDT" --merchant 0x… --valid-for-secs 86400
//! owner status session.json
//! owner revoke session.json
//! ```

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use x402_aa_session::sdk::{
    AccountKind, Address, Network, PrivateKeySigner, Scopes, SessionFile, SessionKey, SessionOwner,
    every,
};

#[derive(Debug, Parser)]
struct Cli {
    #[arg(long, env = "X402_AA_OWNER_KEY", hide_env_values = true)]
    owner_key: PrivateKeySigner,
    /// The account contract family (only session-key-account takes sessions today).
    #[arg(long, default_value = "session-key-account")]
    kind: AccountKind,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign a grant; write the session file and the session key file (0600).
    Grant {
        /// Cap per period, e.g. "10 USDT".
        #[arg(long)]
        spend_cap: String,
        #[arg(long, default_value_t = 86_400)]
        period_secs: u64,
        /// Largest single payment (default: the spend cap).
        #[arg(long)]
        per_payment: Option<String>,
        /// Total over the session's life (default: cap × periods).
        #[arg(long)]
        lifetime: Option<String>,
        /// Allowed merchant (repeat); none = any merchant.
        #[arg(long = "merchant")]
        merchants: Vec<Address>,
        #[arg(long, default_value_t = 86_400)]
        valid_for_secs: u64,
        /// The only paymaster that may sponsor the session's ops (default: the network's, if
        /// it names one, else any paymaster).
        #[arg(long)]
        paymaster: Option<Address>,
        #[arg(long, default_value = "session.json")]
        out: PathBuf,
        #[arg(long, default_value = "session.key")]
        key_out: PathBuf,
    },
    /// What a session has spent and has left, from the chain.
    Status { session: PathBuf },
    /// End a session with one transaction.
    Revoke { session: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let network = Network::from_env()?;
    let owner = SessionOwner::new(cli.owner_key, network.clone());
    match cli.command {
        Command::Grant {
            spend_cap,
            period_secs,
            per_payment,
            lifetime,
            merchants,
            valid_for_secs,
            paymaster,
            out,
            key_out,
        } => {
            let mut scopes = Scopes::new()
                .spend_cap(spend_cap.parse()?, every(Duration::from_secs(period_secs)))
                .valid_for(Duration::from_secs(valid_for_secs));
            if let Some(amount) = per_payment {
                scopes = scopes.per_payment_max(amount.parse()?);
            }
            if let Some(amount) = lifetime {
                scopes = scopes.lifetime_cap(amount.parse()?);
            }
            if !merchants.is_empty() {
                scopes = scopes.merchants(merchants);
            }
            if let Some(paymaster) = paymaster.or(network.paymaster_contract()) {
                scopes = scopes.only_paymaster(paymaster);
            }
            let granted = owner.grant(cli.kind, &scopes, SessionKey::Generate).await?;
            granted.save(&out, &key_out)?;
            let limits = &granted.file.limits;
            println!("session {}", granted.file.session_id);
            println!("account {}", granted.account());
            println!("session key {}", granted.file.session_key);
            println!(
                "limits {} per {} s, {} per payment, {} in total, until {}",
                limits.per_period,
                limits.period_seconds,
                limits.per_payment,
                limits.lifetime,
                limits.valid_until
            );
            println!("wrote {} and {} (0600)", out.display(), key_out.display());
        }
        Command::Status { session } => {
            let file = SessionFile::load(session)?;
            let status = owner.status(&file).await?;
            println!("session {} is {:?}", file.session_id, status.status);
            println!(
                "spent {} in total; left {} this period, {} in total",
                file.token.format(status.lifetime_spent),
                file.token.format(status.period_remaining),
                file.token.format(status.lifetime_remaining)
            );
        }
        Command::Revoke { session } => {
            let file = SessionFile::load(session)?;
            let tx = owner.revoke(&file).await?;
            println!("revoked session {} in tx {tx}", file.session_id);
        }
    }
    Ok(())
}
