//! The settlement registry: one row per `(chain, requestHash)`, the facilitator's memory of
//! what it claimed, submitted and learned, so `/settle` is idempotent and a crash loses nothing.
//!
//! Row life: [`Store::claim`] inserts it `in_flight` (or takes over a retryable failure);
//! [`Store::mark_submitted`] notes that the op may have reached a bundler or the chain (from then
//! on only the chain can say how it ended); [`Store::finish`] records `settled` or `failed`.
//! Claims are atomic in the database, so two requests — or two instances on one Postgres —
//! never both submit the same requestHash.

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

use std::fmt;

use alloy::primitives::{Address, B256};

#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Where a row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Claimed by an instance that is verifying, submitting or waiting for the receipt.
    InFlight,
    /// The payment settled on chain; the row holds the answer replayed to duplicates.
    Settled,
    /// Refused or reverted; `retryable` says whether a later `/settle` may claim it again.
    Failed,
}

impl Status {
    /// The form stored in the registry and shown in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InFlight => "in_flight",
            Self::Settled => "settled",
            Self::Failed => "failed",
        }
    }

    /// The inverse of [`Status::as_str`]; `None` for a value this version does not know.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in_flight" => Some(Self::InFlight),
            "settled" => Some(Self::Settled),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One registry row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The network (EIP-155 id): one registry may serve several.
    pub chain_id: u64,
    /// The payment's key: at most one settlement per requestHash and chain.
    pub request_hash: B256,
    /// The op that pays it, to find its `UserOperationEvent` after a crash.
    pub user_op_hash: B256,
    /// The paying account (the op's sender).
    pub payer: Address,
    /// Where the row stands.
    pub status: Status,
    /// Wire reason of a failure.
    pub reason: Option<String>,
    /// Human-readable detail of a failure.
    pub message: Option<String>,
    /// A failed row a later `/settle` may claim again.
    pub retryable: bool,
    /// The op may have reached a bundler or the chain: its fate must be read from the chain.
    pub submitted: bool,
    /// Chain head when the row was claimed: where a search for the op's event starts.
    pub from_block: u64,
    /// The `handleOps` transaction, once known.
    pub tx_hash: Option<B256>,
    /// The block it landed in, once known.
    pub block_number: Option<u64>,
    /// The `SettlementResponse` JSON returned for this outcome, replayed to duplicates.
    pub response: Option<String>,
    /// Instance id of the claimant.
    pub owner: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last change (an `in_flight` row untouched for long is recovered by [`Store::unresolved`]).
    pub updated_at: i64,
}

/// What a claimant asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The network (EIP-155 id): one registry may serve several.
    pub chain_id: u64,
    /// The payment's key: at most one settlement per requestHash and chain.
    pub request_hash: B256,
    /// The op that pays it, to find its `UserOperationEvent` after a crash.
    pub user_op_hash: B256,
    /// The paying account (the op's sender).
    pub payer: Address,
    /// Chain head now: where a search for the op's event starts.
    pub from_block: u64,
    /// This instance's id.
    pub owner: String,
    /// Unix milliseconds.
    pub now_ms: i64,
}

/// Answer to [`Store::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The row is ours, `in_flight`.
    Claimed,
    /// Someone holds it, or it is final: here it is as found.
    Existing(Box<Record>),
}

/// How a claimed row ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// `Settled` or `Failed`.
    pub status: Status,
    /// Wire reason of a failure.
    pub reason: Option<String>,
    /// Human-readable detail of a failure.
    pub message: Option<String>,
    /// Whether a later `/settle` may claim the row again.
    pub retryable: bool,
    /// Whether the op may have reached the chain.
    pub submitted: bool,
    /// The `handleOps` transaction, if any.
    pub tx_hash: Option<B256>,
    /// Its block, if landed.
    pub block_number: Option<u64>,
    /// The `SettlementResponse` JSON replayed to duplicates.
    pub response: Option<String>,
    /// Unix milliseconds.
    pub now_ms: i64,
}

