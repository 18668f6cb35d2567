//! Safe 1.4.1 + Safe4337Module v0.2.0 on the devnet: canonical deployments, and owner-signed
//! aa-native payments from counterfactual Safes through the real EntryPoint v0.6.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, aliases::U48, keccak256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolCall,
};
use x402_aa::{
    CallDataError, UserOperation,
    accounts::safe::{
        ExecFunction, ISafe, ISafe4337Module, ISafeProxyFactory, OwnerSignature,
        SAFE_PROXY_CREATION_CODE, SAFE_SINGLETON_FACTORY, SafeCallDataError, SafeConfig,
        SafeDeployment, Validity, encode_signature,
    },
    encode_approve, encode_payment_batch,
};
use x402_aa_devnet::Devnet;

use crate::common::{USD, op_template};

/// `keccak256("fallback_manager.handler.address")`, Safe's fallback handler slot.
const FALLBACK_HANDLER_SLOT: B256 =
    alloy::primitives::b256!("0x6c9a6c4a39284e37ed1cf53d337577d14212a4870fb976a4366c693b939918d5");

/// An `eth_call` of a view through the `sol!` types of `x402_aa`, which has no RPC bindings.
async fn view<C: SolCall>(devnet: &Devnet, to: Address, call: C) -> anyhow::Result<C::Return> {
    let tx = TransactionRequest::default().with_to(to).with_input(call.abi_encode());
    Ok(C::abi_decode_returns(&devnet.provider().call(tx).await?)?)
}

fn npm_file(path: &str) -> anyhow::Result<String> {
    let dir = x402_aa_contracts::node_modules_dir()?;
    Ok(std::fs::read_to_string(dir.join(path))?)
}

/// The `"key": "value"` string following `after` in a pretty-printed npm JSON file.
fn field_after<'a>(text: &'a str, after: &str, key: &str) -> Option<&'a str> {
    let rest = text.split_once(after)?.1;
    let rest = rest.split_once(&format!("\"{key}\": \""))?.1;
    Some(rest.split_once('"')?.0)
}

