//! Session keys on Safe 1.4.1 through `SafeSessionModule`, on the real EntryPoint v0.6 with Safe's npm
//! bytecode (singleton, proxy factory, MultiSendCallOnly) and the vendored Safe4337Module v0.2.0 and
//! AddModulesLib at their canonical addresses. The module is both an enabled module and the Safe's
//! fallback handler: session ops (`executeSessionPayment` callData) are validated by it, every other op
//! is forwarded unchanged to Safe4337Module. Then the adversarial cases of issue 12 item 4 that only a
//! Safe has (its fallback, thresholds, Safe4337Module's entry points), each refused by the EntryPoint
//! with the reason a user would see. The properties every host shares run on the Safe in `hosts.rs`.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address, aliases::U48, keccak256},
    signers::local::PrivateKeySigner,
    sol,
    sol_types::{SolCall, SolStruct, SolValue, eip712_domain},
};
use x402_aa_policy_evm::{
    Chain,
    abi::{IEntryPoint::UserOperation, IToken, RevokeSession},
    artifacts::Artifacts,
    chain::{ADMIN, CHAIN_ID, ENTRY_POINT},
    ops::{self, GasFields, Grant},
};

use crate::support::*;

pub(crate) const SAFE_4337_MODULE: Address = address!("a581c4A4DB7175302464fF3C06380BC3270b4037");
pub(crate) const ADD_MODULES_LIB: Address = address!("8EcD4ec46D4D2a6B64fE960B3D64e8B94B2234eb");
const CALL: u8 = 0;
const DELEGATECALL: u8 = 1;

sol! {
    interface ISafeT {
        function setup(address[] _owners, uint256 _threshold, address to, bytes data,
            address fallbackHandler, address paymentToken, uint256 payment, address paymentReceiver) external;
        function enableModule(address module) external;
        function disableModule(address prevModule, address module) external;
        function setFallbackHandler(address handler) external;
        function setGuard(address guard) external;
        function addOwnerWithThreshold(address owner, uint256 _threshold) external;
        function execTransaction(address to, uint256 value, bytes data, uint8 operation, uint256 safeTxGas,
            uint256 baseGas, uint256 gasPrice, address gasToken, address refundReceiver, bytes signatures)
            external payable returns (bool success);
        function execTransactionFromModule(address to, uint256 value, bytes data, uint8 operation)
            external returns (bool success);
        function isModuleEnabled(address module) external view returns (bool);
    }
    interface IErc20T {
        function transfer(address to, uint256 amount) external returns (bool);
    }
    interface IProxyFactory {
        function createProxyWithNonce(address _singleton, bytes initializer, uint256 saltNonce)
            external returns (address proxy);
    }
    interface IAddModulesLib {
        function enableModules(address[] modules) external;
    }
    interface IMultiSend {
        function multiSend(bytes transactions) external payable;
    }
    interface I4337 {
        function executeUserOp(address to, uint256 value, bytes data, uint8 operation) external;
        function executeUserOpWithErrorString(address to, uint256 value, bytes data, uint8 operation) external;
    }
    struct SafeOp {
        address safe;
        uint256 nonce;
        bytes initCode;
        bytes callData;
        uint256 callGasLimit;
        uint256 verificationGasLimit;
        uint256 preVerificationGas;
        uint256 maxFeePerGas;
        uint256 maxPriorityFeePerGas;
        bytes paymasterAndData;
        uint48 validAfter;
        uint48 validUntil;
        address entryPoint;
    }
    /// What SafeSessionModule adds to `ISessionModule`.
    interface ISafeSessionModule {
        function executeSessionPayment(address token, address settlement, address merchant, uint256 amount,
            bytes32 requestHash) external;
        function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4);
        function onERC721Received(address operator, address from, uint256 id, bytes data)
            external returns (bytes4);
        function ENTRY_POINT() external view returns (address);
        function SAFE_4337_MODULE() external view returns (address);
    }
}

