//! Why a payment was refused or did not settle, and the stable wire string for each case.
//!
//! NERO 402's sixteen codes come from [`x402_aa::x402::Reason`] (through [`PayloadError`]); the
//! session-scope codes come from [`ScopeViolation::reason`], so the facilitator, the SDK and the
//! contract mirror all answer the same string for the same rule. The few codes this crate adds
//! (simulation and execution checks NERO's docs leave open) are listed in [`EXTRA_REASONS`].

use alloy::primitives::{Address, U256};
use serde_json::{Value, json};
use x402_aa::x402::{PayloadError, Reason};
use x402_aa_policy::{Rule, ScopeViolation};

/// Reason strings this facilitator adds to NERO's list and the session-scope list.
pub const EXTRA_REASONS: [&str; 5] = [
    SIMULATION_FAILED,
    INVALID_SIGNATURE,
    USER_OP_OUT_OF_TIME_RANGE,
    INSUFFICIENT_FUNDS,
    EXECUTION_REVERTED,
];

/// `EntryPoint.simulateValidation` refused the op (`FailedOp`, an `AAxx` reason).
pub const SIMULATION_FAILED: &str = "simulation_failed";
/// The account (or paymaster) reported `SIG_VALIDATION_FAILED`. Same string as x402-rs.
pub const INVALID_SIGNATURE: &str = "invalid_signature";
/// The op's validity window (account and paymaster, intersected) does not contain chain time.
pub const USER_OP_OUT_OF_TIME_RANGE: &str = "user_op_out_of_time_range";
/// The payer holds less of the token than the payment. Same string as upstream x402 §9.
pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
/// Validation passes but the payment's execution would revert (allowance, pause, ...).
pub const EXECUTION_REVERTED: &str = "execution_reverted";

/// One refusal; every variant maps to exactly one stable reason string through
/// [`Rejection::reason`]. The `Display` text becomes `invalidMessage` / `errorMessage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The request body is not a v2 `{x402Version, paymentPayload, paymentRequirements}`.
    #[error("{0}")]
    Envelope(String),
    /// The envelope, its aa-native payload or the callData failed a stateless check.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The merchant's own `paymentRequirements` are unusable.
    #[error("paymentRequirements: {0}")]
    Requirements(String),
    /// The requirements name a network, EntryPoint or settlement contract this facilitator
    /// does not serve for them.
    #[error("{0}")]
    NotServed(String),
    /// The token is not on this facilitator's allowlist for the network.
    #[error("asset {0} is not accepted by this facilitator")]
    AssetNotAllowed(Address),
    /// `initCode` does not deploy the op's sender the way a session account must be deployed.
    #[error("{0}")]
    InitCode(String),
    /// The requestHash already settled (registry or chain).
    #[error("{0}")]
    Replay(String),
    /// Another settlement of this requestHash is in progress.
    #[error("another settlement of this requestHash is in progress")]
    InFlight,
    /// A session-key op outside its grant (mirror of the account contract's checks).
    #[error(transparent)]
    Scope(#[from] ScopeViolation),
    /// The EntryPoint refused the op with one of the account's session reverts that the off-chain
    /// mirror did not predict (`AA23 reverted: session: …`): the same reason as the mirror's.
    #[error("the account refuses the session op: {revert}")]
    ChainScope {
        /// The session rule the revert names.
        rule: Rule,
        /// The EntryPoint's message, as sent.
        revert: String,
    },
    /// The EntryPoint refused the op in validation.
    #[error("simulateValidation: {reason}")]
    SimulationFailed {
        /// The EntryPoint's `AAxx` reason.
        reason: String,
    },
    /// The account's `validateUserOp` returned `SIG_VALIDATION_FAILED` (owner or session key).
    #[error("the op's signature does not validate (SIG_VALIDATION_FAILED)")]
    InvalidSignature,
    /// The op's validity window (the account's, intersected with the paymaster's) excludes the
    /// chain's time now.
    #[error("op is valid only in [{valid_after}, {valid_until}]; chain time is {now}")]
    OutOfTimeRange {
        /// First valid second.
        valid_after: u64,
        /// Last valid second.
        valid_until: u64,
        /// The chain head's timestamp.
        now: u64,
    },
    /// The payer's token balance cannot cover the payment.
    #[error("payer holds {balance} of the token; the payment is {amount}")]
    InsufficientFunds {
        /// The payer's balance.
        balance: U256,
        /// The payment.
        amount: U256,
    },
    /// Validation passes but running the op would not settle (the revert, as far as known).
    #[error("the payment's execution would revert ({0})")]
    ExecutionReverted(String),
    /// The bundler (or, in direct mode, the EntryPoint when the facilitator bundles) refused
    /// the op or could not be reached.
    #[error("{0}")]
    Bundler(String),
    /// The op was included but its execution reverted.
    #[error("{0}")]
    UserOpFailed(String),
    /// Submitted, but no receipt within the bound; it may still be included.
    #[error("{0}")]
    ReceiptTimeout(String),
    /// A fault on the facilitator's side (chain RPC, registry).
    #[error("{0}")]
    Internal(String),
}

