//! The shared Postgres registry; runs only when `X402_AA_TEST_POSTGRES_URL` is set.

use alloy::primitives::{Address, B256, U256};
use x402_aa_facilitator::store::{Claim, ClaimOutcome, Finish, PostgresStore, Status, Store};

use crate::common::{Env, SessionOpts, USD, body};

const URL_ENV: &str = "X402_AA_TEST_POSTGRES_URL";

#[allow(clippy::print_stderr)] // the skip notice is the point
fn url() -> Option<String> {
    let url = std::env::var(URL_ENV).ok();
    if url.is_none() {
        eprintln!("SKIP: set {URL_ENV}=postgres://… to run the Postgres registry tests");
    }
    url
}

#[tokio::test]
async fn postgres_claims_are_atomic_and_final() -> anyhow::Result<()> {
    let Some(url) = url() else { return Ok(()) };
    let store = PostgresStore::connect(&url).await?;
    // A chain id of our own, so rows of other runs never count.
    let chain_id = u64::from(rand_u32()) + 1_000_000;
    let claim = |op: u8| Claim {
        chain_id,
        request_hash: B256::repeat_byte(1),
        user_op_hash: B256::repeat_byte(op),
        payer: Address::repeat_byte(9),
        from_block: 5,
        owner: "a".into(),
        now_ms: 1_000,
    };
    let finish = |status: Status, retryable: bool| Finish {
        status,
        reason: (status == Status::Failed).then(|| "bundler_error".into()),
        message: None,
        retryable,
        submitted: false,
        tx_hash: (status == Status::Settled).then_some(B256::repeat_byte(0xee)),
        block_number: (status == Status::Settled).then_some(6),
        response: None,
        now_ms: 2_000,
    };
    // Concurrent claims from four connections (four instances): exactly one wins.
    let results = futures_join(&url, &claim(2)).await?;
    assert_eq!(results.iter().filter(|r| **r == ClaimOutcome::Claimed).count(), 1);
    assert_eq!(store.unresolved(chain_id, "a", 0).await?.len(), 1);
    assert!(
        store
            .finish(
                chain_id,
                B256::repeat_byte(1),
                B256::repeat_byte(2),
                &finish(Status::Failed, true)
            )
            .await?
    );
    assert_eq!(store.claim(&claim(2)).await?, ClaimOutcome::Claimed, "retryable failures reopen");
    assert!(
        store
            .finish(
                chain_id,
                B256::repeat_byte(1),
                B256::repeat_byte(2),
                &finish(Status::Settled, false)
            )
            .await?
    );
    let ClaimOutcome::Existing(row) = store.claim(&claim(3)).await? else {
        panic!("settled rows are final")
    };
    assert_eq!(row.status, Status::Settled);
    assert_eq!(row.tx_hash, Some(B256::repeat_byte(0xee)));
    store.ping().await?;
    Ok(())
}

async fn futures_join(url: &str, claim: &Claim) -> anyhow::Result<Vec<ClaimOutcome>> {
    let stores = [
        PostgresStore::connect(url).await?,
        PostgresStore::connect(url).await?,
        PostgresStore::connect(url).await?,
        PostgresStore::connect(url).await?,
    ];
    let (a, b, c, d) = tokio::join!(
        stores[0].claim(claim),
        stores[1].claim(claim),
        stores[2].claim(claim),
        stores[3].claim(claim)
    );
    Ok(vec![a?, b?, c?, d?])
}

fn rand_u32() -> u32 {
    let b = crate::common::fresh();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) >> 1
}

#[tokio::test]
async fn settles_with_a_postgres_registry() -> anyhow::Result<()> {
    let Some(url) = url() else { return Ok(()) };
    let env = Env::new().await?;
    let mut config = env.config();
    config.registry_url = url;
    let f = env.start(config).await?;
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let paid = payer.pay(&accepted, 1).await?;
    let b = body(&paid, &accepted);
    let (_, s) = f.settle(&b).await?;
    assert_eq!(s["success"], true, "{s}");
    let (_, again) = f.settle(&b).await?;
    assert_eq!(again, s);
    assert_eq!(env.merchant_balance().await?, U256::from(USD));
    f.stop().await
}