/// `enableSession(SessionGrant)`: the grant is a static tuple, so its ABI encoding is its words.
fn enable_session_call(grant: &Grant) -> Vec<u8> {
    let sig = "enableSession((address,uint48,uint48,address,address,uint96,uint96,uint32,uint96,uint24,\
               uint96,bytes32,address,uint96,uint96,uint96,uint32,bytes32))";
    let mut data = keccak256(sig)[..4].to_vec();
    data.extend(grant.v2().abi_encode());
    data
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SafeStack {
    pub(crate) singleton: Address,
    pub(crate) factory: Address,
    pub(crate) multi_send_call_only: Address,
    pub(crate) session_module: Address,
}

/// Safe 1.4.1 from npm, Safe4337Module + AddModulesLib from `contracts/vendor` (canonical addresses
/// asserted), and our module from `contracts/artifacts`, all through the CREATE2 deployer with salt 0.
pub(crate) fn deploy_safe(chain: &mut Chain) -> anyhow::Result<SafeStack> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let npm = Artifacts::at(
        root.join("node_modules/@safe-global/safe-contracts/build/artifacts/contracts"),
    );
    let vendor = Artifacts::at(root.join("contracts/vendor/safe4337-v0.2.0"));
    let singleton = create2(chain, &npm.bytecode("Safe.sol/Safe")?)?;
    let factory = create2(chain, &npm.bytecode("proxies/SafeProxyFactory.sol/SafeProxyFactory")?)?;
    let multi_send_call_only =
        create2(chain, &npm.bytecode("libraries/MultiSendCallOnly.sol/MultiSendCallOnly")?)?;
    anyhow::ensure!(create2(chain, &vendor.bytecode("AddModulesLib")?)? == ADD_MODULES_LIB);
    let mut module = vendor.bytecode("Safe4337Module")?.to_vec();
    module.extend(ENTRY_POINT.abi_encode());
    anyhow::ensure!(create2(chain, &module)? == SAFE_4337_MODULE);
    let mut session = Artifacts::project().bytecode("SafeSessionModule")?.to_vec();
    session.extend((ENTRY_POINT, SAFE_4337_MODULE).abi_encode_params());
    let session_module = create2(chain, &session)?;
    Ok(SafeStack { singleton, factory, multi_send_call_only, session_module })
}

pub(crate) struct Sx {
    pub(crate) chain: Chain,
    pub(crate) safe: SafeStack,
    /// Owner keys, sorted by address (Safe's signature order).
    pub(crate) owners: Vec<PrivateKeySigner>,
    pub(crate) session_key: PrivateKeySigner,
    pub(crate) account: Address,
}

impl Sx {
    /// A 1-of-1 Safe (owner key 1) with sessions installed at setup, 1000 USDT and 10 ETH.
    pub(crate) fn new() -> anyhow::Result<Self> {
        Self::with_owners(&[1], 1)
    }

    /// A `threshold`-of-n Safe of keys `keys` with sessions installed at setup.
    pub(crate) fn with_owners(keys: &[u64], threshold: u64) -> anyhow::Result<Self> {
        let mut chain = Chain::deploy(&Artifacts::project())?;
        let safe = deploy_safe(&mut chain)?;
        let mut owners: Vec<PrivateKeySigner> = keys.iter().map(|&k| key(k)).collect();
        owners.sort_by_key(|k| k.address());
        let mut sx = Self { chain, safe, owners, session_key: key(2), account: Address::ZERO };
        sx.account = sx.create_safe(threshold, U256::ZERO, true)?;
        Ok(sx)
    }

    /// Deploys a Safe of `self.owners`: Safe4337Module enabled and, with `sessions`, the session module
    /// enabled and set as fallback handler (else Safe4337Module is the handler, Safe's stock setup).
    pub(crate) fn create_safe(
        &mut self,
        threshold: u64,
        salt: U256,
        sessions: bool,
    ) -> anyhow::Result<Address> {
        let (modules, handler) = if sessions {
            (vec![SAFE_4337_MODULE, self.safe.session_module], self.safe.session_module)
        } else {
            (vec![SAFE_4337_MODULE], SAFE_4337_MODULE)
        };
        let setup = ISafeT::setupCall {
            _owners: self.owners.iter().map(|k| k.address()).collect(),
            _threshold: U256::from(threshold),
            to: ADD_MODULES_LIB,
            data: IAddModulesLib::enableModulesCall { modules }.abi_encode().into(),
            fallbackHandler: handler,
            paymentToken: Address::ZERO,
            payment: U256::ZERO,
            paymentReceiver: Address::ZERO,
        };
        let create = IProxyFactory::createProxyWithNonceCall {
            _singleton: self.safe.singleton,
            initializer: setup.abi_encode().into(),
            saltNonce: salt,
        };
        let out = self.chain.must(ADMIN, self.safe.factory, U256::ZERO, create.abi_encode())?;
        let account = Address::abi_decode(&out.output)?;
        self.chain.mint(account, U256::from(1_000 * USD))?;
        self.chain.set_balance(account, U256::from(10 * ETH));
        Ok(account)
    }

