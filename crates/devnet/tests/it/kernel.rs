//! Kernel v2.4 (ZeroDev) on the devnet: the canonical deployment, and an owner-signed x402
//! payment from a counterfactual Kernel account through the real EntryPoint.

use alloy::{
    contract::SolCallBuilder,
    network::TransactionBuilder,
    node_bindings::Anvil,
    primitives::{Address, B256, Bytes, U256, b256, keccak256, utils::parse_ether},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::{Signer, local::PrivateKeySigner},
    sol_types::{SolCall, SolEvent, SolValue},
};
use x402_aa::{
    ENTRY_POINT_V06, UserOperation,
    accounts::kernel::{
        self, Call, IECDSAValidator, IKernel, IKernelFactory, KernelCallDataError,
        KernelSignatureError, encode_execute, encode_execute_batch, encode_payment_batch,
    },
    call_data::{CallDataError, CallSite},
    encode_approve,
};
use x402_aa_contracts::{EntryPoint, SettlementContract};
use x402_aa_devnet::{
    DEFAULT_CHAIN_ID, Devnet, Included,
    kernel::{
        KERNEL_FACTORY_OWNER, KERNEL_FACTORY_STAKE, KERNEL_FACTORY_UNSTAKE_DELAY, KERNEL_SALT,
        KERNEL_VENDORED, KernelAddresses,
    },
};

use crate::common::{USD, op_template};

/// keccak256 of the runtime code each canonical deployment leaves on a chain with id 31337.
/// Factory and validator have no immutables, so theirs are the same on every chain; Kernel bakes
/// in its own address and the chain id (Solady EIP712), so its hash is this chain's.
const RUNTIME_HASHES_31337: [(&str, B256); 3] = [
    ("KernelFactory", b256!("0x85e5abfdbf53abe55b9b00d6459136985c603dff3d4128ba224c6540ccb58beb")),
    ("ECDSAValidator", b256!("0x9d44e1437ccb39f09b53f72a0c4827199c4c28d7708d2e548e2a565312858748")),
    ("Kernel v2.4", b256!("0xf631c1febfe01abc66981afc4d509d3d1035c729e713c1ea6b722139fa1a64bb")),
];

async fn view<C: SolCall>(devnet: &Devnet, to: Address, call: C) -> anyhow::Result<C::Return> {
    Ok(SolCallBuilder::new_sol(devnet.provider(), &to, &call).call().await?)
}

/// Runs each vendored creation code through the CREATE2 deployer of a pristine anvil (same
/// chain id, nothing else deployed) and returns the runtime code hashes.
async fn runtime_hashes_on_pristine_anvil() -> anyhow::Result<Vec<B256>> {
    let anvil_bin = match std::env::var_os("ANVIL") {
        Some(path) => path.into(),
        None => x402_aa_contracts::node_modules_dir()?.join(".bin").join("anvil"),
    };
    let anvil = Anvil::at(anvil_bin)
        .host("127.0.0.1")
        .port(0u16)
        .chain_id(DEFAULT_CHAIN_ID)
        .args(["--accounts", "1"])
        .try_spawn()?;
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let from = anvil.addresses()[0];
    let deployer = alloy::primitives::address!("0x4e59b44847b379578588920ca78fbf26c0b4956c");
    let mut hashes = Vec::new();
    for c in &KERNEL_VENDORED {
        let mut input = KERNEL_SALT.to_vec();
        input.extend_from_slice(&c.init_code()?);
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(deployer)
            .with_input(input)
            .with_gas_limit(10_000_000);
        let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
        anyhow::ensure!(receipt.status(), "{} deployment reverted", c.name);
        let code = provider.get_code_at(c.address).await?;
        anyhow::ensure!(!code.is_empty(), "{} did not land at {}", c.name, c.address);
        hashes.push(keccak256(&code));
    }
    Ok(hashes)
}

