//! Biconomy Smart Account v2 (`SmartAccount` 2.0.0, EntryPoint v0.6): what an aa-native payment
//! from it looks like on the wire.
//!
//! A Biconomy account has no owner of its own: `validateUserOp` reads the last word of
//! `abi.decode(signature, (bytes, address))` as the *validation module*, requires it to be
//! enabled on the account, and hands the op to it. An owner payment therefore carries
//! `abi.encode(ecdsaSignature, EcdsaOwnershipRegistryModule)`, and the module checks the owner
//! it registered for the account at deployment.
//!
//! - **Deployment**: `SmartAccountFactory.deployCounterFactualAccount(ecdsaModule,
//!   initForSmartAccount(owner), index)` creates a `Proxy` with CREATE2 (salt
//!   `keccak256(keccak256(initializer) ‖ index)`) and calls `init(defaultHandler, ecdsaModule,
//!   initForSmartAccount(owner))` on it, which enables the module and registers the owner.
//! - **Payment callData**: `executeBatch_y6U(address[], uint256[], bytes[])`, Biconomy's
//!   gas-optimised name for `executeBatch` (its selector `0x00004680` has two zero bytes), with
//!   `[approve(settlement, A), settle(merchant, token, A, requestHash)]` and zero values.
//! - **Owner signature**: the ECDSA module accepts the owner's signature over
//!   `toEthSignedMessageHash(userOpHash)` (EIP-191 personal-sign, what wallets produce) and also a
//!   raw signature over `userOpHash`; [`ecdsa_digest`] is the EIP-191 one.
//!
//! - **Session payments** (this project's `BiconomySessionModule`, `contracts/src/biconomy/`): the
//!   owner installs the module once with an owner op whose callData is
//!   [`install_session_module_call`]; a session op then carries [`session_signature`]
//!   (`abi.encode(<session signature>, module)`) and exactly [`encode_session_payment`]'s callData,
//!   the batch payment plus the module's `chargePayment`.
//!
//! Decoding maps Biconomy's call shapes onto SimpleAccount's and runs the one payment decoder
//! ([`crate::call_data::decode_payment`]) on them, so the shape rules (exactly approve then settle,
//! same token, same amount, canonical ABI) exist once for every account kind.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address, eip191_hash_message, hex, keccak256},
    sol,
    sol_types::{SolCall, SolValue, abi::AbiDecoderConfig},
};

use super::{
    AccountAbi, AccountCallDataError, AccountConfig, AccountConfigError, AccountKind, PaymentCall,
    SignerRole,
};
use crate::call_data::{
    CallDataError, CallSite, DecodedPayment, SettleCall, decode_payment as decode_shape,
    encode_approve, encode_execute, encode_execute_batch,
};

sol! {
    /// `SmartAccountFactory` v2: deploys the account proxy at a CREATE2 address salted by the
    /// initializer and `index`, then calls `init` on it. The EntryPoint's SenderCreator makes this
    /// call with the tail of `initCode`.
    #[derive(Debug, PartialEq, Eq)]
    function deployCounterFactualAccount(address moduleSetupContract, bytes moduleSetupData, uint256 index) returns (address proxy);

    /// `SmartAccountFactory` v2 view of the address [`deployCounterFactualAccount`] would use.
    #[derive(Debug, PartialEq, Eq)]
    function getAddressForCounterFactualAccount(address moduleSetupContract, bytes moduleSetupData, uint256 index) returns (address _account);

    /// `BaseSmartAccount.init`: what the factory calls on the new proxy. Its hash salts CREATE2.
    #[derive(Debug, PartialEq, Eq)]
    function init(address handler, address moduleSetupContract, bytes moduleSetupData) returns (address);

    /// `EcdsaOwnershipRegistryModule`: registers `eoaOwner` for `msg.sender` (the new account)
    /// and returns the module's address, which the account then enables.
    #[derive(Debug, PartialEq, Eq)]
    function initForSmartAccount(address eoaOwner) returns (address);

    /// `SmartAccount` 2.0.0: one call (EntryPoint only); `execute` is its alias.
    #[derive(Debug, PartialEq, Eq)]
    function execute_ncC(address dest, uint256 value, bytes func);

    /// `SmartAccount` 2.0.0: alias of [`execute_ncCCall`].
    #[derive(Debug, PartialEq, Eq)]
    function execute(address dest, uint256 value, bytes func);

    /// `SmartAccount` 2.0.0: calls in order (EntryPoint only), each with its own value; reverts
    /// `WrongBatchProvided` on an empty batch or unequal lengths. `executeBatch` is its alias.
    #[derive(Debug, PartialEq, Eq)]
    function executeBatch_y6U(address[] dest, uint256[] value, bytes[] func);

    /// `SmartAccount` 2.0.0: alias of [`executeBatch_y6UCall`].
    #[derive(Debug, PartialEq, Eq)]
    function executeBatch(address[] dest, uint256[] value, bytes[] func);

    /// `SmartAccount` 2.0.0 (its `ModuleManager`): whether `module` may validate the account's ops.
    #[derive(Debug, PartialEq, Eq)]
    function isModuleEnabled(address module) returns (bool);

    /// `SmartAccount` 2.0.0 (EntryPoint or the account itself): calls `setupContract` with
    /// `setupData` and enables the address it returns as a module.
    #[derive(Debug, PartialEq, Eq)]
    function setupAndEnableModule(address setupContract, bytes setupData) returns (address);

    /// This project's `BiconomySessionModule`: the setup call of its install and the
    /// execution-phase charge that is the third call of every session payment
    /// (`contracts/src/biconomy/BiconomyPayment.sol`).
    #[derive(Debug, PartialEq, Eq)]
    interface IBiconomySessionModule {
        function initForSmartAccount() external returns (address);
        function chargePayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash) external;
    }
}

