//! ZeroDev Kernel v2.4 (the Kernel line for EntryPoint v0.6) with the ECDSAValidator as its
//! default ("sudo") validator: initCode, counterfactual address, the payment callData and the
//! owner's signature envelope.
//!
//! Everything here follows the v2.4 sources (`zerodevapp/kernel` tag `v2.4`, see
//! `contracts/vendor/kernel-v2.4/PROVENANCE.md`):
//! - `KernelFactory.createAccount(implementation, data, index)` deploys a Solady-style ERC-1967
//!   proxy with CREATE2 at salt `keccak256(data ‖ index) & (2⁹⁶ − 1)` and calls it with `data`,
//!   here `initialize(ECDSAValidator, owner)`; the address therefore depends on the owner, the
//!   index and the validator, never on the implementation.
//! - `Kernel.execute(to, value, data, operation)` and `executeBatch(Call[] {to, value, data})`.
//!   `operation` is the enum `Operation {Call, DelegateCall}`; Kernel v2.4 refuses anything but
//!   `Call` there (`DeprecatedOperation`).
//! - A signature starts with a 4-byte mode. `0x00000000` hands the rest to the default
//!   validator; ECDSAValidator recovers the owner from the EIP-191 ("\x19Ethereum Signed
//!   Message:\n32") hash of the userOpHash first and from the raw userOpHash second, so the
//!   owner signs exactly what a SimpleAccount owner signs.
//!
//! The payment shape itself (approve then settle, or a single settle) is the one rule in
//! [`crate::call_data`]: [`decode_payment`] unwraps Kernel's encoding, checks what only Kernel
//! has (per-call value, the operation byte) and hands the calls to that rule, so Kernel and
//! SimpleAccount payments can never disagree about what a payment is.

use alloy::{
    hex,
    primitives::{Address, B256, Bytes, Signature, U256, address, keccak256},
    sol,
    sol_types::SolCall,
};

use super::{
    AccountAbi, AccountCallDataError, AccountConfig, AccountConfigError, AccountKind, PaymentCall,
    SignerRole,
    session_payment::{self, SESSION_PAYMENT_SELECTOR, SessionPaymentCallError},
};
use crate::call_data::{
    self, CallDataError, CallSite, DecodedPayment, SettleCall, encode_approve,
    encode_execute as encode_simple_execute, encode_execute_batch as encode_simple_batch,
};

/// Kernel v2.4 implementation (canonical CREATE2 deployment, bound to EntryPoint v0.6).
pub const KERNEL_V24_IMPLEMENTATION: Address =
    address!("0xd3082872F8B06073A021b4602e022d5A070d7cfC");
/// KernelFactory shared by Kernel v2.x (canonical CREATE2 deployment).
pub const KERNEL_FACTORY: Address = address!("0x5de4839a76cf55d0c90e2061ef4386d962E15ae3");
/// ECDSAValidator for Kernel v2 (canonical CREATE2 deployment): one owner key per account.
pub const ECDSA_VALIDATOR: Address = address!("0xd9AB5096a832b9ce79914329DAEE236f8Eea0390");

/// Signature mode of the default (sudo) validator.
pub const MODE_SUDO: [u8; 4] = [0, 0, 0, 0];
/// Signature mode of the validator registered for the callData's selector (`getExecution`).
pub const MODE_PLUGIN: [u8; 4] = [0, 0, 0, 1];
/// Signature mode that registers a validator for the selector and validates with it at once.
pub const MODE_ENABLE: [u8; 4] = [0, 0, 0, 2];

/// `Operation.Call` in `Kernel.execute`; `DelegateCall` (1) is deprecated and reverts.
pub const OPERATION_CALL: u8 = 0;

sol! {
    /// Kernel v2's `Call` struct (`src/common/Structs.sol`).
    #[derive(Debug, PartialEq, Eq)]
    struct Call {
        address to;
        uint256 value;
        bytes data;
    }

    /// Kernel v2's `ExecutionDetail` (`src/common/Structs.sol`): what `setExecution` stored.
    #[derive(Debug, PartialEq, Eq)]
    struct ExecutionDetail {
        uint48 validAfter;
        uint48 validUntil;
        address executor;
        address validator;
    }

    /// The parts of `KernelFactory` (`src/factory/KernelFactory.sol`) this project calls.
    #[derive(Debug, PartialEq, Eq)]
    interface IKernelFactory {
        function createAccount(address _implementation, bytes _data, uint256 _index) external payable returns (address proxy);
        function getAccountAddress(bytes _data, uint256 _index) external view returns (address);
        function isAllowedImplementation(address implementation) external view returns (bool);
        function setImplementation(address _implementation, bool _allow) external;
        function addStake(uint32 unstakeDelaySec) external payable;
        function owner() external view returns (address);
        function entryPoint() external view returns (address);
    }

    /// The parts of `Kernel` / `KernelStorage` v2.4 this project calls. `operation` is the
    /// Solidity enum `Operation {Call, DelegateCall}`, which the ABI spells `uint8`.
    #[derive(Debug, PartialEq, Eq)]
    interface IKernel {
        function initialize(address _defaultValidator, bytes _data) external payable;
        function execute(address to, uint256 value, bytes data, uint8 operation) external payable;
        function executeBatch(Call[] calls) external payable;
        function getDefaultValidator() external view returns (address);
        /// Registers `_validator` for ops whose callData starts with `_selector` (plugin mode);
        /// `_executor` is only consulted by Kernel's fallback. Only the EntryPoint or the
        /// account itself may call it.
        function setExecution(bytes4 _selector, address _executor, address _validator, uint48 _validUntil, uint48 _validAfter, bytes _enableData) external payable;
        function getExecution(bytes4 _selector) external view returns (ExecutionDetail);
        function getNonce() external view returns (uint256);
        function entryPoint() external view returns (address);
        function name() external view returns (string);
        function version() external view returns (string);
    }

    /// `ECDSAValidator` (`src/validator/ECDSAValidator.sol`): the owner per Kernel account.
    #[derive(Debug, PartialEq, Eq)]
    interface IECDSAValidator {
        function ecdsaValidatorStorage(address kernel) external view returns (address owner);
    }
}

