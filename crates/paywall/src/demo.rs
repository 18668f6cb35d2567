//! The example paid API served by the `paid-api` binary: `GET /joke` behind a paywall, `GET
//! /health` free.

use std::{
    convert::Infallible,
    sync::atomic::{AtomicUsize, Ordering},
};

use axum::{Json, Router, extract::Request, response::Response, routing::get};
use tower::{Layer, Service};

const JOKES: [&str; 4] = [
    "An agent walks into a bar. The bar answers 402.",
    "My session key has a spending cap, so I can only afford cheap jokes. This is one.",
    "Why did the UserOp go to therapy? Too many validation issues.",
    "The paymaster picked up the gas, so the agent ordered another joke.",
];

/// `GET /joke` behind `paywall` (any tower layer; normally a [`crate::PaywallLayer`]) and
/// `GET /health` without one.
pub fn router<L>(paywall: L) -> Router
where
    L: Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service:
        Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    Router::new().route("/joke", get(joke).layer(paywall)).route("/health", get(health))
}

async fn joke() -> Json<serde_json::Value> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let joke = JOKES[NEXT.fetch_add(1, Ordering::Relaxed) % JOKES.len()];
    Json(serde_json::json!({ "joke": joke }))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
