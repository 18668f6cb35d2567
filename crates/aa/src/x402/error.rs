//! Everything that can be wrong with an aa-native x402 message, mapped to NERO's reasons.

use alloy::primitives::{Address, U256};

use super::Reason;
use crate::{accounts::AccountCallDataError, call_data::CallDataError};

/// Why an aa-native header, envelope or payload was refused.
///
/// Variants follow the order a facilitator checks them in (nero402-spec §8.2), and each maps to
/// exactly one [`Reason`] through [`PayloadError::reason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The header value is over [`MAX_HEADER_LEN`](super::header::MAX_HEADER_LEN); refused
    /// before decoding.
    #[error("header value is {len} bytes; at most {max} are accepted")]
    HeaderTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The header value is not base64 in either alphabet.
    #[error("header value is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// The decoded bytes are not JSON of an x402 v2 message.
    #[error("not a valid x402 v2 message: {0}")]
    Json(#[source] serde_json::Error),
    /// A `PaymentRequired` with an empty `accepts`: nothing can be paid.
    #[error("PaymentRequired lists no accepted payment")]
    EmptyAccepts,
    /// The requirements name another scheme; another scheme's handler may take it.
    #[error("scheme {scheme:?} is not aa-native")]
    UnsupportedScheme {
        /// The scheme named.
        scheme: String,
    },
    /// The network is not a CAIP-2 `eip155:<chainId>`.
    #[error("network {network:?} is not an eip155:<chainId> network")]
    InvalidNetwork {
        /// The network as given.
        network: String,
    },
    /// An amount, address or `extra` field of the requirements does not parse.
    #[error("requirements field {field} is malformed: {value:?}")]
    InvalidRequirementsField {
        /// The field's wire name.
        field: &'static str,
        /// Its value, or the parser's complaint for `extra`.
        value: String,
    },
    /// The inner `payload` is not `{ userOp, settlementCallSpec }`.
    #[error("payload is not an aa-native userOp + settlementCallSpec: {0}")]
    InnerPayload(#[source] serde_json::Error),
    /// `settle` would revert on a zero requestHash, so the payload is refused up front.
    #[error("settlementCallSpec.requestHash is zero, which the settlement contract refuses")]
    ZeroRequestHash,
    /// The payer's `accepted` names another chain than the merchant requires.
    #[error("network eip155:{actual} differs from the required eip155:{expected}")]
    NetworkMismatch {
        /// The merchant's chain id.
        expected: u64,
        /// The payer's chain id.
        actual: u64,
    },
    /// The payer's `accepted` or `settlementCallSpec` pays another amount than required.
    #[error("amount {actual} differs from the required {expected}")]
    AmountMismatch {
        /// The required amount, in the token's atomic units.
        expected: U256,
        /// The payer's amount, in the token's atomic units.
        actual: U256,
    },
    /// The payer's `accepted` or `settlementCallSpec` pays in another token than required.
    #[error("asset {actual} differs from the required {expected}")]
    AssetMismatch {
        /// The required token.
        expected: Address,
        /// The payer's token.
        actual: Address,
    },
    /// The payer's `accepted` or `settlementCallSpec` pays someone other than the merchant.
    #[error("payTo {actual} differs from the required {expected}")]
    PayToMismatch {
        /// The merchant's `payTo`.
        expected: Address,
        /// The payer's recipient.
        actual: Address,
    },
    /// Another requirements field (`maxTimeoutSeconds`, `extra`, the settlement contract)
    /// differs from the merchant's.
    #[error("{field} differs from the merchant's payment requirements")]
    RequirementsMismatch {
        /// The field's wire name.
        field: &'static str,
    },
    /// `userOp.callData` is not a payment in the account kind's encoding.
    #[error("userOp.callData is not a settle payment: {0}")]
    CallData(Box<AccountCallDataError>),
    /// The `settle` in callData differs from `settlementCallSpec`: the payer signed something
    /// other than what it declared.
    #[error("settle(...) {field} in callData differs from settlementCallSpec")]
    SpecMismatch {
        /// The first differing argument (`merchant`, `token`, `amount`, `requestHash`).
        field: &'static str,
    },
    /// The payload's request binding does not hash to its `requestHash` (for this merchant and
    /// chain), or cannot be hashed at all: it describes another request than the one paid.
    #[error("payload.request does not hash to settlementCallSpec.requestHash: {0}")]
    RequestBindingMismatch(String),
    /// Serializing an outgoing message failed; a bug, not bad input.
    #[error("could not serialise the message: {0}")]
    Encode(#[source] serde_json::Error),
}

impl From<AccountCallDataError> for PayloadError {
    fn from(e: AccountCallDataError) -> Self {
        // Boxed: the kinds' decoders carry ABI errors, which would make every result that can
        // fail with a PayloadError several times larger.
        Self::CallData(Box::new(e))
    }
}

impl From<CallDataError> for PayloadError {
    fn from(e: CallDataError) -> Self {
        AccountCallDataError::from(e).into()
    }
}

impl PayloadError {
    /// The NERO reason string a facilitator answers with.
    pub fn reason(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Typed form of [`PayloadError::reason`].
    pub fn kind(&self) -> Reason {
        match self {
            Self::HeaderTooLarge { .. }
            | Self::Base64(_)
            | Self::Json(_)
            | Self::EmptyAccepts
            | Self::InvalidRequirementsField { .. } => Reason::InvalidEnvelope,
            Self::UnsupportedScheme { .. } => Reason::UnsupportedScheme,
            Self::InvalidNetwork { .. } | Self::NetworkMismatch { .. } => Reason::NetworkMismatch,
            Self::InnerPayload(_) | Self::ZeroRequestHash => Reason::InvalidInnerPayload,
            Self::AmountMismatch { .. } => Reason::AmountMismatch,
            Self::AssetMismatch { .. } => Reason::AssetMismatch,
            Self::PayToMismatch { .. } => Reason::PayToMismatch,
            Self::RequirementsMismatch { .. } => Reason::RequirementsMismatch,
            Self::CallData(_) => Reason::CalldataDecodeFailed,
            Self::SpecMismatch { .. } => Reason::SpecMismatch,
            Self::RequestBindingMismatch(_) => Reason::RequestMismatch,
            Self::Encode(_) => Reason::InternalError,
        }
    }
}
