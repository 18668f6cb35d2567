//! Bindings for the project's own contracts in `contracts/src`.
//!
//! Placeholder until these become `sol!` over `contracts/artifacts/*.json`: hand-written to
//! match the compiled ABI, which `tests::bindings_match_project_abis` checks. Bytecode always
//! comes from the artifacts at run time ([`crate::project_artifact`]).
//!
//! `SessionKeyAccount.validateUserOp` is left out: it takes a `UserOperation`, and a second
//! `sol!` `UserOperation` type here would not be interchangeable with
//! [`crate::UserOperation`]; only the EntryPoint calls it.

use alloy::sol;

sol! {
    /// The aa-native `settle(merchant, token, amount, requestHash)`: pulls `amount` from the
    /// calling account to `merchant`, once per `requestHash`.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface SettlementContract {
        event ReceiptLog(address indexed merchant, address indexed payer, address token, uint256 amount, bytes32 indexed requestHash);
        event TokenAllowed(address indexed token, bool allowed);
        event Paused(address account);
        event Unpaused(address account);
        event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

        error UnexpectedNativeValue();
        error ZeroAddress();
        error ZeroAmount();
        error ZeroRequestHash();
        error TokenNotAllowed(address token);
        error AlreadySettled(bytes32 requestHash);
        error MerchantBalanceMismatch(uint256 expectedIncrease, uint256 actualIncrease);
        error EnforcedPause();
        error ExpectedPause();
        error OwnableUnauthorizedAccount(address account);
        error OwnableInvalidOwner(address owner);
        error ReentrancyGuardReentrantCall();
        error SafeERC20FailedOperation(address token);

        function settle(address merchant, address token, uint256 amount, bytes32 requestHash) external payable;
        function isSettled(bytes32 requestHash) external view returns (bool);
        function isTokenAllowed(address token) external view returns (bool);
        function setTokenAllowed(address token, bool allowed) external;
        function pause() external;
        function unpause() external;
        function paused() external view returns (bool);
        function owner() external view returns (address);
        function transferOwnership(address newOwner) external;
    }

    /// 6-decimal devnet dollar; only the owner mints.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface TestStablecoin {
        event Transfer(address indexed from, address indexed to, uint256 value);
        event Approval(address indexed owner, address indexed spender, uint256 value);

        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error OwnableUnauthorizedAccount(address account);

        function name() external view returns (string);
        function symbol() external view returns (string);
        function decimals() external pure returns (uint8);
        function totalSupply() external view returns (uint256);
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
        function transfer(address to, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
        function mint(address to, uint256 amount) external;
        function owner() external view returns (address);
    }

    /// 6-decimal devnet USDC look-alike with EIP-3009 authorizations (FiatTokenV2_2's ABI and
    /// rules; EIP-712 domain "Devnet USD Coin", version "2"), for x402's `exact` scheme. Only the
    /// owner mints. Overloads: `_0` takes `(v, r, s)`, `_1` a `bytes signature`.
    #[allow(clippy::too_many_arguments)]
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface TestEip3009Token {
        event Transfer(address indexed from, address indexed to, uint256 value);
        event Approval(address indexed owner, address indexed spender, uint256 value);
        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
        event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

        error AuthorizationNotYetValid(uint256 validAfter);
        error AuthorizationExpired(uint256 validBefore);
        error AuthorizationUsedOrCanceled(address authorizer, bytes32 nonce);
        error InvalidSignature();
        error CallerMustBePayee(address caller, address payee);
        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error OwnableUnauthorizedAccount(address account);

        function name() external view returns (string);
        function symbol() external view returns (string);
        function decimals() external pure returns (uint8);
        function version() external pure returns (string);
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function TRANSFER_WITH_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
        function RECEIVE_WITH_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
        function CANCEL_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
        function totalSupply() external view returns (uint256);
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
        function transfer(address to, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);
        function mint(address to, uint256 amount) external;
        function owner() external view returns (address);

        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;
        function receiveWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
        function receiveWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, bytes signature) external;
        function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
        function cancelAuthorization(address authorizer, bytes32 nonce, bytes signature) external;
    }

    /// SimpleAccountFactory's ABI for `SessionKeyAccount` proxies, so initCode works the same.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface SessionKeyAccountFactory {
        function accountImplementation() external view returns (address);
        function createAccount(address owner, uint256 salt) external returns (address ret);
        function getAddress(address owner, uint256 salt) external view returns (address);
    }

    /// What the owner EIP-712-signs (domain "X402SessionAccount", "1", chainId, account) to let
    /// a session key pay; its digest is the session id.
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

    /// EntryPoint v0.6 account: SimpleAccount's owner path plus pay-only session keys.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface SessionKeyAccount {
        event SessionKeyAccountInitialized(address indexed entryPoint, address indexed owner);
        event SessionEnabled(bytes32 indexed sessionId, address indexed sessionKey);
        event SessionRevoked(bytes32 indexed sessionId);
        event AllSessionsRevoked(uint32 newEpoch);
        event SessionPaused(bytes32 indexed sessionId, bool paused);

        error NotOwner();
        error NotEntryPointOrOwner();
        error InvalidOwnerSignature();
        error WrongEpoch(uint32 expected, uint32 given);
        error WrongPauseNonce(uint32 expected, uint32 given);

        function MODE_ENABLE() external view returns (uint8);
        function MODE_USE() external view returns (uint8);
        function SESSION_GRANT_TYPEHASH() external view returns (bytes32);
        function REVOKE_SESSION_TYPEHASH() external view returns (bytes32);
        function REVOKE_ALL_SESSIONS_TYPEHASH() external view returns (bytes32);
        function SET_SESSION_PAUSED_TYPEHASH() external view returns (bytes32);

        function owner() external view returns (address);
        function entryPoint() external view returns (address);
        function getNonce() external view returns (uint256);
        function getDeposit() external view returns (uint256);
        function addDeposit() external payable;
        function withdrawDepositTo(address withdrawAddress, uint256 amount) external;
        function execute(address dest, uint256 value, bytes calldata func) external;
        function executeBatch(address[] calldata dest, bytes[] calldata func) external;

        function domainSeparator() external view returns (bytes32);
        function sessionId(SessionGrant memory grant) external view returns (bytes32);
        function sessionEpoch() external view returns (uint32);
        function encodeGrant(SessionGrant memory grant) external pure returns (bytes memory);
        function sessionState(bytes32 id) external view returns (uint8 status, bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent, uint24 paymentsInPeriod);
        function sessionGasState(bytes32 id) external view returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce);
        function sessionMerchantState(bytes32 id, address merchant) external view returns (uint32 periodIndex, uint96 spent);
        function pauseSession(bytes32 id) external;
        function resumeSession(bytes32 id) external;
        function setPausedWithSignature(bytes32 id, bool paused, uint32 nonce, bytes calldata ownerSignature) external;
        function revokeSession_ol(bytes32 id) external;
        function revokeAllSessions() external;
        function revokeWithSignature(bytes32 id, bytes calldata ownerSignature) external;
        function revokeAllWithSignature(uint32 epoch, bytes calldata ownerSignature) external;
    }

    /// Session keys with SessionPolicy's scopes for Kernel v2.4 accounts (`contracts/src/kernel/`).
    /// One deployment serves every account; state is keyed by the account. Installed by the owner
    /// with `Kernel.setExecution(0x5f0dcdb8 /* executeSessionPayment */, validator, validator, 0, 0,
    /// "")` (validator and executor); session ops then carry signature `0x00000001 ‖ session
    /// signature` and callData `executeSessionPayment(token, settlement, merchant, A, requestHash)`
    /// (canonical ABI, 164 bytes), which the account DELEGATECALLs here. `validateUserOp` is left out for the reason given
    /// in this module's head.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface KernelSessionValidator {
        event SessionRevoked(address indexed account, bytes32 indexed sessionId);
        event AllSessionsRevoked(address indexed account, uint32 newEpoch);
        event SessionPaused(address indexed account, bytes32 indexed sessionId, bool paused);

        error InvalidOwnerSignature();
        error WrongEpoch(uint32 expected, uint32 given);
        error WrongPauseNonce(uint32 expected, uint32 given);

        function MODE_ENABLE() external view returns (uint8);
        function MODE_USE() external view returns (uint8);
        function SESSION_GRANT_TYPEHASH() external view returns (bytes32);
        function REVOKE_SESSION_TYPEHASH() external view returns (bytes32);
        function REVOKE_ALL_SESSIONS_TYPEHASH() external view returns (bytes32);
        function SET_SESSION_PAUSED_TYPEHASH() external view returns (bytes32);
        function ECDSA_VALIDATOR() external view returns (address);

        function enable(bytes calldata data) external payable;
        function disable(bytes calldata data) external payable;
        function validateSignature(bytes32 hash, bytes calldata signature) external view returns (uint256);
        function validCaller(address caller, bytes calldata data) external view returns (bool);

        function executeSessionPayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash) external;
        function chargePayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash) external;

        function revoke(bytes32 id) external;
        function revokeAll() external;
        function setPaused(bytes32 id, bool paused) external;
        function revokeWithSignature(address account, bytes32 id, bytes calldata ownerSignature) external;
        function revokeAllWithSignature(address account, uint32 epoch, bytes calldata ownerSignature) external;
        function setPausedWithSignature(address account, bytes32 id, bool paused, uint32 nonce, bytes calldata ownerSignature) external;

        function ownerOf(address account) external view returns (address);
        function domainSeparator(address account) external view returns (bytes32);
        function sessionId(address account, SessionGrant memory grant) external view returns (bytes32);
        function encodeGrant(SessionGrant memory grant) external pure returns (bytes memory);
        function sessionEpoch(address account) external view returns (uint32);
        function sessionState(address account, bytes32 id) external view returns (uint8 status, bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent, uint24 paymentsInPeriod);
        function sessionGasState(address account, bytes32 id) external view returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce);
        function sessionMerchantState(address account, bytes32 id, address merchant) external view returns (uint32 periodIndex, uint96 spent);
    }

    /// Session keys with SessionPolicy's scopes for Safe 1.4.1 accounts (`contracts/src/safe/`), beside
    /// Safe4337Module v0.2.0. One deployment serves every Safe; state is keyed by the Safe. Installed as
    /// an enabled module AND the Safe's fallback handler: ops whose callData is
    /// `executeSessionPayment(token, settlement, merchant, amount, requestHash)` (164 canonical bytes) are
    /// session ops with the plain session signature; every other op is forwarded to Safe4337Module.
    /// Controls act for the Safe only when the Safe calls itself (`to` = the Safe); the views and the
    /// relayed controls are KernelSessionValidator's. `validateUserOp` is left out for the reason given
    /// in this module's head.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface SafeSessionModule {
        event SessionEnabled(address indexed account, bytes32 indexed sessionId, address indexed sessionKey);
        event SessionRevoked(address indexed account, bytes32 indexed sessionId);
        event AllSessionsRevoked(address indexed account, uint32 newEpoch);
        event SessionPaused(address indexed account, bytes32 indexed sessionId, bool paused);

        error InvalidOwnerSignature();
        error WrongEpoch(uint32 expected, uint32 given);
        error WrongPauseNonce(uint32 expected, uint32 given);

        function MODE_ENABLE() external view returns (uint8);
        function MODE_USE() external view returns (uint8);
        function SESSION_GRANT_TYPEHASH() external view returns (bytes32);
        function REVOKE_SESSION_TYPEHASH() external view returns (bytes32);
        function REVOKE_ALL_SESSIONS_TYPEHASH() external view returns (bytes32);
        function SET_SESSION_PAUSED_TYPEHASH() external view returns (bytes32);
        function ENTRY_POINT() external view returns (address);
        function SAFE_4337_MODULE() external view returns (address);

        function executeUserOp(address to, uint256 value, bytes calldata data, uint8 operation) external;
        function executeUserOpWithErrorString(address to, uint256 value, bytes calldata data, uint8 operation) external;
        function executeSessionPayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash) external;

        function enableSession(SessionGrant calldata grant) external;
        function revoke(bytes32 id) external;
        function revokeAll() external;
        function setPaused(bytes32 id, bool paused) external;
        function revokeWithSignature(address account, bytes32 id, bytes calldata ownerSignature) external;
        function revokeAllWithSignature(address account, uint32 epoch, bytes calldata ownerSignature) external;
        function setPausedWithSignature(address account, bytes32 id, bool paused, uint32 nonce, bytes calldata ownerSignature) external;

        function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4);
        function onERC721Received(address operator, address from, uint256 tokenId, bytes calldata data) external pure returns (bytes4);
        function onERC1155Received(address operator, address from, uint256 id, uint256 value, bytes calldata data) external pure returns (bytes4);
        function onERC1155BatchReceived(address operator, address from, uint256[] calldata ids, uint256[] calldata values, bytes calldata data) external pure returns (bytes4);
        function tokensReceived(address operator, address from, address to, uint256 amount, bytes calldata userData, bytes calldata operatorData) external pure;
        function supportsInterface(bytes4 interfaceId) external pure returns (bool);

        function ownerOf(address account) external view returns (address);
        function domainSeparator(address account) external view returns (bytes32);
        function sessionId(address account, SessionGrant memory grant) external view returns (bytes32);
        function encodeGrant(SessionGrant memory grant) external pure returns (bytes memory);
        function sessionEpoch(address account) external view returns (uint32);
        function sessionState(address account, bytes32 id) external view returns (uint8 status, bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent, uint24 paymentsInPeriod);
        function sessionGasState(address account, bytes32 id) external view returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce);
        function sessionMerchantState(address account, bytes32 id, address merchant) external view returns (uint32 periodIndex, uint96 spent);
    }

    /// Session keys with SessionPolicy's scopes for Biconomy Smart Account v2 accounts
    /// (`contracts/src/biconomy/`), a validation module of its own. One deployment serves every
    /// account; state is keyed by the account. Installed by an owner op whose callData is
    /// `setupAndEnableModule(module, initForSmartAccount())`; session ops then carry signature
    /// `abi.encode(session signature, module)` and callData `executeBatch_y6U([token, settlement,
    /// module], [0, 0, 0], [approve(settlement, A), settle(merchant, token, A, requestHash),
    /// chargePayment(token, settlement, merchant, A, requestHash)])` (canonical ABI, 1028 bytes).
    /// Owner controls and views are KernelSessionValidator's; `validateUserOp` is left out for the
    /// reason given in this module's head.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface BiconomySessionModule {
        event SessionRevoked(address indexed account, bytes32 indexed sessionId);
        event AllSessionsRevoked(address indexed account, uint32 newEpoch);
        event SessionPaused(address indexed account, bytes32 indexed sessionId, bool paused);

        error InvalidOwnerSignature();
        error WrongEpoch(uint32 expected, uint32 given);
        error WrongPauseNonce(uint32 expected, uint32 given);

        function MODE_ENABLE() external view returns (uint8);
        function MODE_USE() external view returns (uint8);
        function SESSION_GRANT_TYPEHASH() external view returns (bytes32);
        function REVOKE_SESSION_TYPEHASH() external view returns (bytes32);
        function REVOKE_ALL_SESSIONS_TYPEHASH() external view returns (bytes32);
        function SET_SESSION_PAUSED_TYPEHASH() external view returns (bytes32);
        function ECDSA_MODULE() external view returns (address);

        function initForSmartAccount() external returns (address);
        function isValidSignature(bytes32 dataHash, bytes memory moduleSignature) external view returns (bytes4);

        function chargePayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash) external;

        function revoke(bytes32 id) external;
        function revokeAll() external;
        function setPaused(bytes32 id, bool paused) external;
        function revokeWithSignature(address account, bytes32 id, bytes calldata ownerSignature) external;
        function revokeAllWithSignature(address account, uint32 epoch, bytes calldata ownerSignature) external;
        function setPausedWithSignature(address account, bytes32 id, bool paused, uint32 nonce, bytes calldata ownerSignature) external;

        function ownerOf(address account) external view returns (address);
        function domainSeparator(address account) external view returns (bytes32);
        function sessionId(address account, SessionGrant memory grant) external view returns (bytes32);
        function encodeGrant(SessionGrant memory grant) external pure returns (bytes memory);
        function sessionEpoch(address account) external view returns (uint32);
        function sessionState(address account, bytes32 id) external view returns (uint8 status, bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent, uint24 paymentsInPeriod);
        function sessionGasState(address account, bytes32 id) external view returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce);
        function sessionMerchantState(address account, bytes32 id, address merchant) external view returns (uint32 periodIndex, uint96 spent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArtifactError, abi_check::assert_subset_of_artifact, project_artifact};

    /// Skips (with a message) only while an artifact file is absent; any other load error fails.
    fn artifact_or_skip(name: &str) -> Option<crate::Artifact> {
        match project_artifact(name) {
            Ok(a) => Some(a),
            Err(ArtifactError::Missing { path, .. }) => {
                eprintln!("SKIP: {} missing; run `npm run compile`", path.display());
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn bindings_match_project_abis() {
        if let Some(a) = artifact_or_skip("SettlementContract") {
            assert_subset_of_artifact(
                &a,
                SettlementContract::SettlementContractCalls::SELECTORS,
                SettlementContract::SettlementContractEvents::SELECTORS,
                SettlementContract::SettlementContractErrors::SELECTORS,
            );
        }
        if let Some(a) = artifact_or_skip("TestStablecoin") {
            assert_subset_of_artifact(
                &a,
                TestStablecoin::TestStablecoinCalls::SELECTORS,
                TestStablecoin::TestStablecoinEvents::SELECTORS,
                TestStablecoin::TestStablecoinErrors::SELECTORS,
            );
        }
        if let Some(a) = artifact_or_skip("TestEip3009Token") {
            assert_subset_of_artifact(
                &a,
                TestEip3009Token::TestEip3009TokenCalls::SELECTORS,
                TestEip3009Token::TestEip3009TokenEvents::SELECTORS,
                TestEip3009Token::TestEip3009TokenErrors::SELECTORS,
            );
        }
        if let Some(a) = artifact_or_skip("SessionKeyAccountFactory") {
            assert_subset_of_artifact(
                &a,
                SessionKeyAccountFactory::SessionKeyAccountFactoryCalls::SELECTORS,
                &[],
                &[],
            );
        }
        if let Some(a) = artifact_or_skip("KernelSessionValidator") {
            assert_subset_of_artifact(
                &a,
                KernelSessionValidator::KernelSessionValidatorCalls::SELECTORS,
                KernelSessionValidator::KernelSessionValidatorEvents::SELECTORS,
                KernelSessionValidator::KernelSessionValidatorErrors::SELECTORS,
            );
        }
        if let Some(a) = artifact_or_skip("BiconomySessionModule") {
            assert_subset_of_artifact(
                &a,
                BiconomySessionModule::BiconomySessionModuleCalls::SELECTORS,
                BiconomySessionModule::BiconomySessionModuleEvents::SELECTORS,
                BiconomySessionModule::BiconomySessionModuleErrors::SELECTORS,
            );
        }
        if let Some(a) = artifact_or_skip("SafeSessionModule") {
            assert_subset_of_artifact(
                &a,
                SafeSessionModule::SafeSessionModuleCalls::SELECTORS,
                SafeSessionModule::SafeSessionModuleEvents::SELECTORS,
                SafeSessionModule::SafeSessionModuleErrors::SELECTORS,
            );
        }
        if let Some(a) = artifact_or_skip("SessionKeyAccount") {
            assert_subset_of_artifact(
                &a,
                SessionKeyAccount::SessionKeyAccountCalls::SELECTORS,
                SessionKeyAccount::SessionKeyAccountEvents::SELECTORS,
                SessionKeyAccount::SessionKeyAccountErrors::SELECTORS,
            );
        }
    }

    #[test]
    fn settle_selector_matches_core_codec() {
        use alloy::sol_types::SolCall;
        assert_eq!(SettlementContract::settleCall::SELECTOR, x402_aa::abi::settleCall::SELECTOR);
        assert_eq!(SettlementContract::settleCall::SELECTOR, [0xd4, 0x72, 0x9c, 0x72]);
    }
}
