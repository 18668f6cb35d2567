//! The only callData shapes a payment op may take, and their strict decoder.
//!
//! A payment is either
//! - `executeBatch([token, settlement], [approve(settlement, amount), settle(merchant, token,
//!   amount, requestHash)])`, for accounts that hold the token and must grant an allowance, or
//! - `execute(settlement, 0, settle(merchant, token, amount, requestHash))`, for accounts whose
//!   allowance is already in place.
//!
//! The decoder accepts exactly these and nothing else, so whoever checks an op's scope reasons
//! about one settle call with known arguments rather than about arbitrary account calls.

use std::fmt;

use alloy::{
    primitives::{Address, B256, Bytes, Selector, U256},
    sol_types::{SolCall, abi::AbiDecoderConfig},
};

use crate::abi::{approveCall, executeBatchCall, executeCall, settleCall};

/// Arguments of `SettlementContract.settle`, named as the contract names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SettleCall {
    /// Who receives the payment.
    pub merchant: Address,
    /// The ERC-20 moved.
    pub token: Address,
    /// The payment, in the token's atomic units.
    pub amount: U256,
    /// Binds the payment to one HTTP request ([`crate::request_hash`]); settles at most once.
    pub request_hash: B256,
}

/// An ERC-20 `approve` together with the token it was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApproveCall {
    /// The ERC-20 the call was sent to.
    pub token: Address,
    /// Who may pull the tokens (for a payment: the settlement contract).
    pub spender: Address,
    /// The allowance, in the token's atomic units.
    pub amount: U256,
}

/// A payment op's callData, checked for shape and internal consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodedPayment {
    /// The contract `settle` is called on.
    pub settlement: Address,
    /// The `settle` arguments.
    pub settle: SettleCall,
    /// Present for the `executeBatch` shape; the `execute` shape relies on a prior allowance.
    pub approve: Option<ApproveCall>,
}

/// Where in the callData a problem sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSite {
    /// The account-level call (`execute` / `executeBatch`).
    Account,
    /// The inner call of `execute`.
    Execute,
    /// Entry `n` of `executeBatch`.
    Batch(usize),
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account => f.write_str("account call"),
            Self::Execute => f.write_str("execute inner call"),
            Self::Batch(i) => write!(f, "executeBatch entry {i}"),
        }
    }
}

/// Why callData is not a payment. One variant per rule so callers can map them to wire reasons.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallDataError {
    /// A call is shorter than 4 bytes.
    #[error("{at}: {len} bytes is too short for a function selector")]
    MissingSelector {
        /// Which call.
        at: CallSite,
        /// Its length in bytes.
        len: usize,
    },
    /// A call is none of `execute`, `executeBatch` (account level), `approve` or `settle`
    /// (inner calls).
    #[error("{at}: selector {selector} is not part of a payment")]
    UnknownSelector {
        /// Which call.
        at: CallSite,
        /// The selector found.
        selector: Selector,
    },
    /// The arguments do not decode as the selector's function.
    #[error("{at}: malformed {call} arguments: {source}")]
    MalformedAbi {
        /// Which call.
        at: CallSite,
        /// The function's Solidity signature.
        call: &'static str,
        /// The decoder's complaint.
        #[source]
        source: alloy::sol_types::Error,
    },
    /// The arguments decode but re-encode differently (padding, offsets, trailing bytes): refused
    /// so one payment cannot be signed under two byte strings.
    #[error("{at}: {call} arguments are not in canonical ABI encoding")]
    NonCanonicalAbi {
        /// Which call.
        at: CallSite,
        /// The function's Solidity signature.
        call: &'static str,
    },
    /// `executeBatch`'s target and call arrays differ in length.
    #[error("executeBatch has {targets} targets but {calls} calls")]
    LengthMismatch {
        /// Entries in `dest`.
        targets: usize,
        /// Entries in `func`.
        calls: usize,
    },
    /// Nothing is paid (`execute` of an `approve`, or a batch without `settle`).
    #[error("callData contains no settle call")]
    NoSettle,
    /// A batch settles more than once.
    #[error("callData contains {count} settle calls; exactly one is allowed")]
    MultipleSettle {
        /// How many `settle` calls the batch holds.
        count: usize,
    },
    /// A batch settles but approves nothing.
    #[error("executeBatch settles without approving the token first")]
    MissingApprove,
    /// A batch has calls beyond the one approve and one settle.
    #[error("executeBatch has {count} calls; a payment is exactly approve then settle")]
    ExtraCalls {
        /// How many calls the batch holds.
        count: usize,
    },
    /// A batch holds one approve and one settle in the wrong order.
    #[error("executeBatch calls settle before approve")]
    SettleBeforeApprove,
    /// `execute` forwards native value: a payment moves tokens only.
    #[error("execute forwards {value} wei; a payment forwards none")]
    NonzeroValue {
        /// The forwarded value, in wei.
        value: U256,
    },
    /// The approve goes to another token than the one `settle` moves.
    #[error("approve is sent to {approve_target} but settle moves token {settle_token}")]
    ApproveTargetMismatch {
        /// The contract the approve is sent to.
        approve_target: Address,
        /// The token `settle` names.
        settle_token: Address,
    },
    /// The approve's spender is not the contract `settle` is called on.
    #[error("approve grants {spender} but settle is called on {settlement}")]
    ApproveSpenderMismatch {
        /// The approve's spender.
        spender: Address,
        /// The contract `settle` is called on.
        settlement: Address,
    },
    /// The approve's amount is not the settled amount (no leftover allowance is allowed).
    #[error("approve grants {approved} but settle moves {settled}")]
    ApproveAmountMismatch {
        /// The approved amount, in the token's atomic units.
        approved: U256,
        /// The settled amount, in the token's atomic units.
        settled: U256,
    },
}

