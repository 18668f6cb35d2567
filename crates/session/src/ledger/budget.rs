//! The arithmetic: how much of a session's budget is used in a period and in its lifetime, given the
//! chain baseline and the local reservations. Pure functions, so the reconcile rule is tested apart
//! from SQLite.

use alloy::primitives::U256;

use super::{
    LedgerError,
    store::Baseline,
    types::{Reservation, ReservationState},
};

/// Budget used as seen at `now` for the period `period_index`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// Committed spending in the period (chain baseline + local commits after it).
    pub(super) period_committed: U256,
    /// Pending, unexpired reservations claiming the period.
    pub(super) period_reserved: U256,
    pub(super) lifetime_committed: U256,
    /// Pending, unexpired reservations of every period.
    pub(super) lifetime_reserved: U256,
    pub(super) pending_count: usize,
    pub(super) covered_commits: usize,
    pub(super) commits_after_baseline: usize,
    /// Sum of the local commits the baseline contains.
    pub(super) covered_lifetime: U256,
}

impl Usage {
    pub(super) fn period_used(&self) -> Result<U256, LedgerError> {
        add(self.period_committed, self.period_reserved)
    }

    pub(super) fn lifetime_used(&self) -> Result<U256, LedgerError> {
        add(self.lifetime_committed, self.lifetime_reserved)
    }
}

pub(super) fn add(a: U256, b: U256) -> Result<U256, LedgerError> {
    a.checked_add(b).ok_or(LedgerError::AmountOverflow)
}

/// The payments (committed, or pending and not yet lapsed at `now`) this ledger holds in the period,
/// and what they pay `merchant`: the ledger's side of the payment-count and per-merchant rules. The
/// chain's own figures for them are checked by the signer before it signs; a ledger shared by every
/// client of the session sees every payment, one per client sees its own.
pub(super) fn period_activity(
    rows: &[Reservation],
    period_index: u32,
    merchant: alloy::primitives::Address,
    now: u64,
) -> Result<(u32, U256), LedgerError> {
    let mut count = 0u32;
    let mut to_merchant = U256::ZERO;
    for r in rows.iter().filter(|r| r.period_index == period_index) {
        let live = match r.state {
            ReservationState::Committed => true,
            ReservationState::Pending => r.expires_at > now,
            _ => false,
        };
        if live {
            count = count.saturating_add(1);
            if r.merchant == merchant {
                to_merchant = add(to_merchant, r.amount)?;
            }
        }
    }
    Ok((count, to_merchant))
}

/// Whether the chain snapshot `baseline` already contains the committed reservation `r`: it landed in
/// a block the snapshot was read at or after, in a period the snapshot has reached. (A commit "covered"
/// by block but in a later period than the snapshot's is impossible on chain; it is then counted on
/// top, the safe side.)
pub(super) fn is_covered(r: &Reservation, baseline: Option<&Baseline>) -> bool {
    match (baseline, &r.settlement) {
        (Some(b), Some(s)) => s.block_number <= b.block && r.period_index <= b.period_index,
        _ => false,
    }
}