/// `type(Proxy).creationCode` of the committed `contracts/vendor/biconomy-v2` build (the
/// factory's `accountCreationCode()`); with the implementation appended it is the CREATE2 init
/// code of every account.
pub const PROXY_CREATION_CODE: &[u8] = &hex!(
    "6080346100aa57601f61012038819003918201601f19168301916001600160401b038311848410176100af57"
    "8084926020946040528339810103126100aa57516001600160a01b0381168082036100aa5715610065573055"
    "604051605a90816100c68239f35b60405162461bcd60e51b815260206004820152601e60248201527f496e76"
    "616c696420696d706c656d656e746174696f6e206164647265737300006044820152606490fd5b600080fd5b"
    "634e487b7160e01b600052604160045260246000fdfe608060405230546000808092368280378136915af43d"
    "82803e156020573d90f35b3d90fdfea2646970667358221220b166fd81c9c8e2b8487fa5543d2d39a9d0cb9b"
    "34ea78ce5c7c920c2af79efb5364736f6c63430008110033"
);

/// The canonical factory's `accountCreationCode()`: the same instructions as
/// [`PROXY_CREATION_CODE`], only the trailing Solidity metadata hash differs (Biconomy built from
/// other source bytes than the npm package ships). Pinned by the mainnet addresses in the tests.
pub const CANONICAL_PROXY_CREATION_CODE: &[u8] = &hex!(
    "6080346100aa57601f61012038819003918201601f19168301916001600160401b038311848410176100af57"
    "8084926020946040528339810103126100aa57516001600160a01b0381168082036100aa5715610065573055"
    "604051605a90816100c68239f35b60405162461bcd60e51b815260206004820152601e60248201527f496e76"
    "616c696420696d706c656d656e746174696f6e206164647265737300006044820152606490fd5b600080fd5b"
    "634e487b7160e01b600052604160045260246000fdfe608060405230546000808092368280378136915af43d"
    "82803e156020573d90f35b3d90fdfea2646970667358221220a03b18dce0be0b4c9afe58a9eb85c35205e2cf"
    "087da098bbf1d23945bf89496064736f6c63430008110033"
);

/// Where one Biconomy v2 deployment lives: everything an account's address and initCode depend
/// on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deployment {
    /// `SmartAccountFactory`.
    pub factory: Address,
    /// `SmartAccount` implementation the factory's proxies delegate to (`basicImplementation`).
    pub implementation: Address,
    /// `EcdsaOwnershipRegistryModule`, the owner's validation module.
    pub ecdsa_module: Address,
    /// The factory's `accountCreationCode()`. It ends in a metadata hash of the Proxy source, so
    /// it differs between builds and must match the factory's or every address is wrong.
    pub proxy_creation_code: &'static [u8],
}

impl Deployment {
    /// Biconomy's own v2 deployment, at the same addresses on every chain it supports.
    pub const CANONICAL: Self = Self {
        factory: address!("0x000000a56Aaca3e9a4C479ea6b6CD0DbcB6634F5"),
        implementation: address!("0x0000002512019Dafb59528B82CB92D3c5D2423aC"),
        ecdsa_module: address!("0x0000001c5b32F37F5beA87BDD5374eB2aC54eA8e"),
        proxy_creation_code: CANONICAL_PROXY_CREATION_CODE,
    };

    /// A deployment of the committed `contracts/vendor/biconomy-v2` build (the devnet's).
    pub const fn vendored(
        factory: Address,
        implementation: Address,
        ecdsa_module: Address,
    ) -> Self {
        Self { factory, implementation, ecdsa_module, proxy_creation_code: PROXY_CREATION_CODE }
    }

    /// The `DefaultCallbackHandler` the factory's constructor creates (`minimalHandler`): the
    /// factory's first CREATE, so its address follows from the factory's at nonce 1 (EIP-161).
    pub fn default_handler(&self) -> Address {
        self.factory.create(1)
    }

    /// `init(defaultHandler, ecdsaModule, initForSmartAccount(owner))`, the call the factory makes
    /// on the fresh proxy.
    pub fn initializer(&self, owner: Address) -> Bytes {
        initCall {
            handler: self.default_handler(),
            moduleSetupContract: self.ecdsa_module,
            moduleSetupData: ecdsa_setup_data(owner),
        }
        .abi_encode()
        .into()
    }

    /// `initCode` deploying `owner`'s account number `index` with the ECDSA module.
    pub fn init_code(&self, owner: Address, index: U256) -> Bytes {
        let call = deployCounterFactualAccountCall {
            moduleSetupContract: self.ecdsa_module,
            moduleSetupData: ecdsa_setup_data(owner),
            index,
        };
        [self.factory.as_slice(), &call.abi_encode()].concat().into()
    }

    /// The counterfactual account address, as the factory's `getAddressForCounterFactualAccount`
    /// computes it: CREATE2 from the factory with salt `keccak256(keccak256(initializer) ‖
    /// index)` over `proxyCreationCode ‖ uint256(implementation)`.
    pub fn account_address(&self, owner: Address, index: U256) -> Address {
        let salt = keccak256((keccak256(self.initializer(owner)), index).abi_encode_packed());
        let code = [self.proxy_creation_code, &self.implementation.into_word()[..]].concat();
        self.factory.create2(salt, keccak256(code))
    }
}

/// `initForSmartAccount(owner)`: the module setup data registering `owner` with the ECDSA module.
pub fn ecdsa_setup_data(owner: Address) -> Bytes {
    initForSmartAccountCall { eoaOwner: owner }.abi_encode().into()
}

/// The batch payment: `executeBatch_y6U([token, settlement], [0, 0], [approve(settlement,
/// amount), settle(merchant, token, amount, requestHash)])`.
pub fn encode_payment_batch(
    token: Address,
    settlement: Address,
    merchant: Address,
    amount: U256,
    request_hash: B256,
) -> Bytes {
    let settle = SettleCall { merchant, token, amount, request_hash };
    executeBatch_y6UCall {
        dest: vec![token, settlement],
        value: vec![U256::ZERO, U256::ZERO],
        func: vec![encode_approve(settlement, amount), settle.abi_encode()],
    }
    .abi_encode()
    .into()
}

