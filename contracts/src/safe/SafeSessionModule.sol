// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";
import {HandlerContext} from "@safe-global/safe-contracts/contracts/handler/HandlerContext.sol";
import {SessionGrant, SessionPolicy} from "../SessionPolicy.sol";
import {SessionModule} from "../SessionModule.sol";
import {ISafe} from "./ISafe.sol";
import {SessionPaymentCall} from "../SessionPaymentCall.sol";

/// @title SafeSessionModule
/// @notice Pay-only session keys for Safe 1.4.1 accounts on EntryPoint v0.6, with SessionPolicy's scopes,
/// beside Safe4337Module v0.2.0 for the owners' own ops. One deployment serves every Safe; all session
/// state is SessionPolicy's, keyed by the Safe.
///
/// Design (why it is built this way; contracts/README.md, "SafeSessionModule", has the details):
/// - The EntryPoint calls `validateUserOp` on the Safe, which has no such function, so the Safe's one
///   *fallback handler* answers it. This contract is that handler AND an enabled module (the owners
///   install both; Safe4337Module stays enabled as a module). It routes by what an op does, its
///   callData selector: `executeSessionPayment` ops are session ops, validated here by SessionPolicy;
///   every other op is an owner op and is forwarded, unchanged, to the stock Safe4337Module.
/// - Forwarding: the Safe itself calls Safe4337Module (`execTransactionFromModuleReturnData(module, 0,
///   msg.data, CALL)`). `msg.data` already ends with the original caller the Safe's fallback appended,
///   so Safe4337Module sees exactly what it sees as fallback handler: msg.sender = the Safe, last 20
///   bytes = the EntryPoint, `address(this)` = itself (its SafeOp domain). Owner ops keep the audited
///   checks (EntryPoint only, `executeUserOp*` callData only, `checkSignatures` at the threshold).
///   Only the three 4337 entry points are forwarded: a forwarded module transaction emits events, so it
///   cannot serve static calls. The rest of a fallback handler's everyday job is answered here, with
///   CompatibilityFallbackHandler 1.4.1's rules: EIP-1271 `isValidSignature(bytes32,bytes)` (a
///   `SafeMessage` signed at the threshold, or approved on chain) and the ERC-721/1155/777 receive hooks.
///   (Its legacy `isValidSignature(bytes,bytes)`, `simulate` and `getModules` are not offered; that
///   contract does not compile under this project's via-IR settings to be inherited.)
/// - A session op's callData is `executeSessionPayment(token, settlement, merchant, amount,
///   requestHash)` on the Safe (SessionPaymentCall, 164 canonical bytes). Execution makes the Safe CALL exactly
///   `approve` then `settle` through `execTransactionFromModule` and charges the session in the same
///   frame (SessionPolicy's marker and charge), so a reverted payment costs no token budget. The shape
///   has no target/value/operation/data field: a session op cannot name `execTransaction`, module,
///   owner, guard or fallback management, a delegatecall, another call or native value. Native value
///   leaves only as the EntryPoint prefund, paid here for session ops this contract validated and
///   charged to the session's gas budget.
/// - Owner controls (`revoke`, `revokeAll`, `setPaused`, `enableSession`) act for `msg.sender` only when
///   the Safe called ITSELF (a Safe transaction or owner op with `to` = the Safe), i.e. the fallback's
///   appended caller is the Safe. A fallback handler's `msg.sender` is the Safe for *anyone's* call
///   through the fallback, so `msg.sender` alone would let anybody revoke or, worse, enable a grant.
/// - Grants are authorised as strongly as the Safe itself: a 1-of-1 Safe may enable a grant inside the
///   session op (`MODE_ENABLE`, the owner's ECDSA signature over the session id, as elsewhere); any
///   other Safe enables it with a Safe transaction `enableSession(grant)` (its own threshold, guard and
///   all). SessionPolicy's enable hook takes exactly one owner address, and picking one owner of a
///   1-of-n Safe would be arbitrary. Relayed controls (`*WithSignature`) are checked by the Safe's own
///   `checkSignatures` over the EIP-712 digest, so they need the threshold too.
contract SafeSessionModule is SessionModule, HandlerContext {
    /// The EntryPoint (v0.6) whose calls validate and execute session ops.
    address public immutable ENTRY_POINT;
    /// The stock Safe4337Module v0.2.0 that validates and executes owner ops.
    address public immutable SAFE_4337_MODULE;

    event SessionEnabled(address indexed account, bytes32 indexed sessionId, address indexed sessionKey);

    /// keccak256("SafeMessage(bytes message)"), CompatibilityFallbackHandler's message type.
    bytes32 private constant SAFE_MSG_TYPEHASH = keccak256("SafeMessage(bytes message)");

    constructor(address entryPoint, address safe4337Module) {
        ENTRY_POINT = entryPoint;
        SAFE_4337_MODULE = safe4337Module;
    }

    // ---------------------------------------------------------------- ERC-4337 (through the Safe's fallback)

    /// Session ops (callData `executeSessionPayment`) are validated here; every other op goes to
    /// Safe4337Module unchanged and its answer (or revert) is returned unchanged.
    function validateUserOp(UserOperation calldata userOp, bytes32 userOpHash, uint256 missingAccountFunds)
        external
        returns (uint256 validationData)
    {
        if (bytes4(userOp.callData) != SessionPaymentCall.SELECTOR) _forward();
        require(_msgSender() == ENTRY_POINT, "session: caller is not the EntryPoint");
        require(userOp.sender == msg.sender, "session: op is not the caller's");
        validationData = SessionPolicy.validateSessionOp(
            msg.sender, _ownerOf, userOp, userOp.signature, userOpHash, _parsePayment
        );
        // Like Safe4337Module: a failed transfer is the EntryPoint's to refuse (AA21).
        if (missingAccountFunds != 0) {
            ISafe(msg.sender).execTransactionFromModule(ENTRY_POINT, missingAccountFunds, "", 0);
        }
    }

    /// Owner ops' execution: Safe4337Module's, forwarded (it requires the EntryPoint itself).
    function executeUserOp(address, uint256, bytes calldata, uint8) external {
        _forward();
    }

    /// Owner ops' execution with the callee's revert data: Safe4337Module's, forwarded.
    function executeUserOpWithErrorString(address, uint256, bytes calldata, uint8) external {
        _forward();
    }

    /// A session op's execution: only the op that validated last may execute; its session is charged
    /// (re-checking revoke-all, revoke and pause, which an earlier op of the bundle may have changed),
    /// then the Safe approves exactly `amount` to `settlement` and settles. Any revert undoes the charge.
    function executeSessionPayment(
        address token,
        address settlement,
        address merchant,
        uint256 amount,
        bytes32 requestHash
    ) external {
        require(_msgSender() == ENTRY_POINT, "session: caller is not the EntryPoint");
        // The op's callData is msg.data without the caller the fallback appended; validation proved it
        // is exactly SessionPaymentCall.LENGTH bytes, and its tag binds every argument.
        uint256 marker =
            SessionPolicy.consumeMarker(msg.sender, SessionPolicy.tagOf(msg.data[:SessionPaymentCall.LENGTH]));
        require(marker & SessionPolicy.FLAG_SESSION != 0, "account: op was not the last validated");
        SessionPolicy.chargeSession(msg.sender, marker, merchant, amount);
        _safeCall(token, abi.encodeWithSelector(SessionPolicy.APPROVE_SELECTOR, settlement, amount));
        _safeCall(
            settlement, abi.encodeWithSelector(SessionPolicy.SETTLE_SELECTOR, merchant, token, amount, requestHash)
        );
    }

    // ---------------------------------------------------------------- owner controls (the Safe calling itself)

    /// Enables a grant for the calling Safe, authorised by the Safe transaction itself (any threshold).
    /// The same well-formedness rules as an in-op enable, with "the owner" = any Safe owner.
    function enableSession(SessionGrant calldata grant) external {
        address account = _selfCaller();
        bytes32 id = SessionPolicy.sessionId(account, grant);
        (uint8 status,,,,,) = SessionPolicy.sessionState(account, id);
        require(status != 2, "session: revoked");
        require(grant.epoch == SessionPolicy.epochOf(account), "session: revoked (all sessions)");
        require(grant.sessionKey != address(0), "session: grant has no session key");
        require(!ISafe(account).isOwner(grant.sessionKey), "session: grant key is the owner");
        require(grant.validUntil > grant.validAfter, "session: grant window empty");
        require(grant.token != address(0) && grant.settlement != address(0), "session: grant has zero address");
        require(grant.settlement != account && grant.token != account, "session: grant targets account");
        require(
            grant.perPaymentMax != 0 && grant.periodCap != 0 && grant.lifetimeCap != 0, "session: grant cap is zero"
        );
        uint256 slot = SessionPolicy.sessionSlot(account, id);
        uint256 enabled = SessionPolicy.ENABLED;
        assembly ("memory-safe") {
            sstore(slot, or(sload(slot), enabled))
        }
        emit SessionEnabled(account, id, grant.sessionKey);
    }

    // ---------------------------------------------------------------- what a Safe fallback handler answers

    /// EIP-1271 for the calling Safe, as CompatibilityFallbackHandler 1.4.1: `hash` wrapped in the Safe's
    /// EIP-712 `SafeMessage(bytes message)` (message = abi.encode(hash)), then the Safe's threshold of
    /// signatures, or, with an empty signature, an on-chain approval of that message.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        ISafe safe = ISafe(msg.sender);
        bytes memory messageData = abi.encodePacked(
            hex"1901",
            safe.domainSeparator(),
            keccak256(abi.encode(SAFE_MSG_TYPEHASH, keccak256(abi.encode(hash))))
        );
        bytes32 messageHash = keccak256(messageData);
        if (signature.length == 0) {
            require(safe.signedMessages(messageHash) != 0, "Hash not approved");
        } else {
            safe.checkSignatures(messageHash, messageData, signature);
        }
        return 0x1626ba7e;
    }

    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return 0x150b7a02;
    }

    function onERC1155Received(address, address, uint256, uint256, bytes calldata) external pure returns (bytes4) {
        return 0xf23a6e61;
    }

    function onERC1155BatchReceived(address, address, uint256[] calldata, uint256[] calldata, bytes calldata)
        external
        pure
        returns (bytes4)
    {
        return 0xbc197c81;
    }

    function tokensReceived(address, address, address, uint256, bytes calldata, bytes calldata) external pure {}

    /// ERC-165: the receive hooks above (ERC-1155 receiver, ERC-721 receiver) and ERC-165 itself.
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x4e2312e0 || interfaceId == 0x150b7a02 || interfaceId == 0x01ffc9a7;
    }

    // ---------------------------------------------------------------- internals

    /// Hands the current call to Safe4337Module through the Safe (see the contract notes) and ends this
    /// call with its return or revert data.
    function _forward() private {
        (bool ok, bytes memory ret) =
            ISafe(msg.sender).execTransactionFromModuleReturnData(SAFE_4337_MODULE, 0, msg.data, 0);
        assembly ("memory-safe") {
            if iszero(ok) { revert(add(ret, 0x20), mload(ret)) }
            return(add(ret, 0x20), mload(ret))
        }
    }

    /// One plain CALL by the Safe; the callee's revert data is bubbled, so the EntryPoint's
    /// `UserOperationRevertReason` names e.g. the settlement's error.
    function _safeCall(address to, bytes memory data) private {
        (bool ok, bytes memory ret) = ISafe(msg.sender).execTransactionFromModuleReturnData(to, 0, data, 0);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }

    /// The Safe that called itself, whose fallback forwarded the call here. Anyone else's call through a
    /// Safe's fallback carries their own address as the appended caller.
    function _selfCaller() private view returns (address) {
        require(_msgSender() == msg.sender, "session: not a call by the Safe itself");
        return msg.sender;
    }

    /// The owner of a 1-of-1 Safe; any other Safe enables grants with `enableSession` (reverts here with
    /// the reason).
    function _ownerOf(address account) internal view override returns (address) {
        address[] memory owners = ISafe(account).getOwners();
        require(
            owners.length == 1 && ISafe(account).getThreshold() == 1,
            "session: Safe is not 1-of-1 (enable with enableSession)"
        );
        return owners[0];
    }

    function _parsePayment(bytes calldata callData, address, address token, address settlement)
        internal
        pure
        returns (address, uint256, bytes32, uint256)
    {
        (address merchant, uint256 amount, bytes32 requestHash) = SessionPaymentCall.parse(callData, token, settlement);
        return (merchant, amount, requestHash, SessionPolicy.tagOf(callData));
    }

    /// The Safe's own signature rule over the EIP-712 digest (pre-image passed for EIP-1271 owners).
    function _requireOwnerSignature(address account, bytes32 structHash, bytes calldata signatures)
        internal
        view
        override
    {
        bytes32 digest = SessionPolicy.typedDataHash(account, structHash);
        bytes memory preimage = abi.encodePacked(hex"1901", SessionPolicy.domainSeparator(account), structHash);
        try ISafe(account).checkSignatures(digest, preimage, signatures) {}
        catch {
            revert InvalidOwnerSignature();
        }
    }

    /// Only the Safe calling itself controls its sessions (see `_selfCaller`).
    function _controlledAccount() internal view override returns (address) {
        return _selfCaller();
    }
}
