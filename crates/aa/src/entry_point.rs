//! The EntryPoint, as the network configuration names its version.
//!
//! Everything that depends on the EntryPoint version lives here: the canonical address, and the
//! ABI of the v0.6 EntryPoint with the one `sol!` declaration of the v0.6 `UserOperation` that
//! every binding taking an op shares (a `sol!` type cannot be shared across macro invocations, so
//! all of them are declared in this block). v0.7 would be a second variant and a second module
//! beside this one; callers name the version through their network configuration.
//!
//! Bindings are written in Solidity rather than generated from the hardhat JSON so they share
//! that one `UserOperation`; `x402_aa_contracts` checks every selector here against the npm ABI.

use alloy::{
    primitives::{Address, address},
    sol,
};

/// The EntryPoint versions this workspace speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EntryPointVersion {
    /// eth-infinitism v0.6 (`UserOperation`, `validateUserOp` with `uint256 missingAccountFunds`).
    #[default]
    V06,
}

impl EntryPointVersion {
    /// The canonical deployment (same address on every chain through CREATE2 salt 0).
    pub const fn canonical_address(self) -> Address {
        match self {
            Self::V06 => address!("0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"),
        }
    }

    /// The version deployed at `entry_point`, when it is a canonical deployment.
    pub fn of_address(entry_point: Address) -> Option<Self> {
        [Self::V06].into_iter().find(|v| v.canonical_address() == entry_point)
    }
}