/// The single-call payment `execute_ncC(settlement, 0, settle(...))`, for accounts whose
/// allowance is already in place.
pub fn encode_payment_execute(settlement: Address, settle: &SettleCall) -> Bytes {
    execute_ncCCall { dest: settlement, value: U256::ZERO, func: settle.abi_encode() }
        .abi_encode()
        .into()
}

/// The owner's one op that installs `module` for session payments: its callData is
/// `setupAndEnableModule(module, initForSmartAccount())` (the EntryPoint may call it directly; an
/// owner EOA cannot call a Biconomy account at all). The module's setup makes the account's
/// marker slots non-zero and returns its own address, which the account enables.
pub fn install_session_module_call(module: Address) -> Bytes {
    setupAndEnableModuleCall {
        setupContract: module,
        setupData: IBiconomySessionModule::initForSmartAccountCall {}.abi_encode().into(),
    }
    .abi_encode()
    .into()
}

/// A session payment through this project's `BiconomySessionModule`: the batch payment plus a
/// third call, `chargePayment(token, settlement, merchant, amount, requestHash)` on the module,
/// which charges the session's budget in the execution phase. `executeBatch_y6U` reverts as a
/// whole when any call does, so the charge stands exactly when the payment does. The module
/// accepts these bytes (1028) and no others.
pub fn encode_session_payment(module: Address, settlement: Address, settle: &SettleCall) -> Bytes {
    let SettleCall { merchant, token, amount, request_hash } = *settle;
    let charge = IBiconomySessionModule::chargePaymentCall {
        token,
        settlement,
        merchant,
        amount,
        requestHash: request_hash,
    };
    executeBatch_y6UCall {
        dest: vec![token, settlement, module],
        value: vec![U256::ZERO; 3],
        func: vec![
            encode_approve(settlement, amount),
            settle.abi_encode(),
            charge.abi_encode().into(),
        ],
    }
    .abi_encode()
    .into()
}

/// The payment a session op of `module` makes: [`encode_session_payment`]'s bytes exactly
/// (re-encoded and compared, so nothing non-canonical and no other call passes).
pub fn decode_session_payment(
    call_data: &[u8],
    module: Address,
) -> Result<DecodedPayment, PaymentError> {
    if call_data.get(..4) != Some(&executeBatch_y6UCall::SELECTOR[..]) {
        return Err(PaymentError::SessionCharge { module });
    }
    let mut call: executeBatch_y6UCall = decode_strict(call_data)?;
    if call.dest.len() != 3 || call.dest[2] != module {
        return Err(PaymentError::SessionCharge { module });
    }
    call.dest.truncate(2);
    call.value.truncate(2);
    call.func.truncate(2);
    let payment = decode_batch(call.dest, call.value, call.func)?;
    if encode_session_payment(module, payment.settlement, &payment.settle)[..] != *call_data {
        return Err(PaymentError::SessionCharge { module });
    }
    Ok(payment)
}

/// `abi.encode(sessionSignature, module)`: what a session op carries; the account hands the op
/// to `module`, which reads the packed session signature (mode byte first) from the `bytes`.
pub fn session_signature(session_signature: &[u8], module: Address) -> Bytes {
    encode_signature(session_signature, module)
}

/// Why callData from a Biconomy account is not a payment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// A rule every account kind shares (shape, selectors, canonical ABI, approve consistency).
    #[error(transparent)]
    Shape(#[from] CallDataError),
    /// `executeBatch`'s target and value arrays differ in length (the account would revert).
    #[error("executeBatch has {targets} targets but {values} values")]
    ValueCountMismatch {
        /// Length of the target array.
        targets: usize,
        /// Length of the value array.
        values: usize,
    },
    /// A batch entry sends native value: a payment moves tokens only.
    #[error("executeBatch entry {index} forwards {value} wei; a payment forwards none")]
    BatchValue {
        /// The entry's position in the batch.
        index: usize,
        /// The wei it would forward.
        value: U256,
    },
    /// A session op's callData must be exactly approve, settle and the session module's charge.
    #[error(
        "not a session payment through module {module}: executeBatch_y6U must be exactly \
         approve + settle + chargePayment on the module, in canonical ABI"
    )]
    SessionCharge {
        /// The session module the charge must call.
        module: Address,
    },
}

/// Accepts the two payment shapes (batch approve + settle, or a single settle) under either of
/// Biconomy's names for each call (`executeBatch_y6U` / `executeBatch`, `execute_ncC` /
/// `execute`), in canonical ABI encoding, and nothing else.
pub fn decode_payment(call_data: &[u8]) -> Result<DecodedPayment, PaymentError> {
    let selector = call_data
        .get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .ok_or(CallDataError::MissingSelector { at: CallSite::Account, len: call_data.len() })?;
    match selector {
        executeBatch_y6UCall::SELECTOR => {
            let c: executeBatch_y6UCall = decode_strict(call_data)?;
            decode_batch(c.dest, c.value, c.func)
        }
        executeBatchCall::SELECTOR => {
            let c: executeBatchCall = decode_strict(call_data)?;
            decode_batch(c.dest, c.value, c.func)
        }
        execute_ncCCall::SELECTOR => {
            let c: execute_ncCCall = decode_strict(call_data)?;
            Ok(decode_shape(&encode_execute(c.dest, c.value, c.func))?)
        }
        executeCall::SELECTOR => {
            let c: executeCall = decode_strict(call_data)?;
            Ok(decode_shape(&encode_execute(c.dest, c.value, c.func))?)
        }
        other => {
            Err(CallDataError::UnknownSelector { at: CallSite::Account, selector: other.into() }
                .into())
        }
    }
}

/// Values are what Biconomy's batch adds over SimpleAccount's; once they are all zero the batch
/// is SimpleAccount's `executeBatch(dest, func)` and the shared rules decide.
fn decode_batch(
    dest: Vec<Address>,
    value: Vec<U256>,
    func: Vec<Bytes>,
) -> Result<DecodedPayment, PaymentError> {
    if dest.len() != value.len() {
        return Err(PaymentError::ValueCountMismatch { targets: dest.len(), values: value.len() });
    }
    if let Some((index, value)) = value.iter().enumerate().find(|(_, v)| !v.is_zero()) {
        return Err(PaymentError::BatchValue { index, value: *value });
    }
    Ok(decode_shape(&encode_execute_batch(dest, func))?)
}

