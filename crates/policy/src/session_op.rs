//! A whole session UserOperation through the one scope check: the facilitator's mirror of
//! `SessionKeyAccount.validateUserOp`, so it refuses before it spends an RPC call or a bundler slot
//! on an op the chain would refuse anyway, with the reason the chain would give.
//!
//! This module only establishes the facts of an op (which grant, which signatures recover to whom,
//! what the callData pays); the rules and their order are [`crate::check()`]'s.

use alloy::primitives::{Address, B256, U256, eip191_hash_message};
use x402_aa::{CallDataError, DecodedPayment, UserOperation, decode_payment};

use crate::{
    check::{Attempt, GasRequest, SessionUsage, authorize_grant, check, check_gas},
    ecdsa::signed_by,
    grant::{SessionGrant, session_id},
    limits::Limits,
    signature::{SessionMode, SessionSignature, SessionSignatureCodec, session_digest},
    violation::ScopeViolation,
};

/// What a session op claims, once [`check_session_op`] accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSessionOp {
    /// The session's id (the grant's EIP-712 digest for this account and chain).
    pub session_id: B256,
    /// The grant the op carries.
    pub grant: SessionGrant,
    /// Whether the op enables the session or uses an enabled one.
    pub mode: SessionMode,
    /// The period the op claims.
    pub period_index: u32,
    /// Who `settle` pays.
    pub merchant: Address,
    /// The payment, in the token's atomic units.
    pub amount: U256,
    /// The `settle` requestHash.
    pub request_hash: B256,
    /// The window the account returns to the EntryPoint: first second, unix (chain time).
    pub valid_after: u64,
    /// Last second of that window (inclusive), unix (chain time).
    pub valid_until: u64,
}

/// A decoded session signature and the id of the grant it carries: what the caller needs to read
/// the session's stored usage before [`check_session_op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOpSignature {
    /// Enable or use mode, from the signature's first byte.
    pub mode: SessionMode,
    /// The decoded fields.
    pub signature: SessionSignature,
    /// The id of the grant it carries, for the account being checked.
    pub session_id: B256,
}

impl SessionOpSignature {
    /// Decodes `op.signature` as a session signature.
    pub fn decode(op: &UserOperation, chain_id: u64) -> Result<Self, ScopeViolation> {
        Self::decode_for(&op.signature, op.sender, chain_id)
    }

    /// Decodes `signature` (what the host hands the policy: the whole op signature for
    /// SessionKeyAccount, what follows Kernel's mode for its validator) as a session signature
    /// of `account`.
    pub fn decode_for(
        signature: &[u8],
        account: Address,
        chain_id: u64,
    ) -> Result<Self, ScopeViolation> {
        let (mode, signature) = SessionSignature::decode(signature).map_err(|e| {
            ScopeViolation::MalformedSignature(format!("{} ({e})", e.revert_string()))
        })?;
        let session_id = session_id(&signature.grant, chain_id, account);
        Ok(Self { mode, signature, session_id })
    }
}

/// Runs a session op of account `op.sender` (owned by `owner`) through the scope check against the
/// session's `usage` (with the merchant figures of the merchant the op pays: [`payment_merchant`]),
/// at chain time `now`.
pub fn check_session_op(
    op: &UserOperation,
    user_op_hash: B256,
    decoded: &SessionOpSignature,
    owner: Address,
    usage: &SessionUsage,
    now: u64,
) -> Result<CheckedSessionOp, ScopeViolation> {
    let payment = decode_payment(&op.call_data).map_err(|e| method_violation(&e));
    check_session_payment(op, payment, user_op_hash, decoded, owner, usage, now)
}

