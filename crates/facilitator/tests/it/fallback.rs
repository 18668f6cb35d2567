//! A node without `eth_call` state overrides or `eth_sendRawTransactionSync` (older geth forks):
//! the one-call probe is refused, and `/verify` and `/settle` fall back to the EntryPoint's
//! simulations with the same verdicts; bundles go out with `eth_sendRawTransaction` and a polled
//! receipt.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use serde_json::json;

use crate::common::{Env, Facilitator, SessionOpts, USD, body, rpc_proxy};

/// Calls the proxy refused: probes (state overrides) and one-call sends; `allow_overrides` lets
/// state overrides through (a failover test starts on a node that takes them).
#[derive(Default)]
struct Refused {
    overrides: AtomicUsize,
    sync_sends: AtomicUsize,
    allow_overrides: std::sync::atomic::AtomicBool,
}

/// A node (through [`rpc_proxy`]) that answers any `eth_call` carrying a third (state override)
/// parameter the way geth before 1.9 did, and `eth_sendRawTransactionSync` the way a node without
/// EIP-7966 does, and counts those refusals.
async fn old_node_proxy(upstream: String) -> anyhow::Result<(String, Arc<Refused>)> {
    let refused = Arc::new(Refused::default());
    let counted = refused.clone();
    let url = rpc_proxy(upstream, move |call| {
        let overrides = call["method"] == "eth_call"
            && call["params"].as_array().is_some_and(|p| p.len() > 2)
            && !counted.allow_overrides.load(Ordering::Relaxed);
        if overrides {
            counted.overrides.fetch_add(1, Ordering::Relaxed);
            return Some(json!({
                "jsonrpc": "2.0",
                "id": call["id"],
                "error": { "code": -32602, "message": "too many arguments, want at most 2" }
            }));
        }
        if call["method"] == "eth_sendRawTransactionSync" {
            counted.sync_sends.fetch_add(1, Ordering::Relaxed);
            return Some(json!({
                "jsonrpc": "2.0",
                "id": call["id"],
                "error": {
                    "code": -32601,
                    "message": "the method eth_sendRawTransactionSync does not exist/is not available"
                }
            }));
        }
        None
    })
    .await?;
    Ok((url, refused))
}

/// The facilitator with every chain's RPC through [`old_node_proxy`] (state overrides let
/// through while `allow_overrides`).
async fn behind_old_node_proxy(
    env: &Env,
    allow_overrides: bool,
) -> anyhow::Result<(Facilitator, Arc<Refused>)> {
    let (proxy, refused) = old_node_proxy(env.devnet.rpc_url().to_owned()).await?;
    refused.allow_overrides.store(allow_overrides, Ordering::Relaxed);
    let config = env.config_through(&proxy);
    Ok((env.start(config).await?, refused))
}

#[tokio::test]
async fn verifies_settles_and_refuses_on_an_old_node() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let (f, refused) = behind_old_node_proxy(&env, false).await?;

    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD / 10);
    let paid = body(&payer.pay(&accepted, 1).await?, &accepted);
    let (status, v) = f.verify(&paid).await?;
    assert_eq!((status, v["isValid"].as_bool()), (200, Some(true)), "{v}");
    assert!(refused.overrides.load(Ordering::Relaxed) > 0, "the probe was tried first");

    let before = env.merchant_balance().await?;
    let (_, s) = f.settle(&paid).await?;
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(env.merchant_balance().await? - before, alloy::primitives::U256::from(USD / 10));
    assert_eq!(refused.sync_sends.load(Ordering::Relaxed), 1, "one-call send tried once");

    // Later bundles go straight to the two-step send.
    let second = body(&payer.pay(&accepted, 3).await?, &accepted);
    let (_, s) = f.settle(&second).await?;
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(refused.sync_sends.load(Ordering::Relaxed), 1, "not tried again");

    // Refusals keep their specific reasons.
    let (_, again) = f.verify(&paid).await?;
    assert_eq!(again["invalidReason"], "replay", "{again}");
    let broke = env.broke_owner_payer().await?;
    let (_, v) = f.verify(&body(&broke.pay(&accepted, 2).await?, &accepted)).await?;
    assert_eq!(v["invalidReason"], "insufficient_funds", "{v}");
    f.stop().await
}

/// The node behind the RPC URL takes state overrides at first (so direct bundling probes whole
/// bundles and `/settle` skips its own probe), then fails over to one that does not: the next
/// bundle's probe is refused by the node itself, and settlement goes on the plain way instead of
/// failing until a restart.
#[tokio::test]
async fn settles_on_after_a_failover_to_a_node_without_state_overrides() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let (f, refused) = behind_old_node_proxy(&env, true).await?;
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD / 10);
    for n in 0..2u64 {
        let paid = body(&payer.pay(&accepted, n).await?, &accepted);
        let (_, s) = f.settle(&paid).await?;
        assert_eq!(s["success"], true, "before the failover, payment {n}: {s}");
    }
    assert_eq!(refused.overrides.load(Ordering::Relaxed), 0);

    refused.allow_overrides.store(false, Ordering::Relaxed);
    let before = env.merchant_balance().await?;
    for n in 2..4u64 {
        let paid = body(&payer.pay(&accepted, n).await?, &accepted);
        let (_, s) = f.settle(&paid).await?;
        assert_eq!(s["success"], true, "after the failover, payment {n}: {s}");
    }
    assert!(refused.overrides.load(Ordering::Relaxed) > 0, "the bundle probe was tried");
    // Nothing relies on probes any more: `/settle` checks an op alone again before it is sent,
    // so a payment that cannot pay is refused with its reason instead of landing and reverting.
    let broke = env.broke_owner_payer().await?;
    let (_, s) = f.settle(&body(&broke.pay(&accepted, 9).await?, &accepted)).await?;
    assert_eq!(s["errorReason"], "insufficient_funds", "{s}");
    assert_eq!(
        env.merchant_balance().await? - before,
        alloy::primitives::U256::from(2 * (USD / 10))
    );
    f.stop().await
}
