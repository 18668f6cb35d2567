//! The sponsorship decision: which gas values get signed, whether the op may be sponsored, and
//! how often a sender may ask.

use std::{
    collections::{HashMap, VecDeque},
    num::NonZeroU32,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolCall;
use x402_aa::{
    UserOperation,
    accounts::{AccountKind, biconomy, kernel, safe},
};

use crate::{PolicyViolation, SponsorPolicy};

/// The op with the gas values the paymaster will sign and return: everything echoed, except a
/// `verificationGasLimit` below the policy's floor, which is raised to it.
pub(crate) fn apply_gas_floor(op: &UserOperation, policy: &SponsorPolicy) -> UserOperation {
    let mut op = op.clone();
    op.verification_gas_limit =
        op.verification_gas_limit.max(U256::from(policy.min_verification_gas_limit));
    op
}

/// Checks `op` (with its final gas values) against `policy`, in the order the policy documents.
pub(crate) fn check(op: &UserOperation, policy: &SponsorPolicy) -> Result<(), PolicyViolation> {
    if let Some(allowed) = &policy.allowed_senders
        && !allowed.contains(&op.sender)
    {
        return Err(PolicyViolation::SenderNotAllowed(op.sender));
    }
    if let Some(allowed) = &policy.allowed_targets {
        for target in call_targets(&policy.account_kinds, &op.call_data)? {
            if !allowed.contains(&target) {
                return Err(PolicyViolation::TargetNotAllowed(target));
            }
        }
    }
    if !policy.sponsor_non_payments
        && !op.call_data.is_empty()
        && payment_of(&policy.account_kinds, op).is_none()
    {
        return Err(PolicyViolation::NotAPayment);
    }
    let total = op
        .call_gas_limit
        .saturating_add(op.verification_gas_limit)
        .saturating_add(op.pre_verification_gas);
    if total > U256::from(policy.max_gas_per_op) {
        return Err(PolicyViolation::GasTooHigh { total, max: policy.max_gas_per_op });
    }
    if op.pre_verification_gas > U256::from(policy.max_pre_verification_gas) {
        return Err(PolicyViolation::PreVerificationGasTooHigh {
            pre_verification_gas: op.pre_verification_gas,
            cap: policy.max_pre_verification_gas,
        });
    }
    if op.max_fee_per_gas > U256::from(policy.max_fee_per_gas) {
        return Err(PolicyViolation::FeeTooHigh {
            max_fee_per_gas: op.max_fee_per_gas,
            cap: policy.max_fee_per_gas,
        });
    }
    if op.max_priority_fee_per_gas > op.max_fee_per_gas {
        return Err(PolicyViolation::PriorityFeeAboveMaxFee {
            priority: op.max_priority_fee_per_gas,
            max_fee_per_gas: op.max_fee_per_gas,
        });
    }
    if op.max_priority_fee_per_gas > U256::from(policy.max_priority_fee_per_gas) {
        return Err(PolicyViolation::PriorityFeeTooHigh {
            priority: op.max_priority_fee_per_gas,
            cap: policy.max_priority_fee_per_gas,
        });
    }
    Ok(())
}

/// The settlement contract and requestHash of a payment op, read by the first of `kinds`' ABIs
/// that decodes it; `None` for any other callData.
pub(crate) fn payment_of(kinds: &[AccountKind], op: &UserOperation) -> Option<(Address, B256)> {
    let payment = kinds
        .iter()
        .find_map(|k| k.abi().decode_payment(&op.call_data).ok())
        .or_else(|| kernel_session_payment(kinds, &op.call_data))
        .or_else(|| biconomy_session_payment(kinds, &op.call_data))
        .or_else(|| safe_session_payment(kinds, &op.call_data))?;
    Some((payment.settlement, payment.settle.request_hash))
}

/// A Kernel session payment: the 164-byte `executeSessionPayment` (`kernel::encode_session_payment`,
/// byte for byte), which the account's session validator executes. Which validator that is, is the
/// account's business; whether the payment settles is what the simulation establishes.
fn kernel_session_payment(
    kinds: &[AccountKind],
    call_data: &[u8],
) -> Option<x402_aa::DecodedPayment> {
    if !kinds.contains(&AccountKind::Kernel) {
        return None;
    }
    kernel::decode_session_payment(call_data).ok()
}

/// A Biconomy session payment: `executeBatch_y6U` of approve, settle and the session module's
/// `chargePayment` (`biconomy::decode_session_payment`, byte for byte). The module is read from
/// the third call; the simulation establishes whether the payment settles.
fn biconomy_session_payment(
    kinds: &[AccountKind],
    call_data: &[u8],
) -> Option<x402_aa::DecodedPayment> {
    if !kinds.contains(&AccountKind::Biconomy) {
        return None;
    }
    let batch = biconomy::executeBatch_y6UCall::abi_decode(call_data).ok()?;
    let module = *batch.dest.get(2)?;
    biconomy::decode_session_payment(call_data, module).ok()
}

/// A Safe session payment: `executeSessionPayment(token, settlement, merchant, amount,
/// requestHash)`, the 164 bytes `SafeSessionModule` executes as approve + settle from the Safe
/// (`safe::session::decode_session_payment`, byte for byte). Which module the Safe's fallback
/// hands it to is the Safe's business; whether the payment settles is what the simulation
/// establishes.
fn safe_session_payment(
    kinds: &[AccountKind],
    call_data: &[u8],
) -> Option<x402_aa::DecodedPayment> {
    if !kinds.contains(&AccountKind::Safe) {
        return None;
    }
    safe::session::decode_session_payment(call_data).ok()
}

/// The most `op` can cost the paymaster's deposit: the EntryPoint's prefund for an op with a
/// paymaster, `(callGasLimit + 3·verificationGasLimit + preVerificationGas) · maxFeePerGas`
/// (validation, paymaster validation and postOp may each use the verification limit).
pub(crate) fn max_cost(op: &UserOperation) -> U256 {
    op.call_gas_limit
        .saturating_add(op.verification_gas_limit.saturating_mul(U256::from(3)))
        .saturating_add(op.pre_verification_gas)
        .saturating_mul(op.max_fee_per_gas)
}

/// The contracts an account of one of `kinds` calls with `call_data`.
pub(crate) fn call_targets(
    kinds: &[AccountKind],
    call_data: &[u8],
) -> Result<Vec<Address>, PolicyViolation> {
    // A Safe session payment's calls are the token's and the settlement's, made by the Safe.
    let safe_session =
        || safe_session_payment(kinds, call_data).map(|p| vec![p.settle.token, p.settlement]);
    kinds.iter().find_map(|k| k.abi().call_targets(call_data)).or_else(safe_session).ok_or_else(
        || PolicyViolation::UnrecognisedCallData {
            selector: call_data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()).map(Into::into),
        },
    )
}