/// Registry failures; the facilitator answers them as `internal_error`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("registry URL {0:?} is neither sqlite:<path> nor postgres://…")]
    /// The configured registry URL has an unknown scheme.
    UnsupportedUrl(String),
    #[error("postgres registry support was not compiled in (feature `postgres`)")]
    /// A `postgres://` URL in a build without the `postgres` feature.
    PostgresDisabled,
    #[error("sqlite: {0}")]
    /// The SQLite database failed.
    Sqlite(#[from] rusqlite::Error),
    /// The Postgres server or query failed.
    #[cfg(feature = "postgres")]
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("registry row is corrupt: {0}")]
    /// A stored value does not parse (a status, hash or JSON written by something else).
    Corrupt(String),
    #[error("registry worker stopped: {0}")]
    /// The blocking task that owns the SQLite connection is gone.
    Worker(String),
}

/// The registry's operations; SQLite and Postgres implement them with the same semantics.
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Atomically: insert the row `in_flight`, or take over a `failed` row that is retryable or
    /// belongs to another op; otherwise return the row as it is.
    async fn claim(&self, claim: &Claim) -> Result<ClaimOutcome, StoreError>;
    /// Notes that the claimed op may now be on its way to the chain.
    async fn mark_submitted(
        &self,
        chain_id: u64,
        request_hash: B256,
        user_op_hash: B256,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Records the outcome of the row for `user_op_hash`, unless it is already `settled`.
    /// Returns whether a row changed.
    async fn finish(
        &self,
        chain_id: u64,
        request_hash: B256,
        user_op_hash: B256,
        finish: &Finish,
    ) -> Result<bool, StoreError>;
    /// The row of `request_hash` on `chain_id`, if any.
    async fn get(&self, chain_id: u64, request_hash: B256) -> Result<Option<Record>, StoreError>;
    /// Rows whose fate is open on `chain_id`: `in_flight` ones that are `owner`'s or were last
    /// touched before `stale_before_ms`, and submitted failures (`receipt_timeout`,
    /// `bundler_error` after a send) whose op may still land.
    async fn unresolved(
        &self,
        chain_id: u64,
        owner: &str,
        stale_before_ms: i64,
    ) -> Result<Vec<Record>, StoreError>;
    /// A cheap round trip, for `/health`.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens the registry a URL names: `sqlite:<path>`, `sqlite://<path>`, `sqlite::memory:`, or
/// `postgres://…` / `postgresql://…`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        let store =
            if path == ":memory:" { SqliteStore::in_memory()? } else { SqliteStore::open(path)? };
        return Ok(std::sync::Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(std::sync::Arc::new(PostgresStore::connect(url).await?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::PostgresDisabled);
    }
    Err(StoreError::UnsupportedUrl(redact(url)))
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A URL without its credentials, for messages.
fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_owned(),
    }
}

/// Hashes and addresses are stored as lower-case `0x` hex text in both backends, so rows can be
/// read by hand with `sqlite3`/`psql`.
pub(crate) fn hex32(b: &B256) -> String {
    format!("{b:#x}")
}

pub(crate) fn parse_b256(s: &str) -> Result<B256, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("bad hash {s:?}")))
}

pub(crate) fn parse_address(s: &str) -> Result<Address, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(format!("bad address {s:?}")))
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The schema both backends create (types chosen to mean the same in SQLite and Postgres).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS aa_settlements (
    chain_id      BIGINT  NOT NULL,
    request_hash  TEXT    NOT NULL,
    user_op_hash  TEXT    NOT NULL,
    payer         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    reason        TEXT,
    message       TEXT,
    retryable     BOOLEAN NOT NULL DEFAULT FALSE,
    submitted     BOOLEAN NOT NULL DEFAULT FALSE,
    from_block    BIGINT  NOT NULL,
    tx_hash       TEXT,
    block_number  BIGINT,
    response      TEXT,
    owner         TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (chain_id, request_hash)
);
CREATE INDEX IF NOT EXISTS aa_settlements_open ON aa_settlements (chain_id, status);
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_strings_round_trip() {
        for s in [Status::InFlight, Status::Settled, Status::Failed] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("done"), None);
    }

    #[test]
    fn urls() {
        assert_eq!(redact("postgres://u:p@host/db"), "…@host/db");
        assert_eq!(redact("mysql://host"), "mysql://host");
    }
}
