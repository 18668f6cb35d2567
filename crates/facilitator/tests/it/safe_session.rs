//! Session keys on a Safe 1.4.1: the owner's SDK grant deploys the owner's 1-of-1 Safe and
//! installs this project's `SafeSessionModule` (module and fallback handler) with one owner
//! transaction; the agent's session key pays through `/verify` and `/settle` on the real
//! EntryPoint until the cap, where the SDK refuses to sign and the facilitator's own mirror of the
//! policy refuses what a hostile agent signs anyway, with the same reason.

use std::time::Duration;

use alloy::{
    primitives::{B256, U256},
    signers::local::PrivateKeySigner,
};
use serde_json::Value;
use x402_aa::accounts::{AccountKind, safe::session::SESSION_PAYMENT_LEN};
use x402_aa_policy::SessionHost;
use x402_aa_session::{
    Scopes, SessionFile,
    accounts::UncheckedSessionAccount,
    per_day,
    sdk::{Network, SessionKey, SessionOwner},
    signer::{PaidRequest, PaymentSigner, SessionAccount, SignerError},
};

use crate::common::{API_KEY, Env, USD, body};

/// The owner's grant on its own new 1-of-1 Safe with the module installed (its own
/// transactions), the Safe holding 100 USDT: the session file, the session key and the owner.
async fn granted_safe(
    env: &Env,
) -> anyhow::Result<(SessionFile, PrivateKeySigner, PrivateKeySigner)> {
    let a = env.devnet.addresses;
    let owner_key = PrivateKeySigner::random();
    env.devnet.fund(owner_key.address(), U256::from(10u64.pow(18))).await?;
    let network = Network::devnet()
        .with_rpc_url(env.devnet.rpc_url())
        .with_settlement(a.settlement)
        .with_token(a.token)
        .with_safe_deployment(env.devnet.safe)
        .with_safe_session_module(a.safe_session_module);
    let scopes = Scopes::new()
        .spend_cap("2 USDT".parse()?, per_day())
        .per_payment_max("1 USDT".parse()?)
        .merchants([env.merchant])
        .valid_for(Duration::from_secs(3600))
        .only_paymaster(a.verifying_paymaster);
    let granted = SessionOwner::new(owner_key.clone(), network)
        .grant(AccountKind::Safe, &scopes, SessionKey::Generate)
        .await?;
    assert_eq!(granted.file.host(), SessionHost::SafeModule(a.safe_session_module));
    let session_key = granted.key.ok_or_else(|| anyhow::anyhow!("generated key"))?;
    env.devnet.mint(granted.file.account, U256::from(100 * USD)).await?;
    Ok((granted.file, session_key, owner_key))
}

#[tokio::test]
async fn safe_session_pays_to_its_cap_and_the_mirror_refuses_past_it() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    // The owner deploys its Safe and installs the module with its own transactions.
    let (file, session_key, _) = granted_safe(&env).await?;

    let provider = env.devnet.provider().clone();
    let signer = PaymentSigner::new(
        SessionAccount::new(file.clone(), session_key.clone())?,
        provider.clone(),
    )
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
        url: format!("http://127.0.0.1:9/safe-session/{n}"),
    };

    // Two payments: the first enables the grant (the 1-of-1 owner's signature inside), the second
    // uses it; both in the module's executeSessionPayment shape, sponsored by the paymaster
    // service (which simulates them).
    for n in 0..2 {
        let paid = signer.pay(&accepted, &request(n)).await?;
        let op = &paid.payload.payload.user_op;
        assert_eq!(op.call_data.len(), SESSION_PAYMENT_LEN, "the module's payment shape");
        assert!(!op.paymaster_and_data.is_empty(), "sponsored");
        let body = body(&paid, &accepted);
        let before = env.merchant_balance().await?;
        let (status, v) = f.verify(&body).await?;
        assert_eq!((status, &v["isValid"]), (200, &Value::Bool(true)), "payment {n}: {v}");
        let (_, s) = f.settle(&body).await?;
        assert_eq!(s["success"], true, "payment {n}: {s}");
        assert_eq!(env.merchant_balance().await?, before + U256::from(USD));
        let tx: B256 = s["transaction"].as_str().unwrap_or_default().parse()?;
        signer.settled(&paid, tx, 0)?;
    }

    // The cap is reached: the SDK refuses before signing; what a hostile agent signs anyway the
    // facilitator refuses with the same rule, from its own mirror (the module's figures and the
    // Safe session shape), before any simulation.
    let refused = signer.pay(&accepted, &request(2)).await.expect_err("over the cap");
    assert!(matches!(refused, SignerError::Scope(_)), "{refused}");
    assert_eq!(refused.reason(), "spend_cap_exceeded", "{refused}");
    let over = rogue.pay(&accepted, &request(3)).await?;
    let (_, v) = f.verify(&body(&over, &accepted)).await?;
    assert_eq!(v["isValid"], false, "{v}");
    assert_eq!(v["invalidReason"], "spend_cap_exceeded", "{v}");
    assert!(v["details"]["entryPointCode"].is_null(), "refused off-chain first: {v}");
    rogue.failed(&over, "test")?;
    f.stop().await
}

