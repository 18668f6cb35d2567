//! Bundler and paymaster clients against a scripted JSON-RPC stub.

mod coalesce;
mod fold;
mod stub;

use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, U256, address, b256};
use serde_json::{Value, json};
use stub::{Reply, Stub};
use x402_aa::{ENTRY_POINT_V06, UserOperation};
use x402_aa_rpc::{
    BundlerClient, BundlerErrorCode, PaymasterClient, RetryPolicy, RpcError, SponsorContext,
};

const HASH: B256 = b256!("0x8f0c5bde8e33c2c98e1c3b6ff2a7f1d0c3c8cb12f6c1d3e2b1a0998877665544");
const SENDER: Address = address!("0x3333333333333333333333333333333333333333");

/// Fast retries so the retry tests take milliseconds.
const QUICK: RetryPolicy = RetryPolicy {
    max_retries: 3,
    initial_backoff: Duration::from_millis(1),
    max_backoff: Duration::from_millis(5),
};

fn op() -> UserOperation {
    UserOperation {
        sender: SENDER,
        nonce: U256::from(3),
        call_data: Bytes::from_static(&[0xb6, 0x1d, 0x27, 0xf6]),
        signature: Bytes::from(vec![0xff; 65]),
        ..Default::default()
    }
}

async fn bundler(script: Vec<Reply>) -> (Stub, BundlerClient) {
    let stub = Stub::start(script, Reply::Raw(500, "script exhausted", vec![])).await;
    let client = BundlerClient::new(&stub.url).expect("stub URL").with_retry(QUICK);
    (stub, client)
}

/// A receipt as alto returns it for a sponsored op (trimmed to one log).
fn full_receipt() -> Value {
    json!({
        "userOpHash": HASH,
        "entryPoint": "0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789",
        "sender": SENDER,
        "nonce": "0x3",
        "paymaster": "0x4444444444444444444444444444444444444444",
        "actualGasCost": "0x1c6bf52634000",
        "actualGasUsed": "0x2d6a0",
        "success": true,
        "reason": "",
        "logs": [{
            "address": "0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789",
            "topics": ["0x49628fd1471006c1482da88028e9ce4dbb080b815c9b0344d39e5a8e6ec1419f"],
            "data": "0x00",
            "logIndex": "0x1",
            "transactionHash": "0x1111111111111111111111111111111111111111111111111111111111111111",
            "blockNumber": "0x10"
        }],
        "receipt": {
            "transactionHash": "0x1111111111111111111111111111111111111111111111111111111111111111",
            "transactionIndex": "0x0",
            "blockHash": "0x2222222222222222222222222222222222222222222222222222222222222222",
            "blockNumber": "0x10",
            "from": "0x9999999999999999999999999999999999999999",
            "to": "0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789",
            "cumulativeGasUsed": "0x2d6a0",
            "gasUsed": "0x2d6a0",
            "status": "0x1",
            "logsBloom": "0x00",
            "type": "0x2",
            "effectiveGasPrice": "0x3b9aca00",
            "logs": []
        }
    })
}

#[tokio::test]
async fn send_user_operation_returns_hash_and_sends_bundler_json() {
    let (stub, client) = bundler(vec![Reply::Result(json!(HASH))]).await;
    assert_eq!(client.send_user_operation(&op(), ENTRY_POINT_V06).await.unwrap(), HASH);
    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    let body = &seen[0].body;
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["method"], "eth_sendUserOperation");
    assert_eq!(body["params"][0], serde_json::to_value(op()).unwrap());
    assert_eq!(body["params"][1], "0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789");
    assert_eq!(body["params"][0]["nonce"], "0x3");
}

