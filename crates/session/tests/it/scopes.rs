//! Each scope of a grant, violated in its own test, is refused by `EntryPoint.handleOps` with the
//! account's reason; the happy path settles with lazy enable and then by id.

use alloy::{
    primitives::{
        Address, B256, Bytes, U256,
        aliases::{U48, U96},
    },
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use x402_aa::{SettleCall, encode_approve, encode_execute, encode_execute_batch};
use x402_aa_contracts::SessionKeyAccount;
use x402_aa_session::SessionMode;

use crate::fixture::{DAY, Fx, USD, deploy_account, receipt_logs, request};

const NOT_DUE: &str = "AA22 expired or not due";

fn refused(reason: &str) -> String {
    format!("AA23 reverted: session: {reason}")
}

#[tokio::test]
async fn lazy_enable_then_pay_by_id() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let grant = fx.grant();
    assert_eq!(fx.state(&grant).await?.0, 0, "unknown before first use");

    let mut p = fx.pay(&grant);
    p.request_hash = request(1);
    let included = fx.pay_ok(&p).await?;
    let logs = receipt_logs(&fx, &included);
    assert_eq!(logs.len(), 1);
    assert_eq!((logs[0].merchant, logs[0].payer), (fx.merchant, fx.account));
    assert_eq!((logs[0].amount, logs[0].requestHash), (U256::from(USD), request(1)));
    assert_eq!(fx.state(&grant).await?, (1, 0, USD, USD));

    // Second payment: no owner signature any more, the session is referenced by its id.
    p.mode = SessionMode::Use;
    p.request_hash = request(2);
    p.amount = U256::from(USD / 2);
    fx.pay_ok(&p).await?;
    assert_eq!(fx.state(&grant).await?, (1, 0, USD + USD / 2, USD + USD / 2));
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(USD + USD / 2));
    Ok(())
}

#[tokio::test]
async fn use_mode_before_enable_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let mut p = fx.pay(&fx.grant());
    p.mode = SessionMode::Use;
    fx.refused(&p, &refused("not enabled")).await
}

#[tokio::test]
async fn wrong_session_signer_is_a_signature_error() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let mut p = fx.pay(&fx.grant());
    p.signer = Some(PrivateKeySigner::random());
    fx.refused(&p, "AA24 signature error").await
}

#[tokio::test]
async fn expired_session_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let mut grant = fx.grant();
    grant.validUntil = U48::from(fx.start + 100);
    grant.period = 0;
    fx.pay_ok(&fx.pay(&grant)).await?;
    fx.devnet.increase_time(200).await?;
    let mut p = fx.pay(&grant);
    p.mode = SessionMode::Use;
    fx.refused(&p, NOT_DUE).await
}

#[tokio::test]
async fn not_yet_valid_session_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let mut grant = fx.grant();
    grant.validAfter = U48::from(fx.start + 3_600);
    let mut p = fx.pay(&grant);
    p.period_index = Some(0);
    fx.refused(&p, NOT_DUE).await
}

#[tokio::test]
async fn over_per_payment_max_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let mut p = fx.pay(&fx.grant());
    p.amount = U256::from(USD + 1);
    fx.refused(&p, &refused("over per-payment max")).await
}

#[tokio::test]
async fn over_period_cap_is_refused_and_the_next_period_is_fresh() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let mut grant = fx.grant();
    grant.periodCap = U96::from(2 * USD);
    let mut p = fx.pay(&grant);
    fx.pay_ok(&p).await?;
    p.mode = SessionMode::Use;
    p.request_hash = request(2);
    fx.pay_ok(&p).await?;
    p.request_hash = request(3);
    p.amount = U256::from(1);
    fx.refused(&p, &refused("over period cap")).await?;

    // Claiming the next period early is not a way around it: the EntryPoint holds the op until then.
    p.period_index = Some(1);
    fx.refused(&p, NOT_DUE).await?;

    fx.devnet.increase_time(u64::from(DAY)).await?;
    p.period_index = None;
    p.amount = U256::from(USD);
    fx.pay_ok(&p).await?;
    assert_eq!(fx.state(&grant).await?, (1, 1, USD, 3 * USD));

    // Once period 1 was charged, period 0 is over for good.
    p.period_index = Some(0);
    p.request_hash = request(4);
    fx.refused(&p, &refused("period already over")).await
}

