//! The owner path of SessionKeyAccount behaves like SimpleAccount's.

use alloy::primitives::U256;
use x402_aa::{UserOperation, encode_payment_batch};

use crate::fixture::{Fx, USD, receipt_logs, request};

#[tokio::test]
async fn owner_signed_payment_settles_through_handle_ops() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let amount = U256::from(3 * USD);
    let mut op = UserOperation {
        sender: fx.account,
        nonce: fx.devnet.entry_point_nonce(fx.account, Default::default()).await?,
        call_data: encode_payment_batch(a.token, a.settlement, fx.merchant, amount, request(1)),
        call_gas_limit: U256::from(300_000),
        verification_gas_limit: U256::from(400_000),
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: U256::from(3_000_000_000u64),
        max_priority_fee_per_gas: U256::from(1_000_000_000u64),
        ..Default::default()
    };
    let now = fx.devnet.block_timestamp().await?;
    op.signature = vec![0u8; 65].into();
    op.paymaster_and_data = fx.devnet.paymaster_and_data(&op, now + 600, 0).await?;
    let hash = fx.devnet.sign_as_owner(&mut op, &fx.owner).await?;

    let included =
        fx.devnet.handle_ops(&[op], fx.devnet.keys.bundler.address()).await?.into_included()?;
    let event = included.event(hash).expect("UserOperationEvent");
    assert!(event.success, "{:?}", included.revert_reason_strings());
    let logs = receipt_logs(&fx, &included);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].merchant, fx.merchant);
    assert_eq!(logs[0].payer, fx.account);
    assert_eq!(logs[0].token, a.token);
    assert_eq!(logs[0].amount, amount);
    assert_eq!(logs[0].requestHash, request(1));
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, amount);
    Ok(())
}

#[tokio::test]
async fn a_wrong_owner_signature_is_a_signature_error() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let a = fx.devnet.addresses;
    let mut op = UserOperation {
        sender: fx.account,
        call_data: encode_payment_batch(
            a.token,
            a.settlement,
            fx.merchant,
            U256::from(USD),
            request(2),
        ),
        call_gas_limit: U256::from(300_000),
        verification_gas_limit: U256::from(400_000),
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: U256::from(3_000_000_000u64),
        max_priority_fee_per_gas: U256::from(1_000_000_000u64),
        ..Default::default()
    };
    let now = fx.devnet.block_timestamp().await?;
    op.signature = vec![0u8; 65].into();
    op.paymaster_and_data = fx.devnet.paymaster_and_data(&op, now + 600, 0).await?;
    // The session key is not the owner: a 65-byte signature from it is just a bad owner signature.
    fx.devnet.sign_as_owner(&mut op, &fx.session_key).await?;
    let outcome = fx.devnet.handle_ops(&[op], fx.devnet.keys.bundler.address()).await?;
    assert_eq!(outcome.failed_op().map(|f| f.1), Some("AA24 signature error"));
    Ok(())
}