/// The reconcile rule (see the module docs):
/// committed = max(chain figure, covered local commits) + local commits after the baseline;
/// reserved = pending reservations with `expires_at > now`.
pub(super) fn tally(
    rows: &[Reservation],
    baseline: Option<&Baseline>,
    period_index: u32,
    now: u64,
) -> Result<Usage, LedgerError> {
    let mut usage = Usage::default();
    let (mut covered_period, mut after_period, mut after_lifetime) =
        (U256::ZERO, U256::ZERO, U256::ZERO);
    for r in rows {
        let in_period = r.period_index == period_index;
        match r.state {
            ReservationState::Pending if r.expires_at > now => {
                usage.pending_count += 1;
                usage.lifetime_reserved = add(usage.lifetime_reserved, r.amount)?;
                if in_period {
                    usage.period_reserved = add(usage.period_reserved, r.amount)?;
                }
            }
            ReservationState::Committed if is_covered(r, baseline) => {
                usage.covered_commits += 1;
                usage.covered_lifetime = add(usage.covered_lifetime, r.amount)?;
                if in_period {
                    covered_period = add(covered_period, r.amount)?;
                }
            }
            ReservationState::Committed => {
                usage.commits_after_baseline += 1;
                after_lifetime = add(after_lifetime, r.amount)?;
                if in_period {
                    after_period = add(after_period, r.amount)?;
                }
            }
            _ => {}
        }
    }
    let (chain_period, chain_lifetime) = match baseline {
        Some(b) if b.period_index == period_index => (b.period_spent, b.lifetime_spent),
        // The chain's counter restarts at zero in any later period.
        Some(b) => (U256::ZERO, b.lifetime_spent),
        None => (U256::ZERO, U256::ZERO),
    };
    usage.period_committed = add(chain_period.max(covered_period), after_period)?;
    usage.lifetime_committed = add(chain_lifetime.max(usage.covered_lifetime), after_lifetime)?;
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Address, B256};

    use super::*;
    use crate::ledger::types::{ReservationId, SettlementRecord};

    fn row(
        id: i64,
        amount: u64,
        period: u32,
        state: ReservationState,
        block: Option<u64>,
    ) -> Reservation {
        Reservation {
            id: ReservationId(id),
            session_id: B256::ZERO,
            merchant: Address::ZERO,
            amount: U256::from(amount),
            request_hash: B256::with_last_byte(u8::try_from(id).unwrap_or(0)),
            period_index: period,
            state,
            created_at: 0,
            expires_at: 100,
            settlement: block.map(|b| SettlementRecord {
                tx_hash: B256::ZERO,
                user_op_hash: B256::ZERO,
                block_number: b,
            }),
            release_reason: None,
        }
    }

    fn baseline(block: u64, period: u32, period_spent: u64, lifetime_spent: u64) -> Baseline {
        Baseline {
            block,
            period_index: period,
            period_spent: U256::from(period_spent),
            lifetime_spent: U256::from(lifetime_spent),
        }
    }

    const C: ReservationState = ReservationState::Committed;
    const P: ReservationState = ReservationState::Pending;

    #[test]
    fn without_baseline_everything_local_counts() {
        let rows = [row(1, 10, 0, C, Some(5)), row(2, 7, 1, C, Some(9)), row(3, 3, 1, P, None)];
        let u = tally(&rows, None, 1, 50).unwrap();
        assert_eq!(u.period_committed, U256::from(7));
        assert_eq!(u.period_reserved, U256::from(3));
        assert_eq!(u.lifetime_committed, U256::from(17));
        assert_eq!(u.lifetime_reserved, U256::from(3));
        assert_eq!((u.covered_commits, u.commits_after_baseline, u.pending_count), (0, 2, 1));
    }

    #[test]
    fn covered_commits_are_not_counted_twice() {
        // Chain at block 10 says 30 spent in period 1, 45 in life; local commits at blocks 5 and 9
        // are inside those figures (the remaining 15 was paid by some other client of the session).
        let rows =
            [row(1, 10, 0, C, Some(5)), row(2, 20, 1, C, Some(9)), row(3, 4, 1, C, Some(11))];
        let b = baseline(10, 1, 30, 45);
        let u = tally(&rows, Some(&b), 1, 50).unwrap();
        assert_eq!(u.period_committed, U256::from(34));
        assert_eq!(u.lifetime_committed, U256::from(49));
        assert_eq!((u.covered_commits, u.commits_after_baseline), (2, 1));
    }

    #[test]
    fn never_below_the_local_receipts() {
        // The chain "forgot" 10 of the local commits (reorg or wrong block): keep the local figure.
        let rows = [row(1, 25, 1, C, Some(5)), row(2, 15, 1, C, Some(6))];
        let b = baseline(10, 1, 30, 30);
        let u = tally(&rows, Some(&b), 1, 50).unwrap();
        assert_eq!(u.period_committed, U256::from(40));
        assert_eq!(u.lifetime_committed, U256::from(40));
    }

    #[test]
    fn a_later_period_starts_from_zero_but_keeps_lifetime() {
        let rows = [row(1, 25, 1, C, Some(5))];
        let b = baseline(10, 1, 25, 60);
        let u = tally(&rows, Some(&b), 2, 50).unwrap();
        assert_eq!(u.period_committed, U256::ZERO);
        assert_eq!(u.lifetime_committed, U256::from(60));
    }

    #[test]
    fn a_commit_in_a_period_the_snapshot_has_not_reached_counts_on_top() {
        let rows = [row(1, 5, 2, C, Some(8))];
        let b = baseline(10, 1, 25, 60);
        assert!(!is_covered(&rows[0], Some(&b)));
        let u = tally(&rows, Some(&b), 2, 50).unwrap();
        assert_eq!(u.period_committed, U256::from(5));
        assert_eq!(u.lifetime_committed, U256::from(65));
    }

    #[test]
    fn expired_and_released_do_not_count() {
        let mut late = row(1, 10, 0, P, None);
        late.expires_at = 50;
        let rows = [
            late,
            row(2, 10, 0, ReservationState::Released, None),
            row(3, 10, 0, ReservationState::Expired, None),
        ];
        let u = tally(&rows, None, 0, 50).unwrap();
        assert_eq!(u, Usage::default());
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let mut a = row(1, 0, 0, P, None);
        a.amount = U256::MAX;
        let mut b = row(2, 0, 0, P, None);
        b.amount = U256::from(1);
        assert!(matches!(tally(&[a, b], None, 0, 0), Err(LedgerError::AmountOverflow)));
    }
}