#[tokio::test]
async fn canonical_kernel_deployment() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let k = devnet.kernel();
    assert_eq!(k, KernelAddresses::CANONICAL);
    let p = devnet.provider();

    let pristine = runtime_hashes_on_pristine_anvil().await?;
    let mut hashes = Vec::new();
    for ((c, expected), (name, pinned)) in
        KERNEL_VENDORED.iter().zip(&pristine).zip(RUNTIME_HASHES_31337)
    {
        assert_eq!(c.name, name);
        let code = p.get_code_at(c.address).await?;
        assert!(!code.is_empty(), "{} has no code at {}", c.name, c.address);
        assert_eq!(
            keccak256(&code),
            *expected,
            "{} differs from running its creation code",
            c.name
        );
        hashes.push((c.name, keccak256(&code), pinned));
    }
    for (name, actual, pinned) in hashes {
        assert_eq!(actual, pinned, "{name} differs from the pinned hash");
    }

    // Factory set up as ZeroDev's scripts leave it.
    let factory = k.factory;
    assert!(
        view(
            &devnet,
            factory,
            IKernelFactory::isAllowedImplementationCall { implementation: k.implementation }
        )
        .await?
    );
    assert_eq!(view(&devnet, factory, IKernelFactory::ownerCall {}).await?, KERNEL_FACTORY_OWNER);
    assert_eq!(view(&devnet, factory, IKernelFactory::entryPointCall {}).await?, ENTRY_POINT_V06);
    let info = EntryPoint::new(ENTRY_POINT_V06, p).getDepositInfo(factory).call().await?;
    assert!(info.staked);
    assert_eq!(U256::from(info.stake), KERNEL_FACTORY_STAKE);
    assert_eq!(info.unstakeDelaySec, KERNEL_FACTORY_UNSTAKE_DELAY);

    // The implementation is bound to EntryPoint v0.6 and is v2.4.
    let implementation = k.implementation;
    assert_eq!(view(&devnet, implementation, IKernel::entryPointCall {}).await?, ENTRY_POINT_V06);
    assert_eq!(view(&devnet, implementation, IKernel::versionCall {}).await?, "0.2.4");
    assert_eq!(view(&devnet, implementation, IKernel::nameCall {}).await?, "Kernel");

    // The devnet's own keys kept their nonces: Kernel went in from ZeroDev's deployer address.
    assert_eq!(p.get_transaction_count(KERNEL_FACTORY_OWNER).await?, 5);
    Ok(())
}

/// A sponsored, owner-signed Kernel payment op; `nonce == 0` also deploys the account.
async fn kernel_payment_op(
    devnet: &Devnet,
    owner: &PrivateKeySigner,
    account: Address,
    nonce: u64,
    call_data: Bytes,
) -> anyhow::Result<(UserOperation, B256)> {
    let mut op = op_template(account);
    op.nonce = U256::from(nonce);
    if nonce == 0 {
        op.init_code = devnet.kernel_init_code(owner.address(), U256::ZERO);
    }
    op.call_data = call_data;
    let now = devnet.block_timestamp().await?;
    op.paymaster_and_data = devnet.paymaster_and_data(&op, now + 600, 0).await?;
    let hash = devnet.sign_as_kernel_owner(&mut op, owner).await?;
    Ok((op, hash))
}

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

