// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IAccount} from "@account-abstraction/contracts/interfaces/IAccount.sol";
import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Initializable} from "@openzeppelin/contracts/proxy/utils/Initializable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts/proxy/utils/UUPSUpgradeable.sol";

/// @notice What the owner signs once to let a session key pay x402 invoices, and nothing else.
/// @dev EIP-712 struct `SessionGrant`; the domain is (name "X402SessionAccount", version "1", chainId,
/// verifyingContract = the account), so a grant never replays on another chain or account.
struct SessionGrant {
    /// The only key that may sign UserOps under this grant.
    address sessionKey;
    /// Grant window in unix seconds; returned to the EntryPoint, never compared in validation.
    uint48 validAfter;
    uint48 validUntil;
    /// The one token the session may approve and pay with.
    address token;
    /// The one settlement contract it may approve and call.
    address settlement;
    /// Largest single payment, in token units.
    uint96 perPaymentMax;
    /// Most the session may pay inside one period (fixed windows anchored at validAfter).
    uint96 periodCap;
    /// Period length in seconds; 0 = the whole grant window is one period.
    uint32 period;
    /// Most the session may pay over its whole life.
    uint96 lifetimeCap;
    /// Merkle root of allowed merchants (leaf = keccak256(abi.encodePacked(merchant))); 0 = any merchant.
    bytes32 merchantRoot;
    /// When a paymaster is used it must be this one; address(0) = any paymaster.
    address paymaster;
    /// Upper bound of (callGas + verificationGas + preVerificationGas) * maxFeePerGas for an op that
    /// pays its own gas from the account's deposit; 0 = a paymaster is required.
    uint128 maxSelfPaidGasCost;
    /// Must equal the account's sessionEpoch(): revokeAllSessions() invalidates every earlier grant.
    uint32 epoch;
    /// Makes each grant (and so each session id) unique.
    bytes32 salt;
}

/// @notice The session part of `UserOperation.signature`, after its one mode byte:
/// `abi.encode(SessionSignature)`. `ownerSignature` is empty in MODE_USE.
struct SessionSignature {
    SessionGrant grant;
    bytes ownerSignature;
    uint32 periodIndex;
    bytes32[] merchantProof;
    bytes sessionSignature;
}

