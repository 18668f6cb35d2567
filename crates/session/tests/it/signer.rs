//! The SDK's PaymentSigner against the devnet: its payloads settle through the real EntryPoint, and
//! it refuses out-of-scope payments before signing.

use std::{sync::Arc, time::Duration};

use alloy::primitives::{Address, B256, U256};
use x402_aa::{
    ENTRY_POINT_V06,
    x402::{AaNativeExtra, AaNativeRequirements},
};
use x402_aa_session::{
    Scopes, SessionFile, TokenInfo,
    ledger::Ledger,
    owner::sign_grant,
    per_day,
    scopes::GasBudget,
    signer::{PaidRequest, PaymentSigner, SessionAccount, SignerError},
};

use crate::fixture::{Fx, USD};

fn token(fx: &Fx) -> TokenInfo {
    TokenInfo { address: fx.devnet.addresses.token, symbol: "USDT".into(), decimals: 6 }
}

/// 3 USDT/day, 1 USDT per payment, `fx.merchant` only, 1 h; gas from the account's own deposit.
async fn signer_with(fx: &Fx, scopes: Scopes) -> anyhow::Result<PaymentSigner<SessionAccount>> {
    let a = fx.devnet.addresses;
    let now = fx.devnet.block_timestamp().await?;
    let chain_id = fx.devnet.chain_id();
    let grant = scopes.to_grant(
        fx.session_key.address(),
        &token(fx),
        a.settlement,
        now - 1,
        0,
        B256::repeat_byte(7),
    )?;
    let (_, sig) = sign_grant(&fx.owner, &grant, chain_id, fx.account)?;
    let merchants = scopes.merchant_list();
    let file = SessionFile::new(
        chain_id,
        fx.account,
        ENTRY_POINT_V06,
        None,
        token(fx),
        fx.owner.address(),
        merchants,
        &grant,
        sig,
    );
    let file = SessionFile::from_json(&file.to_json())?;
    let account = SessionAccount::new(file, fx.session_key.clone())?;
    let ledger = Arc::new(Ledger::in_memory()?);
    Ok(PaymentSigner::new(account, fx.devnet.provider().clone()).await?.ledger(ledger)?)
}

fn default_scopes(fx: &Fx) -> Scopes {
    Scopes::new()
        .spend_cap("3 USDT".parse().expect("amount"), per_day())
        .per_payment_max("1 USDT".parse().expect("amount"))
        .merchants([fx.merchant])
        .valid_for(Duration::from_secs(3600))
        .self_paid_gas(GasBudget {
            per_op: 10u128.pow(16),
            per_period: 10u128.pow(17),
            lifetime: 10u128.pow(17),
        })
}

fn accepted(fx: &Fx, merchant: Address, amount: u64) -> serde_json::Value {
    let a = fx.devnet.addresses;
    let req = AaNativeRequirements {
        chain_id: fx.devnet.chain_id(),
        amount: U256::from(amount),
        pay_to: merchant,
        asset: a.token,
        max_timeout_seconds: 60,
        extra: Some(AaNativeExtra {
            settlement_contract: a.settlement,
            entry_point: ENTRY_POINT_V06,
        }),
    };
    serde_json::to_value(req.to_wire()).expect("requirements serialise")
}

fn request(n: u32) -> PaidRequest {
    PaidRequest { method: "GET".into(), url: format!("http://127.0.0.1:8080/paid/{n}") }
}

#[tokio::test]
async fn signer_payloads_settle_through_handle_ops() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    let signer = signer_with(&fx, default_scopes(&fx)).await?;
    for n in 0..2 {
        let signed = signer.pay(&accepted(&fx, fx.merchant, USD), &request(n)).await?;
        let op = signed.payload.payload.user_op.clone();
        assert_eq!(signed.payload.payload.settlement_call_spec.request_hash, signed.request_hash);
        let included =
            fx.devnet.handle_ops(&[op], fx.devnet.keys.bundler.address()).await?.into_included()?;
        let event = included.event(signed.user_op_hash).expect("event");
        assert!(event.success, "{:?}", included.revert_reason_strings());
        signer.settled(
            &signed,
            included.receipt.transaction_hash,
            included.receipt.block_number.unwrap_or(0),
        )?;
    }
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(2 * USD));
    Ok(())
}

