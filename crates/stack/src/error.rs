//! What can go wrong starting the stack or setting up a session account: the underlying crates'
//! errors, named by the step that failed.

use x402_aa_session::{SessionFileError, owner::OwnerError, scopes::ScopeError};

/// Why the stack could not start or stop, or a session account could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// A devnet call failed: minting, funding, sending a transaction or reading a block.
    #[error("devnet: {0}")]
    Devnet(#[from] x402_aa_devnet::Error),
    /// The paymaster service refused its configuration, could not bind, or failed to stop.
    #[error("paymaster service: {0}")]
    Paymaster(#[from] x402_aa_paymaster::Error),
    /// The facilitator refused its configuration or could not start.
    #[error("facilitator: {0}")]
    Facilitator(#[from] x402_aa_facilitator::Error),
    /// The paid API's price tags or facilitator URL were refused (a bad price in
    /// [`StackOptions`](crate::StackOptions)).
    #[error("paid API: {0}")]
    Paywall(#[from] x402_aa_paywall::PaywallError),
    /// A local file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The step, in words (`"paid API listener"`, `"registry directory"`, …).
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A call to the SessionKeyAccountFactory or SimpleAccountFactory (`getAddress`) failed.
    #[error("session account factory: {0}")]
    Factory(#[from] alloy::contract::Error),
    /// The scopes cannot become a grant.
    #[error("grant scopes: {0}")]
    Scopes(#[from] ScopeError),
    /// The owner could not sign the grant.
    #[error("signing the grant: {0}")]
    Grant(#[from] OwnerError),
    /// Deploying a Safe or installing the session module in it.
    #[error("Safe session setup: {0}")]
    SafeSetup(String),
    /// The session file built from the grant does not validate.
    #[error("session file: {0}")]
    SessionFile(#[from] SessionFileError),
    /// Deploying a Kernel account or installing the session validator in it.
    #[error("Kernel session setup: {0}")]
    KernelSetup(String),
    /// Deploying a Biconomy account or enabling the session module in it.
    #[error("Biconomy session setup: {0}")]
    BiconomySetup(String),
}

impl StackError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}