/// Why callData is not a Kernel payment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelCallDataError {
    /// The shared payment-shape rule (selectors, ABI, approve/settle consistency).
    #[error(transparent)]
    Shape(#[from] CallDataError),
    /// `execute` asks for a delegatecall (or another operation) instead of a plain call.
    #[error("execute uses operation {operation}; a payment is a plain call (0)")]
    NotACall {
        /// Kernel's operation byte (0 call, 1 delegatecall).
        operation: u8,
    },
    /// A batch entry forwards native value: a payment moves tokens only.
    #[error("executeBatch entry {index} forwards {value} wei; a payment forwards none")]
    BatchValue {
        /// The entry's position in the batch.
        index: usize,
        /// The forwarded value, in wei.
        value: U256,
    },
    /// A session op's callData that is not exactly the 164-byte `executeSessionPayment`.
    #[error(transparent)]
    SessionPayment(#[from] SessionPaymentCallError),
}

/// Why a signature is not a valid Kernel owner (sudo-mode) signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelSignatureError {
    /// Fewer than 4 bytes: no mode to route by.
    #[error("signature is {len} bytes; Kernel reads a 4-byte mode first")]
    MissingMode {
        /// The signature's length in bytes.
        len: usize,
    },
    /// The mode is not 0 (sudo), 1 (plugin) or 2 (enable); Kernel would revert.
    #[error("signature mode 0x{} is none of Kernel's 0, 1, 2", alloy::hex::encode(mode))]
    UnknownMode {
        /// The mode bytes found.
        mode: [u8; 4],
    },
    /// An owner signature was expected, but the op routes to a plugin validator.
    #[error(
        "signature mode 0x{} is not the owner's (sudo) mode 0x00000000",
        alloy::hex::encode(mode)
    )]
    NotSudo {
        /// The mode bytes found.
        mode: [u8; 4],
    },
    /// The sudo-mode payload is not 65 bytes.
    #[error("owner signature is {len} bytes after the mode; ECDSAValidator takes 65 (r ‖ s ‖ v)")]
    OwnerSignatureLength {
        /// Bytes after the mode.
        len: usize,
    },
    /// `v` is not 27 or 28 (e.g. 0 or 1), which the validator's `ecrecover` rejects.
    #[error("owner signature has v = {v}; ECDSAValidator's ecrecover takes only 27 or 28")]
    OwnerSignatureV {
        /// The `v` byte found.
        v: u8,
    },
    /// The 65 bytes are not a recoverable ECDSA signature.
    #[error("owner signature is not a valid ECDSA signature: {0}")]
    Malformed(#[from] alloy::primitives::SignatureError),
    /// An enable-mode signature ends before one of its fields.
    #[error("enable-mode signature is truncated: {what} needs bytes up to {need}, have {have}")]
    EnableTruncated {
        /// The field that is cut off.
        what: &'static str,
        /// Bytes the field needs the signature to have.
        need: usize,
        /// Bytes the signature has.
        have: usize,
    },
    /// A well-formed signature by someone other than the owner.
    #[error("owner signature recovers to {recovered}, not the owner {owner}")]
    WrongSigner {
        /// The account's owner.
        owner: Address,
        /// Who signed (over the EIP-191 hash).
        recovered: Address,
    },
}

