//! Prometheus metrics, served as OpenMetrics text at `GET /metrics`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `x402_facilitator_requests_total` | `route`, `status` | HTTP requests answered |
//! | `x402_facilitator_request_duration_seconds` | `route` | time to the response head |
//! | `x402_facilitator_refusals_total` | `route`, `reason` | `/verify` and `/settle` refusals by x402 reason |
//! | `x402_facilitator_settlements_total` | `outcome` | `/settle` answers: `success` or the error reason |
//! | `x402_facilitator_bundles_total` | `outcome` | direct-mode `handleOps` bundles: `landed`, `reverted`, `refused`, `pending` |
//! | `x402_facilitator_bundle_ops` | | ops per bundle sent |
//! | `x402_facilitator_queue_depth` | | ops waiting for the direct-submission task |
//!
//! One registry per process: the direct-submission task that knows the queue depth is spawned
//! without a handle to the server, and several facilitator instances in one process (tests)
//! report together, as one exporter would.
//!
//! Reasons come from the answers this crate builds (a fixed vocabulary, see [`crate::reason`]);
//! an unexpected one is counted as `other`, so no caller can grow the label set.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::Request,
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use serde_json::Value;

/// The OpenMetrics text format `GET /metrics` answers in.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Largest `/verify` or `/settle` answer read back for its reason; answers are a few hundred
/// bytes, so anything larger is passed through uncounted rather than buffered.
const MAX_INSPECTED_BODY: usize = 64 * 1024;
/// Longest reason kept as a label value.
const MAX_REASON_LEN: usize = 64;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteReason {
    route: &'static str,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    durations: Family<RouteLabel, Histogram, fn() -> Histogram>,
    refusals: Family<RouteReason, Counter>,
    settlements: Family<Outcome, Counter>,
    bundles: Family<Outcome, Counter>,
    bundle_ops: Histogram,
    queue_depth: Gauge,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("x402_facilitator");
    let requests = Family::<RouteStatus, Counter>::default();
    registry.register("requests", "HTTP requests answered, by route and status", requests.clone());
    let durations = Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
        duration_histogram,
    );
    registry.register(
        "request_duration_seconds",
        "Time from request to response head, by route",
        durations.clone(),
    );
    let refusals = Family::<RouteReason, Counter>::default();
    registry.register(
        "refusals",
        "/verify and /settle answers that refused, by x402 reason",
        refusals.clone(),
    );
    let settlements = Family::<Outcome, Counter>::default();
    registry.register(
        "settlements",
        "/settle answers by outcome: success or the error reason",
        settlements.clone(),
    );
    let bundles = Family::<Outcome, Counter>::default();
    registry.register(
        "bundles",
        "Direct-mode handleOps bundles by outcome: landed, reverted, refused, pending",
        bundles.clone(),
    );
    let bundle_ops = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]);
    registry.register("bundle_ops", "Ops per handleOps bundle sent", bundle_ops.clone());
    let queue_depth = Gauge::default();
    registry.register(
        "queue_depth",
        "Ops waiting for the direct-submission task",
        queue_depth.clone(),
    );
    Metrics {
        registry,
        requests,
        durations,
        refusals,
        settlements,
        bundles,
        bundle_ops,
        queue_depth,
    }
});

/// The registry as OpenMetrics text.
pub fn render() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &METRICS.registry);
    out
}

/// `GET /metrics`.
pub(crate) async fn get_metrics() -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render()).into_response()
}

/// Ops left waiting after a batch was taken.
pub(crate) fn queue_depth(depth: usize) {
    METRICS.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
}

/// A bundle sent with `ops` ops and how it ended.
pub(crate) fn bundle(ops: usize, outcome: &'static str) {
    METRICS.bundle_ops.observe(ops as f64);
    METRICS.bundles.get_or_create(&Outcome { outcome: outcome.into() }).inc();
}

/// Middleware counting every request, and the verdicts of `/verify` and `/settle`.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = route_of(request.uri().path());
    let inspect = request.method() == Method::POST && matches!(route, "/verify" | "/settle");
    let started = Instant::now();
    let response = next.run(request).await;
    observe(route, response.status(), started.elapsed());
    if !inspect {
        return response;
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_INSPECTED_BODY).await {
        Ok(bytes) => {
            record_verdict(route, &bytes);
            Response::from_parts(parts, Body::from(bytes))
        }
        // Too large to be one of our verdicts (or broken): the status is already counted.
        Err(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "response body could not be read").into_response()
        }
    }
}

fn observe(route: &'static str, status: StatusCode, elapsed: Duration) {
    let m = &*METRICS;
    m.requests.get_or_create(&RouteStatus { route, status: status.as_u16().to_string() }).inc();
    m.durations.get_or_create(&RouteLabel { route }).observe(elapsed.as_secs_f64());
}

/// Reads the x402 verdict out of a `/verify` or `/settle` answer.
fn record_verdict(route: &'static str, body: &[u8]) {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else { return };
    let m = &*METRICS;
    let reason = ["invalidReason", "errorReason", "error"]
        .iter()
        .find_map(|k| answer.get(*k).and_then(Value::as_str))
        .map(label_value);
    let refused = match route {
        "/verify" => answer.get("isValid").and_then(Value::as_bool) != Some(true),
        _ => answer.get("success").and_then(Value::as_bool) != Some(true),
    };
    if route == "/settle" {
        let outcome = if refused {
            reason.clone().unwrap_or_else(|| "unknown".into())
        } else {
            "success".into()
        };
        m.settlements.get_or_create(&Outcome { outcome }).inc();
    }
    if refused {
        let reason = reason.unwrap_or_else(|| "unknown".into());
        m.refusals.get_or_create(&RouteReason { route, reason }).inc();
    }
}

/// A reason as a label: snake_case identifiers only, anything else is `other`.
fn label_value(reason: &str) -> String {
    let ok = !reason.is_empty()
        && reason.len() <= MAX_REASON_LEN
        && reason.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { reason.to_owned() } else { "other".to_owned() }
}

/// The route a path is counted under; unknown paths share one label.
fn route_of(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/verify" => "/verify",
        "/settle" => "/settle",
        "/supported" => "/supported",
        "/health" => "/health",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(label_value("insufficient_funds"), "insufficient_funds");
        assert_eq!(label_value("Robert'); DROP"), "other");
        assert_eq!(label_value(&"a".repeat(65)), "other");
        assert_eq!(label_value(""), "other");
        assert_eq!(route_of("/verify"), "/verify");
        assert_eq!(route_of("/verify/x"), "other");
    }

    #[test]
    fn verdicts_are_counted() {
        record_verdict("/settle", br#"{"success":false,"errorReason":"test_only_reason_a"}"#);
        record_verdict("/verify", br#"{"isValid":false,"invalidReason":"test_only_reason_b"}"#);
        record_verdict("/verify", br#"{"isValid":true}"#);
        let text = render();
        assert!(
            text.contains(r#"x402_facilitator_settlements_total{outcome="test_only_reason_a"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"x402_facilitator_refusals_total{route="/verify",reason="test_only_reason_b"} 1"#
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
