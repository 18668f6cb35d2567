//! Biconomy Smart Account v2 on the devnet: the deployment holds the committed bytecode, and an
//! owner-signed aa-native payment from a counterfactual Biconomy account goes through the real
//! EntryPoint, encoded by `x402_aa::accounts::biconomy`.

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256, utils::parse_ether},
    providers::Provider,
    signers::{Signer, local::PrivateKeySigner},
    sol_types::{SolCall, SolEvent},
};
use x402_aa::{
    CallDataError, CallSite, ENTRY_POINT_V06, UserOperation,
    accounts::biconomy::{self, PROXY_CREATION_CODE, PaymentError},
};
use x402_aa_contracts::{EntryPoint, SettlementContract};
use x402_aa_devnet::{
    Devnet,
    biconomy::{
        BiconomyAccountFactory, BiconomyContract, BiconomySmartAccount,
        EcdsaOwnershipRegistryModule, SessionKeyManager,
    },
};

use crate::common::{USD, op_template};

/// Runtime code with every 32-byte word holding one of `immutables` zeroed: solc's
/// `deployedBytecode` leaves immutables as zero words, and the constructor fills them in.
fn mask_immutables(code: &[u8], immutables: &[Address]) -> Vec<u8> {
    let mut out = code.to_vec();
    for word in immutables.iter().map(|a| a.into_word()) {
        let mut i = 0;
        while i + 32 <= out.len() {
            if out[i..i + 32] == word[..] {
                out[i..i + 32].fill(0);
                i += 32;
            } else {
                i += 1;
            }
        }
    }
    out
}

#[tokio::test]
async fn biconomy_contracts_hold_the_committed_code() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let b = devnet.biconomy;
    let p = devnet.provider();

    // Runtime code equals the committed artifact's, immutables aside.
    for (contract, address, immutables) in [
        (BiconomyContract::SmartAccount, b.implementation, vec![ENTRY_POINT_V06, b.implementation]),
        (
            BiconomyContract::SmartAccountFactory,
            b.factory,
            vec![b.implementation, b.default_handler],
        ),
        (BiconomyContract::EcdsaOwnershipRegistryModule, b.ecdsa_module, vec![]),
        (BiconomyContract::SessionKeyManager, b.session_key_manager, vec![]),
        (BiconomyContract::Erc20SessionValidationModule, b.erc20_session_module, vec![]),
    ] {
        let code = p.get_code_at(address).await?;
        let expected = contract.artifact().deployed_bytecode;
        assert_eq!(
            Bytes::from(mask_immutables(&code, &immutables)),
            expected,
            "{} at {address}",
            contract.name()
        );
    }
    assert!(!p.get_code_at(b.default_handler).await?.is_empty());

    let account = BiconomySmartAccount::new(b.implementation, p);
    assert_eq!(account.VERSION().call().await?, "2.0.0");
    assert_eq!(account.entryPoint().call().await?, ENTRY_POINT_V06);

    let factory = BiconomyAccountFactory::new(b.factory, p);
    assert_eq!(factory.basicImplementation().call().await?, b.implementation);
    assert_eq!(factory.minimalHandler().call().await?, b.default_handler);
    assert_eq!(factory.owner().call().await?, devnet.keys.deployer.address());
    assert_eq!(factory.accountCreationCode().call().await?.as_ref(), PROXY_CREATION_CODE);
    let stake = EntryPoint::new(ENTRY_POINT_V06, p).getDepositInfo(b.factory).call().await?;
    assert!(stake.staked);
    assert_eq!(U256::from(stake.stake), parse_ether("0.1")?);
    assert_eq!(stake.unstakeDelaySec, 86_400);

    let module = EcdsaOwnershipRegistryModule::new(b.ecdsa_module, p);
    assert_eq!(module.NAME().call().await?, "ECDSA Ownership Registry Module");
    let skm = SessionKeyManager::new(b.session_key_manager, p);
    assert_eq!(skm.getSessionKeys(Address::ZERO).call().await?.merkleRoot, B256::ZERO);

    // Our session module: the committed artifact at its CREATE2 address, bound to this ECDSA module.
    let art = x402_aa_contracts::project_artifact("BiconomySessionModule")?;
    let code = p.get_code_at(b.session_module).await?;
    assert_eq!(Bytes::from(mask_immutables(&code, &[b.ecdsa_module])), art.deployed_bytecode);
    let init = [art.bytecode.as_ref(), &b.ecdsa_module.into_word()[..]].concat();
    assert_eq!(
        b.session_module,
        alloy::primitives::address!("0x4e59b44847b379578588920ca78fbf26c0b4956c")
            .create2_from_code(B256::ZERO, &init)
    );
    let session_module = x402_aa_contracts::BiconomySessionModule::new(b.session_module, p);
    assert_eq!(session_module.ECDSA_MODULE().call().await?, b.ecdsa_module);

    // The off-chain counterfactual address is the factory's.
    let deployment = b.deployment();
    for (owner, index) in [
        (devnet.keys.spare[0].address(), U256::ZERO),
        (devnet.keys.spare[0].address(), U256::from(1)),
        (devnet.keys.spare[5].address(), U256::from(u64::MAX)),
    ] {
        assert_eq!(
            deployment.account_address(owner, index),
            devnet.biconomy_account_address(owner, index).await?,
            "owner {owner} index {index}"
        );
    }
    Ok(())
}