#[tokio::test]
async fn over_lifetime_cap_is_refused_even_in_a_new_period() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let mut grant = fx.grant();
    grant.lifetimeCap = U96::from(2 * USD);
    let mut p = fx.pay(&grant);
    fx.pay_ok(&p).await?;
    p.mode = SessionMode::Use;
    p.request_hash = request(2);
    fx.pay_ok(&p).await?;
    fx.devnet.increase_time(u64::from(DAY)).await?;
    p.request_hash = request(3);
    fx.refused(&p, &refused("over lifetime cap")).await
}

#[tokio::test]
async fn merchant_not_on_the_allowlist_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let grant = fx.grant();
    let mut p = fx.pay(&grant);
    p.merchant = fx.stranger;
    fx.refused(&p, &refused("merchant not allowed")).await?;
    // A proof from a different list does not help either.
    p.allowlist = vec![fx.merchant, fx.stranger];
    fx.refused(&p, &refused("merchant not allowed")).await?;
    // Any-merchant grants (zero root) accept the stranger.
    let mut open = fx.grant();
    open.merchantRoot = B256::ZERO;
    let mut p = fx.pay(&open);
    p.merchant = fx.stranger;
    p.allowlist = vec![];
    fx.pay_ok(&p).await?;
    Ok(())
}

/// A settle call paying `fx.merchant` 1 USD with `token`.
fn settle(fx: &Fx, token: Address) -> Bytes {
    SettleCall { merchant: fx.merchant, token, amount: U256::from(USD), request_hash: request(9) }
        .abi_encode()
}

#[tokio::test]
async fn wrong_token_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let other_token = fx.stranger;
    let mut p = fx.pay(&fx.grant());
    p.call_data = Some(encode_execute_batch(
        vec![other_token, a.settlement],
        vec![encode_approve(a.settlement, U256::from(USD)), settle(&fx, other_token)],
    ));
    fx.refused(&p, &refused("token not allowed")).await?;
    // Approving the right token but settling another is refused too.
    p.call_data = Some(encode_execute_batch(
        vec![a.token, a.settlement],
        vec![encode_approve(a.settlement, U256::from(USD)), settle(&fx, other_token)],
    ));
    fx.refused(&p, &refused("token not allowed")).await
}

#[tokio::test]
async fn wrong_spender_in_approve_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let mut p = fx.pay(&fx.grant());
    p.call_data = Some(encode_execute_batch(
        vec![a.token, a.settlement],
        vec![encode_approve(fx.stranger, U256::from(USD)), settle(&fx, a.token)],
    ));
    fx.refused(&p, &refused("approve spender not allowed")).await?;
    // Approving more than the payment leaves an allowance behind: refused.
    p.call_data = Some(encode_execute_batch(
        vec![a.token, a.settlement],
        vec![encode_approve(a.settlement, U256::from(100 * USD)), settle(&fx, a.token)],
    ));
    fx.refused(&p, &refused("approve amount differs from payment")).await
}

#[tokio::test]
async fn extra_call_in_the_batch_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let transfer = x402_aa_contracts::TestStablecoin::transferCall {
        to: fx.stranger,
        value: U256::from(500 * USD),
    }
    .abi_encode();
    let mut p = fx.pay(&fx.grant());
    p.call_data = Some(encode_execute_batch(
        vec![a.token, a.settlement, a.token],
        vec![
            encode_approve(a.settlement, U256::from(USD)),
            settle(&fx, a.token),
            transfer.clone().into(),
        ],
    ));
    fx.refused(&p, &refused("batch must be exactly approve + settle")).await?;
    // A transfer in place of the approve is no payment either.
    p.call_data = Some(encode_execute_batch(
        vec![a.token, a.settlement],
        vec![transfer.into(), settle(&fx, a.token)],
    ));
    fx.refused(&p, &refused("first call must be approve")).await
}

