//! The four flaw classes published for x402 deployments, each against the facilitator with a real
//! EntryPoint: what a hostile party tries, the refusal (and its reason string) it gets, and that no
//! honest party loses money.
//!
//! 1. cross-resource substitution: a payment signed for one resource or price presented for
//!    another;
//! 2. duplicate-settlement race: one payload settled by many callers at once (also across two
//!    instances sharing a registry, in `crash::concurrent_settles_across_two_instances_settle_once`);
//! 3. allowance overdraft: an op approving more than it settles, and an allowance left over from
//!    an earlier approval;
//! 4. denial of settlement: someone settling the same requestHash first, with their own tokens or
//!    by bundling the payer's own op before the facilitator does.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::{Filter, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use serde_json::{Value, json};
use x402_aa::{UserOperation, encode_approve, encode_execute, encode_payment_batch};
use x402_aa_contracts::{
    SettlementContract::{self, ReceiptLog},
    TestStablecoin,
};
use x402_aa_session::signer::{OwnerAccount, PaymentSigner};

use crate::common::{API_KEY, Env, Facilitator, Payer, SessionOpts, USD, body};

/// `/verify` and `/settle` both refuse `b` with `reason`.
async fn refused(f: &Facilitator, what: &str, b: &Value, reason: &str) -> anyhow::Result<()> {
    let (status, v) = f.verify(b).await?;
    assert_eq!((status, v["isValid"].as_bool()), (200, Some(false)), "{what}: {v}");
    assert_eq!(v["invalidReason"], reason, "{what}: {v}");
    let (_, s) = f.settle(b).await?;
    assert_eq!(s["success"], false, "{what}: {s}");
    assert_eq!(s["errorReason"], reason, "{what}: {s}");
    Ok(())
}

fn edited(base: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    edit(&mut v);
    v
}

/// `ReceiptLog`s the settlement contract emitted for `request_hash`.
async fn receipts(env: &Env, request_hash: B256) -> anyhow::Result<usize> {
    let filter = Filter::new()
        .address(env.devnet.addresses.settlement)
        .event_signature(ReceiptLog::SIGNATURE_HASH)
        .topic3(request_hash)
        .from_block(0);
    Ok(env.devnet.provider().get_logs(&filter).await?.len())
}

async fn allowance(env: &Env, owner: Address) -> anyhow::Result<U256> {
    let a = env.devnet.addresses;
    Ok(TestStablecoin::new(a.token, env.devnet.provider())
        .allowance(owner, a.settlement)
        .call()
        .await?)
}

/// Sends `input` to `to` from `from` (a key of the devnet's wallet); `Err` if it reverts.
async fn send_from(env: &Env, from: Address, to: Address, input: Bytes) -> anyhow::Result<()> {
    let tx = TransactionRequest::default().with_from(from).with_to(to).with_input(input);
    env.devnet.send("tx", tx).await?;
    Ok(())
}

/// A payment signed for resource A (0.10 USDT) is worth nothing at resource B (1 USDT), at another
/// merchant, or with its amount rewritten; and once settled it pays nothing anywhere else.
///
/// What binds a payment to its resource is the requestHash (merchant, chain, method, URL, time
/// bucket, client nonce) inside the signed callData; the facilitator sees the merchant, token and
/// amount it pays and refuses any mismatch with the requirements it is asked to settle, and refuses a
/// disclosed request binding that is not what the requestHash was made of. (The same merchant's other
/// resource at the same price asks for the same requirements: that substitution is the paywall's to
/// refuse, from the binding; `x402-aa-paywall`'s `a_payment_pays_only_for_the_request_it_was_made_for`.)
#[tokio::test]
async fn cross_resource_substitution_is_refused() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let a = env.devnet.addresses;
    let payer = env.session_payer(SessionOpts::default()).await?;
    let resource_a = env.accepted(USD / 10);
    let resource_b = env.accepted(USD);
    let other_merchant = env.accepted_for(Address::repeat_byte(0x77), USD / 10);
    let paid = payer.pay(&resource_a, 1).await?;
    let for_a = body(&paid, &resource_a);
    let (payer_before, merchant_before) =
        (env.devnet.token_balance(payer.sender()).await?, env.merchant_balance().await?);

    refused(&f, "A's payload for B", &body(&paid, &resource_b), "amount_mismatch").await?;
    let accepted_rewritten = edited(&body(&paid, &resource_b), |v| {
        v["paymentPayload"]["accepted"] = resource_b.clone();
    });
    refused(&f, "A's payload claiming B's accepts entry", &accepted_rewritten, "amount_mismatch")
        .await?;
    refused(
        &f,
        "A's payload for another merchant at the same price",
        &body(&paid, &other_merchant),
        "payTo_mismatch",
    )
    .await?;
    // Rewriting what the op pays (callData and spec together, so they agree with B) breaks the
    // session key's signature over the op.
    let repriced = encode_payment_batch(
        a.token,
        a.settlement,
        env.merchant,
        U256::from(USD),
        paid.request_hash,
    );
    let rewritten = edited(&accepted_rewritten, |v| {
        let inner = &mut v["paymentPayload"]["payload"];
        inner["userOp"]["callData"] = json!(repriced);
        inner["settlementCallSpec"]["amount"] = json!(USD.to_string());
    });
    refused(&f, "A's op repriced to B", &rewritten, "invalid_session_signature").await?;
    // Claiming another resource in the disclosed binding: it no longer hashes to the requestHash.
    let rebound = edited(&for_a, |v| {
        v["paymentPayload"]["payload"]["request"]["endpoint"] = json!("http://127.0.0.1/other");
    });
    refused(&f, "A's payload claiming another resource", &rebound, "request_mismatch").await?;
    assert_eq!(env.devnet.token_balance(payer.sender()).await?, payer_before, "payer untouched");
    assert_eq!(env.merchant_balance().await?, merchant_before, "merchant untouched");

    // Settled where it was signed for, it is spent: presented again it is a replay to /verify,
    // and /settle repeats the one settlement's answer without paying again. (The requirements
    // name no resource, so the same merchant's other resource at the same price asks for exactly
    // these requirements: "again" is that case too.)
    let (_, s) = f.settle(&for_a).await?;
    assert_eq!(s["success"], true, "{s}");
    let (_, v) = f.verify(&for_a).await?;
    assert_eq!(v["invalidReason"], "replay", "{v}");
    let (_, again) = f.settle(&for_a).await?;
    assert_eq!(again, s, "the recorded settlement, not a second one");
    assert_eq!(receipts(&env, paid.request_hash).await?, 1);
    assert_eq!(env.merchant_balance().await? - merchant_before, U256::from(USD / 10));
    assert_eq!(
        payer_before - env.devnet.token_balance(payer.sender()).await?,
        U256::from(USD / 10)
    );
    f.stop().await
}