#[tokio::test]
async fn estimate_accepts_hex_decimal_and_numbers() {
    let (stub, client) = bundler(vec![
        Reply::Result(json!({
            "preVerificationGas": "0xb5f4",
            "verificationGasLimit": "150000",
            "callGasLimit": 33100,
            "validAfter": "0x0",
            "validUntil": "0xffffffffffff"
        })),
        Reply::Result(json!({
            "preVerificationGas": "46580", "verificationGas": "0x249f0", "callGasLimit": "0x814c"
        })),
        Reply::Result(
            json!({ "preVerificationGas": "1.5", "verificationGasLimit": 1, "callGasLimit": 1 }),
        ),
    ])
    .await;
    let est = client.estimate_user_operation_gas(&op(), ENTRY_POINT_V06).await.unwrap();
    assert_eq!(
        (est.pre_verification_gas, est.verification_gas_limit, est.call_gas_limit),
        (U256::from(46580), U256::from(150_000), U256::from(33_100))
    );
    let old = client.estimate_user_operation_gas(&op(), ENTRY_POINT_V06).await.unwrap();
    assert_eq!(old, est);
    let mut updated = op();
    est.apply_to(&mut updated);
    assert_eq!(updated.call_gas_limit, U256::from(33_100));
    assert_eq!(stub.seen()[0].body["method"], "eth_estimateUserOperationGas");

    let err = client.estimate_user_operation_gas(&op(), ENTRY_POINT_V06).await.unwrap_err();
    assert!(matches!(err, RpcError::MalformedResponse { .. }), "{err}");
    assert_eq!(stub.seen().len(), 3, "a malformed answer is not retried");
}

#[tokio::test]
async fn receipt_full_minimal_and_null() {
    let mut minimal = full_receipt();
    for key in ["entryPoint", "paymaster", "reason", "logs"] {
        minimal.as_object_mut().unwrap().remove(key);
    }
    minimal["receipt"] = json!({ "transactionHash": HASH, "blockNumber": 16 });
    let (stub, client) = bundler(vec![
        Reply::Result(full_receipt()),
        Reply::Result(minimal),
        Reply::Result(Value::Null),
    ])
    .await;

    let r = client.get_user_operation_receipt(HASH).await.unwrap().unwrap();
    assert_eq!(r.user_op_hash, HASH);
    assert_eq!(r.sender, SENDER);
    assert_eq!(r.nonce, U256::from(3));
    assert!(r.success);
    assert_eq!(r.paymaster, Some(address!("0x4444444444444444444444444444444444444444")));
    assert_eq!(r.actual_gas_used, U256::from(0x2d6a0));
    assert_eq!(r.actual_gas_cost, U256::from(0x1c6bf52634000u64));
    assert_eq!(r.receipt.block_number, 16);
    assert_eq!(r.receipt.status, Some(1));
    assert_eq!(r.logs.len(), 1);
    assert_eq!(r.logs[0].log_index, Some(1));
    assert_eq!(r.reason.as_deref(), Some(""));

    let m = client.get_user_operation_receipt(HASH).await.unwrap().unwrap();
    assert_eq!((m.paymaster, m.entry_point, m.reason.clone()), (None, None, None));
    assert!(m.logs.is_empty() && m.receipt.logs.is_empty());
    assert_eq!(m.receipt.block_number, 16);
    assert_eq!(m.receipt.transaction_hash, HASH);

    assert_eq!(client.get_user_operation_receipt(HASH).await.unwrap(), None);
    let seen = stub.seen();
    assert_eq!(seen[0].body["method"], "eth_getUserOperationReceipt");
    assert_eq!(seen[0].body["params"], json!([HASH]));
}

#[tokio::test]
async fn supported_entry_points() {
    let (stub, client) =
        bundler(vec![Reply::Result(json!(["0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"]))]).await;
    assert_eq!(client.supported_entry_points().await.unwrap(), vec![ENTRY_POINT_V06]);
    assert_eq!(stub.seen()[0].body["params"], json!([]));
}

#[tokio::test]
async fn retries_503_and_429_then_succeeds() {
    let (stub, client) = bundler(vec![
        Reply::Raw(503, "busy", vec![]),
        Reply::Raw(429, "slow down", vec![("retry-after", "1")]),
        Reply::Error(200, -32504, "throttled"),
        Reply::Result(json!(HASH)),
    ])
    .await;
    assert_eq!(client.send_user_operation(&op(), ENTRY_POINT_V06).await.unwrap(), HASH);
    let seen = stub.seen();
    assert_eq!(seen.len(), 4);
    let ids: Vec<&Value> = seen.iter().map(|s| &s.body["id"]).collect();
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "each attempt has its own id: {ids:?}");
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let (stub, client) = bundler(vec![]).await;
    let err = client.supported_entry_points().await.unwrap_err();
    assert!(matches!(err, RpcError::Http { status: 500, .. }), "{err}");
    assert!(err.is_retriable());
    assert_eq!(err.reason(), "bundler_error");
    assert_eq!(stub.seen().len(), 1 + QUICK.max_retries as usize);
}