/// A Kernel v2.4 signature split by its mode, as `Kernel.validateUserOp` splits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelSignature<'a> {
    /// Mode 0: the rest goes to the default validator (here ECDSAValidator: r ‖ s ‖ v).
    Sudo(&'a [u8]),
    /// Mode 1: the rest goes to the validator stored for the callData's selector.
    Plugin(&'a [u8]),
    /// Mode 2: registers a validator for the callData's selector, then uses it.
    Enable(EnableSignature<'a>),
}

/// Mode 2's layout (`Kernel._approveValidator`): `mode(4) ‖ validAfter(6) ‖ validUntil(6) ‖
/// validator(20) ‖ executor(20) ‖ enableDataLength(32) ‖ enableData ‖ enableSigLength(32) ‖
/// enableSig ‖ validatorSignature`. `enableSig` is checked by the default validator over the
/// EIP-712 `ValidatorApproved` digest of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnableSignature<'a> {
    /// Start of the validator's validity, unix seconds (the `uint48` Kernel stores).
    pub valid_after: u64,
    /// End of the validator's validity, unix seconds (the `uint48` Kernel stores).
    pub valid_until: u64,
    /// The validator being registered for the callData's selector.
    pub validator: Address,
    /// The executor registered with it.
    pub executor: Address,
    /// What the validator's `enable` receives.
    pub enable_data: &'a [u8],
    /// The owner's approval, checked by the default validator over `ValidatorApproved`.
    pub enable_signature: &'a [u8],
    /// What the newly enabled validator's `validateUserOp` receives as `userOp.signature`.
    pub validator_signature: &'a [u8],
}

/// `initialize(ECDSAValidator, owner)`: the data the factory calls a new account with (also
/// what its address is derived from). ECDSAValidator's `enable` reads the owner from the first
/// 20 bytes, so the owner is packed, not ABI-encoded.
pub fn initialize_data(owner: Address) -> Bytes {
    IKernel::initializeCall { _defaultValidator: ECDSA_VALIDATOR, _data: owner.to_vec().into() }
        .abi_encode()
        .into()
}

/// `initCode` deploying the owner's Kernel v2.4 account number `index` through the canonical
/// factory: `factory ‖ createAccount(implementation, initialize(ECDSAValidator, owner), index)`.
pub fn init_code(owner: Address, index: U256) -> Bytes {
    init_code_with(KERNEL_FACTORY, KERNEL_V24_IMPLEMENTATION, initialize_data(owner), index)
}

/// [`init_code`] for any factory, implementation and initialization data.
pub fn init_code_with(
    factory: Address,
    implementation: Address,
    initialize_data: Bytes,
    index: U256,
) -> Bytes {
    let call = IKernelFactory::createAccountCall {
        _implementation: implementation,
        _data: initialize_data,
        _index: index,
    };
    let mut code = factory.to_vec();
    code.extend(call.abi_encode());
    code.into()
}

/// The counterfactual address of the owner's Kernel account number `index` from the canonical
/// factory; equal to `KernelFactory.getAccountAddress(initialize_data(owner), index)`.
pub fn account_address(owner: Address, index: U256) -> Address {
    account_address_with(KERNEL_FACTORY, &initialize_data(owner), index)
}

/// [`account_address`] for any factory and initialization data.
pub fn account_address_with(factory: Address, initialize_data: &[u8], index: U256) -> Address {
    factory.create2(account_salt(initialize_data, index), proxy_init_code_hash(factory))
}

/// `bytes32(uint256(keccak256(abi.encodePacked(_data, _index))) & type(uint96).max)`: only the
/// low 96 bits survive, because Solady's factory reserves the high 160 for a caller prefix.
pub fn account_salt(initialize_data: &[u8], index: U256) -> B256 {
    let mut packed = initialize_data.to_vec();
    packed.extend_from_slice(&index.to_be_bytes::<32>());
    let mut salt = keccak256(packed);
    salt.0[..20].fill(0);
    salt
}

/// keccak256 of the proxy creation code `AdminLessERC1967Factory._initCode` builds for
/// `factory`: a 9-byte creation prefix, the runtime (which compares the caller with the
/// factory's address baked into it) and zero padding up to the 0x89 bytes the factory hashes
/// and deploys. A factory whose address starts with six zero bytes gets the variant that
/// pushes its address with PUSH14 and has shorter jumps.
pub fn proxy_init_code_hash(factory: Address) -> B256 {
    let mut code = Vec::with_capacity(PROXY_INIT_CODE_LEN);
    if factory.0[..6] == [0u8; 6] {
        code.extend_from_slice(&hex!("60793d8160093d39f33d3d336d"));
        code.extend_from_slice(&factory.0[6..]);
        code.extend_from_slice(&hex!(
            "14605157363d3d37363d7f360894a13ba1a3210667c828492db98dca3e2076cc"
            "3735a920a3ca505d382bbc545af43d6000803e604c573d6000fd5b3d6000f35b"
            "3d3560203555604080361115604c5736038060403d373d3d355af43d6000803e"
            "604c573d6000fd"
        ));
    } else {
        code.extend_from_slice(&hex!("607f3d8160093d39f33d3d3373"));
        code.extend_from_slice(factory.as_slice());
        code.extend_from_slice(&hex!(
            "14605757363d3d37363d7f360894a13ba1a3210667c828492db98dca3e2076cc"
            "3735a920a3ca505d382bbc545af43d6000803e6052573d6000fd5b3d6000f35b"
            "3d356020355560408036111560525736038060403d373d3d355af43d6000803e"
            "6052573d6000fd"
        ));
    }
    code.resize(PROXY_INIT_CODE_LEN, 0);
    keccak256(code)
}

/// `keccak256(add(m, 0x13), 0x89)` in the factory.
const PROXY_INIT_CODE_LEN: usize = 0x89;

/// `Kernel.execute(to, value, data, Operation.Call)`.
pub fn encode_execute(to: Address, value: U256, data: Bytes) -> Bytes {
    IKernel::executeCall { to, value, data, operation: OPERATION_CALL }.abi_encode().into()
}

/// `Kernel.executeBatch(calls)`.
pub fn encode_execute_batch(calls: Vec<Call>) -> Bytes {
    IKernel::executeBatchCall { calls }.abi_encode().into()
}

/// The batch payment: `executeBatch([{token, 0, approve(settlement, amount)}, {settlement, 0,
/// settle(merchant, token, amount, requestHash)}])`.
pub fn encode_payment_batch(
    token: Address,
    settlement: Address,
    merchant: Address,
    amount: U256,
    request_hash: B256,
) -> Bytes {
    let settle = SettleCall { merchant, token, amount, request_hash };
    encode_execute_batch(vec![
        Call { to: token, value: U256::ZERO, data: encode_approve(settlement, amount) },
        Call { to: settlement, value: U256::ZERO, data: settle.abi_encode() },
    ])
}

/// The single-call payment, for accounts whose allowance is already in place:
/// `execute(settlement, 0, settle(...), Operation.Call)`.
pub fn encode_payment_execute(settlement: Address, settle: &SettleCall) -> Bytes {
    encode_execute(settlement, U256::ZERO, settle.abi_encode())
}

/// The owner's one call that installs `validator` for session payments: `setExecution` of
/// `executeSessionPayment` with the validator as both validator and executor (Kernel's fallback
/// DELEGATECALLs the executor for that selector) and no time bounds of Kernel's own (the grant has
/// them), wrapped in `execute(account, 0, …)` because only the account itself may call it and
/// Kernel lets its owner key call `execute` directly (ECDSAValidator's `validCaller`).
pub fn install_session_validator_call(account: Address, validator: Address) -> Bytes {
    let set = IKernel::setExecutionCall {
        _selector: SESSION_PAYMENT_SELECTOR.into(),
        _executor: validator,
        _validator: validator,
        _validUntil: alloy::primitives::aliases::U48::ZERO,
        _validAfter: alloy::primitives::aliases::U48::ZERO,
        _enableData: Bytes::new(),
    };
    encode_execute(account, U256::ZERO, set.abi_encode().into())
}

/// A session payment through this project's `KernelSessionValidator`: the 164-byte
/// `executeSessionPayment(token, settlement, merchant, amount, requestHash)`, which the account
/// executes by DELEGATECALLing the validator. Shared with Safe sessions
/// ([`crate::accounts::session_payment`]); the batch shapes cost a session payment about 7% more gas,
/// mostly calldata, so the session side uses this one.
pub fn encode_session_payment(settlement: Address, settle: &SettleCall) -> Bytes {
    session_payment::encode_session_payment(settlement, settle)
}

/// The payment a Kernel session op makes: [`encode_session_payment`]'s bytes exactly.
pub fn decode_session_payment(call_data: &[u8]) -> Result<DecodedPayment, KernelCallDataError> {
    Ok(session_payment::decode_session_payment(call_data)?)
}

/// Accepts exactly Kernel's encoding of the two payment shapes, in canonical ABI encoding.
pub fn decode_payment(call_data: &[u8]) -> Result<DecodedPayment, KernelCallDataError> {
    let selector: [u8; 4] = call_data
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(CallDataError::MissingSelector { at: CallSite::Account, len: call_data.len() })?;
    // Each branch rewrites Kernel's call in SimpleAccount's encoding and lets the shared rule
    // judge it; that rebuild is canonical by construction, and Kernel's own bytes were checked
    // canonical by `decode_strict`.
    let simple = match selector {
        IKernel::executeCall::SELECTOR => {
            let call: IKernel::executeCall = decode_strict(call_data)?;
            if call.operation != OPERATION_CALL {
                return Err(KernelCallDataError::NotACall { operation: call.operation });
            }
            encode_simple_execute(call.to, call.value, call.data)
        }
        IKernel::executeBatchCall::SELECTOR => {
            let call: IKernel::executeBatchCall = decode_strict(call_data)?;
            let mut dest = Vec::with_capacity(call.calls.len());
            let mut func = Vec::with_capacity(call.calls.len());
            for (index, c) in call.calls.into_iter().enumerate() {
                if !c.value.is_zero() {
                    return Err(KernelCallDataError::BatchValue { index, value: c.value });
                }
                dest.push(c.to);
                func.push(c.data);
            }
            encode_simple_batch(dest, func)
        }
        other => {
            return Err(CallDataError::UnknownSelector {
                at: CallSite::Account,
                selector: other.into(),
            }
            .into());
        }
    };
    Ok(call_data::decode_payment(&simple)?)
}

/// Kernel v2.4 as an [`AccountAbi`]: accounts created through the factory named by the
/// [`AccountConfig`] with this implementation and the ECDSAValidator as default validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelAbi {
    /// The implementation `createAccount` points new proxies at. It is not part of the
    /// account's address, only of what the account runs.
    pub implementation: Address,
    /// This project's `KernelSessionValidator`, whose session payments carry a third call to
    /// it; `None`: only owner payments are recognised.
    pub session_validator: Option<Address>,
}

