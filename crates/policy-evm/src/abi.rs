//! Our own `sol!` interfaces: this crate must keep compiling while the contract ABI moves, so it does
//! not take bindings from `x402-aa-contracts`.
#![allow(missing_docs, clippy::too_many_arguments)]

use alloy::sol;

sol! {
    #[derive(Debug, Default, PartialEq, Eq)]
    interface IEntryPoint {
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
        error FailedOp(uint256 opIndex, string reason);
        event UserOperationEvent(bytes32 indexed userOpHash, address indexed sender, address indexed paymaster, uint256 nonce, bool success, uint256 actualGasCost, uint256 actualGasUsed);
        event UserOperationRevertReason(bytes32 indexed userOpHash, address indexed sender, uint256 nonce, bytes revertReason);
        function handleOps(UserOperation[] ops, address beneficiary) external;
        function getUserOpHash(UserOperation userOp) external view returns (bytes32);
        function balanceOf(address account) external view returns (uint256);
        function depositTo(address account) external payable;
        function getNonce(address sender, uint192 key) external view returns (uint256 nonce);
    }

    #[derive(Debug)]
    interface IFactory {
        function createAccount(address owner, uint256 salt) external returns (address ret);
        function getAddress(address owner, uint256 salt) external view returns (address);
    }

    #[derive(Debug)]
    interface IToken {
        function mint(address to, uint256 amount) external;
        function balanceOf(address account) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
    }

    #[derive(Debug)]
    interface ISettlement {
        function settle(address merchant, address token, uint256 amount, bytes32 requestHash) external payable;
        function setTokenAllowed(address token, bool allowed) external;
        function isSettled(bytes32 requestHash) external view returns (bool);
        function pause() external;
        function unpause() external;
    }

    #[derive(Debug)]
    interface IVerifyingPaymaster {
        function deposit() external payable;
        function getHash(IEntryPoint.UserOperation userOp, uint48 validUntil, uint48 validAfter) external view returns (bytes32);
    }

    /// SimpleAccount's ABI, which both account kinds share.
    #[derive(Debug)]
    interface IAccount {
        function execute(address dest, uint256 value, bytes func) external;
        function executeBatch(address[] dest, bytes[] func) external;
        function owner() external view returns (address);
    }

    /// The session half of SessionKeyAccount after issue 11.
    #[derive(Debug)]
    interface ISessionAccount {
        function revokeSession_ol(bytes32 id) external;
        function revokeAllSessions() external;
        function pauseSession(bytes32 id) external;
        function resumeSession(bytes32 id) external;
        function revokeWithSignature(bytes32 id, bytes ownerSignature) external;
        function revokeAllWithSignature(uint32 epoch, bytes ownerSignature) external;
        function setPausedWithSignature(bytes32 id, bool paused, uint32 nonce, bytes ownerSignature) external;
        function sessionEpoch() external view returns (uint32);
        function domainSeparator() external view returns (bytes32);
        function sessionState(bytes32 id) external view returns (uint8 status, bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent, uint24 paymentsInPeriod);
        function sessionGasState(bytes32 id) external view returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce);
        function sessionMerchantState(bytes32 id, address merchant) external view returns (uint32 periodIndex, uint96 spent);
    }

    /// EIP-712 types the owner signs for relayed controls.
    struct RevokeSession { bytes32 sessionId; }
    struct RevokeAllSessions { uint32 epoch; }
    struct SetSessionPaused { bytes32 sessionId; bool paused; uint32 nonce; }
}

/// The grant and session signature before issue 11 (commit e1aeefd), to run the finding tests against
/// the old contract.
pub mod v1 {
    alloy::sol! {
        #[derive(Debug, Default, PartialEq, Eq)]
        struct SessionGrant {
            address sessionKey;
            uint48 validAfter;
            uint48 validUntil;
            address token;
            address settlement;
            uint96 perPaymentMax;
            uint96 periodCap;
            uint32 period;
            uint96 lifetimeCap;
            bytes32 merchantRoot;
            address paymaster;
            uint128 maxSelfPaidGasCost;
            uint32 epoch;
            bytes32 salt;
        }
        #[derive(Debug, Default, PartialEq, Eq)]
        struct SessionSignature {
            SessionGrant grant;
            bytes ownerSignature;
            uint32 periodIndex;
            bytes32[] merchantProof;
            bytes sessionSignature;
        }
    }
}

