//! Safe 1.4.1 with Safe4337Module v0.2.0, the Safe release for EntryPoint v0.6.
//!
//! How such an account pays, in protocol terms only (no RPC, no signing):
//! - **Deployment**: `initCode = SafeProxyFactory ‖ createProxyWithNonce(singleton, setup(...),
//!   saltNonce)`, where `setup` delegatecalls `AddModulesLib.enableModules([module])` and sets
//!   the module as fallback handler. The EntryPoint calls `validateUserOp` / `executeUserOp*` on
//!   the Safe, which has neither, so its fallback forwards them to the module with the original
//!   caller appended; enabling it as a module lets it act through `execTransactionFromModule`.
//! - **Payment callData**: `executeUserOpWithErrorString(MultiSendCallOnly, 0,
//!   multiSend(approve ‖ settle), DELEGATECALL)`. The module accepts no other entry points; the
//!   batch is a delegatecall into MultiSendCallOnly because the module executes one call per op.
//!   The call-only variant is chosen because it refuses nested delegatecalls by construction.
//! - **Signature**: `validAfter (6 bytes) ‖ validUntil (6 bytes) ‖ owner signatures`, each owner
//!   signing the EIP-712 `SafeOp` hash (domain = chain id + module address) with plain ECDSA,
//!   signatures ordered by ascending owner address as `Safe.checkSignatures` requires.
//!
//! The inverse, [`SafeDeployment::decode_payment`], reduces a Safe op's callData to the same
//! [`DecodedPayment`] SimpleAccount payments decode to, with the same approve/settle rules
//! (it re-expresses the MultiSend entries as an `executeBatch` and runs [`decode_payment`] on it),
//! so the facilitator and the scope check reason about one payment shape for every account kind.

pub mod session;

use std::fmt;

use alloy::{
    primitives::{
        Address, B256, Bytes, Selector, Signature, U256, address, aliases::U48, hex, keccak256,
    },
    sol,
    sol_types::{Eip712Domain, SolCall, SolStruct, abi::AbiDecoderConfig},
};

use super::{
    AccountAbi, AccountCallDataError, AccountConfig, AccountConfigError, AccountKind, PaymentCall,
    SignerRole,
};
use crate::{
    ENTRY_POINT_V06, UserOperation,
    call_data::{
        CallDataError, DecodedPayment, SettleCall, decode_payment, encode_approve, encode_execute,
        encode_execute_batch,
    },
};

/// The Safe singleton factory (safe-global/safe-singleton-factory): a CREATE2 deployer whose
/// address is the same on every chain it was deployed to by its presigned transaction. Safe's
/// canonical addresses are CREATE2 outputs of it with salt 0.
pub const SAFE_SINGLETON_FACTORY: Address = address!("0x914d7Fec6aaC8cd542e72Bca78B30650d45643d7");
/// Safe 1.4.1 singleton (the non-L2 `Safe`), per `@safe-global/safe-deployments`.
pub const SAFE_SINGLETON_V141: Address = address!("0x41675C099F32341bf84BFc5382aF534df5C7461a");
/// Safe 1.4.1 `SafeL2` singleton (emits events for indexers; what Safe deploys on L2s), per
/// `@safe-global/safe-deployments`. Not on the devnet; recognised so deployed L2 Safes resolve.
pub const SAFE_L2_SINGLETON_V141: Address = address!("0x29fcB43b46531BcA003ddC8FCB67FFE91900C762");
/// Safe 1.4.1 `SafeProxyFactory`.
pub const SAFE_PROXY_FACTORY_V141: Address = address!("0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67");
/// Safe 1.4.1 `MultiSend` (delegatecall only; entries may themselves delegatecall).
pub const MULTI_SEND_V141: Address = address!("0x38869bf66a61cF6bDB996A6aE40D5853Fd43B526");
/// Safe 1.4.1 `MultiSendCallOnly` (entries must be plain calls).
pub const MULTI_SEND_CALL_ONLY_V141: Address =
    address!("0x9641d764fc13c8B624c04430C7356C1C7C8102e2");
/// Safe 1.4.1 `CompatibilityFallbackHandler`.
pub const COMPATIBILITY_FALLBACK_HANDLER_V141: Address =
    address!("0xfd0732Dc9E303f09fCEf3a7388Ad10A83459Ec99");
/// `SENTINEL_OWNERS` / `SENTINEL_MODULES`: the head of Safe's linked lists, never an owner.
const SENTINEL: Address = address!("0x0000000000000000000000000000000000000001");

/// Safe4337Module v0.2.0 bound to [`ENTRY_POINT_V06`], per
/// `@safe-global/safe-modules-deployments` (deployed through the 0x4e59… CREATE2 proxy).
pub const SAFE_4337_MODULE_V020: Address = address!("0xa581c4A4DB7175302464fF3C06380BC3270b4037");
/// AddModulesLib v0.2.0, the setup library that enables the module during `Safe.setup`.
pub const ADD_MODULES_LIB_V020: Address = address!("0x8EcD4ec46D4D2a6B64fE960B3D64e8B94B2234eb");

/// `type(SafeProxy).creationCode` of Safe 1.4.1 (`SafeProxyFactory.proxyCreationCode()`); the
/// proxy's CREATE2 init code is this followed by the singleton as a 32-byte word. Pinned here so
/// the counterfactual address needs no chain read; the devnet tests compare it with the factory.
pub const SAFE_PROXY_CREATION_CODE: &[u8] = &hex!(
    "608060405234801561001057600080fd5b506040516101e63803806101e68339818101604052602081101561003357600080fd5b8101908080519060200190929190505050600073ffffffffffffffffffffffffffffffffffffffff168173ffffffffffffffffffffffffffffffffffffffff1614156100ca576040517f08c379a00000000000000000000000000000000000000000000000000000000081526004018080602001828103825260228152602001806101c46022913960400191505060405180910390fd5b806000806101000a81548173ffffffffffffffffffffffffffffffffffffffff021916908373ffffffffffffffffffffffffffffffffffffffff1602179055505060ab806101196000396000f3fe608060405273ffffffffffffffffffffffffffffffffffffffff600054167fa619486e0000000000000000000000000000000000000000000000000000000060003514156050578060005260206000f35b3660008037600080366000845af43d6000803e60008114156070573d6000fd5b3d6000f3fea264697066735822122003d1488ee65e08fa41e58e888a9865554c535f2c77126a82cb4c0f917f31441364736f6c63430007060033496e76616c69642073696e676c65746f6e20616464726573732070726f7669646564"
);

/// `Enum.Operation` of Safe: what `execTransactionFromModule` does with `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Operation {
    /// A plain call: the only operation a payment's entries may use.
    Call = 0,
    /// Runs `to`'s code in the Safe's context: allowed only into a MultiSend library.
    DelegateCall = 1,
}

