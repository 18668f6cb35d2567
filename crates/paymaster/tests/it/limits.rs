//! A session-key holder cannot make the paymaster sponsor more than its limits: not with more
//! ops, not with ops certain to revert, not with gas fields a bundler it runs would profit from.
//!
//! The agent is the SDK's own `PaymentSigner` on a real SessionKeyAccount; whatever it gets
//! sponsored is landed through the real EntryPoint, and the paymaster's EntryPoint deposit is the
//! judge of what was spent.

use std::time::Duration;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use serde_json::Value;
use x402_aa::{
    ENTRY_POINT_V06, UserOperation, encode_payment_batch,
    x402::{AaNativeExtra, AaNativeRequirements},
};
use x402_aa_contracts::{EntryPoint, SessionKeyAccountFactory};
use x402_aa_devnet::Devnet;
use x402_aa_paymaster::{Budget, SponsorLimits, SponsorPolicy};
use x402_aa_rpc::{PaymasterClient, RpcError, SponsorContext};
use x402_aa_session::{
    Scopes, SessionFile, TokenInfo,
    owner::sign_grant,
    per_day,
    signer::{PaidRequest, PaymentSigner, SessionAccount, SignedPayment, SignerError},
};

use crate::common::{API_KEY, Env, USD, json_rpc_error, payment_op, start};

/// No per-minute throttle: these tests are about the period budgets. The fee cap is raised: the
/// SDK bids twice `eth_gasPrice`, which anvil derives from recent tips, and the devnet's
/// presigned Safe factory transaction tipped ~99 gwei.
fn policy(per_account: Budget, per_session: Budget) -> SponsorPolicy {
    SponsorPolicy {
        rate_limit_per_sender_per_minute: None,
        max_fee_per_gas: 1_000_000_000_000,
        limits: SponsorLimits { period_seconds: 3600, per_account, per_session },
        ..SponsorPolicy::default()
    }
}

/// A deployed SessionKeyAccount of a fresh owner holding `balance` USDT.
async fn session_account(
    devnet: &Devnet,
    balance: u64,
) -> anyhow::Result<(Address, PrivateKeySigner)> {
    let a = devnet.addresses;
    let owner = PrivateKeySigner::random();
    let factory = SessionKeyAccountFactory::new(a.session_account_factory, devnet.provider());
    let account = factory.getAddress(owner.address(), U256::ZERO).call().await?;
    let call =
        SessionKeyAccountFactory::createAccountCall { owner: owner.address(), salt: U256::ZERO };
    let tx = TransactionRequest::default()
        .with_from(devnet.keys.deployer.address())
        .with_to(a.session_account_factory)
        .with_input(call.abi_encode());
    devnet.send("createAccount", tx).await?;
    if balance > 0 {
        devnet.mint(account, U256::from(balance)).await?;
    }
    Ok((account, owner))
}

/// An agent holding a fresh session key of `account` (100 USDT/day, 1 USDT per payment, the
/// devnet merchant, gas only through the devnet paymaster), asking `env`'s service.
async fn agent(
    env: &Env,
    account: Address,
    owner: &PrivateKeySigner,
    salt: u8,
) -> anyhow::Result<PaymentSigner<SessionAccount>> {
    let devnet = &env.devnet;
    let a = devnet.addresses;
    let token = TokenInfo { address: a.token, symbol: "USDT".into(), decimals: 6 };
    let scopes = Scopes::new()
        .spend_cap("100 USDT".parse()?, per_day())
        .per_payment_max("1 USDT".parse()?)
        .merchants([merchant(devnet)])
        .valid_for(Duration::from_secs(3 * 3600))
        .only_paymaster(a.verifying_paymaster);
    let now = devnet.block_timestamp().await?;
    let key = PrivateKeySigner::random();
    let grant = scopes.to_grant(
        key.address(),
        &token,
        a.settlement,
        now - 1,
        0,
        B256::repeat_byte(salt),
    )?;
    let (_, signature) = sign_grant(owner, &grant, devnet.chain_id(), account)?;
    let file = SessionFile::new(
        devnet.chain_id(),
        account,
        ENTRY_POINT_V06,
        None,
        token,
        owner.address(),
        scopes.merchant_list(),
        &grant,
        signature,
    );
    Ok(PaymentSigner::new(SessionAccount::new(file, key)?, devnet.provider().clone())
        .await?
        .paymaster(PaymasterClient::new(&env.handle.url())?, API_KEY))
}