fn settlement_receipts(devnet: &Devnet, logs: &[alloy::rpc::types::Log]) -> usize {
    logs.iter()
        .filter(|l| l.address() == devnet.addresses.settlement)
        .filter(|l| SettlementContract::ReceiptLog::decode_log(&l.inner).is_ok())
        .count()
}

/// A sponsored payment op from `owner`'s Biconomy account 0; `nonce == 0` also deploys it.
async fn payment_op(
    devnet: &Devnet,
    owner: &PrivateKeySigner,
    account: Address,
    nonce: u64,
    merchant: Address,
    amount: U256,
    request_hash: B256,
) -> anyhow::Result<(UserOperation, B256)> {
    let a = devnet.addresses;
    let mut op = op_template(account);
    op.nonce = U256::from(nonce);
    if nonce == 0 {
        op.init_code = devnet.biconomy_init_code(owner.address(), U256::ZERO);
    }
    op.call_data =
        biconomy::encode_payment_batch(a.token, a.settlement, merchant, amount, request_hash);
    let now = devnet.block_timestamp().await?;
    op.paymaster_and_data = devnet.paymaster_and_data(&op, now + 600, 0).await?;
    let hash = devnet.sign_as_biconomy_owner(&mut op, owner).await?;
    Ok((op, hash))
}

#[tokio::test]
async fn owner_signed_payment_from_counterfactual_biconomy_account() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let b = devnet.biconomy;
    let owner = devnet.keys.spare[0].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();

    let account = devnet.biconomy_account_address(owner.address(), U256::ZERO).await?;
    assert!(devnet.provider().get_code_at(account).await?.is_empty());
    devnet.mint(account, U256::from(10 * USD)).await?;
    let amount = U256::from(1_500_000);
    let request_hash = keccak256("biconomy request 1");

    let (op, hash) =
        payment_op(&devnet, &owner, account, 0, merchant, amount, request_hash).await?;
    // What a facilitator reads from the op.
    let decoded = biconomy::decode_payment(&op.call_data)?;
    assert_eq!(decoded.settlement, a.settlement);
    assert_eq!(
        (decoded.settle.merchant, decoded.settle.token, decoded.settle.amount),
        (merchant, a.token, amount)
    );
    assert_eq!(decoded.settle.request_hash, request_hash);
    let envelope = biconomy::decode_signature(&op.signature)?;
    assert_eq!(envelope.validation_module, b.ecdsa_module);
    let recovered = alloy::primitives::Signature::try_from(envelope.module_signature.as_ref())?
        .recover_address_from_prehash(&biconomy::ecdsa_digest(hash))?;
    assert_eq!(recovered, owner.address());

    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    let event = included.event(hash).expect("UserOperationEvent for the op");
    assert!(event.success, "reverts: {:?}", included.revert_reason_strings());
    assert_eq!(event.sender, account);
    assert_eq!(event.paymaster, a.verifying_paymaster);
    assert_eq!(included.deployed.len(), 1);
    assert_eq!(included.deployed[0].factory, b.factory);
    eprintln!("Biconomy v2 first payment (deploys the account): {} gas", event.actualGasUsed);

    assert_eq!(settlement_receipts(&devnet, included.receipt.inner.logs()), 1);
    assert_eq!(devnet.token_balance(merchant).await?, amount);
    assert_eq!(devnet.token_balance(account).await?, U256::from(10 * USD) - amount);
    let settlement = SettlementContract::new(a.settlement, devnet.provider());
    assert!(settlement.isSettled(request_hash).call().await?);

    // The account came up as the factory promised: ECDSA module enabled, owner registered.
    let p = devnet.provider();
    let smart_account = BiconomySmartAccount::new(account, p);
    assert!(smart_account.isModuleEnabled(b.ecdsa_module).call().await?);
    assert!(!smart_account.isModuleEnabled(b.session_key_manager).call().await?);
    assert_eq!(smart_account.getImplementation().call().await?, b.implementation);
    assert_eq!(smart_account.getFallbackHandler().call().await?, b.default_handler);
    let module = EcdsaOwnershipRegistryModule::new(b.ecdsa_module, p);
    assert_eq!(module.getOwner(account).call().await?, owner.address());

    // Second payment from the deployed account.
    let request_2 = keccak256("biconomy request 2");
    let (op, hash) =
        payment_op(&devnet, &owner, account, 1, merchant, U256::from(USD), request_2).await?;
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    let event = included.event(hash).expect("event");
    assert!(event.success, "reverts: {:?}", included.revert_reason_strings());
    eprintln!("Biconomy v2 payment from a deployed account: {} gas", event.actualGasUsed);
    assert_eq!(devnet.token_balance(merchant).await?, amount + U256::from(USD));
    Ok(())
}

