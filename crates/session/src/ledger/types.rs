//! Values going into and coming out of the ledger.

use std::{collections::BTreeSet, fmt, time::Duration};

use alloy::primitives::{Address, B256, U256, aliases::U48};

use super::LedgerError;
use crate::{GrantWindow, MerchantTree, PeriodWindow, SessionGrant};

/// The scopes of one session as the ledger enforces them: the amount and time fields of its
/// [`SessionGrant`], and the merchant list behind its Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub per_payment_max: U256,
    pub period_cap: U256,
    /// Length of a period in seconds; `0` makes the whole grant window one period.
    pub period_seconds: u32,
    pub lifetime_cap: U256,
    /// Grant window, inclusive, unix seconds (the contract's `uint48`s).
    pub valid_after: u64,
    pub valid_until: u64,
    /// `None` = any merchant.
    pub merchants: Option<BTreeSet<Address>>,
}

impl Limits {
    /// The limits of `grant`. The grant holds only the merchant Merkle root, so the list behind it is
    /// passed in and checked against the root: with a non-zero root `merchants` must build exactly
    /// that root; with the zero root ("any merchant") an empty list keeps "any", and a non-empty list
    /// restricts the ledger further than the chain does (the SDK may always be stricter).
    pub fn from_grant(grant: &SessionGrant, merchants: &[Address]) -> Result<Self, LedgerError> {
        let root = grant.merchantRoot;
        let merchants = match (root.is_zero(), MerchantTree::new(merchants.iter().copied())) {
            (true, None) => None,
            (true, Some(tree)) => Some(tree.merchants().iter().copied().collect()),
            (false, None) => return Err(LedgerError::MerchantListRequired { root }),
            (false, Some(tree)) if tree.root() == root => {
                Some(tree.merchants().iter().copied().collect())
            }
            (false, Some(tree)) => {
                return Err(LedgerError::MerchantRootMismatch {
                    expected: root,
                    computed: tree.root(),
                });
            }
        };
        let limits = Self {
            per_payment_max: U256::from(grant.perPaymentMax),
            period_cap: U256::from(grant.periodCap),
            period_seconds: grant.period,
            lifetime_cap: U256::from(grant.lifetimeCap),
            valid_after: grant.valid_after_secs(),
            valid_until: grant.valid_until_secs(),
            merchants,
        };
        limits.validate()?;
        Ok(limits)
    }

    /// The period containing `now` (`floor((now − valid_after) / period)`, as the contract counts), or
    /// `None` outside the grant window.
    pub fn period_index_at(&self, now: u64) -> Option<u32> {
        self.window_grant()?.period_index_at(now)
    }

    /// The inclusive window in which a payment claiming `period_index` can be included on chain.
    pub fn period_window(&self, period_index: u32) -> Option<PeriodWindow> {
        self.window_grant()?.period_window(period_index)
    }

    pub fn allows_merchant(&self, merchant: Address) -> bool {
        self.merchants.as_ref().is_none_or(|set| set.contains(&merchant))
    }

    /// A grant carrying only the time fields, so period arithmetic is the one in [`GrantWindow`] that
    /// mirrors the contract, not a second copy of it.
    fn window_grant(&self) -> Option<SessionGrant> {
        Some(SessionGrant {
            validAfter: U48::try_from(self.valid_after).ok()?,
            validUntil: U48::try_from(self.valid_until).ok()?,
            period: self.period_seconds,
            ..SessionGrant::default()
        })
    }

    pub(super) fn validate(&self) -> Result<(), LedgerError> {
        let invalid = |detail| Err(LedgerError::InvalidLimits { detail });
        if self.window_grant().is_none() {
            return invalid("valid_after and valid_until must fit in 48 bits");
        }
        if self.valid_after > self.valid_until {
            return invalid("valid_after is after valid_until");
        }
        if self.merchants.as_ref().is_some_and(BTreeSet::is_empty) {
            return invalid("an empty merchant set allows nobody; use None for any merchant");
        }
        Ok(())
    }
}

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
