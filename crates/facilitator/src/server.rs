//! The HTTP service (axum 0.8): x402-rs' facilitator routes, with the request handling NERO's
//! codes need in front of x402-rs' dispatcher.
//!
//! | route | answer |
//! |---|---|
//! | `POST /verify` | `{isValid, payer}` / `{isValid: false, invalidReason, invalidMessage, payer?, details?}` |
//! | `POST /settle` | x402 `SettlementResponse` (`success`, `transaction`, `network`, `payer`, `errorReason?`, `errorMessage?`) |
//! | `GET /supported` | `{kinds, extensions, signers}` for every registered scheme and chain |
//! | `GET /health` | `/supported`'s body when the registry answers, else 503 |
//! | `GET /metrics` | Prometheus metrics, OpenMetrics text ([`crate::metrics`]) |
//! | `GET /verify`, `GET /settle`, `GET /` | x402-rs' descriptions and greeting |
//!
//! HTTP statuses follow the official TypeScript facilitator: every verdict of a scheme is
//! answered 200 (aa-native's `in_flight` adds `Retry-After: 1`), except a fault of the
//! facilitator itself (`unexpected_verify_error` / `unexpected_settle_error`), which is 500. A
//! request no scheme can take is 400 with the spec's reason (`invalid_x402_version`,
//! `invalid_payload`, `invalid_network`, `unsupported_scheme`; NERO's codes when it names
//! aa-native); a body over the limit is 413, one not declared JSON 415; a `payment-identifier`
//! reused for another payload is 409. Every refusal carries `payer` and `network` when the
//! request names them.

use std::{
    collections::{BTreeMap, HashSet},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use x402_aa::x402::{self, Reason};
use x402_facilitator_local::{FacilitatorLocal, handlers};
use x402_types::{facilitator::Facilitator, proto, scheme::SchemeHandlerSlug};

use crate::{aa_native::AaNative, payment_id, store::Store};

/// Shared state of the routes.
pub(crate) struct AppState {
    pub(crate) facilitator: FacilitatorLocal<x402_types::scheme::SchemeRegistry>,
    /// The `(chain, version, scheme)` slugs the registry holds.
    pub(crate) routes: HashSet<SchemeHandlerSlug>,
    pub(crate) aa_native: BTreeMap<u64, Arc<AaNative>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) max_body_bytes: usize,
    /// `/settle` answers by x402 `payment-identifier` (`payment_id.rs`).
    pub(crate) payment_ids: payment_id::PaymentIds<SettleAnswer>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("routes", &self.routes)
            .field("aa_native", &self.aa_native.keys())
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Verify,
    Settle,
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/", get(handlers::get_root))
        .route("/verify", get(handlers::get_verify_info).post(post_verify))
        .route("/settle", get(handlers::get_settle_info).post(post_settle))
        .route("/supported", get(get_supported))
        .route("/health", get(get_health))
        .route("/metrics", get(crate::metrics::get_metrics))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

async fn post_verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&state, Kind::Verify, &headers, body).await
}

async fn post_settle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&state, Kind::Settle, &headers, body).await
}