impl KernelAbi {
    /// The canonical Kernel v2.4 implementation, owner payments only.
    pub const CANONICAL: Self =
        Self { implementation: KERNEL_V24_IMPLEMENTATION, session_validator: None };

    /// [`KernelAbi::CANONICAL`] that also knows session payments through `validator`.
    pub const fn with_session_validator(validator: Address) -> Self {
        Self { implementation: KERNEL_V24_IMPLEMENTATION, session_validator: Some(validator) }
    }
}

impl Default for KernelAbi {
    fn default() -> Self {
        Self::CANONICAL
    }
}

impl AccountAbi for KernelAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::Kernel
    }

    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError> {
        let owner = config.sole_owner(self.kind())?;
        Ok(init_code_with(config.factory, self.implementation, initialize_data(owner), config.salt))
    }

    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError> {
        let owner = config.sole_owner(self.kind())?;
        Ok(Some(account_address_with(config.factory, &initialize_data(owner), config.salt)))
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

    /// The owner shapes, and the session shape when a session validator is known (its executor
    /// is what gives `executeSessionPayment` a meaning on the account).
    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        if self.session_validator.is_some() && is_session_shape(call_data) {
            return Ok(decode_session_payment(call_data)?);
        }
        Ok(decode_payment(call_data)?)
    }

    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        if call_data.is_empty() {
            return Some(Vec::new());
        }
        match call_data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok())? {
            IKernel::executeCall::SELECTOR => {
                let c = IKernel::executeCall::abi_decode(call_data).ok()?;
                // A delegatecall runs foreign code as the account: its targets are unknowable.
                (c.operation == OPERATION_CALL).then(|| vec![c.to])
            }
            IKernel::executeBatchCall::SELECTOR => IKernel::executeBatchCall::abi_decode(call_data)
                .ok()
                .map(|c| c.calls.into_iter().map(|call| call.to).collect()),
            // The executor calls the token, the settlement and itself (the charge).
            SESSION_PAYMENT_SELECTOR => {
                let validator = self.session_validator?;
                let p = decode_session_payment(call_data).ok()?;
                Some(vec![p.settle.token, p.settlement, validator])
            }
            _ => None,
        }
    }

    /// Kernel's own routing: mode 0 goes to the default validator (the owner's ECDSAValidator),
    /// modes 1 and 2 to a plugin validator (a session key's).
    fn signer_role(&self, signature: &[u8]) -> SignerRole {
        match parse_signature(signature) {
            Ok(KernelSignature::Plugin(_) | KernelSignature::Enable(_)) => SignerRole::Session,
            Ok(KernelSignature::Sudo(_)) | Err(_) => SignerRole::Owner,
        }
    }
}