    /// An owner op of `account` signed by `signers` (Safe4337Module's SafeOp, no validity window).
    pub(crate) fn signed_owner_op(
        &mut self,
        account: Address,
        call_data: Bytes,
        gas: GasFields,
        nonce: U256,
        signers: &[&PrivateKeySigner],
    ) -> anyhow::Result<UserOperation> {
        let mut op = ops::unsigned_op(account, nonce, call_data, gas);
        sign_safe_op(&mut op, signers)?;
        Ok(op)
    }

    /// An owner op of `self.account` signed by the first `signers` owners.
    pub(crate) fn owner_op(
        &mut self,
        call_data: Bytes,
        gas: GasFields,
        signers: usize,
    ) -> anyhow::Result<UserOperation> {
        let (account, nonce) = (self.account, self.nonce(self.account)?);
        let owners: Vec<PrivateKeySigner> = self.owners[..signers].to_vec();
        let refs: Vec<&PrivateKeySigner> = owners.iter().collect();
        self.signed_owner_op(account, call_data, gas, nonce, &refs)
    }

    /// An owner op in which the Safe calls itself with `data` (how every session control is sent),
    /// signed by the first `signers` owners.
    pub(crate) fn self_call_op(
        &mut self,
        data: impl Into<Bytes>,
        signers: usize,
    ) -> anyhow::Result<UserOperation> {
        let call = exec(self.account, data, CALL);
        self.owner_op(call, GasFields::default(), signers)
    }
}

impl SessionHost for Sx {
    const NAME: &'static str = "Safe";
    const OWNER_PAYMENT: &'static str = "stock Safe";
    const GAS_RATIO_GOAL: Option<f64> = Some(1.15);

    harness_fields!();

    /// The first owner: on a 1-of-1 Safe the one whose signature enables grants in-op.
    fn owner(&self) -> &PrivateKeySigner {
        &self.owners[0]
    }

    /// `executeSessionPayment(...)`, which the fallback handler (our module) validates.
    fn pay(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let a = self.chain.addrs;
        ISafeSessionModule::executeSessionPaymentCall {
            token: a.token,
            settlement: a.settlement,
            merchant,
            amount: U256::from(amount),
            requestHash: request_hash(request),
        }
        .abi_encode()
        .into()
    }
    /// Approve + settle as one delegatecall into MultiSendCallOnly.
    fn owner_payment(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let a = self.chain.addrs;
        let approve =
            IToken::approveCall { spender: a.settlement, value: U256::from(amount) }.abi_encode();
        let settle = x402_aa_policy_evm::abi::ISettlement::settleCall {
            merchant,
            token: a.token,
            amount: U256::from(amount),
            requestHash: request_hash(request),
        }
        .abi_encode();
        let txs = multi_send(&[(CALL, a.token, approve), (CALL, a.settlement, settle)]);
        exec(
            self.safe.multi_send_call_only,
            IMultiSend::multiSendCall { transactions: txs }.abi_encode(),
            DELEGATECALL,
        )
    }
    /// No envelope: the callData routes the op, the signature is exactly SessionKeyAccount's.
    fn seal(&self, session_signature: &[u8]) -> Bytes {
        Bytes::copy_from_slice(session_signature)
    }
    fn sign_owner(&self, op: &mut UserOperation) -> anyhow::Result<()> {
        sign_safe_op(op, &[&self.owners[0]])
    }
    fn store(&self) -> SessionStore {
        SessionStore::Module(self.safe.session_module)
    }
    fn control_op(&mut self, control: Control) -> anyhow::Result<UserOperation> {
        self.self_call_op(module_control(control), 1)
    }
    fn another_account(&mut self) -> anyhow::Result<Address> {
        self.create_safe(1, U256::from(1), true)
    }
    /// A stock Safe of the same owner (Safe4337Module as handler, no sessions).
    fn baseline_account(&mut self) -> anyhow::Result<Address> {
        self.create_safe(1, U256::from(5), false)
    }
}

/// `executeUserOpWithErrorString(to, 0, data, operation)`: Safe4337Module's owner entry point.
pub(crate) fn exec(to: Address, data: impl Into<Bytes>, operation: u8) -> Bytes {
    I4337::executeUserOpWithErrorStringCall { to, value: U256::ZERO, data: data.into(), operation }
        .abi_encode()
        .into()
}

