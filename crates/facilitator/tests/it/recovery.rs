//! Restart with rows a crashed instance left `in_flight`: the chain decides how each ended.

use std::time::Duration;

use alloy::providers::Provider;
use x402_aa_facilitator::store::{Claim, ClaimOutcome, SqliteStore, Status, Store, now_ms};

use crate::common::{Env, SessionOpts, USD, body};

async fn claim_as(
    env: &Env,
    owner: &str,
    paid: &x402_aa_session::signer::SignedPayment,
    payer: alloy::primitives::Address,
    submitted: bool,
) -> anyhow::Result<()> {
    let store = SqliteStore::open(env.registry_path())?;
    let chain_id = env.devnet.chain_id();
    let claim = Claim {
        chain_id,
        request_hash: paid.request_hash,
        user_op_hash: paid.user_op_hash,
        payer,
        from_block: env.devnet.provider().get_block_number().await?,
        owner: owner.into(),
        now_ms: now_ms(),
    };
    assert_eq!(store.claim(&claim).await?, ClaimOutcome::Claimed);
    if submitted {
        store.mark_submitted(chain_id, paid.request_hash, paid.user_op_hash, now_ms()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn in_flight_row_whose_op_landed_is_recovered_as_settled() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let paid = payer.pay(&accepted, 1).await?;
    // The crashed instance claimed the payment and submitted it, then died before recording.
    claim_as(&env, "default", &paid, payer.sender(), true).await?;
    let included = env
        .devnet
        .handle_ops(
            std::slice::from_ref(&paid.payload.payload.user_op),
            env.devnet.keys.bundler.address(),
        )
        .await?
        .into_included()?;
    let tx = included.receipt.transaction_hash;

    // Restart on the same registry file: start-up recovery reads the op's fate from the chain.
    let f = env.start(env.config()).await?;
    let row = SqliteStore::open(env.registry_path())?
        .get(env.devnet.chain_id(), paid.request_hash)
        .await?
        .expect("row");
    assert_eq!(row.status, Status::Settled, "{row:?}");
    assert_eq!(row.tx_hash, Some(tx));

    // The merchant's retry gets the recorded success; nothing is paid twice.
    let (status, s) = f.settle(&body(&paid, &accepted)).await?;
    assert_eq!(status, 200);
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(s["transaction"], tx.to_string());
    assert_eq!(env.merchant_balance().await?, alloy::primitives::U256::from(USD));
    f.stop().await
}

#[tokio::test]
async fn in_flight_rows_without_a_landed_op_are_released_and_settle_later() -> anyhow::Result<()> {
    let env = Env::new().await?;
    // Two accounts: the devnet paymaster's approval covers a per-sender nonce, so one sender's
    // second sponsored op can only be signed after its first landed.
    let (payer, payer2) = (
        env.session_payer(SessionOpts::default()).await?,
        env.session_payer(SessionOpts::default()).await?,
    );
    let accepted = env.accepted(USD);
    let ours = payer.pay(&accepted, 1).await?;
    let theirs = payer2.pay(&accepted, 2).await?;
    // Ours crashed before submitting; another live instance holds the second payment.
    claim_as(&env, "default", &ours, payer.sender(), false).await?;
    claim_as(&env, "elsewhere", &theirs, payer2.sender(), false).await?;

    let f = env.start(env.config()).await?;
    let store = SqliteStore::open(env.registry_path())?;
    let row = store.get(env.devnet.chain_id(), ours.request_hash).await?.expect("row");
    assert_eq!(row.status, Status::Failed, "not left in_flight: {row:?}");
    assert_eq!(row.reason.as_deref(), Some("internal_error"));
    assert!(row.retryable);
    let (_, s) = f.settle(&body(&ours, &accepted)).await?;
    assert_eq!(s["success"], true, "a released row is claimed again: {s}");

    // A fresh claim of another instance is respected: in_flight, with Retry-After.
    let raw = serde_json::to_vec(&body(&theirs, &accepted))?;
    let (status, headers, s) = f.raw("/settle", "application/json", raw).await?;
    assert_eq!(status, 200);
    assert_eq!(s["errorReason"], "in_flight", "{s}");
    assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let (_, v) = f.verify(&body(&theirs, &accepted)).await?;
    assert_eq!(v["invalidReason"], "in_flight", "{v}");

    // Once stale, any instance resolves it (here: never submitted, so released).
    let other = env.service(env.config()).await?;
    let aa = other.aa_native(env.devnet.chain_id()).expect("aa-native");
    let report = aa.recover(Duration::ZERO).await?;
    assert_eq!(report.released, 1, "{report:?}");
    let (_, s) = f.settle(&body(&theirs, &accepted)).await?;
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(env.merchant_balance().await?, alloy::primitives::U256::from(2 * USD));
    f.stop().await
}
