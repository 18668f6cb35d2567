//! Startup checks and shutdown.

use alloy::primitives::Address;
use x402_aa::ENTRY_POINT_V06;
use x402_aa_devnet::Devnet;
use x402_aa_paymaster::{Error, PaymasterService, SponsorPolicy};
use x402_aa_rpc::{PaymasterClient, RetryPolicy, RpcError, SponsorContext};

use crate::common::{API_KEY, config, payment_op, start};

#[tokio::test]
async fn shutdown_stops_serving() -> anyhow::Result<()> {
    let env = start(SponsorPolicy::default()).await?;
    let url = env.handle.url();
    let addr = env.handle.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    env.handle.shutdown().await?;
    let op = payment_op(&env.devnet, Address::repeat_byte(1), 0, "s");
    let client = PaymasterClient::new(&url)?.with_retry(RetryPolicy::none());
    let err = client
        .sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, SponsorContext::free())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::Transport { .. }), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn dropping_the_handle_stops_serving() -> anyhow::Result<()> {
    let env = start(SponsorPolicy::default()).await?;
    let url = env.handle.url();
    drop(env.handle);
    let op = payment_op(&env.devnet, Address::repeat_byte(1), 0, "s");
    let client = PaymasterClient::new(&url)?.with_retry(RetryPolicy::none());
    let mut stopped = false;
    for _ in 0..50 {
        let result =
            client.sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, SponsorContext::free()).await;
        if matches!(result, Err(RpcError::Transport { .. })) {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(stopped);
    Ok(())
}

#[tokio::test]
async fn misconfiguration_is_caught_before_serving() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let localhost = ([127, 0, 0, 1], 0).into();

    let mut wrong_signer = config(&devnet, SponsorPolicy::default());
    wrong_signer.signer = devnet.keys.spare[0].clone();
    let err = PaymasterService::new(wrong_signer)?.bind(localhost).await.unwrap_err();
    assert!(matches!(err, Error::SignerMismatch { .. }), "{err}");
    assert_eq!(err.reason(), "signer_mismatch");

    let mut wrong_chain = config(&devnet, SponsorPolicy::default());
    wrong_chain.chain_id = 1;
    let err = PaymasterService::new(wrong_chain)?.bind(localhost).await.unwrap_err();
    assert!(matches!(err, Error::ChainIdMismatch { configured: 1, actual: 31337 }), "{err}");

    let mut wrong_entry_point = config(&devnet, SponsorPolicy::default());
    wrong_entry_point.entry_point = Address::repeat_byte(3);
    let err = PaymasterService::new(wrong_entry_point)?.bind(localhost).await.unwrap_err();
    assert_eq!(err.reason(), "entry_point_mismatch");

    let mut open = config(&devnet, SponsorPolicy::default());
    open.api_keys.clear();
    assert!(matches!(PaymasterService::new(open), Err(Error::NoApiKeys)));
    let mut blank = config(&devnet, SponsorPolicy::default());
    blank.api_keys.push(String::new());
    assert!(matches!(PaymasterService::new(blank), Err(Error::EmptyApiKey)));
    let zero_validity = SponsorPolicy { validity_seconds: 0, ..Default::default() };
    let err = PaymasterService::new(config(&devnet, zero_validity)).unwrap_err();
    assert_eq!(err.reason(), "invalid_policy");

    // The Debug form leaks no key.
    let service = PaymasterService::new(config(&devnet, SponsorPolicy::default()))?;
    assert!(!format!("{service:?}").contains(API_KEY));
    assert!(!format!("{:?}", config(&devnet, SponsorPolicy::default())).contains(API_KEY));
    Ok(())
}