impl Operation {
    fn from_u8(op: u8) -> Option<Self> {
        match op {
            0 => Some(Self::Call),
            1 => Some(Self::DelegateCall),
            _ => None,
        }
    }
}

sol! {
    /// Safe 1.4.1: the calls this crate encodes or the tests read.
    interface ISafe {
        function setup(
            address[] _owners,
            uint256 _threshold,
            address to,
            bytes data,
            address fallbackHandler,
            address paymentToken,
            uint256 payment,
            address paymentReceiver
        ) external;
        function getOwners() external view returns (address[] owners);
        function getThreshold() external view returns (uint256 threshold);
        function isModuleEnabled(address module) external view returns (bool enabled);
        function getModulesPaginated(address start, uint256 pageSize)
            external view returns (address[] array, address next);
        function domainSeparator() external view returns (bytes32 separator);
    }

    /// Safe 1.4.1 `SafeProxyFactory`.
    interface ISafeProxyFactory {
        function createProxyWithNonce(address _singleton, bytes initializer, uint256 saltNonce)
            external returns (address proxy);
        function proxyCreationCode() external pure returns (bytes code);
    }

    /// Safe 1.4.1 `MultiSend` / `MultiSendCallOnly`: `transactions` is the packed
    /// `operation (1) ‖ to (20) ‖ value (32) ‖ data length (32) ‖ data` of each entry.
    interface IMultiSend {
        function multiSend(bytes transactions) external payable;
    }

    /// AddModulesLib v0.2.0, delegatecalled by `Safe.setup`.
    interface IAddModulesLib {
        function enableModules(address[] modules) external;
    }

    /// Safe4337Module v0.2.0: the two execution entry points its `validateUserOp` admits, and the
    /// views that pin its hashing.
    interface ISafe4337Module {
        /// ERC-4337 v0.6 `UserOperation` (a twin of `crate::abi::UserOperation`; `sol!` types
        /// cannot be shared across macro invocations).
        struct UserOperation {
            address sender;
            uint256 nonce;
            bytes initCode;
            bytes callData;
            uint256 callGasLimit;
            uint256 verificationGasLimit;
            uint256 preVerificationGas;
            uint256 maxFeePerGas;
            uint256 maxPriorityFeePerGas;
            bytes paymasterAndData;
            bytes signature;
        }

        function executeUserOp(address to, uint256 value, bytes data, uint8 operation) external;
        function executeUserOpWithErrorString(address to, uint256 value, bytes data, uint8 operation)
            external;
        function getOperationHash(UserOperation userOp) external view returns (bytes32 operationHash);
        function domainSeparator() external view returns (bytes32 separator);
        function SUPPORTED_ENTRYPOINT() external view returns (address entryPoint);
    }

    /// The EIP-712 struct owners sign (`SAFE_OP_TYPEHASH` of the module): every op field except
    /// the signature, byte fields hashed, plus the validity window and the EntryPoint.
    #[derive(Debug, PartialEq, Eq)]
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
}

impl From<&UserOperation> for ISafe4337Module::UserOperation {
    fn from(op: &UserOperation) -> Self {
        Self {
            sender: op.sender,
            nonce: op.nonce,
            initCode: op.init_code.clone(),
            callData: op.call_data.clone(),
            callGasLimit: op.call_gas_limit,
            verificationGasLimit: op.verification_gas_limit,
            preVerificationGas: op.pre_verification_gas,
            maxFeePerGas: op.max_fee_per_gas,
            maxPriorityFeePerGas: op.max_priority_fee_per_gas,
            paymasterAndData: op.paymaster_and_data.clone(),
            signature: op.signature.clone(),
        }
    }
}

/// Where the Safe contracts and the 4337 module live on a chain. [`SafeDeployment::CANONICAL`]
/// holds on every chain Safe deployed to, and on the devnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SafeDeployment {
    /// The Safe 1.4.1 singleton every proxy delegates to.
    pub singleton: Address,
    /// `SafeProxyFactory` 1.4.1: the initCode's factory.
    pub proxy_factory: Address,
    /// `MultiSend` 1.4.1 (the batch library a payment delegatecalls into).
    pub multi_send: Address,
    /// `MultiSendCallOnly` 1.4.1 (the same, refusing nested delegatecalls).
    pub multi_send_call_only: Address,
    /// `CompatibilityFallbackHandler` 1.4.1.
    pub fallback_handler: Address,
    /// Safe4337Module v0.2.0: the module and fallback handler that serves the EntryPoint.
    pub module: Address,
    /// `AddModulesLib` v0.2.0, delegatecalled by `setup` to enable the module.
    pub add_modules_lib: Address,
    /// The module's `SUPPORTED_ENTRYPOINT`, part of every SafeOp hash.
    pub entry_point: Address,
}

impl SafeDeployment {
    /// Safe's published deployment, reproduced on the devnet.
    pub const CANONICAL: Self = Self {
        singleton: SAFE_SINGLETON_V141,
        proxy_factory: SAFE_PROXY_FACTORY_V141,
        multi_send: MULTI_SEND_V141,
        multi_send_call_only: MULTI_SEND_CALL_ONLY_V141,
        fallback_handler: COMPATIBILITY_FALLBACK_HANDLER_V141,
        module: SAFE_4337_MODULE_V020,
        add_modules_lib: ADD_MODULES_LIB_V020,
        entry_point: ENTRY_POINT_V06,
    };
}

impl Default for SafeDeployment {
    fn default() -> Self {
        Self::CANONICAL
    }
}

/// Who controls a Safe and which of the owners' Safes it is. The address depends on all three
/// (and on the owners' order), because they are all part of the proxy's CREATE2 salt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SafeConfig {
    /// The owners, in the order `setup` receives them.
    pub owners: Vec<Address>,
    /// How many owner signatures an owner op needs.
    pub threshold: u64,
    /// `createProxyWithNonce`'s salt nonce: the owners' Safe number.
    pub salt_nonce: U256,
}

impl SafeConfig {
    /// A 1-of-1 Safe.
    pub fn single_owner(owner: Address, salt_nonce: U256) -> Self {
        Self { owners: vec![owner], threshold: 1, salt_nonce }
    }

    /// `Safe.setupOwners`' rules, checked before anything is encoded: a config it would reject
    /// yields an initCode that fails in the EntryPoint with an opaque `AA13`.
    pub fn validate(&self) -> Result<(), SafeConfigError> {
        if self.owners.is_empty() {
            return Err(SafeConfigError::NoOwners);
        }
        if self.threshold == 0 {
            return Err(SafeConfigError::ZeroThreshold);
        }
        if self.threshold > self.owners.len() as u64 {
            return Err(SafeConfigError::ThresholdAboveOwners {
                threshold: self.threshold,
                owners: self.owners.len(),
            });
        }
        for (i, owner) in self.owners.iter().enumerate() {
            if *owner == Address::ZERO || *owner == SENTINEL {
                return Err(SafeConfigError::InvalidOwner(*owner));
            }
            if self.owners[..i].contains(owner) {
                return Err(SafeConfigError::DuplicateOwner(*owner));
            }
        }
        Ok(())
    }
}

