//! A bundle the node refuses after the facilitator's key numbered it (the key short of gas money
//! for a moment, a fee under the node's floor): the next bundles must not wait behind a nonce
//! that was never used. Without the resync every later settlement of the key hangs until the
//! receipt bound and answers pending, until a restart.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use alloy::primitives::U256;
use serde_json::{Value, json};
use x402_aa_facilitator::{aa_native_everywhere, exact_on};

use crate::common::{
    Env, Facilitator, SessionOpts, USD, body, exact_body, exact_payload, rpc_proxy,
};

/// A node (through [`rpc_proxy`]) that refuses the first `refusals` signed transactions sent to
/// it the way a node refuses a key without the funds for them; counts them.
async fn refusing_proxy(
    upstream: String,
    refusals: usize,
) -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let refused = Arc::new(AtomicUsize::new(0));
    let counted = refused.clone();
    let url = rpc_proxy(upstream, move |call| {
        let method = call["method"].as_str().unwrap_or_default();
        // A real transaction, not the facilitator's "0x" question whether the node takes
        // one-call sends.
        let signed = method.starts_with("eth_sendRawTransaction")
            && call["params"][0].as_str().is_some_and(|raw| raw.len() > 2);
        (signed && counted.fetch_add(1, Ordering::Relaxed) < refusals).then(|| {
            json!({
                "jsonrpc": "2.0",
                "id": call["id"],
                "error": { "code": -32003, "message": "insufficient funds for gas * price + value" }
            })
        })
    })
    .await?;
    Ok((url, refused))
}

/// `/settle` of `paid` fails with the refusing node's own words.
async fn assert_refused_by_the_node(f: &Facilitator, paid: &Value) -> anyhow::Result<()> {
    let (_, s) = f.settle(paid).await?;
    assert_eq!(s["success"], false, "{s}");
    assert!(s.to_string().contains("insufficient funds"), "the node's words: {s}");
    Ok(())
}

/// `/settle` of `paid` succeeds within 5 s: it did not wait out the receipt bound behind a gap.
async fn assert_settles_at_once(f: &Facilitator, paid: &Value) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (_, s) = f.settle(paid).await?;
    assert_eq!(s["success"], true, "{s}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "settled in {:?}, not after waiting out the receipt bound",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_bundle_leaves_no_nonce_gap_for_the_next() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let (proxy, refused) = refusing_proxy(env.devnet.rpc_url().to_owned(), 1).await?;
    let config = env.config_through(&proxy);
    let f = env.start(config).await?;
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD / 10);

    // The node refuses the first bundle: its payment fails, nothing was sent.
    let first = body(&payer.pay(&accepted, 1).await?, &accepted);
    assert_refused_by_the_node(&f, &first).await?;
    assert!(refused.load(Ordering::Relaxed) >= 1, "the proxy refused the send");

    // The next bundle takes the nonce the refused one never used, and lands at once.
    let before = env.merchant_balance().await?;
    let second = body(&payer.pay(&accepted, 2).await?, &accepted);
    assert_settles_at_once(&f, &second).await?;
    assert_eq!(env.merchant_balance().await? - before, U256::from(USD / 10));
    f.stop().await
}

/// The same on the `exact` path: the node refuses the facilitator's first
/// `transferWithAuthorization` after the key numbered it, and the next `exact` payment must not
/// wait behind the nonce it never used.
#[tokio::test]
async fn a_refused_exact_settlement_leaves_no_nonce_gap_for_the_next() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let (proxy, refused) = refusing_proxy(env.devnet.rpc_url().to_owned(), 1).await?;
    let mut config = env.config_through(&proxy);
    config.schemes = Some(vec![aa_native_everywhere(), exact_on(env.devnet.chain_id())]);
    let f = env.start(config).await?;
    let payer = env.devnet.keys.spare[0].clone();
    env.devnet.mint_eip3009(payer.address(), U256::from(10 * USD)).await?;
    let requirements = env.exact_requirements(USD);

    let first = exact_body(&exact_payload(&payer, &requirements).await?, &requirements);
    assert_refused_by_the_node(&f, &first).await?;
    assert_eq!(refused.load(Ordering::Relaxed), 1, "the proxy refused the send");

    let second = exact_body(&exact_payload(&payer, &requirements).await?, &requirements);
    assert_settles_at_once(&f, &second).await?;
    let merchant = env.devnet.eip3009_balance(env.merchant).await?;
    assert_eq!(merchant, U256::from(USD), "the second payment, and only it");
    f.stop().await
}
