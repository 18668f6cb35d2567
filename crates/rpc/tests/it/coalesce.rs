//! The coalescing node client against a JSON-RPC server that answers batches or, like some
//! providers, refuses them, and counts the HTTP requests it gets.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use alloy::{
    providers::{DynProvider, Provider},
    transports::{RpcError, http::reqwest::Url},
};
use axum::{Json, Router, extract::State, routing::post};
use serde_json::{Value, json};
use x402_aa_rpc::{DEFAULT_TIMEOUT, coalescing_provider};

#[derive(Clone, Default)]
struct Node {
    http_requests: Arc<AtomicUsize>,
    batches: Arc<AtomicUsize>,
    takes_batches: bool,
    /// The first this many HTTP requests hang for a minute (a stalled node).
    stalled: usize,
}

/// `eth_chainId` → 7, `eth_blockNumber` → 9, `eth_gasPrice` → 11; any other method is an error
/// naming it.
fn answer(request: &Value) -> Value {
    let id = request["id"].clone();
    match request["method"].as_str().unwrap_or_default() {
        "eth_chainId" => json!({"jsonrpc": "2.0", "id": id, "result": "0x7"}),
        "eth_blockNumber" => json!({"jsonrpc": "2.0", "id": id, "result": "0x9"}),
        "eth_gasPrice" => json!({"jsonrpc": "2.0", "id": id, "result": "0xb"}),
        other => json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32601, "message": format!("no method {other}")}}),
    }
}

async fn serve(State(node): State<Node>, Json(body): Json<Value>) -> Json<Value> {
    if node.http_requests.fetch_add(1, Ordering::SeqCst) < node.stalled {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    Json(match body {
        Value::Array(requests) if node.takes_batches => {
            node.batches.fetch_add(1, Ordering::SeqCst);
            // Answers in reverse, as a node may: callers are matched by id, not position.
            Value::Array(requests.iter().rev().map(answer).collect())
        }
        Value::Array(_) => json!({"jsonrpc": "2.0", "id": null,
            "error": {"code": -32600, "message": "batch requests are not supported"}}),
        single => answer(&single),
    })
}

async fn node(takes_batches: bool) -> (Node, Url) {
    stalled_node(takes_batches, 0).await
}

async fn stalled_node(takes_batches: bool, stalled: usize) -> (Node, Url) {
    let node = Node { takes_batches, stalled, ..Node::default() };
    let app = Router::new().route("/", post(serve)).with_state(node.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address")).parse().expect("url");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (node, url)
}

/// `eth_chainId`, `eth_blockNumber` and `eth_gasPrice` issued at once, each with its answer.
async fn three_reads_together(provider: &DynProvider) {
    let (chain, block, price) = tokio::join!(
        provider.get_chain_id(),
        provider.get_block_number(),
        provider.get_gas_price()
    );
    let answers = (chain.expect("chain id"), block.expect("block"), price.expect("gas price"));
    assert_eq!(answers, (7, 9, 11));
}

#[tokio::test]
async fn reads_issued_together_share_one_http_request_and_each_gets_its_own_answer() {
    let (node, url) = node(true).await;
    let provider = coalescing_provider(url, DEFAULT_TIMEOUT);
    three_reads_together(&provider).await;
    assert_eq!(node.http_requests.load(Ordering::SeqCst), 1);
    assert_eq!(node.batches.load(Ordering::SeqCst), 1);

    // An idle client's lone read goes as a plain request, not a batch of one.
    assert_eq!(provider.get_block_number().await.unwrap(), 9);
    assert_eq!(node.http_requests.load(Ordering::SeqCst), 2);
    assert_eq!(node.batches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failing_call_fails_alone_in_its_batch() {
    let (_node, url) = node(true).await;
    let provider = coalescing_provider(url, DEFAULT_TIMEOUT);
    let (block, missing) = tokio::join!(
        provider.get_block_number(),
        provider.raw_request::<_, Value>("eth_nothing".into(), ())
    );
    assert_eq!(block.unwrap(), 9);
    match missing {
        Err(RpcError::ErrorResp(e)) => {
            assert_eq!(e.code, -32601);
            assert_eq!(e.message, "no method eth_nothing");
        }
        other => panic!("expected the node's own error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_node_without_batches_answers_each_request_on_its_own() {
    let (node, url) = node(false).await;
    let provider = coalescing_provider(url, DEFAULT_TIMEOUT);
    three_reads_together(&provider).await;
    // The refused batch, then the three requests one by one.
    assert_eq!(node.http_requests.load(Ordering::SeqCst), 4);
    assert_eq!(node.batches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn many_concurrent_callers_each_get_their_answer() {
    let (node, url) = node(true).await;
    let provider = coalescing_provider(url, DEFAULT_TIMEOUT);
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let provider = provider.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    provider.get_block_number().await.map(|n| (i, n))
                } else {
                    provider.get_gas_price().await.map(|p| (i, p as u64))
                }
            })
        })
        .collect();
    for call in calls {
        let (i, value) = call.await.unwrap().unwrap();
        assert_eq!(value, if i % 2 == 0 { 9 } else { 11 }, "caller {i}");
    }
    // Batched: far fewer HTTP requests than calls.
    assert!(node.http_requests.load(Ordering::SeqCst) < 100);
}

#[tokio::test]
async fn requests_a_stalled_node_never_answers_free_their_slots_at_the_timeout() {
    use std::time::Duration;
    use x402_aa_rpc::{CoalescingHttp, DEFAULT_MAX_IN_FLIGHT};
    let (node, url) = stalled_node(true, DEFAULT_MAX_IN_FLIGHT).await;
    let timeout = Duration::from_millis(300);
    let client = alloy::rpc::client::RpcClient::new(CoalescingHttp::new(url, timeout), true);
    let provider = alloy::providers::ProviderBuilder::new().connect_client(client);
    // Every in-flight slot taken by a request the node never answers (one at a time, so each
    // goes alone)...
    let mut hung = Vec::new();
    for _ in 0..DEFAULT_MAX_IN_FLIGHT {
        let provider = provider.clone();
        hung.push(tokio::spawn(async move { provider.get_block_number().await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(node.http_requests.load(Ordering::SeqCst), DEFAULT_MAX_IN_FLIGHT);
    // ...a later read still gets its answer once they time out, not never.
    let later = tokio::time::timeout(Duration::from_secs(5), provider.get_gas_price()).await;
    assert_eq!(later.expect("answered after the stalled requests timed out").unwrap(), 11);
    for call in hung {
        assert!(call.await.unwrap().is_err(), "the stalled requests fail at the timeout");
    }
}