/// Why an owner configuration cannot set up a Safe (the `GS2xx` reverts of `setupOwners`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SafeConfigError {
    /// `GS202`: the owner list is empty.
    #[error("a Safe needs at least one owner")]
    NoOwners,
    /// `GS202`: a threshold of zero.
    #[error("threshold must be at least 1")]
    ZeroThreshold,
    /// `GS201`: more signatures required than there are owners.
    #[error("threshold {threshold} exceeds the {owners} owners")]
    ThresholdAboveOwners {
        /// The threshold asked for.
        threshold: u64,
        /// How many owners there are.
        owners: usize,
    },
    /// `GS203`: zero, the sentinel address or the Safe itself.
    #[error("{0} cannot be a Safe owner")]
    InvalidOwner(Address),
    /// `GS204`: an owner listed twice.
    #[error("owner {0} is listed twice")]
    DuplicateOwner(Address),
}

/// Which module entry point a Safe op's callData calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecFunction {
    /// `executeUserOp`: a failed call reverts with `"Execution failed"`.
    ExecuteUserOp,
    /// `executeUserOpWithErrorString`: a failed call reverts with the callee's revert data, so
    /// the EntryPoint's `UserOperationRevertReason` names e.g. the settlement's error.
    ExecuteUserOpWithErrorString,
}

/// A Safe op's callData decoded to a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SafePayment {
    /// The approve and settle the op makes.
    pub payment: DecodedPayment,
    /// Which module entry point carries them.
    pub exec: ExecFunction,
    /// The MultiSend library the batch was delegatecalled into; `None` for the single-call
    /// shape (a direct `settle` relying on a prior allowance).
    pub multi_send: Option<Address>,
}

/// One entry of a MultiSend batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultiSendTx {
    /// Call or delegatecall.
    pub operation: Operation,
    /// The callee.
    pub to: Address,
    /// Wei forwarded (zero in a payment).
    pub value: U256,
    /// The calldata.
    pub data: Bytes,
}

/// Why callData is not a Safe payment. The approve/settle rules themselves are
/// [`CallDataError`]s, the same reasons SimpleAccount payments get.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafeCallDataError {
    /// Fewer than four bytes of callData.
    #[error("{len} bytes is too short for a function selector")]
    MissingSelector {
        /// The callData's length.
        len: usize,
    },
    /// Not one of the module's two execution functions.
    #[error("selector {selector} is neither executeUserOp nor executeUserOpWithErrorString")]
    UnknownSelector {
        /// The selector found.
        selector: Selector,
    },
    /// The arguments do not decode.
    #[error("malformed {call} arguments: {source}")]
    MalformedAbi {
        /// The call being decoded.
        call: &'static str,
        /// The decoder's error.
        #[source]
        source: alloy::sol_types::Error,
    },
    /// The arguments decode but re-encode differently (padding, offsets, trailing bytes).
    #[error("{call} arguments are not in canonical ABI encoding")]
    NonCanonicalAbi {
        /// The call being decoded.
        call: &'static str,
    },
    /// An operation byte other than 0 and 1.
    #[error("operation {0} is neither CALL (0) nor DELEGATECALL (1)")]
    UnknownOperation(u8),
    /// The module call sends native value.
    #[error("the Safe forwards {value} wei; a payment forwards none")]
    NonzeroValue {
        /// The wei it would send.
        value: U256,
    },
    /// A delegatecall whose target is not the deployment's MultiSend or MultiSendCallOnly.
    #[error("delegatecall to {to}, which is not a MultiSend library")]
    DelegateCallTarget {
        /// The delegatecall's target.
        to: Address,
    },
    /// The MultiSend delegatecall carries another function.
    #[error("the delegatecall into MultiSend does not call multiSend(bytes)")]
    NotMultiSend,
    /// The packed MultiSend transactions end mid-entry.
    #[error("MultiSend entry {index} is truncated")]
    MultiSendTruncated {
        /// The entry's position.
        index: usize,
    },
    /// A MultiSend entry delegatecalls.
    #[error("MultiSend entry {index} is a delegatecall; a payment makes plain calls only")]
    MultiSendDelegateCall {
        /// The entry's position.
        index: usize,
    },
    /// A MultiSend entry's operation byte is neither 0 nor 1.
    #[error("MultiSend entry {index} has operation {operation}")]
    MultiSendUnknownOperation {
        /// The entry's position.
        index: usize,
        /// The operation byte.
        operation: u8,
    },
    /// A MultiSend entry sends native value.
    #[error("MultiSend entry {index} forwards {value} wei; a payment forwards none")]
    MultiSendValue {
        /// The entry's position.
        index: usize,
        /// The wei it would send.
        value: U256,
    },
    /// The batch is not exactly approve + settle (the rules every account kind shares).
    #[error(transparent)]
    Payment(#[from] CallDataError),
    /// Not the session payment `SafeSessionModule` executes ([`session`]).
    #[error(transparent)]
    Session(#[from] session::SafeSessionCallDataError),
}

/// Why a SafeOp signature envelope cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SafeSignatureError {
    /// Shorter than the 12-byte validity prefix.
    #[error("signature is {len} bytes; the module reads 12 bytes of validAfter/validUntil first")]
    TooShort {
        /// The signature's length.
        len: usize,
    },
    /// The owner signatures are not a whole number of 65-byte signatures.
    #[error("{len} bytes of owner signatures is not a whole number of 65-byte ECDSA signatures")]
    NotWholeSignatures {
        /// Their length.
        len: usize,
    },
    /// No owner signature after the prefix.
    #[error("no owner signatures")]
    NoSignatures,
    /// One owner's signature twice (`checkSignatures` needs them distinct and sorted).
    #[error("owner {0} signed twice")]
    DuplicateSigner(Address),
}

impl SafeDeployment {
    /// The `Safe.setup` call the proxy runs on creation: owners and threshold, AddModulesLib
    /// delegatecalled to enable the module, the module as fallback handler (it is both, and
    /// inherits `CompatibilityFallbackHandler`), no deployment refund.
    pub fn setup_initializer(&self, config: &SafeConfig) -> Result<Bytes, SafeConfigError> {
        self.setup_with(config, None)
    }

