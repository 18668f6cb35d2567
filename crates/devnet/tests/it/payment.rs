//! An owner-signed x402 payment through the canonical SimpleAccount, sponsored by the
//! VerifyingPaymaster, settled by the project's SettlementContract.

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::{SolEvent, SolValue},
};
use x402_aa::{UserOperation, decode_payment, encode_payment_batch};
use x402_aa_contracts::{SettlementContract, VerifyingPaymaster};
use x402_aa_devnet::{Devnet, Included};

use crate::common::{USD, op_template};

fn receipt_logs(devnet: &Devnet, included: &Included) -> Vec<SettlementContract::ReceiptLog> {
    included
        .receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == devnet.addresses.settlement)
        .filter_map(|l| SettlementContract::ReceiptLog::decode_log(&l.inner).ok())
        .map(|l| l.data)
        .collect()
}

/// What one x402 payment pays.
struct Pay {
    merchant: Address,
    amount: U256,
    request_hash: B256,
}

/// A sponsored, owner-signed payment op from the owner's salt-0 SimpleAccount; the first
/// (`nonce == 0`) also deploys the account through initCode.
async fn payment_op(
    devnet: &Devnet,
    owner: &PrivateKeySigner,
    account: Address,
    nonce: u64,
    pay: Pay,
) -> anyhow::Result<(UserOperation, B256)> {
    let a = devnet.addresses;
    let mut op = op_template(account);
    op.nonce = U256::from(nonce);
    if nonce == 0 {
        op.init_code = devnet.simple_account_init_code(owner.address(), U256::ZERO);
    }
    op.call_data =
        encode_payment_batch(a.token, a.settlement, pay.merchant, pay.amount, pay.request_hash);
    let now = devnet.block_timestamp().await?;
    op.paymaster_and_data = devnet.paymaster_and_data(&op, now + 600, 0).await?;
    let hash = devnet.sign_as_owner(&mut op, owner).await?;
    Ok((op, hash))
}

#[tokio::test]
async fn owner_signed_payment_via_simple_account() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let owner = devnet.keys.spare[0].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();

    let account = devnet.simple_account_address(owner.address(), U256::ZERO).await?;
    devnet.mint(account, U256::from(10 * USD)).await?;
    let amount = U256::from(1_500_000);
    let request_hash = keccak256("x402 request 1");

    // First op deploys the account through initCode and pays.
    let (op, hash) =
        payment_op(&devnet, &owner, account, 0, Pay { merchant, amount, request_hash }).await?;
    let decoded = decode_payment(&op.call_data)?;
    assert_eq!(decoded.settlement, a.settlement);
    assert_eq!(decoded.settle.request_hash, request_hash);

    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    let event = included.event(hash).expect("UserOperationEvent for the op");
    assert!(event.success, "reverts: {:?}", included.revert_reason_strings());
    assert_eq!(event.sender, account);
    assert_eq!(event.paymaster, a.verifying_paymaster);
    assert_eq!(event.nonce, U256::ZERO);
    assert!(event.actualGasCost > U256::ZERO && event.actualGasUsed > U256::ZERO);
    assert_eq!(included.deployed.len(), 1);
    assert_eq!(included.deployed[0].sender, account);

    let receipts = receipt_logs(&devnet, &included);
    assert_eq!(receipts.len(), 1);
    let r = &receipts[0];
    assert_eq!(
        (r.merchant, r.payer, r.token, r.amount, r.requestHash),
        (merchant, account, a.token, amount, request_hash)
    );
    assert_eq!(devnet.token_balance(merchant).await?, amount);
    assert_eq!(devnet.token_balance(account).await?, U256::from(10 * USD) - amount);
    let settlement = SettlementContract::new(a.settlement, devnet.provider());
    assert!(settlement.isSettled(request_hash).call().await?);

    // Second payment from the now-deployed account; the paymaster nonce has moved on.
    let request_2 = keccak256("x402 request 2");
    let (op, hash) = payment_op(
        &devnet,
        &owner,
        account,
        1,
        Pay { merchant, amount: U256::from(USD), request_hash: request_2 },
    )
    .await?;
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    assert!(included.event(hash).expect("event").success);
    assert_eq!(devnet.token_balance(merchant).await?, amount + U256::from(USD));

    // Replaying a settled requestHash passes validation but reverts in execution.
    let (op, hash) = payment_op(
        &devnet,
        &owner,
        account,
        2,
        Pay { merchant, amount: U256::from(USD), request_hash: request_2 },
    )
    .await?;
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    assert!(!included.event(hash).expect("event").success);
    assert_eq!(included.revert_reasons.len(), 1);
    let expected = SettlementContract::AlreadySettled { requestHash: request_2 };
    assert_eq!(
        included.revert_reasons[0].revertReason,
        alloy::sol_types::SolError::abi_encode(&expected)
    );
    assert_eq!(devnet.token_balance(merchant).await?, amount + U256::from(USD));
    Ok(())
}