/// Strict decoding plus a re-encode comparison, as for SimpleAccount's calls: two byte strings
/// that decode to the same call must not both be accepted.
fn decode_strict<C: SolCall>(data: &[u8]) -> Result<C, CallDataError> {
    let at = CallSite::Account;
    let call = C::abi_decode_with_config(data, AbiDecoderConfig::new().strict(true))
        .map_err(|source| CallDataError::MalformedAbi { at, call: C::SIGNATURE, source })?;
    if call.abi_encode() != data {
        return Err(CallDataError::NonCanonicalAbi { at, call: C::SIGNATURE });
    }
    Ok(call)
}

/// Biconomy v2 as an [`AccountAbi`], for one deployment: its ECDSA module is what tells an
/// owner signature from a session module's, and its proxy code and implementation make the
/// counterfactual address. The factory comes from the [`AccountConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BiconomyAbi {
    /// Which Biconomy v2 deployment the accounts come from (factory, implementation, ECDSA module).
    pub deployment: Deployment,
    /// This project's `BiconomySessionModule`, whose session payments carry a third call to it;
    /// `None`: only owner payments are recognised.
    pub session_module: Option<Address>,
}

impl BiconomyAbi {
    /// Owner payments of accounts from Biconomy's canonical v2 deployment.
    pub const CANONICAL: Self = Self { deployment: Deployment::CANONICAL, session_module: None };

    /// Owner payments of accounts from `deployment`.
    pub const fn new(deployment: Deployment) -> Self {
        Self { deployment, session_module: None }
    }

    /// This ABI that also knows session payments through `module`.
    pub const fn with_session_module(self, module: Address) -> Self {
        Self { session_module: Some(module), ..self }
    }

    fn deployment_with(&self, factory: Address) -> Deployment {
        Deployment { factory, ..self.deployment }
    }
}

impl AccountAbi for BiconomyAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::Biconomy
    }

    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError> {
        let owner = config.sole_owner(self.kind())?;
        Ok(self.deployment_with(config.factory).init_code(owner, config.salt))
    }

    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError> {
        let owner = config.sole_owner(self.kind())?;
        Ok(Some(self.deployment_with(config.factory).account_address(owner, config.salt)))
    }

    fn encode_payment(&self, p: &PaymentCall) -> Bytes {
        encode_payment_batch(
            p.settle.token,
            p.settlement,
            p.settle.merchant,
            p.settle.amount,
            p.settle.request_hash,
        )
    }

    /// The owner shapes, and the session shape when a session module is known (a batch of three
    /// whose last call goes to it).
    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        if let Some(module) = self.session_module
            && is_session_shape(call_data, module)
        {
            return Ok(decode_session_payment(call_data, module)?);
        }
        Ok(decode_payment(call_data)?)
    }

    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        if call_data.is_empty() {
            return Some(Vec::new());
        }
        match call_data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok())? {
            execute_ncCCall::SELECTOR => {
                execute_ncCCall::abi_decode(call_data).ok().map(|c| vec![c.dest])
            }
            executeCall::SELECTOR => executeCall::abi_decode(call_data).ok().map(|c| vec![c.dest]),
            executeBatch_y6UCall::SELECTOR => {
                executeBatch_y6UCall::abi_decode(call_data).ok().map(|c| c.dest)
            }
            executeBatchCall::SELECTOR => {
                executeBatchCall::abi_decode(call_data).ok().map(|c| c.dest)
            }
            _ => None,
        }
    }

    /// The account's own routing: the signature names its validation module; the deployment's
    /// ECDSA module is the owner, any other module (SessionKeyManager, a policy module) a
    /// session.
    fn signer_role(&self, signature: &[u8]) -> SignerRole {
        match decode_signature(signature) {
            Ok(m) if m.validation_module != self.deployment.ecdsa_module => SignerRole::Session,
            _ => SignerRole::Owner,
        }
    }
}

/// A Biconomy account's session side: payments in the session shape through `module`, signed as
/// `abi.encode(session signature, module)`. Address and initCode are the owner's (a session is
/// installed in an account that exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BiconomySessionAbi {
    /// The account's own ABI, knowing `module`'s session shape.
    pub account: BiconomyAbi,
    /// Our `BiconomySessionModule`.
    pub module: Address,
}

impl BiconomySessionAbi {
    /// Session payments through `module` in accounts of `deployment`.
    pub const fn new(deployment: Deployment, module: Address) -> Self {
        Self { account: BiconomyAbi::new(deployment).with_session_module(module), module }
    }
}

impl AccountAbi for BiconomySessionAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::Biconomy
    }

    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError> {
        self.account.init_code(config)
    }

    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError> {
        self.account.counterfactual_address(config)
    }

    fn encode_payment(&self, p: &PaymentCall) -> Bytes {
        encode_session_payment(self.module, p.settlement, &p.settle)
    }

    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        Ok(decode_session_payment(call_data, self.module)?)
    }

    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        self.account.call_targets(call_data)
    }

    fn signer_role(&self, signature: &[u8]) -> SignerRole {
        self.account.signer_role(signature)
    }
}

/// Whether `call_data` is an `executeBatch_y6U` of three calls whose last goes to `module` (the
/// session shape, to be judged by [`decode_session_payment`]).
fn is_session_shape(call_data: &[u8], module: Address) -> bool {
    call_data.get(..4) == Some(&executeBatch_y6UCall::SELECTOR[..])
        && executeBatch_y6UCall::abi_decode(call_data)
            .is_ok_and(|c| c.dest.len() == 3 && c.dest[2] == module)
}

/// `userOp.signature` of a Biconomy account, split into its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSignature {
    /// What the validation module reads (for the ECDSA module: a 65-byte `r ‖ s ‖ v`).
    pub module_signature: Bytes,
    /// The module the account hands validation to; it must be enabled on the account.
    pub validation_module: Address,
}

