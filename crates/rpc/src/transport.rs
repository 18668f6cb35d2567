//! One JSON-RPC 2.0 call over HTTP, with a per-attempt timeout and bounded retries.

use std::{
    fmt,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use reqwest::{
    StatusCode, Url,
    header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{Result, RpcError};

/// Per-attempt HTTP timeout unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often, and how patiently, a failed call is retried.
///
/// Only [`RpcError::is_retriable`] failures are retried. Delays grow as
/// `initial_backoff · 2^attempt`, capped at `max_backoff`, with up to 50 % random jitter so many
/// agents throttled at once do not retry in lockstep. A `Retry-After` header (in seconds) is
/// honoured up to `max_backoff`; a throttled (-32504) answer waits at least 1 s, as NERO asks,
/// again capped at `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Delay before the first retry; doubles with each further retry.
    pub initial_backoff: Duration,
    /// Upper bound on any single delay, including `Retry-After` and throttling waits.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One attempt only.
    pub const fn none() -> Self {
        Self { max_retries: 0, initial_backoff: Duration::ZERO, max_backoff: Duration::ZERO }
    }

    fn delay(&self, attempt: u32, error: &RpcError, retry_after: Option<Duration>) -> Duration {
        let exp =
            self.initial_backoff.saturating_mul(2u32.saturating_pow(attempt)).min(self.max_backoff);
        // Jitter from std's per-process random hash keys: enough to de-synchronise clients
        // without a dependency on a random number generator.
        let jitter = RandomState::new().hash_one(attempt) % 512;
        let jittered =
            exp.saturating_sub(exp.saturating_mul(u32::try_from(jitter).unwrap_or(0)) / 1024);
        let floor = if error.bundler_code() == Some(crate::BundlerErrorCode::Throttled) {
            Duration::from_secs(1)
        } else {
            retry_after.unwrap_or(Duration::ZERO)
        };
        jittered.max(floor.min(self.max_backoff))
    }
}

/// A JSON-RPC endpoint: URL, HTTP client, timeout and retry policy. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    url: Url,
    timeout: Duration,
    retry: RetryPolicy,
    ids: Arc<AtomicU64>,
}

