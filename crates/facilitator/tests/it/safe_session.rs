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
    Scopes,
    accounts::UncheckedSessionAccount,
    per_day,
    sdk::{Network, SessionKey, SessionOwner},
    signer::{PaidRequest, PaymentSigner, SessionAccount, SignerError},
};

use crate::common::{API_KEY, Env, USD, body};

#[tokio::test]
async fn safe_session_pays_to_its_cap_and_the_mirror_refuses_past_it() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let a = env.devnet.addresses;

    // The owner deploys its Safe and installs the module with its own transactions.
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
    let granted = SessionOwner::new(owner_key, network)
        .grant(AccountKind::Safe, &scopes, SessionKey::Generate)
        .await?;
    assert_eq!(granted.file.host(), SessionHost::SafeModule(a.safe_session_module));
    let (file, session_key) =
        (granted.file, granted.key.ok_or_else(|| anyhow::anyhow!("generated key"))?);
    env.devnet.mint(file.account, U256::from(100 * USD)).await?;

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
