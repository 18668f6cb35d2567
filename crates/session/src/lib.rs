//! Session keys with spending caps for aa-native x402 payments.
//!
//! The owner of a `SessionKeyAccount` (the contract, `contracts/README.md`) signs one
//! [`SessionGrant`] (EIP-712, bound to chain and account); the agent holds only the session key
//! and signs each payment UserOp with it. The account contract enforces the grant in
//! `validateUserOp`; this crate produces exactly the bytes it checks, and mirrors its checks
//! off-chain so every layer refuses the same things for the same reasons.
//!
//! The protocol side of sessions (the grant, the session signature layout, the merchant allowlist and
//! the one scope check every layer shares with the contract) is the [`x402_aa_policy`] crate,
//! re-exported here as [`policy`], [`grant`], [`signature`] and [`merkle`].
//!
//! - [`scopes`]: limits written the way a person says them, turned into a grant.
//! - [`owner`]: the owner's side: sign a grant, revoke, read what a session has left.
//! - [`mod@file`]: the session file (no private key) and the separate 0600 key file.
//! - [`signer`]: payments signed by a session key or an owner key ([`signer::PaymentAccount`]);
//!   [`accounts`]: owner-signed Kernel, Safe and Biconomy accounts on the same seam.

#![warn(missing_docs)]

pub mod accounts;
#[cfg(feature = "client")]
pub mod client;
pub mod fault;
pub mod file;
pub mod ledger;
pub mod owner;
pub mod scopes;
pub mod sdk;
pub mod signer;

pub use x402_aa_policy::{self as policy, grant, merkle, signature};

pub use file::{SessionFile, SessionFileError, TokenInfo};
pub use grant::{
    GrantWindow, PeriodWindow, SessionGrant, account_domain, revoke_all_digest, revoke_digest,
    session_id,
};
pub use ledger::{Ledger, LedgerError};
pub use merkle::MerchantTree;
pub use scopes::{Amount, Scopes, per_day, per_hour, per_week};
pub use signature::{
    SessionMode, SessionSignature, SessionSignatureCodec, SessionSignatureError, session_digest,
};
pub use x402_aa_policy::{Limits, Rule, ScopeViolation};