/// A Kernel account's session side: payments in the session shape through `validator`, signed
/// in plugin mode. Address and initCode are the owner's (a session is installed in an account
/// that exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelSessionAbi {
    /// The account's owner side, which also knows session payments through `validator`.
    pub account: KernelAbi,
    /// This project's `KernelSessionValidator`, installed in the account.
    pub validator: Address,
}

impl KernelSessionAbi {
    /// The session side of canonical Kernel v2.4 accounts with `validator` installed.
    pub const fn new(validator: Address) -> Self {
        Self { account: KernelAbi::with_session_validator(validator), validator }
    }
}

impl AccountAbi for KernelSessionAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::Kernel
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
        encode_session_payment(p.settlement, &p.settle)
    }

    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        Ok(decode_session_payment(call_data)?)
    }

    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        self.account.call_targets(call_data)
    }

    fn signer_role(&self, signature: &[u8]) -> SignerRole {
        self.account.signer_role(signature)
    }
}

/// Whether `call_data` calls `executeSessionPayment` (the session shape, to be judged by
/// [`decode_session_payment`]).
fn is_session_shape(call_data: &[u8]) -> bool {
    call_data.get(..4) == Some(&SESSION_PAYMENT_SELECTOR[..])
}

/// `MODE_SUDO ‖ r ‖ s ‖ v`: what `userOp.signature` carries for an owner-signed op. Sign the
/// userOpHash with EIP-191 (`signer.sign_message(hash)`), as for a SimpleAccount.
pub fn owner_signature(signature: &Signature) -> Bytes {
    let mut out = MODE_SUDO.to_vec();
    out.extend_from_slice(&signature.as_bytes());
    out.into()
}

/// `MODE_PLUGIN ‖ <session signature>`: what a session op carries; Kernel hands the rest to the
/// validator registered for `executeSessionPayment`.
pub fn session_signature(session_signature: &[u8]) -> Bytes {
    let mut out = MODE_PLUGIN.to_vec();
    out.extend_from_slice(session_signature);
    out.into()
}

/// Splits a signature by its mode, exactly as `Kernel.validateUserOp` does.
pub fn parse_signature(signature: &[u8]) -> Result<KernelSignature<'_>, KernelSignatureError> {
    let Some((mode, rest)) = signature.split_first_chunk::<4>() else {
        return Err(KernelSignatureError::MissingMode { len: signature.len() });
    };
    match *mode {
        MODE_SUDO => Ok(KernelSignature::Sudo(rest)),
        MODE_PLUGIN => Ok(KernelSignature::Plugin(rest)),
        MODE_ENABLE => parse_enable(signature).map(KernelSignature::Enable),
        mode => Err(KernelSignatureError::UnknownMode { mode }),
    }
}

/// What ECDSAValidator accepts from `owner` for `user_op_hash` in sudo mode: 65 bytes that
/// recover to the owner over the EIP-191 hash or, failing that, over the raw hash.
pub fn verify_owner_signature(
    owner: Address,
    user_op_hash: B256,
    signature: &[u8],
) -> Result<(), KernelSignatureError> {
    let rest = match parse_signature(signature)? {
        KernelSignature::Sudo(rest) => rest,
        KernelSignature::Plugin(_) => {
            return Err(KernelSignatureError::NotSudo { mode: MODE_PLUGIN });
        }
        KernelSignature::Enable(_) => {
            return Err(KernelSignatureError::NotSudo { mode: MODE_ENABLE });
        }
    };
    if rest.len() != 65 {
        return Err(KernelSignatureError::OwnerSignatureLength { len: rest.len() });
    }
    // The validator hands v to ecrecover unchanged, which knows only 27 and 28.
    if !matches!(rest[64], 27 | 28) {
        return Err(KernelSignatureError::OwnerSignatureV { v: rest[64] });
    }
    let sig = Signature::try_from(rest)?;
    let recovered = sig.recover_address_from_msg(user_op_hash)?;
    if recovered == owner || sig.recover_address_from_prehash(&user_op_hash).ok() == Some(owner) {
        return Ok(());
    }
    Err(KernelSignatureError::WrongSigner { owner, recovered })
}

