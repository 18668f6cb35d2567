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
    #[error("header value is {len} bytes; at most {max} are accepted")]
    HeaderTooLarge { len: usize, max: usize },
    #[error("header value is not base64: {0}")]
    Base64(#[source] base64::DecodeError),
    #[error("not a valid x402 v2 message: {0}")]
    Json(#[source] serde_json::Error),
    #[error("PaymentRequired lists no accepted payment")]
    EmptyAccepts,
    #[error("scheme {scheme:?} is not aa-native")]
    UnsupportedScheme { scheme: String },
    #[error("network {network:?} is not an eip155:<chainId> network")]
    InvalidNetwork { network: String },
    #[error("requirements field {field} is malformed: {value:?}")]
    InvalidRequirementsField { field: &'static str, value: String },
    #[error("payload is not an aa-native userOp + settlementCallSpec: {0}")]
    InnerPayload(#[source] serde_json::Error),
    #[error("settlementCallSpec.requestHash is zero, which the settlement contract refuses")]
    ZeroRequestHash,
    #[error("network eip155:{actual} differs from the required eip155:{expected}")]
    NetworkMismatch { expected: u64, actual: u64 },
    #[error("amount {actual} differs from the required {expected}")]
    AmountMismatch { expected: U256, actual: U256 },
    #[error("asset {actual} differs from the required {expected}")]
    AssetMismatch { expected: Address, actual: Address },
    #[error("payTo {actual} differs from the required {expected}")]
    PayToMismatch { expected: Address, actual: Address },
    #[error("{field} differs from the merchant's payment requirements")]
    RequirementsMismatch { field: &'static str },
    #[error("userOp.callData is not a settle payment: {0}")]
    CallData(Box<AccountCallDataError>),
    #[error("settle(...) {field} in callData differs from settlementCallSpec")]
    SpecMismatch { field: &'static str },
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
            Self::Encode(_) => Reason::InternalError,
        }
    }
}