/// The grant after issue 11.
pub mod v2 {
    alloy::sol! {
        #[derive(Debug, Default, PartialEq, Eq)]
        struct SessionGrant {
            address sessionKey;
            uint48 validAfter;
            uint48 validUntil;
            address token;
            address settlement;
            uint96 perPaymentMax;
            uint96 periodCap;
            uint32 period;
            uint96 lifetimeCap;
            uint24 maxPaymentsPerPeriod;
            uint96 merchantPeriodCap;
            bytes32 merchantRoot;
            address paymaster;
            uint96 maxGasCostPerOp;
            uint96 gasPeriodBudget;
            uint96 gasLifetimeBudget;
            uint32 epoch;
            bytes32 salt;
        }

        interface IGrantViews {
            function sessionId(SessionGrant grant) external view returns (bytes32);
            function encodeGrant(SessionGrant grant) external pure returns (bytes);
        }
    }
}

/// Kernel v2.4 (`zerodevapp/kernel` tag v2.4) and the session validator, as the tests call them.
pub mod kernel {
    alloy::sol! {
        /// Kernel v2's `Call` (`src/common/Structs.sol`).
        #[derive(Debug, Default, PartialEq, Eq)]
        struct Call {
            address to;
            uint256 value;
            bytes data;
        }

        #[derive(Debug)]
        interface IKernel {
            function initialize(address _defaultValidator, bytes _data) external payable;
            function execute(address to, uint256 value, bytes data, uint8 operation) external payable;
            function executeBatch(Call[] calls) external payable;
            function setExecution(bytes4 _selector, address _executor, address _validator, uint48 _validUntil, uint48 _validAfter, bytes _enableData) external payable;
            function setDefaultValidator(address _defaultValidator, bytes _data) external payable;
            function getDefaultValidator() external view returns (address);
            function disableMode(bytes4 _disableFlag) external payable;
            function upgradeTo(address _newImplementation) external payable;
        }

        #[derive(Debug)]
        interface IKernelFactory {
            function createAccount(address _implementation, bytes _data, uint256 _index) external payable returns (address proxy);
            function getAccountAddress(bytes _data, uint256 _index) external view returns (address);
            function setImplementation(address _implementation, bool _allow) external;
        }

        #[derive(Debug)]
        interface IECDSAValidator {
            function ecdsaValidatorStorage(address kernel) external view returns (address owner);
        }

        /// `contracts/src/kernel/KernelSessionValidator.sol`.
        #[derive(Debug)]
        interface IKernelSessionValidator {
            function executeSessionPayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash) external;
            function chargePayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash) external;
            function revoke(bytes32 id) external;
            function revokeAll() external;
            function setPaused(bytes32 id, bool paused) external;
            function revokeWithSignature(address account, bytes32 id, bytes ownerSignature) external;
            function revokeAllWithSignature(address account, uint32 epoch, bytes ownerSignature) external;
            function setPausedWithSignature(address account, bytes32 id, bool paused, uint32 nonce, bytes ownerSignature) external;
            function ownerOf(address account) external view returns (address);
            function sessionEpoch(address account) external view returns (uint32);
            function domainSeparator(address account) external view returns (bytes32);
            function sessionState(address account, bytes32 id) external view returns (uint8 status, bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent, uint24 paymentsInPeriod);
            function sessionGasState(address account, bytes32 id) external view returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce);
            function sessionMerchantState(address account, bytes32 id, address merchant) external view returns (uint32 periodIndex, uint96 spent);
            function validateSignature(bytes32 hash, bytes signature) external view returns (uint256);
            function validCaller(address caller, bytes data) external view returns (bool);
        }
    }
}
