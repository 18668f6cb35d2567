//! The off-chain mirror of `SessionKeyAccount._validateSession`: the same checks, in the same order,
//! with reasons a facilitator returns as `invalidReason` before it spends an RPC call or a bundler
//! slot on an op the chain would refuse anyway.
//!
//! [`check_session_op`] needs no chain access. [`check_budget`] adds the account's stored counters
//! (`sessionState(id)`, `sessionEpoch()`), read by the caller.

use alloy::primitives::{Address, B256, Signature, U256};
use x402_aa::{UserOperation, decode_payment};

use crate::{
    grant::{GrantWindow, SessionGrant, session_id},
    merkle::MerchantTree,
    signature::{SessionMode, SessionSignature, SessionSignatureCodec, session_digest},
};

/// Why a session op is out of scope. `reason()` strings are stable (x402 `invalidReason`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeViolation {
    #[error("not a session signature: {0}")]
    NotASessionOp(String),
    #[error("session was revoked")]
    Revoked,
    #[error(
        "every session of this account was revoked (grant epoch {grant}, account epoch {account})"
    )]
    RevokedAll { grant: u32, account: u32 },
    #[error("session is not enabled and the op carries no owner signature")]
    NotEnabled,
    #[error("the grant is not signed by the account owner")]
    BadOwnerSignature,
    #[error("the grant is malformed: {0}")]
    MalformedGrant(&'static str),
    #[error("the session key did not sign this op")]
    BadSessionSignature,
    #[error("the grant requires a paymaster")]
    PaymasterRequired,
    #[error("paymaster {0} is not the one the grant allows")]
    PaymasterNotAllowed(Address),
    #[error("self-paid gas exceeds the grant's cap")]
    GasCostOverCap,
    #[error("callData is not the permitted payment: {0}")]
    MethodNotAllowed(String),
    #[error("payment uses token {0}, not the grant's")]
    TokenNotAllowed(Address),
    #[error("payment calls settlement {0}, not the grant's")]
    SettlementNotAllowed(Address),
    #[error("merchant {0} is not on the allowlist")]
    MerchantNotAllowed(Address),
    #[error("amount {amount} exceeds the per-payment max {max}")]
    PerPaymentMaxExceeded { amount: U256, max: U256 },
    #[error("claimed period {claimed} is before the account's period {stored}")]
    PeriodAlreadyOver { claimed: u32, stored: u32 },
    #[error("period {period} has {remaining} left, payment is {amount}")]
    SpendCapExceeded { period: u32, amount: U256, remaining: U256 },
    #[error("lifetime budget has {remaining} left, payment is {amount}")]
    LifetimeCapExceeded { amount: U256, remaining: U256 },
    #[error("claimed period is outside the grant window")]
    PeriodOutsideWindow,
    #[error("session is not valid until {valid_after} (now {now})")]
    NotYetValid { valid_after: u64, now: u64 },
    #[error("session expired at {valid_until} (now {now})")]
    Expired { valid_until: u64, now: u64 },
}

impl ScopeViolation {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotASessionOp(_) => "invalid_session_signature",
            Self::Revoked | Self::RevokedAll { .. } => "session_revoked",
            Self::NotEnabled => "session_not_enabled",
            Self::BadOwnerSignature | Self::MalformedGrant(_) => "invalid_session_grant",
            Self::BadSessionSignature => "invalid_session_signature",
            Self::PaymasterRequired | Self::PaymasterNotAllowed(_) | Self::GasCostOverCap => {
                "gas_policy_violation"
            }
            Self::MethodNotAllowed(_) | Self::SettlementNotAllowed(_) => "method_not_allowed",
            Self::TokenNotAllowed(_) => "token_not_allowed",
            Self::MerchantNotAllowed(_) => "merchant_not_allowed",
            Self::PerPaymentMaxExceeded { .. } => "per_payment_max_exceeded",
            Self::PeriodAlreadyOver { .. } | Self::SpendCapExceeded { .. } => "spend_cap_exceeded",
            Self::LifetimeCapExceeded { .. } => "lifetime_cap_exceeded",
            Self::PeriodOutsideWindow | Self::Expired { .. } => "session_expired",
            Self::NotYetValid { .. } => "session_not_yet_valid",
        }
    }
}

/// What a session op claims, once [`check_session_op`] has verified everything static about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSessionOp {
    pub session_id: B256,
    pub grant: SessionGrant,
    pub mode: SessionMode,
    pub period_index: u32,
    pub merchant: Address,
    pub amount: U256,
    pub request_hash: B256,
    /// The window the account will return to the EntryPoint.
    pub valid_after: u64,
    pub valid_until: u64,
}

/// The account's stored counters for one session (from `sessionState(id)` and `sessionEpoch()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredSession {
    /// 0 unknown, 1 enabled, 2 revoked.
    pub status: u8,
    pub period_index: u32,
    pub period_spent: U256,
    pub lifetime_spent: U256,
    pub account_epoch: u32,
}

