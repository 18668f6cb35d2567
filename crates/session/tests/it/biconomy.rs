//! Biconomy sessions from the owner's side on the devnet: the grant deploys the owner's Biconomy
//! account, installs `BiconomySessionModule` with an owner UserOperation (a Biconomy account takes
//! calls only from the EntryPoint) and writes a session file naming the module; the owner's
//! revoke, pause and revoke-all are signed controls the SDK relays to the module.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use x402_aa::{
    ENTRY_POINT_V06, UserOperation,
    accounts::AccountKind,
    x402::{AaNativeExtra, AaNativeRequirements},
};
use x402_aa_contracts::BiconomySessionModule;
use x402_aa_devnet::Devnet;
use x402_aa_policy::SessionHost;
use x402_aa_session::{
    Scopes,
    owner::{self, SessionStatus},
    per_day,
    scopes::GasBudget,
    sdk::{GrantedSession, Network, SessionKey, SessionOwner},
    signer::{PaidRequest, PaymentSigner, SessionAccount},
};

use crate::fixture::USD;

#[tokio::test]
async fn biconomy_grant_deploys_the_account_and_installs_the_module() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let (a, b) = (devnet.addresses, devnet.biconomy);
    let network = Network::devnet()
        .with_rpc_url(devnet.rpc_url())
        .with_settlement(a.settlement)
        .with_token(a.token)
        .with_biconomy_deployment(b.deployment())
        .with_biconomy_session_module(b.session_module);
    let owner_key = devnet.keys.spare[6].clone();
    let sdk_owner = SessionOwner::new(owner_key.clone(), network);
    let scopes = Scopes::new()
        .spend_cap("10 USDT".parse()?, per_day())
        .valid_for(Duration::from_secs(7 * 86_400));
    let granted = sdk_owner.grant(AccountKind::Biconomy, &scopes, SessionKey::Generate).await?;

    let account = b.deployment().account_address(owner_key.address(), U256::ZERO);
    assert_eq!(granted.file.account, account);
    assert_eq!(granted.file.host(), SessionHost::BiconomyModule(b.session_module));
    assert_eq!(granted.file.account_kind, AccountKind::Biconomy);
    // Installed by the owner's op: the module is enabled and reads the owner from the ECDSA module.
    let module = BiconomySessionModule::new(b.session_module, devnet.provider());
    assert_eq!(module.ownerOf(account).call().await?, owner_key.address());
    assert_eq!(module.sessionEpoch(account).call().await?, 0);
    // Installing again sends nothing.
    let again = owner::install_biconomy_sessions(
        devnet.provider(),
        &owner_key,
        account,
        b.session_module,
        b.ecdsa_module,
    )
    .await?;
    assert_eq!(again, None);
    // Owner controls cannot be direct calls on Biconomy: a clear error, not a reverted transaction.
    let err = owner::revoke_in(
        devnet.provider(),
        granted.file.host(),
        owner_key.address(),
        account,
        granted.file.session_id,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, owner::OwnerError::NoDirectOwnerCall { .. }), "{err}");
    Ok(())
}

/// The agent's SDK signer on one granted session.
struct Agent {
    signer: PaymentSigner<SessionAccount>,
}

impl Agent {
    async fn new(devnet: &Devnet, granted: &GrantedSession) -> anyhow::Result<Self> {
        let key = granted.key.clone().ok_or_else(|| anyhow::anyhow!("generated key"))?;
        let account = SessionAccount::new(granted.file.clone(), key)?;
        Ok(Self { signer: PaymentSigner::new(account, devnet.provider().clone()).await? })
    }

    /// The SDK signs a 1 USDT payment and the EntryPoint includes it.
    async fn pays(&self, devnet: &Devnet, merchant: Address, n: u32) -> anyhow::Result<()> {
        let signed = self.signer.pay(&accepted(devnet, merchant), &request(n)).await?;
        let op = signed.payload.payload.user_op.clone();
        let included = devnet.handle_ops(&[op], devnet.keys.bundler.address()).await?;
        let included = included.into_included()?;
        let event =
            included.event(signed.user_op_hash).ok_or_else(|| anyhow::anyhow!("no event"))?;
        anyhow::ensure!(event.success, "payment {n}: {:?}", included.revert_reason_strings());
        let block = included.receipt.block_number.unwrap_or(0);
        self.signer.settled(&signed, included.receipt.transaction_hash, block)?;
        Ok(())
    }

    /// A payment signed while the session may pay and left unsubmitted (its reservation
    /// released): what is in flight when the owner acts.
    async fn presigned(
        &self,
        devnet: &Devnet,
        merchant: Address,
        n: u32,
    ) -> anyhow::Result<UserOperation> {
        let signed = self.signer.pay(&accepted(devnet, merchant), &request(n)).await?;
        self.signer.failed(&signed, "held back")?;
        Ok(signed.payload.payload.user_op)
    }

