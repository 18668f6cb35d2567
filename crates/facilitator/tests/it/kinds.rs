//! Owner-signed payments from Kernel v2.4, Safe 1.4.1 + Safe4337Module v0.2.0 and Biconomy v2
//! accounts, each built by the SDK's `PaymentSigner`, through `/verify` and `/settle` on the real
//! EntryPoint. The facilitator resolves each op's kind from its initCode's factory (first
//! payment, which deploys the account) and from the deployed account's code (later payments),
//! and decodes callData with that kind's decoder only: another kind's encoding of the same
//! payment is refused with `calldata_decode_failed` naming the kind.

use alloy::{
    primitives::{B256, Bytes, U256, hex},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use serde_json::Value;
use x402_aa::{
    SettleCall,
    accounts::{
        AccountKind, PaymentCall,
        safe::{SafeConfig, decode_signature},
    },
};
use x402_aa_session::{
    accounts::{BiconomyOwnerAccount, KernelOwnerAccount, SafeOwnerAccount},
    signer::{PaidRequest, PaymentAccount, PaymentSigner, SignedPayment},
};

use crate::common::{API_KEY, Env, Facilitator, USD, body};

/// The kinds whose payment encodings differ from each other.
const ENCODINGS: [AccountKind; 4] =
    [AccountKind::SimpleAccount, AccountKind::Kernel, AccountKind::Safe, AccountKind::Biconomy];

async fn signer<A: PaymentAccount>(env: &Env, account: A) -> anyhow::Result<PaymentSigner<A>> {
    // Every account pays with the devnet's token; the SDK checks it against the requirements.
    env.devnet.mint(account.sender(), U256::from(100 * USD)).await?;
    Ok(PaymentSigner::new(account, env.devnet.provider().clone())
        .await?
        .paymaster(env.paymaster_client()?, API_KEY))
}

async fn sign<A: PaymentAccount>(
    env: &Env,
    signer: &PaymentSigner<A>,
    n: u64,
) -> anyhow::Result<(SignedPayment, Value)> {
    let accepted = env.accepted(USD);
    let request =
        PaidRequest { method: "GET".into(), url: format!("http://127.0.0.1:9/kinds/{n}") };
    let paid = signer.pay(&accepted, &request).await?;
    let b = body(&paid, &accepted);
    Ok((paid, b))
}

/// Verifies and settles one payment; the merchant receives exactly its amount.
async fn pay<A: PaymentAccount>(
    env: &Env,
    f: &Facilitator,
    signer: &PaymentSigner<A>,
    n: u64,
) -> anyhow::Result<B256> {
    let (paid, b) = sign(env, signer, n).await?;
    let sender = signer.account().sender().to_checksum(None);
    let before = env.merchant_balance().await?;

    let (status, v) = f.verify(&b).await?;
    assert_eq!((status, &v["isValid"]), (200, &Value::Bool(true)), "{v}");
    assert_eq!(v["payer"], sender);

    let (status, s) = f.settle(&b).await?;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(s["payer"], sender);
    let tx: B256 = s["transaction"].as_str().unwrap_or_default().parse()?;
    assert_eq!(env.merchant_balance().await?, before + U256::from(USD));
    signer.settled(&paid, tx, 0)?;
    Ok(tx)
}

/// The payment of `signer`, re-encoded as every other kind would encode it: each is refused by
/// the decoder of the kind the facilitator resolved, with that kind named.
async fn refuses_foreign_call_data<A: PaymentAccount>(
    env: &Env,
    f: &Facilitator,
    signer: &PaymentSigner<A>,
    n: u64,
) -> anyhow::Result<()> {
    let own = signer.account().kind();
    let (paid, b) = sign(env, signer, n).await?;
    let spec = &paid.payload.payload.settlement_call_spec;
    let payment = PaymentCall {
        settlement: env.devnet.addresses.settlement,
        settle: SettleCall {
            merchant: spec.merchant,
            token: spec.token,
            amount: spec.amount,
            request_hash: spec.request_hash,
        },
    };
    for other in ENCODINGS.into_iter().filter(|k| *k != own) {
        let mut foreign = b.clone();
        let call_data: Bytes = other.abi().encode_payment(&payment);
        foreign["paymentPayload"]["payload"]["userOp"]["callData"] =
            Value::String(hex::encode_prefixed(&call_data));
        let (status, v) = f.verify(&foreign).await?;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["isValid"], false, "{own} op with {other} callData: {v}");
        assert_eq!(v["invalidReason"], "calldata_decode_failed", "{own} / {other}: {v}");
        let message = v["invalidMessage"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("{own}: ")), "{own} / {other}: {message}");
    }
    signer.failed(&paid, "test")?;
    Ok(())
}

