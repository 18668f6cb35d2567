//! Session keys with spending caps for aa-native x402 payments.
//!
//! The owner of a [`SessionKeyAccount`](https://github.com) signs one [`SessionGrant`] (EIP-712, bound to
//! chain and account); the agent holds only the session key and signs each payment UserOp with it. The
//! account contract enforces the grant in `validateUserOp`; this crate produces exactly the bytes it
//! checks, and mirrors its checks off-chain so every layer refuses the same things for the same reasons.
//!
//! - [`grant`]: the grant, its id (the EIP-712 digest the owner signs) and period arithmetic.
//! - [`signature`]: the `UserOperation.signature` layout of session ops (enable and use modes).
//! - [`merkle`]: the merchant allowlist as a Merkle tree and its proofs.

pub mod grant;
pub mod merkle;
pub mod signature;

pub use grant::{
    GrantWindow, PeriodWindow, SessionGrant, account_domain, revoke_all_digest, revoke_digest,
    session_id,
};
pub use merkle::MerchantTree;
pub use signature::{
    SessionMode, SessionSignature, SessionSignatureCodec, SessionSignatureError, session_digest,
};
