//! The paymaster service against a real EntryPoint and VerifyingPaymaster on anvil, driven
//! through the project's own `PaymasterClient` (and raw HTTP where the client cannot go).

mod common;
mod errors;
mod lifecycle;
mod limits;
mod metrics;
mod sponsor;
