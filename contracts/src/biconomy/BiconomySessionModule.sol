// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";
import {SessionGrant, SessionPolicy} from "../SessionPolicy.sol";
import {IBiconomyAccount, IBiconomyAuthorizationModule, IEcdsaOwnershipRegistryModule} from "./IBiconomyModule.sol";
import {BiconomyPayment} from "./BiconomyPayment.sol";

/// @title BiconomySessionModule
/// @notice Pay-only session keys for Biconomy Smart Account v2 (EntryPoint v0.6), with SessionPolicy's
/// scopes: a validation (authorization) module of its own. One deployment serves every account: all
/// state is SessionPolicy's, keyed by the account (`msg.sender`), so validation touches only storage
/// associated with the sender (ERC-7562).
///
/// Install (owner, once): an owner op whose callData is
/// `setupAndEnableModule(this, initForSmartAccount())`. A session op then carries
/// `signature = abi.encode(<session signature>, this)`; the account hands it to `validateUserOp` here.
/// The owner whose signature enables a grant is the account's EcdsaOwnershipRegistryModule owner, while
/// that module is enabled on the account. See contracts/README.md.
contract BiconomySessionModule is IBiconomyAuthorizationModule {
    bytes32 public constant SESSION_GRANT_TYPEHASH = SessionPolicy.SESSION_GRANT_TYPEHASH;
    bytes32 public constant REVOKE_SESSION_TYPEHASH = SessionPolicy.REVOKE_SESSION_TYPEHASH;
    bytes32 public constant REVOKE_ALL_SESSIONS_TYPEHASH = SessionPolicy.REVOKE_ALL_SESSIONS_TYPEHASH;
    bytes32 public constant SET_SESSION_PAUSED_TYPEHASH = SessionPolicy.SET_SESSION_PAUSED_TYPEHASH;
    uint8 public constant MODE_ENABLE = SessionPolicy.MODE_ENABLE;
    uint8 public constant MODE_USE = SessionPolicy.MODE_USE;

    /// The EcdsaOwnershipRegistryModule whose owner of an account enables that account's grants.
    address public immutable ECDSA_MODULE;

    event SessionRevoked(address indexed account, bytes32 indexed sessionId);
    event AllSessionsRevoked(address indexed account, uint32 newEpoch);
    event SessionPaused(address indexed account, bytes32 indexed sessionId, bool paused);

    error InvalidOwnerSignature();
    error WrongEpoch(uint32 expected, uint32 given);
    error WrongPauseNonce(uint32 expected, uint32 given);

    constructor(address ecdsaModule) {
        ECDSA_MODULE = ecdsaModule;
    }

    // ---------------------------------------------------------------- install

    /// The setup call of `setupAndEnableModule(this, initForSmartAccount())` (msg.sender = the account):
    /// makes the account's marker slots non-zero (no op pays a zero-to-non-zero write for them later)
    /// and returns the module the account enables. Calling it again changes nothing.
    function initForSmartAccount() external returns (address) {
        SessionPolicy.initAccount(msg.sender);
        return address(this);
    }

    // ---------------------------------------------------------------- IBiconomyAuthorizationModule

    /// A session op of the calling account: SessionPolicy's checks with Biconomy's payment shape, over
    /// the `bytes` the account decoded the module from.
    function validateUserOp(UserOperation calldata userOp, bytes32 userOpHash) external returns (uint256) {
        require(userOp.sender == msg.sender, "session: op is not the caller's");
        return SessionPolicy.validateSessionOp(
            msg.sender, _ownerOf, userOp, _moduleSignature(userOp.signature), userOpHash, _parsePayment
        );
    }

    /// Session keys sign nothing but ops: no ERC-1271 signature is ever valid through this module.
    function isValidSignature(bytes32, bytes memory) external pure returns (bytes4) {
        return 0xffffffff;
    }

    // ---------------------------------------------------------------- execution

    /// The third call of every session payment (see BiconomyPayment), made by the account inside its
    /// `executeBatch_y6U`: only the op that validated last may execute, and its session is charged now,
    /// so a payment that reverts (the whole batch reverts) costs no token budget. Re-checks
    /// revocation, pause and epoch, which an op earlier in the same bundle may have changed.
    function chargePayment(address, address, address merchant, uint256 amount, bytes32) external {
        uint256 marker = SessionPolicy.consumeMarker(msg.sender, SessionPolicy.tagOf(msg.data));
        if (marker & SessionPolicy.FLAG_SESSION != 0) SessionPolicy.chargeSession(msg.sender, marker, merchant, amount);
    }

    // ---------------------------------------------------------------- owner controls (msg.sender = account)

    /// Revokes one session of the calling account forever (works before the session was enabled).
    function revoke(bytes32 id) external {
        _revoke(msg.sender, id);
    }

    /// Invalidates every grant the calling account's owner signed so far.
    function revokeAll() external {
        _revokeAll(msg.sender);
    }

    /// Pauses or resumes a session of the calling account; counters are kept.
    function setPaused(bytes32 id, bool paused) external {
        _setPaused(msg.sender, id, paused);
    }

    /// Relayable by anyone: the owner's EIP-712 `RevokeSession(bytes32 sessionId)` in the account's
    /// domain (verifyingContract = the account), exactly as SessionKeyAccount's.
    function revokeWithSignature(address account, bytes32 id, bytes calldata ownerSignature) external {
        _requireOwnerSignature(account, keccak256(abi.encode(REVOKE_SESSION_TYPEHASH, id)), ownerSignature);
        _revoke(account, id);
    }

    /// Relayable revoke-all (`RevokeAllSessions(uint32 epoch)`), single use: it names the epoch it ends.
    function revokeAllWithSignature(address account, uint32 epoch, bytes calldata ownerSignature) external {
        _requireOwnerSignature(account, keccak256(abi.encode(REVOKE_ALL_SESSIONS_TYPEHASH, epoch)), ownerSignature);
        uint32 current = SessionPolicy.epochOf(account);
        if (epoch != current) revert WrongEpoch(current, epoch);
        _revokeAll(account);
    }

    /// Relayable pause/resume (`SetSessionPaused(bytes32 sessionId,bool paused,uint32 nonce)`); `nonce` must
    /// be the session's pause nonce (`sessionGasState`).
    function setPausedWithSignature(address account, bytes32 id, bool paused, uint32 nonce, bytes calldata ownerSignature)
        external
    {
        _requireOwnerSignature(
            account, keccak256(abi.encode(SET_SESSION_PAUSED_TYPEHASH, id, paused, nonce)), ownerSignature
        );
        (,,, uint32 current) = SessionPolicy.gasState(account, id);
        if (nonce != current) revert WrongPauseNonce(current, nonce);
        _setPaused(account, id, paused);
    }

    // ---------------------------------------------------------------- views

    /// The address whose signature enables grants and signs relayed controls for `account`: its
    /// EcdsaOwnershipRegistryModule owner, provided that module is enabled on the account.
    function ownerOf(address account) external view returns (address) {
        return _ownerOf(account);
    }

    function domainSeparator(address account) external view returns (bytes32) {
        return SessionPolicy.domainSeparator(account);
    }

    function sessionId(address account, SessionGrant memory grant) external view returns (bytes32) {
        return SessionPolicy.sessionId(account, grant);
    }

    function encodeGrant(SessionGrant memory grant) external pure returns (bytes memory) {
        return SessionPolicy.encodeGrant(grant);
    }

    function sessionEpoch(address account) external view returns (uint32) {
        return SessionPolicy.epochOf(account);
    }

    /// status: 0 unknown, 1 enabled, 2 revoked; `paused` is independent of status.
    function sessionState(address account, bytes32 id)
        external
        view
        returns (
            uint8 status,
            bool paused,
            uint32 periodIndex,
            uint96 periodSpent,
            uint96 lifetimeSpent,
            uint24 paymentsInPeriod
        )
    {
        return SessionPolicy.sessionState(account, id);
    }

    function sessionGasState(address account, bytes32 id)
        external
        view
        returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce)
    {
        return SessionPolicy.gasState(account, id);
    }

    function sessionMerchantState(address account, bytes32 id, address merchant)
        external
        view
        returns (uint32 periodIndex, uint96 spent)
    {
        return SessionPolicy.merchantState(account, id, merchant);
    }

    // ---------------------------------------------------------------- internals

    /// The owner registered for `account` in the ECDSA module. The module must still be enabled on the
    /// account: its registry keeps an owner after the account disables it, and that stale owner must
    /// not enable grants (or sign relayed controls) any more.
    function _ownerOf(address account) internal view returns (address) {
        require(IBiconomyAccount(account).isModuleEnabled(ECDSA_MODULE), "session: ECDSA module not enabled");
        try IEcdsaOwnershipRegistryModule(ECDSA_MODULE).getOwner(account) returns (address owner) {
            return owner;
        } catch {
            revert("session: account has no ECDSA owner");
        }
    }

    /// The session signature inside `abi.encode(bytes moduleSignature, address module)`, in canonical
    /// encoding only (offset 0x40, zero-padded to a whole word, nothing after): the account decoded the
    /// module from the same bytes, so both read one envelope.
    function _moduleSignature(bytes calldata envelope) internal pure returns (bytes calldata sig) {
        require(envelope.length >= 96 && uint256(bytes32(envelope[:32])) == 0x40, "session: malformed signature");
        uint256 len = uint256(bytes32(envelope[64:96]));
        require(len <= envelope.length && envelope.length - 96 == (len + 31) / 32 * 32, "session: malformed signature");
        sig = envelope[96:96 + len];
    }

    function _parsePayment(bytes calldata callData, address account, address token, address settlement)
        internal
        view
        returns (address, uint256, bytes32, uint256)
    {
        return BiconomyPayment.parse(callData, account, token, settlement, address(this));
    }

    function _requireOwnerSignature(address account, bytes32 structHash, bytes calldata signature) internal view {
        bytes32 digest = SessionPolicy.typedDataHash(account, structHash);
        if (!SessionPolicy.isSignature(digest, signature, _ownerOf(account))) revert InvalidOwnerSignature();
    }

    function _revoke(address account, bytes32 id) internal {
        SessionPolicy.revoke(account, id);
        emit SessionRevoked(account, id);
    }

    function _revokeAll(address account) internal {
        emit AllSessionsRevoked(account, SessionPolicy.revokeAll(account));
    }

    function _setPaused(address account, bytes32 id, bool paused) internal {
        SessionPolicy.setPaused(account, id, paused);
        emit SessionPaused(account, id, paused);
    }
}