#[tokio::test]
async fn owner_signed_payment_from_counterfactual_kernel_account() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let owner = devnet.keys.spare[0].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();

    // Counterfactual address: computed off-chain, equal to the factory's view.
    let account = kernel::account_address(owner.address(), U256::ZERO);
    assert_eq!(devnet.kernel_account_address(owner.address(), U256::ZERO).await?, account);
    assert_eq!(
        devnet.kernel_account_address(owner.address(), U256::from(9)).await?,
        kernel::account_address(owner.address(), U256::from(9))
    );
    assert!(devnet.provider().get_code_at(account).await?.is_empty());
    devnet.mint(account, U256::from(10 * USD)).await?;

    let amount = U256::from(1_500_000);
    let request_hash = keccak256("kernel request 1");
    let call_data = encode_payment_batch(a.token, a.settlement, merchant, amount, request_hash);
    let decoded = kernel::decode_payment(&call_data)?;
    assert_eq!((decoded.settlement, decoded.settle.merchant), (a.settlement, merchant));
    assert_eq!((decoded.settle.token, decoded.settle.amount), (a.token, amount));
    assert_eq!(decoded.settle.request_hash, request_hash);
    assert_eq!(
        decoded.approve.map(|ap| (ap.token, ap.spender, ap.amount)),
        Some((a.token, a.settlement, amount))
    );

    let (op, hash) = kernel_payment_op(&devnet, &owner, account, 0, call_data).await?;
    kernel::verify_owner_signature(owner.address(), hash, &op.signature)?;
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    let event = included.event(hash).expect("UserOperationEvent for the op");
    assert!(event.success, "reverts: {:?}", included.revert_reason_strings());
    assert_eq!((event.sender, event.paymaster), (account, a.verifying_paymaster));
    assert_eq!(included.deployed.len(), 1);
    assert_eq!(included.deployed[0].sender, account);
    assert_eq!(included.deployed[0].factory, devnet.kernel().factory);

    let receipts = receipt_logs(&devnet, &included);
    assert_eq!(receipts.len(), 1);
    let r = &receipts[0];
    assert_eq!(
        (r.merchant, r.payer, r.token, r.amount, r.requestHash),
        (merchant, account, a.token, amount, request_hash)
    );
    assert_eq!(devnet.token_balance(merchant).await?, amount);
    assert_eq!(devnet.token_balance(account).await?, U256::from(10 * USD) - amount);

    // The account is a Kernel proxy on v2.4 with the ECDSAValidator holding the owner.
    let k = devnet.kernel();
    assert_eq!(
        view(&devnet, account, IKernel::getDefaultValidatorCall {}).await?,
        k.ecdsa_validator
    );
    assert_eq!(
        view(
            &devnet,
            k.ecdsa_validator,
            IECDSAValidator::ecdsaValidatorStorageCall { kernel: account }
        )
        .await?,
        owner.address()
    );
    let slot = b256!("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");
    let implementation = devnet.provider().get_storage_at(account, slot.into()).await?;
    assert_eq!(Address::from_word(implementation.into()), k.implementation);

    // Second payment from the deployed account: nonce 1, no initCode, no paymaster, so the
    // account pays its own gas (sudo mode forwards missingAccountFunds to the EntryPoint).
    let request_2 = keccak256("kernel request 2");
    let call_data =
        encode_payment_batch(a.token, a.settlement, merchant, U256::from(USD), request_2);
    devnet.fund(account, parse_ether("1")?).await?;
    let mut op = op_template(account);
    op.nonce = U256::from(1);
    op.call_data = call_data;
    let hash = devnet.sign_as_kernel_owner(&mut op, &owner).await?;
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    let event = included.event(hash).expect("event");
    assert!(event.success, "reverts: {:?}", included.revert_reason_strings());
    assert_eq!(event.paymaster, Address::ZERO);
    assert_eq!(devnet.token_balance(merchant).await?, amount + U256::from(USD));
    Ok(())
}

