//! Errors that stop the service from starting or serving. Per-request problems are never
//! errors: they are answered as verdicts with a [`Rejection`](crate::Rejection) reason.

use crate::{config::ConfigError, store::StoreError};

/// Why the facilitator could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (which key and why).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The registry could not be opened or read.
    #[error("settlement registry: {0}")]
    Store(#[from] StoreError),
    /// A configured network's node failed a start-up check (unreachable, another chain id).
    #[error("chain eip155:{chain_id}: {message}")]
    Chain {
        /// The network's EIP-155 id.
        chain_id: u64,
        /// What failed.
        message: String,
    },
    /// Binding or serving the socket failed.
    #[error("listening socket: {0}")]
    Io(#[source] std::io::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
