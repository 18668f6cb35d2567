//! One error type; each variant knows the HTTP status the page gets, and its message is what the
//! owner reads there.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// Why a console action or start-up failed; the message is written for the owner to read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The owner's input cannot become what was asked (a bad amount, an empty justification).
    #[error("{0}")]
    BadInput(String),
    /// The request is well formed but the chain's state forbids it (pausing a revoked session).
    #[error("{0}")]
    Conflict(String),
    /// The page named a session, account or grant preview this console does not have (HTTP 404);
    /// reload the page or preview again.
    #[error("{0}")]
    NotFound(String),
    /// The console lacks a setting the action needs (no owner key, no relayer key).
    #[error("{0}")]
    NotConfigured(String),
    /// The RPC node failed or answered unexpectedly (HTTP 502); the action may succeed once the
    /// node is reachable again.
    #[error("chain: {0}")]
    Chain(String),
    /// Reading or writing the console's files, or running its listener, failed (HTTP 500).
    #[error("{what}: {source}")]
    Io {
        /// Which file or socket, in words.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl ConsoleError {
    pub(crate) fn chain(e: impl std::fmt::Display) -> Self {
        Self::Chain(e.to_string())
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadInput(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::NotConfigured(_) => StatusCode::PRECONDITION_FAILED,
            Self::Chain(_) => StatusCode::BAD_GATEWAY,
            Self::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<x402_aa_session::scopes::ScopeError> for ConsoleError {
    fn from(e: x402_aa_session::scopes::ScopeError) -> Self {
        Self::BadInput(e.to_string())
    }
}

impl From<x402_aa_session::owner::OwnerError> for ConsoleError {
    fn from(e: x402_aa_session::owner::OwnerError) -> Self {
        use x402_aa_session::owner::OwnerError;
        match e {
            OwnerError::Reverted(_) | OwnerError::WouldRevert(_) | OwnerError::NotDeployed(_) => {
                Self::Conflict(e.to_string())
            }
            other => Self::Chain(other.to_string()),
        }
    }
}

impl From<x402_aa_session::SessionFileError> for ConsoleError {
    fn from(e: x402_aa_session::SessionFileError) -> Self {
        Self::BadInput(e.to_string())
    }
}

/// The page shows `error` as it is.
impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        (self.status(), Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}