/// @title SessionKeyAccount
/// @notice An ERC-4337 (EntryPoint v0.6) account with SimpleAccount's ABI and owner semantics, plus session
/// keys that can only pay: `executeBatch([token, settlement], [approve(settlement, A),
/// settle(merchant, token, A, requestHash)])`, within time, amount and merchant scopes that the account
/// enforces in `validateUserOp`. See contracts/README.md for the design, especially budget accounting.
contract SessionKeyAccount is IAccount, Initializable, UUPSUpgradeable {
    using MessageHashUtils for bytes32;

    // ---------------------------------------------------------------- constants

    bytes32 public constant SESSION_GRANT_TYPEHASH = keccak256(
        "SessionGrant(address sessionKey,uint48 validAfter,uint48 validUntil,address token,address settlement,"
        "uint96 perPaymentMax,uint96 periodCap,uint32 period,uint96 lifetimeCap,bytes32 merchantRoot,"
        "address paymaster,uint128 maxSelfPaidGasCost,uint32 epoch,bytes32 salt)"
    );
    bytes32 public constant REVOKE_SESSION_TYPEHASH = keccak256("RevokeSession(bytes32 sessionId)");
    bytes32 public constant REVOKE_ALL_SESSIONS_TYPEHASH = keccak256("RevokeAllSessions(uint32 epoch)");
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("X402SessionAccount");
    bytes32 private constant VERSION_HASH = keccak256("1");

    /// First byte of a session signature: the op carries the owner's grant signature (lazy enable).
    uint8 public constant MODE_ENABLE = 1;
    /// First byte of a session signature: the grant was enabled earlier.
    uint8 public constant MODE_USE = 2;

    uint256 internal constant SIG_VALIDATION_FAILED = 1;

    uint8 internal constant STATUS_NONE = 0;
    uint8 internal constant STATUS_ENABLED = 1;
    uint8 internal constant STATUS_REVOKED = 2;

    bytes4 internal constant EXECUTE_SELECTOR = 0xb61d27f6; // execute(address,uint256,bytes)
    bytes4 internal constant EXECUTE_BATCH_SELECTOR = 0x18dfb3c7; // executeBatch(address[],bytes[])
    bytes4 internal constant APPROVE_SELECTOR = 0x095ea7b3; // approve(address,uint256)
    bytes4 internal constant SETTLE_SELECTOR = 0xd4729c72; // settle(address,address,uint256,bytes32)

    /// Canonical ABI lengths of the two permitted payment shapes (see _paymentCallData).
    uint256 internal constant BATCH_PAYMENT_LENGTH = 580;
    uint256 internal constant EXECUTE_PAYMENT_LENGTH = 292;
    /// Offsets of the settle arguments inside those encodings.
    uint256 internal constant BATCH_SETTLE_ARGS = 4 + 0x1a0 + 4;
    uint256 internal constant EXECUTE_SETTLE_ARGS = 4 + 0x80 + 4;

    // ---------------------------------------------------------------- storage

    /// Spending state of one session, one slot. Keyed by the first 16 bytes of the session id.
    struct SessionState {
        uint8 status;
        uint32 periodIndex;
        uint96 periodSpent;
        uint96 lifetimeSpent;
    }

    /// Written by every validation, read by the execution that follows it: this is how the execution
    /// phase knows which session (if any) to charge, so a payment that reverts never consumes budget.
    struct OpMarker {
        bytes16 session; // 0 = owner-signed op
        uint32 periodIndex;
        uint64 opTag; // low 64 bits of keccak256(callData) | 1; 0 once consumed
        uint32 epoch; // the account's session epoch lives here so validation reads one slot, not two
    }

    IEntryPoint private immutable _entryPoint;

    address public owner;
    mapping(bytes16 => SessionState) private _sessions;
    OpMarker private _marker;

    // ---------------------------------------------------------------- events and errors

    event SessionKeyAccountInitialized(IEntryPoint indexed entryPoint, address indexed owner);
    event SessionEnabled(bytes32 indexed sessionId, address indexed sessionKey);
    event SessionRevoked(bytes32 indexed sessionId);
    event AllSessionsRevoked(uint32 newEpoch);

    error NotOwner();
    error NotEntryPointOrOwner();
    error InvalidOwnerSignature();
    error WrongEpoch(uint32 expected, uint32 given);

    // ---------------------------------------------------------------- construction

    constructor(IEntryPoint anEntryPoint) {
        _entryPoint = anEntryPoint;
        _disableInitializers();
    }

    function initialize(address anOwner) public virtual initializer {
        owner = anOwner;
        // A non-zero marker slot (period 1 of "no session") makes the first op's marker write a cheap
        // non-zero to non-zero store; the epoch starts at 0.
        _marker = OpMarker(bytes16(0), 1, 0, 0);
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
        _consumeOpMarker();
        _call(dest, value, func);
    }

    function executeBatch(address[] calldata dest, bytes[] calldata func) external {
        _requireFromEntryPointOrOwner();
        _consumeOpMarker();
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
        uint32 epoch = _marker.epoch;
        if (userOp.signature.length == 65) {
            // Owner path: exactly SimpleAccount's check (EIP-191 over the userOpHash).
            (address signer, ECDSA.RecoverError err,) =
                ECDSA.tryRecover(userOpHash.toEthSignedMessageHash(), userOp.signature);
            validationData = (err == ECDSA.RecoverError.NoError && signer == owner) ? 0 : SIG_VALIDATION_FAILED;
            _marker = OpMarker(bytes16(0), 0, _opTag(userOp.callData), epoch);
        } else {
            validationData = _validateSession(userOp, userOpHash, epoch);
        }
        if (missingAccountFunds != 0) {
            (bool ok,) = payable(msg.sender).call{value: missingAccountFunds, gas: type(uint256).max}("");
            (ok); // the EntryPoint checks the deposit itself
        }
    }

    /// The session scope check. The off-chain check in the Rust SDK and facilitator follows the same
    /// order and uses the same reason strings.
    function _validateSession(UserOperation calldata userOp, bytes32 userOpHash, uint32 epoch)
        internal
        returns (uint256)
    {
        uint8 mode = uint8(userOp.signature[0]);
        require(mode == MODE_ENABLE || mode == MODE_USE, "session: unknown signature mode");
        SessionSignature memory sig = abi.decode(userOp.signature[1:], (SessionSignature));
        SessionGrant memory grant = sig.grant;

        bytes32 id = sessionId(grant);
        SessionState memory state = _sessions[bytes16(id)];

        // 1. revocation and enablement
        require(state.status != STATUS_REVOKED, "session: revoked");
        require(grant.epoch == epoch, "session: revoked (all sessions)");
        if (state.status == STATUS_NONE) {
            require(mode == MODE_ENABLE, "session: not enabled");
            require(_isOwnerSignature(id, sig.ownerSignature), "session: bad owner signature");
            _requireWellFormed(grant);
            _sessions[bytes16(id)].status = STATUS_ENABLED;
            emit SessionEnabled(id, grant.sessionKey);
        }

        // 2. the session key's signature, bound to the session and the claimed period
        bool sigFailed = !_isSessionSignature(userOpHash, id, sig);

        // 3. gas: never from the account's own deposit unless the grant allows it
        _checkGas(userOp, grant);

        // 4. method: exactly the payment shape, nothing else
        (address merchant, uint256 amount) = _paymentArgs(userOp.callData, grant.token, grant.settlement);

        // 5. counterparty
        if (grant.merchantRoot != bytes32(0)) {
            require(
                MerkleProof.verify(sig.merchantProof, grant.merchantRoot, keccak256(abi.encodePacked(merchant))),
                "session: merchant not allowed"
            );
        }

        // 6. amount: per payment, per period, lifetime (spent counters move only in execution)
        _checkAmount(grant, state, sig.periodIndex, amount);

        // 7. time: the grant window intersected with the claimed period, enforced by the EntryPoint
        (uint48 validAfter, uint48 validUntil) = _periodWindow(grant, sig.periodIndex);

        _marker = OpMarker(bytes16(id), sig.periodIndex, _opTag(userOp.callData), epoch);
        return (sigFailed ? SIG_VALIDATION_FAILED : 0) | (uint256(validUntil) << 160) | (uint256(validAfter) << 208);
    }

    function _isSessionSignature(bytes32 userOpHash, bytes32 id, SessionSignature memory sig)
        internal
        pure
        returns (bool)
    {
        bytes32 digest = keccak256(abi.encode(userOpHash, id, sig.periodIndex)).toEthSignedMessageHash();
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, sig.sessionSignature);
        return err == ECDSA.RecoverError.NoError && signer == sig.grant.sessionKey;
    }

    function _checkAmount(SessionGrant memory grant, SessionState memory state, uint32 periodIndex, uint256 amount)
        internal
        pure
    {
        require(amount <= grant.perPaymentMax, "session: over per-payment max");
        require(periodIndex >= state.periodIndex, "session: period already over");
        uint256 spentInPeriod = periodIndex == state.periodIndex ? state.periodSpent : 0;
        require(spentInPeriod + amount <= grant.periodCap, "session: over period cap");
        require(uint256(state.lifetimeSpent) + amount <= grant.lifetimeCap, "session: over lifetime cap");
    }

    function _checkGas(UserOperation calldata userOp, SessionGrant memory grant) internal pure {
        if (userOp.paymasterAndData.length != 0) {
            if (grant.paymaster != address(0)) {
                require(
                    userOp.paymasterAndData.length >= 20 && address(bytes20(userOp.paymasterAndData[:20])) == grant.paymaster,
                    "session: paymaster not allowed"
                );
            }
            return;
        }
        require(grant.maxSelfPaidGasCost != 0, "session: paymaster required");
        uint256 gas = userOp.callGasLimit + userOp.verificationGasLimit + userOp.preVerificationGas;
        require(gas <= type(uint64).max && userOp.maxFeePerGas <= type(uint128).max, "session: gas cost over cap");
        require(gas * userOp.maxFeePerGas <= grant.maxSelfPaidGasCost, "session: gas cost over cap");
    }

    /// Reads merchant and amount from where the canonical encoding puts them, then proves the whole
    /// callData is that canonical encoding by rebuilding it. Anything else gets a specific reason.
    function _paymentArgs(bytes calldata callData, address token, address settlement)
        internal
        view
        returns (address merchant, uint256 amount)
    {
        uint256 argsAt;
        if (callData.length == BATCH_PAYMENT_LENGTH && bytes4(callData[:4]) == EXECUTE_BATCH_SELECTOR) {
            argsAt = BATCH_SETTLE_ARGS;
        } else if (callData.length == EXECUTE_PAYMENT_LENGTH && bytes4(callData[:4]) == EXECUTE_SELECTOR) {
            argsAt = EXECUTE_SETTLE_ARGS;
        } else {
            revert(_explainCallData(callData, token, settlement));
        }
        merchant = address(uint160(uint256(bytes32(callData[argsAt:argsAt + 32]))));
        amount = uint256(bytes32(callData[argsAt + 64:argsAt + 96]));
        bytes32 requestHash = bytes32(callData[argsAt + 96:argsAt + 128]);
        bytes memory expected = _paymentCallData(
            argsAt == BATCH_SETTLE_ARGS, token, settlement, merchant, amount, requestHash
        );
        if (keccak256(expected) != keccak256(callData)) revert(_explainCallData(callData, token, settlement));
    }

    function _paymentCallData(
        bool batch,
        address token,
        address settlement,
        address merchant,
        uint256 amount,
        bytes32 requestHash
    ) internal pure returns (bytes memory) {
        bytes memory settleCall = abi.encodeWithSelector(SETTLE_SELECTOR, merchant, token, amount, requestHash);
        if (!batch) return abi.encodeWithSelector(EXECUTE_SELECTOR, settlement, uint256(0), settleCall);
        address[] memory dest = new address[](2);
        dest[0] = token;
        dest[1] = settlement;
        bytes[] memory func = new bytes[](2);
        func[0] = abi.encodeWithSelector(APPROVE_SELECTOR, settlement, amount);
        func[1] = settleCall;
        return abi.encodeWithSelector(EXECUTE_BATCH_SELECTOR, dest, func);
    }

    /// Failure path only: say precisely why callData is not the permitted payment.
    function _explainCallData(bytes calldata callData, address token, address settlement)
        internal
        view
        returns (string memory)
    {
        if (callData.length < 4) return "session: callData is not execute/executeBatch";
        bytes4 selector = bytes4(callData[:4]);
        if (selector == EXECUTE_SELECTOR) {
            try this.decodeExecute(callData[4:]) returns (address dest, uint256 value, bytes memory func) {
                if (dest == address(this)) return "session: self-call not allowed";
                if (value != 0) return "session: value transfer not allowed";
                if (dest != settlement) return "session: target not allowed";
                return _explainSettle(func, token);
            } catch {
                return "session: malformed callData";
            }
        }
        if (selector != EXECUTE_BATCH_SELECTOR) return "session: callData is not execute/executeBatch";
        try this.decodeExecuteBatch(callData[4:]) returns (address[] memory dest, bytes[] memory func) {
            for (uint256 i = 0; i < dest.length; i++) {
                if (dest[i] == address(this)) return "session: self-call not allowed";
            }
            if (dest.length != func.length) return "session: malformed callData";
            if (dest.length != 2) return "session: batch must be exactly approve + settle";
            if (dest[0] != token) return "session: token not allowed";
            if (dest[1] != settlement) return "session: target not allowed";
            if (func[0].length != 68 || bytes4(func[0]) != APPROVE_SELECTOR) {
                return "session: first call must be approve";
            }
            (address spender, uint256 approved) = this.decodeAddressUint(func[0]);
            if (spender != settlement) return "session: approve spender not allowed";
            string memory settleReason = _explainSettle(func[1], token);
            if (bytes(settleReason).length != 0 && keccak256(bytes(settleReason)) != keccak256("session: non-canonical callData")) {
                return settleReason;
            }
            (,, uint256 amount,) = this.decodeSettle(func[1]);
            if (approved != amount) return "session: approve amount differs from payment";
        } catch {
            return "session: malformed callData";
        }
        return "session: non-canonical callData";
    }

    function _explainSettle(bytes memory func, address token) internal view returns (string memory) {
        if (func.length != 132 || bytes4(func) != SETTLE_SELECTOR) return "session: second call must be settle";
        (, address settleToken,,) = this.decodeSettle(func);
        if (settleToken != token) return "session: token not allowed";
        return "session: non-canonical callData";
    }

    /// Decoding helpers for _explainCallData's try/catch; pure, so harmless to expose.
    function decodeExecute(bytes calldata args) external pure returns (address, uint256, bytes memory) {
        return abi.decode(args, (address, uint256, bytes));
    }

    function decodeExecuteBatch(bytes calldata args) external pure returns (address[] memory, bytes[] memory) {
        return abi.decode(args, (address[], bytes[]));
    }

    function decodeAddressUint(bytes calldata call) external pure returns (address, uint256) {
        return abi.decode(call[4:], (address, uint256));
    }

    function decodeSettle(bytes calldata call) external pure returns (address, address, uint256, bytes32) {
        return abi.decode(call[4:], (address, address, uint256, bytes32));
    }

    function _periodWindow(SessionGrant memory grant, uint32 periodIndex)
        internal
        pure
        returns (uint48 validAfter, uint48 validUntil)
    {
        if (grant.period == 0) {
            require(periodIndex == 0, "session: period outside grant window");
            return (grant.validAfter, grant.validUntil);
        }
        uint256 start = uint256(grant.validAfter) + uint256(periodIndex) * grant.period;
        uint256 end = start + grant.period - 1;
        require(start <= grant.validUntil, "session: period outside grant window");
        validAfter = uint48(start);
        validUntil = end < grant.validUntil ? uint48(end) : grant.validUntil;
        // validUntil == 0 means "no expiry" to the EntryPoint; a grant window never means that.
        require(validUntil != 0, "session: period outside grant window");
    }

    function _requireWellFormed(SessionGrant memory grant) internal view {
        require(grant.sessionKey != address(0), "session: grant has no session key");
        require(grant.sessionKey != owner, "session: grant key is the owner");
        require(grant.validUntil > grant.validAfter, "session: grant window empty");
        require(grant.token != address(0) && grant.settlement != address(0), "session: grant has zero address");
        require(grant.settlement != address(this) && grant.token != address(this), "session: grant targets account");
        require(grant.perPaymentMax != 0 && grant.periodCap != 0 && grant.lifetimeCap != 0, "session: grant cap is zero");
    }

    function _isOwnerSignature(bytes32 digest, bytes memory signature) internal view returns (bool) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        return err == ECDSA.RecoverError.NoError && signer == owner;
    }

    function _opTag(bytes calldata callData) internal pure returns (uint64) {
        return uint64(uint256(keccak256(callData))) | 1;
    }

    // ---------------------------------------------------------------- execution-phase accounting

    /// Only the op that validated last may execute through the EntryPoint, and a session op's payment is
    /// charged here, in execution, so that a reverted payment (which undoes this frame) costs no budget.
    /// Validation already proved the caps hold for exactly this state: nothing else can charge the session
    /// between that validation and this execution (see contracts/README.md, "Budget accounting").
    function _consumeOpMarker() internal {
        if (msg.sender != address(_entryPoint)) return;
        OpMarker memory marker = _marker;
        require(marker.opTag == _opTag(msg.data), "account: op was not the last validated");
        _marker.opTag = 0;
        if (marker.session == bytes16(0)) return;

        uint256 argsAt = bytes4(msg.data[:4]) == EXECUTE_BATCH_SELECTOR ? BATCH_SETTLE_ARGS : EXECUTE_SETTLE_ARGS;
        uint96 amount = uint96(uint256(bytes32(msg.data[argsAt + 64:argsAt + 96])));
        SessionState storage state = _sessions[marker.session];
        require(state.status == STATUS_ENABLED, "session: revoked");
        if (marker.periodIndex != state.periodIndex) {
            require(marker.periodIndex > state.periodIndex, "session: period already over");
            state.periodIndex = marker.periodIndex;
            state.periodSpent = amount;
        } else {
            state.periodSpent += amount;
        }
        state.lifetimeSpent += amount;
    }

    // ---------------------------------------------------------------- sessions: views

    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    /// The session id is the EIP-712 digest the owner signs: unique per grant, chain and account.
    function sessionId(SessionGrant memory grant) public view returns (bytes32) {
        return _typedDataHash(keccak256(abi.encode(SESSION_GRANT_TYPEHASH, grant)));
    }

    function sessionEpoch() external view returns (uint32) {
        return _marker.epoch;
    }

    /// status: 0 unknown, 1 enabled, 2 revoked.
    function sessionState(bytes32 id)
        external
        view
        returns (uint8 status, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent)
    {
        SessionState memory state = _sessions[bytes16(id)];
        return (state.status, state.periodIndex, state.periodSpent, state.lifetimeSpent);
    }

    // ---------------------------------------------------------------- sessions: revocation

    /// Revokes one session forever; works before the session was ever enabled, too.
    function revokeSession(bytes32 id) external {
        _onlyOwner();
        _revoke(id);
    }

    /// Invalidates every grant signed so far, enabled or not.
    function revokeAllSessions() external {
        _onlyOwner();
        _revokeAll();
    }

    /// Anyone may relay an owner-signed revocation (EIP-712 `RevokeSession(bytes32 sessionId)`), so an owner
    /// without native gas can still kill a session at once.
    function revokeWithSignature(bytes32 id, bytes calldata ownerSignature) external {
        bytes32 digest = _typedDataHash(keccak256(abi.encode(REVOKE_SESSION_TYPEHASH, id)));
        if (!_isOwnerSignature(digest, ownerSignature)) revert InvalidOwnerSignature();
        _revoke(id);
    }

    /// Relayable revoke-all (EIP-712 `RevokeAllSessions(uint32 epoch)`), single use because it names the
    /// epoch it ends.
    function revokeAllWithSignature(uint32 epoch, bytes calldata ownerSignature) external {
        bytes32 digest = _typedDataHash(keccak256(abi.encode(REVOKE_ALL_SESSIONS_TYPEHASH, epoch)));
        if (!_isOwnerSignature(digest, ownerSignature)) revert InvalidOwnerSignature();
        if (epoch != _marker.epoch) revert WrongEpoch(_marker.epoch, epoch);
        _revokeAll();
    }

    function _revoke(bytes32 id) internal {
        _sessions[bytes16(id)].status = STATUS_REVOKED;
        emit SessionRevoked(id);
    }

    function _revokeAll() internal {
        uint32 newEpoch = _marker.epoch + 1;
        _marker.epoch = newEpoch;
        emit AllSessionsRevoked(newEpoch);
    }

    // ---------------------------------------------------------------- internals

    function _typedDataHash(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
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
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
    }

    function _authorizeUpgrade(address) internal view override {
        if (msg.sender != owner && msg.sender != address(this)) revert NotOwner();
    }
}
