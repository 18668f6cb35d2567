//! Every refusal is a JSON-RPC error with a specific code and reason, and nothing crashes the
//! server.

use std::{collections::HashSet, num::NonZeroU32};

use alloy::primitives::{Address, U256};
use serde_json::{Value, json};
use x402_aa::ENTRY_POINT_V06;
use x402_aa_paymaster::{MAX_BODY_BYTES, SponsorPolicy};
use x402_aa_rpc::{SponsorContext, SponsorType};

use crate::common::{API_KEY, json_rpc_error, payment_op, post_raw, start, unsimulated};

#[tokio::test]
async fn api_key_is_required() -> anyhow::Result<()> {
    let env = start(SponsorPolicy::default()).await?;
    let op = payment_op(&env.devnet, Address::repeat_byte(1), 0, "k");
    let free = SponsorContext::free();

    let err = env.client.sponsor_user_op(&op, ENTRY_POINT_V06, "wrong", free).await.unwrap_err();
    assert_eq!(json_rpc_error(&err), (-32001, "unauthorized: unknown API key", "unknown_api_key"));
    assert!(!err.is_retriable());

    // The params key wins over a valid header key.
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "pm_sponsor_userop",
        "params": [op, "wrong", ENTRY_POINT_V06, {"type": "0"}],
    });
    let (_, reply) = post_raw(&env.handle.url(), body.to_string(), Some(API_KEY)).await?;
    assert_eq!(reply["error"]["data"]["reason"], "unknown_api_key");

    // Neither param nor header.
    let body = json!({
        "jsonrpc": "2.0", "id": 2, "method": "pm_sponsor_userop",
        "params": [op, null, ENTRY_POINT_V06, {"type": "0"}],
    });
    let (status, reply) = post_raw(&env.handle.url(), body.to_string(), None).await?;
    assert_eq!(status, 200);
    assert_eq!(reply["error"]["code"], -32001);
    assert_eq!(reply["error"]["message"], "unauthorized: missing API key");

    // Authorisation comes before the op is even parsed.
    let body = json!({
        "jsonrpc": "2.0", "id": 3, "method": "pm_sponsor_userop",
        "params": ["garbage", "wrong", ENTRY_POINT_V06],
    });
    let (_, reply) = post_raw(&env.handle.url(), body.to_string(), None).await?;
    assert_eq!(reply["error"]["code"], -32001);
    Ok(())
}

#[tokio::test]
async fn wrong_entry_point_and_sponsor_type() -> anyhow::Result<()> {
    let env = start(SponsorPolicy::default()).await?;
    let op = payment_op(&env.devnet, Address::repeat_byte(1), 0, "e");
    let other = Address::repeat_byte(9);
    let err =
        env.client.sponsor_user_op(&op, other, API_KEY, SponsorContext::free()).await.unwrap_err();
    let (code, message, reason) = json_rpc_error(&err);
    assert_eq!((code, reason), (-32602, "unsupported_entry_point"));
    assert!(message.contains(&ENTRY_POINT_V06.to_string()), "{message}");

    let erc20 = SponsorContext::erc20(SponsorType::Erc20Prepay, env.devnet.addresses.token);
    let err = env.client.sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, erc20).await.unwrap_err();
    assert_eq!(json_rpc_error(&err).0, -32602);
    assert_eq!(json_rpc_error(&err).2, "unsupported_sponsor_type");
    Ok(())
}

#[tokio::test]
async fn policy_violations_are_paymaster_rejections() -> anyhow::Result<()> {
    let devnet_sender = Address::repeat_byte(1);
    let policy = SponsorPolicy {
        allowed_senders: Some(HashSet::from([devnet_sender])),
        ..SponsorPolicy::default()
    };
    let env = start(policy).await?;
    let free = SponsorContext::free();
    let rejected = |op| {
        let client = env.client.clone();
        async move {
            let err =
                client.sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, free).await.unwrap_err();
            let (code, message, reason) = json_rpc_error(&err);
            assert_eq!(code, -32501, "{message}");
            assert!(message.starts_with("paymaster rejected: "), "{message}");
            assert!(!err.is_retriable());
            (message.to_owned(), reason.to_owned())
        }
    };

    let mut op = payment_op(&env.devnet, devnet_sender, 0, "p");
    op.call_gas_limit = U256::from(5_000_000);
    let (message, reason) = rejected(op).await;
    assert_eq!(reason, "gas_too_high");
    assert!(message.contains("5210000"), "{message}"); // 5M + floor 150k + 60k

    let mut op = payment_op(&env.devnet, devnet_sender, 0, "p");
    op.max_fee_per_gas = U256::from(1_000_000_000_000u64);
    assert_eq!(rejected(op).await.1, "fee_too_high");

    let op = payment_op(&env.devnet, Address::repeat_byte(2), 0, "p");
    assert_eq!(rejected(op).await.1, "sender_not_allowed");
    Ok(())
}

#[tokio::test]
async fn call_targets_can_be_restricted() -> anyhow::Result<()> {
    let policy = SponsorPolicy {
        allowed_targets: Some(HashSet::from([Address::repeat_byte(7)])),
        ..SponsorPolicy::default()
    };
    let env = start(policy).await?;
    let op = payment_op(&env.devnet, Address::repeat_byte(1), 0, "t");
    let err = env
        .client
        .sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, SponsorContext::free())
        .await
        .unwrap_err();
    let (code, _, reason) = json_rpc_error(&err);
    assert_eq!((code, reason), (-32501, "target_not_allowed"));
    Ok(())
}