    /// The SDK refuses to sign with `sdk_reason`, and the EntryPoint refuses the payment signed
    /// before the owner acted with `chain_reason`.
    async fn refused(
        &self,
        devnet: &Devnet,
        merchant: Address,
        n: u32,
        in_flight: UserOperation,
        sdk_reason: &str,
        chain_reason: &str,
    ) -> anyhow::Result<()> {
        let err =
            self.signer.pay(&accepted(devnet, merchant), &request(n)).await.expect_err("refused");
        assert_eq!(err.reason(), sdk_reason, "{err}");
        let outcome = devnet.handle_ops(&[in_flight], devnet.keys.bundler.address()).await?;
        let got = outcome.failed_op().map(|(_, reason)| reason.to_owned());
        assert_eq!(got.as_deref(), Some(chain_reason), "payment {n} on chain");
        Ok(())
    }
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
    PaidRequest { method: "GET".into(), url: format!("http://127.0.0.1:8080/biconomy/{n}") }
}

#[tokio::test]
async fn biconomy_owner_pauses_revokes_and_revokes_all_through_relayed_signatures()
-> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let (a, b) = (devnet.addresses, devnet.biconomy);
    let network = Network::devnet()
        .with_rpc_url(devnet.rpc_url())
        .with_settlement(a.settlement)
        .with_token(a.token)
        .with_biconomy_deployment(b.deployment())
        .with_biconomy_session_module(b.session_module);
    let owner_key = devnet.keys.spare[6].clone();
    let merchant = devnet.keys.spare[1].address();
    let sdk_owner = SessionOwner::new(owner_key.clone(), network);
    // Gas from the account's own balance: no paymaster in this test.
    let scopes = Scopes::new()
        .spend_cap("10 USDT".parse()?, per_day())
        .per_payment_max("1 USDT".parse()?)
        .merchants([merchant])
        .valid_for(Duration::from_secs(7 * 86_400))
        .self_paid_gas(GasBudget {
            per_op: 10u128.pow(16),
            per_period: 10u128.pow(17),
            lifetime: 10u128.pow(17),
        });
    let granted = sdk_owner.grant(AccountKind::Biconomy, &scopes, SessionKey::Generate).await?;
    let account = granted.account();
    devnet.mint(account, U256::from(100 * USD)).await?;
    devnet.fund(account, U256::from(10u64.pow(18))).await?;
    let agent = Agent::new(&devnet, &granted).await?;
    agent.pays(&devnet, merchant, 0).await?;

    // Pause: refused with the pause reason by the SDK and the chain, counters kept; resume
    // continues where it stopped. Each is one relayed owner signature naming the pause nonce.
    let in_flight = agent.presigned(&devnet, merchant, 1).await?;
    sdk_owner.set_paused(&granted.file, true).await?;
    assert_eq!(sdk_owner.status(&granted.file).await?.status, SessionStatus::Paused);
    let paused = "AA23 reverted: session: paused";
    agent.refused(&devnet, merchant, 1, in_flight, "session_paused", paused).await?;
    sdk_owner.set_paused(&granted.file, false).await?;
    let status = sdk_owner.status(&granted.file).await?;
    assert_eq!((status.status, status.pause_nonce), (SessionStatus::Enabled, 2));
    assert_eq!(status.lifetime_spent, U256::from(USD), "pausing kept the counters");
    agent.pays(&devnet, merchant, 2).await?;

    // Revoke: final, refused by both with the revoke reason.
    let in_flight = agent.presigned(&devnet, merchant, 3).await?;
    sdk_owner.revoke(&granted.file).await?;
    assert_eq!(sdk_owner.status(&granted.file).await?.status, SessionStatus::Revoked);
    let revoked = "AA23 reverted: session: revoked";
    agent.refused(&devnet, merchant, 3, in_flight, "session_revoked", revoked).await?;

    // Revoke-all: a second session pays, then the owner ends every session of the account.
    let second = sdk_owner.grant(AccountKind::Biconomy, &scopes, SessionKey::Generate).await?;
    let agent2 = Agent::new(&devnet, &second).await?;
    agent2.pays(&devnet, merchant, 4).await?;
    let in_flight = agent2.presigned(&devnet, merchant, 5).await?;
    sdk_owner.revoke_all(AccountKind::Biconomy).await?;
    assert_eq!(sdk_owner.status(&second.file).await?.status, SessionStatus::RevokedAll);
    let all = "AA23 reverted: session: revoked (all sessions)";
    agent2.refused(&devnet, merchant, 5, in_flight, "session_revoked", all).await?;
    let module = BiconomySessionModule::new(b.session_module, devnet.provider());
    assert_eq!(module.sessionEpoch(account).call().await?, 1);

    // A grant made after it names the new epoch and pays.
    let third = sdk_owner.grant(AccountKind::Biconomy, &scopes, SessionKey::Generate).await?;
    Agent::new(&devnet, &third).await?.pays(&devnet, merchant, 6).await?;
    assert_eq!(devnet.token_balance(merchant).await?, U256::from(4 * USD));
    Ok(())
}