#[tokio::test]
async fn validation_rejection_is_not_retried() {
    for http in [200, 400, 500] {
        let (stub, client) = bundler(vec![
            Reply::Error(http, -32500, "AA23 reverted: session expired"),
            Reply::Result(json!(HASH)),
        ])
        .await;
        let err = client.send_user_operation(&op(), ENTRY_POINT_V06).await.unwrap_err();
        assert_eq!(stub.seen().len(), 1, "HTTP {http}: rejection must not be retried");
        assert!(matches!(err, RpcError::JsonRpc { code: -32500, .. }), "{err}");
        assert_eq!(err.bundler_code(), Some(BundlerErrorCode::SimulateValidation));
        assert!(err.is_rejection() && !err.is_retriable());
        assert_eq!(err.entry_point_code(), Some("AA23"));
        assert_eq!(err.reason(), "bundler_error");
    }
}

#[tokio::test]
async fn timeout_is_typed_and_retried() {
    let slow = Reply::Delay(Duration::from_secs(5), Box::new(Reply::Result(json!(HASH))));
    let stub = Stub::start(vec![], slow).await;
    let client = BundlerClient::new(&stub.url)
        .unwrap()
        .with_timeout(Duration::from_millis(150))
        .with_retry(RetryPolicy { max_retries: 1, ..QUICK });
    let started = Instant::now();
    let err = client.send_user_operation(&op(), ENTRY_POINT_V06).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Timeout { after, .. } if after == Duration::from_millis(150)),
        "{err}"
    );
    assert!(err.is_retriable());
    assert_eq!(stub.seen().len(), 2);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn malformed_answers_are_typed() {
    let (stub, client) = bundler(vec![
        Reply::Raw(200, "not json", vec![]),
        Reply::Raw(200, "[]", vec![]),
        Reply::Result(json!("0x1234")),
        Reply::Result(json!({ "userOpHash": HASH })),
        Reply::Raw(200, r#"{"jsonrpc":"2.0","id":999999,"result":"0x00"}"#, vec![]),
        Reply::Raw(200, r#"{"jsonrpc":"2.0","error":{"message":"no code"}}"#, vec![]),
    ])
    .await;
    for _ in 0..2 {
        let err = client.send_user_operation(&op(), ENTRY_POINT_V06).await.unwrap_err();
        assert!(matches!(err, RpcError::MalformedResponse { .. }), "{err}");
    }
    let err = client.send_user_operation(&op(), ENTRY_POINT_V06).await.unwrap_err();
    assert!(matches!(err, RpcError::MalformedResponse { .. }), "short hash: {err}");
    let err = client.get_user_operation_receipt(HASH).await.unwrap_err();
    assert!(matches!(err, RpcError::MalformedResponse { .. }), "partial receipt: {err}");
    let err = client.send_user_operation(&op(), ENTRY_POINT_V06).await.unwrap_err();
    assert!(matches!(err, RpcError::MalformedResponse { .. }), "wrong id: {err}");
    let err = client.send_user_operation(&op(), ENTRY_POINT_V06).await.unwrap_err();
    assert!(matches!(err, RpcError::MalformedResponse { .. }), "codeless error: {err}");
    assert!(!err.is_retriable());
    assert_eq!(stub.seen().len(), 6, "none of these is retried");
}

#[tokio::test]
async fn wait_for_receipt_polls_until_found() {
    let (stub, client) = bundler(vec![
        Reply::Result(Value::Null),
        Reply::Result(Value::Null),
        Reply::Result(full_receipt()),
    ])
    .await;
    let r = client
        .wait_for_receipt(HASH, Duration::from_secs(5), Duration::from_millis(10))
        .await
        .unwrap();
    assert_eq!(r.user_op_hash, HASH);
    assert_eq!(stub.seen().len(), 3);
}

#[tokio::test]
async fn wait_for_receipt_times_out() {
    let stub = Stub::start(vec![], Reply::Result(Value::Null)).await;
    let client = BundlerClient::new(&stub.url).unwrap().with_retry(QUICK);
    let err = client
        .wait_for_receipt(HASH, Duration::from_millis(200), Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RpcError::ReceiptTimeout { user_op_hash, .. } if user_op_hash == HASH),
        "{err}"
    );
    assert_eq!(err.reason(), "receipt_timeout");
    assert!(stub.seen().len() >= 3);
}

#[tokio::test]
async fn wait_for_receipt_surfaces_errors() {
    let (_stub, client) = bundler(vec![Reply::Error(200, -32602, "invalid hash")]).await;
    let err = client
        .wait_for_receipt(HASH, Duration::from_secs(5), Duration::from_millis(10))
        .await
        .unwrap_err();
    assert_eq!(err.bundler_code(), Some(BundlerErrorCode::InvalidFields));
}

#[tokio::test]
async fn transport_error_when_nothing_listens() {
    // Bind then drop to get a port with no listener.
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let client = BundlerClient::new(&format!("http://127.0.0.1:{port}/"))
        .unwrap()
        .with_retry(RetryPolicy::none());
    let err = client.supported_entry_points().await.unwrap_err();
    assert!(matches!(err, RpcError::Transport { .. }), "{err}");
    assert!(err.is_retriable());
    assert_eq!(err.reason(), "bundler_error");
}

#[tokio::test]
async fn bad_url_is_typed() {
    let err = BundlerClient::new("not a url").unwrap_err();
    assert!(matches!(err, RpcError::InvalidUrl { .. }));
    assert_eq!(err.reason(), "internal_error");
}

#[tokio::test]
async fn paymaster_sponsors_with_key_in_params_and_header() {
    let stub = Stub::start(
        vec![Reply::Result(json!({
            "paymasterAndData": "0x4444444444444444444444444444444444444444aabb",
            "preVerificationGas": "0xc350",
            "verificationGasLimit": "200000",
            "callGasLimit": "0x186a0",
            "maxFeePerGas": "0x3b9aca00",
            "maxPriorityFeePerGas": "0x3b9aca00"
        }))],
        Reply::Result(json!({ "paymasterAndData": "0x" })),
    )
    .await;
    let client = PaymasterClient::new(&stub.url).unwrap().with_retry(QUICK);
    let res = client
        .sponsor_user_op(&op(), ENTRY_POINT_V06, "test-key", SponsorContext::free())
        .await
        .unwrap();
    let mut sponsored = op();
    res.apply_to(&mut sponsored);
    assert_eq!(sponsored.paymaster(), Some(address!("0x4444444444444444444444444444444444444444")));
    assert_eq!(sponsored.verification_gas_limit, U256::from(200_000));
    assert_eq!(sponsored.max_fee_per_gas, U256::from(1_000_000_000u64));

    let seen = stub.seen();
    assert_eq!(seen[0].api_key.as_deref(), Some("test-key"));
    let body = &seen[0].body;
    assert_eq!(body["method"], "pm_sponsor_userop");
    assert_eq!(body["params"][0], serde_json::to_value(op()).unwrap());
    assert_eq!(body["params"][1], "test-key");
    assert_eq!(body["params"][2], "0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789");
    assert_eq!(body["params"][3], json!({ "type": "0" }));

    // Only paymasterAndData: the gas fields already in the op stay.
    let minimal = client
        .sponsor_user_op(&op(), ENTRY_POINT_V06, "test-key", SponsorContext::free())
        .await
        .unwrap();
    let mut unchanged = op();
    minimal.apply_to(&mut unchanged);
    assert_eq!(unchanged, op());
    assert!(!format!("{client:?}").contains("test-key"));
}

#[tokio::test]
async fn paymaster_rejection_is_not_retried() {
    let stub = Stub::start(
        vec![Reply::Error(200, -32501, "sponsorship denied")],
        Reply::Result(json!({})),
    )
    .await;
    let client = PaymasterClient::new(&stub.url).unwrap().with_retry(QUICK);
    let err = client
        .sponsor_user_op(&op(), ENTRY_POINT_V06, "k", SponsorContext::free())
        .await
        .unwrap_err();
    assert_eq!(err.bundler_code(), Some(BundlerErrorCode::Paymaster));
    assert_eq!(stub.seen().len(), 1);
}