/// MultiSend's packed `operation ‖ to ‖ value ‖ length ‖ data` entries.
pub(crate) fn multi_send(txs: &[(u8, Address, Vec<u8>)]) -> Bytes {
    let mut out = Vec::new();
    for (op, to, data) in txs {
        out.push(*op);
        out.extend_from_slice(to.as_slice());
        out.extend(U256::ZERO.to_be_bytes::<32>());
        out.extend(U256::from(data.len()).to_be_bytes::<32>());
        out.extend_from_slice(data);
    }
    out.into()
}

/// Safe4337Module's owner signature: validAfter (6) ‖ validUntil (6) ‖ each signer's ECDSA signature
/// over the EIP-712 SafeOp hash (domain: chain id + module), signers ascending by address.
pub(crate) fn sign_safe_op(
    op: &mut UserOperation,
    signers: &[&PrivateKeySigner],
) -> anyhow::Result<()> {
    let safe_op = SafeOp {
        safe: op.sender,
        nonce: op.nonce,
        initCode: op.initCode.clone(),
        callData: op.callData.clone(),
        callGasLimit: op.callGasLimit,
        verificationGasLimit: op.verificationGasLimit,
        preVerificationGas: op.preVerificationGas,
        maxFeePerGas: op.maxFeePerGas,
        maxPriorityFeePerGas: op.maxPriorityFeePerGas,
        paymasterAndData: op.paymasterAndData.clone(),
        validAfter: U48::ZERO,
        validUntil: U48::ZERO,
        entryPoint: ENTRY_POINT,
    };
    let domain = eip712_domain! { chain_id: CHAIN_ID, verifying_contract: SAFE_4337_MODULE, };
    let hash = safe_op.eip712_signing_hash(&domain);
    let mut signers = signers.to_vec();
    signers.sort_by_key(|k| k.address());
    let mut sig = vec![0u8; 12];
    for s in signers {
        sig.extend(ops::sign_hash(s, hash)?);
    }
    op.signature = sig.into();
    Ok(())
}

/// Safe signatures over an EIP-712 digest for `checkSignatures` (ascending signer order).
fn safe_signatures(digest: B256, signers: &[&PrivateKeySigner]) -> anyhow::Result<Vec<u8>> {
    let mut signers = signers.to_vec();
    signers.sort_by_key(|k| k.address());
    let mut sig = Vec::new();
    for s in signers {
        sig.extend(ops::sign_hash(s, digest)?);
    }
    Ok(sig)
}

// ---------------------------------------------------------------------------------------- tests

/// Setup enables both modules and points the module at the canonical EntryPoint and Safe4337Module.
/// (The payments themselves: `hosts::safe`.)
#[test]
fn safe_setup_installs_both_modules() -> anyhow::Result<()> {
    let mut sx = Sx::new()?;
    let (m, account) = (sx.safe.session_module, sx.account);
    assert!(sx.chain.view(account, ISafeT::isModuleEnabledCall { module: m })?);
    assert!(sx.chain.view(account, ISafeT::isModuleEnabledCall { module: SAFE_4337_MODULE })?);
    assert_eq!(sx.chain.view(m, ISafeSessionModule::ENTRY_POINTCall {})?, ENTRY_POINT);
    assert_eq!(sx.chain.view(m, ISafeSessionModule::SAFE_4337_MODULECall {})?, SAFE_4337_MODULE);
    Ok(())
}