impl SettleCall {
    /// ABI-encoded `settle(merchant, token, amount, requestHash)` with selector.
    pub fn abi_encode(&self) -> Bytes {
        settleCall::from(*self).abi_encode().into()
    }
}

impl From<SettleCall> for settleCall {
    fn from(c: SettleCall) -> Self {
        Self { merchant: c.merchant, token: c.token, amount: c.amount, requestHash: c.request_hash }
    }
}

impl From<settleCall> for SettleCall {
    fn from(c: settleCall) -> Self {
        Self { merchant: c.merchant, token: c.token, amount: c.amount, request_hash: c.requestHash }
    }
}

/// ERC-20 `approve(spender, amount)` with selector.
pub fn encode_approve(spender: Address, amount: U256) -> Bytes {
    approveCall { spender, amount }.abi_encode().into()
}

/// SimpleAccount `execute(dest, value, func)` with selector.
pub fn encode_execute(dest: Address, value: U256, func: Bytes) -> Bytes {
    executeCall { dest, value, func }.abi_encode().into()
}

/// SimpleAccount `executeBatch(dest, func)` with selector.
pub fn encode_execute_batch(dest: Vec<Address>, func: Vec<Bytes>) -> Bytes {
    executeBatchCall { dest, func }.abi_encode().into()
}

/// The batch payment shape: approve exactly `amount` to `settlement`, then settle.
pub fn encode_payment_batch(
    token: Address,
    settlement: Address,
    merchant: Address,
    amount: U256,
    request_hash: B256,
) -> Bytes {
    let settle = SettleCall { merchant, token, amount, request_hash };
    encode_execute_batch(
        vec![token, settlement],
        vec![encode_approve(settlement, amount), settle.abi_encode()],
    )
}

/// The single-call payment shape, for accounts that already granted the allowance.
pub fn encode_payment_execute(settlement: Address, settle: &SettleCall) -> Bytes {
    encode_execute(settlement, U256::ZERO, settle.abi_encode())
}

/// Accepts exactly the two payment shapes above, in canonical ABI encoding.
pub fn decode_payment(call_data: &[u8]) -> Result<DecodedPayment, CallDataError> {
    match selector(call_data, CallSite::Account)? {
        executeCall::SELECTOR => {
            let call: executeCall = decode_strict(call_data, CallSite::Account)?;
            decode_execute(call)
        }
        executeBatchCall::SELECTOR => {
            let call: executeBatchCall = decode_strict(call_data, CallSite::Account)?;
            decode_batch(call)
        }
        other => {
            Err(CallDataError::UnknownSelector { at: CallSite::Account, selector: other.into() })
        }
    }
}

fn decode_execute(call: executeCall) -> Result<DecodedPayment, CallDataError> {
    let at = CallSite::Execute;
    if !call.value.is_zero() {
        return Err(CallDataError::NonzeroValue { value: call.value });
    }
    match selector(&call.func, at)? {
        settleCall::SELECTOR => {
            let settle: settleCall = decode_strict(&call.func, at)?;
            Ok(DecodedPayment { settlement: call.dest, settle: settle.into(), approve: None })
        }
        approveCall::SELECTOR => Err(CallDataError::NoSettle),
        other => Err(CallDataError::UnknownSelector { at, selector: other.into() }),
    }
}