fn merchant(devnet: &Devnet) -> Address {
    devnet.keys.spare[1].address()
}

fn accepted(devnet: &Devnet) -> Value {
    let a = devnet.addresses;
    let req = AaNativeRequirements {
        chain_id: devnet.chain_id(),
        amount: U256::from(USD),
        pay_to: merchant(devnet),
        asset: a.token,
        max_timeout_seconds: 60,
        extra: Some(AaNativeExtra {
            settlement_contract: a.settlement,
            entry_point: ENTRY_POINT_V06,
        }),
    };
    serde_json::to_value(req.to_wire()).expect("requirements serialise")
}

/// Signs a payment (the SDK asks the paymaster on the way); the paymaster's refusal reason if it
/// refused.
async fn pay(
    devnet: &Devnet,
    signer: &PaymentSigner<SessionAccount>,
    n: usize,
) -> Result<SignedPayment, String> {
    let request = PaidRequest { method: "GET".into(), url: format!("http://merchant.local/{n}") };
    match signer.pay(&accepted(devnet), &request).await {
        Ok(signed) => Ok(signed),
        Err(SignerError::Rpc(e @ RpcError::JsonRpc { .. })) => Err(json_rpc_error(&e).2.to_owned()),
        Err(other) => panic!("expected a paymaster refusal, got {other}"),
    }
}

/// Lands a sponsored payment through the real EntryPoint from the bundler key, and tells the
/// signer (which frees the payment's nonce lane: every payment here uses lane 0).
async fn land(
    devnet: &Devnet,
    signer: &PaymentSigner<SessionAccount>,
    signed: &SignedPayment,
) -> anyhow::Result<()> {
    let op = signed.payload.payload.user_op.clone();
    let included =
        devnet.handle_ops(&[op], devnet.keys.bundler.address()).await?.into_included()?;
    anyhow::ensure!(included.all_succeeded(), "{:?}", included.revert_reason_strings());
    signer.settled(signed, included.receipt.transaction_hash, 0)?;
    Ok(())
}

async fn deposit(devnet: &Devnet) -> anyhow::Result<U256> {
    let entry_point = EntryPoint::new(ENTRY_POINT_V06, devnet.provider());
    Ok(entry_point.balanceOf(devnet.addresses.verifying_paymaster).call().await?)
}

