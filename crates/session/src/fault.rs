//! The agent's halt points for its crash tests (see [`x402_aa_fault`]): a payment passes them in
//! this order: its budget is reserved in the ledger; its payment header is signed (not yet sent);
//! the merchant's answer arrived (not yet reconciled).

pub use x402_aa_fault::{HALT_MESSAGE, HaltPoints};

/// The agent's points, named by `X402_AA_AGENT_HALT_AT`.
pub static HALT_POINTS: HaltPoints =
    HaltPoints::new("X402_AA_AGENT_HALT_AT", &["after_reserve", "after_sign", "after_send"]);
