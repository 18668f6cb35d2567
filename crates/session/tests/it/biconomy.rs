//! Biconomy sessions from the owner's side on the devnet: the grant deploys the owner's Biconomy
//! account, installs `BiconomySessionModule` with an owner UserOperation (a Biconomy account takes
//! calls only from the EntryPoint) and writes a session file naming the module.

use std::time::Duration;

use alloy::primitives::U256;
use x402_aa::accounts::AccountKind;
use x402_aa_contracts::BiconomySessionModule;
use x402_aa_devnet::Devnet;
use x402_aa_policy::SessionHost;
use x402_aa_session::{
    Scopes, owner, per_day,
    sdk::{Network, SessionKey, SessionOwner},
};

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