fn parse_enable(signature: &[u8]) -> Result<EnableSignature<'_>, KernelSignatureError> {
    let take = |what: &'static str, from: usize, len: usize| {
        let need = from.saturating_add(len);
        signature.get(from..need).ok_or(KernelSignatureError::EnableTruncated {
            what,
            need,
            have: signature.len(),
        })
    };
    let word_len = |what: &'static str, at: usize| -> Result<usize, KernelSignatureError> {
        let word = U256::from_be_slice(take(what, at, 32)?);
        // Anything beyond the signature's own length fails the slice below with this reason.
        Ok(usize::try_from(word).unwrap_or(usize::MAX))
    };
    let u48 = |b: &[u8]| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let valid_after = u48(take("validAfter", 4, 6)?);
    let valid_until = u48(take("validUntil", 10, 6)?);
    let validator = Address::from_slice(take("validator", 16, 20)?);
    let executor = Address::from_slice(take("executor", 36, 20)?);
    let data_len = word_len("enableDataLength", 56)?;
    let enable_data = take("enableData", 88, data_len)?;
    let sig_len_at = 88 + enable_data.len();
    let sig_len = word_len("enableSigLength", sig_len_at)?;
    let enable_signature = take("enableSig", sig_len_at + 32, sig_len)?;
    let validator_signature = &signature[sig_len_at + 32 + enable_signature.len()..];
    Ok(EnableSignature {
        valid_after,
        valid_until,
        validator,
        executor,
        enable_data,
        enable_signature,
        validator_signature,
    })
}

fn decode_strict<C: SolCall>(data: &[u8]) -> Result<C, CallDataError> {
    crate::call_data::decode_strict(data, CallSite::Account)
}

#[cfg(test)]
mod session_shape_tests {
    use super::*;

    const VALIDATOR: Address = address!("0x5000000000000000000000000000000000000005");

    fn settle() -> SettleCall {
        SettleCall {
            merchant: address!("0x3000000000000000000000000000000000000003"),
            token: address!("0x1000000000000000000000000000000000000001"),
            amount: U256::from(1_500_000u64),
            request_hash: B256::repeat_byte(0x44),
        }
    }

    #[test]
    fn session_payment_round_trips_and_is_the_validators_164_bytes() {
        let settlement = address!("0x2000000000000000000000000000000000000002");
        let data = encode_session_payment(settlement, &settle());
        // `SessionPaymentCall.LENGTH` in contracts/src/SessionPaymentCall.sol.
        assert_eq!(data.len(), 164);
        let decoded = decode_session_payment(&data).unwrap();
        assert_eq!((decoded.settlement, decoded.settle), (settlement, settle()));
        let abi = KernelAbi::with_session_validator(VALIDATOR);
        assert_eq!(abi.decode_payment(&data).unwrap().settle, settle());
        assert_eq!(abi.call_targets(&data).unwrap(), vec![settle().token, settlement, VALIDATOR]);
        // Without the validator configured, the account gives the selector no meaning.
        assert!(KernelAbi::CANONICAL.decode_payment(&data).is_err());
        assert_eq!(KernelAbi::CANONICAL.call_targets(&data), None);
    }