#[tokio::test]
async fn validation_failures_are_decoded_failed_ops() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let owner = devnet.keys.spare[0].clone();
    let stranger = devnet.keys.spare[2].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();
    let account = devnet.simple_account_address(owner.address(), U256::ZERO).await?;
    devnet.mint(account, U256::from(10 * USD)).await?;
    let request = keccak256("r");

    // Signed by someone other than the owner.
    let (mut op, _) = payment_op(
        &devnet,
        &owner,
        account,
        0,
        Pay { merchant, amount: U256::from(USD), request_hash: request },
    )
    .await?;
    devnet.sign_as_owner(&mut op, &stranger).await?;
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA24 signature error")));

    // Paymaster data signed by the wrong key.
    let (mut op, _) = payment_op(
        &devnet,
        &owner,
        account,
        0,
        Pay { merchant, amount: U256::from(USD), request_hash: request },
    )
    .await?;
    let mut pnd = op.paymaster_and_data.to_vec();
    pnd[84..].copy_from_slice(
        &alloy::signers::Signer::sign_message(&stranger, B256::ZERO.as_slice()).await?.as_bytes(),
    );
    op.paymaster_and_data = pnd.into();
    devnet.sign_as_owner(&mut op, &owner).await?;
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA34 signature error")));

    // Paymaster approval that has expired.
    let mut op = op_template(account);
    op.init_code = devnet.simple_account_init_code(owner.address(), U256::ZERO);
    op.call_data = encode_payment_batch(
        devnet.addresses.token,
        devnet.addresses.settlement,
        merchant,
        U256::from(USD),
        request,
    );
    let now = devnet.block_timestamp().await?;
    op.paymaster_and_data = devnet.paymaster_and_data(&op, now - 1, 0).await?;
    devnet.sign_as_owner(&mut op, &owner).await?;
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA32 paymaster expired or not due")));

    // Nothing moved.
    assert_eq!(devnet.token_balance(merchant).await?, U256::ZERO);
    Ok(())
}

/// `paymaster_and_data` asks the contract for the hash; this pins the layout it signs so a
/// reader can see the VerifyingPaymaster's calldata-slice hashing reproduced off-chain.
#[tokio::test]
async fn paymaster_hash_layout_matches_contract() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let mut op = op_template(devnet.keys.spare[3].address());
    op.call_data = encode_payment_batch(a.token, a.settlement, a.token, U256::from(1), B256::ZERO);
    let (until, after) = (1_900_000_000u64, 1_700_000_000u64);
    let pnd = devnet.paymaster_and_data(&op, until, after).await?;
    assert_eq!(pnd.len(), 20 + 64 + 65);
    assert_eq!(&pnd[..20], a.verifying_paymaster.as_slice());

    // pack(op): the op's ABI tuple encoding up to (not including) paymasterAndData's length word.
    let mut probe = op.clone();
    probe.paymaster_and_data = pnd.clone();
    let sol_op = x402_aa::entry_point::UserOperation::from(probe.clone());
    let tuple = (sol_op,).abi_encode_params();
    let body = &tuple[32..]; // skip the outer offset to the dynamic tuple
    let pnd_offset = U256::from_be_slice(&body[9 * 32..10 * 32]).to::<usize>();
    let packed = &body[..pnd_offset];
    let ours = keccak256(
        (
            alloy::primitives::Bytes::copy_from_slice(packed),
            U256::from(devnet.chain_id()),
            a.verifying_paymaster,
            U256::ZERO, // senderNonce
            alloy::primitives::aliases::U48::from(until),
            alloy::primitives::aliases::U48::from(after),
        )
            .abi_encode_params(),
    );
    let chain = VerifyingPaymaster::new(a.verifying_paymaster, devnet.provider())
        .getHash(
            probe.into(),
            alloy::primitives::aliases::U48::from(until),
            alloy::primitives::aliases::U48::from(after),
        )
        .call()
        .await?;
    assert_eq!(ours, chain);
    Ok(())
}