#[tokio::test]
async fn self_calls_are_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let mut p = fx.pay(&fx.grant());
    // Nested execute on the account itself, e.g. to escape the payment shape.
    let inner = encode_execute(fx.stranger, U256::ZERO, Bytes::new());
    p.call_data = Some(encode_execute(fx.account, U256::ZERO, inner.clone()));
    fx.refused(&p, &refused("self-call not allowed")).await?;
    // Revoking, upgrading or changing the owner all go through self-calls too.
    let revoke_all = SessionKeyAccount::revokeAllSessionsCall {}.abi_encode();
    p.call_data = Some(encode_execute_batch(
        vec![a.token, fx.account],
        vec![encode_approve(a.settlement, U256::from(USD)), revoke_all.into()],
    ));
    fx.refused(&p, &refused("self-call not allowed")).await?;
    // Calling an account function directly as callData is not a payment.
    p.call_data = Some(SessionKeyAccount::revokeAllSessionsCall {}.abi_encode().into());
    fx.refused(&p, &refused("callData is not execute/executeBatch")).await
}

#[tokio::test]
async fn value_transfer_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    let mut p = fx.pay(&fx.grant());
    p.call_data = Some(encode_execute(a.settlement, U256::from(1), settle(&fx, a.token)));
    fx.refused(&p, &refused("value transfer not allowed")).await?;
    p.call_data = Some(encode_execute(fx.stranger, U256::from(10u64.pow(17)), Bytes::new()));
    fx.refused(&p, &refused("value transfer not allowed")).await
}

#[tokio::test]
async fn single_execute_settle_shape_is_accepted_with_a_prior_allowance() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    // The owner grants the allowance once; the session then pays with execute(settlement, 0, settle).
    fx.owner_call(SessionKeyAccount::executeCall {
        dest: a.token,
        value: U256::ZERO,
        func: encode_approve(a.settlement, U256::from(5 * USD)),
    })
    .await?;
    let grant = fx.grant();
    let mut p = fx.pay(&grant);
    p.call_data = Some(encode_execute(a.settlement, U256::ZERO, settle(&fx, a.token)));
    fx.pay_ok(&p).await?;
    assert_eq!(fx.state(&grant).await?, (1, 0, USD, USD));
    Ok(())
}

#[tokio::test]
async fn no_paymaster_when_required_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    // Even with ETH deposited, a session may not spend it on gas when the grant requires a paymaster.
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    let mut p = fx.pay(&fx.grant());
    p.paymaster = false;
    fx.refused(&p, &refused("paymaster required")).await?;

    // A grant that pins another paymaster refuses the devnet's.
    let mut pinned = fx.grant();
    pinned.paymaster = fx.stranger;
    fx.refused(&fx.pay(&pinned), &refused("paymaster not allowed")).await
}

#[tokio::test]
async fn self_paid_gas_is_bounded_by_the_grant() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    let mut grant = fx.grant();
    // (300k + 400k + 60k) gas × 3 gwei = 2.28e15 wei per op at most.
    grant.maxGasCostPerOp = U96::from(2_000_000_000_000_000u64);
    grant.gasPeriodBudget = U96::from(10u64.pow(17));
    grant.gasLifetimeBudget = U96::from(10u64.pow(17));
    let mut p = fx.pay(&grant);
    p.paymaster = false;
    fx.refused(&p, &refused("gas cost over per-op cap")).await?;
    grant.maxGasCostPerOp = U96::from(3_000_000_000_000_000u64);
    let mut p = fx.pay(&grant);
    p.paymaster = false;
    fx.pay_ok(&p).await?;
    Ok(())
}

#[tokio::test]
async fn grant_replayed_on_another_account_or_chain_is_refused() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let grant = fx.grant();
    fx.pay_ok(&fx.pay(&grant)).await?;

    // Same owner, second account: the grant's signature names the first account.
    let second = deploy_account(&fx.devnet, fx.owner.address(), U256::from(1)).await?;
    fx.devnet.mint(second, U256::from(100 * USD)).await?;
    let mut p = fx.pay(&grant);
    p.sender = Some(second);
    p.owner_signature = Some(fx.sign_grant_for(&grant, fx.devnet.chain_id(), fx.account));
    fx.refused(&p, &refused("bad owner signature")).await?;

    // A grant signed for another chain id does not enable here either.
    let mut p = fx.pay(&fx.grant());
    p.owner_signature = Some(fx.sign_grant_for(&p.grant, 1, fx.account));
    fx.refused(&p, &refused("bad owner signature")).await
}
