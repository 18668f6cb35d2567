//! End to end over HTTP on the devnet with the real services: agent (x402 paying client) → paywall
//! (x402-axum) → facilitator (direct handleOps) → EntryPoint, for a session-key account and for an
//! owner-signed SimpleAccount.

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{B256, U256},
    signers::local::PrivateKeySigner,
};
use x402_aa_devnet::Devnet;
use x402_aa_rpc::PaymasterClient;
use x402_aa_session::{
    Scopes,
    client::{AaNativeScheme, X402PayingClient},
    ledger::Ledger,
    per_day,
    signer::{OwnerAccount, PaymentAccount, PaymentSigner},
};
use x402_aa_stack::{LocalStack, StackOptions, session_account};

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
    let merchant = devnet.keys.spare[5].address();
    let options = StackOptions::new(devnet.keys.spare[6].clone(), merchant, "0.25 USDT")
        .paymaster_api_key("k");
    let stack = LocalStack::start(&devnet, options).await?;
    let url = stack.paid_url();

    // A session key paying from a counterfactual SessionKeyAccount (deployed by its first payment).
    let scopes = Scopes::new()
        .spend_cap("1 USDT".parse()?, per_day())
        .merchants([merchant])
        .valid_for(Duration::from_secs(3600))
        .only_paymaster(a.verifying_paymaster);
    let account = session_account(
        &devnet,
        &devnet.keys.spare[0],
        PrivateKeySigner::random(),
        &scopes,
        B256::ZERO,
        false,
        U256::from(5 * USD),
    )
    .await?;
    let session = PaymentSigner::new(account, devnet.provider().clone())
        .await?
        .paymaster(PaymasterClient::new(&stack.paymaster.url())?, "k");
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
    .paymaster(PaymasterClient::new(&stack.paymaster.url())?, "k");
    buy(owner_signer, &devnet, &url, 2).await?;

    assert_eq!(devnet.token_balance(merchant).await?, U256::from(USD), "4 × 0.25 USDT");
    stack.shutdown().await?;
    Ok(())
}