#[tokio::test]
async fn ops_per_session_and_per_account() -> anyhow::Result<()> {
    let env = start(policy(
        Budget { max_ops: Some(3), max_wei: None },
        Budget { max_ops: Some(2), max_wei: None },
    ))
    .await?;
    let devnet = &env.devnet;
    let (account, owner) = session_account(devnet, 10 * USD).await?;
    let first = agent(&env, account, &owner, 1).await?;
    let second = agent(&env, account, &owner, 2).await?;

    for n in 0..2 {
        land(devnet, &first, &pay(devnet, &first, n).await.expect("within both budgets")).await?;
    }
    assert_eq!(pay(devnet, &first, 2).await.err().as_deref(), Some("session_ops_limit"));
    // Another session of the same account has its own budget, but the account's is shared.
    land(devnet, &second, &pay(devnet, &second, 3).await.expect("the account has one op left"))
        .await?;
    assert_eq!(pay(devnet, &second, 4).await.err().as_deref(), Some("account_ops_limit"));

    // Claiming to be the owner (a 65-byte placeholder) does not escape the account budget.
    let mut owner_shaped = payment_op(devnet, account, 3, "owner-shaped");
    owner_shaped.signature = vec![0xff; 65].into();
    let err = env
        .client
        .sponsor_user_op(&owner_shaped, ENTRY_POINT_V06, API_KEY, SponsorContext::free())
        .await
        .unwrap_err();
    let (code, message, reason) = json_rpc_error(&err);
    assert_eq!((code, reason), (-32501, "account_ops_limit"), "{message}");
    assert!(message.contains("3 of 3 ops"), "{message}");
    let x402_aa_rpc::RpcError::JsonRpc { data: Some(data), .. } = &err else { unreachable!() };
    assert!((1..=3600).contains(&data["retryAfter"].as_u64().unwrap_or_default()), "{data}");

    // Exactly three ops were paid for, all of them payments that landed.
    assert_eq!(devnet.token_balance(merchant(devnet)).await?, U256::from(3 * USD));

    // The next period brings the budgets back.
    devnet.increase_time(3600).await?;
    land(devnet, &second, &pay(devnet, &second, 6).await.expect("a new period")).await?;
    Ok(())
}

/// The wei budget bounds what the deposit actually pays, whatever the agent does: every
/// approval is charged its worst case, so the ops that land cost less than the budget.
#[tokio::test]
async fn wei_budget_bounds_the_deposit_spent() -> anyhow::Result<()> {
    // 0.01 ETH: a handful of ops at the devnet's ~1-2 gwei fees (each approval is charged
    // (callGas + 3 * verificationGas + preVerificationGas) * maxFeePerGas, ~1.5e15 wei).
    let budget = U256::from(10u64.pow(16));
    let env =
        start(policy(Budget { max_ops: None, max_wei: Some(budget) }, Budget::UNLIMITED)).await?;
    let devnet = &env.devnet;
    let (account, owner) = session_account(devnet, 100 * USD).await?;
    let signer = agent(&env, account, &owner, 1).await?;
    let before = deposit(devnet).await?;
    let mut landed = 0u64;
    let refusal = loop {
        match pay(devnet, &signer, landed as usize).await {
            Ok(signed) => {
                land(devnet, &signer, &signed).await?;
                landed += 1;
            }
            Err(reason) => break reason,
        }
        assert!(landed < 100, "the wei budget never refused");
    };
    assert_eq!(refusal, "account_wei_limit");
    assert!(landed >= 1, "the budget fits at least one op");
    let spent = before - deposit(devnet).await?;
    assert!(spent > U256::ZERO && spent <= budget, "spent {spent} of a {budget} budget");
    assert_eq!(devnet.token_balance(merchant(devnet)).await?, U256::from(landed * USD));
    Ok(())
}

