//! Concurrent duplicates of one payment settle it exactly once and all get the same answer.

use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
use x402_aa_contracts::SettlementContract::ReceiptLog;

use crate::common::{Env, SessionOpts, USD, body};

#[tokio::test]
async fn eight_concurrent_settles_of_one_payment_settle_once() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = std::sync::Arc::new(env.start(env.config()).await?);
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let paid = payer.pay(&accepted, 1).await?;
    let b = body(&paid, &accepted);

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (f, b) = (f.clone(), b.clone());
            tokio::spawn(async move { f.settle(&b).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        let (status, answer) = task.await??;
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    assert_eq!(answers[0]["success"], true, "{}", answers[0]);
    for answer in &answers {
        assert_eq!(answer, &answers[0], "every duplicate gets the same result");
    }

    let filter = Filter::new()
        .address(env.devnet.addresses.settlement)
        .event_signature(ReceiptLog::SIGNATURE_HASH)
        .topic3(paid.request_hash)
        .from_block(0);
    let logs = env.devnet.provider().get_logs(&filter).await?;
    assert_eq!(logs.len(), 1, "exactly one on-chain settlement");
    assert_eq!(env.merchant_balance().await?, alloy::primitives::U256::from(USD));

    // Later duplicates come from the registry.
    let (_, late) = f.settle(&b).await?;
    assert_eq!(late, answers[0]);
    Ok(())
}