#[tokio::test]
async fn rate_limit_per_sender() -> anyhow::Result<()> {
    let policy =
        SponsorPolicy { rate_limit_per_sender_per_minute: NonZeroU32::new(2), ..unsimulated() };
    let env = start(policy).await?;
    let free = SponsorContext::free();
    let op = payment_op(&env.devnet, Address::repeat_byte(1), 0, "r");
    for _ in 0..2 {
        env.client.sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, free).await?;
    }
    // Refusals do not count against the sender.
    let mut greedy = op.clone();
    greedy.call_gas_limit = U256::from(10_000_000);
    let err =
        env.client.sponsor_user_op(&greedy, ENTRY_POINT_V06, API_KEY, free).await.unwrap_err();
    assert_eq!(json_rpc_error(&err).0, -32501);

    let err = env.client.sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, free).await.unwrap_err();
    let (code, message, reason) = json_rpc_error(&err);
    assert_eq!((code, reason), (-32504, "throttled"));
    assert!(message.starts_with("throttled: "), "{message}");
    assert!(err.is_retriable(), "clients back off and retry -32504");
    let x402_aa_rpc::RpcError::JsonRpc { data: Some(data), .. } = &err else { unreachable!() };
    assert!((1..=60).contains(&data["retryAfter"].as_u64().unwrap_or_default()), "{data}");

    // Another sender has its own budget.
    let other = payment_op(&env.devnet, Address::repeat_byte(2), 0, "r");
    env.client.sponsor_user_op(&other, ENTRY_POINT_V06, API_KEY, free).await?;
    Ok(())
}

#[tokio::test]
async fn garbage_gets_json_rpc_errors_and_the_server_survives() -> anyhow::Result<()> {
    let env = start(unsimulated()).await?;
    let url = env.handle.url();
    let op = payment_op(&env.devnet, Address::repeat_byte(1), 0, "g");
    let mut bad_op = serde_json::to_value(&op)?;
    bad_op["nonce"] = json!(7);
    let sponsor = |params: Value| {
        json!({"jsonrpc": "2.0", "id": 5, "method": "pm_sponsor_userop", "params": params})
            .to_string()
    };

    let cases: Vec<(String, i64)> = vec![
        ("not json".into(), -32700),
        ("{\"jsonrpc\":\"2.0\",\"id\":1,".into(), -32700),
        ("\u{0}\u{1}\u{ff}".into(), -32700),
        ("".into(), -32700),
        ("[]".into(), -32600),
        ("42".into(), -32600),
        ("{}".into(), -32600),
        (r#"{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}"#.into(), -32600),
        (r#"{"jsonrpc":"2.0","id":{},"method":"eth_chainId"}"#.into(), -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":5}"#.into(), -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":"eth_sendTransaction"}"#.into(), -32601),
        (sponsor(json!({"userOp": op})), -32602),
        (sponsor(json!([op])), -32602),
        (sponsor(json!([bad_op, API_KEY, ENTRY_POINT_V06])), -32602),
        (sponsor(json!([op, API_KEY, "0x1234"])), -32602),
        (sponsor(json!([op, 12, ENTRY_POINT_V06])), -32602),
        (sponsor(json!([op, API_KEY, ENTRY_POINT_V06, {"type": "sponsored"}])), -32602),
        (sponsor(json!([op, API_KEY, ENTRY_POINT_V06, {}, 5])), -32602),
    ];
    for (body, code) in cases {
        let (status, reply) = post_raw(&url, body.clone(), None).await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(reply["jsonrpc"], "2.0", "{body}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{body}: {reply}");
        assert!(reply["error"]["message"].is_string(), "{body}");
    }

    // Batches answer per entry; too-long ones are refused whole.
    let (_, reply) =
        post_raw(&url, "[1, {\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"eth_chainId\"}]", None)
            .await?;
    assert_eq!(reply[0]["error"]["code"], -32600);
    assert_eq!(reply[1], json!({"jsonrpc": "2.0", "id": "a", "result": "0x7a69"}));
    let long = Value::Array(vec![json!({"jsonrpc":"2.0","id":1,"method":"eth_chainId"}); 17]);
    let (_, reply) = post_raw(&url, long.to_string(), None).await?;
    assert_eq!(reply["error"]["code"], -32600);

    // A notification gets no answer at all.
    let (status, reply) =
        post_raw(&url, r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#, None).await?;
    assert_eq!((status, reply), (204, Value::Null));

    // Oversized bodies are cut off with a JSON-RPC error under HTTP 413.
    let huge = format!("{{\"pad\":\"{}\"}}", "a".repeat(MAX_BODY_BYTES + 1));
    let (status, reply) = post_raw(&url, huge, None).await?;
    assert_eq!(status, 413);
    assert_eq!(reply["error"]["code"], -32600);
    assert_eq!(reply["error"]["data"]["reason"], "body_too_large");

    // Still serving, and still sponsoring.
    let sponsored =
        env.client.sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, SponsorContext::free()).await?;
    assert_eq!(sponsored.paymaster_and_data.len(), 149);
    Ok(())
}
