//! The JSON-RPC 2.0 surface over HTTP, and the handle of a running server.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use alloy::primitives::Address;
use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use x402_aa::UserOperation;

use crate::{PaymasterService, Result, SponsorError};

/// Largest request body read. A v0.6 op that deploys an account is a few KiB of hex; this
/// leaves room for a batch of them and nothing much more.
pub const MAX_BODY_BYTES: usize = 128 * 1024;
/// Most requests in one JSON-RPC batch.
pub const MAX_BATCH_LEN: usize = 16;
/// The header NERO also reads the API key from (matched case-insensitively).
pub const API_KEY_HEADER: &str = "x-api-key";
/// How long a client may take to send its body, so a stalled one cannot hold a connection.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`PaymasterHandle::shutdown`] lets in-flight requests finish before aborting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A serving paymaster. Dropping it starts a graceful shutdown without waiting for it;
/// [`PaymasterHandle::shutdown`] waits.
#[derive(Debug)]
pub struct PaymasterHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl PaymasterHandle {
    /// The address the service listens on (the OS-chosen port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<addr>/`, what a `PaymasterClient` is pointed at.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local_addr)
    }

    /// Stops accepting connections, lets in-flight requests finish (up to [`SHUTDOWN_GRACE`])
    /// and reports how serving ended.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            // The server may already have stopped on its own; its result is below.
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else { return Ok(()) };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(joined) => Ok(joined??),
            Err(_) => {
                task.abort();
                tracing::warn!(target: "x402_aa_paymaster", "shutdown grace elapsed; aborted");
                Ok(())
            }
        }
    }
}

impl Drop for PaymasterHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl PaymasterService {
    /// Checks the chain ([`PaymasterService::check_chain`]), then serves JSON-RPC on
    /// `listener` from a background task.
    pub async fn serve(&self, listener: TcpListener) -> Result<PaymasterHandle> {
        self.check_chain().await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(listener, self.router()).with_graceful_shutdown(async move {
            // A dropped sender means the handle is gone: stop as well.
            let _ = stopped.await;
        });
        let task = tokio::spawn(server.into_future());
        tracing::info!(
            target: "x402_aa_paymaster",
            %local_addr, paymaster = %self.paymaster(), "paymaster serving"
        );
        Ok(PaymasterHandle { local_addr, stop: Some(stop), task: Some(task) })
    }

    /// [`PaymasterService::serve`] on a fresh listener at `addr` (port 0 picks a free one).
    pub async fn bind(&self, addr: SocketAddr) -> Result<PaymasterHandle> {
        self.serve(TcpListener::bind(addr).await?).await
    }

    /// The JSON-RPC endpoint (`POST /`) and Prometheus metrics (`GET /metrics`), for mounting
    /// into a larger axum app.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(handle))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }
}

/// `GET /metrics`: OpenMetrics text ([`crate::metrics`]).
async fn metrics(State(service): State<PaymasterService>) -> Response {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], service.metrics().render())
        .into_response()
}

