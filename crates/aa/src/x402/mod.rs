//! The x402 v2 "aa-native" scheme: what differs from upstream x402, on top of x402-types.
//!
//! The envelope, requirements, 402 body and resource info are x402-types' v2 wire types,
//! unchanged; this module adds only what aa-native defines — the scheme name, the
//! `eip155:<chainId>` network, [`AaNativeExtra`] in `extra`, the `{userOp, settlementCallSpec}`
//! payload, the header codec's tolerance of NERO's base64url, NERO's reason strings, and the
//! stateless verification steps.
//!
//! Deliberate departures from x402-types 2.0.2, each because it would break interop:
//! - `PAYMENT-RESPONSE` is [`SettlementResponse`], not `v2::SettleResponse` (see its docs).
//! - `"extensions": null`, which NERO sends, is read as absent rather than refused.
//! - Header values are read in either base64 alphabet, with or without padding.

mod amount;
mod error;
mod header;
mod payment_id;
mod reason;
mod types;
mod verify;

#[cfg(test)]
mod tests;

pub use amount::{AmountError, MAX_DECIMALS, TokenAmount, default_decimals, price};
pub use error::PayloadError;
pub use header::{
    MAX_HEADER_LEN, decode_header, decode_header_bytes, decode_payment_payload,
    decode_payment_required, decode_payment_response, decode_payment_signature, encode_header,
    encode_payment_required, encode_payment_response, encode_payment_signature,
    parse_payment_required, payment_payload,
};
pub use payment_id::{
    PAYMENT_ID_CONFLICT, PAYMENT_ID_LEN, PAYMENT_IDENTIFIER, PaymentIdError, is_valid_payment_id,
    payment_fingerprint, payment_id,
};
pub use reason::{Reason, UnknownReason};
pub use types::{
    AaNativeEnvelope, AaNativeExtra, AaNativePayload, AaNativePaymentPayload, AaNativeRequirements,
    RequestBinding, SettlementCallSpec, SettlementResponse, network, parse_network,
};
pub use verify::check_accepted;
/// The upstream v2 wire types this scheme is carried in, re-exported so callers need not name
/// x402-types' module layout.
pub use x402_types::proto::v2::{
    PaymentRequired, PaymentRequirements, ResourceInfo, VerifyResponse, X402Version2,
};

/// The scheme name in `PaymentRequirements.scheme`.
pub const SCHEME: &str = "aa-native";

/// CAIP-2 namespace of every aa-native network.
pub const NAMESPACE: &str = "eip155";

/// Header names in lower case, the form `http::HeaderName::from_static` requires; HTTP header
/// names are case-insensitive and the specs spell them `PAYMENT-REQUIRED` etc.
pub const PAYMENT_REQUIRED_HEADER: &str = "payment-required";
/// Client → server on the paid retry: base64 JSON `PaymentPayload`.
pub const PAYMENT_SIGNATURE_HEADER: &str = "payment-signature";
/// Server → client after settlement: base64 JSON [`SettlementResponse`].
pub const PAYMENT_RESPONSE_HEADER: &str = "payment-response";

/// NERO 402 mainnet.
pub const NERO_MAINNET_CHAIN_ID: u64 = 1689;
/// NERO 402 testnet.
pub const NERO_TESTNET_CHAIN_ID: u64 = 689;