    /// [`Self::setup_initializer`], or with `session_module` (this project's `SafeSessionModule`)
    /// enabled as a second module and set as fallback handler instead of Safe4337Module (see
    /// [`session`]).
    fn setup_with(
        &self,
        config: &SafeConfig,
        session_module: Option<Address>,
    ) -> Result<Bytes, SafeConfigError> {
        config.validate()?;
        let modules = match session_module {
            Some(m) => vec![self.module, m],
            None => vec![self.module],
        };
        let enable = IAddModulesLib::enableModulesCall { modules };
        Ok(ISafe::setupCall {
            _owners: config.owners.clone(),
            _threshold: U256::from(config.threshold),
            to: self.add_modules_lib,
            data: enable.abi_encode().into(),
            fallbackHandler: session_module.unwrap_or(self.module),
            paymentToken: Address::ZERO,
            payment: U256::ZERO,
            paymentReceiver: Address::ZERO,
        }
        .abi_encode()
        .into())
    }

    /// `initCode` deploying the Safe for `config` in its first op's validation.
    pub fn init_code(&self, config: &SafeConfig) -> Result<Bytes, SafeConfigError> {
        self.init_code_with(config, None)
    }

    fn init_code_with(
        &self,
        config: &SafeConfig,
        session_module: Option<Address>,
    ) -> Result<Bytes, SafeConfigError> {
        let call = ISafeProxyFactory::createProxyWithNonceCall {
            _singleton: self.singleton,
            initializer: self.setup_with(config, session_module)?,
            saltNonce: config.salt_nonce,
        };
        let mut code = self.proxy_factory.to_vec();
        code.extend(call.abi_encode());
        Ok(code.into())
    }

    /// The address `createProxyWithNonce` will deploy to: CREATE2 by the factory with salt
    /// `keccak256(keccak256(initializer) ‖ saltNonce)` over the proxy creation code followed by
    /// the singleton as a word.
    pub fn account_address(&self, config: &SafeConfig) -> Result<Address, SafeConfigError> {
        self.account_address_with(config, None)
    }

    fn account_address_with(
        &self,
        config: &SafeConfig,
        session_module: Option<Address>,
    ) -> Result<Address, SafeConfigError> {
        let initializer = self.setup_with(config, session_module)?;
        let mut salt_input = keccak256(&initializer).to_vec();
        salt_input.extend(config.salt_nonce.to_be_bytes::<32>());
        let mut init_code = SAFE_PROXY_CREATION_CODE.to_vec();
        init_code.extend(self.singleton.into_word());
        Ok(self.proxy_factory.create2(keccak256(salt_input), keccak256(init_code)))
    }

    /// The batch payment: approve exactly `amount` to `settlement`, then settle, as one
    /// delegatecall into MultiSendCallOnly through `executeUserOpWithErrorString`.
    pub fn encode_payment_batch(
        &self,
        token: Address,
        settlement: Address,
        merchant: Address,
        amount: U256,
        request_hash: B256,
    ) -> Bytes {
        let settle = SettleCall { merchant, token, amount, request_hash };
        let transactions = encode_multi_send(&[
            MultiSendTx {
                operation: Operation::Call,
                to: token,
                value: U256::ZERO,
                data: encode_approve(settlement, amount),
            },
            MultiSendTx {
                operation: Operation::Call,
                to: settlement,
                value: U256::ZERO,
                data: settle.abi_encode(),
            },
        ]);
        let multi_send = IMultiSend::multiSendCall { transactions }.abi_encode();
        encode_exec(self.multi_send_call_only, multi_send.into(), Operation::DelegateCall)
    }

    /// The single-call payment, for Safes whose allowance is already in place.
    pub fn encode_payment_execute(&self, settlement: Address, settle: &SettleCall) -> Bytes {
        encode_exec(settlement, settle.abi_encode(), Operation::Call)
    }

    /// Accepts exactly the two shapes above (either module entry point; the batch through
    /// either MultiSend library), in canonical ABI and MultiSend encoding.
    pub fn decode_payment(&self, call_data: &[u8]) -> Result<SafePayment, SafeCallDataError> {
        let selector = call_data
            .get(..4)
            .ok_or(SafeCallDataError::MissingSelector { len: call_data.len() })?;
        let (exec, to, value, data, operation) = match <[u8; 4]>::try_from(selector).ok() {
            Some(ISafe4337Module::executeUserOpCall::SELECTOR) => {
                let c: ISafe4337Module::executeUserOpCall = decode_strict(call_data)?;
                (ExecFunction::ExecuteUserOp, c.to, c.value, c.data, c.operation)
            }
            Some(ISafe4337Module::executeUserOpWithErrorStringCall::SELECTOR) => {
                let c: ISafe4337Module::executeUserOpWithErrorStringCall =
                    decode_strict(call_data)?;
                (ExecFunction::ExecuteUserOpWithErrorString, c.to, c.value, c.data, c.operation)
            }
            _ => {
                return Err(SafeCallDataError::UnknownSelector {
                    selector: Selector::from_slice(selector),
                });
            }
        };
        if !value.is_zero() {
            return Err(SafeCallDataError::NonzeroValue { value });
        }
        match Operation::from_u8(operation).ok_or(SafeCallDataError::UnknownOperation(operation))? {
            Operation::Call => {
                // The same rules as SimpleAccount's `execute(dest, 0, func)`.
                let payment = decode_payment(&encode_execute(to, U256::ZERO, data))?;
                Ok(SafePayment { payment, exec, multi_send: None })
            }
            Operation::DelegateCall => {
                if to != self.multi_send && to != self.multi_send_call_only {
                    return Err(SafeCallDataError::DelegateCallTarget { to });
                }
                if data.get(..4) != Some(&IMultiSend::multiSendCall::SELECTOR[..]) {
                    return Err(SafeCallDataError::NotMultiSend);
                }
                let call: IMultiSend::multiSendCall = decode_strict(&data)?;
                let entries = decode_multi_send(&call.transactions)?;
                let (mut dest, mut func) = (Vec::new(), Vec::new());
                for (index, tx) in entries.into_iter().enumerate() {
                    if tx.operation != Operation::Call {
                        return Err(SafeCallDataError::MultiSendDelegateCall { index });
                    }
                    if !tx.value.is_zero() {
                        return Err(SafeCallDataError::MultiSendValue { index, value: tx.value });
                    }
                    dest.push(tx.to);
                    func.push(tx.data);
                }
                // The same rules as SimpleAccount's `executeBatch([token, settlement], ...)`.
                let payment = decode_payment(&encode_execute_batch(dest, func))?;
                Ok(SafePayment { payment, exec, multi_send: Some(to) })
            }
        }
    }

