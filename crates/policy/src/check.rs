//! The one scope check: `SessionKeyAccount._validateSession`, then the EntryPoint's signature and
//! time checks, in that order, as a pure function.
//!
//! Every layer calls [`check`]: the SDK before it signs (with what it knows before the op exists),
//! the budget ledger before it reserves (with its own tally of spending as the usage), the
//! facilitator before it submits (with every fact of the op, from [`crate::session_op`]). What a
//! caller cannot know yet it passes as satisfied; the order never changes, so the first failing rule
//! is the one the chain would name.
//!
//! | step | rule | contract (`SessionPolicy.validateSessionOp`) |
//! |---|---|---|
//! | 0 | [`Rule::MalformedSignature`] | signature format ([`crate::session_op`]) |
//! | 1 | [`Rule::Revoked`], [`Rule::Paused`], [`Rule::RevokedAll`], [`Rule::NotEnabled`], enable: [`Rule::BadOwnerSignature`], [`Rule::MalformedGrant`] | status |
//! | 3 | [`Rule::PaymasterNotAllowed`], [`Rule::PaymasterRequired`], [`Rule::GasCostOverCap`], [`Rule::PeriodAlreadyOver`], [`Rule::OverGasPeriodBudget`], [`Rule::OverGasLifetimeBudget`] | gas ([`check_gas`]) |
//! | 4 | [`Rule::MethodNotAllowed`], [`Rule::TokenNotAllowed`] | method |
//! | 5 | [`Rule::InvalidPayment`] | certain to revert in `settle` |
//! | 6 | [`Rule::MerchantNotAllowed`] | counterparty |
//! | 7 | [`Rule::OverPerPaymentMax`], [`Rule::PeriodAlreadyOver`], [`Rule::OverPeriodCap`], [`Rule::OverLifetimeCap`], [`Rule::OverPaymentCount`], [`Rule::OverMerchantPeriodCap`] | amount and count |
//! | 8 | [`Rule::PeriodOutsideWindow`] | time window |
//! | (2) | [`Rule::BadSessionSignature`] | the account returns `SIG_VALIDATION_FAILED`; the EntryPoint says `AA24` once validation returns |
//! | — | [`Rule::NotYetValid`], [`Rule::Expired`] | EntryPoint `AA22` |

use alloy::primitives::{Address, B256, U256};
use x402_aa::UserOperation;

use crate::{
    grant::{PeriodWindow, SessionGrant},
    limits::Limits,
    signature::SessionMode,
    violation::{GrantDefect, ScopeViolation},
};
// Only for rustdoc: the step table above names each rule as `Rule::…`.
#[cfg(doc)]
use crate::Rule;

/// A session's status in the account (`sessionState(id).status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionStatus {
    /// Never enabled (0): the first op must carry the owner's grant signature.
    #[default]
    Unknown,
    /// Enabled by an earlier op (1).
    Enabled,
    /// Revoked for good (2).
    Revoked,
}

impl SessionStatus {
    /// The contract's `uint8` status; unknown values read as revoked, the safe side.
    pub const fn from_chain(status: u8) -> Self {
        match status {
            0 => Self::Unknown,
            1 => Self::Enabled,
            _ => Self::Revoked,
        }
    }
}

/// What a session has already used, as the account stores it (`sessionState(id)`, `sessionEpoch()`)
/// or as the SDK's ledger tallies it (chain figures plus its own commits and reservations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionUsage {
    /// Whether the session is unknown, enabled or revoked.
    pub status: SessionStatus,
    /// Paused by the owner (the counters stay).
    pub paused: bool,
    /// The account's current epoch; a grant of another epoch was revoked by revoke-all.
    pub account_epoch: u32,
    /// The period the token spending and the payment count below belong to.
    pub period_index: u32,
    /// Token spent in `period_index`, in the token's atomic units.
    pub period_spent: U256,
    /// Token spent over the session's life, in the token's atomic units.
    pub lifetime_spent: U256,
    /// Payments made in `period_index`.
    pub payments_in_period: u32,
    /// What the payment's merchant was paid (`sessionMerchantState(id, merchant)`).
    pub merchant: PeriodSpend,
    /// The self-paid gas charged so far (`sessionGasState(id)`).
    pub gas: GasUsage,
}