async fn handle(
    state: &AppState,
    kind: Kind,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("request body exceeds {} bytes", state.max_body_bytes)
            } else {
                format!("could not read the request body: {rejection}")
            };
            let reason = Reason::InvalidEnvelope.as_str();
            return refusal(kind, status, reason, &message, &Known::default());
        }
    };
    if !is_json(headers) {
        return refusal(
            kind,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::InvalidEnvelope.as_str(),
            "Content-Type must be application/json",
            &Known::default(),
        );
    }
    let value = match request_json(&body) {
        Ok(value) => value,
        Err(message) => {
            let reason = Reason::InvalidEnvelope.as_str();
            return refusal(kind, StatusCode::BAD_REQUEST, reason, &message, &Known::default());
        }
    };
    let known = Known::of(&value);
    let raw = match serde_json::value::to_raw_value(&value) {
        Ok(raw) => raw,
        Err(e) => {
            let (reason, message) = (Reason::InvalidEnvelope.as_str(), e.to_string());
            return refusal(kind, StatusCode::BAD_REQUEST, reason, &message, &known);
        }
    };
    let request = proto::VerifyRequest::from(raw);
    let routed = request.scheme_handler_slug().is_some_and(|slug| state.routes.contains(&slug));
    if !routed {
        let (reason, message) = match unroutable_aa_native(&request) {
            Some((reason, message, _)) => (reason, message),
            None => unroutable(&value, &state.routes),
        };
        return refusal(kind, StatusCode::BAD_REQUEST, reason, &message, &known);
    }
    match kind {
        Kind::Verify => match state.facilitator.verify(&request).await {
            Ok(answer) => verdict(answer.0, "invalidReason"),
            Err(e) => e.into_response(),
        },
        Kind::Settle => {
            let payload = &value["paymentPayload"];
            match x402::payment_id(payload) {
                Err(e) => {
                    let reason = crate::exact::INVALID_PAYLOAD;
                    refusal(kind, StatusCode::BAD_REQUEST, reason, &e.to_string(), &known)
                }
                Ok(None) => settle(state, &request).await.into_response(),
                Ok(Some(id)) => {
                    let Some(slot) = state.payment_ids.slot(id, x402::payment_fingerprint(payload))
                    else {
                        let message = format!(
                            "payment-identifier {id} was already used for another payment payload"
                        );
                        let reason = x402::PAYMENT_ID_CONFLICT;
                        return refusal(kind, StatusCode::CONFLICT, reason, &message, &known);
                    };
                    let mut answered = slot.lock().await;
                    if let Some(answer) = answered.as_ref() {
                        return answer.clone().into_response();
                    }
                    let answer = settle(state, &request).await;
                    if answer.1.get("success").and_then(Value::as_bool) == Some(true) {
                        *answered = Some(answer.clone());
                    }
                    answer.into_response()
                }
            }
        }
    }
}

/// A settle answer, kept for its payment id.
#[derive(Debug, Clone)]
pub(crate) struct SettleAnswer(StatusCode, Value);

