//! The three x402 v2 headers: base64 of UTF-8 JSON.
//!
//! Upstream x402 emits and accepts only standard, padded base64; NERO's docs say base64url. We
//! write what every reader accepts (standard, padded) and read both alphabets, with or without
//! padding, so a message from either side decodes.

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use serde::{Serialize, de::DeserializeOwned};
use x402_types::{proto::v2, util::Base64Bytes};

use super::types::{AaNativePaymentPayload, SettlementResponse};
use super::{AaNativeEnvelope, AaNativePayload, AaNativeRequirements, PayloadError};

/// Longest header value decoded. A UserOp with a factory initCode and a paymaster is a few KiB of
/// JSON; the cap keeps a hostile client from making the server buffer and parse megabytes.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

const DECODE_CONFIG: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, DECODE_CONFIG);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, DECODE_CONFIG);

/// Standard padded base64 of the value's JSON, as x402 v2 headers carry it.
pub fn encode_header<T: Serialize>(value: &T) -> Result<String, PayloadError> {
    let json = serde_json::to_vec(value).map_err(PayloadError::Encode)?;
    Ok(Base64Bytes::encode(json).to_string())
}

/// The JSON bytes inside a header value, whichever base64 alphabet and padding it uses.
pub fn decode_header_bytes(value: impl AsRef<[u8]>) -> Result<Vec<u8>, PayloadError> {
    let value = value.as_ref().trim_ascii();
    if value.len() > MAX_HEADER_LEN {
        return Err(PayloadError::HeaderTooLarge { len: value.len(), max: MAX_HEADER_LEN });
    }
    // The alphabets differ only in two characters; a value mixing them fails in either engine.
    let engine = if value.iter().any(|b| matches!(b, b'-' | b'_')) {
        &URL_SAFE_LENIENT
    } else {
        &STANDARD_LENIENT
    };
    engine.decode(value).map_err(PayloadError::Base64)
}

/// Any x402 header decoded into `T`.
pub fn decode_header<T: DeserializeOwned>(value: impl AsRef<[u8]>) -> Result<T, PayloadError> {
    serde_json::from_slice(&decode_header_bytes(value)?).map_err(PayloadError::Json)
}

/// `PAYMENT-SIGNATURE` for an aa-native payment.
pub fn encode_payment_signature(payload: &AaNativePaymentPayload) -> Result<String, PayloadError> {
    encode_header(payload)
}

/// Decodes and checks a `PAYMENT-SIGNATURE` header as an aa-native payment.
pub fn decode_payment_signature(value: impl AsRef<[u8]>) -> Result<AaNativeEnvelope, PayloadError> {
    decode_payment_payload(decode_header(value)?)
}

/// Checks an already-parsed `paymentPayload` (a facilitator's `/verify` body carries it as JSON,
/// not base64) and returns it typed.
///
/// Order: envelope shape → scheme → network → requirements fields → inner payload, so each
/// failure carries the NERO reason of the first broken layer.
pub fn decode_payment_payload(
    mut value: serde_json::Value,
) -> Result<AaNativeEnvelope, PayloadError> {
    drop_null_extensions(&mut value);
    let envelope: v2::PaymentPayload<serde_json::Value, serde_json::Value> =
        serde_json::from_value(value).map_err(PayloadError::Json)?;
    let accepted = AaNativeRequirements::parse_json(&envelope.accepted)?;
    let inner: AaNativePayload =
        serde_json::from_value(envelope.payload).map_err(PayloadError::InnerPayload)?;
    if inner.settlement_call_spec.request_hash.is_zero() {
        return Err(PayloadError::ZeroRequestHash);
    }
    let payload = v2::PaymentPayload {
        accepted: envelope.accepted,
        payload: inner,
        resource: envelope.resource,
        x402_version: envelope.x402_version,
        extensions: envelope.extensions,
    };
    Ok(AaNativeEnvelope { payload, accepted })
}

/// Wraps a signed aa-native payload in the v2 envelope, echoing the chosen `accepts[]` entry.
pub fn payment_payload(
    accepted: serde_json::Value,
    payload: AaNativePayload,
    resource: Option<v2::ResourceInfo>,
) -> AaNativePaymentPayload {
    v2::PaymentPayload {
        accepted,
        payload,
        resource,
        x402_version: v2::X402Version2,
        extensions: v2::ExtensionsJson::new(),
    }
}

/// `PAYMENT-REQUIRED`; also what a 402 body carries as JSON.
pub fn encode_payment_required<T: Serialize>(
    required: &v2::PaymentRequired<T>,
) -> Result<String, PayloadError> {
    encode_header(required)
}

/// Decodes a `PAYMENT-REQUIRED` header. Entries of every scheme are kept, as raw JSON so the
/// chosen one can be echoed verbatim; pick the aa-native ones with
/// [`AaNativeRequirements::select`].
pub fn decode_payment_required(
    value: impl AsRef<[u8]>,
) -> Result<v2::PaymentRequired<serde_json::Value>, PayloadError> {
    parse_payment_required(decode_header(value)?)
}

/// A `PaymentRequired` from JSON (a 402 body), with the same checks as the header form.
pub fn parse_payment_required(
    mut value: serde_json::Value,
) -> Result<v2::PaymentRequired<serde_json::Value>, PayloadError> {
    drop_null_extensions(&mut value);
    let required: v2::PaymentRequired<serde_json::Value> =
        serde_json::from_value(value).map_err(PayloadError::Json)?;
    if required.accepts.is_empty() {
        return Err(PayloadError::EmptyAccepts);
    }
    Ok(required)
}

/// `PAYMENT-RESPONSE`: the settlement result a server returns with the paid answer.
pub fn encode_payment_response(response: &SettlementResponse) -> Result<String, PayloadError> {
    encode_header(response)
}

/// Decodes a `PAYMENT-RESPONSE` header (either base64 alphabet).
pub fn decode_payment_response(
    value: impl AsRef<[u8]>,
) -> Result<SettlementResponse, PayloadError> {
    decode_header(value)
}

/// NERO sends `"extensions": null` (valid upstream: optional and nullable), which x402-types'
/// map type refuses; absent and null mean the same, so null is dropped before parsing.
fn drop_null_extensions(value: &mut serde_json::Value) {
    if let Some(object) = value.as_object_mut()
        && object.get("extensions").is_some_and(serde_json::Value::is_null)
    {
        object.remove("extensions");
    }
}
