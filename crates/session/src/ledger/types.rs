//! Values going into and coming out of the ledger.

use std::{fmt, time::Duration};

use alloy::primitives::{Address, B256, U256};

use super::LedgerError;
pub use x402_aa_policy::Limits;

/// One payment the agent wants to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRequest {
    /// Who the payment pays: checked against the allowlist and the per-merchant cap.
    pub merchant: Address,
    /// The payment in the token's atomic units; must be non-zero.
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

    /// The row id, to keep outside the ledger and give back to [`ReservationId::new`].
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
    /// Reserved, outcome not known yet: counts against the caps until its `expires_at`.
    Pending,
    /// The payment landed (a receipt was recorded): counts for good.
    Committed,
    /// Given up by the caller: counts no more.
    Released,
    /// Lapsed at its `expires_at` without a commit: counts no more (a later receipt still
    /// commits it).
    Expired,
}

impl ReservationState {
    /// The lower-case name stored in the database and shown in messages.
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
    /// The transaction that included the op (the bundle's `handleOps`).
    pub tx_hash: B256,
    /// The paying op's userOpHash.
    pub user_op_hash: B256,
    /// The block that included it.
    pub block_number: u64,
}

/// A reservation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reservation {
    /// Its id, for [`super::Ledger::commit`] and [`super::Ledger::release`].
    pub id: ReservationId,
    /// The session it counts against.
    pub session_id: B256,
    /// The merchant it pays.
    pub merchant: Address,
    /// The amount it holds (token atomic units).
    pub amount: U256,
    /// The request hash the signed payment must carry.
    pub request_hash: B256,
    /// The period the payment must claim in its session signature.
    pub period_index: u32,
    /// Where it stands.
    pub state: ReservationState,
    /// The request's `now` when it was reserved (unix s).
    pub created_at: u64,
    /// When it lapses if neither committed nor released (unix s): the request's, capped at the
    /// end of the claimed period.
    pub expires_at: u64,
    /// The receipt; `Some` exactly when committed.
    pub settlement: Option<SettlementRecord>,
    /// The caller's reason when released (e.g. the signer's error reason); `None` otherwise.
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
    /// The view's `status`; a revoked session is marked revoked in the ledger for good.
    pub status: ChainSessionStatus,
    /// The period the contract's counter belongs to; its `period_spent` is zero for any later period.
    pub period_index: u32,
    /// Spent in `period_index` (token atomic units).
    pub period_spent: U256,
    /// Spent over the session's life (token atomic units); never below `period_spent`.
    pub lifetime_spent: U256,
}

/// What a reservation made now could still use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Remaining {
    /// The period containing the `now` asked about.
    pub period_index: u32,
    /// The period cap minus what is committed and reserved in that period (token atomic units).
    pub period_remaining: U256,
    /// The lifetime cap minus what is committed and reserved overall (token atomic units).
    pub lifetime_remaining: U256,
    /// Sum of the pending (unexpired) reservations, all periods.
    pub reserved_in_flight: U256,
    /// How many reservations are pending (unexpired).
    pub pending_count: usize,
    /// The largest single payment `reserve` would accept now (ignoring merchant and duplicates).
    pub spendable_now: U256,
    /// Whether the ledger holds the session as revoked (then `spendable_now` is 0).
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
    Stale {
        /// The block the stored baseline was read at.
        baseline_block: u64,
    },
}

/// What [`super::Ledger::reconcile`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// Whether the snapshot became the baseline.
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
    /// Whether the session is revoked now (by this snapshot or before).
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
    /// Sets [`LedgerOptions::busy_timeout`] (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
}