/// [`check_session_op`] for a host whose payment shape is the caller's to decode (Kernel's
/// three-call batch): `payment` is the decoded payment, or the violation its callData is.
pub fn check_session_payment(
    op: &UserOperation,
    payment: Result<DecodedPayment, ScopeViolation>,
    user_op_hash: B256,
    decoded: &SessionOpSignature,
    owner: Address,
    usage: &SessionUsage,
    now: u64,
) -> Result<CheckedSessionOp, ScopeViolation> {
    let sig = &decoded.signature;
    let grant = &sig.grant;
    let id = decoded.session_id;

    // Recovered only when the op enables its grant: a use-mode op carries no owner signature.
    let owner_signed =
        decoded.mode == SessionMode::Enable && signed_by(&id, &sig.owner_signature, owner);
    let session_digest = eip191_hash_message(session_digest(user_op_hash, id, sig.period_index));
    let session_signed = signed_by(&session_digest, &sig.session_signature, grant.sessionKey);

    let call = match &payment {
        Err(e) => Err(e.clone()),
        Ok(p) if p.settlement != grant.settlement => Err(ScopeViolation::MethodNotAllowed(
            format!("session: target not allowed ({})", p.settlement),
        )),
        Ok(p) if p.settle.token != grant.token => {
            Err(ScopeViolation::TokenNotAllowed(p.settle.token))
        }
        Ok(_) => Ok(()),
    };
    let (merchant, amount, request_hash) = payment
        .as_ref()
        .map(|p| (p.settle.merchant, p.settle.amount, p.settle.request_hash))
        .unwrap_or_default();

    let attempt = Attempt {
        grant_epoch: grant.epoch,
        mode: decoded.mode,
        authorization: match decoded.mode {
            SessionMode::Enable => authorize_grant(grant, owner_signed, owner, op.sender),
            SessionMode::Use => Ok(()),
        },
        gas: check_gas(grant, GasRequest::of(op), &usage.gas, sig.period_index),
        call,
        merchant,
        account: op.sender,
        request_hash,
        merchant_proof: Some(&sig.merchant_proof),
        amount,
        period_index: sig.period_index,
        session_signature: if session_signed {
            Ok(())
        } else {
            Err(ScopeViolation::BadSessionSignature)
        },
        now: Some(now),
    };
    let window = check(&Limits::of_grant(grant), usage, &attempt)?;
    Ok(CheckedSessionOp {
        session_id: id,
        grant: grant.clone(),
        mode: decoded.mode,
        period_index: sig.period_index,
        merchant,
        amount,
        request_hash,
        valid_after: window.valid_after,
        valid_until: window.valid_until,
    })
}

/// The merchant a session op pays, when its callData is a payment (whose merchant figures the
/// caller reads for [`check_session_op`]).
pub fn payment_merchant(op: &UserOperation) -> Option<Address> {
    decode_payment(&op.call_data).ok().map(|p| p.settle.merchant)
}

/// The violation the contract's diagnostic (`_explainCallData`) names for callData that is not the
/// payment shape.
pub fn method_violation(e: &CallDataError) -> ScopeViolation {
    let diagnostic = match e {
        CallDataError::ApproveTargetMismatch { approve_target, .. } => {
            return ScopeViolation::TokenNotAllowed(*approve_target);
        }
        CallDataError::MissingSelector { .. }
        | CallDataError::UnknownSelector { at: x402_aa::CallSite::Account, .. } => {
            "session: callData is not execute/executeBatch"
        }
        CallDataError::NonzeroValue { .. } => "session: value transfer not allowed",
        CallDataError::ExtraCalls { .. } => "session: batch must be exactly approve + settle",
        CallDataError::MissingApprove | CallDataError::SettleBeforeApprove => {
            "session: first call must be approve"
        }
        CallDataError::NoSettle | CallDataError::MultipleSettle { .. } => {
            "session: second call must be settle"
        }
        CallDataError::ApproveSpenderMismatch { .. } => "session: approve spender not allowed",
        CallDataError::ApproveAmountMismatch { .. } => {
            "session: approve amount differs from payment"
        }
        CallDataError::NonCanonicalAbi { .. } => "session: non-canonical callData",
        _ => "session: malformed callData",
    };
    ScopeViolation::MethodNotAllowed(format!("{diagnostic} ({e})"))
}