    /// The module's EIP-712 domain: `EIP712Domain(uint256 chainId,address verifyingContract)`
    /// with the module (not the Safe) as verifying contract.
    pub fn domain(&self, chain_id: u64) -> Eip712Domain {
        Eip712Domain {
            chain_id: Some(U256::from(chain_id)),
            verifying_contract: Some(self.module),
            ..Default::default()
        }
    }

    /// The SafeOp hash the owners sign for `op` with this validity window; equals the module's
    /// `getOperationHash(op)` when `op.signature` starts with the same window.
    pub fn operation_hash(&self, op: &UserOperation, validity: Validity, chain_id: u64) -> B256 {
        let safe_op = SafeOp {
            safe: op.sender,
            nonce: op.nonce,
            initCode: op.init_code.clone(),
            callData: op.call_data.clone(),
            callGasLimit: op.call_gas_limit,
            verificationGasLimit: op.verification_gas_limit,
            preVerificationGas: op.pre_verification_gas,
            maxFeePerGas: op.max_fee_per_gas,
            maxPriorityFeePerGas: op.max_priority_fee_per_gas,
            paymasterAndData: op.paymaster_and_data.clone(),
            validAfter: validity.valid_after,
            validUntil: validity.valid_until,
            entryPoint: self.entry_point,
        };
        safe_op.eip712_signing_hash(&self.domain(chain_id))
    }
}

/// Safe + Safe4337Module as an [`AccountAbi`], for one deployment: the singleton, module and
/// MultiSend libraries a Safe is set up with and pays through. The proxy factory comes from the
/// [`AccountConfig`], whose owners and threshold are the Safe's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SafeAbi {
    /// Where the Safe contracts and the 4337 module live.
    pub deployment: SafeDeployment,
}

impl SafeAbi {
    /// Safes of the canonical deployment.
    pub const CANONICAL: Self = Self { deployment: SafeDeployment::CANONICAL };

    /// Safes of `deployment`.
    pub const fn new(deployment: SafeDeployment) -> Self {
        Self { deployment }
    }

    fn parts(&self, config: &AccountConfig) -> (SafeDeployment, SafeConfig) {
        let deployment = SafeDeployment { proxy_factory: config.factory, ..self.deployment };
        let safe = SafeConfig {
            owners: config.owners.clone(),
            threshold: config.threshold,
            salt_nonce: config.salt,
        };
        (deployment, safe)
    }
}

impl AccountAbi for SafeAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::Safe
    }

    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError> {
        let (deployment, safe) = self.parts(config);
        Ok(deployment.init_code(&safe)?)
    }

    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError> {
        let (deployment, safe) = self.parts(config);
        Ok(Some(deployment.account_address(&safe)?))
    }

    fn encode_payment(&self, p: &PaymentCall) -> Bytes {
        self.deployment.encode_payment_batch(
            p.settle.token,
            p.settlement,
            p.settle.merchant,
            p.settle.amount,
            p.settle.request_hash,
        )
    }

    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        Ok(self.deployment.decode_payment(call_data)?.payment)
    }

    /// A plain call's target, or the entries of a MultiSend batch (the library itself only
    /// runs as the Safe's code); a delegatecall anywhere else runs code whose calls are unknown.
    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        if call_data.is_empty() {
            return Some(Vec::new());
        }
        let (to, data, operation) =
            match call_data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok())? {
                ISafe4337Module::executeUserOpCall::SELECTOR => {
                    let c = ISafe4337Module::executeUserOpCall::abi_decode(call_data).ok()?;
                    (c.to, c.data, c.operation)
                }
                ISafe4337Module::executeUserOpWithErrorStringCall::SELECTOR => {
                    let c =
                        ISafe4337Module::executeUserOpWithErrorStringCall::abi_decode(call_data)
                            .ok()?;
                    (c.to, c.data, c.operation)
                }
                _ => return None,
            };
        match Operation::from_u8(operation)? {
            Operation::Call => Some(vec![to]),
            Operation::DelegateCall => {
                let d = &self.deployment;
                if to != d.multi_send && to != d.multi_send_call_only {
                    return None;
                }
                let call = IMultiSend::multiSendCall::abi_decode(&data).ok()?;
                let entries = decode_multi_send(&call.transactions).ok()?;
                entries
                    .iter()
                    .all(|tx| tx.operation == Operation::Call)
                    .then(|| entries.iter().map(|tx| tx.to).collect())
            }
        }
    }

    /// Safe4337Module validates every op against the Safe's owners and threshold; no other
    /// signer reaches it.
    fn signer_role(&self, _signature: &[u8]) -> SignerRole {
        SignerRole::Owner
    }
}

/// The op's validity window, carried in the first 12 bytes of its signature and signed as part
/// of the SafeOp. The EntryPoint enforces it (`AA22 expired or not due`); `valid_until = 0`
/// means no expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Validity {
    /// Chain time (seconds) from which the op is valid.
    pub valid_after: U48,
    /// Chain time (seconds) after which it is not; 0 for never.
    pub valid_until: U48,
}

/// One owner's ECDSA signature over the SafeOp hash (`v` 27/28, no EIP-191 prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerSignature {
    /// The owner who signed.
    pub owner: Address,
    /// The signature over the SafeOp hash.
    pub signature: Signature,
}

/// A decoded SafeOp signature envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeOpSignature {
    /// The validity window the owners signed.
    pub validity: Validity,
    /// The concatenated owner signatures as `Safe.checkSignatures` reads them.
    pub signatures: Bytes,
}

/// `validAfter ‖ validUntil ‖ signatures`, the signatures sorted by owner address (Safe checks
/// `currentOwner > lastOwner`, so any other order fails for thresholds above one).
pub fn encode_signature(
    validity: Validity,
    signatures: &[OwnerSignature],
) -> Result<Bytes, SafeSignatureError> {
    if signatures.is_empty() {
        return Err(SafeSignatureError::NoSignatures);
    }
    let mut sorted = signatures.to_vec();
    sorted.sort_by_key(|s| s.owner);
    if let Some(pair) = sorted.windows(2).find(|w| w[0].owner == w[1].owner) {
        return Err(SafeSignatureError::DuplicateSigner(pair[0].owner));
    }
    let mut out = Vec::with_capacity(12 + 65 * sorted.len());
    out.extend(validity.valid_after.to_be_bytes::<6>());
    out.extend(validity.valid_until.to_be_bytes::<6>());
    for s in &sorted {
        out.extend(s.signature.as_bytes());
    }
    Ok(out.into())
}