/// Many callers settle one payload at once: one on-chain settlement, one debit of the payer, and
/// the same answer for every caller.
#[tokio::test]
async fn duplicate_settlement_race_settles_once() -> anyhow::Result<()> {
    const N: usize = 12;
    let env = Env::new().await?;
    let f = std::sync::Arc::new(env.start(env.config()).await?);
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let paid = payer.pay(&accepted, 1).await?;
    let b = body(&paid, &accepted);
    let payer_before = env.devnet.token_balance(payer.sender()).await?;

    let tasks: Vec<_> = (0..N)
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
    assert!(answers.iter().all(|a| a == &answers[0]), "one answer for all: {answers:?}");
    assert_eq!(receipts(&env, paid.request_hash).await?, 1, "exactly one settlement");
    assert_eq!(env.merchant_balance().await?, U256::from(USD));
    assert_eq!(payer_before - env.devnet.token_balance(payer.sender()).await?, U256::from(USD));
    Ok(())
}

/// `settle` pulls the amount it names from its caller only, and a payment approves exactly what
/// it settles: an op approving more is refused, a payment leaves no allowance behind, and an
/// allowance left over from earlier is neither spendable by anyone else nor by a later payment
/// beyond that payment's own amount.
#[tokio::test]
async fn allowance_overdraft_is_refused() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let a = env.devnet.addresses;
    let accepted = env.accepted(USD);

    // An owner whose account approved the settlement contract for 50 USDT outside any payment.
    let owner = PrivateKeySigner::random();
    let account = env.devnet.create_simple_account(owner.address(), U256::ZERO).await?;
    env.devnet.fund(account, U256::from(10u64.pow(18))).await?;
    env.devnet.mint(account, U256::from(100 * USD)).await?;
    let mut approve = UserOperation {
        sender: account,
        call_data: encode_execute(
            a.token,
            U256::ZERO,
            encode_approve(a.settlement, U256::from(50 * USD)),
        ),
        call_gas_limit: U256::from(100_000),
        verification_gas_limit: U256::from(150_000),
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: U256::from(20_000_000_000u64),
        max_priority_fee_per_gas: U256::from(1_000_000_000u64),
        ..UserOperation::default()
    };
    env.devnet.sign_as_owner(&mut approve, &owner).await?;
    env.devnet.handle_ops(&[approve], env.devnet.keys.bundler.address()).await?.into_included()?;
    assert_eq!(allowance(&env, account).await?, U256::from(50 * USD));

    // Nobody else can pull it: settle moves its caller's tokens, not the approver's.
    let thief = env.devnet.keys.spare[3].address();
    let steal = SettlementContract::settleCall {
        merchant: thief,
        token: a.token,
        amount: U256::from(50 * USD),
        requestHash: B256::repeat_byte(0x51),
    };
    assert!(send_from(&env, thief, a.settlement, steal.abi_encode().into()).await.is_err());
    assert_eq!(env.devnet.token_balance(account).await?, U256::from(100 * USD));

    let signer = PaymentSigner::new(
        OwnerAccount::simple_account(owner, account, a.token, a.settlement),
        env.devnet.provider().clone(),
    )
    .await?
    .paymaster(env.paymaster_client()?, API_KEY);
    let payer = Payer::Owner(Box::new(signer));

    // An op approving 50 USDT for a 1 USDT settle would leave 49 approved: refused as a shape.
    let paid = payer.pay(&accepted, 1).await?;
    let overdraft = encode_execute_batch_over(&env, paid.request_hash);
    let over = edited(&body(&paid, &accepted), |v| {
        v["paymentPayload"]["payload"]["userOp"]["callData"] = json!(overdraft);
    });
    refused(&f, "approve 50, settle 1", &over, "calldata_decode_failed").await?;

    // The honest payment approves exactly its amount (replacing the 50), pulls exactly that,
    // and leaves nothing approved.
    let (_, s) = f.settle(&body(&paid, &accepted)).await?;
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(env.merchant_balance().await?, U256::from(USD));
    assert_eq!(env.devnet.token_balance(account).await?, U256::from(99 * USD));
    assert_eq!(allowance(&env, account).await?, U256::ZERO, "no allowance left behind");

    // Session payments the same: nothing approved after a payment settles.
    let session = env.session_payer(SessionOpts::default()).await?;
    let (_, s) = f.settle(&body(&session.pay(&accepted, 2).await?, &accepted)).await?;
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(allowance(&env, session.sender()).await?, U256::ZERO);
    f.stop().await
}

