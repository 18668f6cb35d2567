//! The x402 `payment-identifier` extension's wire rules, in one place for every layer that reads
//! them: the paywall and the facilitator honour a client's id (one answer per id), the paying
//! client sends one. What each layer keeps per id (a cached HTTP answer, a settle answer) stays
//! with that layer.
//!
//! The id travels in `paymentPayload.extensions["payment-identifier"].info.id` and must be 16–128
//! characters of `[A-Za-z0-9_-]` (the extension's JSON schema, as `@x402/extensions` declares it).

use alloy::primitives::{B256, keccak256};
use serde_json::Value;

/// The extension's key in `extensions` (of a 402 and of a payment payload).
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";

/// The reason a reused id with another payload is refused with (HTTP 409).
pub const PAYMENT_ID_CONFLICT: &str = "payment_identifier_conflict";

/// Shortest and longest id the extension allows.
pub const PAYMENT_ID_LEN: std::ops::RangeInclusive<usize> = 16..=128;

/// Why a payment payload's `payment-identifier` id is not one the extension allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentIdError {
    /// `info.id` is present but not a JSON string.
    #[error("payment-identifier info.id is not a string")]
    NotAString,
    /// The id breaks the length or character rule ([`is_valid_payment_id`]).
    #[error("payment-identifier id {0:?} must be 16-128 characters of A-Z, a-z, 0-9, '-' and '_'")]
    Malformed(String),
}

/// Whether `id` follows the extension's rules.
pub fn is_valid_payment_id(id: &str) -> bool {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    PAYMENT_ID_LEN.contains(&id.len()) && id.chars().all(valid_char)
}

/// The client's id in a payment payload (JSON): `Ok(None)` when it sent none, an error when it
/// sent one the extension does not allow (a layer then refuses it or ignores it, but never
/// honours it).
pub fn payment_id(payment_payload: &Value) -> Result<Option<&str>, PaymentIdError> {
    let Some(id) = payment_payload
        .get("extensions")
        .and_then(|e| e.get(PAYMENT_IDENTIFIER))
        .and_then(|e| e.get("info"))
        .and_then(|i| i.get("id"))
    else {
        return Ok(None);
    };
    let id = id.as_str().ok_or(PaymentIdError::NotAString)?;
    if !is_valid_payment_id(id) {
        return Err(PaymentIdError::Malformed(id.to_owned()));
    }
    Ok(Some(id))
}

/// What "the same payload" means for an id: keccak256 of the whole payload's JSON (the id
/// included) with every object's keys sorted, so the same payload re-encoded with its keys in
/// another order compares equal. Sorted here rather than left to serde_json, whose map order
/// depends on a feature (`preserve_order`) any crate in the build may switch on.
pub fn payment_fingerprint(payment_payload: &Value) -> B256 {
    let mut canonical = String::new();
    write_canonical(payment_payload, &mut canonical);
    keccak256(canonical)
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload(id: &str) -> Value {
        json!({ "extensions": { PAYMENT_IDENTIFIER: { "info": { "required": false, "id": id } } } })
    }

    #[test]
    fn ids_are_read_and_checked() {
        assert_eq!(payment_id(&json!({})), Ok(None));
        assert_eq!(payment_id(&json!({ "extensions": {} })), Ok(None));
        assert_eq!(payment_id(&json!({ "extensions": null })), Ok(None));
        let id = "pay_7d5d747be160e280504c099d984bcfe0";
        assert_eq!(payment_id(&payload(id)), Ok(Some(id)));
        assert_eq!(payment_id(&payload(&"a".repeat(16))), Ok(Some("a".repeat(16).as_str())));
        assert_eq!(payment_id(&payload(&"a".repeat(128))).map(|i| i.map(str::len)), Ok(Some(128)));
        assert_eq!(payment_id(&payload("short")), Err(PaymentIdError::Malformed("short".into())));
        assert!(payment_id(&payload("pay_7d5d747be160e280 504c")).is_err());
        assert!(payment_id(&payload(&"a".repeat(129))).is_err());
        let not_string = json!({ "extensions": { PAYMENT_IDENTIFIER: { "info": { "id": 7 } } } });
        assert_eq!(payment_id(&not_string), Err(PaymentIdError::NotAString));
    }

    #[test]
    fn fingerprints_ignore_key_order_but_not_content() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":2,"b":1}"#).unwrap();
        assert_eq!(payment_fingerprint(&a), payment_fingerprint(&b));
        assert_ne!(payment_fingerprint(&a), payment_fingerprint(&json!({ "a": 2 })));
        let nested: Value = serde_json::from_str(r#"{"x":[{"d":1,"c":[]}],"e":"\""}"#).unwrap();
        let reordered: Value = serde_json::from_str(r#"{"e":"\"","x":[{"c":[],"d":1}]}"#).unwrap();
        assert_eq!(payment_fingerprint(&nested), payment_fingerprint(&reordered));
        assert_ne!(
            payment_fingerprint(&json!({ "x": [1, 2] })),
            payment_fingerprint(&json!({ "x": [2, 1] }))
        );
    }
}