/// Sliding-window limit of sponsorships per sender.
///
/// Counts grants, not requests: a refused or malformed op costs the sender nothing, and a
/// client that retries after a transient node error is not punished twice.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: Option<NonZeroU32>,
    window: Duration,
    grants: Mutex<HashMap<Address, VecDeque<Instant>>>,
}

/// Above this many tracked senders, idle ones are dropped so the map cannot grow without bound.
const PRUNE_ABOVE: usize = 4096;

impl RateLimiter {
    pub(crate) fn per_minute(limit: Option<NonZeroU32>) -> Self {
        Self { limit, window: Duration::from_secs(60), grants: Mutex::default() }
    }

    /// Records a grant for `sender` at `now`, or says how long until one is possible.
    pub(crate) fn acquire(&self, sender: Address, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.limit else { return Ok(()) };
        let limit = usize::try_from(limit.get()).unwrap_or(usize::MAX);
        // A panic elsewhere cannot leave the map inconsistent (every update is one push or pop).
        let mut grants = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        if grants.len() > PRUNE_ABOVE {
            let window = self.window;
            grants.retain(|_, times| {
                times.back().is_some_and(|t| now.saturating_duration_since(*t) < window)
            });
        }
        let times = grants.entry(sender).or_default();
        while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.window) {
            times.pop_front();
        }
        if times.len() >= limit {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.saturating_duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }

    /// Gives back the grant just taken, when signing failed after it.
    pub(crate) fn release(&self, sender: Address, at: Instant) {
        let mut grants = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(times) = grants.get_mut(&sender)
            && let Some(pos) = times.iter().rposition(|t| *t == at)
        {
            times.remove(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use alloy::primitives::{B256, Bytes, address};

    use super::*;

    const TOKEN: Address = address!("0x00000000000000000000000000000000000000aa");
    const SETTLEMENT: Address = address!("0x00000000000000000000000000000000000000bb");

    fn op() -> UserOperation {
        UserOperation {
            sender: Address::repeat_byte(1),
            call_data: x402_aa::encode_payment_batch(
                TOKEN,
                SETTLEMENT,
                Address::repeat_byte(2),
                U256::from(5),
                B256::ZERO,
            ),
            call_gas_limit: U256::from(200_000),
            verification_gas_limit: U256::from(50_000),
            pre_verification_gas: U256::from(50_000),
            max_fee_per_gas: U256::from(1_000_000_000u64),
            ..UserOperation::default()
        }
    }

    #[test]
    fn gas_floor_raises_only_low_limits() {
        let policy = SponsorPolicy::default();
        assert_eq!(apply_gas_floor(&op(), &policy).verification_gas_limit, U256::from(150_000));
        let mut high = op();
        high.verification_gas_limit = U256::from(400_000);
        assert_eq!(apply_gas_floor(&high, &policy), high);
    }

    #[test]
    fn checks_run_in_policy_order() {
        let mut policy = SponsorPolicy::default();
        assert_eq!(check(&op(), &policy), Ok(()));

        policy.max_gas_per_op = 299_999;
        assert_eq!(
            check(&op(), &policy),
            Err(PolicyViolation::GasTooHigh { total: U256::from(300_000), max: 299_999 })
        );
        policy.max_fee_per_gas = 1;
        policy.allowed_targets = Some(HashSet::from([TOKEN]));
        assert_eq!(check(&op(), &policy), Err(PolicyViolation::TargetNotAllowed(SETTLEMENT)));
        policy.allowed_senders = Some(HashSet::new());
        assert_eq!(
            check(&op(), &policy),
            Err(PolicyViolation::SenderNotAllowed(Address::repeat_byte(1)))
        );

        let mut policy = SponsorPolicy { max_fee_per_gas: 999_999_999, ..Default::default() };
        assert_eq!(check(&op(), &policy).map_err(|v| v.reason()), Err("fee_too_high"));
        policy.max_fee_per_gas = 1_000_000_000;
        policy.allowed_targets = Some(HashSet::from([TOKEN, SETTLEMENT]));
        policy.allowed_senders = Some(HashSet::from([Address::repeat_byte(1)]));
        assert_eq!(check(&op(), &policy), Ok(()));
    }

    #[test]
    fn huge_gas_values_do_not_overflow() {
        let mut op = op();
        op.call_gas_limit = U256::MAX;
        op.pre_verification_gas = U256::MAX;
        let err = check(&op, &SponsorPolicy::default());
        assert_eq!(err, Err(PolicyViolation::GasTooHigh { total: U256::MAX, max: 2_000_000 }));
    }

    #[test]
    fn gas_fields_a_bundler_could_profit_from() {
        let policy = SponsorPolicy::default();
        let reason = |op: &UserOperation| check(op, &policy).map_err(|v| v.reason());
        let mut op = op();
        op.max_priority_fee_per_gas = U256::from(1_000_000_000u64);
        assert_eq!(reason(&op), Ok(()));

        let mut pvg = op.clone();
        pvg.pre_verification_gas = U256::from(150_001);
        assert_eq!(reason(&pvg), Err("pre_verification_gas_too_high"));

        // Priority fee = max fee, above the priority cap.
        let mut greedy = op.clone();
        greedy.max_fee_per_gas = U256::from(50_000_000_000u64);
        greedy.max_priority_fee_per_gas = greedy.max_fee_per_gas;
        assert_eq!(reason(&greedy), Err("priority_fee_too_high"));
        greedy.max_priority_fee_per_gas += U256::from(1);
        assert_eq!(reason(&greedy), Err("priority_fee_above_max_fee"));

        let mut not_payment = op.clone();
        not_payment.call_data = x402_aa::encode_execute(SETTLEMENT, U256::ZERO, Bytes::new());
        assert_eq!(reason(&not_payment), Err("not_a_payment"));
        let open = SponsorPolicy { sponsor_non_payments: true, ..SponsorPolicy::default() };
        assert_eq!(check(&not_payment, &open), Ok(()));
        not_payment.call_data = Bytes::new();
        assert_eq!(reason(&not_payment), Ok(()), "deploy-only ops execute nothing");

        assert_eq!(payment_of(&[AccountKind::SimpleAccount], &op), Some((SETTLEMENT, B256::ZERO)));
        // (200k + 3·50k + 50k) · 1 gwei
        assert_eq!(max_cost(&op), U256::from(400_000u64 * 1_000_000_000));
        let mut huge = op.clone();
        huge.max_fee_per_gas = U256::MAX;
        assert_eq!(max_cost(&huge), U256::MAX);
    }

    #[test]
    fn call_targets_of_account_calls() {
        assert_eq!(
            call_targets(&[AccountKind::SimpleAccount], &op().call_data),
            Ok(vec![TOKEN, SETTLEMENT])
        );
        let single = x402_aa::encode_execute(SETTLEMENT, U256::ZERO, Bytes::new());
        assert_eq!(call_targets(&[AccountKind::SimpleAccount], &single), Ok(vec![SETTLEMENT]));
        assert_eq!(call_targets(&[AccountKind::SimpleAccount], &[]), Ok(vec![]));
        for bad in [&[0xde, 0xad][..], &[0xde, 0xad, 0xbe, 0xef, 0], &single[..40]] {
            assert_eq!(
                call_targets(&[AccountKind::SimpleAccount], bad).map_err(|v| v.reason()),
                Err("unrecognised_call_data"),
                "{bad:?}"
            );
        }
    }

    /// A Safe session payment (`SafeSessionModule`'s 164-byte shape) is a payment, with the token
    /// and the settlement as its targets, when Safes are served, and nothing otherwise.
    #[test]
    fn safe_session_payments_are_recognised() {
        let settle = x402_aa::SettleCall {
            merchant: Address::repeat_byte(2),
            token: TOKEN,
            amount: U256::from(5),
            request_hash: B256::repeat_byte(7),
        };
        let call_data = safe::session::encode_session_payment(SETTLEMENT, &settle);
        let op = UserOperation { call_data: call_data.clone(), ..op() };
        assert_eq!(payment_of(&[AccountKind::Safe], &op), Some((SETTLEMENT, B256::repeat_byte(7))));
        assert_eq!(payment_of(&[AccountKind::SimpleAccount], &op), None);
        assert_eq!(call_targets(&[AccountKind::Safe], &call_data), Ok(vec![TOKEN, SETTLEMENT]));
        assert!(call_targets(&[AccountKind::SimpleAccount], &call_data).is_err());
        // one byte more is not the module's shape
        let mut long = call_data.to_vec();
        long.push(0);
        let op = UserOperation { call_data: long.into(), ..op };
        assert_eq!(payment_of(&[AccountKind::Safe], &op), None);
    }

    #[test]
    fn rate_limit_slides() {
        let limiter = RateLimiter::per_minute(NonZeroU32::new(2));
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let t0 = Instant::now();
        assert_eq!(limiter.acquire(a, t0), Ok(()));
        assert_eq!(limiter.acquire(a, t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(limiter.acquire(a, t0 + Duration::from_secs(20)), Err(Duration::from_secs(40)));
        assert_eq!(limiter.acquire(b, t0 + Duration::from_secs(20)), Ok(()));
        assert_eq!(limiter.acquire(a, t0 + Duration::from_secs(60)), Ok(()));

        let at = t0 + Duration::from_secs(61);
        assert!(limiter.acquire(a, at).is_err());
        limiter.release(a, t0 + Duration::from_secs(60));
        assert_eq!(limiter.acquire(a, at), Ok(()));

        let open = RateLimiter::per_minute(None);
        for _ in 0..1000 {
            assert_eq!(open.acquire(a, t0), Ok(()));
        }
    }
}
