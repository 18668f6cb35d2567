//! The session payment that Safe and Kernel session ops carry: `executeSessionPayment(token,
//! settlement, merchant, amount, requestHash)`, 164 bytes (`contracts/src/SessionPaymentCall.sol`).
//!
//! On a Safe the call reaches `SafeSessionModule` through the Safe's fallback handler; on Kernel v2.4
//! the `KernelSessionValidator` is registered as validator *and* executor of this selector, and the
//! account's fallback DELEGATECALLs it. Either way the host makes the account call exactly
//! `approve(settlement, amount)` then `settle(...)` and charges the session in the same frame. The
//! shape has no target, value or calldata field, so a session op cannot even express another call;
//! and it is the cheapest payment an op can carry.

use alloy::{
    primitives::{Address, Bytes, Selector},
    sol,
    sol_types::SolCall,
};

use crate::call_data::{ApproveCall, DecodedPayment, SettleCall};

sol! {
    /// What a session op's callData calls on the account (Safe and Kernel hosts).
    interface ISessionPaymentCall {
        function executeSessionPayment(address token, address settlement, address merchant,
            uint256 amount, bytes32 requestHash) external;
    }
}

/// `executeSessionPayment(address,address,address,uint256,bytes32)`.
pub const SESSION_PAYMENT_SELECTOR: [u8; 4] =
    ISessionPaymentCall::executeSessionPaymentCall::SELECTOR;

/// The length of the one callData a session op may carry: selector and five words.
pub const SESSION_PAYMENT_LEN: usize = 164;

/// Why callData is not the session payment; each matches the host contract's refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionPaymentCallError {
    /// Another function (or no selector at all).
    #[error("callData is not executeSessionPayment (selector {selector:?})")]
    NotSessionPayment {
        /// The selector found, if there are four bytes.
        selector: Option<Selector>,
    },
    /// Extra or missing bytes: only the 164-byte canonical encoding is accepted.
    #[error(
        "executeSessionPayment callData is {len} bytes; exactly {SESSION_PAYMENT_LEN} are allowed"
    )]
    WrongLength {
        /// The callData's length.
        len: usize,
    },
    /// An address word with non-zero high bytes (a second encoding of the same call).
    #[error("executeSessionPayment word {word} is not a clean address")]
    DirtyAddress {
        /// The argument's position (0 token, 1 settlement, 2 merchant).
        word: usize,
    },
}

/// The session payment's callData: `executeSessionPayment(token, settlement, merchant, amount,
/// requestHash)`, canonical ABI (the host accepts these bytes and no others).
pub fn encode_session_payment(settlement: Address, settle: &SettleCall) -> Bytes {
    ISessionPaymentCall::executeSessionPaymentCall {
        token: settle.token,
        settlement,
        merchant: settle.merchant,
        amount: settle.amount,
        requestHash: settle.request_hash,
    }
    .abi_encode()
    .into()
}

/// The payment a session op makes: exactly `approve(settlement, amount)` on the token, then
/// `settle(merchant, token, amount, requestHash)`, which is what the host executes for these bytes.
/// Refuses anything but [`encode_session_payment`]'s exact encoding.
pub fn decode_session_payment(call_data: &[u8]) -> Result<DecodedPayment, SessionPaymentCallError> {
    let selector = call_data.get(..4).map(Selector::from_slice);
    if selector != Some(ISessionPaymentCall::executeSessionPaymentCall::SELECTOR.into()) {
        return Err(SessionPaymentCallError::NotSessionPayment { selector });
    }
    if call_data.len() != SESSION_PAYMENT_LEN {
        return Err(SessionPaymentCallError::WrongLength { len: call_data.len() });
    }
    // Words 0..3 are addresses: their 12 high bytes must be zero (the host re-checks the same).
    for word in 0..3 {
        let at = 4 + 32 * word;
        if call_data[at..at + 12].iter().any(|b| *b != 0) {
            return Err(SessionPaymentCallError::DirtyAddress { word });
        }
    }
    let call = ISessionPaymentCall::executeSessionPaymentCall::abi_decode_raw(&call_data[4..])
        .map_err(|_| SessionPaymentCallError::WrongLength { len: call_data.len() })?;
    Ok(DecodedPayment {
        settlement: call.settlement,
        settle: SettleCall {
            merchant: call.merchant,
            token: call.token,
            amount: call.amount,
            request_hash: call.requestHash,
        },
        approve: Some(ApproveCall {
            token: call.token,
            spender: call.settlement,
            amount: call.amount,
        }),
    })
}
