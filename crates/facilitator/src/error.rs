//! Errors that stop the service from starting or serving. Per-request problems are never
//! errors: they are answered as verdicts with a [`Rejection`](crate::Rejection) reason.

use crate::{config::ConfigError, store::StoreError};

/// Why the facilitator could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("settlement registry: {0}")]
    Store(#[from] StoreError),
    #[error("chain eip155:{chain_id}: {message}")]
    Chain { chain_id: u64, message: String },
    #[error("listening socket: {0}")]
    Io(#[source] std::io::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
