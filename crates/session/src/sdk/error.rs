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
    /// Not a preset name nor an http(s) RPC URL; holds the name given.
    #[error("unknown network {0:?} (nero-testnet, nero-mainnet, devnet, or an http(s) RPC URL)")]
    UnknownNetwork(String),
    /// A setting the operation needs (network, RPC URL, settlement contract, token, session
    /// module) is neither in the preset nor given; the hint names the builder method or variable.
    #[error("no {what} for this network: {hint}")]
    Missing {
        /// The missing setting.
        what: &'static str,
        /// How to give it.
        hint: &'static str,
    },
    /// The network knows no factory for this account kind; give one with
    /// `Network::with_factory` or the kind's `X402_AA_*_FACTORY` variable.
    #[error(
        "no {kind} factory for this network: use Network::with_factory or {}",
        super::network::factory_var(*kind)
    )]
    MissingFactory {
        /// The account kind.
        kind: AccountKind,
    },
    /// A setting's value does not parse (an address variable, an RPC URL).
    #[error("{name} = {value:?}: {reason}")]
    BadSetting {
        /// The variable or setting.
        name: String,
        /// Its value as given.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The RPC endpoint serves another chain than the network (or the session file) names:
    /// everything signed through it would be for the wrong chain.
    #[error("the RPC at {rpc_url} serves chain {got}, not {expected}")]
    WrongChain {
        /// The chain id expected.
        expected: u64,
        /// The chain id the endpoint reported.
        got: u64,
        /// The endpoint.
        rpc_url: String,
    },
    /// The account kind has no implementation of this role in the SDK yet.
    #[error("{kind} accounts cannot be used for {role} yet")]
    UnsupportedAccountKind {
        /// The account kind asked for.
        kind: AccountKind,
        /// What it was asked to do.
        role: &'static str,
    },
    /// A setting the session's grant already fixes differs from it.
    #[error("{what} {given} differs from the session's {session}: the owner's grant binds it")]
    SessionMismatch {
        /// Which setting.
        what: &'static str,
        /// The value given.
        given: Address,
        /// The session's value.
        session: Address,
    },
    /// The grant's gas lifetime budget is 0 (no self-paid op) and no paymaster URL is
    /// configured: every payment would be refused, so the client is not built.
    #[error("the grant requires a paymaster (it lets no op pay its own gas): configure one")]
    PaymasterRequired,
    /// The owner key given is not the session file's owner, so its controls would be refused.
    #[error("the key {key} is not the session's owner {owner}")]
    NotOwner {
        /// The given key's address.
        key: Address,
        /// The session's owner.
        owner: Address,
    },
    /// The account has no code and the session file has no deployment to create it with (or the
    /// kind's factory gives no counterfactual address): a revocation would do nothing. Holds the
    /// account (zero when its address could not be derived).
    #[error("session file gives no factory to deploy account {0} before revoking")]
    CannotDeploy(Address),
    /// The scopes cannot become a grant.
    #[error(transparent)]
    Scopes(#[from] ScopeError),
    /// The session file or key was refused.
    #[error(transparent)]
    SessionFile(#[from] SessionFileError),
    /// An owner control (revoke, install, deploy) failed.
    #[error(transparent)]
    Owner(#[from] OwnerError),
    /// The payment signer could not be set up.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The budget ledger could not be opened or the session registered.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The bundler or paymaster answered with an error.
    #[error("bundler / paymaster: {0}")]
    Rpc(#[from] x402_aa_rpc::RpcError),
    /// A chain read failed, or an account address could not be derived from its factory; holds
    /// the cause.
    #[error("chain rpc: {0}")]
    Chain(String),
    /// The OS gave no randomness for a grant's salt; holds the OS error.
    #[error("no OS randomness: {0}")]
    Randomness(String),
}

impl SdkError {
    /// The stable machine-readable reason; wrapped errors keep their own.
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