/// Entry of a batch after its selector and arguments have been checked.
enum Entry {
    Approve(ApproveCall),
    Settle { settlement: Address, call: SettleCall },
}

fn decode_batch(call: executeBatchCall) -> Result<DecodedPayment, CallDataError> {
    if call.dest.len() != call.func.len() {
        return Err(CallDataError::LengthMismatch {
            targets: call.dest.len(),
            calls: call.func.len(),
        });
    }
    let mut entries = Vec::with_capacity(call.dest.len());
    for (i, (target, func)) in call.dest.iter().zip(&call.func).enumerate() {
        let at = CallSite::Batch(i);
        entries.push(match selector(func, at)? {
            approveCall::SELECTOR => {
                let a: approveCall = decode_strict(func, at)?;
                Entry::Approve(ApproveCall { token: *target, spender: a.spender, amount: a.amount })
            }
            settleCall::SELECTOR => {
                let s: settleCall = decode_strict(func, at)?;
                Entry::Settle { settlement: *target, call: s.into() }
            }
            other => return Err(CallDataError::UnknownSelector { at, selector: other.into() }),
        });
    }

    let settles = entries.iter().filter(|e| matches!(e, Entry::Settle { .. })).count();
    match settles {
        0 => return Err(CallDataError::NoSettle),
        1 => {}
        count => return Err(CallDataError::MultipleSettle { count }),
    }
    if !entries.iter().any(|e| matches!(e, Entry::Approve(_))) {
        return Err(CallDataError::MissingApprove);
    }
    let [first, second] = entries.as_slice() else {
        return Err(CallDataError::ExtraCalls { count: entries.len() });
    };
    let (Entry::Approve(approve), Entry::Settle { settlement, call: settle }) = (first, second)
    else {
        return Err(CallDataError::SettleBeforeApprove);
    };

    if approve.token != settle.token {
        return Err(CallDataError::ApproveTargetMismatch {
            approve_target: approve.token,
            settle_token: settle.token,
        });
    }
    if approve.spender != *settlement {
        return Err(CallDataError::ApproveSpenderMismatch {
            spender: approve.spender,
            settlement: *settlement,
        });
    }
    if approve.amount != settle.amount {
        return Err(CallDataError::ApproveAmountMismatch {
            approved: approve.amount,
            settled: settle.amount,
        });
    }
    Ok(DecodedPayment { settlement: *settlement, settle: *settle, approve: Some(*approve) })
}

fn selector(data: &[u8], at: CallSite) -> Result<[u8; 4], CallDataError> {
    data.get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .ok_or(CallDataError::MissingSelector { at, len: data.len() })
}

