//! Verify then settle, for a session-key payment and an owner-signed SimpleAccount payment.

use alloy::primitives::{B256, U256};
use x402_aa_facilitator::store::{SqliteStore, Status, Store};

use crate::common::{Env, Payer, SessionOpts, USD, body};

/// Verifies, settles, and checks the chain and the registry agree; returns the tx hash.
async fn verify_and_settle(
    env: &Env,
    f: &crate::common::Facilitator,
    payer: &Payer,
    n: u64,
) -> anyhow::Result<B256> {
    let accepted = env.accepted(USD);
    let paid = payer.pay(&accepted, n).await?;
    let b = body(&paid, &accepted);
    let before = env.merchant_balance().await?;

    let (status, v) = f.verify(&b).await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["isValid"], true, "{v}");
    assert_eq!(v["payer"], payer.sender().to_checksum(None));

    let (status, s) = f.settle(&b).await?;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(s["network"], "eip155:31337");
    assert_eq!(s["payer"], payer.sender().to_checksum(None));
    assert!(s.get("errorReason").is_none(), "{s}");
    let tx: B256 = s["transaction"].as_str().unwrap_or_default().parse()?;
    assert_eq!(env.merchant_balance().await?, before + U256::from(USD));

    let row = SqliteStore::open(env.registry_path())?
        .get(env.devnet.chain_id(), paid.request_hash)
        .await?
        .expect("registry row");
    assert_eq!(row.status, Status::Settled);
    assert_eq!(row.tx_hash, Some(tx));
    assert_eq!(row.user_op_hash, paid.user_op_hash);

    // Once settled: /verify says replay, /settle answers the recorded result again.
    let (_, v) = f.verify(&b).await?;
    assert_eq!(v["isValid"], false);
    assert_eq!(v["invalidReason"], "replay", "{v}");
    let (status, again) = f.settle(&b).await?;
    assert_eq!(status, 200);
    assert_eq!(again, s, "a second /settle returns the first result");
    assert_eq!(env.merchant_balance().await?, before + U256::from(USD), "paid once");
    Ok(tx)
}

#[tokio::test]
async fn session_payment_deploys_enables_then_pays_again() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    // Not deployed: the first op deploys the account (owner taken from initCode) and enables
    // the session; the second uses the enabled session (owner read from the account).
    let payer = env.session_payer(SessionOpts { deployed: false, ..Default::default() }).await?;
    verify_and_settle(&env, &f, &payer, 1).await?;
    verify_and_settle(&env, &f, &payer, 2).await?;
    f.stop().await
}

#[tokio::test]
async fn owner_signed_simple_account_payment() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let payer = env.owner_payer(100 * USD).await?;
    verify_and_settle(&env, &f, &payer, 1).await?;
    verify_and_settle(&env, &f, &payer, 2).await?;

    let (status, supported) = f.get("/supported").await?;
    assert_eq!(status, 200);
    let kinds = supported["kinds"].as_array().expect("kinds");
    assert_eq!(kinds.len(), 1, "{supported}");
    assert_eq!(kinds[0]["scheme"], "aa-native");
    assert_eq!(kinds[0]["network"], "eip155:31337");
    assert_eq!(kinds[0]["x402Version"], 2);
    assert_eq!(
        kinds[0]["extra"]["settlementContract"],
        env.devnet.addresses.settlement.to_checksum(None)
    );
    assert_eq!(
        supported["signers"]["eip155:31337"][0],
        env.facilitator_key.address().to_checksum(None),
        "direct mode: the facilitator's key bundles"
    );
    let (status, health) = f.get("/health").await?;
    assert_eq!(status, 200);
    assert_eq!(health["kinds"], supported["kinds"]);
    f.stop().await
}
