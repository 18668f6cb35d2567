//! A node that stalls on one read a settlement needs. On the submitter's fee estimate (its
//! fee-history index rebuilding, an overloaded archive behind a load balancer): the bundle is not
//! sent, every caller hears why within the node's bound instead of a maybe-sent answer after the
//! receipt bound, and once the node answers again the same payment settles, once. On an `exact`
//! settlement's gas estimate: it gives up within the key's request bound instead of hanging.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::primitives::U256;
use x402_aa_facilitator::{Config, aa_native_everywhere, exact_on};

use crate::common::{Env, Fault, SessionOpts, USD, body, exact_body, exact_payload, faulty_proxy};

#[tokio::test]
async fn a_node_stalling_on_fees_gets_no_bundle_and_the_payment_settles_later() -> anyhow::Result<()>
{
    let env = Env::new().await?;
    let stalling = Arc::new(AtomicBool::new(true));
    let sends = Arc::new(AtomicUsize::new(0));
    let (stall, sent) = (stalling.clone(), sends.clone());
    let proxy = faulty_proxy(env.devnet.rpc_url().to_owned(), move |call| {
        let method = call["method"].as_str().unwrap_or_default();
        // A real transaction, not the facilitator's "0x" question whether the node takes
        // one-call sends.
        if method.starts_with("eth_sendRawTransaction")
            && call["params"][0].as_str().is_some_and(|raw| raw.len() > 2)
        {
            sent.fetch_add(1, Ordering::Relaxed);
        }
        (method == "eth_feeHistory" && stall.load(Ordering::Relaxed))
            .then_some(Fault::Stall(Duration::from_secs(60)))
    })
    .await?;
    let config = env.config_through(&proxy);
    let rpc_timeout = rpc_timeout(&config);
    let receipt_timeout = config.receipt_timeout();
    assert!(rpc_timeout < receipt_timeout, "the test tells the two bounds apart");
    let f = env.start(config).await?;
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD / 10);
    let before = env.merchant_balance().await?;

    let paid = body(&payer.pay(&accepted, 1).await?, &accepted);
    let started = Instant::now();
    let (_, s) = f.settle(&paid).await?;
    let waited = started.elapsed();
    assert_eq!(s["success"], false, "{s}");
    assert!(s.to_string().contains("no fee estimate"), "says why: {s}");
    assert!(waited < receipt_timeout, "answered after {waited:?}, within the node's bound");
    assert_eq!(sends.load(Ordering::Relaxed), 0, "no bundle was sent");

    // The node answers again: the same payment settles, and only once.
    stalling.store(false, Ordering::Relaxed);
    let (_, s) = f.settle(&paid).await?;
    assert_eq!(s["success"], true, "{s}");
    let (_, again) = f.settle(&paid).await?;
    assert_eq!(again["transaction"], s["transaction"], "{again}");
    assert_eq!(env.merchant_balance().await? - before, U256::from(USD / 10));
    assert_eq!(sends.load(Ordering::Relaxed), 1);
    f.stop().await
}

/// A node that stalls while an `exact` settlement prices its `transferWithAuthorization` (the
/// gas estimate x402-rs' scheme asks through the facilitator key's provider): the settlement
/// gives up within the key's request bound and says so, instead of hanging on the node for ever,
/// and once the node answers again the same authorization settles, once.
#[tokio::test]
async fn a_node_stalling_on_an_exact_settlement_is_given_up_on() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let stalling = Arc::new(AtomicBool::new(true));
    let stall = stalling.clone();
    let proxy = faulty_proxy(env.devnet.rpc_url().to_owned(), move |call| {
        (call["method"] == "eth_estimateGas" && stall.load(Ordering::Relaxed))
            .then_some(Fault::Stall(Duration::from_secs(60)))
    })
    .await?;
    let mut config = env.config_through(&proxy);
    config.schemes = Some(vec![aa_native_everywhere(), exact_on(env.devnet.chain_id())]);
    let rpc_timeout = rpc_timeout(&config);
    let bound = config.receipt_timeout() + rpc_timeout;
    let f = env.start(config).await?;
    let payer = env.devnet.keys.spare[0].clone();
    env.devnet.mint_eip3009(payer.address(), U256::from(10 * USD)).await?;
    let requirements = env.exact_requirements(USD);
    let paid = exact_body(&exact_payload(&payer, &requirements).await?, &requirements);

    let started = Instant::now();
    let (_, s) = f.settle(&paid).await?;
    let waited = started.elapsed();
    assert_eq!(s["success"], false, "{s}");
    assert!(waited < bound + Duration::from_secs(5), "gave up after {waited:?} (bound {bound:?})");
    assert_eq!(env.devnet.eip3009_balance(env.merchant).await?, U256::ZERO);

    stalling.store(false, Ordering::Relaxed);
    let (_, s) = f.settle(&paid).await?;
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(env.devnet.eip3009_balance(env.merchant).await?, U256::from(USD));
    f.stop().await
}

/// The longest node-call bound among `config`'s chains.
fn rpc_timeout(config: &Config) -> Duration {
    config.chains.values().map(|c| c.rpc_timeout()).max().unwrap_or_default()
}