async fn handle(
    State(service): State<PaymasterService>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Read by hand rather than through axum's `Bytes` extractor so an oversized body still gets
    // a JSON-RPC error the client can decode, not a plain-text 413.
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES))
        .await
    {
        Ok(Ok(bytes)) => bytes,
        // Over the limit, or the connection broke mid-body; either way nothing usable arrived.
        Ok(Err(_)) => {
            let error = SponsorError::BodyTooLarge { limit: MAX_BODY_BYTES };
            return (StatusCode::PAYLOAD_TOO_LARGE, Json(error_response(Value::Null, &error)))
                .into_response();
        }
        Err(_) => {
            let error = SponsorError::InvalidRequest(format!(
                "body not received within {} s",
                BODY_TIMEOUT.as_secs()
            ));
            return (StatusCode::REQUEST_TIMEOUT, Json(error_response(Value::Null, &error)))
                .into_response();
        }
    };
    let request: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return Json(error_response(Value::Null, &SponsorError::Parse(e.to_string())))
                .into_response();
        }
    };
    let header_key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    let reply = match request {
        Value::Array(batch) => {
            if batch.is_empty() || batch.len() > MAX_BATCH_LEN {
                let detail = format!("a batch holds 1 to {MAX_BATCH_LEN} requests");
                return Json(error_response(Value::Null, &SponsorError::InvalidRequest(detail)))
                    .into_response();
            }
            let mut replies = Vec::with_capacity(batch.len());
            // One after another, so a batch of one sender's ops meets the rate limit in order.
            for request in batch {
                replies.extend(dispatch(&service, header_key, request).await);
            }
            (!replies.is_empty()).then_some(Value::Array(replies))
        }
        single => dispatch(&service, header_key, single).await,
    };
    match reply {
        Some(reply) => Json(reply).into_response(),
        // Only notifications: JSON-RPC sends nothing back.
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// One request object → its response, or `None` for a valid notification.
///
/// Notifications (no `id`) are not executed: every method here only answers, and sponsoring
/// without returning the signature would just consume the sender's rate limit.
async fn dispatch(
    service: &PaymasterService,
    header_key: Option<&str>,
    request: Value,
) -> Option<Value> {
    let Value::Object(mut request) = request else {
        let error = SponsorError::InvalidRequest("expected a JSON-RPC 2.0 request object".into());
        return Some(error_response(Value::Null, &error));
    };
    let id = match request.remove("id") {
        None => None,
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id),
        Some(_) => {
            let error = SponsorError::InvalidRequest("id must be a string, number or null".into());
            return Some(error_response(Value::Null, &error));
        }
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    let invalid = |detail: &str| {
        Some(error_response(reply_id.clone(), &SponsorError::InvalidRequest(detail.into())))
    };
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("jsonrpc must be \"2.0\"");
    }
    let Some(Value::String(method)) = request.remove("method") else {
        return invalid("method must be a string");
    };
    let params = match request.remove("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(params)) => params,
        Some(Value::Object(_)) => {
            let error = SponsorError::InvalidParams("params must be positional (an array)".into());
            return id.map(|id| error_response(id, &error));
        }
        Some(_) => return invalid("params must be an array or object"),
    };
    let id = id?;
    let started = Instant::now();
    let answer = call(service, header_key, &method, params).await;
    let outcome = answer.as_ref().map(|_| ()).map_err(SponsorError::reason);
    service.metrics().request(&method, outcome, started.elapsed());
    Some(match answer {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(error) => {
            if matches!(error, SponsorError::Internal(_)) {
                tracing::warn!(target: "x402_aa_paymaster", method, %error, "request failed");
            } else {
                tracing::debug!(target: "x402_aa_paymaster", method, %error, "request refused");
            }
            error_response(id, &error)
        }
    })
}

async fn call(
    service: &PaymasterService,
    header_key: Option<&str>,
    method: &str,
    params: Vec<Value>,
) -> Result<Value, SponsorError> {
    match method {
        "pm_sponsor_userop" => sponsor_user_op(service, header_key, params).await,
        "pm_supported_tokens" => supported_tokens(service, header_key, params),
        "pm_entrypoints" => Ok(json!([service.entry_point()])),
        "eth_chainId" => Ok(json!(format!("{:#x}", service.chain_id()))),
        other => {
            let shown: String = other.chars().take(64).collect();
            Err(SponsorError::MethodNotFound(shown))
        }
    }
}

/// `pm_sponsor_userop(userOp, apiKey, entryPoint, context)`.
///
/// Checks in this order: params shape, API key, userOp, entry point, context, then the policy,
/// the rate limit and signing ([`PaymasterService::sponsor`]). Authorising before reading the
/// op keeps unauthenticated callers from probing the parser.
async fn sponsor_user_op(
    service: &PaymasterService,
    header_key: Option<&str>,
    mut params: Vec<Value>,
) -> Result<Value, SponsorError> {
    if !(3..=4).contains(&params.len()) {
        return Err(SponsorError::InvalidParams(format!(
            "expected [userOp, apiKey, entryPoint, context], got {} params",
            params.len()
        )));
    }
    authorize(service, header_key, &params[1])?;
    let op: UserOperation = serde_json::from_value(params[0].take())
        .map_err(|e| SponsorError::InvalidParams(format!("userOp: {e}")))?;
    check_entry_point(service, &params[2])?;
    check_context(params.get(3))?;
    let sponsorship = service.sponsor(&op).await?;
    serde_json::to_value(sponsorship).map_err(|_| SponsorError::Internal("encoding the result"))
}

