//! What can go wrong starting the stack or setting up a session account: the underlying crates'
//! errors, named by the step that failed.

use x402_aa_session::{SessionFileError, owner::OwnerError, scopes::ScopeError};

/// Why the stack could not start or stop, or a session account could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    #[error("devnet: {0}")]
    Devnet(#[from] x402_aa_devnet::Error),
    #[error("paymaster service: {0}")]
    Paymaster(#[from] x402_aa_paymaster::Error),
    #[error("facilitator: {0}")]
    Facilitator(#[from] x402_aa_facilitator::Error),
    #[error("paid API: {0}")]
    Paywall(#[from] x402_aa_paywall::PaywallError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("session account factory: {0}")]
    Factory(#[from] alloy::contract::Error),
    #[error("grant scopes: {0}")]
    Scopes(#[from] ScopeError),
    #[error("signing the grant: {0}")]
    Grant(#[from] OwnerError),
    #[error("session file: {0}")]
    SessionFile(#[from] SessionFileError),
    /// Deploying a Kernel account or installing the session validator in it.
    #[error("Kernel session setup: {0}")]
    KernelSetup(String),
}

impl StackError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}