/// Spending within one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodSpend {
    /// The period `spent` belongs to; a later period starts from zero.
    pub period_index: u32,
    /// Spent in that period (token atomic units, or wei for gas).
    pub spent: U256,
}

impl PeriodSpend {
    /// What was spent in `claimed`: the stored figure for the stored period, nothing for a later
    /// one; a claim before the stored period is over.
    pub fn in_period(&self, claimed: u32) -> Result<U256, ScopeViolation> {
        if claimed < self.period_index {
            return Err(ScopeViolation::PeriodAlreadyOver { claimed, stored: self.period_index });
        }
        Ok(if claimed == self.period_index { self.spent } else { U256::ZERO })
    }
}

/// Self-paid gas charged to a session, in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GasUsage {
    /// Gas charged in the stored period, in wei.
    pub period: PeriodSpend,
    /// Gas charged over the session's life, in wei.
    pub lifetime_spent: U256,
}

/// One payment attempt, as far as the caller knows it. Op facts the caller established itself
/// (owner signature, gas, callData shape, session signature) arrive as the verdicts of this module's
/// rules ([`authorize_grant`], [`check_gas`]) or of [`crate::session_op`]; [`check`] orders them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<'a> {
    /// The epoch the grant was signed for.
    pub grant_epoch: u32,
    /// Enable (carries the owner's grant signature) or use (the session is already enabled).
    pub mode: SessionMode,
    /// Enable mode only: the owner's grant signature and the grant's shape ([`authorize_grant`]).
    pub authorization: Result<(), ScopeViolation>,
    /// Who pays the op's gas ([`check_gas`]).
    pub gas: Result<(), ScopeViolation>,
    /// The callData is the payment shape with the grant's token and settlement.
    pub call: Result<(), ScopeViolation>,
    /// Who `settle` pays.
    pub merchant: Address,
    /// The account that pays (a payment to itself is certain to revert).
    pub account: Address,
    /// The `settle` requestHash.
    pub request_hash: B256,
    /// The Merkle proof the op carries, where there is one.
    pub merchant_proof: Option<&'a [B256]>,
    /// The payment, in the token's atomic units.
    pub amount: U256,
    /// The period the payment claims.
    pub period_index: u32,
    /// Whether the session key signed the op.
    pub session_signature: Result<(), ScopeViolation>,
    /// Chain time; `None` leaves the time window to the EntryPoint.
    pub now: Option<u64>,
}

impl Attempt<'static> {
    /// A payment before its op exists (the SDK and its ledger): everything about the op is taken
    /// as satisfied, the period is the one `now` falls in.
    pub fn payment(
        limits: &Limits,
        merchant: Address,
        amount: U256,
        request_hash: B256,
        now: u64,
    ) -> Self {
        Self {
            grant_epoch: 0,
            mode: SessionMode::Enable,
            authorization: Ok(()),
            gas: Ok(()),
            call: Ok(()),
            merchant,
            account: Address::ZERO,
            request_hash,
            merchant_proof: None,
            amount,
            period_index: claim_period(limits, now),
            session_signature: Ok(()),
            now: Some(now),
        }
    }
}

/// The period a payment made at `now` claims: the one containing `now`; before the window the
/// first, after it the last (the time rule then names why neither can be paid).
pub fn claim_period(limits: &Limits, now: u64) -> u32 {
    if let Some(index) = limits.period_index_at(now) {
        return index;
    }
    if now < limits.valid_after || limits.period_seconds == 0 {
        return 0;
    }
    let last = (limits.valid_until - limits.valid_after) / u64::from(limits.period_seconds);
    u32::try_from(last).unwrap_or(u32::MAX)
}