#[tokio::test]
async fn kernel_refusals_are_specific() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let owner = devnet.keys.spare[0].clone();
    let stranger = devnet.keys.spare[2].clone();
    let merchant = devnet.keys.spare[1].address();
    let bundler = devnet.keys.bundler.address();
    let account = kernel::account_address(owner.address(), U256::ZERO);
    devnet.mint(account, U256::from(10 * USD)).await?;
    let pay =
        || encode_payment_batch(a.token, a.settlement, merchant, U256::from(USD), keccak256("r"));

    // Signed by someone else: ECDSAValidator returns SIG_VALIDATION_FAILED.
    let (mut op, _) = kernel_payment_op(&devnet, &owner, account, 0, pay()).await?;
    let hash = devnet.sign_as_kernel_owner(&mut op, &stranger).await?;
    assert!(matches!(
        kernel::verify_owner_signature(owner.address(), hash, &op.signature),
        Err(KernelSignatureError::WrongSigner { recovered, .. }) if recovered == stranger.address()
    ));
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA24 signature error")));

    // The owner's signature without Kernel's mode prefix (SimpleAccount's envelope): Kernel reads
    // the first four bytes of r as the mode and fails the op.
    let (mut op, hash) = kernel_payment_op(&devnet, &owner, account, 0, pay()).await?;
    op.signature = owner.sign_message(hash.as_slice()).await?.as_bytes().into();
    assert!(matches!(
        kernel::parse_signature(&op.signature),
        Err(KernelSignatureError::UnknownMode { .. })
    ));
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA24 signature error")));

    // A truncated owner signature (64 bytes after the mode): refused off-chain by length, and
    // by the chain in validation: ECDSAValidator's signature recovery reverts rather than
    // returning SIG_VALIDATION_FAILED, so the EntryPoint reports AA23, not AA24.
    let (mut op, hash) = kernel_payment_op(&devnet, &owner, account, 0, pay()).await?;
    op.signature = op.signature.slice(..68);
    assert!(matches!(
        kernel::verify_owner_signature(owner.address(), hash, &op.signature),
        Err(KernelSignatureError::OwnerSignatureLength { len: 64 })
    ));
    let outcome = devnet.handle_ops(&[op], bundler).await?;
    assert_eq!(outcome.failed_op(), Some((U256::ZERO, "AA23 reverted (or OOG)")));

    // callData that is not the payment shape is refused by the decoder with its reason...
    let transfer = alloy::primitives::Bytes::from(
        [&[0xa9u8, 0x05, 0x9c, 0xbb][..], &(merchant, U256::from(USD)).abi_encode_params()]
            .concat(),
    );
    let not_payment = encode_execute(a.token, U256::ZERO, transfer);
    assert!(matches!(
        kernel::decode_payment(&not_payment),
        Err(KernelCallDataError::Shape(CallDataError::UnknownSelector {
            at: CallSite::Execute,
            ..
        }))
    ));
    let other_spender = encode_execute_batch(vec![
        Call { to: a.token, value: U256::ZERO, data: encode_approve(merchant, U256::from(USD)) },
        Call {
            to: a.settlement,
            value: U256::ZERO,
            data: x402_aa::SettleCall {
                merchant,
                token: a.token,
                amount: U256::from(USD),
                request_hash: keccak256("r"),
            }
            .abi_encode(),
        },
    ]);
    assert!(matches!(
        kernel::decode_payment(&other_spender),
        Err(KernelCallDataError::Shape(CallDataError::ApproveSpenderMismatch { spender, .. }))
            if spender == merchant
    ));
    // ...and a delegatecall, which the decoder names, is also what Kernel v2.4 refuses on chain:
    // the owner-signed op validates but its execution reverts with DeprecatedOperation.
    let delegate = IKernel::executeCall {
        to: a.settlement,
        value: U256::ZERO,
        data: Bytes::new(),
        operation: 1,
    }
    .abi_encode();
    assert!(matches!(
        kernel::decode_payment(&delegate),
        Err(KernelCallDataError::NotACall { operation: 1 })
    ));
    let (op, hash) = kernel_payment_op(&devnet, &owner, account, 0, delegate.into()).await?;
    let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
    assert!(!included.event(hash).expect("event").success);
    let deprecated = keccak256("DeprecatedOperation()");
    assert_eq!(included.revert_reasons[0].revertReason[..], deprecated[..4]);

    assert_eq!(devnet.token_balance(merchant).await?, U256::ZERO);
    Ok(())
}
