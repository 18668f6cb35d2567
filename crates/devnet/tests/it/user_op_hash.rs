//! The Rust userOpHash must equal `EntryPoint.getUserOpHash` for every field that feeds it.

use alloy::primitives::{Address, Bytes, U256, address, aliases::U192, bytes};
use x402_aa::{ENTRY_POINT_V06, UserOperation, encode_nonce, encode_payment_batch};
use x402_aa_contracts::EntryPoint;
use x402_aa_devnet::Devnet;

use crate::common::op_template;

fn vectors(devnet: &Devnet) -> Vec<UserOperation> {
    let a = devnet.addresses;
    let owner = devnet.keys.spare[0].address();
    let sender = address!("0x1111111111111111111111111111111111111111");
    let mut ops = Vec::new();

    // Minimal op.
    ops.push(UserOperation::default());

    // First op of a counterfactual account: initCode, nonce 0.
    let mut op = op_template(sender);
    op.init_code = devnet.simple_account_init_code(owner, U256::from(7));
    ops.push(op);

    // Nonce with a 192-bit key, payment callData, paymasterAndData, odd gas values.
    let mut op = op_template(address!("0x2222222222222222222222222222222222222222"));
    op.nonce = encode_nonce(U192::from(0xdead_beef_u64) << 100, 42);
    op.call_data = encode_payment_batch(
        a.token,
        a.settlement,
        owner,
        U256::from(1_234_567),
        alloy::primitives::keccak256("request"),
    );
    op.paymaster_and_data = Bytes::from([a.verifying_paymaster.as_slice(), &[0xab; 129]].concat());
    op.call_gas_limit = U256::from(1);
    op.verification_gas_limit = U256::MAX;
    op.pre_verification_gas = U256::from(21_000);
    op.max_fee_per_gas = U256::from(u128::MAX);
    op.max_priority_fee_per_gas = U256::ZERO;
    op.signature = Bytes::from(vec![0x55; 65]);
    ops.push(op);

    // Every dynamic field non-empty and not word-aligned.
    let mut op = op_template(Address::repeat_byte(0xff));
    op.nonce = U256::MAX;
    op.init_code = bytes!("01");
    op.call_data = Bytes::from(vec![0x42; 333]);
    op.paymaster_and_data = Bytes::from(vec![0x99; 31]);
    op.signature = Bytes::from(vec![0x77; 1000]);
    ops.push(op);

    // The x402-aa unit-test sample, so its pinned hash is chain-verified.
    ops.push(UserOperation {
        sender,
        nonce: U256::from(7),
        init_code: bytes!("9406cc6185a346906296840746125a0e44976454deadbeef"),
        call_data: bytes!("b61d27f6"),
        call_gas_limit: U256::from(100_000),
        verification_gas_limit: U256::from(200_000),
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: U256::from(2_000_000_000u64),
        max_priority_fee_per_gas: U256::from(1_000_000_000u64),
        paymaster_and_data: Bytes::new(),
        signature: bytes!("00"),
    });
    ops
}

async fn check(devnet: &Devnet) -> anyhow::Result<()> {
    let entry_point = EntryPoint::new(ENTRY_POINT_V06, devnet.provider());
    for (i, op) in vectors(devnet).into_iter().enumerate() {
        let ours = devnet.user_op_hash(&op);
        let chain = entry_point.getUserOpHash(op.clone().into()).call().await?;
        assert_eq!(ours, chain, "vector {i} on chain {}", devnet.chain_id());
    }
    Ok(())
}

#[tokio::test]
async fn matches_entry_point_get_user_op_hash() -> anyhow::Result<()> {
    let (a, b) = tokio::try_join!(Devnet::spawn(), Devnet::builder().chain_id(8453).spawn())?;
    check(&a).await?;
    check(&b).await?;
    Ok(())
}
