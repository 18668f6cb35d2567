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
//! The id's rules and what "the same payload" means (the whole `paymentPayload`, the id included)
//! are the protocol's, shared with the paywall and the paying client:
//! [`x402_aa::x402::payment_id`] and [`x402_aa::x402::payment_fingerprint`]. Answers are kept in
//! memory for [`RETENTION`], at most [`CAPACITY`] ids; aa-native's registry and EIP-3009's used
//! nonces keep a payment from settling twice after that, the id only spares the client the
//! refusal.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use alloy::primitives::B256;

/// How long a settlement's answer is kept for its id.
pub const RETENTION: Duration = Duration::from_secs(3600);
/// Most ids remembered; the oldest go first.
pub const CAPACITY: usize = 10_000;

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
    use serde_json::{Value, json};
    use x402_aa::x402::{PAYMENT_IDENTIFIER, payment_fingerprint as fingerprint};

    use super::*;

    fn payload(id: &str) -> Value {
        json!({ "extensions": { PAYMENT_IDENTIFIER: { "info": { "required": false, "id": id } } } })
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