/// Splits a Safe op's signature into its validity window and owner signatures. Only ECDSA
/// signatures are produced here, but Safe also accepts contract (`v = 0`) and approved-hash
/// (`v = 1`) signatures with dynamic parts, so only the window is required to parse.
pub fn decode_signature(signature: &[u8]) -> Result<SafeOpSignature, SafeSignatureError> {
    if signature.len() < 12 {
        return Err(SafeSignatureError::TooShort { len: signature.len() });
    }
    let valid_after = U48::from_be_slice(&signature[..6]);
    let valid_until = U48::from_be_slice(&signature[6..12]);
    Ok(SafeOpSignature {
        validity: Validity { valid_after, valid_until },
        signatures: Bytes::copy_from_slice(&signature[12..]),
    })
}

/// The owners' 65-byte ECDSA signatures in an envelope's signature part, in order.
pub fn split_ecdsa_signatures(signatures: &[u8]) -> Result<Vec<[u8; 65]>, SafeSignatureError> {
    if signatures.is_empty() {
        return Err(SafeSignatureError::NoSignatures);
    }
    if !signatures.len().is_multiple_of(65) {
        return Err(SafeSignatureError::NotWholeSignatures { len: signatures.len() });
    }
    Ok(signatures
        .chunks_exact(65)
        .map(|c| <[u8; 65]>::try_from(c).expect("chunks_exact yields 65 bytes"))
        .collect())
}

/// MultiSend's packed batch encoding.
pub fn encode_multi_send(txs: &[MultiSendTx]) -> Bytes {
    let mut out = Vec::new();
    for tx in txs {
        out.push(tx.operation as u8);
        out.extend(tx.to.as_slice());
        out.extend(tx.value.to_be_bytes::<32>());
        out.extend(U256::from(tx.data.len()).to_be_bytes::<32>());
        out.extend(tx.data.as_ref());
    }
    out.into()
}

/// Inverse of [`encode_multi_send`]: the entries must exactly fill `transactions`, so there is
/// one byte string per batch (MultiSend itself ignores trailing bytes shorter than an entry
/// header and would read past a short last entry as zeros).
pub fn decode_multi_send(transactions: &[u8]) -> Result<Vec<MultiSendTx>, SafeCallDataError> {
    const HEADER: usize = 1 + 20 + 32 + 32;
    let mut out = Vec::new();
    let mut rest = transactions;
    while !rest.is_empty() {
        let index = out.len();
        let truncated = SafeCallDataError::MultiSendTruncated { index };
        let header = rest.get(..HEADER).ok_or(truncated)?;
        let operation = Operation::from_u8(header[0])
            .ok_or(SafeCallDataError::MultiSendUnknownOperation { index, operation: header[0] })?;
        let len = U256::from_be_slice(&header[53..85]);
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= rest.len() - HEADER)
            .ok_or(SafeCallDataError::MultiSendTruncated { index })?;
        out.push(MultiSendTx {
            operation,
            to: Address::from_slice(&header[1..21]),
            value: U256::from_be_slice(&header[21..53]),
            data: Bytes::copy_from_slice(&rest[HEADER..HEADER + len]),
        });
        rest = &rest[HEADER + len..];
    }
    Ok(out)
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Call => f.write_str("call"),
            Self::DelegateCall => f.write_str("delegatecall"),
        }
    }
}

fn encode_exec(to: Address, data: Bytes, operation: Operation) -> Bytes {
    ISafe4337Module::executeUserOpWithErrorStringCall {
        to,
        value: U256::ZERO,
        data,
        operation: operation as u8,
    }
    .abi_encode()
    .into()
}

/// Strict decoding plus a re-encode comparison, as for SimpleAccount callData: two byte strings
/// that decode to the same call must not both be accepted.
fn decode_strict<C: SolCall>(data: &[u8]) -> Result<C, SafeCallDataError> {
    let call = C::abi_decode_with_config(data, AbiDecoderConfig::new().strict(true))
        .map_err(|source| SafeCallDataError::MalformedAbi { call: C::SIGNATURE, source })?;
    if call.abi_encode() != data {
        return Err(SafeCallDataError::NonCanonicalAbi { call: C::SIGNATURE });
    }
    Ok(call)
}

#[cfg(test)]
mod tests {
    use alloy::{primitives::b256, sol_types::SolValue};

    use super::*;
    use crate::call_data::{ApproveCall, CallSite};

    const TOKEN: Address = address!("0x1000000000000000000000000000000000000001");
    const SETTLEMENT: Address = address!("0x2000000000000000000000000000000000000002");
    const MERCHANT: Address = address!("0x3000000000000000000000000000000000000003");
    const REQUEST: B256 =
        b256!("0x4444444444444444444444444444444444444444444444444444444444444444");
    const OWNER: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
    const D: SafeDeployment = SafeDeployment::CANONICAL;

    fn amount() -> U256 {
        U256::from(1_500_000u64)
    }

    fn settle() -> SettleCall {
        SettleCall { merchant: MERCHANT, token: TOKEN, amount: amount(), request_hash: REQUEST }
    }

