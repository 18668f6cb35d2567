//! The one scope check: `SessionKeyAccount._validateSession`, then the EntryPoint's signature and
//! time checks, in that order, as a pure function.
//!
//! Every layer calls [`check`]: the SDK before it signs (with what it knows before the op exists),
//! the budget ledger before it reserves (with its own tally of spending as the usage), the
//! facilitator before it submits (with every fact of the op, from [`crate::session_op`]). What a
//! caller cannot know yet it passes as satisfied; the order never changes, so the first failing rule
//! is the one the chain would name.
//!
//! | step | rule | contract |
//! |---|---|---|
//! | 1 | [`Rule::Revoked`], [`Rule::RevokedAll`], [`Rule::NotEnabled`], enable: [`Rule::BadOwnerSignature`], [`Rule::MalformedGrant`] | `_validateSession` §1 |
//! | 2 | [`Rule::PaymasterNotAllowed`], [`Rule::PaymasterRequired`], [`Rule::GasCostOverCap`] | `_checkGas` |
//! | 3 | [`Rule::MethodNotAllowed`], [`Rule::TokenNotAllowed`] | `_paymentArgs` |
//! | 4 | [`Rule::MerchantNotAllowed`] | merchant Merkle proof |
//! | 5 | [`Rule::OverPerPaymentMax`], [`Rule::PeriodAlreadyOver`], [`Rule::OverPeriodCap`], [`Rule::OverLifetimeCap`] | `_checkAmount` |
//! | 6 | [`Rule::PeriodOutsideWindow`] | `_periodWindow` |
//! | 7 | [`Rule::BadSessionSignature`] | EntryPoint `AA24` (the account returns `SIG_VALIDATION_FAILED`) |
//! | 8 | [`Rule::NotYetValid`], [`Rule::Expired`] | EntryPoint `AA22` |

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
    pub status: SessionStatus,
    /// The account's current epoch; a grant of another epoch was revoked by revoke-all.
    pub account_epoch: u32,
    /// The period the spending below belongs to.
    pub period_index: u32,
    pub period_spent: U256,
    pub lifetime_spent: U256,
}