/// Everything about a session op that needs no chain state: signature layout, grant signature (by
/// `owner`), session signature over `user_op_hash`, gas policy, payment shape, merchant proof,
/// per-payment max and the time window at `now`.
pub fn check_session_op(
    op: &UserOperation,
    user_op_hash: B256,
    chain_id: u64,
    owner: Address,
    now: u64,
) -> Result<CheckedSessionOp, ScopeViolation> {
    let (mode, sig) = SessionSignature::decode(&op.signature)
        .map_err(|e| ScopeViolation::NotASessionOp(e.to_string()))?;
    let grant = sig.grant.clone();
    let id = session_id(&grant, chain_id, op.sender);

    if mode == SessionMode::Enable {
        let recovered = Signature::try_from(sig.ownerSignature.as_ref())
            .ok()
            .and_then(|s| s.recover_address_from_prehash(&id).ok());
        if recovered != Some(owner) {
            return Err(ScopeViolation::BadOwnerSignature);
        }
        well_formed(&grant, owner)?;
    }

    let digest = session_digest(user_op_hash, id, sig.periodIndex);
    let signer = Signature::try_from(sig.sessionSignature.as_ref())
        .ok()
        .and_then(|s| s.recover_address_from_msg(digest.as_slice()).ok());
    if signer != Some(grant.sessionKey) {
        return Err(ScopeViolation::BadSessionSignature);
    }

    check_gas(op, &grant)?;

    let payment = decode_payment(&op.call_data)
        .map_err(|e| ScopeViolation::MethodNotAllowed(e.to_string()))?;
    if payment.settlement != grant.settlement {
        return Err(ScopeViolation::SettlementNotAllowed(payment.settlement));
    }
    if payment.settle.token != grant.token {
        return Err(ScopeViolation::TokenNotAllowed(payment.settle.token));
    }
    let merchant = payment.settle.merchant;
    if !grant.merchantRoot.is_zero()
        && !MerchantTree::verify(grant.merchantRoot, merchant, &sig.merchantProof)
    {
        return Err(ScopeViolation::MerchantNotAllowed(merchant));
    }
    let amount = payment.settle.amount;
    let max = U256::from(grant.perPaymentMax);
    if amount > max {
        return Err(ScopeViolation::PerPaymentMaxExceeded { amount, max });
    }

    let window = grant.period_window(sig.periodIndex).ok_or(ScopeViolation::PeriodOutsideWindow)?;
    if now < window.valid_after {
        return Err(ScopeViolation::NotYetValid { valid_after: window.valid_after, now });
    }
    if now > window.valid_until {
        return Err(ScopeViolation::Expired { valid_until: window.valid_until, now });
    }
    Ok(CheckedSessionOp {
        session_id: id,
        grant,
        mode,
        period_index: sig.periodIndex,
        merchant,
        amount,
        request_hash: payment.settle.request_hash,
        valid_after: window.valid_after,
        valid_until: window.valid_until,
    })
}

/// The checks that need the account's stored counters, in the contract's order.
pub fn check_budget(op: &CheckedSessionOp, stored: &StoredSession) -> Result<(), ScopeViolation> {
    if stored.status == 2 {
        return Err(ScopeViolation::Revoked);
    }
    if op.grant.epoch != stored.account_epoch {
        return Err(ScopeViolation::RevokedAll {
            grant: op.grant.epoch,
            account: stored.account_epoch,
        });
    }
    if stored.status == 0 && op.mode == SessionMode::Use {
        return Err(ScopeViolation::NotEnabled);
    }
    if op.period_index < stored.period_index {
        return Err(ScopeViolation::PeriodAlreadyOver {
            claimed: op.period_index,
            stored: stored.period_index,
        });
    }
    let spent =
        if op.period_index == stored.period_index { stored.period_spent } else { U256::ZERO };
    let remaining = U256::from(op.grant.periodCap).saturating_sub(spent);
    if op.amount > remaining {
        return Err(ScopeViolation::SpendCapExceeded {
            period: op.period_index,
            amount: op.amount,
            remaining,
        });
    }
    let remaining = U256::from(op.grant.lifetimeCap).saturating_sub(stored.lifetime_spent);
    if op.amount > remaining {
        return Err(ScopeViolation::LifetimeCapExceeded { amount: op.amount, remaining });
    }
    Ok(())
}

fn check_gas(op: &UserOperation, grant: &SessionGrant) -> Result<(), ScopeViolation> {
    if let Some(paymaster) = op.paymaster() {
        if !grant.paymaster.is_zero() && paymaster != grant.paymaster {
            return Err(ScopeViolation::PaymasterNotAllowed(paymaster));
        }
        return Ok(());
    }
    if grant.maxSelfPaidGasCost == 0 {
        return Err(ScopeViolation::PaymasterRequired);
    }
    let gas = op
        .call_gas_limit
        .checked_add(op.verification_gas_limit)
        .and_then(|g| g.checked_add(op.pre_verification_gas));
    let cost = gas.and_then(|g| g.checked_mul(op.max_fee_per_gas));
    match cost {
        Some(cost) if cost <= U256::from(grant.maxSelfPaidGasCost) => Ok(()),
        _ => Err(ScopeViolation::GasCostOverCap),
    }
}

/// Mirrors `_requireWellFormed`.
fn well_formed(grant: &SessionGrant, owner: Address) -> Result<(), ScopeViolation> {
    let bad = |why| Err(ScopeViolation::MalformedGrant(why));
    if grant.sessionKey.is_zero() {
        return bad("no session key");
    }
    if grant.sessionKey == owner {
        return bad("session key is the owner");
    }
    if grant.validUntil <= grant.validAfter {
        return bad("empty window");
    }
    if grant.token.is_zero() || grant.settlement.is_zero() {
        return bad("zero token or settlement");
    }
    if grant.perPaymentMax.is_zero() || grant.periodCap.is_zero() || grant.lifetimeCap.is_zero() {
        return bad("zero cap");
    }
    Ok(())
}