/// Ops whose validation passes but whose execution reverts would cost the deposit their gas: the
/// simulation refuses them, and they cost the agent's budget nothing.
#[tokio::test]
async fn ops_certain_to_revert_are_not_sponsored() -> anyhow::Result<()> {
    let env = start(policy(Budget { max_ops: Some(2), max_wei: None }, Budget::UNLIMITED)).await?;
    let devnet = &env.devnet;

    // An account without the tokens it promises: settle's transferFrom reverts.
    let (broke, owner) = session_account(devnet, 0).await?;
    let signer = agent(&env, broke, &owner, 1).await?;
    for n in 0..3 {
        assert_eq!(pay(devnet, &signer, n).await.err().as_deref(), Some("execution_would_revert"));
    }

    // A payment whose requestHash is already settled: settle reverts as a duplicate.
    let (account, owner) = session_account(devnet, 10 * USD).await?;
    let signer = agent(&env, account, &owner, 1).await?;
    let signed = pay(devnet, &signer, 0).await.expect("the first op of the budget");
    land(devnet, &signer, &signed).await?;
    let after_landing = deposit(devnet).await?;
    let mut replay: UserOperation = signed.payload.payload.user_op.clone();
    replay.nonce += U256::from(1);
    replay.paymaster_and_data = Default::default();
    let refused = |op: UserOperation| {
        let client = env.client.clone();
        async move {
            let err = client
                .sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, SponsorContext::free())
                .await
                .unwrap_err();
            let (code, message, reason) = json_rpc_error(&err);
            assert_eq!(code, -32501, "{message}");
            (reason.to_owned(), message.to_owned())
        }
    };
    let (reason, message) = refused(replay.clone()).await;
    assert_eq!(reason, "execution_would_revert", "{message}");
    assert!(message.contains("already settled"), "{message}");

    // Over the session's per-payment max: the account refuses it in validation.
    let a = devnet.addresses;
    let mut over = replay.clone();
    over.call_data = encode_payment_batch(
        a.token,
        a.settlement,
        merchant(devnet),
        U256::from(2 * USD),
        B256::repeat_byte(0x42),
    );
    let (reason, message) = refused(over).await;
    // The account's rule, by its own reason, as every other layer names it.
    assert_eq!(reason, "per_payment_max_exceeded", "{message}");
    assert!(message.contains("AA23") && message.contains("over per-payment max"), "{message}");

    // The refusals cost the budget nothing: a payment that settles gets its second op, and the
    // next one is refused by the budget alone.
    let fresh = |request_hash: u8| {
        let mut op = replay.clone();
        op.call_data = encode_payment_batch(
            a.token,
            a.settlement,
            merchant(devnet),
            U256::from(USD),
            B256::repeat_byte(request_hash),
        );
        op
    };
    env.client
        .sponsor_user_op(&fresh(0x43), ENTRY_POINT_V06, API_KEY, SponsorContext::free())
        .await?;
    assert_eq!(refused(fresh(0x44)).await.0, "account_ops_limit");

    // Nothing the refusals asked for reached the chain.
    assert_eq!(devnet.token_balance(merchant(devnet)).await?, U256::from(USD));
    assert_eq!(deposit(devnet).await?, after_landing);
    Ok(())
}

/// Fields a bundler-operating caller would inflate to turn the deposit into its own income.
#[tokio::test]
async fn gas_fields_beyond_policy_are_refused() -> anyhow::Result<()> {
    let env = start(policy(Budget::UNLIMITED, Budget::UNLIMITED)).await?;
    let devnet = &env.devnet;
    let owner = devnet.keys.spare[0].clone();
    let account = crate::common::funded_account(devnet, &owner).await?;
    let reason = |op: UserOperation| {
        let client = env.client.clone();
        async move {
            match client
                .sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, SponsorContext::free())
                .await
            {
                Ok(_) => "sponsored".to_owned(),
                Err(e) => json_rpc_error(&e).2.to_owned(),
            }
        }
    };

    let mut op = payment_op(devnet, account, 0, "pvg");
    op.pre_verification_gas = U256::from(1_000_000);
    assert_eq!(reason(op).await, "pre_verification_gas_too_high");

    let mut op = payment_op(devnet, account, 0, "priority = max");
    op.max_fee_per_gas = U256::from(50_000_000_000u64);
    op.max_priority_fee_per_gas = op.max_fee_per_gas;
    assert_eq!(reason(op).await, "priority_fee_too_high");

    let mut op = payment_op(devnet, account, 0, "priority > max");
    op.max_priority_fee_per_gas = op.max_fee_per_gas + U256::from(1);
    assert_eq!(reason(op).await, "priority_fee_above_max_fee");

    let mut op = payment_op(devnet, account, 0, "arbitrary call");
    op.call_data =
        x402_aa::encode_execute(devnet.keys.spare[3].address(), U256::from(1), Default::default());
    assert_eq!(reason(op).await, "not_a_payment");

    // Within the policy, the same account is sponsored.
    assert_eq!(reason(payment_op(devnet, account, 0, "fine")).await, "sponsored");
    Ok(())
}