/// The one scope check. `Ok` carries the window the account returns to the EntryPoint.
pub fn check(
    limits: &Limits,
    usage: &SessionUsage,
    attempt: &Attempt<'_>,
) -> Result<PeriodWindow, ScopeViolation> {
    // 1. status: revocation, pause, epoch, enablement
    if usage.status == SessionStatus::Revoked {
        return Err(ScopeViolation::Revoked);
    }
    if usage.paused {
        return Err(ScopeViolation::Paused);
    }
    if attempt.grant_epoch != usage.account_epoch {
        return Err(ScopeViolation::RevokedAll {
            grant: attempt.grant_epoch,
            account: usage.account_epoch,
        });
    }
    if usage.status == SessionStatus::Unknown {
        if attempt.mode == SessionMode::Use {
            return Err(ScopeViolation::NotEnabled);
        }
        attempt.authorization.clone()?;
    }
    // 3. gas, 4. method
    attempt.gas.clone()?;
    attempt.call.clone()?;
    // 5. certain to revert in settle
    let amount = attempt.amount;
    if let Some(reason) = certain_to_revert(attempt) {
        return Err(ScopeViolation::InvalidPayment(reason));
    }
    // 6. counterparty
    if !limits.allows_merchant(attempt.merchant, attempt.merchant_proof) {
        return Err(ScopeViolation::MerchantNotAllowed(attempt.merchant));
    }
    // 7. amount and count: per payment, per period, lifetime, count, per merchant
    if amount > limits.per_payment_max {
        return Err(ScopeViolation::PerPaymentMaxExceeded { amount, max: limits.per_payment_max });
    }
    let period_index = attempt.period_index;
    let stored = PeriodSpend { period_index: usage.period_index, spent: usage.period_spent };
    let spent = stored.in_period(period_index)?;
    let remaining = limits.period_cap.saturating_sub(spent);
    if amount > remaining {
        return Err(ScopeViolation::PeriodCapExceeded { period_index, amount, remaining });
    }
    let remaining = limits.lifetime_cap.saturating_sub(usage.lifetime_spent);
    if amount > remaining {
        return Err(ScopeViolation::LifetimeCapExceeded { amount, remaining });
    }
    let count = if period_index == usage.period_index { usage.payments_in_period } else { 0 };
    if limits.max_payments_per_period != 0 && count >= limits.max_payments_per_period {
        return Err(ScopeViolation::PaymentCountExceeded { period_index, count });
    }
    if !limits.merchant_period_cap.is_zero() {
        let spent = usage.merchant.in_period(period_index)?;
        let remaining = limits.merchant_period_cap.saturating_sub(spent);
        if amount > remaining {
            return Err(ScopeViolation::MerchantCapExceeded {
                merchant: attempt.merchant,
                period_index,
                amount,
                remaining,
            });
        }
    }
    // 8. the claimed period's window
    let window = period_window(limits, period_index)?;
    // (2) the session key's signature (the EntryPoint's AA24, after validation returns)
    attempt.session_signature.clone()?;
    // the EntryPoint's time check (AA22)
    if let Some(now) = attempt.now {
        check_time(window, now)?;
    }
    Ok(window)
}

/// A payment `settle` would certainly refuse (step 5): its gas would be lost for nothing.
/// A caller that does not know the paying account passes zero for it (then not checked).
fn certain_to_revert(attempt: &Attempt<'_>) -> Option<&'static str> {
    if attempt.amount.is_zero() {
        return Some("session: zero amount");
    }
    if attempt.merchant.is_zero() {
        return Some("session: zero merchant");
    }
    if attempt.request_hash.is_zero() {
        return Some("session: zero requestHash");
    }
    if !attempt.account.is_zero() && attempt.merchant == attempt.account {
        return Some("session: merchant is the account");
    }
    None
}

/// The window of a claimed period (`_periodWindow`).
pub fn period_window(limits: &Limits, claimed: u32) -> Result<PeriodWindow, ScopeViolation> {
    limits.period_window(claimed).ok_or(ScopeViolation::PeriodOutsideWindow(claimed))
}

/// The EntryPoint's time check of the window the account returned.
pub fn check_time(window: PeriodWindow, now: u64) -> Result<(), ScopeViolation> {
    if now < window.valid_after {
        return Err(ScopeViolation::NotYetValid { valid_after: window.valid_after, now });
    }
    if now > window.valid_until {
        return Err(ScopeViolation::Expired { valid_until: window.valid_until, now });
    }
    Ok(())
}

/// Who pays an op's gas, from its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GasRequest {
    /// `paymasterAndData` names this paymaster.
    Sponsored {
        /// The first 20 bytes of `paymasterAndData`.
        paymaster: Address,
    },
    /// The account pays its own gas.
    SelfPaid {
        /// The v0.6 prefund `(callGas + verificationGas + preVerificationGas) × maxFeePerGas`,
        /// in wei; `None` when a gas field is at least 2^64 or the fee at least 2^128 (the
        /// contract's bounds).
        max_cost: Option<U256>,
    },
}