impl IntoResponse for SettleAnswer {
    fn into_response(self) -> Response {
        let in_flight =
            self.1.get("errorReason").and_then(Value::as_str) == Some(Reason::InFlight.as_str());
        let mut response = (self.0, Json(self.1)).into_response();
        if in_flight {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

async fn settle(state: &AppState, request: &proto::SettleRequest) -> SettleAnswer {
    match state.facilitator.settle(request).await {
        Ok(answer) => SettleAnswer(verdict_status(&answer.0, "errorReason"), answer.0),
        Err(e) => {
            // x402-rs' own error path (no scheme here uses it): keep its status and body.
            let response = e.into_response();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            let body = body.ok().and_then(|b| serde_json::from_slice(&b).ok());
            SettleAnswer(status, body.unwrap_or(Value::Null))
        }
    }
}

/// A scheme's verdict: HTTP 200 as the official facilitator answers every verdict, 500 when the
/// reason is a fault of the facilitator (spec `unexpected_*_error`).
fn verdict(body: Value, reason_field: &str) -> Response {
    (verdict_status(&body, reason_field), Json(body)).into_response()
}

fn verdict_status(body: &Value, reason_field: &str) -> StatusCode {
    match body.get(reason_field).and_then(Value::as_str) {
        Some(reason) if crate::exact::is_facilitator_fault(reason) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::OK,
    }
}

/// Why no scheme takes a request that is not aa-native, in the spec's words.
fn unroutable(body: &Value, routes: &HashSet<SchemeHandlerSlug>) -> (&'static str, String) {
    use crate::exact::{
        INVALID_NETWORK, INVALID_PAYLOAD, INVALID_X402_VERSION, UNSUPPORTED_SCHEME,
    };
    let version = body.get("x402Version");
    if version.and_then(Value::as_u64) != Some(2) {
        let shown = version.map(Value::to_string).unwrap_or_else(|| "missing".into());
        return (INVALID_X402_VERSION, format!("x402Version {shown} is not supported (2 is)"));
    }
    let Some(accepted) = body.get("paymentPayload").and_then(|p| p.get("accepted")) else {
        return (INVALID_PAYLOAD, "paymentPayload.accepted is missing".into());
    };
    let field = |name: &str| accepted.get(name).and_then(Value::as_str);
    let (Some(scheme), Some(network)) = (field("scheme"), field("network")) else {
        return (INVALID_PAYLOAD, "paymentPayload.accepted needs scheme and network".into());
    };
    if routes.iter().any(|slug| slug.name == scheme) {
        (INVALID_NETWORK, format!("{scheme} is not served on {network}"))
    } else {
        (UNSUPPORTED_SCHEME, format!("scheme {scheme:?} is not served by this facilitator"))
    }
}

/// What a request says about who pays where, for refusals: x402 asks for `payer` and `network`
/// whenever they are known.
#[derive(Debug, Default)]
struct Known {
    payer: Option<String>,
    network: Option<String>,
}

impl Known {
    fn of(body: &Value) -> Self {
        let payload = &body["paymentPayload"];
        let inner = &payload["payload"];
        let address =
            |v: &Value| v.as_str().and_then(|s| s.parse::<alloy::primitives::Address>().ok());
        let payer = [
            &inner["authorization"]["from"],
            &inner["permit2Authorization"]["from"],
            &inner["userOp"]["sender"],
        ]
        .into_iter()
        .find_map(address)
        .map(|a| a.to_checksum(None));
        let network = [&payload["accepted"]["network"], &body["paymentRequirements"]["network"]]
            .into_iter()
            .find_map(|v| v.as_str().map(str::to_owned));
        Self { payer, network }
    }
}

/// The body as JSON for x402-rs' dispatcher. A `paymentPayload` given as a string is read as
/// the `PAYMENT-SIGNATURE` header value (base64 JSON, either alphabet) that merchants sometimes
/// forward unchanged.
fn request_json(body: &[u8]) -> Result<Value, String> {
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    if let Some(Value::String(header)) = value.get("paymentPayload") {
        let decoded: Value = x402_aa::x402::decode_header(header).map_err(|e| {
            format!("paymentPayload is a string but not a base64 JSON PaymentPayload: {e}")
        })?;
        if !decoded.is_object() {
            return Err("paymentPayload decodes to JSON that is not an object".into());
        }
        value["paymentPayload"] = decoded;
    }
    Ok(value)
}

/// `application/json` or `application/*+json`, as axum's `Json` extractor accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A request whose `accepted.scheme` is aa-native but that no registered handler takes: NERO's
/// code for why, instead of x402-rs' generic `unsupported_scheme`.
fn unroutable_aa_native(
    request: &proto::VerifyRequest,
) -> Option<(&'static str, String, Option<String>)> {
    let body: Value = serde_json::from_str(request.as_str()).ok()?;
    let accepted = body.get("paymentPayload")?.get("accepted")?;
    if accepted.get("scheme").and_then(Value::as_str) != Some(x402_aa::x402::SCHEME) {
        return None;
    }
    let network = accepted.get("network").and_then(Value::as_str).map(str::to_owned);
    let version = body.get("x402Version");
    if version.and_then(Value::as_u64) != Some(2) {
        let shown = version.map(Value::to_string).unwrap_or_else(|| "missing".into());
        return Some((
            Reason::InvalidEnvelope.as_str(),
            format!("x402Version {shown} is not 2"),
            network,
        ));
    }
    match &network {
        Some(n) if n.parse::<x402_types::chain::ChainId>().is_ok() => Some((
            Reason::UnsupportedScheme.as_str(),
            format!("aa-native is not served on {n}"),
            network,
        )),
        _ => Some((
            Reason::InvalidEnvelope.as_str(),
            "paymentPayload.accepted.network is not a CAIP-2 chain id".into(),
            None,
        )),
    }
}

/// A refusal of a request no scheme handler saw, shaped as the verdict it stands in for.
fn refusal(kind: Kind, status: StatusCode, reason: &str, message: &str, known: &Known) -> Response {
    let mut body = match kind {
        Kind::Verify => json!({
            "isValid": false,
            "invalidReason": reason,
            "invalidMessage": message,
        }),
        Kind::Settle => json!({
            "success": false,
            "errorReason": reason,
            "errorMessage": message,
            "transaction": "",
            "network": known.network.clone().unwrap_or_default(),
        }),
    };
    if let Some(payer) = &known.payer {
        body["payer"] = Value::String(payer.clone());
    }
    (status, Json(body)).into_response()
}

async fn get_supported(State(state): State<Arc<AppState>>) -> Response {
    match state.facilitator.supported().await {
        Ok(supported) => (StatusCode::OK, Json(supported)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_health(State(state): State<Arc<AppState>>) -> Response {
    if let Err(e) = state.store.ping().await {
        let body = json!({ "status": "unhealthy", "error": format!("registry: {e}") });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    get_supported(State(state)).await
}

/// A running service. Dropping it stops the server and the background recovery.
#[derive(Debug)]
pub struct FacilitatorHandle {
    pub(crate) local_addr: SocketAddr,
    pub(crate) shutdown: Option<oneshot::Sender<()>>,
    pub(crate) server: Option<JoinHandle<std::io::Result<()>>>,
    pub(crate) background: Vec<JoinHandle<()>>,
}

/// How long [`FacilitatorHandle::shutdown`] lets in-flight requests finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl FacilitatorHandle {
    /// The address the server listens on (the OS-chosen port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<addr>` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting requests, lets running ones finish (within [`SHUTDOWN_GRACE`]).
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        for task in self.background.drain(..) {
            task.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(server) => match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
                Ok(Ok(result)) => result,
                Ok(Err(join)) => Err(std::io::Error::other(join)),
                Err(_) => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Waits until the server stops (it only stops through [`FacilitatorHandle::shutdown`] or
    /// an I/O error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.server.take() {
            Some(server) => server.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for FacilitatorHandle {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

pub(crate) async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    background: Vec<JoinHandle<()>>,
) -> std::io::Result<FacilitatorHandle> {
    let local_addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(FacilitatorHandle { local_addr, shutdown: Some(tx), server: Some(server), background })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/problem+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }

    #[test]
    fn unroutable_aa_native_requests() {
        let req = |v: Value| {
            proto::VerifyRequest::from(serde_json::value::to_raw_value(&v).expect("json"))
        };
        let aa = |version: Value, network: Value| {
            req(json!({
                "x402Version": version,
                "paymentPayload": { "accepted": { "scheme": "aa-native", "network": network } }
            }))
        };
        let r = unroutable_aa_native(&aa(json!(1), json!("eip155:1"))).expect("aa-native");
        assert_eq!(r.0, "invalid_envelope");
        let r = unroutable_aa_native(&aa(json!(2), json!("eip155:1"))).expect("aa-native");
        assert_eq!(r.0, "unsupported_scheme");
        let r = unroutable_aa_native(&aa(json!(2), json!(7))).expect("aa-native");
        assert_eq!(r.0, "invalid_envelope");
        let exact = req(json!({
            "x402Version": 2,
            "paymentPayload": { "accepted": { "scheme": "exact", "network": "eip155:1" } }
        }));
        assert!(unroutable_aa_native(&exact).is_none(), "x402-rs answers other schemes");
    }
}