#[tokio::test]
async fn out_of_scope_payments_are_refused_before_signing() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    let signer = signer_with(&fx, default_scopes(&fx)).await?;

    let err = signer.pay(&accepted(&fx, fx.stranger, USD), &request(1)).await.unwrap_err();
    assert_eq!(err.reason(), "merchant_not_allowed", "{err}");
    let err = signer.pay(&accepted(&fx, fx.merchant, USD + 1), &request(2)).await.unwrap_err();
    assert_eq!(err.reason(), "per_payment_max_exceeded", "{err}");
    let mut wrong_asset = accepted(&fx, fx.merchant, USD);
    wrong_asset["asset"] = fx.stranger.to_string().into();
    // A session's grant names its one token: another asset is the token rule, as on chain.
    assert_eq!(
        signer.pay(&wrong_asset, &request(3)).await.unwrap_err().reason(),
        "token_not_allowed"
    );
    let mut wrong_network = accepted(&fx, fx.merchant, USD);
    wrong_network["network"] = "eip155:1".into();
    assert_eq!(
        signer.pay(&wrong_network, &request(4)).await.unwrap_err().reason(),
        "network_mismatch"
    );

    // Three 1 USDT payments fit the 3 USDT/day cap (signed, not yet settled: still reserved)...
    for n in 10..13 {
        signer.pay(&accepted(&fx, fx.merchant, USD), &request(n)).await?;
    }
    // ...the fourth does not.
    let err = signer.pay(&accepted(&fx, fx.merchant, USD), &request(13)).await.unwrap_err();
    assert_eq!(err.reason(), "spend_cap_exceeded", "{err}");

    // Expired: an hour later the session is over.
    fx.devnet.increase_time(3_700).await?;
    let err = signer.pay(&accepted(&fx, fx.merchant, USD), &request(14)).await.unwrap_err();
    assert!(matches!(err, SignerError::Scope(_) | SignerError::Ledger(_)), "{err}");
    assert_eq!(err.reason(), "session_expired", "{err}");
    Ok(())
}

#[tokio::test]
async fn revoked_session_is_refused_before_signing() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    let signer = signer_with(&fx, default_scopes(&fx)).await?;
    let id = signer.account().file.session_id;
    fx.owner_call(x402_aa_contracts::SessionKeyAccount::revokeSession_olCall { id }).await?;
    let err = signer.pay(&accepted(&fx, fx.merchant, USD), &request(1)).await.unwrap_err();
    assert_eq!(err.reason(), "session_revoked", "{err}");
    Ok(())
}

#[tokio::test]
async fn concurrent_payments_for_the_last_budget_sign_exactly_one() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let scopes = default_scopes(&fx).spend_cap("1 USDT".parse()?, per_day());
    let signer = Arc::new(signer_with(&fx, scopes).await?);
    let mut tasks = Vec::new();
    for n in 0..8 {
        let signer = signer.clone();
        let accepted = accepted(&fx, fx.merchant, USD / 2 + 1);
        tasks.push(tokio::spawn(async move { signer.pay(&accepted, &request(n)).await }));
    }
    let mut signed = 0;
    for task in tasks {
        match task.await? {
            Ok(_) => signed += 1,
            Err(e) => assert_eq!(e.reason(), "spend_cap_exceeded", "{e}"),
        }
    }
    assert_eq!(signed, 1, "only one 0.5+ USDT payment fits a 1 USDT cap");
    Ok(())
}