/// URLs of hosted bundlers and paymasters often carry the API key (`…/rpc?apikey=…`), so only
/// the origin is ever printed.
impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("origin", &self.url.origin().ascii_serialization())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(url: &str) -> Result<Self> {
        let parsed =
            Url::parse(url).map_err(|source| RpcError::InvalidUrl { url: redact(url), source })?;
        let http = reqwest::Client::builder().build().map_err(RpcError::Client)?;
        Ok(Self {
            http,
            url: parsed,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            ids: Arc::new(AtomicU64::new(1)),
        })
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub(crate) fn set_retry(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    pub(crate) fn set_http_client(&mut self, http: reqwest::Client) {
        self.http = http;
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// Calls `method` and decodes its `result`, retrying what is worth retrying.
    pub(crate) async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &'static str,
        params: P,
        headers: HeaderMap,
    ) -> Result<R> {
        let params =
            serde_json::to_value(params).map_err(|source| RpcError::Encode { method, source })?;
        let mut attempt = 0;
        loop {
            let id = self.ids.fetch_add(1, Ordering::Relaxed);
            let body = serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
            let body =
                serde_json::to_vec(&body).map_err(|source| RpcError::Encode { method, source })?;
            match self.attempt(method, id, body, headers.clone()).await {
                Ok(result) => {
                    return serde_json::from_value(result).map_err(|e| {
                        RpcError::MalformedResponse { method, detail: format!("result: {e}") }
                    });
                }
                Err((error, retry_after)) => {
                    if attempt >= self.retry.max_retries || !error.is_retriable() {
                        return Err(error);
                    }
                    let delay = self.retry.delay(attempt, &error, retry_after);
                    tracing::debug!(
                        target: "x402_aa_rpc",
                        method,
                        attempt,
                        ?delay,
                        error = %error,
                        "retrying JSON-RPC call"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One HTTP round trip; on failure also returns the server's `Retry-After`, if any.
    async fn attempt(
        &self,
        method: &'static str,
        id: u64,
        body: Vec<u8>,
        headers: HeaderMap,
    ) -> std::result::Result<Value, (RpcError, Option<Duration>)> {
        let response = self
            .http
            .post(self.url.clone())
            .headers(headers)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .timeout(self.timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| (self.transport_error(method, e), None))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(|e| (self.transport_error(method, e), None))?;
        decode(method, id, status, &bytes).map_err(|e| (e, retry_after))
    }

    fn transport_error(&self, method: &'static str, error: reqwest::Error) -> RpcError {
        if error.is_timeout() {
            RpcError::Timeout { method, after: self.timeout }
        } else {
            RpcError::Transport { method, source: error.without_url() }
        }
    }
}

/// A JSON-RPC verdict wins over the HTTP status: some bundlers send -32500 with HTTP 400 or 500,
/// and that rejection must not be retried as if it were a server fault.
fn decode(method: &'static str, id: u64, status: StatusCode, bytes: &[u8]) -> Result<Value> {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    if let Some(error) = parsed.as_ref().and_then(|v| v.get("error")).filter(|e| !e.is_null()) {
        return Err(json_rpc_error(method, error));
    }
    if !status.is_success() {
        return Err(RpcError::Http { method, status: status.as_u16(), body: snippet(bytes) });
    }
    let malformed = |detail: String| RpcError::MalformedResponse { method, detail };
    let Some(Value::Object(mut object)) = parsed else {
        return Err(malformed(format!("not a JSON-RPC object: {}", snippet(bytes))));
    };
    if object.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(malformed(format!("id {:?} does not match request id {id}", object.get("id"))));
    }
    object.remove("result").ok_or_else(|| malformed("neither result nor error".to_owned()))
}

fn json_rpc_error(method: &'static str, error: &Value) -> RpcError {
    let code = error.get("code").and_then(Value::as_i64);
    let message = error.get("message").and_then(Value::as_str);
    match (code, message) {
        (Some(code), message) => RpcError::JsonRpc {
            method,
            code,
            message: message.unwrap_or_default().to_owned(),
            data: error.get("data").filter(|d| !d.is_null()).cloned(),
        },
        (None, _) => RpcError::MalformedResponse {
            method,
            detail: format!("error object without an integer code: {error}"),
        },
    }
}

/// First 512 bytes of a body, for error messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(512) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.into_owned(),
    }
}

/// Scheme, host and port of a URL string, for errors about a URL that may embed a key.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "<not a URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_hints() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        };
        let http = RpcError::Http { method: "m", status: 503, body: String::new() };
        for attempt in 0..10 {
            let d = policy.delay(attempt, &http, None);
            let exp = Duration::from_millis(100 * 2u64.pow(attempt)).min(Duration::from_secs(2));
            assert!(d <= exp && d >= exp / 2, "attempt {attempt}: {d:?} vs {exp:?}");
        }
        assert_eq!(policy.delay(0, &http, Some(Duration::from_secs(1))), Duration::from_secs(1));
        assert_eq!(policy.delay(0, &http, Some(Duration::from_secs(60))), Duration::from_secs(2));
        let throttled =
            RpcError::JsonRpc { method: "m", code: -32504, message: String::new(), data: None };
        assert_eq!(policy.delay(0, &throttled, None), Duration::from_secs(1));
        assert_eq!(RetryPolicy::none().delay(3, &throttled, None), Duration::ZERO);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("https://pm.example/rpc?apikey=SECRET"), "https://pm.example/…");
        assert_eq!(redact("https://user:SECRET@pm.example:8080/x"), "https://pm.example:8080/…");
        assert_eq!(redact("SECRET"), "<not a URL>");
        let t = Transport::new("https://pm.example/v1/SECRET?apikey=SECRET").unwrap();
        assert!(!format!("{t:?}").contains("SECRET"));
        let err = Transport::new("https://pm.example:99999/rpc?apikey=SECRET").unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn decode_prefers_json_rpc_verdicts() {
        let ok = StatusCode::OK;
        let err500 = StatusCode::INTERNAL_SERVER_ERROR;
        let body = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32500,"message":"AA23"}}"#;
        assert!(matches!(
            decode("m", 1, err500, body),
            Err(RpcError::JsonRpc { code: -32500, .. })
        ));
        assert!(matches!(decode("m", 1, err500, b"oops"), Err(RpcError::Http { status: 500, .. })));
        assert!(matches!(
            decode("m", 1, ok, br#"{"jsonrpc":"2.0","id":1,"result":null}"#),
            Ok(Value::Null)
        ));
        for bad in [
            &b"not json"[..],
            b"[]",
            br#"{"id":1}"#,
            br#"{"id":2,"result":1}"#,
            br#"{"id":1,"error":{"message":"x"}}"#,
        ] {
            assert!(
                matches!(decode("m", 1, ok, bad), Err(RpcError::MalformedResponse { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
