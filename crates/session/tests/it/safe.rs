//! Safe sessions from the owner's side on the devnet: the grant deploys the owner's 1-of-1 Safe
//! (the same Safe its owner payments use), enables `SafeSessionModule` as a module and as the
//! fallback handler with one owner transaction, and writes a session file naming the module; the
//! agent's payments take the module's `executeSessionPayment` shape; the owner pauses, resumes,
//! revokes and revokes all with owner transactions in which the Safe calls itself.

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use x402_aa::{
    ENTRY_POINT_V06,
    accounts::{
        AccountKind,
        safe::{SafeConfig, session::SESSION_PAYMENT_LEN},
    },
    x402::{AaNativeExtra, AaNativeRequirements},
};
use x402_aa_contracts::SafeSessionModule;
use x402_aa_devnet::Devnet;
use x402_aa_policy::SessionHost;
use x402_aa_session::{
    Scopes,
    ledger::Ledger,
    owner::{self, SessionStatus},
    per_day,
    scopes::GasBudget,
    sdk::{Network, SessionKey, SessionOwner},
    signer::{PaidRequest, PaymentSigner, SessionAccount, SignedPayment},
};

const USD: u64 = 1_000_000;

fn network(devnet: &Devnet) -> Network {
    let a = devnet.addresses;
    Network::devnet()
        .with_rpc_url(devnet.rpc_url())
        .with_settlement(a.settlement)
        .with_token(a.token)
        .with_safe_deployment(devnet.safe)
        .with_safe_session_module(a.safe_session_module)
}

/// 10 USDT a day, 1 USDT per payment, `merchant` only; gas from the Safe's own ETH.
fn scopes(merchant: Address) -> anyhow::Result<Scopes> {
    Ok(Scopes::new()
        .spend_cap("10 USDT".parse()?, per_day())
        .per_payment_max("1 USDT".parse()?)
        .merchants([merchant])
        .valid_for(Duration::from_secs(3600))
        .self_paid_gas(GasBudget {
            per_op: 10u128.pow(16),
            per_period: 10u128.pow(17),
            lifetime: 10u128.pow(17),
        }))
}

fn accepted(devnet: &Devnet, merchant: Address) -> serde_json::Value {
    let a = devnet.addresses;
    let req = AaNativeRequirements {
        chain_id: devnet.chain_id(),
        amount: U256::from(USD),
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
    PaidRequest { method: "GET".into(), url: format!("http://127.0.0.1:8080/safe/{n}") }
}

/// Submits `paid` with `handleOps` and records it; the op must succeed.
async fn submit(
    devnet: &Devnet,
    signer: &PaymentSigner<SessionAccount>,
    paid: &SignedPayment,
) -> anyhow::Result<()> {
    let op = paid.payload.payload.user_op.clone();
    let included =
        devnet.handle_ops(&[op], devnet.keys.bundler.address()).await?.into_included()?;
    let event = included.event(paid.user_op_hash).expect("UserOperationEvent");
    assert!(event.success, "{:?}", included.revert_reason_strings());
    signer.settled(paid, included.receipt.transaction_hash, 0)?;
    Ok(())
}

#[tokio::test]
async fn safe_grant_installs_the_module_pays_and_the_owner_controls_it() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let owner_key = devnet.keys.spare[5].clone();
    let merchant = devnet.keys.spare[1].address();
    let sdk_owner = SessionOwner::new(owner_key.clone(), network(&devnet));
    let granted =
        sdk_owner.grant(AccountKind::Safe, &scopes(merchant)?, SessionKey::Generate).await?;

    // The owner's own Safe (the address its owner payments use), now with the module installed.
    let safe =
        devnet.safe.account_address(&SafeConfig::single_owner(owner_key.address(), U256::ZERO))?;
    assert_eq!(granted.file.account, safe);
    assert_eq!(sdk_owner.account(AccountKind::Safe).await?, safe);
    assert_eq!(granted.file.host(), SessionHost::SafeModule(a.safe_session_module));
    assert_eq!(granted.file.account_kind, AccountKind::Safe);
    let module = SafeSessionModule::new(a.safe_session_module, devnet.provider());
    assert_eq!(module.ownerOf(safe).call().await?, owner_key.address());
    let again = owner::install_safe_sessions(
        devnet.provider(),
        owner_key.address(),
        safe,
        a.safe_session_module,
        devnet.safe.multi_send_call_only,
    )
    .await?;
    assert_eq!(again, None, "installing twice sends nothing");

    devnet.mint(safe, U256::from(100 * USD)).await?;
    devnet.fund(safe, U256::from(10u64.pow(18))).await?;
    let file = granted.file.clone();
    let key = granted.key.clone().expect("generated key");
    let ledger = Arc::new(Ledger::in_memory()?);
    let signer =
        PaymentSigner::new(SessionAccount::new(file.clone(), key)?, devnet.provider().clone())
            .await?
            .ledger(ledger)?;

    // Two payments: the first enables the grant in-op (the 1-of-1 owner's signature), the second
    // uses it; both are the module's 164-byte shape.
    for n in 0..2 {
        let paid = signer.pay(&accepted(&devnet, merchant), &request(n)).await?;
        let op = &paid.payload.payload.user_op;
        assert_eq!(op.call_data.len(), SESSION_PAYMENT_LEN);
        assert_eq!(op.signature.first(), Some(&(if n == 0 { 1 } else { 2 })), "enable, then use");
        submit(&devnet, &signer, &paid).await?;
    }
    assert_eq!(devnet.token_balance(merchant).await?, U256::from(2 * USD));
    assert_eq!(sdk_owner.status(&file).await?.status, SessionStatus::Enabled);

    // Pause, refused; resume, pays again.
    let host = file.host();
    let (owner_address, id) = (owner_key.address(), file.session_id);
    owner::set_paused_in(devnet.provider(), host, owner_address, safe, id, true).await?;
    assert_eq!(sdk_owner.status(&file).await?.status, SessionStatus::Paused);
    let err = signer.pay(&accepted(&devnet, merchant), &request(2)).await.unwrap_err();
    assert_eq!(err.reason(), "session_paused", "{err}");
    owner::set_paused_in(devnet.provider(), host, owner_address, safe, id, false).await?;
    let paid = signer.pay(&accepted(&devnet, merchant), &request(3)).await?;
    submit(&devnet, &signer, &paid).await?;

    // Revoke: one owner transaction; the next payment is refused.
    sdk_owner.revoke(&file).await?;
    assert_eq!(sdk_owner.status(&file).await?.status, SessionStatus::Revoked);
    let err = signer.pay(&accepted(&devnet, merchant), &request(4)).await.unwrap_err();
    assert_eq!(err.reason(), "session_revoked", "{err}");

    // A second grant (no second install), then revoke-all ends it.
    let second =
        sdk_owner.grant(AccountKind::Safe, &scopes(merchant)?, SessionKey::Generate).await?;
    assert_eq!(second.file.account, safe);
    sdk_owner.revoke_all(AccountKind::Safe).await?;
    assert_eq!(module.sessionEpoch(safe).call().await?, 1);
    assert_eq!(sdk_owner.status(&second.file).await?.status, SessionStatus::RevokedAll);
    let signer = PaymentSigner::new(
        SessionAccount::new(second.file, second.key.expect("generated key"))?,
        devnet.provider().clone(),
    )
    .await?;
    let err = signer.pay(&accepted(&devnet, merchant), &request(5)).await.unwrap_err();
    assert_eq!(err.reason(), "session_revoked", "{err}");
    Ok(())
}