/// The session callData has no target, value, operation or data field; anything else a session key
/// signs is either refused by the module with a `session:` reason (the payment shape, wrong) or goes to
/// Safe4337Module, which wants the owners' signatures (`AA24`) or refuses the selector (`AA23`).
#[test]
fn safe_session_ops_outside_the_payment_shape_are_refused() -> anyhow::Result<()> {
    let mut sx = Sx::new()?;
    let grant = sx.grant();
    sx.enable(&grant, 1002)?;
    let a = sx.chain.addrs;
    let (account, m) = (sx.account, sx.safe.session_module);
    let attacker = key(9).address();
    let pay = |token, settlement, merchant: Address, amount: u128| -> Vec<u8> {
        ISafeSessionModule::executeSessionPaymentCall {
            token,
            settlement,
            merchant,
            amount: U256::from(amount),
            requestHash: request_hash(77),
        }
        .abi_encode()
    };
    let canonical = pay(a.token, a.settlement, MERCHANT, USD);
    let mut long = canonical.clone();
    long.push(0);
    let mut dirty_merchant = canonical.clone();
    dirty_merchant[68] = 1;
    let mut dirty_token = canonical.clone();
    dirty_token[4] = 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("another token", pay(attacker, a.settlement, MERCHANT, USD), "session: token not allowed"),
        (
            "another settlement (spender)",
            pay(a.token, attacker, MERCHANT, USD),
            "session: target not allowed",
        ),
        (
            "the Safe as settlement",
            pay(a.token, account, MERCHANT, USD),
            "session: target not allowed",
        ),
        ("the module as settlement", pay(a.token, m, MERCHANT, USD), "session: target not allowed"),
        ("a trailing byte", long, "session: malformed callData"),
        ("a truncated call", canonical[..100].to_vec(), "session: malformed callData"),
        ("merchant word with high bits", dirty_merchant, "session: malformed callData"),
        ("token word with high bits", dirty_token, "session: malformed callData"),
        (
            "merchant = the Safe",
            pay(a.token, a.settlement, account, USD),
            "session: merchant is the account",
        ),
        ("zero amount", pay(a.token, a.settlement, MERCHANT, 0), "session: zero amount"),
        (
            "over per-payment max",
            pay(a.token, a.settlement, MERCHANT, 6 * USD),
            "session: over per-payment max",
        ),
    ];
    for (what, data, reason) in cases {
        let nonce = sx.nonce(account)?;
        let op = sx.session_op(&grant, false, data.into(), GasFields::default(), nonce)?;
        let out = sx.submit(vec![op])?;
        assert!(refused_with(&out, reason), "{what}: {:?}", out.revert_reason());
    }

    // Safe4337Module's entry points, signed by the session key: the owners' signature check fails.
    let admin: Vec<(&str, Bytes)> = vec![
        (
            "token transfer",
            exec(
                a.token,
                IErc20T::transferCall { to: attacker, amount: U256::from(USD) }.abi_encode(),
                CALL,
            ),
        ),
        (
            "enableModule",
            exec(account, ISafeT::enableModuleCall { module: attacker }.abi_encode(), CALL),
        ),
        (
            "disableModule",
            exec(
                account,
                ISafeT::disableModuleCall { prevModule: Address::with_last_byte(1), module: m }
                    .abi_encode(),
                CALL,
            ),
        ),
        (
            "setFallbackHandler",
            exec(account, ISafeT::setFallbackHandlerCall { handler: attacker }.abi_encode(), CALL),
        ),
        ("setGuard", exec(account, ISafeT::setGuardCall { guard: attacker }.abi_encode(), CALL)),
        (
            "addOwnerWithThreshold",
            exec(
                account,
                ISafeT::addOwnerWithThresholdCall { owner: attacker, _threshold: U256::from(1) }
                    .abi_encode(),
                CALL,
            ),
        ),
        ("delegatecall", exec(attacker, Vec::new(), DELEGATECALL)),
        (
            "native value",
            I4337::executeUserOpCall {
                to: attacker,
                value: U256::from(ETH),
                data: Bytes::new(),
                operation: CALL,
            }
            .abi_encode()
            .into(),
        ),
        (
            "revoke through the Safe",
            exec(account, ISessionModule::revokeAllCall {}.abi_encode(), CALL),
        ),
    ];
    for (what, data) in admin {
        let nonce = sx.nonce(account)?;
        let op = sx.session_op(&grant, false, data, GasFields::default(), nonce)?;
        let out = sx.submit(vec![op])?;
        assert_eq!(out.revert_reason().as_deref(), Some("AA24 signature error"), "{what}");
    }
    // Any other selector as callData is refused by Safe4337Module outright.
    let exec_tx = ISafeT::execTransactionCall {
        to: attacker,
        value: U256::from(ETH),
        data: Bytes::new(),
        operation: CALL,
        safeTxGas: U256::ZERO,
        baseGas: U256::ZERO,
        gasPrice: U256::ZERO,
        gasToken: Address::ZERO,
        refundReceiver: Address::ZERO,
        signatures: Bytes::new(),
    };
    let others: Vec<(&str, Vec<u8>)> = vec![
        ("execTransaction", exec_tx.abi_encode()),
        ("enableModule", ISafeT::enableModuleCall { module: attacker }.abi_encode()),
        ("setFallbackHandler", ISafeT::setFallbackHandlerCall { handler: attacker }.abi_encode()),
        (
            "execTransactionFromModule",
            ISafeT::execTransactionFromModuleCall {
                to: attacker,
                value: U256::from(ETH),
                data: Bytes::new(),
                operation: CALL,
            }
            .abi_encode(),
        ),
        ("revokeAll", ISessionModule::revokeAllCall {}.abi_encode()),
        ("empty", Vec::new()),
    ];
    for (what, data) in others {
        let nonce = sx.nonce(account)?;
        let op = sx.session_op(&grant, false, data.into(), GasFields::default(), nonce)?;
        let out = sx.submit(vec![op])?;
        assert_eq!(
            out.revert_reason().as_deref(),
            Some("AA23 reverted: Unsupported execution function id"),
            "{what}"
        );
    }
    assert_eq!(sx.tokens_of(MERCHANT)?, U256::from(USD), "only the enabling payment landed");
    assert_eq!(sx.tokens_of(attacker)?, U256::ZERO);
    assert!(!sx.chain.view(account, ISafeT::isModuleEnabledCall { module: attacker })?);
    Ok(())
}