/// Foreign callData refused before the account exists (kind from the initCode's factory), two
/// payments (the first deploys the account), foreign callData refused again (kind from the
/// deployed account's code).
async fn owner_story<A: PaymentAccount>(account: A, env: Env) -> anyhow::Result<()> {
    let f = env.start(env.config()).await?;
    let signer = signer(&env, account).await?;
    let sender = signer.account().sender();
    let deployed =
        || async { anyhow::Ok(!env.devnet.provider().get_code_at(sender).await?.is_empty()) };
    assert!(!deployed().await?);
    refuses_foreign_call_data(&env, &f, &signer, 1).await?;
    pay(&env, &f, &signer, 2).await?;
    assert!(deployed().await?, "the first payment deployed the account");
    pay(&env, &f, &signer, 3).await?;
    refuses_foreign_call_data(&env, &f, &signer, 4).await?;
    f.stop().await
}

#[tokio::test]
async fn kernel_owner_payments() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let a = env.devnet.addresses;
    let account =
        KernelOwnerAccount::new(PrivateKeySigner::random(), a.token, a.settlement, U256::ZERO);
    owner_story(account, env).await
}

#[tokio::test]
async fn safe_one_of_one_owner_payments() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let a = env.devnet.addresses;
    let owner = PrivateKeySigner::random();
    let account =
        SafeOwnerAccount::single_owner(owner, env.devnet.safe, a.token, a.settlement, U256::ZERO)?;
    owner_story(account, env).await
}

#[tokio::test]
async fn biconomy_owner_payments() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let a = env.devnet.addresses;
    let account = BiconomyOwnerAccount::new(
        PrivateKeySigner::random(),
        env.devnet.biconomy.deployment(),
        a.token,
        a.settlement,
        U256::ZERO,
    );
    owner_story(account, env).await
}

/// A 2-of-3 Safe pays with two owners' signatures; one owner's signature alone is refused by
/// the Safe itself (`invalid_signature`), not by a length rule.
#[tokio::test]
async fn safe_two_of_three_owner_payment() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let a = env.devnet.addresses;
    let keys: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let config = SafeConfig {
        owners: keys.iter().map(|k| k.address()).collect(),
        threshold: 2,
        salt_nonce: U256::from(3),
    };
    let account = SafeOwnerAccount::new(
        vec![keys[1].clone(), keys[2].clone()],
        config,
        env.devnet.safe,
        a.token,
        a.settlement,
    )?;
    let f = env.start(env.config()).await?;
    let signer = signer(&env, account).await?;

    // One owner's signature short: the envelope still parses, the Safe's threshold check fails.
    let (paid, mut b) = sign(&env, &signer, 1).await?;
    let signature = &paid.payload.payload.user_op.signature;
    assert_eq!(decode_signature(signature)?.signatures.len(), 2 * 65);
    let one = &signature[..12 + 65];
    b["paymentPayload"]["payload"]["userOp"]["signature"] =
        Value::String(hex::encode_prefixed(one));
    let (_, v) = f.verify(&b).await?;
    assert_eq!(v["isValid"], false, "{v}");
    assert_eq!(v["invalidReason"], "invalid_signature", "{v}");
    signer.failed(&paid, "test")?;

    pay(&env, &f, &signer, 2).await?;
    pay(&env, &f, &signer, 3).await?;
    f.stop().await
}
