//! The x402 `payment-identifier` extension on the merchant side: every 402 declares it (optional,
//! `required: false`), and a paid request carrying an id is answered once.
//!
//! | the same id arrives with | answer |
//! |---|---|
//! | the same payment payload, after a paid 2xx answer | that answer again (status, headers including `PAYMENT-RESPONSE`, body); nothing is verified, settled or served twice |
//! | the same payment payload, while its first request runs | waits for it, then as above |
//! | the same payment payload, after a failed attempt | a fresh attempt (a failure is not final) |
//! | another payment payload | HTTP 409 |
//!
//! So a client that lost the answer to a paid request (a dropped connection) sends the same
//! `PAYMENT-SIGNATURE` again and recovers its `PAYMENT-RESPONSE` without paying twice. Answers
//! are kept in memory for [`RETENTION`], at most [`CAPACITY`] ids, bodies up to
//! [`MAX_CACHED_BODY`] bytes.
//!
//! The facilitator honours the same id on `/settle` (`x402_aa_facilitator::payment_id`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Serialize;
use serde_json::{Value, json};
use x402_aa::x402::PAYMENT_ID_LEN;
use x402_types::scheme::ExtensionKey;

/// The extension's key in `extensions`; the id rules live with it in the protocol crate
/// ([`x402_aa::x402::payment_id`]), shared with the facilitator and the paying client.
pub use x402_aa::x402::PAYMENT_IDENTIFIER;
/// How long a paid answer is kept for its id.
pub const RETENTION: Duration = Duration::from_secs(3600);
/// Most ids remembered; the oldest go first.
pub const CAPACITY: usize = 10_000;
/// Larger answers are served but not kept; a retry of them is refused by the facilitator as
/// already settled instead.
pub const MAX_CACHED_BODY: usize = 1 << 20;

/// The declaration in a 402's `extensions`, as `@x402/extensions` writes it: clients that know
/// the extension add an `id`.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentIdentifierDeclaration {
    info: Value,
    schema: Value,
}

impl Default for PaymentIdentifierDeclaration {
    fn default() -> Self {
        Self {
            info: json!({ "required": false }),
            schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "required": { "type": "boolean" },
                    "id": {
                        "type": "string",
                        "minLength": PAYMENT_ID_LEN.start(),
                        "maxLength": PAYMENT_ID_LEN.end(),
                        "pattern": "^[a-zA-Z0-9_-]+$"
                    }
                },
                "required": ["required"]
            }),
        }
    }
}

impl ExtensionKey for PaymentIdentifierDeclaration {
    const EXTENSION_KEY: &'static str = PAYMENT_IDENTIFIER;
}

/// A paid answer, kept whole.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// Buffers `response`; the answer to send now and, if it fits, the copy to keep.
    pub(crate) async fn keep(response: Response) -> (Response, Option<Self>) {
        let (parts, body) = response.into_parts();
        match axum::body::to_bytes(body, MAX_CACHED_BODY).await {
            Ok(bytes) => {
                let answer =
                    Self { status: parts.status, headers: parts.headers.clone(), body: bytes };
                (answer.response(), Some(answer))
            }
            // Too large (or broken): the client gets what could be read; nothing is kept.
            Err(e) => {
                let mut response = Response::from_parts(parts, Body::empty());
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                tracing::warn!(target: "x402_aa::paywall", error = %e, "paid answer not readable");
                (response, None)
            }
        }
    }

    pub(crate) fn response(&self) -> Response {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// One id's slot; holding its lock is serving it.
pub(crate) type Slot = Arc<tokio::sync::Mutex<Option<Answer>>>;

/// Answers by payment id (module docs).
#[derive(Debug, Default)]
pub(crate) struct PaymentIds {
    entries: Mutex<HashMap<String, (B256, Slot, Instant)>>,
}

impl PaymentIds {
    /// The slot of `id` for a payload with `fingerprint`; `None` when the id was used for
    /// another payload.
    pub(crate) fn slot(&self, id: &str, fingerprint: B256) -> Option<Slot> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        entries.retain(|_, (_, _, created)| now.duration_since(*created) < RETENTION);
        if let Some((known, slot, _)) = entries.get(id) {
            return (*known == fingerprint).then(|| slot.clone());
        }
        if entries.len() >= CAPACITY
            && let Some(oldest) =
                entries.iter().min_by_key(|(_, (_, _, c))| *c).map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
        let slot = Slot::default();
        entries.insert(id.to_owned(), (fingerprint, slot.clone(), now));
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(id: &str) -> Value {
        json!({ "extensions": { PAYMENT_IDENTIFIER: { "info": { "required": false, "id": id } } } })
    }

    #[test]
    fn ids_and_conflicts() {
        let id = "pay_0123456789abcdef";
        let ids = PaymentIds::default();
        let a = x402_aa::x402::payment_fingerprint(&payload(id));
        assert!(ids.slot(id, a).is_some());
        assert!(ids.slot(id, a).is_some(), "same payload, same slot");
        assert!(ids.slot(id, B256::ZERO).is_none(), "another payload conflicts");
        let declared = serde_json::to_value(PaymentIdentifierDeclaration::default()).unwrap();
        assert_eq!(declared["info"]["required"], false);
    }
}
