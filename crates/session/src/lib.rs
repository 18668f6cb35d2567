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
//! - [`scopes`]: limits written the way a person says them, turned into a grant.
//! - [`owner`]: the owner's side: sign a grant, revoke, read what a session has left.
//! - [`file`]: the session file (no private key) and the separate 0600 key file.

#[cfg(feature = "client")]
pub mod client;
pub mod file;
pub mod grant;
pub mod ledger;
pub mod merkle;
pub mod owner;
pub mod scope;
pub mod scopes;
pub mod signature;
pub mod signer;

pub use file::{SessionFile, SessionFileError, TokenInfo};
pub use grant::{
    GrantWindow, PeriodWindow, SessionGrant, account_domain, revoke_all_digest, revoke_digest,
    session_id,
};
pub use ledger::{Ledger, LedgerError, Limits};
pub use merkle::MerchantTree;
pub use scopes::{Amount, Scopes, per_day, per_hour, per_week};
pub use signature::{
    SessionMode, SessionSignature, SessionSignatureCodec, SessionSignatureError, session_digest,
};