/// Owners sign the module's EIP-712 SafeOp hash with plain ECDSA; the envelope sorts them.
fn sign(
    safe: &SafeDeployment,
    devnet: &Devnet,
    op: &mut UserOperation,
    validity: Validity,
    owners: &[&PrivateKeySigner],
) -> anyhow::Result<B256> {
    let hash = safe.operation_hash(op, validity, devnet.chain_id());
    let signatures = owners
        .iter()
        .map(|o| Ok(OwnerSignature { owner: o.address(), signature: o.sign_hash_sync(&hash)? }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    op.signature = encode_signature(validity, &signatures)?;
    Ok(hash)
}

#[tokio::test]
async fn safe_contracts_at_canonical_addresses() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let safe = devnet.safe;
    assert_eq!(safe, SafeDeployment::CANONICAL);
    let p = devnet.provider();

    assert!(!p.get_code_at(SAFE_SINGLETON_FACTORY).await?.is_empty());

    // Address and runtime code hash as `@safe-global/safe-deployments` publishes them.
    for (file, address) in [
        ("safe.json", safe.singleton),
        ("safe_proxy_factory.json", safe.proxy_factory),
        ("multi_send.json", safe.multi_send),
        ("multi_send_call_only.json", safe.multi_send_call_only),
        ("compatibility_fallback_handler.json", safe.fallback_handler),
    ] {
        let text = npm_file(&format!("@safe-global/safe-deployments/src/assets/v1.4.1/{file}"))?;
        let published: Address = field_after(&text, "\"canonical\"", "address").unwrap().parse()?;
        let code_hash: B256 = field_after(&text, "\"canonical\"", "codeHash").unwrap().parse()?;
        assert_eq!(address, published, "{file}");
        assert_eq!(keccak256(p.get_code_at(address).await?), code_hash, "{file}");
    }

    // No code hash is published for the module release; its addresses are, and CREATE2 ties
    // them to the exact creation code (see contracts/vendor/safe4337-v0.2.0/PROVENANCE.md).
    for (file, address) in
        [("safe-4337-module.json", safe.module), ("add-modules-lib.json", safe.add_modules_lib)]
    {
        let text = npm_file(&format!(
            "@safe-global/safe-modules-deployments/src/assets/safe-4337-module/v0.2.0/{file}"
        ))?;
        let published: Address =
            field_after(&text, "\"networkAddresses\"", "1").unwrap().parse()?;
        assert_eq!(address, published, "{file}");
        assert!(!p.get_code_at(address).await?.is_empty(), "{file}");
    }
    let entry_point =
        view(&devnet, safe.module, ISafe4337Module::SUPPORTED_ENTRYPOINTCall {}).await?;
    assert_eq!(entry_point, x402_aa::ENTRY_POINT_V06);

    // The pinned proxy creation code is the factory's, so counterfactual addresses need no read.
    let code =
        view(&devnet, safe.proxy_factory, ISafeProxyFactory::proxyCreationCodeCall {}).await?;
    assert_eq!(code, Bytes::from_static(SAFE_PROXY_CREATION_CODE));
    Ok(())
}

/// The first op deploys the Safe through initCode, enables the module, and pays; the Safe pays
/// its own prefund through the module (`missingAccountFunds`).
#[tokio::test]
async fn owner_payment_from_counterfactual_one_of_one_safe() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let (a, safe, p) = (devnet.addresses, devnet.safe, devnet.provider());
    let owner = devnet.keys.spare[0].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();

    let config = SafeConfig::single_owner(owner.address(), U256::from(7));
    let sender = safe.account_address(&config)?;
    assert!(p.get_code_at(sender).await?.is_empty());
    devnet.mint(sender, U256::from(10 * USD)).await?;
    devnet.fund(sender, U256::from(10u64.pow(17))).await?;

    let amount = U256::from(2 * USD);
    let request_hash = keccak256("safe request 1");
    let mut op = op_template(sender);
    op.init_code = safe.init_code(&config)?;
    op.call_data = safe.encode_payment_batch(a.token, a.settlement, merchant, amount, request_hash);
    let validity = Validity::default();
    let safe_op_hash = sign(&safe, &devnet, &mut op, validity, &[&owner])?;

    // The facilitator's view: the callData is exactly approve + settle.
    let decoded = safe.decode_payment(&op.call_data)?;
    assert_eq!(decoded.payment.settlement, a.settlement);
    assert_eq!(
        (decoded.payment.settle.merchant, decoded.payment.settle.amount),
        (merchant, amount)
    );
    assert_eq!(decoded.exec, ExecFunction::ExecuteUserOpWithErrorString);
    assert_eq!(decoded.multi_send, Some(safe.multi_send_call_only));

    // The module's own view agrees with the Rust SafeOp hash (golden vector).
    let get_hash = |op: &UserOperation| ISafe4337Module::getOperationHashCall { userOp: op.into() };
    assert_eq!(view(&devnet, safe.module, get_hash(&op)).await?, safe_op_hash);

    let user_op_hash = devnet.user_op_hash(&op);
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    let event = included.event(user_op_hash).expect("UserOperationEvent");
    assert!(event.success, "reverts: {:?}", included.revert_reason_strings());
    assert_eq!(event.paymaster, Address::ZERO);
    assert_eq!(included.deployed.len(), 1);
    assert_eq!(included.deployed[0].sender, sender);
    assert_eq!(devnet.token_balance(merchant).await?, amount);
    assert_eq!(devnet.token_balance(sender).await?, U256::from(8 * USD));

    // The Safe is the one the config describes.
    assert_eq!(view(&devnet, sender, ISafe::getOwnersCall {}).await?, vec![owner.address()]);
    assert_eq!(view(&devnet, sender, ISafe::getThresholdCall {}).await?, U256::from(1));
    let enabled = ISafe::isModuleEnabledCall { module: safe.module };
    assert!(view(&devnet, sender, enabled).await?);
    let handler = p.get_storage_at(sender, FALLBACK_HANDLER_SLOT.into()).await?;
    assert_eq!(Address::from_word(handler.into()), safe.module);

    // Second payment from the deployed Safe, with a validity window, through executeUserOp.
    let request_2 = keccak256("safe request 2");
    let mut op = op_template(sender);
    op.nonce = U256::from(1);
    op.call_data =
        safe.encode_payment_batch(a.token, a.settlement, merchant, U256::from(USD), request_2);
    let now = devnet.block_timestamp().await?;
    let validity = Validity { valid_after: U48::from(now - 10), valid_until: U48::from(now + 600) };
    let safe_op_hash = sign(&safe, &devnet, &mut op, validity, &[&owner])?;
    assert_eq!(view(&devnet, safe.module, get_hash(&op)).await?, safe_op_hash);
    let user_op_hash = devnet.user_op_hash(&op);
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    assert!(included.event(user_op_hash).expect("event").success);
    assert_eq!(devnet.token_balance(merchant).await?, amount + U256::from(USD));

    // Replaying a settled requestHash: validation passes, execution reverts. MultiSend reverts
    // without data when an entry fails, so the batch shape carries no reason...
    let mut op = op_template(sender);
    op.nonce = U256::from(2);
    op.call_data =
        safe.encode_payment_batch(a.token, a.settlement, merchant, U256::from(USD), request_2);
    sign(&safe, &devnet, &mut op, Validity::default(), &[&owner])?;
    let user_op_hash = devnet.user_op_hash(&op);
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    assert!(!included.event(user_op_hash).expect("event").success);
    assert!(included.revert_reasons.is_empty());

    // ...while the single-call shape through executeUserOpWithErrorString surfaces the
    // settlement's own error in the EntryPoint's UserOperationRevertReason.
    let mut op = op_template(sender);
    op.nonce = U256::from(3);
    let settle = x402_aa::SettleCall {
        merchant,
        token: a.token,
        amount: U256::from(USD),
        request_hash: request_2,
    };
    op.call_data = safe.encode_payment_execute(a.settlement, &settle);
    sign(&safe, &devnet, &mut op, Validity::default(), &[&owner])?;
    let user_op_hash = devnet.user_op_hash(&op);
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    assert!(!included.event(user_op_hash).expect("event").success);
    let expected = x402_aa_contracts::SettlementContract::AlreadySettled { requestHash: request_2 };
    assert_eq!(
        included.revert_reasons[0].revertReason,
        alloy::sol_types::SolError::abi_encode(&expected)
    );
    assert_eq!(devnet.token_balance(merchant).await?, amount + U256::from(USD));
    Ok(())
}