#[tokio::test]
async fn sponsored_session_payment_with_lazy_enable_then_by_id() -> anyhow::Result<()> {
    use x402_aa_paymaster::{PaymasterConfig, PaymasterService};
    use x402_aa_rpc::PaymasterClient;

    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let config = PaymasterConfig::new(
        fx.devnet.rpc_url().to_owned(),
        fx.devnet.chain_id(),
        a.verifying_paymaster,
        fx.devnet.keys.paymaster_signer.clone(),
        vec!["test-key".to_owned()],
    );
    let service = PaymasterService::new(config)?;
    let handle = service.bind("127.0.0.1:0".parse()?).await?;
    let scopes = Scopes::new()
        .spend_cap("3 USDT".parse()?, per_day())
        .per_payment_max("1 USDT".parse()?)
        .merchants([fx.merchant])
        .valid_for(Duration::from_secs(3600))
        .only_paymaster(a.verifying_paymaster);
    let signer =
        signer_with(&fx, scopes).await?.paymaster(PaymasterClient::new(&handle.url())?, "test-key");
    for n in 0..2 {
        let signed = signer.pay(&accepted(&fx, fx.merchant, USD), &request(n)).await?;
        let op = signed.payload.payload.user_op.clone();
        assert_eq!(op.paymaster(), Some(a.verifying_paymaster));
        let included =
            fx.devnet.handle_ops(&[op], fx.devnet.keys.bundler.address()).await?.into_included()?;
        assert!(included.event(signed.user_op_hash).is_some_and(|e| e.success));
    }
    // The account holds no ETH at all: the paymaster paid every op.
    assert_eq!(
        alloy::providers::Provider::get_balance(fx.devnet.provider(), fx.account).await?,
        U256::ZERO
    );
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(2 * USD));
    handle.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn owner_key_signer_pays_from_a_counterfactual_simple_account() -> anyhow::Result<()> {
    use x402_aa_session::signer::OwnerAccount;

    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let owner = fx.devnet.keys.spare[4].clone();
    let account = fx.devnet.simple_account_address(owner.address(), U256::ZERO).await?;
    fx.devnet.mint(account, U256::from(5 * USD)).await?;
    fx.devnet.fund(account, U256::from(10u64.pow(18))).await?;
    let signer = PaymentSigner::new(
        OwnerAccount::simple_account(owner, account, a.token, a.settlement),
        fx.devnet.provider().clone(),
    )
    .await?;
    for n in 0..2 {
        let signed = signer.pay(&accepted(&fx, fx.stranger, USD), &request(n)).await?;
        let op = signed.payload.payload.user_op.clone();
        assert_eq!(op.init_code.is_empty(), n > 0, "only the first op deploys the account");
        let included =
            fx.devnet.handle_ops(&[op], fx.devnet.keys.bundler.address()).await?.into_included()?;
        assert!(included.all_succeeded(), "{:?}", included.revert_reason_strings());
        signer.settled(&signed, included.receipt.transaction_hash, 0)?;
    }
    // The owner key has no session limits: any merchant, as SimpleAccount allows.
    assert_eq!(fx.devnet.token_balance(fx.stranger).await?, U256::from(2 * USD));
    Ok(())
}

#[tokio::test]
async fn first_session_payment_of_an_accounts_life_deploys_enables_and_pays() -> anyhow::Result<()>
{
    use x402_aa_session::file::AccountDeployment;

    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let owner = fx.devnet.keys.spare[5].clone();
    let factory = x402_aa_contracts::SessionKeyAccountFactory::new(
        a.session_account_factory,
        fx.devnet.provider(),
    );
    let account = factory.getAddress(owner.address(), U256::from(7)).call().await?;
    fx.devnet.mint(account, U256::from(5 * USD)).await?;
    let now = fx.devnet.block_timestamp().await?;
    let chain_id = fx.devnet.chain_id();
    let grant = default_scopes(&fx).only_paymaster(a.verifying_paymaster).to_grant(
        fx.session_key.address(),
        &token(&fx),
        a.settlement,
        now - 1,
        0,
        B256::repeat_byte(3),
    )?;
    let (_, sig) = sign_grant(&owner, &grant, chain_id, account)?;
    let deployment = AccountDeployment {
        factory: a.session_account_factory,
        owner: owner.address(),
        salt: U256::from(7),
    };
    let file = SessionFile::new(
        chain_id,
        account,
        ENTRY_POINT_V06,
        Some(deployment),
        token(&fx),
        owner.address(),
        vec![fx.merchant],
        &grant,
        sig,
    );
    let config = x402_aa_paymaster::PaymasterConfig::new(
        fx.devnet.rpc_url().to_owned(),
        chain_id,
        a.verifying_paymaster,
        fx.devnet.keys.paymaster_signer.clone(),
        vec!["k".to_owned()],
    );
    let handle =
        x402_aa_paymaster::PaymasterService::new(config)?.bind("127.0.0.1:0".parse()?).await?;
    let signer = PaymentSigner::new(
        SessionAccount::new(file, fx.session_key.clone())?,
        fx.devnet.provider().clone(),
    )
    .await?
    .paymaster(x402_aa_rpc::PaymasterClient::new(&handle.url())?, "k");
    let signed = signer.pay(&accepted(&fx, fx.merchant, USD), &request(1)).await?;
    assert!(!signed.payload.payload.user_op.init_code.is_empty());
    let op = signed.payload.payload.user_op.clone();
    let included =
        fx.devnet.handle_ops(&[op], fx.devnet.keys.bundler.address()).await?.into_included()?;
    assert!(included.all_succeeded(), "{:?}", included.revert_reason_strings());
    assert_eq!(included.deployed.len(), 1, "the op deployed the account");
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(USD));
    handle.shutdown().await?;
    Ok(())
}