/// Why a signature is not a Biconomy `abi.encode(bytes, address)` envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Not decodable as the envelope at all.
    #[error("signature is not abi.encode(bytes moduleSignature, address validationModule): {0}")]
    Malformed(#[source] alloy::sol_types::Error),
    /// Decodable, but re-encoding differs (padding, offsets): refused, so no bytes ride along.
    #[error("signature envelope is not in canonical ABI encoding")]
    NonCanonical,
}

impl ModuleSignature {
    /// `abi.encode(moduleSignature, validationModule)`, the account's `userOp.signature`.
    pub fn abi_encode(&self) -> Bytes {
        encode_signature(&self.module_signature, self.validation_module)
    }
}

/// `abi.encode(bytes moduleSignature, address validationModule)`.
pub fn encode_signature(module_signature: &[u8], validation_module: Address) -> Bytes {
    (Bytes::copy_from_slice(module_signature), validation_module).abi_encode_params().into()
}

/// Inverse of [`encode_signature`], strict and canonical.
pub fn decode_signature(signature: &[u8]) -> Result<ModuleSignature, SignatureError> {
    let (module_signature, validation_module) =
        <(Bytes, Address)>::abi_decode_params_validate(signature)
            .map_err(SignatureError::Malformed)?;
    let decoded = ModuleSignature { module_signature, validation_module };
    if decoded.abi_encode().as_ref() != signature {
        return Err(SignatureError::NonCanonical);
    }
    Ok(decoded)
}

/// The digest the owner signs for the ECDSA module: EIP-191 personal-sign over the 32-byte
/// `userOpHash` (`ECDSA.toEthSignedMessageHash(userOpHash)`), the same as SimpleAccount's, and
/// what wallets and Biconomy's SDK produce.
pub fn ecdsa_digest(user_op_hash: B256) -> B256 {
    eip191_hash_message(user_op_hash)
}