#[tokio::test]
async fn biconomy_refuses_bad_signatures_and_non_payments() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let b = devnet.biconomy;
    let owner = devnet.keys.spare[0].clone();
    let stranger = devnet.keys.spare[2].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();
    let account = devnet.biconomy_account_address(owner.address(), U256::ZERO).await?;
    devnet.mint(account, U256::from(10 * USD)).await?;
    let request = keccak256("r");
    let fresh_op = || payment_op(&devnet, &owner, account, 0, merchant, U256::from(USD), request);

    // Signed by someone other than the registered owner: the module answers
    // SIG_VALIDATION_FAILED.
    let (mut op, _) = fresh_op().await?;
    let hash = devnet.user_op_hash(&op);
    let sig = stranger.sign_message(hash.as_slice()).await?;
    op.signature = biconomy::encode_signature(&sig.as_bytes(), b.ecdsa_module);
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA24 signature error")));

    // The owner's signature naming a module the account has not enabled: the account reverts
    // WrongValidationModule, which the EntryPoint v0.6 reports without its data.
    let (mut op, _) = fresh_op().await?;
    let hash = devnet.user_op_hash(&op);
    let sig = owner.sign_message(hash.as_slice()).await?;
    op.signature = biconomy::encode_signature(&sig.as_bytes(), b.session_key_manager);
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA23 reverted (or OOG)")));

    // SimpleAccount's bare 65-byte signature is not Biconomy's envelope.
    let (mut op, _) = fresh_op().await?;
    devnet.sign_as_owner(&mut op, &owner).await?;
    assert!(matches!(
        biconomy::decode_signature(&op.signature),
        Err(biconomy::SignatureError::Malformed(_))
    ));
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA23 reverted (or OOG)")));

    // Owner-signed but not a payment: the owner may do anything with the account, so the chain
    // would accept it; the decoder refuses it with a reason.
    let transfer = x402_aa_contracts::TestStablecoin::transferCall {
        to: stranger.address(),
        value: U256::from(USD),
    }
    .abi_encode();
    let call_data =
        biconomy::execute_ncCCall { dest: a.token, value: U256::ZERO, func: transfer.into() }
            .abi_encode();
    assert!(matches!(
        biconomy::decode_payment(&call_data),
        Err(PaymentError::Shape(CallDataError::UnknownSelector { at: CallSite::Execute, .. }))
    ));
    let set_root = SessionKeyManager::setMerkleRootCall { _merkleRoot: B256::repeat_byte(1) };
    let call_data = biconomy::executeBatch_y6UCall {
        dest: vec![b.session_key_manager],
        value: vec![U256::ZERO],
        func: vec![set_root.abi_encode().into()],
    }
    .abi_encode();
    assert!(matches!(
        biconomy::decode_payment(&call_data),
        Err(PaymentError::Shape(CallDataError::UnknownSelector { at: CallSite::Batch(0), .. }))
    ));

    // Nothing moved, nothing deployed.
    assert_eq!(devnet.token_balance(merchant).await?, U256::ZERO);
    assert!(devnet.provider().get_code_at(account).await?.is_empty());
    Ok(())
}