/// The module is the Safe's fallback handler, so anyone can reach it *through* the Safe: its session
/// functions want the EntryPoint as original caller, its controls the Safe itself.
#[test]
fn safe_fallback_calls_from_strangers_are_refused() -> anyhow::Result<()> {
    let mut sx = Sx::new()?;
    let grant = sx.grant();
    sx.enable(&grant, 1003)?;
    let account = sx.account;
    let stranger = key(9).address();
    sx.chain.set_balance(stranger, U256::from(ETH));
    let id = sx.id(&grant);
    let mut stranger_grant = grant.clone();
    stranger_grant.session_key = stranger;
    let calls: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "revoke",
            ISessionModule::revokeCall { id }.abi_encode(),
            "session: not a call by the Safe itself",
        ),
        (
            "revokeAll",
            ISessionModule::revokeAllCall {}.abi_encode(),
            "session: not a call by the Safe itself",
        ),
        (
            "setPaused",
            ISessionModule::setPausedCall { id, paused: true }.abi_encode(),
            "session: not a call by the Safe itself",
        ),
        (
            "enableSession",
            enable_session_call(&stranger_grant),
            "session: not a call by the Safe itself",
        ),
        (
            "executeSessionPayment",
            sx.pay(stranger, USD, 5).to_vec(),
            "session: caller is not the EntryPoint",
        ),
        ("executeUserOp", exec(stranger, Vec::new(), CALL).to_vec(), "Unsupported entry point"),
    ];
    for (what, data, reason) in calls {
        let out = sx.chain.send(stranger, account, U256::ZERO, data, 1_000_000)?;
        assert_eq!(out.revert_reason().as_deref(), Some(reason), "{what}");
    }
    // also a forged 20-byte suffix: the stranger appends the EntryPoint's address itself
    let mut forged = sx.pay(stranger, USD, 5).to_vec();
    forged.extend_from_slice(ENTRY_POINT.as_slice());
    let out = sx.chain.send(stranger, account, U256::ZERO, forged, 1_000_000)?;
    assert_eq!(out.revert_reason().as_deref(), Some("session: caller is not the EntryPoint"));
    let s = sx.state(&grant)?;
    assert_eq!((s.status, s.paused), (1, false));
    assert_eq!(sx.tokens_of(stranger)?, U256::ZERO);
    // what a fallback handler must still answer: token callbacks and ERC-1271 at the threshold
    let cb = ISafeSessionModule::onERC721ReceivedCall {
        operator: stranger,
        from: stranger,
        id: U256::ZERO,
        data: Bytes::new(),
    };
    assert_eq!(
        sx.chain.view(account, cb)?,
        alloy::primitives::FixedBytes([0x15, 0x0b, 0x7a, 0x02])
    );
    let hash = B256::repeat_byte(0x42);
    let safe_domain = eip712_domain! { chain_id: CHAIN_ID, verifying_contract: account, };
    sol! { struct SafeMessage { bytes message; } }
    let message_hash =
        SafeMessage { message: hash.abi_encode().into() }.eip712_signing_hash(&safe_domain);
    let owner = sx.owners[0].clone();
    let signature = safe_signatures(message_hash, &[&owner])?.into();
    let valid =
        sx.chain.view(account, ISafeSessionModule::isValidSignatureCall { hash, signature })?;
    assert_eq!(valid, alloy::primitives::FixedBytes([0x16, 0x26, 0xba, 0x7e]));
    let bad = safe_signatures(message_hash, &[&sx.session_key])?.into();
    let out = sx.chain.call(
        account,
        ISafeSessionModule::isValidSignatureCall { hash, signature: bad }.abi_encode(),
    )?;
    assert!(!out.success, "a session key never signs for the Safe");
    Ok(())
}