impl GasRequest {
    /// The request an op makes.
    pub fn of(op: &UserOperation) -> Self {
        if let Some(paymaster) = op.paymaster() {
            return Self::Sponsored { paymaster };
        }
        let limit = U256::from(u64::MAX);
        let gas_fields = [op.call_gas_limit, op.verification_gas_limit, op.pre_verification_gas];
        let fits =
            gas_fields.iter().all(|g| *g <= limit) && op.max_fee_per_gas <= U256::from(u128::MAX);
        let gas = gas_fields.iter().fold(U256::ZERO, |a, g| a.saturating_add(*g));
        Self::SelfPaid { max_cost: fits.then(|| gas.saturating_mul(op.max_fee_per_gas)) }
    }
}

/// The gas rule (step 3): a sponsored op must use the grant's paymaster if it pins one; a
/// self-paid op needs a grant with a gas budget, within its per-op cap and its period and lifetime
/// budgets given what `gas` already holds, for the claimed period.
pub fn check_gas(
    grant: &SessionGrant,
    request: GasRequest,
    gas: &GasUsage,
    claimed_period: u32,
) -> Result<(), ScopeViolation> {
    let max_cost = match request {
        GasRequest::Sponsored { paymaster } => {
            if !grant.paymaster.is_zero() && paymaster != grant.paymaster {
                return Err(ScopeViolation::PaymasterNotAllowed(paymaster));
            }
            return Ok(());
        }
        GasRequest::SelfPaid { max_cost } => max_cost,
    };
    if grant.gasLifetimeBudget.is_zero() {
        return Err(ScopeViolation::PaymasterRequired);
    }
    let cost = match max_cost {
        Some(cost) if cost <= U256::from(grant.maxGasCostPerOp) => cost,
        _ => return Err(ScopeViolation::GasCostOverCap),
    };
    let spent = gas.period.in_period(claimed_period)?;
    let remaining = U256::from(grant.gasPeriodBudget).saturating_sub(spent);
    if cost > remaining {
        return Err(ScopeViolation::GasPeriodBudgetExceeded {
            period_index: claimed_period,
            cost,
            remaining,
        });
    }
    let remaining = U256::from(grant.gasLifetimeBudget).saturating_sub(gas.lifetime_spent);
    if cost > remaining {
        return Err(ScopeViolation::GasLifetimeBudgetExceeded { cost, remaining });
    }
    Ok(())
}

/// The enable rule: the owner signed the grant (`owner_signed`, recovered by the caller) and the
/// grant is one the account accepts (`_requireWellFormed`).
pub fn authorize_grant(
    grant: &SessionGrant,
    owner_signed: bool,
    owner: Address,
    account: Address,
) -> Result<(), ScopeViolation> {
    if !owner_signed {
        return Err(ScopeViolation::BadOwnerSignature);
    }
    grant_defect(grant, owner, account).map_or(Ok(()), |d| Err(ScopeViolation::MalformedGrant(d)))
}