/// A 2-of-3 Safe sponsored by the VerifyingPaymaster: two owners' signatures, given out of
/// address order, pay; one is refused.
#[tokio::test]
async fn owner_payment_from_two_of_three_safe() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let (a, safe) = (devnet.addresses, devnet.safe);
    let owners: Vec<PrivateKeySigner> = devnet.keys.spare[2..5].to_vec();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();

    let config = SafeConfig {
        owners: owners.iter().map(|o| o.address()).collect(),
        threshold: 2,
        salt_nonce: U256::ZERO,
    };
    let sender = safe.account_address(&config)?;
    devnet.mint(sender, U256::from(5 * USD)).await?;

    let build = |request: &str| -> anyhow::Result<UserOperation> {
        let mut op = op_template(sender);
        op.init_code = safe.init_code(&config)?;
        op.call_data = safe.encode_payment_batch(
            a.token,
            a.settlement,
            merchant,
            U256::from(USD),
            keccak256(request),
        );
        Ok(op)
    };
    let now = devnet.block_timestamp().await?;
    let validity = Validity { valid_after: U48::ZERO, valid_until: U48::from(now + 600) };

    // One owner is below the threshold: the module reports a signature failure.
    let mut op = build("two of three")?;
    op.paymaster_and_data = devnet.paymaster_and_data(&op, now + 600, 0).await?;
    sign(&safe, &devnet, &mut op, validity, &[&owners[1]])?;
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA24 signature error")));

    // Owners 2 and 0, in that order: the envelope sorts them by address.
    let mut op = build("two of three")?;
    op.paymaster_and_data = devnet.paymaster_and_data(&op, now + 600, 0).await?;
    let safe_op_hash = sign(&safe, &devnet, &mut op, validity, &[&owners[2], &owners[0]])?;
    let get_hash = ISafe4337Module::getOperationHashCall { userOp: (&op).into() };
    assert_eq!(view(&devnet, safe.module, get_hash).await?, safe_op_hash);
    let user_op_hash = devnet.user_op_hash(&op);
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    let event = included.event(user_op_hash).expect("event");
    assert!(event.success, "reverts: {:?}", included.revert_reason_strings());
    assert_eq!(event.paymaster, a.verifying_paymaster);
    assert_eq!(devnet.token_balance(merchant).await?, U256::from(USD));

    assert_eq!(view(&devnet, sender, ISafe::getThresholdCall {}).await?, U256::from(2));
    assert_eq!(view(&devnet, sender, ISafe::getOwnersCall {}).await?, config.owners);
    Ok(())
}