alloy::sol! {
    #[sol(rpc)]
    interface ISafeOwners {
        function addOwnerWithThreshold(address owner, uint256 _threshold) external;
        function getOwners() external view returns (address[] memory);
    }
}

/// Only a 1-of-1 Safe enables a grant inside an op (the module's `ownerOf` names no owner for any
/// other). An enable-mode op signed while the Safe was 1-of-1 and presented after it gained a
/// second owner is refused by the facilitator with the module's own reason, as the chain would
/// refuse it, not answered as an internal error; the SDK refuses to sign one, with that reason.
#[tokio::test]
async fn an_in_op_enable_from_a_safe_no_longer_1_of_1_is_refused_by_name() -> anyhow::Result<()> {
    use alloy::{
        network::{EthereumWallet, TransactionBuilder},
        primitives::Address,
        providers::{Provider, ProviderBuilder},
        rpc::types::TransactionRequest,
        sol_types::SolCall,
    };
    use x402_aa::accounts::safe::session::owner_transaction;
    use x402_aa_policy::SessionMode;

    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let (file, session_key, owner_key) = granted_safe(&env).await?;
    let signer = PaymentSigner::new(
        SessionAccount::new(file.clone(), session_key)?,
        env.devnet.provider().clone(),
    )
    .await?
    .paymaster(env.paymaster_client()?, API_KEY);
    let accepted = env.accepted(USD);
    let request =
        PaidRequest { method: "GET".into(), url: "http://127.0.0.1:9/safe-1-of-2".into() };
    let paid = signer.pay(&accepted, &request).await?;
    let op = &paid.payload.payload.user_op;
    assert_eq!(op.signature.first(), Some(&(SessionMode::Enable as u8)), "enables in-op");

    // The owner adds a second owner, threshold 1, with a Safe transaction of its own.
    let owner = owner_key.address();
    let as_owner = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner_key))
        .connect_http(env.devnet.rpc_url().parse()?);
    let add = ISafeOwners::addOwnerWithThresholdCall {
        owner: Address::repeat_byte(0x77),
        _threshold: U256::from(1),
    };
    let tx = TransactionRequest::default().with_to(file.account).with_input(owner_transaction(
        file.account,
        owner,
        add.abi_encode(),
    ));
    assert!(as_owner.send_transaction(tx).await?.get_receipt().await?.status());
    let owners = ISafeOwners::new(file.account, &as_owner).getOwners().call().await?;
    assert_eq!(owners.len(), 2, "the Safe is 1-of-2 now");

    let body = body(&paid, &accepted);
    let (status, v) = f.verify(&body).await?;
    assert_eq!((status, &v["isValid"]), (200, &Value::Bool(false)), "{v}");
    assert_eq!(v["invalidReason"], "session_not_enabled", "{v}");
    let (_, s) = f.settle(&body).await?;
    assert_eq!(s["success"], false, "{s}");
    assert_eq!(s["errorReason"], "session_not_enabled", "{s}");
    signer.failed(&paid, "test")?;

    // The SDK, asked now, refuses before signing, with the same reason.
    let again = PaidRequest { url: "http://127.0.0.1:9/safe-1-of-2/again".into(), ..request };
    let refused = signer.pay(&accepted, &again).await.expect_err("not enableable in-op");
    assert!(matches!(refused, SignerError::ChainScope { .. }), "{refused}");
    assert_eq!(refused.reason(), "session_not_enabled", "{refused}");
    f.stop().await
}