/// One payment attempt, as far as the caller knows it. Op facts the caller established itself
/// (owner signature, gas, callData shape, session signature) arrive as the verdicts of this module's
/// rules ([`authorize_grant`], [`check_gas`]) or of [`crate::session_op`]; [`check`] orders them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<'a> {
    /// The epoch the grant was signed for.
    pub grant_epoch: u32,
    pub mode: SessionMode,
    /// Enable mode only: the owner's grant signature and the grant's shape ([`authorize_grant`]).
    pub authorization: Result<(), ScopeViolation>,
    /// Who pays the op's gas ([`check_gas`]).
    pub gas: Result<(), ScopeViolation>,
    /// The callData is the payment shape with the grant's token and settlement.
    pub call: Result<(), ScopeViolation>,
    pub merchant: Address,
    /// The Merkle proof the op carries, where there is one.
    pub merchant_proof: Option<&'a [B256]>,
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
    pub fn payment(limits: &Limits, merchant: Address, amount: U256, now: u64) -> Self {
        Self {
            grant_epoch: 0,
            mode: SessionMode::Enable,
            authorization: Ok(()),
            gas: Ok(()),
            call: Ok(()),
            merchant,
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
    // 1. revocation and enablement
    if usage.status == SessionStatus::Revoked {
        return Err(ScopeViolation::Revoked);
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
    // 2. gas, 3. method
    attempt.gas.clone()?;
    attempt.call.clone()?;
    // 4. counterparty
    if !limits.allows_merchant(attempt.merchant, attempt.merchant_proof) {
        return Err(ScopeViolation::MerchantNotAllowed(attempt.merchant));
    }
    // 5. amount: per payment, per period, lifetime
    let amount = attempt.amount;
    if amount > limits.per_payment_max {
        return Err(ScopeViolation::PerPaymentMaxExceeded { amount, max: limits.per_payment_max });
    }
    let spent = period_spent(usage, attempt.period_index)?;
    let remaining = limits.period_cap.saturating_sub(spent);
    if amount > remaining {
        return Err(ScopeViolation::PeriodCapExceeded {
            period_index: attempt.period_index,
            amount,
            remaining,
        });
    }
    let remaining = limits.lifetime_cap.saturating_sub(usage.lifetime_spent);
    if amount > remaining {
        return Err(ScopeViolation::LifetimeCapExceeded { amount, remaining });
    }
    // 6. the claimed period's window
    let window = period_window(limits, attempt.period_index)?;
    // 7. the session key's signature (the EntryPoint's AA24, after validation returns)
    attempt.session_signature.clone()?;
    // 8. time (the EntryPoint's AA22)
    if let Some(now) = attempt.now {
        check_time(window, now)?;
    }
    Ok(window)
}

/// What the session already spent in `claimed`: the stored figure for the stored period, nothing
/// for a later one; a claim before the stored period is over (`_checkAmount`).
pub fn period_spent(usage: &SessionUsage, claimed: u32) -> Result<U256, ScopeViolation> {
    if claimed < usage.period_index {
        return Err(ScopeViolation::PeriodAlreadyOver { claimed, stored: usage.period_index });
    }
    Ok(if claimed == usage.period_index { usage.period_spent } else { U256::ZERO })
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
    Sponsored { paymaster: Address },
    /// The account pays; `max_cost` is `(callGas + verificationGas + preVerificationGas) ×
    /// maxFeePerGas`, `None` when it overflows.
    SelfPaid { max_cost: Option<U256> },
}

impl GasRequest {
    /// The request an op makes.
    pub fn of(op: &UserOperation) -> Self {
        if let Some(paymaster) = op.paymaster() {
            return Self::Sponsored { paymaster };
        }
        let gas = op
            .call_gas_limit
            .checked_add(op.verification_gas_limit)
            .and_then(|g| g.checked_add(op.pre_verification_gas));
        Self::SelfPaid { max_cost: gas.and_then(|g| g.checked_mul(op.max_fee_per_gas)) }
    }
}

/// The gas rule (`_checkGas`): a sponsored op must use the grant's paymaster if it pins one; a
/// self-paid op needs a grant that allows self-paid gas, within its per-op cap.
pub fn check_gas(grant: &SessionGrant, request: GasRequest) -> Result<(), ScopeViolation> {
    match request {
        GasRequest::Sponsored { paymaster } => {
            if !grant.paymaster.is_zero() && paymaster != grant.paymaster {
                return Err(ScopeViolation::PaymasterNotAllowed(paymaster));
            }
            Ok(())
        }
        GasRequest::SelfPaid { .. } if grant.maxSelfPaidGasCost == 0 => {
            Err(ScopeViolation::PaymasterRequired)
        }
        GasRequest::SelfPaid { max_cost: Some(cost) }
            if cost <= U256::from(grant.maxSelfPaidGasCost) =>
        {
            Ok(())
        }
        GasRequest::SelfPaid { .. } => Err(ScopeViolation::GasCostOverCap),
    }
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
            account_epoch: 0,
            period_index,
            period_spent: U256::from(period_spent),
            lifetime_spent: U256::from(lifetime_spent),
        }
    }

    #[test]
    fn rules_fire_in_the_contracts_order() {
        let l = limits();
        let now = 1_000 + 86_400 + 5; // period 1
        let pay = |amount: u64| Attempt::payment(&l, Address::ZERO, U256::from(amount), now);
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
        let late = Attempt::payment(&l, Address::ZERO, U256::from(6u64), 1_000 + 11 * 86_400);
        assert_eq!(check(&l, &usage(0, 0, 0), &late).unwrap_err().rule(), Rule::OverPerPaymentMax);
        let late = Attempt::payment(&l, Address::ZERO, U256::from(1u64), 1_000 + 11 * 86_400);
        assert_eq!(check(&l, &usage(0, 0, 0), &late).unwrap_err().rule(), Rule::Expired);
        let early = Attempt::payment(&l, Address::ZERO, U256::from(1u64), 999);
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
        let grant = SessionGrant { maxSelfPaidGasCost: 100, ..Default::default() };
        assert_eq!(
            check_gas(&grant, GasRequest::SelfPaid { max_cost: Some(U256::from(100)) }),
            Ok(())
        );
        assert_eq!(
            check_gas(&grant, GasRequest::SelfPaid { max_cost: Some(U256::from(101)) }),
            Err(ScopeViolation::GasCostOverCap)
        );
        assert_eq!(
            check_gas(&grant, GasRequest::SelfPaid { max_cost: None }),
            Err(ScopeViolation::GasCostOverCap)
        );
        let sponsored_only =
            SessionGrant { paymaster: Address::repeat_byte(1), ..Default::default() };
        assert_eq!(
            check_gas(&sponsored_only, GasRequest::SelfPaid { max_cost: Some(U256::ZERO) }),
            Err(ScopeViolation::PaymasterRequired)
        );
        assert_eq!(
            check_gas(
                &sponsored_only,
                GasRequest::Sponsored { paymaster: Address::repeat_byte(2) }
            ),
            Err(ScopeViolation::PaymasterNotAllowed(Address::repeat_byte(2)))
        );
    }
}
