//! Errors of the budget ledger. Refusals of a payment carry the numbers the SDK needs to explain them;
//! every variant has a stable [`LedgerError::reason`] string.

use std::path::PathBuf;

use alloy::primitives::B256;
use rusqlite::ErrorCode;
use x402_aa_policy::{LimitsError, ScopeViolation};

use super::types::{ReservationId, ReservationState};

/// Why the ledger refused or failed. Whatever the variant, a payment whose reservation failed must
/// not be signed; [`LedgerError::is_refusal`] tells the scopes' refusals from the rest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    // ------------------------------------------------------------ refusals of a reservation, in check order
    /// The request itself is malformed (zero amount, expiry not after `now`, time out of range).
    #[error("invalid reservation request: {detail}")]
    InvalidRequest {
        /// What is wrong with it.
        detail: &'static str,
    },
    /// The session was never registered in this ledger: call [`super::Ledger::register_session`]
    /// first (the SDK's signer does when it is given the ledger).
    #[error("unknown session {session_id}")]
    UnknownSession {
        /// The session id asked for.
        session_id: B256,
    },
    /// Outside the session's scopes: the one policy check ([`x402_aa_policy::check()`]) refused,
    /// against the ledger's tally of committed and reserved spending.
    #[error("out of scope: {0}")]
    Scope(#[from] ScopeViolation),
    /// The request hash already has a pending or committed reservation (in any session): the
    /// settlement contract settles a requestHash once, so a second payment for it could never
    /// land. Pay a new request with a fresh hash.
    #[error("request {request_hash} is already {state} as reservation {existing}")]
    DuplicateRequest {
        /// The request hash asked for again.
        request_hash: B256,
        /// The reservation that holds it.
        existing: ReservationId,
        /// That reservation's state (pending or committed).
        state: ReservationState,
    },

    // ------------------------------------------------------------ misuse of the ledger's API
    /// The limits given to [`super::Ledger::register_session`] are inconsistent (see
    /// [`LimitsError`]).
    #[error(transparent)]
    Limits(#[from] LimitsError),
    /// The session id is registered with other limits: a grant's id fixes its limits, so the
    /// caller mixed up two grants.
    #[error("session {session_id} is already registered with different limits")]
    LimitsMismatch {
        /// The session id.
        session_id: B256,
    },
    /// No reservation has this id in this ledger (another ledger's id, or a forged one).
    #[error("unknown reservation {id}")]
    UnknownReservation {
        /// The id asked for.
        id: ReservationId,
    },
    /// A committed reservation cannot be released: its payment landed and counts for good.
    #[error("reservation {id} is committed and cannot be released")]
    AlreadyCommitted {
        /// The reservation.
        id: ReservationId,
    },
    /// The reservation is committed with another transaction, op or block: one payment cannot
    /// have landed twice, so one of the two receipts is wrong.
    #[error("reservation {id} is already committed with a different settlement")]
    SettlementMismatch {
        /// The reservation.
        id: ReservationId,
    },
    /// The chain snapshot given to [`super::Ledger::reconcile`] is impossible (period spending
    /// above lifetime spending, spending by a never-enabled session, an unknown status code):
    /// it was misread; nothing was stored.
    #[error("invalid on-chain state: {detail}")]
    InvalidChainState {
        /// What is impossible about it.
        detail: String,
    },
    /// Committed plus reserved amounts exceed 2^256: only a corrupt or hostile database gets
    /// here; refused rather than wrapped.
    #[error("amount arithmetic overflowed 256 bits")]
    AmountOverflow,

    // ------------------------------------------------------------ the database
    /// The SQLite file cannot be opened or created (directory missing, no permission).
    #[error("cannot open ledger database {}: {source}", path.display())]
    CannotOpen {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Another connection held the write lock for longer than the busy timeout.
    #[error("ledger database is busy (locked by another connection)")]
    Busy(#[source] rusqlite::Error),
    /// The file is not an SQLite database, is damaged, or holds a row the ledger cannot decode.
    /// Nothing is signed against it; restore the file or start a new ledger and reconcile it
    /// from the chain.
    #[error("ledger database is corrupt: {detail}")]
    Corrupt {
        /// What could not be read.
        detail: String,
    },
    /// A valid SQLite database (or Postgres schema) that some other program owns: point the
    /// ledger at its own file or schema.
    #[error("database is not a budget ledger: {detail}")]
    NotALedger {
        /// What marks it as not the ledger's.
        detail: String,
    },
    /// The database was written by a newer build of the ledger; use that build (this one would
    /// misread it).
    #[error("ledger schema version {found} is newer than the supported version {supported}")]
    UnsupportedSchema {
        /// The schema version stored in the database.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// Any other SQLite failure (disk full, I/O error); the transaction was rolled back.
    #[error("ledger database error: {0}")]
    Database(#[source] rusqlite::Error),

    // ------------------------------------------------------------ the Postgres database
    /// The Postgres ledger could not be reached, refused the login, or its URL does not parse.
    /// `target` names host, port, database and user, never the password.
    #[error("cannot connect to the ledger database {target}: {source}")]
    CannotConnect {
        /// Host, port, database and user (never the password).
        target: String,
        /// The connection or URL error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A lock (the session's row, the schema during a migration) was held by another connection
    /// for longer than the busy timeout, or a deadlock or serialisation failure persisted through
    /// the retries.
    #[error("ledger database is busy: {0}")]
    PostgresBusy(#[source] tokio_postgres::Error),
    /// Any other Postgres failure (connection lost, permission); the transaction was rolled back.
    #[error("ledger database error: {0}")]
    Postgres(#[source] tokio_postgres::Error),
}

impl LedgerError {
    /// Stable machine-readable reason, for logs, metrics and x402 error payloads.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::UnknownSession { .. } => "unknown_session",
            Self::Scope(v) => v.reason(),
            Self::DuplicateRequest { .. } => "duplicate_request",
            Self::Limits(e) => e.reason(),
            Self::LimitsMismatch { .. } => "limits_mismatch",
            Self::UnknownReservation { .. } => "unknown_reservation",
            Self::AlreadyCommitted { .. } => "already_committed",
            Self::SettlementMismatch { .. } => "settlement_mismatch",
            Self::InvalidChainState { .. } => "invalid_chain_state",
            Self::AmountOverflow => "amount_overflow",
            Self::CannotOpen { .. } => "ledger_cannot_open",
            Self::Busy(_) => "ledger_busy",
            Self::Corrupt { .. } => "ledger_corrupt",
            Self::NotALedger { .. } => "not_a_ledger",
            Self::UnsupportedSchema { .. } => "ledger_schema_unsupported",
            Self::Database(_) => "ledger_database_error",
            Self::CannotConnect { .. } => "ledger_cannot_open",
            Self::PostgresBusy(_) => "ledger_busy",
            Self::Postgres(_) => "ledger_database_error",
        }
    }

    /// True for the refusals of a payment that the scopes (or the ledger's bookkeeping) demand, as
    /// opposed to misuse or database trouble. The SDK must not sign when [`super::Ledger::reserve`]
    /// fails for any reason; this only tells the two kinds apart for reporting.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::UnknownSession { .. } | Self::Scope(_) | Self::DuplicateRequest { .. })
    }

    pub(super) fn corrupt(detail: impl Into<String>) -> Self {
        Self::Corrupt { detail: detail.into() }
    }
}

impl From<rusqlite::Error> for LedgerError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy(err),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                Self::Corrupt { detail: err.to_string() }
            }
            _ => Self::Database(err),
        }
    }
}

impl From<tokio_postgres::Error> for LedgerError {
    fn from(err: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match err.code() {
            Some(c)
                if *c == SqlState::LOCK_NOT_AVAILABLE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                Self::PostgresBusy(err)
            }
            _ => Self::Postgres(err),
        }
    }
}