impl Rejection {
    /// The stable wire string (`invalidReason` / `errorReason`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Envelope(_) => Reason::InvalidEnvelope.as_str(),
            Self::Payload(e) => e.reason(),
            Self::Requirements(_) | Self::AssetNotAllowed(_) => {
                Reason::InvalidPaymentRequirements.as_str()
            }
            Self::NotServed(_) => Reason::RequirementsMismatch.as_str(),
            Self::InitCode(_) => Reason::InvalidInnerPayload.as_str(),
            Self::Replay(_) => Reason::Replay.as_str(),
            Self::InFlight => Reason::InFlight.as_str(),
            Self::Scope(v) => v.reason(),
            Self::ChainScope { rule, .. } => rule.reason(),
            Self::SimulationFailed { .. } => SIMULATION_FAILED,
            Self::InvalidSignature => INVALID_SIGNATURE,
            Self::OutOfTimeRange { .. } => USER_OP_OUT_OF_TIME_RANGE,
            Self::InsufficientFunds { .. } => INSUFFICIENT_FUNDS,
            Self::ExecutionReverted(_) => EXECUTION_REVERTED,
            Self::Bundler(_) => Reason::BundlerError.as_str(),
            Self::UserOpFailed(_) => Reason::UserOpFailed.as_str(),
            Self::ReceiptTimeout(_) => Reason::ReceiptTimeout.as_str(),
            Self::Internal(_) => Reason::InternalError.as_str(),
        }
    }

    /// An EntryPoint refusal: the session rule it names where it is one, else `simulation_failed`.
    ///
    /// The EntryPoint's initCode refusals (AA10 sender already constructed, AA13 initCode
    /// failed, AA14 initCode must return sender, AA15 initCode must create sender) are a fault in
    /// the payload, not in the chain: they answer `invalid_inner_payload`, like the static
    /// initCode checks, whichever account kind's factory the initCode calls.
    pub fn entry_point_refusal(reason: String) -> Self {
        if let Some(rule) = Rule::from_entry_point(&reason) {
            return Self::ChainScope { rule, revert: reason };
        }
        match entry_point_code(&reason) {
            Some("AA10" | "AA13" | "AA14" | "AA15") => {
                Self::InitCode(format!("the EntryPoint refuses the initCode: {reason}"))
            }
            _ => Self::SimulationFailed { reason },
        }
    }

    /// Machine-readable extras for NERO's `details` field, where there are any.
    pub fn details(&self) -> Option<Value> {
        match self {
            Self::ChainScope { rule, revert } => Some(
                json!({ "entryPointCode": entry_point_code(revert), "revert": revert, "rule": format!("{rule:?}") }),
            ),
            Self::SimulationFailed { reason } => {
                Some(json!({ "entryPointCode": entry_point_code(reason), "revert": reason }))
            }
            Self::OutOfTimeRange { valid_after, valid_until, now } => {
                Some(json!({ "validAfter": valid_after, "validUntil": valid_until, "now": now }))
            }
            Self::InsufficientFunds { balance, amount } => {
                Some(json!({ "balance": balance.to_string(), "amount": amount.to_string() }))
            }
            _ => None,
        }
    }

    /// Whether a later `/settle` of the same payment may succeed, so the registry must not
    /// answer it with this outcome forever (a refusal in validation, an unreachable bundler, a
    /// fault of ours). A reverted execution consumed the op's nonce: retrying it cannot work.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::UserOpFailed(_) | Self::Replay(_))
    }
}

/// The `AAxx` code at the start of an EntryPoint `FailedOp` reason, if any.
pub fn entry_point_code(reason: &str) -> Option<&str> {
    let code = reason.get(..4)?;
    let b = code.as_bytes();
    (b[0] == b'A' && b[1] == b'A' && b[2].is_ascii_digit() && b[3].is_ascii_digit()).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_point_codes() {
        assert_eq!(entry_point_code("AA23 reverted: session: revoked"), Some("AA23"));
        assert_eq!(entry_point_code("AA2"), None);
        assert_eq!(entry_point_code("XA23"), None);
        assert_eq!(entry_point_code("é"), None);
    }

    #[test]
    fn reasons_are_stable() {
        assert_eq!(Rejection::Envelope(String::new()).reason(), "invalid_envelope");
        assert_eq!(Rejection::InFlight.reason(), "in_flight");
        assert_eq!(Rejection::Bundler(String::new()).reason(), "bundler_error");
        assert_eq!(Rejection::UserOpFailed(String::new()).reason(), "user_op_failed");
        assert_eq!(Rejection::ReceiptTimeout(String::new()).reason(), "receipt_timeout");
        assert_eq!(Rejection::NotServed(String::new()).reason(), "requirements_mismatch");
        assert_eq!(
            Rejection::Scope(ScopeViolation::Revoked).reason(),
            "session_revoked",
            "scope reasons pass through"
        );
        assert_eq!(
            Rejection::entry_point_refusal("AA14 initCode must return sender".into()).reason(),
            "invalid_inner_payload",
            "an initCode the EntryPoint refuses is the payload's fault"
        );
        assert_eq!(
            Rejection::entry_point_refusal("AA21 didn't pay prefund".into()).reason(),
            "simulation_failed"
        );
        assert!(!Rejection::UserOpFailed(String::new()).is_retryable());
        assert!(Rejection::Bundler(String::new()).is_retryable());
    }
}
