//! The x402 `payment-identifier` extension on the paying side: when a 402 declares it, the paid
//! retry carries a fresh id in `PAYMENT-SIGNATURE`'s `extensions`, so the merchant and its
//! facilitator settle it once however often the same signed payment arrives, and a client that
//! lost the answer can send the same header again to recover its `PAYMENT-RESPONSE`
//! ([`PaidResponse::payment_id`](super::PaidResponse) and
//! [`PaidResponse::payment_signature`](super::PaidResponse) are what it resends).

use async_trait::async_trait;
use reqwest::{StatusCode, header::HeaderValue};
use reqwest_middleware as rqm;
use x402_aa::x402::{
    PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_HEADER, decode_header_bytes, encode_header,
};

use super::Attempt;

/// The extension's key in `extensions` (the protocol crate holds the extension's rules).
pub use x402_aa::x402::PAYMENT_IDENTIFIER;

/// The middleware inside x402-reqwest's (next to [`PaymentRequiredCompat`](super::PaymentRequiredCompat))
/// that adds the id (module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentIdentifier;

#[async_trait]
impl rqm::Middleware for PaymentIdentifier {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: rqm::Next<'_>,
    ) -> rqm::Result<reqwest::Response> {
        let attempt = Attempt::current();
        if let Some(attempt) = &attempt
            && let Some(value) = req.headers().get(PAYMENT_SIGNATURE_HEADER)
        {
            let declared = attempt.lock().payment_id_declared;
            if declared && let Some((id, value)) = with_payment_id(value.as_bytes()) {
                req.headers_mut().insert(PAYMENT_SIGNATURE_HEADER, value.clone());
                let mut state = attempt.lock();
                state.payment_id = Some(id);
                state.payment_signature = Some(value);
            }
        }
        let response = next.run(req, extensions).await?;
        if response.status() == StatusCode::PAYMENT_REQUIRED
            && let Some(attempt) = &attempt
            && let Some(value) = response.headers().get(PAYMENT_REQUIRED_HEADER)
        {
            attempt.lock().payment_id_declared = declares_payment_id(value.as_bytes());
        }
        Ok(response)
    }
}

fn declares_payment_id(header: &[u8]) -> bool {
    decode_header_bytes(header)
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .is_some_and(|required| required["extensions"].get(PAYMENT_IDENTIFIER).is_some())
}

/// The payload with a fresh id (`pay_` + 32 random hex digits), re-encoded.
fn with_payment_id(header: &[u8]) -> Option<(String, HeaderValue)> {
    let json = decode_header_bytes(header).ok()?;
    let mut payload: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).ok()?;
    let id = format!("pay_{}", alloy::hex::encode(random));
    let object = payload.as_object_mut()?;
    let extensions = object.entry("extensions").or_insert_with(|| serde_json::json!({}));
    if !extensions.is_object() {
        *extensions = serde_json::json!({});
    }
    extensions[PAYMENT_IDENTIFIER] = serde_json::json!({ "info": { "required": false, "id": id } });
    let value = HeaderValue::from_str(&encode_header(&payload).ok()?).ok()?;
    Some((id, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_added_to_the_payload() {
        let header = encode_header(&serde_json::json!({ "x402Version": 2, "extensions": null }))
            .expect("encode");
        let (id, value) = with_payment_id(header.as_bytes()).expect("payload");
        assert!(id.starts_with("pay_") && id.len() == 36, "{id}");
        let json = decode_header_bytes(value.as_bytes()).expect("base64");
        let payload: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(payload["extensions"][PAYMENT_IDENTIFIER]["info"]["id"], id.as_str());
        let required = encode_header(&serde_json::json!({
            "extensions": { PAYMENT_IDENTIFIER: { "info": { "required": false } } }
        }))
        .expect("encode");
        assert!(declares_payment_id(required.as_bytes()));
        assert!(!declares_payment_id(b"not base64"));
    }
}