/// The first reason the account would refuse to enable `grant`, in `_requireWellFormed`'s order.
pub fn grant_defect(grant: &SessionGrant, owner: Address, account: Address) -> Option<GrantDefect> {
    if grant.sessionKey.is_zero() {
        return Some(GrantDefect::NoSessionKey);
    }
    if grant.sessionKey == owner {
        return Some(GrantDefect::KeyIsOwner);
    }
    if grant.validUntil <= grant.validAfter {
        return Some(GrantDefect::EmptyWindow);
    }
    if grant.token.is_zero() || grant.settlement.is_zero() {
        return Some(GrantDefect::ZeroAddress);
    }
    if grant.settlement == account || grant.token == account {
        return Some(GrantDefect::TargetsAccount);
    }
    if grant.perPaymentMax.is_zero() || grant.periodCap.is_zero() || grant.lifetimeCap.is_zero() {
        return Some(GrantDefect::ZeroCap);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::violation::Rule;
    use alloy::primitives::aliases::{U48, U96};

    fn limits() -> Limits {
        let grant = SessionGrant {
            validAfter: U48::from(1_000u64),
            validUntil: U48::from(1_000u64 + 10 * 86_400),
            perPaymentMax: U96::from(5u64),
            periodCap: U96::from(10u64),
            period: 86_400,
            lifetimeCap: U96::from(25u64),
            ..Default::default()
        };
        Limits::of_grant(&grant)
    }

    fn usage(period_index: u32, period_spent: u64, lifetime_spent: u64) -> SessionUsage {
        SessionUsage {
            status: SessionStatus::Enabled,
            period_index,
            period_spent: U256::from(period_spent),
            lifetime_spent: U256::from(lifetime_spent),
            ..SessionUsage::default()
        }
    }

    #[test]
    fn rules_fire_in_the_contracts_order() {
        let l = limits();
        let now = 1_000 + 86_400 + 5; // period 1
        let pay = |amount: u64| {
            Attempt::payment(
                &l,
                Address::repeat_byte(7),
                U256::from(amount),
                B256::repeat_byte(1),
                now,
            )
        };
        assert_eq!(check(&l, &usage(1, 0, 0), &pay(5)).map(|w| w.valid_after), Ok(1_000 + 86_400));
        // Per-payment max before the caps, the period cap before the lifetime cap.
        assert_eq!(
            check(&l, &usage(1, 10, 25), &pay(6)).unwrap_err().rule(),
            Rule::OverPerPaymentMax
        );
        assert_eq!(check(&l, &usage(1, 10, 25), &pay(1)).unwrap_err().rule(), Rule::OverPeriodCap);
        assert_eq!(
            check(&l, &usage(0, 10, 25), &pay(1)).unwrap_err().rule(),
            Rule::OverLifetimeCap
        );
        // A later stored period: the payment's period is over.
        assert_eq!(
            check(&l, &usage(2, 0, 0), &pay(1)).unwrap_err().rule(),
            Rule::PeriodAlreadyOver
        );
        // Revocation comes first of all, even before the caps.
        let revoked = SessionUsage { status: SessionStatus::Revoked, ..usage(1, 10, 25) };
        assert_eq!(check(&l, &revoked, &pay(6)).unwrap_err().rule(), Rule::Revoked);
        // Time comes last: an over-cap payment after expiry names the cap, as the chain would.
        let late = Attempt::payment(
            &l,
            Address::repeat_byte(7),
            U256::from(6u64),
            B256::repeat_byte(1),
            1_000 + 11 * 86_400,
        );
        assert_eq!(check(&l, &usage(0, 0, 0), &late).unwrap_err().rule(), Rule::OverPerPaymentMax);
        let late = Attempt::payment(
            &l,
            Address::repeat_byte(7),
            U256::from(1u64),
            B256::repeat_byte(1),
            1_000 + 11 * 86_400,
        );
        assert_eq!(check(&l, &usage(0, 0, 0), &late).unwrap_err().rule(), Rule::Expired);
        let early = Attempt::payment(
            &l,
            Address::repeat_byte(7),
            U256::from(1u64),
            B256::repeat_byte(1),
            999,
        );
        assert_eq!(check(&l, &usage(0, 0, 0), &early).unwrap_err().rule(), Rule::NotYetValid);
    }

    #[test]
    fn the_last_period_is_claimed_after_the_window() {
        let l = limits();
        assert_eq!(claim_period(&l, 0), 0);
        assert_eq!(claim_period(&l, 1_000 + 3 * 86_400), 3);
        assert_eq!(claim_period(&l, u64::MAX), 10);
    }

    #[test]
    fn gas_rule() {
        let grant = SessionGrant {
            maxGasCostPerOp: U96::from(100u64),
            gasPeriodBudget: U96::from(150u64),
            gasLifetimeBudget: U96::from(250u64),
            ..Default::default()
        };
        let cost = |c: u64| GasRequest::SelfPaid { max_cost: Some(U256::from(c)) };
        let used = |period_index: u32, period: u64, life: u64| GasUsage {
            period: PeriodSpend { period_index, spent: U256::from(period) },
            lifetime_spent: U256::from(life),
        };
        assert_eq!(check_gas(&grant, cost(100), &used(0, 0, 0), 0), Ok(()));
        let over = |c, u: GasUsage, p| check_gas(&grant, cost(c), &u, p).unwrap_err().rule();
        assert_eq!(over(101, used(0, 0, 0), 0), Rule::GasCostOverCap);
        let unbounded = GasRequest::SelfPaid { max_cost: None };
        assert_eq!(
            check_gas(&grant, unbounded, &used(0, 0, 0), 0),
            Err(ScopeViolation::GasCostOverCap)
        );
        assert_eq!(over(100, used(0, 100, 100), 0), Rule::OverGasPeriodBudget);
        // A later period starts the period budget afresh; the lifetime budget still binds.
        assert_eq!(check_gas(&grant, cost(100), &used(0, 100, 100), 1), Ok(()));
        assert_eq!(over(100, used(0, 100, 200), 1), Rule::OverGasLifetimeBudget);
        assert_eq!(over(1, used(2, 0, 0), 1), Rule::PeriodAlreadyOver);
        let sponsored_only =
            SessionGrant { paymaster: Address::repeat_byte(1), ..Default::default() };
        let none = GasUsage::default();
        assert_eq!(
            check_gas(&sponsored_only, cost(0), &none, 0).unwrap_err().rule(),
            Rule::PaymasterRequired
        );
        let other = GasRequest::Sponsored { paymaster: Address::repeat_byte(2) };
        assert_eq!(
            check_gas(&sponsored_only, other, &none, 0),
            Err(ScopeViolation::PaymasterNotAllowed(Address::repeat_byte(2)))
        );
    }

    #[test]
    fn count_and_merchant_sub_budget() {
        let mut l = limits();
        l.max_payments_per_period = 2;
        l.merchant_period_cap = U256::from(6u64);
        let now = 1_000 + 5;
        let pay = |amount: u64| {
            Attempt::payment(
                &l,
                Address::repeat_byte(7),
                U256::from(amount),
                B256::repeat_byte(1),
                now,
            )
        };
        let mut u = usage(0, 4, 4);
        u.payments_in_period = 2;
        assert_eq!(check(&l, &u, &pay(1)).unwrap_err().rule(), Rule::OverPaymentCount);
        u.payments_in_period = 1;
        u.merchant = PeriodSpend { period_index: 0, spent: U256::from(4u64) };
        assert_eq!(check(&l, &u, &pay(3)).unwrap_err().rule(), Rule::OverMerchantPeriodCap);
        assert!(check(&l, &u, &pay(2)).is_ok());
        u.merchant.period_index = 1;
        assert_eq!(check(&l, &u, &pay(2)).unwrap_err().rule(), Rule::PeriodAlreadyOver);
        assert_eq!(check(&l, &usage(0, 0, 0), &pay(0)).unwrap_err().rule(), Rule::InvalidPayment);
        let paused = SessionUsage { paused: true, ..usage(0, 0, 0) };
        assert_eq!(check(&l, &paused, &pay(1)).unwrap_err().rule(), Rule::Paused);
    }
}
