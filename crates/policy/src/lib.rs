//! The session-key policy of aa-native x402 payments, in one place.
//!
//! The account contract (`contracts/src/SessionKeyAccount.sol`, `_validateSession`) is the policy's
//! authority; this crate is its off-chain mirror, shared by every layer that must refuse an
//! out-of-scope payment before the chain does: the agent SDK before signing, its budget ledger before
//! reserving, the facilitator before submitting. They all call [`check::check`], so they refuse the
//! same things, in the contract's order, for the same [`Rule`].
//!
//! - [`ecdsa`]: signature recovery by the contracts' rules (`ECDSA.tryRecover`).
//! - [`grant`]: the grant, its id (the EIP-712 digest the owner signs) and period arithmetic.
//! - [`signature`]: the `UserOperation.signature` layout of session ops (enable and use modes).
//! - [`merkle`]: the merchant allowlist as a Merkle tree and its proofs.
//! - [`limits`]: the amount, time and merchant limits of one session.
//! - [`violation`]: why a payment is out of scope: [`Rule`] (x402 reason and contract revert string)
//!   and [`ScopeViolation`] (the rule with its numbers).
//! - [`check()`]: the one scope check.
//! - [`session_op`]: a whole session UserOperation (signatures, gas, callData) through that check.
//! - [`onchain`]: the session's usage as the account stores it.

#![warn(missing_docs)]

pub mod check;
pub mod ecdsa;
pub mod grant;
pub mod limits;
pub mod merkle;
pub mod onchain;
pub mod session_op;
pub mod signature;
pub mod violation;

pub use check::{
    Attempt, GasRequest, GasUsage, PeriodSpend, SessionStatus, SessionUsage, authorize_grant,
    check, check_gas, check_time, claim_period, grant_defect, period_window,
};
pub use ecdsa::{EcdsaError, malleable_twin, recover_signer, signed_by};
pub use grant::{
    GrantWindow, PeriodWindow, SessionGrant, account_domain, revoke_all_digest, revoke_digest,
    session_id, to_u96,
};
pub use limits::{Limits, LimitsError};
pub use merkle::MerchantTree;
pub use onchain::{SessionHost, read_usage_at, read_usage_in, session_module_owner};
pub use session_op::{
    CheckedSessionOp, SessionOpSignature, check_session_op, check_session_payment,
    method_violation, payment_merchant,
};
pub use signature::{
    SessionMode, SessionSignature, SessionSignatureCodec, SessionSignatureError, encode_grant,
    session_digest,
};
pub use violation::{GrantDefect, Rule, ScopeViolation};
