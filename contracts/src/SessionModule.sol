// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SessionGrant, SessionPolicy} from "./SessionPolicy.sol";

/// @title SessionModule
/// @notice The part every foreign-account host of SessionPolicy (KernelSessionValidator,
/// SafeSessionModule, BiconomySessionModule) offers identically: the owner controls, direct and
/// relayed, their events and errors, and the views wallets, the SDK and the facilitator read. Kept in
/// one place so a rule about revocation or pausing cannot drift between hosts.
///
/// A host says three things about its account kind: who the account's owner is (`_ownerOf`), which
/// account a direct control acts for (`_controlledAccount`: the caller for Kernel and Biconomy, only a
/// Safe calling itself for Safe, whose fallback makes `msg.sender` the Safe for anyone's call), and how
/// a relayed control's signature is checked (`_requireOwnerSignature`: one owner's ECDSA or ERC-1271
/// signature by default; a Safe's threshold for Safe). One deployment serves every account of its kind;
/// all state is SessionPolicy's, keyed by the account.
abstract contract SessionModule {
    bytes32 public constant SESSION_GRANT_TYPEHASH = SessionPolicy.SESSION_GRANT_TYPEHASH;
    bytes32 public constant REVOKE_SESSION_TYPEHASH = SessionPolicy.REVOKE_SESSION_TYPEHASH;
    bytes32 public constant REVOKE_ALL_SESSIONS_TYPEHASH = SessionPolicy.REVOKE_ALL_SESSIONS_TYPEHASH;
    bytes32 public constant SET_SESSION_PAUSED_TYPEHASH = SessionPolicy.SET_SESSION_PAUSED_TYPEHASH;
    uint8 public constant MODE_ENABLE = SessionPolicy.MODE_ENABLE;
    uint8 public constant MODE_USE = SessionPolicy.MODE_USE;

    event SessionRevoked(address indexed account, bytes32 indexed sessionId);
    event AllSessionsRevoked(address indexed account, uint32 newEpoch);
    event SessionPaused(address indexed account, bytes32 indexed sessionId, bool paused);

    error InvalidOwnerSignature();
    error WrongEpoch(uint32 expected, uint32 given);
    error WrongPauseNonce(uint32 expected, uint32 given);

    // ---------------------------------------------------------------- what a host supplies

    /// The address whose single signature enables a grant inside a session op of `account` (and, by
    /// default, signs relayed controls). Reverts with the reason when the account has no such owner.
    function _ownerOf(address account) internal view virtual returns (address);

    /// The account a direct owner control acts for; reverts when the caller may not control one.
    function _controlledAccount() internal view virtual returns (address);

    /// Reverts with `InvalidOwnerSignature` unless `signature` is the owner's over the EIP-712 digest of
    /// `structHash` in the account's domain (verifyingContract = the account), as SessionKeyAccount's.
    function _requireOwnerSignature(address account, bytes32 structHash, bytes calldata signature)
        internal
        view
        virtual
    {
        bytes32 digest = SessionPolicy.typedDataHash(account, structHash);
        if (!SessionPolicy.isSignature(digest, signature, _ownerOf(account))) revert InvalidOwnerSignature();
    }

    // ---------------------------------------------------------------- owner controls

    /// Revokes one session of the controlled account forever (works before the session was enabled).
    function revoke(bytes32 id) external {
        _revoke(_controlledAccount(), id);
    }

    /// Invalidates every grant of the controlled account so far.
    function revokeAll() external {
        _revokeAll(_controlledAccount());
    }

    /// Pauses or resumes a session of the controlled account; counters are kept.
    function setPaused(bytes32 id, bool paused) external {
        _setPaused(_controlledAccount(), id, paused);
    }

    /// Relayable by anyone: the owner's EIP-712 `RevokeSession(bytes32 sessionId)` in the account's
    /// domain, exactly as SessionKeyAccount's.
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
    /// be the session's pause nonce (`sessionGasState`), so a signed pause cannot be replayed.
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

    /// The address whose signature enables grants inside a session op of `account` (see `_ownerOf`).
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