/// Owner ops keep working through Safe4337Module after sessions are installed: on a 1-of-1 Safe, and on
/// a 2-of-3 Safe, which cannot enable grants in-op (one owner is not the Safe) but enables them with an
/// owner op at its threshold, after which the session pays in use mode.
#[test]
fn safe_owner_ops_still_work_and_threshold_safes_enable_by_transaction() -> anyhow::Result<()> {
    // 1-of-1: owner payment through the forwarding handler; a wrong owner signature is AA24
    let mut sx = Sx::new()?;
    let data = sx.owner_payment(MERCHANT, USD, 1);
    let op = sx.owner_op(data.clone(), GasFields::default(), 1)?;
    let out = sx.submit(vec![op])?;
    assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    assert_eq!(sx.tokens_of(MERCHANT)?, U256::from(USD));
    let (account, nonce) = (sx.account, sx.nonce(sx.account)?);
    let stranger = key(9);
    let op = sx.signed_owner_op(
        account,
        sx.owner_payment(MERCHANT, USD, 2),
        GasFields::default(),
        nonce,
        &[&stranger],
    )?;
    assert_eq!(sx.submit(vec![op])?.revert_reason().as_deref(), Some("AA24 signature error"));

    // 2-of-3
    let mut sx = Sx::with_owners(&[1, 3, 4], 2)?;
    let m = sx.safe.session_module;
    let account = sx.account;
    let one = sx.owner_op(sx.owner_payment(MERCHANT, USD, 3), GasFields::default(), 1)?;
    assert_eq!(sx.submit(vec![one])?.revert_reason().as_deref(), Some("AA24 signature error"));
    let two = sx.owner_op(sx.owner_payment(MERCHANT, USD, 3), GasFields::default(), 2)?;
    let out = sx.submit(vec![two])?;
    assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    let out = sx.chain.call(m, ISessionModule::ownerOfCall { account }.abi_encode())?;
    assert_eq!(
        out.revert_reason().as_deref(),
        Some("session: Safe is not 1-of-1 (enable with enableSession)")
    );
    let grant = sx.grant();
    let nonce = sx.nonce(account)?;
    let op = sx.session_op(&grant, true, sx.pay(MERCHANT, USD, 4), GasFields::default(), nonce)?;
    let out = sx.submit(vec![op])?;
    assert!(
        refused_with(&out, "session: Safe is not 1-of-1 (enable with enableSession)"),
        "{:?}",
        out.revert_reason()
    );
    // enableSession with one signature: AA24; with two: enabled
    let op = sx.self_call_op(enable_session_call(&grant), 1)?;
    assert_eq!(sx.submit(vec![op])?.revert_reason().as_deref(), Some("AA24 signature error"));
    let mut bad = grant.clone();
    bad.session_key = sx.owners[1].address();
    let op = sx.self_call_op(enable_session_call(&bad), 2)?;
    let out = sx.submit(vec![op])?;
    assert_eq!(execution_reverts(&out), vec!["session: grant key is the owner".to_owned()]);
    let op = sx.self_call_op(enable_session_call(&grant), 2)?;
    let out = sx.submit(vec![op])?;
    assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    assert_eq!(sx.state(&grant)?.status, 1);
    let out = sx.pay_once(&grant, 5 * USD, 5)?;
    assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    assert_eq!(sx.tokens_of(MERCHANT)?, U256::from(6 * USD));
    // relayed revoke needs the threshold too
    let id = sx.id(&grant);
    let digest = ops::control_digest(account, &RevokeSession { sessionId: id });
    let (o0, o1) = (sx.owners[0].clone(), sx.owners[1].clone());
    let one = safe_signatures(digest, &[&o0])?;
    let relay = ISessionModule::revokeWithSignatureCall { account, id, ownerSignature: one.into() };
    assert!(!sx.chain.send(ADMIN, m, U256::ZERO, relay.abi_encode(), 1_000_000)?.success);
    let two = safe_signatures(digest, &[&o0, &o1])?;
    let relay = ISessionModule::revokeWithSignatureCall { account, id, ownerSignature: two.into() };
    sx.chain.must(ADMIN, m, U256::ZERO, relay.abi_encode())?;
    let out = sx.pay_once(&grant, USD, 6)?;
    assert!(refused_with(&out, "session: revoked"), "{:?}", out.revert_reason());
    Ok(())
}

