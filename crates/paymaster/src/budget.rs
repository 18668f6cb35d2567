//! Sponsorship budgets per account and per session ([`SponsorLimits`]): what each approval is
//! charged, and the refusal once a period's budget is spent.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use alloy::primitives::{Address, B256, U256};

use crate::{
    PolicyViolation,
    config::{Budget, SponsorLimits},
    error::{LimitKind, LimitScope},
};

/// Above this many tracked accounts and sessions, those idle in the current period are dropped
/// so the map cannot grow without bound.
const PRUNE_ABOVE: usize = 4096;

#[derive(Debug)]
pub(crate) struct Budgets {
    limits: SponsorLimits,
    used: Mutex<HashMap<Key, Usage>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Account(Address),
    Session(B256),
}

#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    period: u64,
    ops: u64,
    wei: U256,
}

impl Budgets {
    /// `limits.period_seconds` must be positive ([`crate::PaymasterService::new`] checks).
    pub(crate) fn new(limits: SponsorLimits) -> Self {
        Self { limits, used: Mutex::default() }
    }

    /// Refuses, without charging, an op costing at most `wei` that the budgets of `account` and
    /// `session` could not take now: the cheap check before the node is asked anything.
    pub(crate) fn check(
        &self,
        account: Address,
        session: Option<B256>,
        wei: U256,
        now: u64,
    ) -> Result<(), PolicyViolation> {
        let used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        self.admit(&used, account, session, wei, now).map(|_| ())
    }

    /// Charges one op costing at most `wei` to `account` and, for a session op, to `session`, at
    /// chain time `now`; refuses without charging anything if either budget would be exceeded.
    pub(crate) fn charge(
        &self,
        account: Address,
        session: Option<B256>,
        wei: U256,
        now: u64,
    ) -> Result<(), PolicyViolation> {
        // Every update below is a whole-value write, so a panic elsewhere leaves it consistent.
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        let period = self.admit(&used, account, session, wei, now)?;
        if used.len() > PRUNE_ABOVE {
            used.retain(|_, u| u.period == period);
        }
        let keys = std::iter::once(Key::Account(account)).chain(session.map(Key::Session));
        for key in keys {
            let usage = current(used.get(&key), period);
            used.insert(
                key,
                Usage { period, ops: usage.ops + 1, wei: usage.wei.saturating_add(wei) },
            );
        }
        Ok(())
    }

    /// The current period if both budgets take one more op costing `wei`.
    fn admit(
        &self,
        used: &HashMap<Key, Usage>,
        account: Address,
        session: Option<B256>,
        wei: U256,
        now: u64,
    ) -> Result<u64, PolicyViolation> {
        let seconds = self.limits.period_seconds.max(1);
        let period = now / seconds;
        let retry_after_secs = (period + 1).saturating_mul(seconds).saturating_sub(now).max(1);
        let account = (Key::Account(account), LimitScope::Account, self.limits.per_account);
        let session =
            session.map(|s| (Key::Session(s), LimitScope::Session, self.limits.per_session));
        for (key, scope, budget) in std::iter::once(account).chain(session) {
            let usage = current(used.get(&key), period);
            admit(usage, budget, wei).map_err(|(kind, limit, used, requested)| {
                PolicyViolation::LimitReached {
                    scope,
                    kind,
                    limit,
                    used,
                    requested,
                    retry_after_secs,
                }
            })?;
        }
        Ok(period)
    }
}

/// The usage recorded for the current period (an older period's counts no longer apply).
fn current(usage: Option<&Usage>, period: u64) -> Usage {
    match usage {
        Some(u) if u.period == period => *u,
        _ => Usage { period, ..Usage::default() },
    }
}

