// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IAccount} from "@account-abstraction/contracts/interfaces/IAccount.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts/proxy/utils/UUPSUpgradeable.sol";
import {SessionGrant, SessionPolicy} from "./SessionPolicy.sol";

/// @title SessionKeyAccount
/// @notice An ERC-4337 (EntryPoint v0.6) account with SimpleAccount's ABI and owner semantics, plus session
/// keys that can only pay: `executeBatch([token, settlement], [approve(settlement, A),
/// settle(merchant, token, A, requestHash)])`, within time, amount and merchant scopes that the account
/// enforces in `validateUserOp`. See contracts/README.md for the design, especially budget accounting.
contract SessionKeyAccount is IAccount, Initializable, UUPSUpgradeable {
    using MessageHashUtils for bytes32;

    // ---------------------------------------------------------------- constants

    bytes32 public constant SESSION_GRANT_TYPEHASH = SessionPolicy.SESSION_GRANT_TYPEHASH;
    bytes32 public constant REVOKE_SESSION_TYPEHASH = SessionPolicy.REVOKE_SESSION_TYPEHASH;
    bytes32 public constant REVOKE_ALL_SESSIONS_TYPEHASH = SessionPolicy.REVOKE_ALL_SESSIONS_TYPEHASH;
    bytes32 public constant SET_SESSION_PAUSED_TYPEHASH = SessionPolicy.SET_SESSION_PAUSED_TYPEHASH;

    /// First byte of a session signature: the op carries the owner's grant signature (lazy enable).
    uint8 public constant MODE_ENABLE = SessionPolicy.MODE_ENABLE;
    /// First byte of a session signature: the grant was enabled earlier.
    uint8 public constant MODE_USE = SessionPolicy.MODE_USE;

    uint256 internal constant SIG_VALIDATION_FAILED = 1;

    // ---------------------------------------------------------------- storage

    IEntryPoint private immutable _entryPoint;

    /// Slot 0, as in SimpleAccount. Session state lives at SessionPolicy's namespaced slots.
    address public owner;

    // ---------------------------------------------------------------- events and errors

    event SessionKeyAccountInitialized(IEntryPoint indexed entryPoint, address indexed owner);
    event SessionEnabled(bytes32 indexed sessionId, address indexed sessionKey);
    event SessionRevoked(bytes32 indexed sessionId);
    event AllSessionsRevoked(uint32 newEpoch);
    event SessionPaused(bytes32 indexed sessionId, bool paused);

    error NotOwner();
    error NotEntryPointOrOwner();
    error InvalidOwnerSignature();
    error WrongEpoch(uint32 expected, uint32 given);
    error WrongPauseNonce(uint32 expected, uint32 given);

    // ---------------------------------------------------------------- construction

    constructor(IEntryPoint anEntryPoint) {
        _entryPoint = anEntryPoint;
        _disableInitializers();
    }

    function initialize(address anOwner) public virtual initializer {
        owner = anOwner;
        SessionPolicy.initAccount(address(this));
        emit SessionKeyAccountInitialized(_entryPoint, anOwner);
    }

    receive() external payable {}

    // ---------------------------------------------------------------- SimpleAccount ABI

    function entryPoint() public view returns (IEntryPoint) {
        return _entryPoint;
    }

    function getNonce() public view returns (uint256) {
        return _entryPoint.getNonce(address(this), 0);
    }

    function execute(address dest, uint256 value, bytes calldata func) external {
        _requireFromEntryPointOrOwner();
        if (msg.sender == address(_entryPoint)) SessionPolicy.consumeOp(address(this), msg.data);
        _call(dest, value, func);
    }

    function executeBatch(address[] calldata dest, bytes[] calldata func) external {
        _requireFromEntryPointOrOwner();
        if (msg.sender == address(_entryPoint)) SessionPolicy.consumeOp(address(this), msg.data);
        require(dest.length == func.length, "wrong array lengths");
        for (uint256 i = 0; i < dest.length; i++) {
            _call(dest[i], 0, func[i]);
        }
    }

    function getDeposit() public view returns (uint256) {
        return _entryPoint.balanceOf(address(this));
    }

    function addDeposit() public payable {
        _entryPoint.depositTo{value: msg.value}(address(this));
    }

    function withdrawDepositTo(address payable withdrawAddress, uint256 amount) public {
        _onlyOwner();
        _entryPoint.withdrawTo(withdrawAddress, amount);
    }

    // ---------------------------------------------------------------- validation

    /// @inheritdoc IAccount
    function validateUserOp(UserOperation calldata userOp, bytes32 userOpHash, uint256 missingAccountFunds)
        external
        returns (uint256 validationData)
    {
        require(msg.sender == address(_entryPoint), "account: not from EntryPoint");
        if (userOp.signature.length == 65) {
            // Owner path: exactly SimpleAccount's check (EIP-191 over the userOpHash).
            (address signer, ECDSA.RecoverError err,) =
                ECDSA.tryRecover(userOpHash.toEthSignedMessageHash(), userOp.signature);
            validationData = (err == ECDSA.RecoverError.NoError && signer == owner) ? 0 : SIG_VALIDATION_FAILED;
            SessionPolicy.markOwnerOp(address(this), userOp.callData);
        } else {
            validationData = SessionPolicy.validateSessionOp(
                address(this), _ownerOf, userOp, userOp.signature, userOpHash, SessionPolicy.simpleAccountPayment
            );
        }
        if (missingAccountFunds != 0) {
            (bool ok,) = payable(msg.sender).call{value: missingAccountFunds, gas: type(uint256).max}("");
            (ok); // the EntryPoint checks the deposit itself
        }
    }

    // ---------------------------------------------------------------- sessions: views

    function domainSeparator() public view returns (bytes32) {
        return SessionPolicy.domainSeparator(address(this));
    }

    /// The session id is the EIP-712 digest the owner signs: unique per grant, chain and account.
    function sessionId(SessionGrant memory grant) public view returns (bytes32) {
        return SessionPolicy.sessionId(address(this), grant);
    }

    /// The packed grant (251 bytes) a session signature carries after its mode byte.
    function encodeGrant(SessionGrant memory grant) external pure returns (bytes memory) {
        return SessionPolicy.encodeGrant(grant);
    }

    function sessionEpoch() external view returns (uint32) {
        return SessionPolicy.epochOf(address(this));
    }

    /// status: 0 unknown, 1 enabled, 2 revoked; `paused` is independent of status.
    function sessionState(bytes32 id)
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
        return SessionPolicy.sessionState(address(this), id);
    }

    /// Native gas charged to the session (prefunds of self-paid ops, in wei) and the nonce the next
    /// relayable pause/resume signature must name.
    function sessionGasState(bytes32 id)
        external
        view
        returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce)
    {
        return SessionPolicy.gasState(address(this), id);
    }

    /// What the session paid `merchant` in period `periodIndex` (counts only for grants with a
    /// merchantPeriodCap).
    function sessionMerchantState(bytes32 id, address merchant)
        external
        view
        returns (uint32 periodIndex, uint96 spent)
    {
        return SessionPolicy.merchantState(address(this), id, merchant);
    }

    // ---------------------------------------------------------------- sessions: owner controls

    /// Revokes one session forever; works before the session was ever enabled, too.
    /// The `_ol` suffix is mined: selector 0x0000ac42 sorts first in the dispatcher (solc's via-IR
    /// dispatcher compares selectors in ascending order, 22 gas each) and its two zero bytes cost 4 gas of
    /// calldata instead of 16, so the owner's kill switch costs ~390 gas less than `revokeSession` did
    /// and stays under its 35,000-gas budget (BENCHMARKS.md).
    function revokeSession_ol(bytes32 id) external {
        _onlyOwner();
        _revoke(id);
    }

    /// Invalidates every grant signed so far, enabled or not.
    function revokeAllSessions() external {
        _onlyOwner();
        _revokeAll();
    }

    /// Stops a session without revoking it; `resumeSession` lets it pay again with its counters intact.
    function pauseSession(bytes32 id) external {
        _onlyOwner();
        _setPaused(id, true);
    }

    function resumeSession(bytes32 id) external {
        _onlyOwner();
        _setPaused(id, false);
    }

    /// Anyone may relay an owner-signed revocation (EIP-712 `RevokeSession(bytes32 sessionId)`), so an owner
    /// without native gas can still kill a session at once.
    function revokeWithSignature(bytes32 id, bytes calldata ownerSignature) external {
        _requireOwnerSignature(keccak256(abi.encode(REVOKE_SESSION_TYPEHASH, id)), ownerSignature);
        _revoke(id);
    }

    /// Relayable revoke-all (EIP-712 `RevokeAllSessions(uint32 epoch)`), single use because it names the
    /// epoch it ends.
    function revokeAllWithSignature(uint32 epoch, bytes calldata ownerSignature) external {
        _requireOwnerSignature(keccak256(abi.encode(REVOKE_ALL_SESSIONS_TYPEHASH, epoch)), ownerSignature);
        uint32 current = SessionPolicy.epochOf(address(this));
        if (epoch != current) revert WrongEpoch(current, epoch);
        _revokeAll();
    }

    /// Relayable pause or resume (EIP-712 `SetSessionPaused(bytes32 sessionId,bool paused,uint32 nonce)`).
    /// `nonce` must be the session's current pause nonce (`sessionGasState`), which every pause or resume
    /// moves on: a signature works once, and never after a later pause/resume by the owner.
    function setPausedWithSignature(bytes32 id, bool paused, uint32 nonce, bytes calldata ownerSignature)
        external
    {
        _requireOwnerSignature(keccak256(abi.encode(SET_SESSION_PAUSED_TYPEHASH, id, paused, nonce)), ownerSignature);
        (,,, uint32 current) = SessionPolicy.gasState(address(this), id);
        if (nonce != current) revert WrongPauseNonce(current, nonce);
        _setPaused(id, paused);
    }

    function _revoke(bytes32 id) internal {
        SessionPolicy.revoke(address(this), id);
        emit SessionRevoked(id);
    }

    function _revokeAll() internal {
        emit AllSessionsRevoked(SessionPolicy.revokeAll(address(this)));
    }

    function _setPaused(bytes32 id, bool paused) internal {
        SessionPolicy.setPaused(address(this), id, paused);
        emit SessionPaused(id, paused);
    }

    // ---------------------------------------------------------------- internals

    /// SessionPolicy asks for the owner only when a grant is being enabled.
    function _ownerOf(address) internal view returns (address) {
        return owner;
    }

    function _requireOwnerSignature(bytes32 structHash, bytes calldata signature) internal view {
        bytes32 digest = SessionPolicy.typedDataHash(address(this), structHash);
        if (!SessionPolicy.isSignature(digest, signature, owner)) revert InvalidOwnerSignature();
    }

    /// Owner directly, or the account itself (an owner op calling back into the account), or the EntryPoint
    /// (an owner op whose callData is this function: a session op can never have such callData).
    function _onlyOwner() internal view {
        if (msg.sender != owner && msg.sender != address(this) && msg.sender != address(_entryPoint)) {
            revert NotOwner();
        }
    }

    function _requireFromEntryPointOrOwner() internal view {
        if (msg.sender != address(_entryPoint) && msg.sender != owner) revert NotEntryPointOrOwner();
    }

    function _call(address target, uint256 value, bytes calldata data) internal {
        (bool success, bytes memory result) = target.call{value: value}(data);
        if (!success) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }

    function _authorizeUpgrade(address) internal view override {
        if (msg.sender != owner && msg.sender != address(this)) revert NotOwner();
    }
}