/// An existing Safe (stock setup: Safe4337Module as handler) installs sessions with one owner op:
/// `enableModule(module)` + `setFallbackHandler(module)`, the Safe calling itself through MultiSendCallOnly.
#[test]
fn an_existing_safe_installs_sessions_with_one_owner_op() -> anyhow::Result<()> {
    let mut sx = Sx::new()?;
    let m = sx.safe.session_module;
    sx.account = sx.create_safe(1, U256::from(7), false)?;
    let account = sx.account;
    let grant = sx.grant();
    let nonce = sx.nonce(account)?;
    let op = sx.session_op(&grant, true, sx.pay(MERCHANT, USD, 1), GasFields::default(), nonce)?;
    let out = sx.submit(vec![op])?;
    assert_eq!(
        out.revert_reason().as_deref(),
        Some("AA23 reverted: Unsupported execution function id"),
        "before install, Safe4337Module answers"
    );
    let txs = multi_send(&[
        (CALL, account, ISafeT::enableModuleCall { module: m }.abi_encode()),
        (CALL, account, ISafeT::setFallbackHandlerCall { handler: m }.abi_encode()),
    ]);
    let install = exec(
        sx.safe.multi_send_call_only,
        IMultiSend::multiSendCall { transactions: txs }.abi_encode(),
        DELEGATECALL,
    );
    let op = sx.owner_op(install, GasFields::default(), 1)?;
    let out = sx.submit(vec![op])?;
    assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    assert!(sx.chain.view(account, ISafeT::isModuleEnabledCall { module: m })?);
    sx.enable(&grant, 2)?;
    let op = sx.owner_op(sx.owner_payment(MERCHANT, USD, 3), GasFields::default(), 1)?;
    let out = sx.submit(vec![op])?;
    assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    assert_eq!(sx.tokens_of(MERCHANT)?, U256::from(2 * USD));
    Ok(())
}

/// A threshold-1 Safe's owner EOA sends controls itself: `execTransaction(safe, 0, <module call>, CALL,
/// …, pre-validated signature)` makes the Safe call itself (`x402_aa::accounts::safe::session::
/// owner_transaction`). The same transaction from anyone else is refused by the Safe.
#[test]
fn safe_owner_eoa_controls_by_exec_transaction() -> anyhow::Result<()> {
    let mut sx = Sx::new()?;
    let grant = sx.grant();
    sx.enable(&grant, 1010)?;
    let (account, id) = (sx.account, sx.id(&grant));
    let tx = |sender: Address, data: Vec<u8>| {
        let mut signatures = sender.into_word().to_vec();
        signatures.extend([0u8; 32]);
        signatures.push(1);
        ISafeT::execTransactionCall {
            to: account,
            value: U256::ZERO,
            data: data.into(),
            operation: CALL,
            safeTxGas: U256::ZERO,
            baseGas: U256::ZERO,
            gasPrice: U256::ZERO,
            gasToken: Address::ZERO,
            refundReceiver: Address::ZERO,
            signatures: signatures.into(),
        }
        .abi_encode()
    };
    let stranger = key(9).address();
    let pause = ISessionModule::setPausedCall { id, paused: true }.abi_encode();
    let out =
        sx.chain.send(stranger, account, U256::ZERO, tx(stranger, pause.clone()), 1_000_000)?;
    assert_eq!(out.revert_reason().as_deref(), Some("GS026"), "not an owner");
    assert!(!sx.state(&grant)?.paused);
    let owner = sx.owners[0].address();
    sx.chain.must(owner, account, U256::ZERO, tx(owner, pause))?;
    assert!(sx.state(&grant)?.paused);
    let out = sx.pay_once(&grant, USD, 90)?;
    assert!(refused_with(&out, "session: paused"), "{:?}", out.revert_reason());
    let revoke = ISessionModule::revokeCall { id }.abi_encode();
    sx.chain.must(owner, account, U256::ZERO, tx(owner, revoke))?;
    assert_eq!(sx.state(&grant)?.status, 2);
    Ok(())
}
