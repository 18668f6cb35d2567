//! Budget accounting happens in execution: reverted payments cost nothing, and several ops of one
//! account in one bundle can never spend past a cap.

use alloy::{
    network::TransactionBuilder,
    primitives::{U256, aliases::U96},
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use x402_aa_contracts::SettlementContract;
use x402_aa_session::SessionMode;

use crate::fixture::{Fx, USD, request};

async fn set_paused(fx: &Fx, paused: bool) -> anyhow::Result<()> {
    let input = if paused {
        SettlementContract::pauseCall {}.abi_encode()
    } else {
        SettlementContract::unpauseCall {}.abi_encode()
    };
    let tx = TransactionRequest::default()
        .with_from(fx.devnet.keys.deployer.address())
        .with_to(fx.devnet.addresses.settlement)
        .with_input(input);
    fx.devnet.send("pause", tx).await?;
    Ok(())
}

#[tokio::test]
async fn a_reverted_settle_leaves_the_budget_untouched() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let grant = fx.grant();
    fx.pay_ok(&fx.pay(&grant)).await?;
    assert_eq!(fx.state(&grant).await?, (1, 0, USD, USD));

    set_paused(&fx, true).await?;
    let mut p = fx.pay(&grant);
    p.mode = SessionMode::Use;
    p.request_hash = request(2);
    let (outcome, hash) = fx.submit(&p).await?;
    let included = outcome.into_included()?;
    let event = included.event(hash).expect("the op is included");
    assert!(!event.success, "settle must revert while paused");
    assert_eq!(fx.state(&grant).await?, (1, 0, USD, USD), "no budget consumed");
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(USD));

    set_paused(&fx, false).await?;
    fx.pay_ok(&p).await?;
    assert_eq!(fx.state(&grant).await?, (1, 0, 2 * USD, 2 * USD));
    Ok(())
}

#[tokio::test]
async fn several_ops_in_one_bundle_cannot_exceed_the_period_cap() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    // Self-paid gas: the VerifyingPaymaster signs one op per sender per block, a bundler's choice.
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    let mut grant = fx.grant();
    grant.periodCap = U96::from(USD + USD / 2);
    grant.maxGasCostPerOp = U96::from(10u64.pow(16));
    grant.gasPeriodBudget = U96::from(10u64.pow(17));
    grant.gasLifetimeBudget = U96::from(10u64.pow(17));
    fx.pay_ok(&{
        let mut p = fx.pay(&grant);
        p.paymaster = false;
        p.amount = U256::from(USD / 2);
        p
    })
    .await?;

    // Each of these fits the remaining 1 USD alone; together they would not.
    let mut ops = Vec::new();
    let mut hashes = Vec::new();
    for (key, n) in [(1u64, 2u64), (2, 3)] {
        let mut p = fx.pay(&grant);
        p.mode = SessionMode::Use;
        p.paymaster = false;
        p.nonce_key = key;
        p.request_hash = request(n);
        let (op, hash) = fx.op(&p).await?;
        ops.push(op);
        hashes.push(hash);
    }
    let included =
        fx.devnet.handle_ops(&ops, fx.devnet.keys.bundler.address()).await?.into_included()?;
    let succeeded: Vec<bool> =
        hashes.iter().map(|h| included.event(*h).map(|e| e.success).unwrap_or(false)).collect();
    assert_eq!(succeeded, vec![false, true], "only the last validated op of the sender executes");
    assert!(
        included
            .revert_reason_strings()
            .iter()
            .any(|r| r.contains("op was not the last validated")),
        "{:?}",
        included.revert_reason_strings()
    );
    let (_, _, period_spent, _) = fx.state(&grant).await?;
    assert_eq!(period_spent, USD + USD / 2);
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(USD + USD / 2));
    Ok(())
}
