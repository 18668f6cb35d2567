//! Values going into and coming out of the ledger.

use std::{fmt, time::Duration};

use alloy::primitives::{Address, B256, U256};

use super::LedgerError;
pub use x402_aa_policy::Limits;

/// One payment the agent wants to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    pub merchant: Address,
    pub amount: U256,
    /// The x402 request hash the payment settles (`settle(.., requestHash)`); one live reservation
    /// per hash.
    pub request_hash: B256,
    /// Current unix time, seconds.
    pub now: u64,
    /// When the reservation lapses if neither committed nor released. The ledger shortens it to the
    /// end of the claimed period, after which the signed op can no longer be included.
    pub expires_at: u64,
}

/// Row id of a reservation; never reused within one ledger file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReservationId(pub(super) i64);

impl ReservationId {
    /// An id as previously returned by [`ReservationId::get`] (e.g. kept in the SDK's own state).
    pub fn new(id: i64) -> Self {
        Self(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Life of a reservation: `pending` counts against the caps until it is `committed` (the payment
/// landed; counts for good), `released` (the caller gave it up) or `expired` (it lapsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReservationState {
    Pending,
    Committed,
    Released,
    Expired,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "committed" => Self::Committed,
            "released" => Self::Released,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

impl fmt::Display for ReservationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Proof that a reserved payment landed: the bundle transaction, the UserOp and the block that
/// included it. The block number is what lets [`super::Ledger::reconcile`] tell whether a chain
/// snapshot already contains this payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementRecord {
    pub tx_hash: B256,
    pub user_op_hash: B256,
    pub block_number: u64,
}

/// A reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reservation {
    pub id: ReservationId,
    pub session_id: B256,
    pub merchant: Address,
    pub amount: U256,
    pub request_hash: B256,
    /// The period the payment must claim in its session signature.
    pub period_index: u32,
    pub state: ReservationState,
    pub created_at: u64,
    pub expires_at: u64,
    pub settlement: Option<SettlementRecord>,
    pub release_reason: Option<String>,
}

/// `status` of the account's `sessionState(id)` view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainSessionStatus {
    /// 0: never enabled (no payment yet).
    NotEnabled,
    /// 1: enabled by its first payment.
    Enabled,
    /// 2: revoked; nothing more can be spent.
    Revoked,
}

impl TryFrom<u8> for ChainSessionStatus {
    type Error = LedgerError;

    fn try_from(value: u8) -> Result<Self, LedgerError> {
        match value {
            0 => Ok(Self::NotEnabled),
            1 => Ok(Self::Enabled),
            2 => Ok(Self::Revoked),
            other => Err(LedgerError::InvalidChainState {
                detail: format!("unknown session status {other}"),
            }),
        }
    }
}

/// The account's `sessionState(id)` as read at `block_number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnChainState {
    /// The block the view was read at (`eth_call` at a fixed block number, not "latest" read blind).
    pub block_number: u64,
    pub status: ChainSessionStatus,
    /// The period the contract's counter belongs to; its `period_spent` is zero for any later period.
    pub period_index: u32,
    pub period_spent: U256,
    pub lifetime_spent: U256,
}

/// What a reservation made now could still use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Remaining {
    pub period_index: u32,
    pub period_remaining: U256,
    pub lifetime_remaining: U256,
    /// Sum of the pending (unexpired) reservations, all periods.
    pub reserved_in_flight: U256,
    pub pending_count: usize,
    /// The largest single payment `reserve` would accept now (ignoring merchant and duplicates).
    pub spendable_now: U256,
    pub revoked: bool,
}

/// Whether [`super::Ledger::reconcile`] took the snapshot as the new baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconcileOutcome {
    /// The snapshot is the new baseline.
    Applied,
    /// The stored baseline was read at a later block; the snapshot was ignored (except a revocation,
    /// which is final).
    Stale { baseline_block: u64 },
}

/// What [`super::Ledger::reconcile`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileReport {
    pub outcome: ReconcileOutcome,
    /// Local commits the baseline already contains (block ≤ baseline block).
    pub covered_commits: usize,
    /// Local commits from later blocks, counted on top of the baseline.
    pub commits_after_baseline: usize,
    /// Pending reservations kept (they may still land, or may have landed uncommitted).
    pub pending_kept: usize,
    /// How much the covered local commits exceed the chain's lifetime figure. Non-zero means the chain
    /// "forgot" a payment the ledger holds a receipt for (reorg, or a snapshot from the wrong block):
    /// the ledger keeps counting its own figure, never the lower one.
    pub local_ahead_by: U256,
    pub revoked: bool,
}

/// Options for [`super::Ledger::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerOptions {
    /// How long an operation waits for another connection's write lock before failing with
    /// [`LedgerError::Busy`].
    pub busy_timeout: Duration,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5) }
    }
}

impl LedgerOptions {
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
}
