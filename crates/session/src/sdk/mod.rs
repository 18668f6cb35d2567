//! The SDK in a few lines: grant a session as the owner, pay x402 APIs as the agent.
//!
//! The document this crate follows asks for
//! `aaNativeSessionSigner({ ownerSigner, sessionKey, scopes: { spendCap, targets, expiry }, rpcUrl,
//! bundlerUrl, paymasterUrl, paymasterApiKey, settlementContract })`. Here it is two steps, because
//! the owner and the agent are different parties and the owner key should not live where the
//! agent runs:
//!
//! 1. **Owner, once** — [`SessionOwner::grant`]: owner key + account kind + [`Scopes`] +
//!    [`Network`] → a signed [`GrantedSession`]: the session file (shareable, no secret) and the
//!    session key (written 0600, apart). One EIP-712 signature, no transaction.
//!    [`SessionOwner::revoke`] ends it with one transaction.
//! 2. **Agent, always** — `PayingClient::session` (feature `client`): session file + key + RPC
//!    / bundler / paymaster URL and API key (defaults from the network preset of the session's
//!    chain) → an x402 paying HTTP client. `client.get(url).send().await` pays a 402 within the
//!    grant, refuses beyond it with a `PayError` naming the [`Rule`] (`spend_cap_exceeded`,
//!    `session_revoked`, …), and commits or releases the budget with the payment's outcome.
//!
//! `PayingClient::owner` (feature `client`) is `aaNativeSigner`: the owner key signs every
//! payment, for any account kind, with EntryPoint and account-factory overrides.
//!
//! The document's scope names map to [`Scopes`] as: `spendCap` → [`Scopes::spend_cap`] (an
//! amount per period), `expiry` → [`Scopes::valid_for`] / [`Scopes::valid_from`], `targets` → the
//! settlement contract (the only contract a session op may call; fixed by the network) plus
//! [`Scopes::merchants`] (who may be paid). Ours add [`Scopes::per_payment_max`],
//! [`Scopes::lifetime_cap`] and the gas policy ([`Scopes::only_paymaster`],
//! [`Scopes::self_paid_gas`]).
//!
//! # Quickstart
//!
//! ```no_run
//! use std::time::Duration;
//! use x402_aa_session::sdk::*;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Where: a preset ("nero-testnet"), an RPC URL, or X402_AA_* variables (Network::from_env).
//! let network: Network = "nero-testnet".parse()?;
//!
//! // The owner grants 10 USDT a day, at most 1 USDT a payment, for 24 hours.
//! let owner_key: PrivateKeySigner = std::env::var("OWNER_KEY")?.parse()?;
//! let scopes = Scopes::new()
//!     .spend_cap("10 USDT".parse()?, per_day())
//!     .per_payment_max("1 USDT".parse()?)
//!     .valid_for(Duration::from_secs(24 * 3600));
//! let owner = SessionOwner::new(owner_key, network.clone());
//! let granted = owner.grant(AccountKind::SessionKeyAccount, &scopes, SessionKey::Generate).await?;
//! granted.save("session.json", "session.key")?; // fund granted.account() with USDT
//!
//! // The agent, elsewhere, holds only session.json and session.key.
//! let client = PayingClient::session()
//!     .session_file("session.json")
//!     .key_file("session.key")
//!     .paymaster("https://paymaster-testnet.nerochain.io", "<api key>")
//!     .build()
//!     .await?;
//! match client.get("https://api.example.com/joke").send().await {
//!     Ok(paid) => println!("{} — {:?}", paid.status(), paid.payment.map(|p| p.outcome)),
//!     Err(refused) => println!("not paid: {} ({:?})", refused.reason(), refused.rule()),
//! }
//!
//! // The owner ends the session with one transaction; the agent's next payment is refused.
//! owner.revoke(&granted.file).await?;
//! # Ok(()) }
//! ```
//!
//! Runnable versions (an agent, an owner, an operator holding many users' sessions) are in the
//! repository's `examples/` crate.

#[cfg(feature = "client")]
mod client;
mod error;
mod network;
mod owner;

pub use alloy::{
    primitives::{Address, B256, TxHash, U256},
    signers::local::PrivateKeySigner,
};
pub use x402_aa::accounts::{
    AccountKind,
    biconomy::Deployment as BiconomyDeployment,
    safe::{SafeConfig, SafeDeployment},
};
pub use x402_aa_policy::{Rule, ScopeViolation};

#[cfg(feature = "client")]
pub use crate::client::{ClientError, PaidResponse, PaymentOutcome, PaymentRecord};
pub use crate::{
    file::{SessionFile, TokenInfo},
    ledger::{Ledger, Remaining},
    owner::{OnChainSession, SessionStatus},
    scopes::{Amount, Scopes, every, per_day, per_hour, per_week},
    signer::SignerError,
};
#[cfg(feature = "client")]
pub use client::{
    OwnerClientBuilder, PayError, PayRequest, PayingClient, Recovery, SessionClientBuilder,
};
pub use error::SdkError;
pub use network::{Network, PRESETS, env, factory_var};
pub use owner::{GrantedSession, SessionKey, SessionOwner, sender_address, session_status};

use alloy::{
    eips::BlockNumberOrTag,
    providers::{DynProvider, Provider},
};

fn chain(e: impl std::fmt::Display) -> SdkError {
    SdkError::Chain(e.to_string())
}

/// Chain time: the latest block's timestamp (what the account and the EntryPoint compare with).
async fn latest_timestamp(provider: &DynProvider) -> Result<u64, SdkError> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(chain)?
        .ok_or_else(|| SdkError::Chain("no latest block".into()))?;
    Ok(block.header.timestamp)
}
