//! A scripted JSON-RPC server on 127.0.0.1: each request gets the next scripted reply.
//!
//! Bundlers and paymasters are external services; this stub stands in for their HTTP surface
//! only. The real bundler (alto) is exercised by the devnet tests.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// `{"result": value}` with the request's id.
    Result(Value),
    /// `{"error": {code, message}}` with the request's id, under an HTTP status.
    Error(u16, i64, &'static str),
    /// A raw body under an HTTP status, with optional headers.
    Raw(u16, &'static str, Vec<(&'static str, &'static str)>),
    /// Waits, then answers.
    Delay(Duration, Box<Reply>),
}

#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) body: Value,
    pub(crate) api_key: Option<String>,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<VecDeque<Reply>>>,
    fallback: Reply,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub(crate) struct Stub {
    pub(crate) url: String,
    shared: Shared,
}

impl Stub {
    /// Serves `script` in order, then `fallback` forever.
    pub(crate) async fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        let shared =
            Shared { script: Arc::new(Mutex::new(script.into())), fallback, seen: Arc::default() };
        let app = Router::new().route("/", post(handle)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind stub");
        let url = format!("http://{}/", listener.local_addr().expect("stub address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve stub") });
        Self { url, shared }
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("stub lock").clone()
    }
}

async fn handle(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    shared.seen.lock().expect("stub lock").push(Seen { body, api_key });
    let reply =
        shared.script.lock().expect("stub lock").pop_front().unwrap_or(shared.fallback.clone());
    respond(reply, id).await
}

async fn respond(mut reply: Reply, id: Value) -> Response {
    while let Reply::Delay(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let status = |code: u16| StatusCode::from_u16(code).expect("scripted status");
    match reply {
        Reply::Result(result) => {
            axum::Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
        }
        Reply::Error(http, code, message) => (
            status(http),
            axum::Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })),
        )
            .into_response(),
        Reply::Raw(http, body, headers) => {
            let mut response = (status(http), body).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().expect("scripted header"));
            }
            response
        }
        Reply::Delay(..) => unreachable!("unwrapped above"),
    }
}
