//! The wrapper's request and response fix-ups around x402-axum (crate docs: why each exists).

use axum::{
    body::{Body, HttpBody},
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use serde::Deserialize;
use x402_aa::x402::{
    AaNativeRequirements, PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER, decode_header_bytes, encode_header,
};
use x402_types::{
    proto::v2::{PaymentRequirements, PriceTag},
    util::Base64Bytes,
};

/// Rewrites `PAYMENT-SIGNATURE` into the form x402-axum accepts, when it is a readable payment
/// that x402-axum would refuse for its encoding or spelling alone. Anything unreadable is left
/// untouched, for x402-axum to refuse as it does.
pub(crate) fn normalize_request(mut req: Request, tags: &[PriceTag]) -> Request {
    let normalized = req
        .headers()
        .get(PAYMENT_SIGNATURE_HEADER)
        .and_then(|value| normalized_signature(value.as_bytes(), tags));
    if let Some(value) = normalized {
        req.headers_mut().insert(PAYMENT_SIGNATURE_HEADER, value);
    }
    req
}

fn normalized_signature(raw: &[u8], tags: &[PriceTag]) -> Option<HeaderValue> {
    // Exactly x402-axum's own decoding: standard alphabet, padding required.
    let mut changed = Base64Bytes::from(raw).decode().is_err();
    let json = decode_header_bytes(raw).ok()?;
    let mut payload: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let object = payload.as_object_mut()?;
    if object.get("extensions").is_some_and(serde_json::Value::is_null) {
        object.remove("extensions");
        changed = true;
    }
    if let Some(accepted) = object.get_mut("accepted")
        && let Some(tag) = equivalent_tag(accepted, tags)
    {
        *accepted = serde_json::to_value(&tag.requirements).ok()?;
        changed = true;
    }
    if !changed {
        return None;
    }
    HeaderValue::from_str(&encode_header(&payload).ok()?).ok()
}

/// The price tag `accepted` means, when it differs from that tag only in spelling (address case,
/// leading zeros of the amount): equal as aa-native requirements, not equal as wire structs.
fn equivalent_tag<'a>(accepted: &serde_json::Value, tags: &'a [PriceTag]) -> Option<&'a PriceTag> {
    let wire = PaymentRequirements::deserialize(accepted).ok()?;
    if tags.iter().any(|tag| tag.requirements == wire) {
        return None;
    }
    let typed = AaNativeRequirements::parse(&wire).ok()?;
    tags.iter().find(|tag| AaNativeRequirements::parse(&tag.requirements).is_ok_and(|r| r == typed))
}

/// Adds the failed settlement's `PAYMENT-RESPONSE` and the 402 body x402-axum leaves out.
pub(crate) fn finish_response(
    mut response: Response,
    settlement: Option<serde_json::Value>,
) -> Response {
    let failed = settlement.filter(|s| s.get("success").and_then(|v| v.as_bool()) != Some(true));
    if let Some(failed) = failed
        && !response.headers().contains_key(PAYMENT_RESPONSE_HEADER)
        && let Some(value) =
            encode_header(&failed).ok().and_then(|v| HeaderValue::from_str(&v).ok())
    {
        response.headers_mut().insert(PAYMENT_RESPONSE_HEADER, value);
    }
    if response.status() == StatusCode::PAYMENT_REQUIRED {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if response.status() == StatusCode::PAYMENT_REQUIRED
        && response.body().size_hint().exact() == Some(0)
        && let Some(json) = response
            .headers()
            .get(PAYMENT_REQUIRED_HEADER)
            .and_then(|value| decode_header_bytes(value.as_bytes()).ok())
    {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        *response.body_mut() = Body::from(json);
    }
    response
}

/// The `payment-identifier` id of a paid request and its payload's fingerprint, if it has a
/// well-formed one. A malformed id is not honoured here: the request goes on as if it had none,
/// and the facilitator refuses it at `/settle`.
pub(crate) fn payment_id(req: &Request) -> Option<(String, alloy::primitives::B256)> {
    let header = req.headers().get(PAYMENT_SIGNATURE_HEADER)?;
    let json = decode_header_bytes(header.as_bytes()).ok()?;
    let payload: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let id = x402_aa::x402::payment_id(&payload).ok()??.to_owned();
    Some((id, x402_aa::x402::payment_fingerprint(&payload)))
}

/// HTTP 409 for a `payment-identifier` reused with another payment.
pub(crate) fn conflict(id: &str) -> Response {
    let body = serde_json::json!({
        "error": x402_aa::x402::PAYMENT_ID_CONFLICT,
        "message": format!("payment-identifier {id} was already used for another payment"),
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::CONFLICT;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
