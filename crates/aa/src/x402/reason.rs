//! The stable reason strings a facilitator answers with.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// NERO 402's facilitator error codes (nero402-spec §8.4), plus the one upstream x402 code we need
/// for bad merchant configuration.
///
/// NERO calls these strings stable: renaming one is a wire break, so every error type in this
/// workspace maps onto this enum instead of spelling strings itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// `paymentPayload` does not match the v2 envelope (bad base64, JSON or field types).
    InvalidEnvelope,
    /// The facilitator does not handle the scheme.
    UnsupportedScheme,
    /// `accepted` differs from the merchant's requirements in a field with no specific code.
    RequirementsMismatch,
    /// `accepted.network` differs, or is not an `eip155:<id>` network.
    NetworkMismatch,
    /// `accepted.amount` (or the settled amount) differs.
    AmountMismatch,
    /// `accepted.asset` (or the settled token) differs.
    AssetMismatch,
    /// `accepted.payTo` (or the settled merchant) differs. Note NERO's camelCase.
    PayToMismatch,
    /// `payload.userOp` or `payload.settlementCallSpec` is malformed.
    InvalidInnerPayload,
    /// `userOp.callData` is not an `execute`/`executeBatch` payment around `settle(...)`.
    CalldataDecodeFailed,
    /// The decoded `settle` arguments differ from `settlementCallSpec`.
    SpecMismatch,
    /// The requestHash has already settled.
    Replay,
    /// Another settlement of this requestHash is in progress.
    InFlight,
    /// The bundler (or paymaster) refused the UserOp or failed to answer.
    BundlerError,
    /// The UserOp was included but its execution reverted.
    UserOpFailed,
    /// No receipt arrived before the deadline; the op may still land.
    ReceiptTimeout,
    /// A fault on the answering side.
    InternalError,
    /// Upstream x402 §9: the merchant's own requirements (price, asset, …) are unusable.
    InvalidPaymentRequirements,
    /// Ours, not NERO's (whose payload cannot show what its requestHash binds): the payload's
    /// request binding names another request (method or resource) than the one it pays for, or
    /// does not hash to its requestHash.
    RequestMismatch,
}

impl Reason {
    /// Every reason, in the order NERO lists them.
    pub const ALL: [Self; 18] = [
        Self::InvalidEnvelope,
        Self::UnsupportedScheme,
        Self::RequirementsMismatch,
        Self::NetworkMismatch,
        Self::AmountMismatch,
        Self::AssetMismatch,
        Self::PayToMismatch,
        Self::InvalidInnerPayload,
        Self::CalldataDecodeFailed,
        Self::SpecMismatch,
        Self::Replay,
        Self::InFlight,
        Self::BundlerError,
        Self::UserOpFailed,
        Self::ReceiptTimeout,
        Self::InternalError,
        Self::InvalidPaymentRequirements,
        Self::RequestMismatch,
    ];

    /// The wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidEnvelope => "invalid_envelope",
            Self::UnsupportedScheme => "unsupported_scheme",
            Self::RequirementsMismatch => "requirements_mismatch",
            Self::NetworkMismatch => "network_mismatch",
            Self::AmountMismatch => "amount_mismatch",
            Self::AssetMismatch => "asset_mismatch",
            Self::PayToMismatch => "payTo_mismatch",
            Self::InvalidInnerPayload => "invalid_inner_payload",
            Self::CalldataDecodeFailed => "calldata_decode_failed",
            Self::SpecMismatch => "spec_mismatch",
            Self::Replay => "replay",
            Self::InFlight => "in_flight",
            Self::BundlerError => "bundler_error",
            Self::UserOpFailed => "user_op_failed",
            Self::ReceiptTimeout => "receipt_timeout",
            Self::InternalError => "internal_error",
            Self::InvalidPaymentRequirements => "invalid_payment_requirements",
            Self::RequestMismatch => "request_mismatch",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the [`Reason`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown x402 reason {0:?}")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_nero_codes_and_round_trip() {
        let strings: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            strings,
            [
                "invalid_envelope",
                "unsupported_scheme",
                "requirements_mismatch",
                "network_mismatch",
                "amount_mismatch",
                "asset_mismatch",
                "payTo_mismatch",
                "invalid_inner_payload",
                "calldata_decode_failed",
                "spec_mismatch",
                "replay",
                "in_flight",
                "bundler_error",
                "user_op_failed",
                "receipt_timeout",
                "internal_error",
                "invalid_payment_requirements",
                "request_mismatch",
            ]
        );
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), r);
        }
        assert!("pay_to_mismatch".parse::<Reason>().is_err());
    }
}
