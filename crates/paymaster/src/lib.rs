//! A devnet paymaster service: NERO-style JSON-RPC (`pm_sponsor_userop`) that signs approvals
//! for the ERC-4337 v0.6 `VerifyingPaymaster`, so agent accounts hold only the stablecoin.
//!
//! A request is authorised by API key, its op is checked against a [`SponsorPolicy`] (static
//! rules on gas and fees, a simulation of validation and execution, budgets per account and per
//! session per period) and a per-sender rate limit, and the approval is signed over the
//! contract's own `getHash`. `GET /metrics` serves Prometheus metrics ([`metrics`]). Errors
//! reach the caller as JSON-RPC errors whose codes are listed in [`code`] and whose
//! `data.reason` is a stable string ([`SponsorError::reason`]).
//!
//! ```no_run
//! # async fn run(config: x402_aa_paymaster::PaymasterConfig) -> x402_aa_paymaster::Result<()> {
//! use x402_aa_paymaster::PaymasterService;
//!
//! let handle = PaymasterService::new(config)?.bind(([127, 0, 0, 1], 0).into()).await?;
//! println!("paymaster at {}", handle.url());
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod budget;
mod config;
mod error;
pub mod metrics;
mod policy;
mod server;
mod service;
mod simulate;

pub use config::{Budget, PaymasterConfig, SponsorLimits, SponsorPolicy};
pub use error::{Error, LimitKind, LimitScope, PolicyViolation, Result, SponsorError, code};
pub use server::{API_KEY_HEADER, MAX_BATCH_LEN, MAX_BODY_BYTES, PaymasterHandle, SHUTDOWN_GRACE};
pub use service::{PaymasterService, Sponsorship};