sol! {
    /// ERC-4337 v0.6 `UserOperation` in ABI form: the one `sol!` declaration, shared by every
    /// binding that takes an op. Rust code holds ops as [`crate::UserOperation`] (the bundler
    /// JSON-RPC shape) and converts at the call.
    #[derive(Debug, Default, PartialEq, Eq)]
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

    #[derive(Debug, PartialEq, Eq)]
    struct ReturnInfo {
        uint256 preOpGas;
        uint256 prefund;
        bool sigFailed;
        uint48 validAfter;
        uint48 validUntil;
        bytes paymasterContext;
    }

    #[derive(Debug, PartialEq, Eq)]
    struct StakeInfo {
        uint256 stake;
        uint256 unstakeDelaySec;
    }

    #[derive(Debug, PartialEq, Eq)]
    struct AggregatorStakeInfo {
        address aggregator;
        StakeInfo stakeInfo;
    }

    #[derive(Debug, PartialEq, Eq)]
    struct DepositInfo {
        uint112 deposit;
        bool staked;
        uint112 stake;
        uint32 unstakeDelaySec;
        uint48 withdrawTime;
    }

    /// EntryPoint v0.6 (`core/EntryPoint.sol` with `IEntryPoint`, `IStakeManager`,
    /// `INonceManager`).
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface EntryPoint {
        event UserOperationEvent(bytes32 indexed userOpHash, address indexed sender, address indexed paymaster, uint256 nonce, bool success, uint256 actualGasCost, uint256 actualGasUsed);
        event AccountDeployed(bytes32 indexed userOpHash, address indexed sender, address factory, address paymaster);
        event UserOperationRevertReason(bytes32 indexed userOpHash, address indexed sender, uint256 nonce, bytes revertReason);
        event BeforeExecution();
        event SignatureAggregatorChanged(address indexed aggregator);
        event Deposited(address indexed account, uint256 totalDeposit);
        event Withdrawn(address indexed account, address withdrawAddress, uint256 amount);
        event StakeLocked(address indexed account, uint256 totalStaked, uint256 unstakeDelaySec);
        event StakeUnlocked(address indexed account, uint256 withdrawTime);
        event StakeWithdrawn(address indexed account, address withdrawAddress, uint256 amount);

        /// `opIndex` is the position in the `handleOps` array; `reason` starts with an
        /// `AAxx` code (e.g. "AA23 reverted: ...").
        error FailedOp(uint256 opIndex, string reason);
        error SignatureValidationFailed(address aggregator);
        /// `simulateValidation` always reverts; this is its success result.
        error ValidationResult(ReturnInfo returnInfo, StakeInfo senderInfo, StakeInfo factoryInfo, StakeInfo paymasterInfo);
        error ValidationResultWithAggregation(ReturnInfo returnInfo, StakeInfo senderInfo, StakeInfo factoryInfo, StakeInfo paymasterInfo, AggregatorStakeInfo aggregatorInfo);
        error SenderAddressResult(address sender);
        error ExecutionResult(uint256 preOpGas, uint256 paid, uint48 validAfter, uint48 validUntil, bool targetSuccess, bytes targetResult);

        function handleOps(UserOperation[] calldata ops, address payable beneficiary) external;
        function getUserOpHash(UserOperation calldata userOp) external view returns (bytes32);
        function simulateValidation(UserOperation calldata userOp) external;
        function simulateHandleOp(UserOperation calldata op, address target, bytes calldata targetCallData) external;
        function getSenderAddress(bytes memory initCode) external;

        function getNonce(address sender, uint192 key) external view returns (uint256 nonce);
        function incrementNonce(uint192 key) external;

        function balanceOf(address account) external view returns (uint256);
        function depositTo(address account) external payable;
        function getDepositInfo(address account) external view returns (DepositInfo memory info);
        function addStake(uint32 unstakeDelaySec) external payable;
        function unlockStake() external;
        function withdrawStake(address payable withdrawAddress) external;
        function withdrawTo(address payable withdrawAddress, uint256 withdrawAmount) external;
    }

    /// The project's `contracts/src/VerifyProbe.sol`, declared here to share `UserOperation`;
    /// see [`crate::verify_probe`].
    #[derive(Debug, PartialEq, Eq)]
    interface VerifyProbe {
        function probe(address entryPoint, UserOperation calldata op, address settlement, bytes32 requestHash) external returns (bool settled, uint256 blockNumber, uint256 timestamp, bool settledBefore);
        function probeBundle(address entryPoint, UserOperation[] calldata ops, address settlement, bytes32[] calldata requestHashes, address beneficiary) external returns (bool[] memory settles);
    }

    /// `samples/SimpleAccountFactory.sol`: ERC-1967 proxies over one SimpleAccount
    /// implementation, at CREATE2 addresses derived from `(owner, salt)`.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface SimpleAccountFactory {
        function accountImplementation() external view returns (address);
        function createAccount(address owner, uint256 salt) external returns (address ret);
        function getAddress(address owner, uint256 salt) external view returns (address);
    }

    /// `samples/SimpleAccount.sol`: owner-signed (EIP-191 over the userOpHash) account.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface SimpleAccount {
        event SimpleAccountInitialized(address indexed entryPoint, address indexed owner);

        function owner() external view returns (address);
        function entryPoint() external view returns (address);
        function getNonce() external view returns (uint256);
        function getDeposit() external view returns (uint256);
        function addDeposit() external payable;
        function execute(address dest, uint256 value, bytes calldata func) external;
        function executeBatch(address[] calldata dest, bytes[] calldata func) external;
        function validateUserOp(UserOperation calldata userOp, bytes32 userOpHash, uint256 missingAccountFunds) external returns (uint256 validationData);
    }

    /// `samples/VerifyingPaymaster.sol`: sponsors ops that carry its off-chain signer's
    /// signature over `getHash(op, validUntil, validAfter)`.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface VerifyingPaymaster {
        event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

        function verifyingSigner() external view returns (address);
        function senderNonce(address sender) external view returns (uint256);
        function getHash(UserOperation calldata userOp, uint48 validUntil, uint48 validAfter) external view returns (bytes32);
        function parsePaymasterAndData(bytes calldata paymasterAndData) external pure returns (uint48 validUntil, uint48 validAfter, bytes calldata signature);
        function entryPoint() external view returns (address);
        function owner() external view returns (address);
        function deposit() external payable;
        function getDeposit() external view returns (uint256);
        function addStake(uint32 unstakeDelaySec) external payable;
        function unlockStake() external;
        function withdrawStake(address payable withdrawAddress) external;
        function withdrawTo(address payable withdrawAddress, uint256 amount) external;
    }
}
