use std::time::Instant;

use alloy::{
    primitives::{U256, utils::parse_ether},
    providers::Provider,
};
use x402_aa::{ENTRY_POINT_V06, SIMPLE_ACCOUNT_FACTORY_V06};
use x402_aa_contracts::{
    EntryPoint, SettlementContract, SimpleAccountFactory, TestStablecoin, VerifyingPaymaster,
};
use x402_aa_devnet::{DEFAULT_CHAIN_ID, Devnet};

#[tokio::test]
async fn canonical_addresses_have_code() -> anyhow::Result<()> {
    let started = Instant::now();
    let devnet = Devnet::spawn().await?;
    eprintln!("spawn + deploy: {:?}", started.elapsed());

    let a = devnet.addresses;
    assert_eq!(a.entry_point, ENTRY_POINT_V06);
    assert_eq!(a.simple_account_factory, SIMPLE_ACCOUNT_FACTORY_V06);
    let p = devnet.provider();
    for (name, addr) in [
        ("EntryPoint", a.entry_point),
        ("SimpleAccountFactory", a.simple_account_factory),
        ("VerifyingPaymaster", a.verifying_paymaster),
        ("TestStablecoin", a.token),
        ("SettlementContract", a.settlement),
        ("SessionKeyAccountFactory", a.session_account_factory),
    ] {
        assert!(!p.get_code_at(addr).await?.is_empty(), "{name} at {addr} has no code");
    }

    // The factory's implementation is bound to the canonical EntryPoint, and SenderCreator sits
    // where it does on real chains (EntryPoint's first CREATE).
    let factory = SimpleAccountFactory::new(a.simple_account_factory, p);
    assert!(!p.get_code_at(factory.accountImplementation().call().await?).await?.is_empty());
    let sender_creator = ENTRY_POINT_V06.create(1);
    assert_eq!(
        sender_creator,
        alloy::primitives::address!("0x7fc98430eAEdbb6070B35B39D798725049088348")
    );
    assert!(!p.get_code_at(sender_creator).await?.is_empty());
    assert_eq!(p.get_chain_id().await?, DEFAULT_CHAIN_ID);
    Ok(())
}

#[tokio::test]
async fn paymaster_and_project_contracts_are_configured() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let p = devnet.provider();

    let paymaster = VerifyingPaymaster::new(a.verifying_paymaster, p);
    assert_eq!(paymaster.verifyingSigner().call().await?, devnet.keys.paymaster_signer.address());
    assert_eq!(paymaster.owner().call().await?, devnet.keys.deployer.address());
    assert_eq!(paymaster.entryPoint().call().await?, ENTRY_POINT_V06);
    let info =
        EntryPoint::new(ENTRY_POINT_V06, p).getDepositInfo(a.verifying_paymaster).call().await?;
    assert_eq!(U256::from(info.deposit), parse_ether("100")?);
    assert!(info.staked);

    let token = TestStablecoin::new(a.token, p);
    assert_eq!(token.decimals().call().await?, 6);
    assert_eq!(token.owner().call().await?, devnet.keys.deployer.address());
    let settlement = SettlementContract::new(a.settlement, p);
    assert!(settlement.isTokenAllowed(a.token).call().await?);
    assert_eq!(settlement.owner().call().await?, devnet.keys.deployer.address());

    let who = devnet.keys.spare[0].address();
    devnet.mint(who, U256::from(5)).await?;
    assert_eq!(devnet.token_balance(who).await?, U256::from(5));
    Ok(())
}

#[tokio::test]
async fn addresses_are_deterministic_and_chain_id_configurable() -> anyhow::Result<()> {
    let (one, two) = tokio::try_join!(Devnet::spawn(), Devnet::builder().chain_id(8453).spawn())?;
    assert_eq!(one.addresses, two.addresses);
    assert_eq!(two.chain_id(), 8453);
    assert_eq!(two.provider().get_chain_id().await?, 8453);
    assert_ne!(one.rpc_url(), two.rpc_url());
    Ok(())
}

#[tokio::test]
async fn spare_keys_are_anvils_default_accounts_and_funded() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    assert_eq!(devnet.keys.spare.len(), 7);
    assert_eq!(
        devnet.keys.spare[0].address(),
        alloy::primitives::address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906")
    );
    assert_eq!(
        devnet.keys.spare[6].address(),
        alloy::primitives::address!("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")
    );
    let p = devnet.provider();
    for key in [&devnet.keys.deployer, &devnet.keys.bundler].into_iter().chain(&devnet.keys.spare) {
        assert!(p.get_balance(key.address()).await? >= parse_ether("1000")?);
    }
    // The wallet signs for spare keys too.
    let from = devnet.keys.spare[4].address();
    let to = devnet.keys.spare[5].address();
    let before = p.get_balance(to).await?;
    let tx =
        alloy::rpc::types::TransactionRequest::default().from(from).to(to).value(U256::from(1));
    devnet.send("spare transfer", tx).await?;
    assert_eq!(p.get_balance(to).await?, before + U256::from(1));
    Ok(())
}

#[tokio::test]
async fn drop_stops_anvil() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let url: alloy::transports::http::reqwest::Url = devnet.rpc_url().parse()?;
    drop(devnet);
    let provider = alloy::providers::ProviderBuilder::new().connect_http(url);
    assert!(provider.get_block_number().await.is_err());
    Ok(())
}

#[tokio::test]
async fn time_travel() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let before = devnet.block_timestamp().await?;
    devnet.increase_time(3_600).await?;
    assert!(devnet.block_timestamp().await? >= before + 3_600);
    Ok(())
}

#[tokio::test]
async fn interval_mining_still_deploys() -> anyhow::Result<()> {
    let devnet = Devnet::builder().block_time(0.05).spawn().await?;
    let who = devnet.keys.spare[0].address();
    devnet.mint(who, U256::from(7)).await?;
    assert_eq!(devnet.token_balance(who).await?, U256::from(7));
    Ok(())
}