    #[test]
    fn a_session_payment_in_another_encoding_is_refused() {
        let settlement = address!("0x2000000000000000000000000000000000000002");
        let data = encode_session_payment(settlement, &settle()).to_vec();
        let mut long = data.clone();
        long.push(0);
        let mut dirty = data.clone();
        dirty[68] = 1;
        for bad in [long, dirty, data[..100].to_vec()] {
            assert!(matches!(
                decode_session_payment(&bad),
                Err(KernelCallDataError::SessionPayment(_))
            ));
        }
        // The batch shape is an owner payment, never a session one.
        let batch = encode_payment_batch(
            settle().token,
            settlement,
            settle().merchant,
            settle().amount,
            settle().request_hash,
        );
        assert!(decode_session_payment(&batch).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{
        primitives::b256,
        signers::{SignerSync, local::PrivateKeySigner},
    };

    use crate::call_data::ApproveCall;

    const TOKEN: Address = address!("0x1000000000000000000000000000000000000001");
    const SETTLEMENT: Address = address!("0x2000000000000000000000000000000000000002");
    const MERCHANT: Address = address!("0x3000000000000000000000000000000000000003");
    const REQUEST: B256 =
        b256!("0x4444444444444444444444444444444444444444444444444444444444444444");
    /// Anvil's account 1.
    const OWNER: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

    fn amount() -> U256 {
        U256::from(1_500_000u64)
    }

    fn settle() -> SettleCall {
        SettleCall { merchant: MERCHANT, token: TOKEN, amount: amount(), request_hash: REQUEST }
    }

    // Golden vectors below were computed independently with viem 2 (encodeFunctionData,
    // encodePacked, getContractAddress) from the v2.4 sources' signatures and the factory's
    // `_initCode` assembly, not with this module.

    #[test]
    fn selectors_match_kernel_v24() {
        assert_eq!(IKernel::executeCall::SELECTOR, hex!("51945447"));
        assert_eq!(IKernel::executeBatchCall::SELECTOR, hex!("34fcd5be"));
        assert_eq!(IKernel::initializeCall::SELECTOR, hex!("d1f57894"));
        assert_eq!(IKernelFactory::createAccountCall::SELECTOR, hex!("296601cd"));
        assert_eq!(IKernelFactory::getAccountAddressCall::SELECTOR, hex!("4d6cb700"));
    }

    #[test]
    fn init_code_golden() {
        assert_eq!(
            initialize_data(OWNER),
            Bytes::from(hex!(
                "d1f57894000000000000000000000000d9ab5096a832b9ce79914329daee236f8eea0390"
                "0000000000000000000000000000000000000000000000000000000000000040"
                "0000000000000000000000000000000000000000000000000000000000000014"
                "70997970c51812dc3a010c7d01b50e0d17dc79c8000000000000000000000000"
            ))
        );
        let code = init_code(OWNER, U256::ZERO);
        assert_eq!(&code[..20], KERNEL_FACTORY.as_slice());
        assert_eq!(
            code,
            Bytes::from(hex!(
                "5de4839a76cf55d0c90e2061ef4386d962e15ae3296601cd"
                "000000000000000000000000d3082872f8b06073a021b4602e022d5a070d7cfc"
                "0000000000000000000000000000000000000000000000000000000000000060"
                "0000000000000000000000000000000000000000000000000000000000000000"
                "0000000000000000000000000000000000000000000000000000000000000084"
                "d1f57894000000000000000000000000d9ab5096a832b9ce79914329daee236f"
                "8eea039000000000000000000000000000000000000000000000000000000000"
                "0000004000000000000000000000000000000000000000000000000000000000"
                "0000001470997970c51812dc3a010c7d01b50e0d17dc79c80000000000000000"
                "0000000000000000000000000000000000000000000000000000000000000000"
            ))
        );
    }

    #[test]
    fn counterfactual_address_golden() {
        assert_eq!(
            proxy_init_code_hash(KERNEL_FACTORY),
            b256!("0xee9d8350bd899dd261db689aafd87eb8a30f085adbaff48152399438ff4eed73")
        );
        assert_eq!(
            account_salt(&initialize_data(OWNER), U256::ZERO),
            b256!("0x000000000000000000000000000000000000000035b5028e71efb8deb2af4a73")
        );
        assert_eq!(
            account_address(OWNER, U256::ZERO),
            address!("0x6F42f93260ae23bC3fa7003E6A4b225a4C8Ef9E1")
        );
        assert_eq!(
            account_address(OWNER, U256::from(7)),
            address!("0x8b26e546D95112DD7d1D2363d9c5b19354aE2F03")
        );
    }

    #[test]
    fn payment_encodings_golden() {
        let batch = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        assert_eq!(batch.len(), 644);
        assert_eq!(
            keccak256(&batch),
            b256!("0x433a15b5b2974de5b5451ebf047b891540a29bc402de39d5576eacb0da251924")
        );
        let exec = encode_payment_execute(SETTLEMENT, &settle());
        assert_eq!(exec.len(), 324);
        assert_eq!(
            keccak256(&exec),
            b256!("0x3560ec3659fef42caed08bc98fe15128081f48c49b8b8bdb9b0f86a5927a0313")
        );
    }

    #[test]
    fn decode_round_trips() {
        let batch = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        assert_eq!(
            decode_payment(&batch).unwrap(),
            DecodedPayment {
                settlement: SETTLEMENT,
                settle: settle(),
                approve: Some(ApproveCall { token: TOKEN, spender: SETTLEMENT, amount: amount() }),
            }
        );
        let exec = encode_payment_execute(SETTLEMENT, &settle());
        assert_eq!(
            decode_payment(&exec).unwrap(),
            DecodedPayment { settlement: SETTLEMENT, settle: settle(), approve: None }
        );
    }

    #[test]
    fn decode_refuses_other_shapes_with_reasons() {
        // SimpleAccount's encoding of the same payment is not Kernel's.
        let simple = crate::encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        assert!(matches!(
            decode_payment(&simple),
            Err(KernelCallDataError::Shape(CallDataError::UnknownSelector {
                at: CallSite::Account,
                ..
            }))
        ));
        // Delegatecall.
        let data = IKernel::executeCall {
            to: SETTLEMENT,
            value: U256::ZERO,
            data: settle().abi_encode(),
            operation: 1,
        }
        .abi_encode();
        assert!(matches!(
            decode_payment(&data),
            Err(KernelCallDataError::NotACall { operation: 1 })
        ));
        // Value on a batch entry.
        let data = encode_execute_batch(vec![
            Call { to: TOKEN, value: U256::ZERO, data: encode_approve(SETTLEMENT, amount()) },
            Call { to: SETTLEMENT, value: U256::from(5), data: settle().abi_encode() },
        ]);
        assert!(matches!(
            decode_payment(&data),
            Err(KernelCallDataError::BatchValue { index: 1, value }) if value == U256::from(5)
        ));
        // Value on execute.
        let data = encode_execute(SETTLEMENT, U256::from(1), settle().abi_encode());
        assert!(matches!(
            decode_payment(&data),
            Err(KernelCallDataError::Shape(CallDataError::NonzeroValue { .. }))
        ));
        // A plain token transfer through execute.
        let transfer = Bytes::from(hex!("a9059cbb"));
        let data = encode_execute(TOKEN, U256::ZERO, transfer);
        assert!(matches!(
            decode_payment(&data),
            Err(KernelCallDataError::Shape(CallDataError::UnknownSelector {
                at: CallSite::Execute,
                ..
            }))
        ));
        // Approve to another spender.
        let data = encode_execute_batch(vec![
            Call { to: TOKEN, value: U256::ZERO, data: encode_approve(MERCHANT, amount()) },
            Call { to: SETTLEMENT, value: U256::ZERO, data: settle().abi_encode() },
        ]);
        assert!(matches!(
            decode_payment(&data),
            Err(KernelCallDataError::Shape(CallDataError::ApproveSpenderMismatch { .. }))
        ));
        // Settle first.
        let data = encode_execute_batch(vec![
            Call { to: SETTLEMENT, value: U256::ZERO, data: settle().abi_encode() },
            Call { to: TOKEN, value: U256::ZERO, data: encode_approve(SETTLEMENT, amount()) },
        ]);
        assert!(matches!(
            decode_payment(&data),
            Err(KernelCallDataError::Shape(CallDataError::SettleBeforeApprove))
        ));
        // Empty and short.
        assert!(matches!(
            decode_payment(&[0x34, 0xfc]),
            Err(KernelCallDataError::Shape(CallDataError::MissingSelector { len: 2, .. }))
        ));
        // Trailing bytes: not canonical.
        let mut long =
            encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST).to_vec();
        long.extend_from_slice(&[0u8; 32]);
        assert!(matches!(
            decode_payment(&long),
            Err(KernelCallDataError::Shape(
                CallDataError::MalformedAbi { .. } | CallDataError::NonCanonicalAbi { .. }
            ))
        ));
        // The operation word holds a uint8: 1 is `NotACall` (above), a value that does not fit
        // (here 256) is malformed ABI, as Kernel's own decoder reverts on it.
        let mut dirty = encode_payment_execute(SETTLEMENT, &settle()).to_vec();
        dirty[4 + 3 * 32 + 30] = 1;
        assert!(matches!(
            decode_payment(&dirty),
            Err(KernelCallDataError::Shape(CallDataError::MalformedAbi { .. }))
        ));
    }

    #[test]
    fn decode_never_panics_on_corruption() {
        let good = encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST);
        for len in 0..good.len() {
            let _ = decode_payment(&good[..len]);
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut data = good.to_vec();
                data[i] ^= flip;
                let _ = decode_payment(&data);
            }
        }
    }

    #[test]
    fn owner_signature_envelope() {
        let owner = PrivateKeySigner::random();
        let stranger = PrivateKeySigner::random();
        let hash = keccak256("user op");
        let sig = owner_signature(&owner.sign_message_sync(hash.as_slice()).unwrap());
        assert_eq!(sig.len(), 69);
        assert_eq!(sig[..4], MODE_SUDO);
        assert!(
            matches!(parse_signature(&sig), Ok(KernelSignature::Sudo(rest)) if rest.len() == 65)
        );
        verify_owner_signature(owner.address(), hash, &sig).unwrap();

        // ECDSAValidator's fallback: a signature over the raw hash is accepted too.
        let raw = owner_signature(&owner.sign_hash_sync(&hash).unwrap());
        verify_owner_signature(owner.address(), hash, &raw).unwrap();

        let wrong = owner_signature(&stranger.sign_message_sync(hash.as_slice()).unwrap());
        assert!(matches!(
            verify_owner_signature(owner.address(), hash, &wrong),
            Err(KernelSignatureError::WrongSigner { recovered, .. }) if recovered == stranger.address()
        ));
        // The bare 65 bytes (SimpleAccount's envelope) are read as mode r[0..4].
        let bare = owner.sign_message_sync(hash.as_slice()).unwrap().as_bytes();
        assert!(verify_owner_signature(owner.address(), hash, &bare).is_err());
        let mut plugin = sig.to_vec();
        plugin[3] = 1;
        assert!(matches!(
            verify_owner_signature(owner.address(), hash, &plugin),
            Err(KernelSignatureError::NotSudo { mode: MODE_PLUGIN })
        ));
        assert!(matches!(
            verify_owner_signature(owner.address(), hash, &sig[..68]),
            Err(KernelSignatureError::OwnerSignatureLength { len: 64 })
        ));
        let mut low_v = sig.to_vec();
        low_v[68] -= 27;
        assert!(matches!(
            verify_owner_signature(owner.address(), hash, &low_v),
            Err(KernelSignatureError::OwnerSignatureV { v: 0 | 1 })
        ));
        assert!(matches!(
            parse_signature(&[0, 0, 0]),
            Err(KernelSignatureError::MissingMode { len: 3 })
        ));
        assert!(matches!(
            parse_signature(&[0, 0, 0, 3, 1]),
            Err(KernelSignatureError::UnknownMode { mode: [0, 0, 0, 3] })
        ));
    }

    #[test]
    fn enable_signature_layout() {
        let validator = address!("0x5555555555555555555555555555555555555555");
        let executor = address!("0x6666666666666666666666666666666666666666");
        let mut sig = MODE_ENABLE.to_vec();
        sig.extend_from_slice(&[0, 0, 0, 0, 0, 10]); // validAfter
        sig.extend_from_slice(&[0, 0, 0, 0, 1, 0]); // validUntil
        sig.extend_from_slice(validator.as_slice());
        sig.extend_from_slice(executor.as_slice());
        sig.extend_from_slice(&U256::from(3).to_be_bytes::<32>());
        sig.extend_from_slice(&[0xd0, 0xd1, 0xd2]);
        sig.extend_from_slice(&U256::from(2).to_be_bytes::<32>());
        sig.extend_from_slice(&[0xe0, 0xe1]);
        sig.extend_from_slice(&[0xf0, 0xf1, 0xf2, 0xf3]);
        assert_eq!(
            parse_signature(&sig).unwrap(),
            KernelSignature::Enable(EnableSignature {
                valid_after: 10,
                valid_until: 256,
                validator,
                executor,
                enable_data: &[0xd0, 0xd1, 0xd2],
                enable_signature: &[0xe0, 0xe1],
                validator_signature: &[0xf0, 0xf1, 0xf2, 0xf3],
            })
        );
        for len in 4..sig.len() - 4 {
            assert!(
                matches!(
                    parse_signature(&sig[..len]),
                    Err(KernelSignatureError::EnableTruncated { .. })
                ),
                "len {len}"
            );
        }
        // A length word larger than the signature is a truncation, not a panic.
        let mut huge = sig.clone();
        huge[56..88].fill(0xff);
        assert!(matches!(
            parse_signature(&huge),
            Err(KernelSignatureError::EnableTruncated { what: "enableData", .. })
        ));
    }
}
