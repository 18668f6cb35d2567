//! The SDK's one error type: setting up a grant or a paying client. Payment refusals are
//! [`super::PayError`] (feature `client`).

use alloy::primitives::Address;
use x402_aa::accounts::AccountKind;

use crate::{
    file::SessionFileError, ledger::LedgerError, owner::OwnerError, scopes::ScopeError,
    signer::SignerError,
};

/// Why a grant, a revocation or a paying client could not be set up. Every variant has a stable
/// [`SdkError::reason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    #[error("unknown network {0:?} (nero-testnet, nero-mainnet, devnet, or an http(s) RPC URL)")]
    UnknownNetwork(String),
    #[error("no {what} for this network: {hint}")]
    Missing { what: &'static str, hint: &'static str },
    #[error(
        "no {kind} factory for this network: use Network::with_factory or {}",
        super::network::factory_var(*kind)
    )]
    MissingFactory { kind: AccountKind },
    #[error("{name} = {value:?}: {reason}")]
    BadSetting { name: String, value: String, reason: String },
    #[error("the RPC at {rpc_url} serves chain {got}, not {expected}")]
    WrongChain { expected: u64, got: u64, rpc_url: String },
    /// The account kind has no implementation of this role in the SDK yet.
    #[error("{kind} accounts cannot be used for {role} yet")]
    UnsupportedAccountKind { kind: AccountKind, role: &'static str },
    /// A setting the session's grant already fixes differs from it.
    #[error("{what} {given} differs from the session's {session}: the owner's grant binds it")]
    SessionMismatch { what: &'static str, given: Address, session: Address },
    #[error("the grant requires a paymaster (it lets no op pay its own gas): configure one")]
    PaymasterRequired,
    #[error("the key {key} is not the session's owner {owner}")]
    NotOwner { key: Address, owner: Address },
    #[error("session file gives no factory to deploy account {0} before revoking")]
    CannotDeploy(Address),
    #[error(transparent)]
    Scopes(#[from] ScopeError),
    #[error(transparent)]
    SessionFile(#[from] SessionFileError),
    #[error(transparent)]
    Owner(#[from] OwnerError),
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("bundler / paymaster: {0}")]
    Rpc(#[from] x402_aa_rpc::RpcError),
    #[error("chain rpc: {0}")]
    Chain(String),
    #[error("no OS randomness: {0}")]
    Randomness(String),
}

impl SdkError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownNetwork(_)
            | Self::Missing { .. }
            | Self::MissingFactory { .. }
            | Self::BadSetting { .. } => "invalid_configuration",
            Self::WrongChain { .. } => "network_mismatch",
            Self::UnsupportedAccountKind { .. } => "unsupported_account_kind",
            Self::SessionMismatch { .. } => "requirements_mismatch",
            Self::PaymasterRequired => "gas_policy_violation",
            Self::NotOwner { .. } => "not_owner",
            Self::CannotDeploy(_) => "account_not_deployed",
            Self::Scopes(e) => e.reason(),
            Self::SessionFile(e) => e.reason(),
            Self::Owner(e) => e.reason(),
            Self::Signer(e) => e.reason(),
            Self::Ledger(e) => e.reason(),
            Self::Rpc(e) => e.reason(),
            Self::Chain(_) => "rpc_error",
            Self::Randomness(_) => "signing_failed",
        }
    }
}
