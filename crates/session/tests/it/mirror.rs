//! The off-chain scope check refuses exactly what the account refuses, case by case: the same
//! payment ops go to `handleOps` and to the policy's `check_session_op`.

use alloy::primitives::{
    U256,
    aliases::{U48, U96},
};
use x402_aa::{SettleCall, encode_approve, encode_execute, encode_execute_batch};
use x402_aa_contracts::SessionKeyAccount;
use x402_aa_session::{
    SessionMode,
    policy::{SessionOpSignature, check_session_op, onchain::read_usage, payment_merchant},
};

use crate::fixture::{Fx, Pay, USD, request};

impl Fx {
    /// Runs the off-chain checks on the op `p` describes, with the account's stored counters.
    async fn offchain(&self, p: &Pay) -> anyhow::Result<Result<(), &'static str>> {
        let (op, hash) = self.op(p).await?;
        let now = self.devnet.block_timestamp().await?;
        let signature = match SessionOpSignature::decode(&op, self.devnet.chain_id()) {
            Ok(s) => s,
            Err(v) => return Ok(Err(v.reason())),
        };
        let merchant = payment_merchant(&op).unwrap_or_default();
        let usage =
            read_usage(self.devnet.provider(), self.account, signature.session_id, merchant, true)
                .await?;
        let checked = check_session_op(&op, hash, &signature, self.owner.address(), &usage, now);
        Ok(checked.map(|_| ()).map_err(|v| v.reason()))
    }

    /// Both layers must agree: the chain's reason and the off-chain reason for `p`.
    async fn both_refuse(&self, p: &Pay, chain: &str, offchain: &str) -> anyhow::Result<()> {
        assert_eq!(self.offchain(p).await?, Err(offchain), "off-chain check for {chain}");
        self.refused(p, chain).await
    }
}

#[tokio::test]
async fn offchain_check_refuses_what_the_chain_refuses() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let mut grant = fx.grant();
    grant.periodCap = U96::from(2 * USD);
    let ok = fx.pay(&grant);
    assert_eq!(fx.offchain(&ok).await?, Ok(()));
    fx.pay_ok(&ok).await?;

    let mut p = fx.pay(&grant);
    p.mode = SessionMode::Use;
    p.request_hash = request(2);
    assert_eq!(fx.offchain(&p).await?, Ok(()));

    let mut over = p.clone();
    over.amount = U256::from(USD + 1);
    fx.both_refuse(
        &over,
        "AA23 reverted: session: over per-payment max",
        "per_payment_max_exceeded",
    )
    .await?;

    let mut stranger = p.clone();
    stranger.merchant = fx.stranger;
    fx.both_refuse(
        &stranger,
        "AA23 reverted: session: merchant not allowed",
        "merchant_not_allowed",
    )
    .await?;

    let settle = SettleCall {
        merchant: fx.merchant,
        token: a.token,
        amount: U256::from(USD),
        request_hash: request(3),
    };
    let mut spender = p.clone();
    spender.call_data = Some(encode_execute_batch(
        vec![a.token, a.settlement],
        vec![encode_approve(fx.stranger, U256::from(USD)), settle.abi_encode()],
    ));
    fx.both_refuse(
        &spender,
        "AA23 reverted: session: approve spender not allowed",
        "method_not_allowed",
    )
    .await?;

    let mut self_call = p.clone();
    self_call.call_data = Some(encode_execute(
        fx.account,
        U256::ZERO,
        encode_execute(fx.stranger, U256::ZERO, Default::default()),
    ));
    fx.both_refuse(
        &self_call,
        "AA23 reverted: session: self-call not allowed",
        "method_not_allowed",
    )
    .await?;

    let mut no_paymaster = p.clone();
    no_paymaster.paymaster = false;
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    fx.both_refuse(
        &no_paymaster,
        "AA23 reverted: session: paymaster required",
        "gas_policy_violation",
    )
    .await?;

    // Spend the rest of the period, then one more is over the cap on both layers.
    fx.pay_ok(&p).await?;
    let mut more = p.clone();
    more.request_hash = request(4);
    more.amount = U256::from(1);
    fx.both_refuse(&more, "AA23 reverted: session: over period cap", "spend_cap_exceeded").await?;

    let mut unused = fx.grant();
    unused.validAfter = U48::from(fx.start + 7_200);
    let mut early = fx.pay(&unused);
    early.period_index = Some(0);
    fx.both_refuse(&early, "AA22 expired or not due", "session_not_yet_valid").await?;

    fx.owner_call(SessionKeyAccount::revokeSession_olCall { id: fx.session_id(&grant) }).await?;
    more.amount = U256::from(USD);
    fx.both_refuse(&more, "AA23 reverted: session: revoked", "session_revoked").await
}
