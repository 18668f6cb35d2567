//! End to end over HTTP on the devnet with the real services: agent (x402 paying client) → paywall
//! (x402-axum) → facilitator (direct handleOps) → EntryPoint, for a session-key account and for an
//! owner-signed SimpleAccount.

use std::{sync::Arc, time::Duration};

use alloy::primitives::{B256, U256};
use x402_aa::ENTRY_POINT_V06;
use x402_aa_devnet::Devnet;
use x402_aa_facilitator::{ChainConfig, Config, FacilitatorService, KeySource};
use x402_aa_paymaster::{PaymasterConfig, PaymasterService};
use x402_aa_paywall::{Paywall, Token, price_tag};
use x402_aa_rpc::PaymasterClient;
use x402_aa_session::{
    Scopes, SessionFile, TokenInfo,
    client::{AaNativeScheme, X402PayingClient},
    file::AccountDeployment,
    ledger::Ledger,
    owner::sign_grant,
    per_day,
    signer::{OwnerAccount, PaymentAccount, PaymentSigner, SessionAccount},
};

const USD: u64 = 1_000_000;

async fn buy<A: PaymentAccount + 'static>(
    signer: PaymentSigner<A>,
    devnet: &Devnet,
    url: &str,
    calls: usize,
) -> anyhow::Result<()> {
    let ledger = Arc::new(Ledger::in_memory()?);
    let scheme = AaNativeScheme::with_ledger(signer, devnet.provider().clone(), ledger)?;
    let client = X402PayingClient::builder().register(scheme).build();
    for _ in 0..calls {
        let paid = client.get(url).await?;
        anyhow::ensure!(paid.status().is_success(), "HTTP {}", paid.status());
        anyhow::ensure!(paid.is_settled(), "payment not settled: {:?}", paid.payment);
        let settlement =
            paid.settlement.as_ref().ok_or_else(|| anyhow::anyhow!("no PAYMENT-RESPONSE"))?;
        anyhow::ensure!(settlement.success);
    }
    Ok(())
}

#[tokio::test]
async fn session_and_owner_payments_over_http_with_the_real_facilitator() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let chain_id = devnet.chain_id();
    let pm_config = PaymasterConfig::new(
        devnet.rpc_url().to_owned(),
        chain_id,
        a.verifying_paymaster,
        devnet.keys.paymaster_signer.clone(),
        vec!["k".to_owned()],
    );
    let paymaster = PaymasterService::new(pm_config)?.bind("127.0.0.1:0".parse()?).await?;
    let registry = std::env::temp_dir().join(format!("x402-aa-e2e-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&registry);
    let mut chain = ChainConfig::with_direct(
        devnet.rpc_url(),
        a.settlement,
        KeySource::literal(&devnet.keys.spare[6]),
    );
    chain.session_account_factory = Some(a.session_account_factory);
    chain.allowed_tokens = vec![a.token];
    let mut config = Config::single(chain_id, chain);
    config.bind = "127.0.0.1:0".parse()?;
    config.registry_url = format!("sqlite:{}", registry.display());
    let facilitator = FacilitatorService::new(config).await?.bind().await?;
    let merchant = devnet.keys.spare[5].address();
    let tag =
        price_tag(chain_id, merchant, "0.25 USDT", &Token::new(a.token, "USDT", 6), a.settlement)?;
    let app = x402_aa_paywall::demo::router(Paywall::new(&facilitator.url())?.layer([tag])?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/joke", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // A session key paying from a counterfactual SessionKeyAccount (deployed by its first payment).
    let owner = devnet.keys.spare[0].clone();
    let factory = x402_aa_contracts::SessionKeyAccountFactory::new(
        a.session_account_factory,
        devnet.provider(),
    );
    let account = factory.getAddress(owner.address(), U256::ZERO).call().await?;
    devnet.mint(account, U256::from(5 * USD)).await?;
    let token = TokenInfo { address: a.token, symbol: "USDT".into(), decimals: 6 };
    let session_key = alloy::signers::local::PrivateKeySigner::random();
    let grant = Scopes::new()
        .spend_cap("1 USDT".parse()?, per_day())
        .merchants([merchant])
        .valid_for(Duration::from_secs(3600))
        .only_paymaster(a.verifying_paymaster)
        .to_grant(
            session_key.address(),
            &token,
            a.settlement,
            devnet.block_timestamp().await? - 1,
            0,
            B256::ZERO,
        )?;
    let (_, sig) = sign_grant(&owner, &grant, chain_id, account)?;
    let deployment = AccountDeployment {
        factory: a.session_account_factory,
        owner: owner.address(),
        salt: U256::ZERO,
    };
    let file = SessionFile::new(
        chain_id,
        account,
        ENTRY_POINT_V06,
        Some(deployment),
        token,
        owner.address(),
        vec![merchant],
        &grant,
        sig,
    );
    let session =
        PaymentSigner::new(SessionAccount::new(file, session_key)?, devnet.provider().clone())
            .await?
            .paymaster(PaymasterClient::new(&paymaster.url())?, "k");
    buy(session, &devnet, &url, 2).await?;

    // The owner key paying from a canonical SimpleAccount (also counterfactual).
    let owner2 = devnet.keys.spare[3].clone();
    let simple = devnet.simple_account_address(owner2.address(), U256::ZERO).await?;
    devnet.mint(simple, U256::from(5 * USD)).await?;
    let owner_signer = PaymentSigner::new(
        OwnerAccount::simple_account(owner2, simple, a.token, a.settlement),
        devnet.provider().clone(),
    )
    .await?
    .paymaster(PaymasterClient::new(&paymaster.url())?, "k");
    buy(owner_signer, &devnet, &url, 2).await?;

    assert_eq!(devnet.token_balance(merchant).await?, U256::from(USD), "4 × 0.25 USDT");
    server.abort();
    facilitator.shutdown().await?;
    paymaster.shutdown().await?;
    let _ = std::fs::remove_file(&registry);
    Ok(())
}
