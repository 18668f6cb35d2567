//! The x402 `payment-identifier` extension on `/settle`: a client-chosen id in
//! `paymentPayload.extensions["payment-identifier"].info.id` is an idempotency key.
//!
//! | the same id arrives with | answer |
//! |---|---|
//! | the same payload, after a successful settlement | that settlement's answer, settled once |
//! | the same payload, while its settlement runs | waits for it, then as above |
//! | the same payload, after a failed settlement | settles again (a failure is not final: the payment may still be good) |
//! | a different payload | HTTP 409, `payment_identifier_conflict` |
//!
//! "The same payload" is the whole `paymentPayload` (the id included), compared by the keccak of
//! its canonical JSON (keys sorted). Answers are kept in memory for [`RETENTION`], at most
//! [`CAPACITY`] ids; aa-native's registry and EIP-3009's used nonces keep a payment from settling
//! twice after that, the id only spares the client the refusal.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use alloy::primitives::{B256, keccak256};
use serde_json::Value;

/// The extension's key in `extensions`.
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";
/// The answer to a reused id with another payload.
pub const CONFLICT: &str = "payment_identifier_conflict";
/// How long a settlement's answer is kept for its id.
pub const RETENTION: Duration = Duration::from_secs(3600);
/// Most ids remembered; the oldest go first.
pub const CAPACITY: usize = 10_000;

/// The client's id, if it sent one. An id that breaks the extension's rules (16–128 characters
/// of `[A-Za-z0-9_-]`) is an error, so it is refused rather than silently not honoured.
pub fn payment_id(payment_payload: &Value) -> Result<Option<String>, String> {
    let Some(extension) = payment_payload.get("extensions").and_then(|e| e.get(PAYMENT_IDENTIFIER))
    else {
        return Ok(None);
    };
    let Some(id) = extension.get("info").and_then(|i| i.get("id")) else { return Ok(None) };
    let id = id.as_str().ok_or("payment-identifier info.id is not a string")?;
    let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !(16..=128).contains(&id.len()) || !id.chars().all(valid_char) {
        return Err(format!(
            "payment-identifier id {id:?} must be 16-128 characters of A-Z, a-z, 0-9, '-' and '_'"
        ));
    }
    Ok(Some(id.to_owned()))
}

/// keccak256 of the canonical JSON (serde_json's maps are sorted).
pub fn fingerprint(payment_payload: &Value) -> B256 {
    keccak256(payment_payload.to_string())
}

/// One id's slot: the successful answer once there is one. Holding its lock is settling it.
pub type Slot<T> = Arc<tokio::sync::Mutex<Option<T>>>;

/// Answers by payment id (module docs).
#[derive(Debug)]
pub struct PaymentIds<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
}

#[derive(Debug)]
struct Entry<T> {
    fingerprint: B256,
    slot: Slot<T>,
    created: Instant,
}

impl<T> Default for PaymentIds<T> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<T> PaymentIds<T> {
    /// The slot of `id` for a payload with `fingerprint`, or `None` when the id was used for
    /// another payload (a conflict).
    pub fn slot(&self, id: &str, fingerprint: B256) -> Option<Slot<T>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        entries.retain(|_, e| now.duration_since(e.created) < RETENTION);
        if let Some(entry) = entries.get(id) {
            return (entry.fingerprint == fingerprint).then(|| entry.slot.clone());
        }
        if entries.len() >= CAPACITY
            && let Some(oldest) =
                entries.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        let slot = Slot::default();
        entries.insert(id.to_owned(), Entry { fingerprint, slot: slot.clone(), created: now });
        Some(slot)
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
        let id = "pay_7d5d747be160e280504c099d984bcfe0";
        assert_eq!(payment_id(&payload(id)), Ok(Some(id.to_owned())));
        assert!(payment_id(&payload("short")).is_err());
        assert!(payment_id(&payload("pay_7d5d747be160e280 504c")).is_err());
        assert!(payment_id(&payload(&"a".repeat(129))).is_err());
    }

    #[tokio::test]
    async fn same_id_same_payload_shares_a_slot_other_payload_conflicts() {
        let ids = PaymentIds::<u32>::default();
        let a = fingerprint(&payload("pay_aaaaaaaaaaaaaaaa"));
        let slot = ids.slot("pay_aaaaaaaaaaaaaaaa", a).expect("new id");
        *slot.lock().await = Some(7);
        let again = ids.slot("pay_aaaaaaaaaaaaaaaa", a).expect("same payload");
        assert_eq!(*again.lock().await, Some(7));
        let b = fingerprint(&json!({ "other": true }));
        assert!(ids.slot("pay_aaaaaaaaaaaaaaaa", b).is_none(), "another payload conflicts");
    }
}