/// Refusals: by the chain for signatures and entry points, by the decoder for callData that
/// the module would execute but that is not a payment.
#[tokio::test]
async fn bad_signatures_and_non_payment_call_data_are_refused() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let (a, safe) = (devnet.addresses, devnet.safe);
    let owner = devnet.keys.spare[0].clone();
    let stranger = devnet.keys.spare[5].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();
    let config = SafeConfig::single_owner(owner.address(), U256::ZERO);
    let sender = safe.account_address(&config)?;
    devnet.mint(sender, U256::from(5 * USD)).await?;
    devnet.fund(sender, U256::from(10u64.pow(17))).await?;

    let payment = |op: &mut UserOperation| {
        op.init_code = safe.init_code(&config).expect("valid config");
        op.call_data = safe.encode_payment_batch(
            a.token,
            a.settlement,
            merchant,
            U256::from(USD),
            keccak256("r"),
        );
    };

    // Signed by a non-owner.
    let mut op = op_template(sender);
    payment(&mut op);
    sign(&safe, &devnet, &mut op, Validity::default(), &[&stranger])?;
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA24 signature error")));

    // The owner's signature over a different validity window than the envelope claims.
    let mut op = op_template(sender);
    payment(&mut op);
    sign(&safe, &devnet, &mut op, Validity::default(), &[&owner])?;
    let mut sig = op.signature.to_vec();
    sig[11] = 1; // validUntil = 1
    op.signature = sig.into();
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA24 signature error")));

    // An envelope too short for the validity window: the module's slice reverts.
    let mut op = op_template(sender);
    payment(&mut op);
    op.signature = Bytes::from_static(&[0u8; 11]);
    let (_, reason) = devnet
        .handle_ops(&[op], bundler)
        .await?
        .failed_op()
        .map(|(i, r)| (i, r.to_owned()))
        .expect("refused");
    assert!(reason.starts_with("AA23 reverted"), "{reason}");

    // SimpleAccount's executeBatch is not an entry point the module admits.
    let mut op = op_template(sender);
    op.init_code = safe.init_code(&config)?;
    op.call_data =
        encode_payment_batch(a.token, a.settlement, merchant, U256::from(USD), keccak256("r"));
    sign(&safe, &devnet, &mut op, Validity::default(), &[&owner])?;
    assert!(matches!(
        safe.decode_payment(&op.call_data),
        Err(SafeCallDataError::UnknownSelector { .. })
    ));
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(
        outcome.failed_op(),
        Some((U256::ZERO, "AA23 reverted: Unsupported execution function id"))
    );

    // A plain token transfer through executeUserOp is a valid owner op on chain, but it is not
    // a payment: the decoder names why, the chain executes it.
    // ERC-20 `transfer(address,uint256)`.
    let mut data = alloy::primitives::hex!("a9059cbb").to_vec();
    data.extend(alloy::sol_types::SolValue::abi_encode(&(merchant, U256::from(USD))));
    let call_data: Bytes = ISafe4337Module::executeUserOpCall {
        to: a.token,
        value: U256::ZERO,
        data: data.into(),
        operation: 0,
    }
    .abi_encode()
    .into();
    let err = safe.decode_payment(&call_data).unwrap_err();
    assert!(
        matches!(err, SafeCallDataError::Payment(CallDataError::UnknownSelector { .. })),
        "{err:?}"
    );
    let mut op = op_template(sender);
    op.init_code = safe.init_code(&config)?;
    op.call_data = call_data;
    sign(&safe, &devnet, &mut op, Validity::default(), &[&owner])?;
    let hash = devnet.user_op_hash(&op);
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    assert!(included.event(hash).expect("event").success);
    assert_eq!(devnet.token_balance(merchant).await?, U256::from(USD));

    // Approve to a different spender, sent through executeUserOp with a delegatecall to a
    // non-MultiSend target: both named without touching the chain.
    let data: Bytes = ISafe4337Module::executeUserOpCall {
        to: a.settlement,
        value: U256::ZERO,
        data: encode_approve(merchant, U256::from(USD)),
        operation: 1,
    }
    .abi_encode()
    .into();
    assert!(matches!(
        safe.decode_payment(&data),
        Err(SafeCallDataError::DelegateCallTarget { to }) if to == a.settlement
    ));
    Ok(())
}