/// Strict decoding plus a re-encode comparison: two byte strings that decode to the same call
/// must not both be accepted, or a signature over one could be replayed as the other.
/// Strict ABI decoding that also refuses any encoding but the canonical one (shared by every
/// account kind's decoder).
pub(crate) fn decode_strict<C: SolCall>(data: &[u8], at: CallSite) -> Result<C, CallDataError> {
    let call = C::abi_decode_with_config(data, AbiDecoderConfig::new().strict(true))
        .map_err(|source| CallDataError::MalformedAbi { at, call: C::SIGNATURE, source })?;
    if call.abi_encode() != data {
        return Err(CallDataError::NonCanonicalAbi { at, call: C::SIGNATURE });
    }
    Ok(call)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256};

    const TOKEN: Address = address!("0x1000000000000000000000000000000000000001");
    const SETTLEMENT: Address = address!("0x2000000000000000000000000000000000000002");
    const MERCHANT: Address = address!("0x3000000000000000000000000000000000000003");
    const REQUEST: B256 =
        b256!("0x4444444444444444444444444444444444444444444444444444444444444444");

    fn amount() -> U256 {
        U256::from(1_500_000u64)
    }

    fn settle() -> SettleCall {
        SettleCall { merchant: MERCHANT, token: TOKEN, amount: amount(), request_hash: REQUEST }
    }

    fn batch(dest: Vec<Address>, func: Vec<Bytes>) -> Bytes {
        encode_execute_batch(dest, func)
    }

    #[test]
    fn batch_round_trip() {
        let data = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        assert_eq!(
            decode_payment(&data).unwrap(),
            DecodedPayment {
                settlement: SETTLEMENT,
                settle: settle(),
                approve: Some(ApproveCall { token: TOKEN, spender: SETTLEMENT, amount: amount() }),
            }
        );
    }

    #[test]
    fn execute_round_trip() {
        let data = encode_payment_execute(SETTLEMENT, &settle());
        assert_eq!(
            decode_payment(&data).unwrap(),
            DecodedPayment { settlement: SETTLEMENT, settle: settle(), approve: None }
        );
    }

    /// `SessionKeyAccount` hard-codes these lengths (`BATCH_PAYMENT_LENGTH`,
    /// `EXECUTE_PAYMENT_LENGTH`) and compares callData byte for byte with its own rebuild.
    #[test]
    fn lengths_match_session_key_account() {
        assert_eq!(encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST).len(), 580);
        assert_eq!(encode_payment_execute(SETTLEMENT, &settle()).len(), 292);
    }

    #[test]
    fn selectors_match_simple_account_and_erc20() {
        assert_eq!(executeCall::SELECTOR, [0xb6, 0x1d, 0x27, 0xf6]);
        assert_eq!(executeBatchCall::SELECTOR, [0x18, 0xdf, 0xb3, 0xc7]);
        assert_eq!(approveCall::SELECTOR, [0x09, 0x5e, 0xa7, 0xb3]);
        assert_eq!(settleCall::SELECTOR, [0xd4, 0x72, 0x9c, 0x72]);
    }

    #[test]
    fn rejects_short_and_unknown() {
        assert!(matches!(
            decode_payment(&[]),
            Err(CallDataError::MissingSelector { at: CallSite::Account, len: 0 })
        ));
        assert!(matches!(
            decode_payment(&[0xb6, 0x1d, 0x27]),
            Err(CallDataError::MissingSelector { len: 3, .. })
        ));
        assert!(matches!(
            decode_payment(&[0xde, 0xad, 0xbe, 0xef, 0, 0]),
            Err(CallDataError::UnknownSelector { at: CallSite::Account, .. })
        ));
        // A bare settle is a call from the account to itself: not a payment.
        assert!(matches!(
            decode_payment(&settle().abi_encode()),
            Err(CallDataError::UnknownSelector { at: CallSite::Account, .. })
        ));
    }

    #[test]
    fn rejects_malformed_abi() {
        let good = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        // Truncated.
        for len in [4, 5, 36, 100, good.len() - 1] {
            let err = decode_payment(&good[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    CallDataError::MalformedAbi { at: CallSite::Account, .. }
                        | CallDataError::NonCanonicalAbi { .. }
                ),
                "len {len}: {err:?}"
            );
        }
        // Trailing garbage.
        let mut long = good.to_vec();
        long.extend_from_slice(&[0u8; 32]);
        assert!(matches!(
            decode_payment(&long),
            Err(CallDataError::MalformedAbi { .. } | CallDataError::NonCanonicalAbi { .. })
        ));
        // Dirty high bits in an address word.
        let mut dirty = encode_payment_execute(SETTLEMENT, &settle()).to_vec();
        dirty[4] = 0xff;
        assert!(matches!(
            decode_payment(&dirty),
            Err(CallDataError::MalformedAbi { .. } | CallDataError::NonCanonicalAbi { .. })
        ));
        // Inner settle truncated.
        let mut inner = settle().abi_encode().to_vec();
        inner.truncate(inner.len() - 1);
        let data = encode_execute(SETTLEMENT, U256::ZERO, inner.into());
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::MalformedAbi { at: CallSite::Execute, .. })
        ));
    }

    #[test]
    fn rejects_non_canonical_offsets() {
        // execute(address,uint256,bytes) with the bytes offset pointing one word further and a
        // junk word in the gap: decodes to the same call under a lenient decoder.
        let good = encode_payment_execute(SETTLEMENT, &settle());
        let mut data = good[..4 + 64].to_vec();
        data.extend_from_slice(&U256::from(0x80).to_be_bytes::<32>());
        data.extend_from_slice(&[0u8; 32]);
        data.extend_from_slice(&good[4 + 96..]);
        let err = decode_payment(&data).unwrap_err();
        assert!(
            matches!(
                err,
                CallDataError::MalformedAbi { .. } | CallDataError::NonCanonicalAbi { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn rejects_nonzero_value_and_non_settle_execute() {
        let data = encode_execute(SETTLEMENT, U256::from(1), settle().abi_encode());
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::NonzeroValue { value }) if value == U256::from(1)
        ));
        let data = encode_execute(TOKEN, U256::ZERO, encode_approve(SETTLEMENT, amount()));
        assert!(matches!(decode_payment(&data), Err(CallDataError::NoSettle)));
        let data = encode_execute(TOKEN, U256::ZERO, Bytes::from_static(&[0xa9, 0x05, 0x9c, 0xbb]));
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::UnknownSelector { at: CallSite::Execute, .. })
        ));
        let data = encode_execute(TOKEN, U256::ZERO, Bytes::new());
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::MissingSelector { at: CallSite::Execute, len: 0 })
        ));
    }

    #[test]
    fn rejects_batch_shape_violations() {
        let approve = encode_approve(SETTLEMENT, amount());
        let s = settle().abi_encode();

        let data = batch(vec![TOKEN, SETTLEMENT], vec![approve.clone()]);
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::LengthMismatch { targets: 2, calls: 1 })
        ));

        let data = batch(vec![TOKEN], vec![approve.clone()]);
        assert!(matches!(decode_payment(&data), Err(CallDataError::NoSettle)));

        let data = batch(vec![], vec![]);
        assert!(matches!(decode_payment(&data), Err(CallDataError::NoSettle)));

        let data =
            batch(vec![TOKEN, SETTLEMENT, SETTLEMENT], vec![approve.clone(), s.clone(), s.clone()]);
        assert!(matches!(decode_payment(&data), Err(CallDataError::MultipleSettle { count: 2 })));

        let data = batch(vec![SETTLEMENT], vec![s.clone()]);
        assert!(matches!(decode_payment(&data), Err(CallDataError::MissingApprove)));

        let data = batch(
            vec![TOKEN, TOKEN, SETTLEMENT],
            vec![approve.clone(), approve.clone(), s.clone()],
        );
        assert!(matches!(decode_payment(&data), Err(CallDataError::ExtraCalls { count: 3 })));

        let data = batch(vec![SETTLEMENT, TOKEN], vec![s.clone(), approve.clone()]);
        assert!(matches!(decode_payment(&data), Err(CallDataError::SettleBeforeApprove)));

        let data = batch(
            vec![TOKEN, SETTLEMENT],
            vec![Bytes::from_static(&[0xa9, 0x05, 0x9c, 0xbb]), s.clone()],
        );
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::UnknownSelector { at: CallSite::Batch(0), .. })
        ));

        let data = batch(vec![TOKEN, SETTLEMENT], vec![approve.clone(), Bytes::new()]);
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::MissingSelector { at: CallSite::Batch(1), len: 0 })
        ));

        let mut short_settle = s.to_vec();
        short_settle.pop();
        let data = batch(vec![TOKEN, SETTLEMENT], vec![approve, short_settle.into()]);
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::MalformedAbi { at: CallSite::Batch(1), .. })
        ));
    }

    #[test]
    fn rejects_inconsistent_approve() {
        let s = settle().abi_encode();
        let other = address!("0x9999999999999999999999999999999999999999");

        let data =
            batch(vec![other, SETTLEMENT], vec![encode_approve(SETTLEMENT, amount()), s.clone()]);
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::ApproveTargetMismatch { approve_target, settle_token })
                if approve_target == other && settle_token == TOKEN
        ));

        let data = batch(vec![TOKEN, SETTLEMENT], vec![encode_approve(other, amount()), s.clone()]);
        assert!(matches!(
            decode_payment(&data),
            Err(CallDataError::ApproveSpenderMismatch { spender, settlement })
                if spender == other && settlement == SETTLEMENT
        ));

        let data = batch(
            vec![TOKEN, SETTLEMENT],
            vec![encode_approve(SETTLEMENT, amount() + U256::from(1)), s],
        );
        assert!(matches!(decode_payment(&data), Err(CallDataError::ApproveAmountMismatch { .. })));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Cheap deterministic fuzz: every prefix and single-byte corruption of a valid payload.
        let good = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        for len in 0..good.len() {
            let _ = decode_payment(&good[..len]);
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut data = good.to_vec();
                data[i] ^= flip;
                let _ = decode_payment(&data);
            }
        }
    }
}