/// `pm_supported_tokens(userOp, apiKey, entryPoint)`: gas is free, no ERC-20 is accepted.
fn supported_tokens(
    service: &PaymasterService,
    header_key: Option<&str>,
    params: Vec<Value>,
) -> Result<Value, SponsorError> {
    if !(2..=3).contains(&params.len()) {
        return Err(SponsorError::InvalidParams(format!(
            "expected [userOp, apiKey, entryPoint], got {} params",
            params.len()
        )));
    }
    authorize(service, header_key, &params[1])?;
    if let Some(entry_point) = params.get(2) {
        check_entry_point(service, entry_point)?;
    }
    Ok(json!({
        "freeGas": true,
        "native": { "decimals": 18, "symbol": "ETH" },
        "tokens": [],
    }))
}

/// The `apiKey` param wins; an empty or null one defers to the `X-API-Key` header.
fn authorize(
    service: &PaymasterService,
    header_key: Option<&str>,
    param: &Value,
) -> Result<(), SponsorError> {
    let key = match param {
        Value::String(key) if !key.is_empty() => Some(key.as_str()),
        Value::String(_) | Value::Null => header_key,
        _ => return Err(SponsorError::InvalidParams("apiKey must be a string".into())),
    };
    service.authorize(key.unwrap_or_default())
}

fn check_entry_point(service: &PaymasterService, param: &Value) -> Result<(), SponsorError> {
    let got = Address::deserialize(param)
        .map_err(|e| SponsorError::InvalidParams(format!("entryPoint: {e}")))?;
    let expected = service.entry_point();
    if got != expected {
        return Err(SponsorError::WrongEntryPoint { expected, got });
    }
    Ok(())
}

/// `{type, token?}`; only type 0 (free gas) is offered, so `token` is ignored. NERO's SDK sends
/// the type as a decimal string; numbers and `0x` strings are read too. A missing context
/// means type 0.
fn check_context(context: Option<&Value>) -> Result<(), SponsorError> {
    let context = match context {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(context)) => context,
        Some(_) => return Err(SponsorError::InvalidParams("context must be an object".into())),
    };
    let kind = context
        .get("type")
        .ok_or_else(|| SponsorError::InvalidParams("context.type is required".into()))?;
    let parsed = match kind {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        },
        _ => None,
    };
    match parsed {
        Some(0) => Ok(()),
        Some(_) => Err(SponsorError::UnsupportedSponsorType(kind.to_string())),
        None => Err(SponsorError::InvalidParams(format!("context.type {kind} is not a number"))),
    }
}

fn error_response(id: Value, error: &SponsorError) -> Value {
    let mut data = Map::new();
    data.insert("reason".into(), error.reason().into());
    let retry_after = match error {
        SponsorError::Throttled { retry_after_secs, .. } => Some(*retry_after_secs),
        SponsorError::Rejected(violation) => violation.retry_after_secs(),
        _ => None,
    };
    if let Some(retry_after) = retry_after {
        data.insert("retryAfter".into(), retry_after.into());
    }
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": error.code(), "message": error.to_string(), "data": data },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_types() {
        for ok in [
            None,
            Some(json!(null)),
            Some(json!({"type": "0"})),
            Some(json!({"type": 0})),
            Some(json!({"type": "0x0", "token": "0x01"})),
        ] {
            assert_eq!(check_context(ok.as_ref()), Ok(()), "{ok:?}");
        }
        let unsupported = check_context(Some(&json!({"type": "1"}))).map_err(|e| e.reason());
        assert_eq!(unsupported, Err("unsupported_sponsor_type"));
        for bad in [
            json!({}),
            json!({"type": "free"}),
            json!({"type": -1}),
            json!("0"),
            json!({"type": [0]}),
        ] {
            assert_eq!(check_context(Some(&bad)).map_err(|e| e.code()), Err(-32602), "{bad}");
        }
    }

    #[test]
    fn error_objects_carry_code_message_and_reason() {
        let error =
            SponsorError::Throttled { sender: Address::ZERO, limit: 2, retry_after_secs: 7 };
        let value = error_response(json!(3), &error);
        assert_eq!(value["id"], 3);
        assert_eq!(value["error"]["code"], -32504);
        assert_eq!(value["error"]["data"], json!({"reason": "throttled", "retryAfter": 7}));
        assert!(value["error"]["message"].as_str().is_some_and(|m| m.starts_with("throttled: ")));
    }
}
