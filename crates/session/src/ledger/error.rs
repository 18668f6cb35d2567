//! Errors of the budget ledger. Refusals of a payment carry the numbers the SDK needs to explain them;
//! every variant has a stable [`LedgerError::reason`] string.

use std::path::PathBuf;

use alloy::primitives::{Address, B256, U256};
use rusqlite::ErrorCode;

use super::types::{ReservationId, ReservationState};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    // ------------------------------------------------------------ refusals of a reservation, in check order
    /// The request itself is malformed (zero amount, expiry not after `now`, time out of range).
    #[error("invalid reservation request: {detail}")]
    InvalidRequest { detail: &'static str },
    #[error("unknown session {session_id}")]
    UnknownSession { session_id: B256 },
    #[error("session {session_id} is revoked")]
    SessionRevoked { session_id: B256 },
    #[error("session not yet valid: valid from {valid_after}, now {now}")]
    SessionNotYetValid { valid_after: u64, now: u64 },
    #[error("session expired: valid until {valid_until}, now {now}")]
    SessionExpired { valid_until: u64, now: u64 },
    #[error("merchant {merchant} is not on the session's allowlist")]
    MerchantNotAllowed { merchant: Address },
    #[error("amount {amount} exceeds the per-payment maximum {max}")]
    PerPaymentMaxExceeded { amount: U256, max: U256 },
    /// The chain already charges a later period than the one `now` falls in (the local clock is behind
    /// the chain's); the account contract refuses such a payment (`session: period already over`).
    #[error(
        "period {period_index} is already over on chain (chain is in period {chain_period_index})"
    )]
    PeriodAlreadyOver { period_index: u32, chain_period_index: u32 },
    #[error(
        "period cap exceeded in period {period_index}: {requested} requested, {remaining} remaining"
    )]
    SpendCapExceeded { period_index: u32, requested: U256, remaining: U256 },
    #[error("lifetime cap exceeded: {requested} requested, {remaining} remaining")]
    LifetimeCapExceeded { requested: U256, remaining: U256 },
    #[error("request {request_hash} is already {state} as reservation {existing}")]
    DuplicateRequest { request_hash: B256, existing: ReservationId, state: ReservationState },

    // ------------------------------------------------------------ misuse of the ledger's API
    #[error("invalid limits: {detail}")]
    InvalidLimits { detail: &'static str },
    #[error("the grant restricts merchants (root {root}) but no merchant list was given")]
    MerchantListRequired { root: B256 },
    #[error("the merchant list has root {computed}, the grant has {expected}")]
    MerchantRootMismatch { expected: B256, computed: B256 },
    #[error("session {session_id} is already registered with different limits")]
    LimitsMismatch { session_id: B256 },
    #[error("unknown reservation {id}")]
    UnknownReservation { id: ReservationId },
    #[error("reservation {id} is committed and cannot be released")]
    AlreadyCommitted { id: ReservationId },
    #[error("reservation {id} is already committed with a different settlement")]
    SettlementMismatch { id: ReservationId },
    #[error("invalid on-chain state: {detail}")]
    InvalidChainState { detail: String },
    #[error("amount arithmetic overflowed 256 bits")]
    AmountOverflow,

    // ------------------------------------------------------------ the database
    #[error("cannot open ledger database {}: {source}", path.display())]
    CannotOpen {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Another connection held the write lock for longer than the busy timeout.
    #[error("ledger database is busy (locked by another connection)")]
    Busy(#[source] rusqlite::Error),
    /// The file is not an SQLite database, is damaged, or holds a row the ledger cannot decode.
    #[error("ledger database is corrupt: {detail}")]
    Corrupt { detail: String },
    /// A valid SQLite database that some other program owns.
    #[error("database is not a budget ledger: {detail}")]
    NotALedger { detail: String },
    #[error("ledger schema version {found} is newer than the supported version {supported}")]
    UnsupportedSchema { found: i64, supported: i64 },
    #[error("ledger database error: {0}")]
    Database(#[source] rusqlite::Error),
}

impl LedgerError {
    /// Stable machine-readable reason, for logs, metrics and x402 error payloads.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::UnknownSession { .. } => "unknown_session",
            Self::SessionRevoked { .. } => "session_revoked",
            Self::SessionNotYetValid { .. } => "session_not_yet_valid",
            Self::SessionExpired { .. } => "session_expired",
            Self::MerchantNotAllowed { .. } => "merchant_not_allowed",
            Self::PerPaymentMaxExceeded { .. } => "per_payment_max_exceeded",
            Self::PeriodAlreadyOver { .. } => "period_already_over",
            Self::SpendCapExceeded { .. } => "spend_cap_exceeded",
            Self::LifetimeCapExceeded { .. } => "lifetime_cap_exceeded",
            Self::DuplicateRequest { .. } => "duplicate_request",
            Self::InvalidLimits { .. } => "invalid_limits",
            Self::MerchantListRequired { .. } => "merchant_list_required",
            Self::MerchantRootMismatch { .. } => "merchant_root_mismatch",
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
        }
    }

    /// True for the refusals of a payment that the scopes (or the ledger's bookkeeping) demand, as
    /// opposed to misuse or database trouble. The SDK must not sign when [`super::Ledger::reserve`]
    /// fails for any reason; this only tells the two kinds apart for reporting.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::UnknownSession { .. }
                | Self::SessionRevoked { .. }
                | Self::SessionNotYetValid { .. }
                | Self::SessionExpired { .. }
                | Self::MerchantNotAllowed { .. }
                | Self::PerPaymentMaxExceeded { .. }
                | Self::PeriodAlreadyOver { .. }
                | Self::SpendCapExceeded { .. }
                | Self::LifetimeCapExceeded { .. }
                | Self::DuplicateRequest { .. }
        )
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