/// `executeBatch(approve(settlement, 50 USDT), settle(merchant, token, 1 USDT, requestHash))`.
fn encode_execute_batch_over(env: &Env, request_hash: B256) -> Bytes {
    let a = env.devnet.addresses;
    let settle = SettlementContract::settleCall {
        merchant: env.merchant,
        token: a.token,
        amount: U256::from(USD),
        requestHash: request_hash,
    };
    x402_aa::encode_execute_batch(
        vec![a.token, a.settlement],
        vec![encode_approve(a.settlement, U256::from(50 * USD)), settle.abi_encode().into()],
    )
}

/// Someone who learns a requestHash settles it first. With their own tokens: the payer's payment
/// is refused as `replay` before anything is submitted, the payer keeps its money and pays again
/// under a fresh requestHash. By bundling the payer's own op first: the payment happened exactly
/// as signed, and `/settle` answers it as settled (with that transaction), not as a replay that
/// would leave the payer charged and the merchant refusing to serve.
#[tokio::test]
async fn settling_the_request_hash_first_denies_nothing() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let a = env.devnet.addresses;
    let accepted = env.accepted(USD);
    let payer = env.session_payer(SessionOpts::default()).await?;
    let payer_before = env.devnet.token_balance(payer.sender()).await?;

    // The griefer settles the payer's requestHash for 1 unit paid to itself.
    let paid = payer.pay(&accepted, 1).await?;
    let griefer = env.devnet.keys.spare[4].address();
    env.devnet.mint(griefer, U256::from(1)).await?;
    let approve = TestStablecoin::approveCall { spender: a.settlement, value: U256::from(1) };
    send_from(&env, griefer, a.token, approve.abi_encode().into()).await?;
    let settle = SettlementContract::settleCall {
        merchant: env.devnet.keys.spare[5].address(),
        token: a.token,
        amount: U256::from(1),
        requestHash: paid.request_hash,
    };
    send_from(&env, griefer, a.settlement, settle.abi_encode().into()).await?;
    refused(&f, "requestHash settled by a griefer", &body(&paid, &accepted), "replay").await?;
    assert_eq!(
        env.devnet.token_balance(payer.sender()).await?,
        payer_before,
        "payer keeps its money"
    );
    assert_eq!(env.merchant_balance().await?, U256::ZERO);
    // The payer signs again (a fresh client nonce, so a fresh requestHash) and is served.
    let again = payer.pay(&accepted, 2).await?;
    let (_, s) = f.settle(&body(&again, &accepted)).await?;
    assert_eq!(s["success"], true, "{s}");

    // A bundler that saw the payload submits the payer's op before the facilitator.
    let paid = payer.pay(&accepted, 3).await?;
    let b = body(&paid, &accepted);
    let front_run = env
        .devnet
        .handle_ops(std::slice::from_ref(&paid.payload.payload.user_op), griefer)
        .await?
        .into_included()?;
    let tx = front_run.receipt.transaction_hash;
    let (_, s) = f.settle(&b).await?;
    assert_eq!(s["success"], true, "the payment landed as signed: {s}");
    assert_eq!(s["transaction"], json!(tx), "{s}");
    let (_, again) = f.settle(&b).await?;
    assert_eq!(again, s, "recorded: duplicates get the same answer");
    assert_eq!(receipts(&env, paid.request_hash).await?, 1);
    assert_eq!(env.merchant_balance().await?, U256::from(2 * USD));
    assert_eq!(payer_before - env.devnet.token_balance(payer.sender()).await?, U256::from(2 * USD));
    f.stop().await
}