/// `Err((kind, limit, used, requested))` if one more op costing `wei` does not fit `budget`.
fn admit(usage: Usage, budget: Budget, wei: U256) -> Result<(), (LimitKind, U256, U256, U256)> {
    if let Some(max) = budget.max_ops
        && usage.ops >= max
    {
        return Err((LimitKind::Ops, U256::from(max), U256::from(usage.ops), U256::from(1)));
    }
    if let Some(max) = budget.max_wei
        && usage.wei.saturating_add(wei) > max
    {
        return Err((LimitKind::Wei, max, usage.wei, wei));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(account: Budget, session: Budget) -> SponsorLimits {
        SponsorLimits { period_seconds: 100, per_account: account, per_session: session }
    }

    #[test]
    fn ops_and_wei_per_account_and_session() {
        let account = Address::repeat_byte(1);
        let (s1, s2) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let budgets = Budgets::new(limits(
            Budget { max_ops: Some(3), max_wei: Some(U256::from(1000)) },
            Budget { max_ops: Some(2), max_wei: None },
        ));
        let w = U256::from(100);
        assert!(budgets.charge(account, Some(s1), w, 1_000).is_ok());
        assert!(budgets.charge(account, Some(s1), w, 1_001).is_ok());
        let err = budgets.charge(account, Some(s1), w, 1_030).unwrap_err();
        assert_eq!(err.reason(), "session_ops_limit");
        assert_eq!(err.retry_after_secs(), Some(70));
        // Another session of the account still has room, until the account's budget is spent.
        assert!(budgets.charge(account, Some(s2), w, 1_002).is_ok());
        let err = budgets.charge(account, Some(s2), w, 1_003).unwrap_err();
        assert_eq!(err.reason(), "account_ops_limit");
        // An owner op (no session) is charged to the account only, and the account is full.
        assert_eq!(
            budgets.charge(account, None, w, 1_004).unwrap_err().reason(),
            "account_ops_limit"
        );
        // A refused op charged nothing; the next period starts afresh.
        assert!(budgets.charge(account, Some(s1), w, 1_100).is_ok());

        let budgets = Budgets::new(limits(
            Budget { max_ops: None, max_wei: Some(U256::from(250)) },
            Budget::UNLIMITED,
        ));
        assert!(budgets.charge(account, None, w, 0).is_ok());
        assert!(budgets.charge(account, None, w, 0).is_ok());
        match budgets.charge(account, None, w, 0).unwrap_err() {
            PolicyViolation::LimitReached { kind, limit, used, requested, .. } => {
                assert_eq!(kind, LimitKind::Wei);
                assert_eq!((limit, used, requested), (U256::from(250), U256::from(200), w));
            }
            other => panic!("{other:?}"),
        }
        assert!(budgets.charge(account, None, U256::from(50), 0).is_ok());
        assert!(budgets.charge(Address::repeat_byte(2), None, w, 0).is_ok(), "per account");
    }

    #[test]
    fn the_check_refuses_what_charging_would() {
        let account = Address::repeat_byte(1);
        let budgets = Budgets::new(limits(
            Budget { max_ops: Some(1), max_wei: Some(U256::from(100)) },
            Budget { max_ops: Some(1), max_wei: None },
        ));
        assert_eq!(budgets.check(account, Some(B256::ZERO), U256::from(100), 5), Ok(()));
        assert_eq!(budgets.charge(account, Some(B256::ZERO), U256::from(100), 5), Ok(()));
        assert!(budgets.check(account, None, U256::from(1), 5).is_err(), "check agrees");
        assert!(budgets.charge(account, None, U256::from(1), 5).is_err());
        assert!(budgets.check(account, None, U256::from(1), 105).is_ok(), "next period");
    }

    #[test]
    fn huge_costs_saturate_and_are_refused() {
        let budgets = Budgets::new(limits(
            Budget { max_ops: None, max_wei: Some(U256::from(10)) },
            Budget::UNLIMITED,
        ));
        let err = budgets.charge(Address::ZERO, None, U256::MAX, 0).unwrap_err();
        assert_eq!(err.reason(), "account_wei_limit");
    }
}
