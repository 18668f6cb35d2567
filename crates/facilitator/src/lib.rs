//! An x402 v2 facilitator for NERO 402's **aa-native** scheme — payments carried by ERC-4337
//! EntryPoint v0.6 UserOperations, including session-key ops of `SessionKeyAccount` — served
//! beside x402-rs' EIP-3009 **exact** scheme.
//!
//! - [`config`]: the JSON config (x402-rs' layout) and its environment overrides.
//! - [`verify`]: aa-native `/verify`, step by step, each failure with its own reason.
//! - [`aa_native`]: `/settle` (idempotent on requestHash, concurrent duplicates share one
//!   outcome), and crash recovery from the chain.
//! - [`submit`]: bundler submission (`eth_sendUserOperation` + receipt polling) or direct
//!   `handleOps` from the facilitator's key, batching ops of different senders.
//! - [`store`]: the settlement registry (SQLite by default, Postgres for several instances).
//! - [`scheme`]: the x402-rs 2.0.2 plumbing (`X402SchemeBlueprint`s, the per-chain provider).
//! - [`exact`]: x402-rs' EIP-3009 `exact`, with its refusals in the x402 v2 spec's words.
//! - [`payment_id`]: the x402 `payment-identifier` extension (idempotent `/settle` by client id).
//! - [`server`]: the axum routes and the HTTP status rules.
//! - [`reason`]: every reason string this facilitator answers with.
//! - [`metrics`]: Prometheus metrics at `GET /metrics`.
//!
//! ```no_run
//! # async fn run() -> x402_aa_facilitator::Result<()> {
//! use x402_aa_facilitator::{Config, FacilitatorService};
//!
//! let mut config = Config::from_file("facilitator.json")?;
//! config.apply_env()?;
//! let handle = FacilitatorService::new(config).await?.bind().await?;
//! handle.wait().await.ok();
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod aa_native;
pub mod chain;
pub mod config;
mod error;
pub mod exact;
pub mod metrics;
pub mod nonce;
pub mod payment_id;
pub mod reason;
pub mod scheme;
pub mod server;
mod service;
pub mod store;
pub mod submit;
pub mod verify;

pub use aa_native::{AaNative, Recovery};
pub use config::{ChainConfig, Config, ConfigError, KeySource, SubmissionConfig};
pub use error::{Error, Result};
pub use reason::Rejection;
pub use server::FacilitatorHandle;
pub use service::{FacilitatorService, aa_native_everywhere, exact_on, scheme_enabled};

/// x402-rs scheme id of aa-native (`v{version}-{namespace}-{scheme}`).
pub const AA_NATIVE_SCHEME_ID: &str = "v2-eip155-aa-native";
/// x402-rs scheme id of its EIP-3009 `exact` scheme.
pub const EXACT_SCHEME_ID: &str = "v2-eip155-exact";