/// Every digest the ECDSA module accepts an owner signature over, in the order it tries them:
/// the personal-sign digest, then the raw `userOpHash` (`_verifySignature`). An off-chain check
/// that accepted fewer would refuse ops the chain takes.
pub fn ecdsa_accepted_digests(user_op_hash: B256) -> [B256; 2] {
    [ecdsa_digest(user_op_hash), user_op_hash]
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{b256, bytes};

    use super::*;

    const TOKEN: Address = address!("0x1000000000000000000000000000000000000001");
    const SETTLEMENT: Address = address!("0x2000000000000000000000000000000000000002");
    const MERCHANT: Address = address!("0x3000000000000000000000000000000000000003");
    const REQUEST: B256 =
        b256!("0x4444444444444444444444444444444444444444444444444444444444444444");

    /// The devnet deployment (`x402_aa_devnet::biconomy`): CREATE2 with salt 0, so fixed.
    const DEVNET: Deployment = Deployment::vendored(
        address!("0xdf043d92627fede9ce4349e75b4672edffcf6605"),
        address!("0x624e1ce491c6a07f552319feb6873cb3b6c29206"),
        address!("0x2ba663f4eb38fd917f91b464e0a3af1c4b6ff12e"),
    );

    /// Anvil's first two default keys, the owners in viem's `toBiconomySmartAccountV2` tests.
    const ANVIL_0: Address = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    const ANVIL_1: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

    fn amount() -> U256 {
        U256::from(1_500_000u64)
    }

    fn settle() -> SettleCall {
        SettleCall { merchant: MERCHANT, token: TOKEN, amount: amount(), request_hash: REQUEST }
    }

    fn batch_y6u(dest: Vec<Address>, value: Vec<U256>, func: Vec<Bytes>) -> Bytes {
        executeBatch_y6UCall { dest, value, func }.abi_encode().into()
    }

    #[test]
    fn selectors_match_biconomy_sources() {
        // Constants in BatchedSessionRouter / ISessionValidationModule of the npm sources.
        assert_eq!(executeBatch_y6UCall::SELECTOR, hex!("00004680"));
        assert_eq!(executeBatchCall::SELECTOR, hex!("47e1da2a"));
        assert_eq!(execute_ncCCall::SELECTOR, hex!("0000189a"));
        assert_eq!(executeCall::SELECTOR, hex!("b61d27f6"));
        assert_eq!(initForSmartAccountCall::SELECTOR, hex!("2ede3bc0"));
        assert_eq!(deployCounterFactualAccountCall::SELECTOR, hex!("df20ffbc"));
    }

    /// Golden vectors from viem's `toBiconomySmartAccountV2` tests, which run against a mainnet
    /// fork: the canonical factory's addresses for anvil's keys 0 and 1, and its initCode.
    #[test]
    fn canonical_deployment_matches_mainnet() {
        let c = Deployment::CANONICAL;
        assert_eq!(c.default_handler(), address!("0x0bBa6d96BD616BedC6BFaa341742FD43c60b83C1"));
        assert_eq!(
            c.account_address(ANVIL_0, U256::ZERO),
            address!("0x0788816536DEFa6A14779711c0B08b7f0edFe68b")
        );
        assert_eq!(
            c.account_address(ANVIL_1, U256::ZERO),
            address!("0x9d7D81B4eecDf15CEb00bA42284EA36f8BE68B90")
        );
        assert_eq!(
            c.account_address(ANVIL_1, U256::from(1)),
            address!("0x7cfb07Af979D38c4d178b366469abE1292B91B64")
        );
        let factory_data = hex!(
            "df20ffbc0000000000000000000000000000001c5b32f37f5bea87bdd5374eb2ac54ea8e"
            "0000000000000000000000000000000000000000000000000000000000000060"
            "0000000000000000000000000000000000000000000000000000000000000000"
            "0000000000000000000000000000000000000000000000000000000000000024"
            "2ede3bc0000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
            "00000000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(
            c.init_code(ANVIL_0, U256::ZERO).as_ref(),
            [c.factory.as_slice(), &factory_data[..]].concat()
        );
    }

    /// The devnet factory's `getAddressForCounterFactualAccount(ecdsaModule,
    /// initForSmartAccount(anvil key 3), 0)` and `minimalHandler()`, read from a running devnet.
    #[test]
    fn devnet_deployment_matches_its_factory() {
        let owner = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
        assert_eq!(
            DEVNET.account_address(owner, U256::ZERO),
            address!("0x8b1e3Bc5A38952ebd5fdf0fe9bE10C379F18De1a")
        );
        assert_eq!(
            DEVNET.default_handler(),
            address!("0x2136f8f95f8c5eae18b344c8d100f264ee947280")
        );
    }

    /// viem's stub signature for the canonical ECDSA module (`getStubSignature`).
    #[test]
    fn envelope_matches_viem() {
        let stub = hex!(
            "fffffffffffffffffffffffffffffff0000000000000000000000000000000007aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1c"
        );
        let expected = hex!(
            "0000000000000000000000000000000000000000000000000000000000000040"
            "0000000000000000000000000000001c5b32f37f5bea87bdd5374eb2ac54ea8e"
            "0000000000000000000000000000000000000000000000000000000000000041"
            "fffffffffffffffffffffffffffffff0000000000000000000000000000000007aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1c00000000000000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(
            encode_signature(&stub, Deployment::CANONICAL.ecdsa_module).as_ref(),
            &expected[..]
        );
    }

    /// viem's Biconomy `sign({ owner: anvil key 0, hash: keccak256(0xdeadbeef) })` is a raw
    /// signature over the hash: the module's second digest, which off-chain checks must accept too.
    #[test]
    fn ecdsa_digest_matches_viem() {
        let sig = alloy::primitives::Signature::try_from(
            &hex!(
                "a8a8de243232c52140496c6b3e428090a8a944e1da3af2d6873d0f2151aa54b35aa7e59729d04cd6cc405bacc7e5e834ad56a945a1b2570948ba39febdfbdd3c1c"
            )[..],
        )
        .unwrap();
        let hash = keccak256(hex!("deadbeef"));
        let [prefixed, raw] = ecdsa_accepted_digests(hash);
        assert_eq!(prefixed, ecdsa_digest(hash));
        assert_eq!(sig.recover_address_from_prehash(&raw).unwrap(), ANVIL_0);
        assert_ne!(sig.recover_address_from_prehash(&prefixed).unwrap(), ANVIL_0);
    }

    #[test]
    fn proxy_creation_code_is_the_committed_factorys() {
        let artifact =
            include_str!("../../../../contracts/vendor/biconomy-v2/SmartAccountFactory.json");
        assert!(artifact.contains(&hex::encode(PROXY_CREATION_CODE)));
    }

    #[test]
    fn init_code_layout() {
        let owner = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
        let code = DEVNET.init_code(owner, U256::from(7));
        assert_eq!(&code[..20], DEVNET.factory.as_slice());
        let call = deployCounterFactualAccountCall::abi_decode(&code[20..]).unwrap();
        assert_eq!(call.moduleSetupContract, DEVNET.ecdsa_module);
        assert_eq!(call.index, U256::from(7));
        assert_eq!(
            initForSmartAccountCall::abi_decode(&call.moduleSetupData).unwrap().eoaOwner,
            owner
        );
        // 20 (factory) + 4 + 3 words + bytes (1 length word + 36 bytes padded to 2 words).
        assert_eq!(code.len(), 20 + 4 + 32 * 3 + 32 + 64);
    }

    #[test]
    fn batch_round_trip_and_layout() {
        let data = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        assert_eq!(&data[..4], &hex!("00004680"));
        // SimpleAccount's batch (580 bytes) plus the value array: offset word, length, 2 values.
        assert_eq!(data.len(), 580 + 32 * 4);
        let decoded = decode_payment(&data).unwrap();
        assert_eq!(decoded.settlement, SETTLEMENT);
        assert_eq!(decoded.settle, settle());
        let approve = decoded.approve.unwrap();
        assert_eq!((approve.token, approve.spender, approve.amount), (TOKEN, SETTLEMENT, amount()));
    }

    #[test]
    fn aliases_decode_to_the_same_payment() {
        let y6u = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        let c = executeBatch_y6UCall::abi_decode(&y6u).unwrap();
        let plain = executeBatchCall { dest: c.dest, value: c.value, func: c.func }.abi_encode();
        assert_eq!(decode_payment(&plain).unwrap(), decode_payment(&y6u).unwrap());

        let ncc = encode_payment_execute(SETTLEMENT, &settle());
        assert_eq!(&ncc[..4], &hex!("0000189a"));
        let plain =
            executeCall { dest: SETTLEMENT, value: U256::ZERO, func: settle().abi_encode() }
                .abi_encode();
        let decoded = decode_payment(&ncc).unwrap();
        assert_eq!(decode_payment(&plain).unwrap(), decoded);
        assert_eq!(
            (decoded.settlement, decoded.settle, decoded.approve),
            (SETTLEMENT, settle(), None)
        );
    }

    #[test]
    fn rejects_values() {
        let approve = encode_approve(SETTLEMENT, amount());
        let s = settle().abi_encode();
        let data = batch_y6u(
            vec![TOKEN, SETTLEMENT],
            vec![U256::ZERO, U256::from(1)],
            vec![approve.clone(), s.clone()],
        );
        assert!(matches!(
            decode_payment(&data),
            Err(PaymentError::BatchValue { index: 1, value }) if value == U256::from(1)
        ));
        let data = batch_y6u(vec![TOKEN, SETTLEMENT], vec![U256::ZERO], vec![approve, s.clone()]);
        assert!(matches!(
            decode_payment(&data),
            Err(PaymentError::ValueCountMismatch { targets: 2, values: 1 })
        ));
        let data = execute_ncCCall { dest: SETTLEMENT, value: U256::from(5), func: s }.abi_encode();
        assert!(matches!(
            decode_payment(&data),
            Err(PaymentError::Shape(CallDataError::NonzeroValue { value })) if value == U256::from(5)
        ));
    }

    #[test]
    fn rejects_non_payments_with_the_shared_reasons() {
        // A token transfer in place of the approve.
        let transfer = bytes!(
            "a9059cbb0000000000000000000000003000000000000000000000000000000000000003000000000000000000000000000000000000000000000000000000000016e360"
        );
        let data = batch_y6u(
            vec![TOKEN, SETTLEMENT],
            vec![U256::ZERO, U256::ZERO],
            vec![transfer.clone(), settle().abi_encode()],
        );
        assert!(matches!(
            decode_payment(&data),
            Err(PaymentError::Shape(CallDataError::UnknownSelector { at: CallSite::Batch(0), .. }))
        ));
        // Approve alone.
        let data =
            batch_y6u(vec![TOKEN], vec![U256::ZERO], vec![encode_approve(SETTLEMENT, amount())]);
        assert!(matches!(decode_payment(&data), Err(PaymentError::Shape(CallDataError::NoSettle))));
        // A single transfer through execute_ncC.
        let data = execute_ncCCall { dest: TOKEN, value: U256::ZERO, func: transfer }.abi_encode();
        assert!(matches!(
            decode_payment(&data),
            Err(PaymentError::Shape(CallDataError::UnknownSelector { at: CallSite::Execute, .. }))
        ));
        // SimpleAccount's executeBatch(address[],bytes[]) is not a Biconomy call.
        let data = encode_execute_batch(vec![TOKEN], vec![encode_approve(SETTLEMENT, amount())]);
        assert!(matches!(
            decode_payment(&data),
            Err(PaymentError::Shape(CallDataError::UnknownSelector { at: CallSite::Account, .. }))
        ));
        // Account-changing calls the owner could sign are not payments either.
        let data = ecdsa_setup_data(MERCHANT);
        assert!(matches!(
            decode_payment(&data),
            Err(PaymentError::Shape(CallDataError::UnknownSelector { at: CallSite::Account, .. }))
        ));
        assert!(matches!(
            decode_payment(&[0x00, 0x00, 0x46]),
            Err(PaymentError::Shape(CallDataError::MissingSelector { len: 3, .. }))
        ));
    }

    #[test]
    fn rejects_non_canonical_and_truncated_batches() {
        let good = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        let mut long = good.to_vec();
        long.extend_from_slice(&[0u8; 32]);
        assert!(matches!(
            decode_payment(&long),
            Err(PaymentError::Shape(
                CallDataError::MalformedAbi { at: CallSite::Account, .. }
                    | CallDataError::NonCanonicalAbi { at: CallSite::Account, .. }
            ))
        ));
        for len in 0..good.len() {
            assert!(decode_payment(&good[..len]).is_err(), "prefix of {len} bytes decoded");
        }
        for i in 0..good.len() {
            let mut data = good.to_vec();
            data[i] ^= 0x80;
            let _ = decode_payment(&data);
        }
    }

    #[test]
    fn signature_envelope_layout() {
        let module = address!("0x5555555555555555555555555555555555555555");
        let sig = [0x11u8; 65];
        let encoded = encode_signature(&sig, module);
        // offset of bytes, module, length 65, then 65 bytes padded to 96.
        let mut expected = Vec::new();
        expected.extend(U256::from(0x40).to_be_bytes::<32>());
        expected.extend(module.into_word());
        expected.extend(U256::from(65).to_be_bytes::<32>());
        expected.extend([0x11u8; 65]);
        expected.extend([0u8; 31]);
        assert_eq!(encoded.as_ref(), expected.as_slice());
        let decoded = decode_signature(&encoded).unwrap();
        assert_eq!(decoded.module_signature.as_ref(), &sig[..]);
        assert_eq!(decoded.validation_module, module);
    }

    #[test]
    fn signature_envelope_rejects_bad_input() {
        let good =
            encode_signature(&[0x22u8; 65], address!("0x5555555555555555555555555555555555555555"));
        // A bare 65-byte ECDSA signature (SimpleAccount's format) is not an envelope.
        assert!(matches!(decode_signature(&[0x22u8; 65]), Err(SignatureError::Malformed(_))));
        assert!(matches!(decode_signature(&good[..160]), Err(SignatureError::Malformed(_))));
        // One byte of padding short: the strict decoder reads it, the re-encoding check refuses it.
        assert!(matches!(
            decode_signature(&good[..good.len() - 1]),
            Err(SignatureError::Malformed(_) | SignatureError::NonCanonical)
        ));
        let mut dirty = good.to_vec();
        dirty[32] = 0x01; // high bytes of the address word
        assert!(matches!(decode_signature(&dirty), Err(SignatureError::Malformed(_))));
        let mut long = good.to_vec();
        long.extend([0u8; 32]);
        assert!(matches!(
            decode_signature(&long),
            Err(SignatureError::Malformed(_) | SignatureError::NonCanonical)
        ));
    }

    const MODULE: Address = address!("0x6000000000000000000000000000000000000006");

    /// The layout `BiconomyPayment.sol` re-encodes (its constants, word by word): if this fails,
    /// the module refuses every op the SDK builds.
    #[test]
    fn session_payment_layout_matches_the_module() {
        let data = encode_session_payment(MODULE, SETTLEMENT, &settle());
        assert_eq!(data.len(), 1028);
        let word = |at: usize| U256::from_be_slice(&data[at..at + 32]);
        let addr = |at: usize| Address::from_slice(&data[at + 12..at + 32]);
        assert_eq!(&data[..4], &hex!("00004680"));
        assert_eq!([word(4), word(36), word(68)], [0x60, 0xe0, 0x160].map(U256::from));
        assert_eq!([word(100), word(228), word(356)], [U256::from(3); 3]);
        assert_eq!([addr(132), addr(164), addr(196)], [TOKEN, SETTLEMENT, MODULE]);
        assert_eq!([word(260), word(292), word(324)], [U256::ZERO; 3]);
        assert_eq!([word(388), word(420), word(452)], [0x60, 0xe0, 0x1a0].map(U256::from));
        assert_eq!([word(484), word(612), word(804)], [0x44, 0x84, 0xa4].map(U256::from));
        assert_eq!(&data[516..520], &hex!("095ea7b3"));
        assert_eq!(&data[644..648], &hex!("d4729c72"));
        // SETTLE_ARGS = 648: merchant, token, amount, requestHash
        assert_eq!((addr(648), addr(680), word(712)), (MERCHANT, TOKEN, amount()));
        assert_eq!(&data[744..776], REQUEST.as_slice());
        // CHARGE_AT = 836, 164 bytes: chargePayment(token, settlement, merchant, amount, requestHash)
        assert_eq!(&data[836..840], &hex!("5d617d53"));
        assert_eq!(IBiconomySessionModule::chargePaymentCall::SELECTOR, hex!("5d617d53"));
        assert_eq!((addr(840), addr(872), addr(904)), (TOKEN, SETTLEMENT, MERCHANT));
        assert_eq!((word(936), &data[968..1000]), (amount(), REQUEST.as_slice()));
        assert!(data[1000..].iter().all(|b| *b == 0));
    }

    #[test]
    fn session_payment_round_trip() {
        let data = encode_session_payment(MODULE, SETTLEMENT, &settle());
        let decoded = decode_session_payment(&data, MODULE).unwrap();
        assert_eq!((decoded.settlement, decoded.settle), (SETTLEMENT, settle()));
        let approve = decoded.approve.unwrap();
        assert_eq!((approve.token, approve.spender, approve.amount), (TOKEN, SETTLEMENT, amount()));
        // The account ABI recognises it only when it knows the module.
        let abi = BiconomyAbi::new(DEVNET).with_session_module(MODULE);
        assert_eq!(abi.decode_payment(&data).unwrap(), decoded);
        assert!(BiconomyAbi::new(DEVNET).decode_payment(&data).is_err());
        let session = BiconomySessionAbi::new(DEVNET, MODULE);
        let call = PaymentCall { settlement: SETTLEMENT, settle: settle() };
        assert_eq!(session.encode_payment(&call), data);
        assert_eq!(session.decode_payment(&data).unwrap(), decoded);
        // An owner payment is not a session payment.
        let owner = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        assert!(matches!(
            decode_session_payment(&owner, MODULE),
            Err(PaymentError::SessionCharge { .. })
        ));
        assert_eq!(abi.decode_payment(&owner).unwrap().settle, settle());
    }

    #[test]
    fn session_payment_refuses_anything_else() {
        let good = encode_session_payment(MODULE, SETTLEMENT, &settle());
        let c = executeBatch_y6UCall::abi_decode(&good).unwrap();
        let other = address!("0x7000000000000000000000000000000000000007");
        let session_charge = |r: Result<DecodedPayment, PaymentError>| matches!(r, Err(PaymentError::SessionCharge { module }) if module == MODULE);
        // another module, trailing bytes, a truncated batch, the plain executeBatch alias
        assert!(matches!(
            decode_session_payment(&good, other),
            Err(PaymentError::SessionCharge { module }) if module == other
        ));
        let mut long = good.to_vec();
        long.extend([0u8; 32]);
        assert!(decode_session_payment(&long, MODULE).is_err());
        let two = batch_y6u(c.dest[..2].to_vec(), c.value[..2].to_vec(), c.func[..2].to_vec());
        assert!(session_charge(decode_session_payment(&two, MODULE)));
        let plain =
            executeBatchCall { dest: c.dest.clone(), value: c.value.clone(), func: c.func.clone() }
                .abi_encode();
        assert!(session_charge(decode_session_payment(&plain, MODULE)));
        // value on any call
        let mut value = c.value.clone();
        value[2] = U256::from(1);
        let data = batch_y6u(c.dest.clone(), value, c.func.clone());
        assert!(matches!(
            decode_session_payment(&data, MODULE),
            Err(PaymentError::BatchValue { index: 1.., .. })
                | Err(PaymentError::SessionCharge { .. })
        ));
        // a charge that differs from the payment, another function on the module
        let mut func = c.func.clone();
        func[2] = IBiconomySessionModule::chargePaymentCall {
            token: TOKEN,
            settlement: SETTLEMENT,
            merchant: MERCHANT,
            amount: U256::from(1),
            requestHash: REQUEST,
        }
        .abi_encode()
        .into();
        assert!(session_charge(decode_session_payment(
            &batch_y6u(c.dest.clone(), c.value.clone(), func),
            MODULE
        )));
        let mut func = c.func.clone();
        func[2] = IBiconomySessionModule::initForSmartAccountCall {}.abi_encode().into();
        assert!(session_charge(decode_session_payment(
            &batch_y6u(c.dest.clone(), c.value.clone(), func),
            MODULE
        )));
        // the shared rules still speak for the first two calls
        let mut func = c.func.clone();
        func[0] = encode_approve(other, amount());
        assert!(matches!(
            decode_session_payment(&batch_y6u(c.dest.clone(), c.value.clone(), func), MODULE),
            Err(PaymentError::Shape(_))
        ));
        for len in 0..good.len() {
            assert!(decode_session_payment(&good[..len], MODULE).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn install_and_session_signature_layout() {
        let install = install_session_module_call(MODULE);
        let call = setupAndEnableModuleCall::abi_decode(&install).unwrap();
        assert_eq!(call.setupContract, MODULE);
        assert_eq!(
            call.setupData.as_ref(),
            &IBiconomySessionModule::initForSmartAccountCall::SELECTOR
        );
        let sig = session_signature(&[0x02; 321], MODULE);
        let decoded = decode_signature(&sig).unwrap();
        assert_eq!(
            (decoded.module_signature.as_ref(), decoded.validation_module),
            (&[0x02; 321][..], MODULE)
        );
        // offset, module, length 321, then 321 bytes padded to 352
        assert_eq!(sig.len(), 96 + 352);
        assert_eq!(BiconomyAbi::new(DEVNET).signer_role(&sig), SignerRole::Session);
    }

    #[test]
    fn ecdsa_digest_is_personal_sign_over_the_hash() {
        let hash = b256!("0x0101010101010101010101010101010101010101010101010101010101010101");
        let mut preimage = b"\x19Ethereum Signed Message:\n32".to_vec();
        preimage.extend_from_slice(hash.as_slice());
        assert_eq!(ecdsa_digest(hash), keccak256(preimage));
    }
}