/// Session keys on a Safe through the devnet's `SafeSessionModule`, with `x402_aa`'s Safe session
/// encodings only: a counterfactual 1-of-1 Safe born with sessions (`init_code_with_session_module`)
/// whose first op is a session op that deploys it, enables the grant and pays; a second payment in
/// use mode; then an owner op, forwarded to Safe4337Module, still pays.
#[tokio::test]
async fn session_payment_from_counterfactual_safe_with_session_module() -> anyhow::Result<()> {
    use alloy::{
        primitives::aliases::U96,
        sol_types::{SolStruct, SolValue, eip712_domain},
    };
    use x402_aa::accounts::safe::session::{
        decode_session_payment, encode_session_payment, session_signature,
    };
    use x402_aa_contracts::{SafeSessionModule, SessionGrant};

    let devnet = Devnet::spawn().await?;
    let (a, safe, p) = (devnet.addresses, devnet.safe, devnet.provider());
    let module = a.safe_session_module;
    let m = SafeSessionModule::new(module, p);
    assert_eq!(m.ENTRY_POINT().call().await?, x402_aa::ENTRY_POINT_V06);
    assert_eq!(m.SAFE_4337_MODULE().call().await?, safe.module);
    let owner = devnet.keys.spare[0].clone();
    let session_key = devnet.keys.spare[5].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();

    let config = SafeConfig::single_owner(owner.address(), U256::from(11));
    let sender = safe.account_address_with_session_module(&config, module)?;
    assert_ne!(sender, safe.account_address(&config)?);
    devnet.mint(sender, U256::from(10 * USD)).await?;
    devnet.fund(sender, U256::from(10u64.pow(17))).await?;

    let now = devnet.block_timestamp().await?;
    let grant = SessionGrant {
        sessionKey: session_key.address(),
        validAfter: U48::from(now - 10),
        validUntil: U48::from(now + 3600),
        token: a.token,
        settlement: a.settlement,
        perPaymentMax: U96::from(2 * USD),
        periodCap: U96::from(3 * USD),
        lifetimeCap: U96::from(3 * USD),
        maxGasCostPerOp: U96::from(10u64.pow(16)),
        gasPeriodBudget: U96::from(10u64.pow(17)),
        gasLifetimeBudget: U96::from(10u64.pow(17)),
        salt: keccak256("safe session"),
        ..Default::default()
    };
    let domain = eip712_domain! {
        name: "X402SessionAccount", version: "1", chain_id: devnet.chain_id(), verifying_contract: sender,
    };
    let id = grant.eip712_signing_hash(&domain);
    let packed = m.encodeGrant(grant.clone()).call().await?;

    // A session op's signature: mode ‖ packed grant ‖ period ‖ session key sig [‖ owner sig over id].
    let sign_session = |op: &UserOperation, enable: bool| -> anyhow::Result<Bytes> {
        let hash = devnet.user_op_hash(op);
        let digest = keccak256((hash, id, U256::ZERO).abi_encode_params());
        let mut sig = vec![if enable { 1u8 } else { 2 }];
        sig.extend_from_slice(&packed);
        sig.extend(0u32.to_be_bytes());
        sig.extend(session_key.sign_message_sync(digest.as_slice())?.as_bytes());
        if enable {
            sig.extend(owner.sign_hash_sync(&id)?.as_bytes());
        }
        Ok(session_signature(&sig))
    };

    let mut op = op_template(sender);
    op.init_code = safe.init_code_with_session_module(&config, module)?;
    let settle = x402_aa::SettleCall {
        merchant,
        token: a.token,
        amount: U256::from(2 * USD),
        request_hash: keccak256("safe session 1"),
    };
    op.call_data = encode_session_payment(a.settlement, &settle);
    assert_eq!(decode_session_payment(&op.call_data)?.settle, settle);
    op.signature = sign_session(&op, true)?;
    let user_op_hash = devnet.user_op_hash(&op);
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    let event = included.event(user_op_hash).expect("UserOperationEvent");
    assert!(event.success, "reverts: {:?}", included.revert_reason_strings());
    assert_eq!(devnet.token_balance(merchant).await?, U256::from(2 * USD));
    let state = m.sessionState(sender, id).call().await?;
    assert_eq!((state.status, state.lifetimeSpent), (1, U96::from(2 * USD)));
    let handler = p.get_storage_at(sender, FALLBACK_HANDLER_SLOT.into()).await?;
    assert_eq!(Address::from_word(handler.into()), module);

    // use mode: 2 + 2 > 3 is refused by the EntryPoint with the policy's reason
    let mut op = op_template(sender);
    op.nonce = U256::from(1);
    let over = x402_aa::SettleCall { request_hash: keccak256("safe session 2"), ..settle };
    op.call_data = encode_session_payment(a.settlement, &over);
    op.signature = sign_session(&op, false)?;
    match devnet.handle_ops(&[op], bundler).await? {
        x402_aa_devnet::HandleOpsOutcome::FailedOp(failed) => {
            assert_eq!(failed.reason, "AA23 reverted: session: over period cap");
        }
        other => panic!("over the cap must be refused: {other:?}"),
    }

    // the owner still pays through Safe4337Module (forwarded by the session module)
    let mut op = op_template(sender);
    op.nonce = U256::from(1);
    op.call_data = safe.encode_payment_batch(
        a.token,
        a.settlement,
        merchant,
        U256::from(USD),
        keccak256("safe owner after sessions"),
    );
    sign(&safe, &devnet, &mut op, Validity::default(), &[&owner])?;
    let user_op_hash = devnet.user_op_hash(&op);
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    assert!(included.event(user_op_hash).expect("event").success);
    assert_eq!(devnet.token_balance(merchant).await?, U256::from(3 * USD));
    Ok(())
}