    fn batch() -> Bytes {
        D.encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST)
    }

    fn exec(to: Address, value: U256, data: Bytes, operation: u8) -> Bytes {
        ISafe4337Module::executeUserOpWithErrorStringCall { to, value, data, operation }
            .abi_encode()
            .into()
    }

    fn multi_send(txs: &[MultiSendTx]) -> Bytes {
        IMultiSend::multiSendCall { transactions: encode_multi_send(txs) }.abi_encode().into()
    }

    fn call(to: Address, data: Bytes) -> MultiSendTx {
        MultiSendTx { operation: Operation::Call, to, value: U256::ZERO, data }
    }

    #[test]
    fn selectors_match_the_module_and_safe() {
        assert_eq!(ISafe4337Module::executeUserOpCall::SELECTOR, hex!("7bb37428"));
        assert_eq!(ISafe4337Module::executeUserOpWithErrorStringCall::SELECTOR, hex!("541d63c8"));
        assert_eq!(IMultiSend::multiSendCall::SELECTOR, hex!("8d80ff0a"));
        assert_eq!(ISafe::setupCall::SELECTOR, hex!("b63e800d"));
        assert_eq!(ISafeProxyFactory::createProxyWithNonceCall::SELECTOR, hex!("1688f0b9"));
        assert_eq!(IAddModulesLib::enableModulesCall::SELECTOR, hex!("8d0dc49f"));
    }

    /// The module's `SAFE_OP_TYPEHASH` and `DOMAIN_SEPARATOR_TYPEHASH` preimages.
    #[test]
    fn type_hashes_match_the_module() {
        assert_eq!(
            SafeOp::eip712_encode_type(),
            "SafeOp(address safe,uint256 nonce,bytes initCode,bytes callData,uint256 \
             callGasLimit,uint256 verificationGasLimit,uint256 preVerificationGas,uint256 \
             maxFeePerGas,uint256 maxPriorityFeePerGas,bytes paymasterAndData,uint48 \
             validAfter,uint48 validUntil,address entryPoint)"
        );
        assert_eq!(
            D.domain(1).separator(),
            keccak256(
                (
                    keccak256("EIP712Domain(uint256 chainId,address verifyingContract)"),
                    U256::from(1),
                    SAFE_4337_MODULE_V020
                )
                    .abi_encode()
            )
        );
    }

    #[test]
    fn batch_round_trip() {
        let decoded = D.decode_payment(&batch()).unwrap();
        assert_eq!(
            decoded,
            SafePayment {
                payment: DecodedPayment {
                    settlement: SETTLEMENT,
                    settle: settle(),
                    approve: Some(ApproveCall {
                        token: TOKEN,
                        spender: SETTLEMENT,
                        amount: amount()
                    }),
                },
                exec: ExecFunction::ExecuteUserOpWithErrorString,
                multi_send: Some(MULTI_SEND_CALL_ONLY_V141),
            }
        );
    }

    #[test]
    fn execute_round_trip_and_both_entry_points() {
        let data = D.encode_payment_execute(SETTLEMENT, &settle());
        let decoded = D.decode_payment(&data).unwrap();
        assert_eq!(decoded.payment.settle, settle());
        assert_eq!(decoded.payment.approve, None);
        assert_eq!(decoded.multi_send, None);

        let plain = ISafe4337Module::executeUserOpCall {
            to: MULTI_SEND_V141,
            value: U256::ZERO,
            data: multi_send(&[
                call(TOKEN, encode_approve(SETTLEMENT, amount())),
                call(SETTLEMENT, settle().abi_encode()),
            ]),
            operation: 1,
        }
        .abi_encode();
        let decoded = D.decode_payment(&plain).unwrap();
        assert_eq!(decoded.exec, ExecFunction::ExecuteUserOp);
        assert_eq!(decoded.multi_send, Some(MULTI_SEND_V141));
        assert_eq!(decoded.payment.settle, settle());
    }

    #[test]
    fn multi_send_layout() {
        let txs = [call(TOKEN, Bytes::from_static(&[0xaa, 0xbb]))];
        let packed = encode_multi_send(&txs);
        assert_eq!(packed.len(), 85 + 2);
        assert_eq!(packed[0], 0);
        assert_eq!(&packed[1..21], TOKEN.as_slice());
        assert_eq!(packed[84], 2);
        assert_eq!(decode_multi_send(&packed).unwrap(), txs);
        for len in 1..packed.len() {
            assert!(matches!(
                decode_multi_send(&packed[..len]),
                Err(SafeCallDataError::MultiSendTruncated { index: 0 })
            ));
        }
        let mut long = packed.to_vec();
        long.push(0);
        assert!(matches!(
            decode_multi_send(&long),
            Err(SafeCallDataError::MultiSendTruncated { index: 1 })
        ));
        let mut bad_op = packed.to_vec();
        bad_op[0] = 2;
        assert!(matches!(
            decode_multi_send(&bad_op),
            Err(SafeCallDataError::MultiSendUnknownOperation { index: 0, operation: 2 })
        ));
    }

    #[test]
    fn rejects_what_is_not_a_payment() {
        let approve = encode_approve(SETTLEMENT, amount());
        let s = settle().abi_encode();
        type Expect = fn(&SafeCallDataError) -> bool;
        let cases: Vec<(Bytes, Expect)> = vec![
            (Bytes::new(), |e| matches!(e, SafeCallDataError::MissingSelector { len: 0 })),
            // SimpleAccount's executeBatch is not a Safe entry point.
            (crate::encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, amount(), REQUEST), |e| {
                matches!(e, SafeCallDataError::UnknownSelector { .. })
            }),
            (exec(SETTLEMENT, U256::from(1), s.clone(), 0), |e| {
                matches!(e, SafeCallDataError::NonzeroValue { .. })
            }),
            (exec(SETTLEMENT, U256::ZERO, s.clone(), 2), |e| {
                matches!(e, SafeCallDataError::UnknownOperation(2))
            }),
            // A delegatecall anywhere but MultiSend would run foreign code as the Safe.
            (
                exec(SETTLEMENT, U256::ZERO, s.clone(), 1),
                |e| matches!(e, SafeCallDataError::DelegateCallTarget { to } if *to == SETTLEMENT),
            ),
            (exec(MULTI_SEND_CALL_ONLY_V141, U256::ZERO, s.clone(), 1), |e| {
                matches!(e, SafeCallDataError::NotMultiSend)
            }),
            (
                exec(
                    MULTI_SEND_V141,
                    U256::ZERO,
                    multi_send(&[
                        call(TOKEN, approve.clone()),
                        MultiSendTx {
                            operation: Operation::DelegateCall,
                            ..call(SETTLEMENT, s.clone())
                        },
                    ]),
                    1,
                ),
                |e| matches!(e, SafeCallDataError::MultiSendDelegateCall { index: 1 }),
            ),
            (
                exec(
                    MULTI_SEND_CALL_ONLY_V141,
                    U256::ZERO,
                    multi_send(&[
                        MultiSendTx { value: U256::from(5), ..call(TOKEN, approve.clone()) },
                        call(SETTLEMENT, s.clone()),
                    ]),
                    1,
                ),
                |e| matches!(e, SafeCallDataError::MultiSendValue { index: 0, .. }),
            ),
            // Approve only: the SimpleAccount rules name it.
            (exec(TOKEN, U256::ZERO, approve.clone(), 0), |e| {
                matches!(e, SafeCallDataError::Payment(CallDataError::NoSettle))
            }),
            (
                exec(
                    MULTI_SEND_CALL_ONLY_V141,
                    U256::ZERO,
                    multi_send(&[call(SETTLEMENT, s.clone()), call(TOKEN, approve.clone())]),
                    1,
                ),
                |e| matches!(e, SafeCallDataError::Payment(CallDataError::SettleBeforeApprove)),
            ),
            (
                exec(
                    MULTI_SEND_CALL_ONLY_V141,
                    U256::ZERO,
                    multi_send(&[
                        call(TOKEN, encode_approve(MERCHANT, amount())),
                        call(SETTLEMENT, s.clone()),
                    ]),
                    1,
                ),
                |e| {
                    matches!(
                        e,
                        SafeCallDataError::Payment(CallDataError::ApproveSpenderMismatch { .. })
                    )
                },
            ),
            (
                exec(
                    MULTI_SEND_CALL_ONLY_V141,
                    U256::ZERO,
                    multi_send(&[
                        call(TOKEN, Bytes::from_static(&[0xa9, 0x05, 0x9c, 0xbb])),
                        call(SETTLEMENT, s),
                    ]),
                    1,
                ),
                |e| {
                    matches!(
                        e,
                        SafeCallDataError::Payment(CallDataError::UnknownSelector {
                            at: CallSite::Batch(0),
                            ..
                        })
                    )
                },
            ),
        ];
        for (i, (data, expected)) in cases.into_iter().enumerate() {
            let err = D.decode_payment(&data).unwrap_err();
            assert!(expected(&err), "case {i}: {err:?}");
        }
    }

    #[test]
    fn rejects_non_canonical_outer_encoding() {
        let good = batch();
        // Bytes offset pointing one word further, junk word in the gap.
        let mut data = good[..4 + 64].to_vec();
        data.extend(U256::from(0xa0).to_be_bytes::<32>());
        data.extend(&good[4 + 96..4 + 128]);
        data.extend([0u8; 32]);
        data.extend(&good[4 + 128..]);
        let err = D.decode_payment(&data).unwrap_err();
        assert!(
            matches!(
                err,
                SafeCallDataError::MalformedAbi { .. } | SafeCallDataError::NonCanonicalAbi { .. }
            ),
            "{err:?}"
        );
        let mut long = good.to_vec();
        long.extend([0u8; 32]);
        assert!(D.decode_payment(&long).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let good = batch();
        for len in 0..good.len() {
            let _ = D.decode_payment(&good[..len]);
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut data = good.to_vec();
                data[i] ^= flip;
                let _ = D.decode_payment(&data);
            }
        }
    }

    #[test]
    fn config_rules() {
        let a = OWNER;
        let b = address!("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65");
        let cfg = |owners: Vec<Address>, threshold| SafeConfig {
            owners,
            threshold,
            salt_nonce: U256::ZERO,
        };
        assert_eq!(cfg(vec![], 1).validate(), Err(SafeConfigError::NoOwners));
        assert_eq!(cfg(vec![a], 0).validate(), Err(SafeConfigError::ZeroThreshold));
        assert_eq!(
            cfg(vec![a], 2).validate(),
            Err(SafeConfigError::ThresholdAboveOwners { threshold: 2, owners: 1 })
        );
        assert_eq!(
            cfg(vec![a, Address::ZERO], 1).validate(),
            Err(SafeConfigError::InvalidOwner(Address::ZERO))
        );
        assert_eq!(cfg(vec![a, b, a], 2).validate(), Err(SafeConfigError::DuplicateOwner(a)));
        assert!(D.init_code(&cfg(vec![a, b], 3)).is_err());
        assert!(cfg(vec![a, b], 2).validate().is_ok());
    }

    #[test]
    fn address_depends_on_every_config_field() {
        let b = address!("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65");
        let base = SafeConfig { owners: vec![OWNER, b], threshold: 1, salt_nonce: U256::ZERO };
        let addr = D.account_address(&base).unwrap();
        for other in [
            SafeConfig { owners: vec![b, OWNER], ..base.clone() },
            SafeConfig { threshold: 2, ..base.clone() },
            SafeConfig { salt_nonce: U256::from(1), ..base.clone() },
        ] {
            assert_ne!(D.account_address(&other).unwrap(), addr, "{other:?}");
        }
        let init = D.init_code(&base).unwrap();
        assert_eq!(&init[..20], SAFE_PROXY_FACTORY_V141.as_slice());
    }

    #[test]
    fn signature_envelope() {
        let sig = |byte: u8| {
            Signature::from_raw(&[[byte; 64].as_slice(), &[27]].concat()).expect("valid v")
        };
        let low = address!("0x0000000000000000000000000000000000000aaa");
        let high = address!("0xf000000000000000000000000000000000000000");
        let validity =
            Validity { valid_after: U48::from(7), valid_until: U48::from(0x0102030405u64) };
        let encoded = encode_signature(
            validity,
            &[
                OwnerSignature { owner: high, signature: sig(0x22) },
                OwnerSignature { owner: low, signature: sig(0x11) },
            ],
        )
        .unwrap();
        assert_eq!(encoded.len(), 12 + 130);
        assert_eq!(&encoded[..12], hex!("000000000007000102030405"));
        // Sorted by owner: low's signature first.
        assert_eq!(encoded[12], 0x11);
        assert_eq!(encoded[12 + 65], 0x22);
        assert_eq!(encoded[12 + 64], 27);

        let decoded = decode_signature(&encoded).unwrap();
        assert_eq!(decoded.validity, validity);
        assert_eq!(split_ecdsa_signatures(&decoded.signatures).unwrap().len(), 2);

        assert_eq!(
            encode_signature(
                validity,
                &[
                    OwnerSignature { owner: low, signature: sig(1) },
                    OwnerSignature { owner: low, signature: sig(2) },
                ]
            ),
            Err(SafeSignatureError::DuplicateSigner(low))
        );
        assert_eq!(encode_signature(validity, &[]), Err(SafeSignatureError::NoSignatures));
        assert_eq!(decode_signature(&[0; 11]), Err(SafeSignatureError::TooShort { len: 11 }));
        assert_eq!(
            split_ecdsa_signatures(&[0; 64]),
            Err(SafeSignatureError::NotWholeSignatures { len: 64 })
        );
    }

    /// A hash computed independently of `sol!`'s EIP-712 (the module's manual 14-word
    /// encoding); the devnet test checks the same function against `getOperationHash`.
    #[test]
    fn operation_hash_matches_manual_encoding() {
        let op = UserOperation {
            sender: OWNER,
            nonce: U256::from(3),
            init_code: Bytes::from_static(&[1, 2, 3]),
            call_data: batch(),
            call_gas_limit: U256::from(100_000),
            verification_gas_limit: U256::from(500_000),
            pre_verification_gas: U256::from(60_000),
            max_fee_per_gas: U256::from(3_000_000_000u64),
            max_priority_fee_per_gas: U256::from(1_000_000_000u64),
            paymaster_and_data: Bytes::new(),
            signature: Bytes::new(),
        };
        let validity = Validity { valid_after: U48::from(10), valid_until: U48::from(20) };
        let type_hash = keccak256(SafeOp::eip712_encode_type().as_bytes());
        let words = [
            type_hash,
            op.sender.into_word(),
            op.nonce.into(),
            keccak256(&op.init_code),
            keccak256(&op.call_data),
            op.call_gas_limit.into(),
            op.verification_gas_limit.into(),
            op.pre_verification_gas.into(),
            op.max_fee_per_gas.into(),
            op.max_priority_fee_per_gas.into(),
            keccak256(&op.paymaster_and_data),
            U256::from(10).into(),
            U256::from(20).into(),
            ENTRY_POINT_V06.into_word(),
        ];
        let struct_hash = keccak256(words.concat());
        let mut preimage = vec![0x19, 0x01];
        preimage.extend(D.domain(31337).separator());
        preimage.extend(struct_hash);
        assert_eq!(D.operation_hash(&op, validity, 31337), keccak256(preimage));
    }
}
