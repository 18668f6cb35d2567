//! Session keys on a Kernel v2.4 account: the owner installs this project's
//! `KernelSessionValidator` with one transaction and signs a grant; the agent's session key pays
//! through `/verify` and `/settle` on the real EntryPoint until the cap, where the SDK refuses to
//! sign and the facilitator refuses what a hostile agent signs anyway, with the policy's reasons;
//! after the owner's revocation (one transaction) both refuse with `session_revoked`.

use std::time::Duration;

use alloy::{
    primitives::{B256, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use serde_json::Value;
use x402_aa::{ENTRY_POINT_V06, accounts::kernel};
use x402_aa_policy::SessionHost;
use x402_aa_session::{
    Scopes, SessionFile,
    accounts::UncheckedSessionAccount,
    owner, per_day,
    signer::{PaidRequest, PaymentSigner, SessionAccount, SignerError},
};

use crate::common::{API_KEY, Env, USD, body};

#[tokio::test]
async fn kernel_session_pays_to_its_cap_and_revocation_stops_it() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let a = env.devnet.addresses;
    let chain_id = env.devnet.chain_id();
    let validator = a.kernel_session_validator;

    // The owner's Kernel account, deployed through the canonical factory; one owner transaction
    // (Kernel's `execute` → `setExecution`) installs the validator for `executeSessionPayment`.
    let owner_key = PrivateKeySigner::random();
    env.devnet.fund(owner_key.address(), U256::from(10u64.pow(18))).await?;
    let owner_provider = ProviderBuilder::new()
        .wallet(owner_key.clone())
        .connect_http(env.devnet.rpc_url().parse()?);
    let account = kernel::account_address(owner_key.address(), U256::ZERO);
    let init = kernel::init_code(owner_key.address(), U256::ZERO);
    owner::deploy_account(&owner_provider, owner_key.address(), account, &init).await?;
    assert!(!owner_provider.get_code_at(account).await?.is_empty(), "the factory deployed it");
    let installed =
        owner::install_kernel_sessions(&owner_provider, owner_key.address(), account, validator)
            .await?;
    assert!(installed.is_some(), "one transaction installs the validator");
    let again =
        owner::install_kernel_sessions(&owner_provider, owner_key.address(), account, validator)
            .await?;
    assert!(again.is_none(), "installing twice sends nothing");
    env.devnet.mint(account, U256::from(100 * USD)).await?;

    // The grant: 2 USDT a day, at most 1 USDT a payment, to the test merchant only.
    let host = SessionHost::KernelValidator(validator);
    let session_key = PrivateKeySigner::random();
    let scopes = Scopes::new()
        .spend_cap("2 USDT".parse()?, per_day())
        .per_payment_max("1 USDT".parse()?)
        .merchants([env.merchant])
        .valid_for(Duration::from_secs(3600))
        .only_paymaster(a.verifying_paymaster);
    let now = env.devnet.block_timestamp().await?;
    let epoch = owner::session_epoch_in(&owner_provider, host, account).await?;
    let grant = scopes.to_grant(
        session_key.address(),
        &env.token(),
        a.settlement,
        now - 1,
        epoch,
        B256::repeat_byte(7),
    )?;
    let (_, signature) = owner::sign_grant(&owner_key, &grant, chain_id, account)?;
    let file = SessionFile::new(
        chain_id,
        account,
        ENTRY_POINT_V06,
        None,
        env.token(),
        owner_key.address(),
        scopes.merchant_list(),
        &grant,
        signature,
    )
    .in_kernel(validator);
    file.validate()?;
    let round_trip = SessionFile::from_json(&file.to_json())?;
    assert_eq!(round_trip.host(), host, "the session file keeps its host");

    let session = SessionAccount::new(file.clone(), session_key.clone())?;
    let provider = env.devnet.provider().clone();
    let signer = PaymentSigner::new(session, provider.clone())
        .await?
        .paymaster(env.paymaster_client()?, API_KEY);
    let rogue = PaymentSigner::new(
        UncheckedSessionAccount(SessionAccount::new(file, session_key)?),
        provider,
    )
    .await?
    .paymaster(env.lenient_paymaster_client()?, API_KEY);
    let accepted = env.accepted(USD);
    let request = |n: u64| PaidRequest {
        method: "GET".into(),
        url: format!("http://127.0.0.1:9/kernel-session/{n}"),
    };

    // Two payments: the first enables the grant (owner signature inside), the second uses it.
    for n in 0..2 {
        let paid = signer.pay(&accepted, &request(n)).await?;
        let sig = &paid.payload.payload.user_op.signature;
        assert_eq!(sig[..4], kernel::MODE_PLUGIN, "Kernel's plugin mode routes to the validator");
        let b = body(&paid, &accepted);
        let before = env.merchant_balance().await?;
        let (status, v) = f.verify(&b).await?;
        assert_eq!((status, &v["isValid"]), (200, &Value::Bool(true)), "payment {n}: {v}");
        let (_, s) = f.settle(&b).await?;
        assert_eq!(s["success"], true, "payment {n}: {s}");
        assert_eq!(env.merchant_balance().await?, before + U256::from(USD));
        let tx: B256 = s["transaction"].as_str().unwrap_or_default().parse()?;
        signer.settled(&paid, tx, 0)?;
    }
    let status = owner::remaining_in(&owner_provider, host, chain_id, account, &grant, now).await?;
    assert_eq!(status.period_spent, U256::from(2 * USD), "the validator charged both payments");
    assert_eq!(status.payments_in_period, 2);

    // The cap is reached: the SDK refuses before signing, and what a hostile agent signs anyway
    // the facilitator refuses with the same rule.
    let refused = signer.pay(&accepted, &request(2)).await.expect_err("over the cap");
    assert!(matches!(refused, SignerError::Scope(_)), "{refused}");
    assert_eq!(refused.reason(), "spend_cap_exceeded", "{refused}");
    let over = rogue.pay(&accepted, &request(3)).await?;
    let (_, v) = f.verify(&body(&over, &accepted)).await?;
    assert_eq!(v["isValid"], false, "{v}");
    assert_eq!(v["invalidReason"], "spend_cap_exceeded", "{v}");
    // Named by the facilitator's own mirror of the policy (the validator's figures, Kernel's
    // payment shape), not only by the EntryPoint's simulation.
    assert!(v["details"]["entryPointCode"].is_null(), "refused off-chain first: {v}");
    rogue.failed(&over, "test")?;

    // One owner transaction revokes; both layers name the revocation.
    let session_id = signer.account().file.session_id;
    owner::revoke_in(&owner_provider, host, owner_key.address(), account, session_id).await?;
    let refused = signer.pay(&accepted, &request(4)).await.expect_err("revoked");
    assert_eq!(refused.reason(), "session_revoked", "{refused}");
    let after = rogue.pay(&accepted, &request(5)).await?;
    let (_, v) = f.verify(&body(&after, &accepted)).await?;
    assert_eq!(v["invalidReason"], "session_revoked", "{v}");
    assert!(v["details"]["entryPointCode"].is_null(), "refused off-chain first: {v}");
    f.stop().await
}
