//! The facilitator against a devnet (anvil + the real EntryPoint v0.6), served in-process on
//! 127.0.0.1:0, paid with payloads the SDK's `PaymentSigner` signs. One binary, a module per topic.

mod common;

mod bad_input;
mod batching;
mod biconomy_session;
mod bundler;
mod crash;
mod exact;
mod fallback;
mod flaws;
mod happy;
mod idempotency;
mod kernel_session;
mod kinds;
mod nonce;
mod observability;
#[cfg(feature = "postgres")]
mod postgres;
mod recovery;
mod safe_session;
mod stall;
