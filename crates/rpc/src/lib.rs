//! JSON-RPC clients for the two external services an aa-native payment goes through: the
//! ERC-4337 v0.6 bundler and the NERO-style paymaster.
//!
//! The request and response types are this crate's own, not alloy's `Erc4337Api` ones, because
//! real v0.6 bundlers do not answer in alloy's shapes (estimates lack v0.7 fields, receipts lack
//! `paymaster`, numbers come as hex or decimal). Every failure is an [`RpcError`] that knows
//! whether it is worth retrying and which NERO reason string it becomes.

#![warn(missing_docs)]

mod bundler;
mod clock;
mod coalesce;
mod error;
mod fold;
mod paymaster;
mod quantity;
mod transport;

pub use bundler::{BundlerClient, GasEstimate, Log, TransactionReceipt, UserOpReceipt};
pub use clock::ChainClock;
pub use coalesce::{
    CoalescingHttp, DEFAULT_MAX_BATCH, DEFAULT_MAX_IN_FLIGHT, bounded_http_client,
    coalescing_provider,
};
pub use error::{BundlerErrorCode, Result, RpcError};
pub use paymaster::{API_KEY_HEADER, PaymasterClient, SponsorContext, SponsorResult, SponsorType};
pub use transport::{DEFAULT_TIMEOUT, RetryPolicy};