/// A Safe whose threshold the owner key alone cannot meet gets a clear refusal, not a reverted
/// transaction.
#[tokio::test]
async fn safe_controls_need_a_threshold_of_one() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let owners: Vec<PrivateKeySigner> = devnet.keys.spare[..3].to_vec();
    let config = SafeConfig {
        owners: owners.iter().map(|k| k.address()).collect(),
        threshold: 2,
        salt_nonce: U256::ZERO,
    };
    let safe = devnet.safe.account_address(&config)?;
    let init_code = devnet.safe.init_code(&config)?;
    owner::deploy_account(devnet.provider(), owners[0].address(), safe, &init_code).await?;
    let err = owner::install_safe_sessions(
        devnet.provider(),
        owners[0].address(),
        safe,
        a.safe_session_module,
        devnet.safe.multi_send_call_only,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, owner::OwnerError::SafeThreshold { .. }), "{err}");
    let host = SessionHost::SafeModule(a.safe_session_module);
    let err =
        owner::revoke_all_in(devnet.provider(), host, owners[0].address(), safe).await.unwrap_err();
    assert!(matches!(err, owner::OwnerError::SafeThreshold { .. }), "{err}");
    Ok(())
}

/// An owner without gas revokes a Safe session with a signature anyone relays to the module
/// (`revokeWithSignature`, checked by the Safe's own `checkSignatures`); a signature by anyone but
/// the owner relays nothing.
#[tokio::test]
async fn a_safe_session_is_revoked_by_a_relayed_owner_signature() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let owner_key = devnet.keys.spare[5].clone();
    let merchant = devnet.keys.spare[1].address();
    let relayer = devnet.keys.spare[6].address();
    let sdk_owner = SessionOwner::new(owner_key.clone(), network(&devnet));
    let granted =
        sdk_owner.grant(AccountKind::Safe, &scopes(merchant)?, SessionKey::Generate).await?;
    let (file, key) = (granted.file.clone(), granted.key.clone().expect("generated key"));
    let safe = file.account;
    devnet.mint(safe, U256::from(100 * USD)).await?;
    devnet.fund(safe, U256::from(10u64.pow(18))).await?;
    let signer = PaymentSigner::new(
        SessionAccount::new(file.clone(), key.clone())?,
        devnet.provider().clone(),
    )
    .await?;
    let paid = signer.pay(&accepted(&devnet, merchant), &request(10)).await?;
    submit(&devnet, &signer, &paid).await?;

    let (host, id, chain_id) = (file.host(), file.session_id, devnet.chain_id());
    assert_eq!(host, SessionHost::SafeModule(a.safe_session_module));
    // The session key's own signature over the same revocation is not the Safe's.
    // Refused by the chain's simulation, so the relayer spends no nonce: its next relay (below)
    // must not wait behind a gap.
    let forged = owner::signed_revocation(&key, id, chain_id, safe)?;
    let err = owner::relay_revocation_in(devnet.provider(), host, relayer, safe, id, forged)
        .await
        .expect_err("a signature that is not the owner's revoked the session");
    assert!(matches!(err, owner::OwnerError::WouldRevert(_)), "{err}");
    assert_eq!(sdk_owner.status(&file).await?.status, SessionStatus::Enabled);

    let signature = owner::signed_revocation(&owner_key, id, chain_id, safe)?;
    owner::relay_revocation_in(devnet.provider(), host, relayer, safe, id, signature).await?;
    assert_eq!(sdk_owner.status(&file).await?.status, SessionStatus::Revoked);
    let err = signer.pay(&accepted(&devnet, merchant), &request(11)).await.unwrap_err();
    assert_eq!(err.reason(), "session_revoked", "{err}");
    Ok(())
}
