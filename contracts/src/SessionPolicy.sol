// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @notice What the owner signs once to let a session key pay x402 invoices, and nothing else.
/// @dev EIP-712 struct `SessionGrant` in domain ("X402SessionAccount", "1", chainId, account). Ops carry
/// it packed (`SessionPolicy.encodeGrant`, 251 bytes), never ABI-encoded.
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
    /// Most payments inside one period; 0 = no count limit.
    uint24 maxPaymentsPerPeriod;
    /// Most the session may pay any one merchant inside one period; 0 = no per-merchant sub-budget.
    uint96 merchantPeriodCap;
    /// Merkle root of allowed merchants (leaf = keccak256(abi.encodePacked(merchant))); 0 = any merchant.
    bytes32 merchantRoot;
    /// When a paymaster is used it must be this one; address(0) = any paymaster.
    address paymaster;
    /// Most one self-paid op may cost the account: its prefund, (callGas + verificationGas +
    /// preVerificationGas) * maxFeePerGas, in wei.
    uint96 maxGasCostPerOp;
    /// Most the session's self-paid ops may cost inside one period, in wei (charged at prefund).
    uint96 gasPeriodBudget;
    /// Most the session's self-paid ops may cost over its life, in wei; 0 = a paymaster is required.
    uint96 gasLifetimeBudget;
    /// Must equal the account's session epoch: revoking all sessions invalidates every earlier grant.
    uint32 epoch;
    /// Makes each grant (and so each session id) unique.
    bytes32 salt;
}

/// @title SessionPolicy
/// @notice The session-key policy core: the checks a session op must pass in validation, the per-session
/// state, and the execution-phase charge. Hosts (SessionKeyAccount today; Kernel/Safe/Biconomy adapters
/// later) call it with `account` = the smart account whose op is validated. All storage lives at slots
/// `keccak256(account ‖ x) + n` (n ≤ 2), which ERC-7562 counts as the sender's associated storage in a
/// module and which is the sender's own storage in an account, so the same code is valid for an
/// unstaked sender in both. Revert reasons are the interface the off-chain mirror copies one to one;
/// their order is listed in contracts/README.md.
library SessionPolicy {
    // ---------------------------------------------------------------- constants

    bytes32 internal constant SESSION_GRANT_TYPEHASH = keccak256(
        "SessionGrant(address sessionKey,uint48 validAfter,uint48 validUntil,address token,address settlement,"
        "uint96 perPaymentMax,uint96 periodCap,uint32 period,uint96 lifetimeCap,uint24 maxPaymentsPerPeriod,"
        "uint96 merchantPeriodCap,bytes32 merchantRoot,address paymaster,uint96 maxGasCostPerOp,"
        "uint96 gasPeriodBudget,uint96 gasLifetimeBudget,uint32 epoch,bytes32 salt)"
    );
    bytes32 internal constant REVOKE_SESSION_TYPEHASH = keccak256("RevokeSession(bytes32 sessionId)");
    bytes32 internal constant REVOKE_ALL_SESSIONS_TYPEHASH = keccak256("RevokeAllSessions(uint32 epoch)");
    bytes32 internal constant SET_SESSION_PAUSED_TYPEHASH =
        keccak256("SetSessionPaused(bytes32 sessionId,bool paused,uint32 nonce)");
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant NAME_HASH = keccak256("X402SessionAccount");
    bytes32 internal constant VERSION_HASH = keccak256("1");

    uint8 internal constant MODE_ENABLE = 1;
    uint8 internal constant MODE_USE = 2;
    uint256 internal constant SIG_VALIDATION_FAILED = 1;

    /// Packed grant length and the session-signature layout after the mode byte (see README).
    uint256 internal constant GRANT_LENGTH = 251;
    uint256 internal constant AT_GRANT = 1;
    uint256 internal constant AT_PERIOD = 252;
    uint256 internal constant AT_SESSION_SIG = 256;
    uint256 internal constant AT_USE_PROOF = 321;
    uint256 internal constant AT_OWNER_SIG = 321;
    uint256 internal constant AT_ENABLE_PROOF = 386;

    // status bits of the session slot
    uint256 internal constant ENABLED = 1;
    uint256 internal constant REVOKED = 2;
    uint256 internal constant PAUSED = 4;

    // marker flags (bits 224..231 of the marker slot)
    uint256 internal constant FLAG_SESSION = 1 << 224;
    uint256 internal constant FLAG_MERCHANT = 1 << 225;
    /// Always set, so the marker slot never returns to zero and no op pays a zero-to-non-zero write.
    uint256 internal constant FLAG_LIVE = 1 << 231;
    uint256 internal constant TAG_MASK = (1 << 128) - 1;

    bytes4 internal constant EXECUTE_SELECTOR = 0xb61d27f6; // execute(address,uint256,bytes)
    bytes4 internal constant EXECUTE_BATCH_SELECTOR = 0x18dfb3c7; // executeBatch(address[],bytes[])
    bytes4 internal constant APPROVE_SELECTOR = 0x095ea7b3; // approve(address,uint256)
    bytes4 internal constant SETTLE_SELECTOR = 0xd4729c72; // settle(address,address,uint256,bytes32)

    uint256 internal constant BATCH_PAYMENT_LENGTH = 580;
    uint256 internal constant EXECUTE_PAYMENT_LENGTH = 292;
    /// Offsets of settle's (merchant, token, amount, requestHash) inside the two canonical encodings.
    uint256 internal constant BATCH_SETTLE_ARGS = 424;
    uint256 internal constant EXECUTE_SETTLE_ARGS = 136;

    // storage namespaces
    bytes32 internal constant NS_ACCOUNT = keccak256("x402.session-policy.account.v2");
    bytes32 internal constant NS_SESSION = keccak256("x402.session-policy.session.v2");
    bytes32 internal constant NS_MERCHANT = keccak256("x402.session-policy.merchant.v2");

    // ---------------------------------------------------------------- storage layout
    //
    // account slot  A = keccak(account ‖ NS_ACCOUNT):       the op marker
    //   bits 0..127 tag (keccak(callData) | 1, 0 = consumed), 128..159 period index of the op,
    //   160..191 the account's session epoch, 192..223 the epoch the op validated under, 224.. flags
    // account slot  A + 1:                                  session id of the last validated session op
    // session slot  S = keccak(account ‖ id ‖ NS_SESSION):
    //   bits 0..7 status, 8..39 period index, 40..135 spent in period, 136..231 spent in life,
    //   232..255 payments in period
    // session slot  S + 1: bits 0..31 gas period index, 32..127 gas spent in period,
    //   128..223 gas spent in life, 224..255 pause nonce
    // merchant slot M = keccak(account ‖ id ‖ merchant ‖ NS_MERCHANT):
    //   bits 0..31 period index, 32..127 spent in period

    function accountSlot(address account) internal pure returns (uint256 slot) {
        bytes32 ns = NS_ACCOUNT;
        assembly ("memory-safe") {
            mstore(0x00, account)
            mstore(0x20, ns)
            slot := keccak256(0x00, 0x40)
        }
    }

    function sessionSlot(address account, bytes32 id) internal pure returns (uint256 slot) {
        bytes32 ns = NS_SESSION;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, account)
            mstore(add(m, 0x20), id)
            mstore(add(m, 0x40), ns)
            slot := keccak256(m, 0x60)
        }
    }

    function merchantSlot(address account, bytes32 id, address merchant) internal pure returns (uint256 slot) {
        bytes32 ns = NS_MERCHANT;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, account)
            mstore(add(m, 0x20), id)
            mstore(add(m, 0x40), merchant)
            mstore(add(m, 0x60), ns)
            slot := keccak256(m, 0x80)
        }
    }

    function _load(uint256 slot) private view returns (uint256 v) {
        assembly ("memory-safe") {
            v := sload(slot)
        }
    }

    function _store(uint256 slot, uint256 v) private {
        assembly ("memory-safe") {
            sstore(slot, v)
        }
    }

    // ---------------------------------------------------------------- host lifecycle

    /// Makes both marker slots non-zero, so no op ever pays a zero-to-non-zero write for them.
    function initAccount(address account) internal {
        uint256 a = accountSlot(account);
        if (_load(a) == 0) _store(a, FLAG_LIVE);
        if (_load(a + 1) == 0) _store(a + 1, 1);
    }

    // ---------------------------------------------------------------- owner ops

    /// An owner-signed op: leaves a marker without a session, so its execution charges nothing and any
    /// earlier-validated op of the same account in the bundle cannot execute.
    function markOwnerOp(address account, bytes calldata callData) internal {
        uint256 a = accountSlot(account);
        uint256 marker = _load(a);
        uint256 epoch = (marker >> 160) & 0xffffffff;
        _store(a, FLAG_LIVE | (epoch << 192) | (epoch << 160) | tagOf(callData));
    }

    // ---------------------------------------------------------------- session ops: validation

    /// Validates a session op for `account`. `sig` is the session signature (mode byte first). Returns
    /// the EntryPoint validation data; reverts with `session: …` on any scope violation; writes the
    /// enable flag, the gas charge and the op marker.
    ///
    /// The host supplies what depends on its account contract: `ownerOf(account)`, the address whose
    /// signature enables a grant (asked only when a grant is being enabled), and
    /// `parsePayment(callData, account, token, settlement)`, which proves callData is exactly the host's
    /// payment shape for the grant's token and settlement (reverting with a `session: …` diagnosis
    /// otherwise) and returns settle's merchant, amount and requestHash plus the tag its execution
    /// will present to `consumeMarker`.
    function validateSessionOp(
        address account,
        function(address) view returns (address) ownerOf,
        UserOperation calldata op,
        bytes calldata sig,
        bytes32 userOpHash,
        function(bytes calldata, address, address, address) view returns (address, uint256, bytes32, uint256)
            parsePayment
    ) internal returns (uint256) {
        // 0. signature format
        require(sig.length != 0, "session: malformed signature");
        uint256 mode = uint8(sig[0]);
        require(mode == MODE_ENABLE || mode == MODE_USE, "session: unknown signature mode");
        uint256 proofAt = mode == MODE_ENABLE ? AT_ENABLE_PROOF : AT_USE_PROOF;
        require(sig.length >= proofAt && (sig.length - proofAt) % 32 == 0, "session: malformed signature");

        bytes calldata g = sig[AT_GRANT:AT_GRANT + GRANT_LENGTH];
        bytes32 id = sessionIdPacked(account, g);
        uint256 sSlot = sessionSlot(account, id);
        uint256 state = _load(sSlot);
        uint256 aSlot = accountSlot(account);
        uint256 marker = _load(aSlot);
        uint256 epoch = (marker >> 160) & 0xffffffff;

        // 1. revocation, pause, enablement
        require(state & REVOKED == 0, "session: revoked");
        require(state & PAUSED == 0, "session: paused");
        require(_u(g, 215, 4) == epoch, "session: revoked (all sessions)");
        if (state & ENABLED == 0) {
            require(mode == MODE_ENABLE, "session: not enabled");
            address owner = ownerOf(account);
            require(
                _recovers(id, sig[AT_OWNER_SIG:AT_OWNER_SIG + 65], owner), "session: bad owner signature"
            );
            _requireWellFormed(account, owner, g);
            state |= ENABLED;
            _store(sSlot, state);
        }

        uint32 periodIndex = uint32(bytes4(sig[AT_PERIOD:AT_PERIOD + 4]));

        // 2. the session key's signature, bound to the session and the claimed period
        bool sigFailed = !_recovers(
            _toEthSigned(keccak256(abi.encode(userOpHash, id, periodIndex))),
            sig[AT_SESSION_SIG:AT_SESSION_SIG + 65],
            address(uint160(_u(g, 0, 20)))
        );

        // 3. gas: a paymaster (pinned if the grant says so), or the account's own budget, charged now
        _checkAndChargeGas(op, g, sSlot, periodIndex);

        // 4. method: exactly the host's payment shape
        (address merchant, uint256 amount, bytes32 requestHash, uint256 tag) =
            parsePayment(op.callData, account, address(uint160(_u(g, 32, 20))), address(uint160(_u(g, 52, 20))));
        // 5. arguments that are certain to revert in settle
        require(amount != 0, "session: zero amount");
        require(merchant != address(0), "session: zero merchant");
        require(requestHash != 0, "session: zero requestHash");
        require(merchant != account, "session: merchant is the account");

        // 6. counterparty
        bytes32 root = bytes32(_u(g, 127, 32));
        if (root != bytes32(0)) {
            require(_merkleVerify(sig[proofAt:], root, merchant), "session: merchant not allowed");
        }

        // 7. amount and count: per payment, per period, lifetime, per merchant (charged in execution)
        bool perMerchant = _checkAmount(account, id, g, state, periodIndex, merchant, amount);

        // 8. time: the grant window intersected with the claimed period, enforced by the EntryPoint
        (uint256 validAfter, uint256 validUntil) = _periodWindow(g, periodIndex);

        _store(
            aSlot,
            FLAG_LIVE | FLAG_SESSION | (perMerchant ? FLAG_MERCHANT : 0) | (epoch << 192) | (epoch << 160)
                | (uint256(periodIndex) << 128) | tag
        );
        _store(aSlot + 1, uint256(id));
        return (sigFailed ? SIG_VALIDATION_FAILED : 0) | (validUntil << 160) | (validAfter << 208);
    }

    function _checkAndChargeGas(UserOperation calldata op, bytes calldata g, uint256 sSlot, uint32 periodIndex)
        private
    {
        if (op.paymasterAndData.length != 0) {
            address pinned = address(uint160(_u(g, 159, 20)));
            if (pinned != address(0)) {
                require(
                    op.paymasterAndData.length >= 20 && address(bytes20(op.paymasterAndData[:20])) == pinned,
                    "session: paymaster not allowed"
                );
            }
            return; // the paymaster pays: nothing leaves the account
        }
        uint256 lifetimeBudget = _u(g, 203, 12);
        require(lifetimeBudget != 0, "session: paymaster required");
        // The most the EntryPoint can take from the account for this op (v0.6 prefund without paymaster).
        require(
            op.callGasLimit <= type(uint64).max && op.verificationGasLimit <= type(uint64).max
                && op.preVerificationGas <= type(uint64).max && op.maxFeePerGas <= type(uint128).max,
            "session: gas cost over per-op cap"
        );
        uint256 cost = (op.callGasLimit + op.verificationGasLimit + op.preVerificationGas) * op.maxFeePerGas;
        require(cost <= _u(g, 179, 12), "session: gas cost over per-op cap");
        uint256 gasSlot = _load(sSlot + 1);
        uint256 gasPeriod = gasSlot & 0xffffffff;
        uint256 inPeriod = (gasSlot >> 32) & type(uint96).max;
        uint256 inLife = (gasSlot >> 128) & type(uint96).max;
        if (periodIndex != gasPeriod) {
            require(periodIndex > gasPeriod, "session: period already over");
            inPeriod = 0;
        }
        inPeriod += cost;
        inLife += cost;
        require(inPeriod <= _u(g, 191, 12), "session: over gas period budget");
        require(inLife <= lifetimeBudget, "session: over gas lifetime budget");
        _store(sSlot + 1, (gasSlot & (0xffffffff << 224)) | (inLife << 128) | (inPeriod << 32) | periodIndex);
    }

    /// The SimpleAccount-shaped host's `parsePayment` (SessionKeyAccount): proves callData is byte for
    /// byte the canonical encoding of one of the two payment shapes with the grant's token and
    /// settlement, reading the variable words where that encoding puts them. The tag is the whole
    /// callData's, which the host's `execute`/`executeBatch` hands to `consumeOp` as `msg.data`.
    function simpleAccountPayment(bytes calldata callData, address account, address tokenAddress, address settlementAddress)
        internal
        pure
        returns (address merchant, uint256 amount, bytes32 requestHash, uint256 tag)
    {
        uint256 token = uint160(tokenAddress);
        uint256 settlement = uint160(settlementAddress);
        uint256 diff;
        uint256 at;
        if (callData.length == BATCH_PAYMENT_LENGTH && bytes4(callData[:4]) == EXECUTE_BATCH_SELECTOR) {
            at = BATCH_SETTLE_ARGS;
            assembly ("memory-safe") {
                let c := callData.offset
                amount := calldataload(add(c, 488))
                diff := or(xor(calldataload(add(c, 4)), 0x40), xor(calldataload(add(c, 36)), 0xa0))
                diff := or(diff, or(xor(calldataload(add(c, 68)), 2), xor(calldataload(add(c, 100)), token)))
                diff := or(diff, or(xor(calldataload(add(c, 132)), settlement), xor(calldataload(add(c, 164)), 2)))
                diff := or(diff, or(xor(calldataload(add(c, 196)), 0x40), xor(calldataload(add(c, 228)), 0xc0)))
                diff := or(diff, or(xor(calldataload(add(c, 260)), 0x44), xor(shr(224, calldataload(add(c, 292))), 0x095ea7b3)))
                diff := or(diff, or(xor(calldataload(add(c, 296)), settlement), xor(calldataload(add(c, 328)), amount)))
                diff := or(diff, or(calldataload(add(c, 360)), xor(calldataload(add(c, 388)), 0x84)))
                diff := or(diff, or(xor(shr(224, calldataload(add(c, 420))), 0xd4729c72), xor(calldataload(add(c, 456)), token)))
                diff := or(diff, shr(32, calldataload(add(c, 552))))
            }
        } else if (callData.length == EXECUTE_PAYMENT_LENGTH && bytes4(callData[:4]) == EXECUTE_SELECTOR) {
            at = EXECUTE_SETTLE_ARGS;
            assembly ("memory-safe") {
                let c := callData.offset
                amount := calldataload(add(c, 200))
                diff := or(xor(calldataload(add(c, 4)), settlement), calldataload(add(c, 36)))
                diff := or(diff, or(xor(calldataload(add(c, 68)), 0x60), xor(calldataload(add(c, 100)), 0x84)))
                diff := or(diff, or(xor(shr(224, calldataload(add(c, 132))), 0xd4729c72), xor(calldataload(add(c, 168)), token)))
                diff := or(diff, shr(32, calldataload(add(c, 264))))
            }
        } else {
            revert(_explainCallData(callData, account, token, settlement));
        }
        uint256 m;
        assembly ("memory-safe") {
            m := calldataload(add(callData.offset, at))
            requestHash := calldataload(add(callData.offset, add(at, 96)))
        }
        if (diff != 0 || m >> 160 != 0) revert(_explainCallData(callData, account, token, settlement));
        merchant = address(uint160(m));
        tag = tagOf(callData);
    }

    function _checkAmount(
        address account,
        bytes32 id,
        bytes calldata g,
        uint256 state,
        uint32 periodIndex,
        address merchant,
        uint256 amount
    ) private view returns (bool perMerchant) {
        require(amount <= _u(g, 72, 12), "session: over per-payment max");
        uint256 storedPeriod = (state >> 8) & 0xffffffff;
        require(periodIndex >= storedPeriod, "session: period already over");
        bool samePeriod = periodIndex == storedPeriod;
        uint256 spentInPeriod = samePeriod ? (state >> 40) & type(uint96).max : 0;
        require(spentInPeriod + amount <= _u(g, 84, 12), "session: over period cap");
        require(((state >> 136) & type(uint96).max) + amount <= _u(g, 100, 12), "session: over lifetime cap");
        uint256 maxPayments = _u(g, 112, 3);
        if (maxPayments != 0) {
            uint256 count = samePeriod ? state >> 232 : 0;
            require(count < maxPayments, "session: over payment count");
        }
        uint256 merchantCap = _u(g, 115, 12);
        if (merchantCap != 0) {
            uint256 mState = _load(merchantSlot(account, id, merchant));
            uint256 spent = (mState & 0xffffffff) == periodIndex ? (mState >> 32) & type(uint96).max : 0;
            require((mState & 0xffffffff) <= periodIndex, "session: period already over");
            require(spent + amount <= merchantCap, "session: over merchant period cap");
            return true;
        }
        return false;
    }

    function _periodWindow(bytes calldata g, uint32 periodIndex)
        private
        pure
        returns (uint256 validAfter, uint256 validUntil)
    {
        uint256 grantAfter = _u(g, 20, 6);
        uint256 grantUntil = _u(g, 26, 6);
        uint256 period = _u(g, 96, 4);
        if (period == 0) {
            require(periodIndex == 0, "session: period outside grant window");
            return (grantAfter, grantUntil);
        }
        uint256 start = grantAfter + uint256(periodIndex) * period;
        uint256 end = start + period - 1;
        require(start <= grantUntil, "session: period outside grant window");
        validAfter = start;
        validUntil = end < grantUntil ? end : grantUntil;
        // validUntil == 0 means "no expiry" to the EntryPoint; a grant window never means that.
        require(validUntil != 0, "session: period outside grant window");
    }

    function _requireWellFormed(address account, address owner, bytes calldata g) private pure {
        address sessionKey = address(uint160(_u(g, 0, 20)));
        address token = address(uint160(_u(g, 32, 20)));
        address settlement = address(uint160(_u(g, 52, 20)));
        require(sessionKey != address(0), "session: grant has no session key");
        require(sessionKey != owner, "session: grant key is the owner");
        require(_u(g, 26, 6) > _u(g, 20, 6), "session: grant window empty");
        require(token != address(0) && settlement != address(0), "session: grant has zero address");
        require(settlement != account && token != account, "session: grant targets account");
        require(_u(g, 72, 12) != 0 && _u(g, 84, 12) != 0 && _u(g, 100, 12) != 0, "session: grant cap is zero");
    }

    /// Sorted-pair Merkle proof (OpenZeppelin's MerkleProof rule) over `proof`, a run of 32-byte words.
    function _merkleVerify(bytes calldata proof, bytes32 root, address merchant) private pure returns (bool) {
        bytes32 node = keccak256(abi.encodePacked(merchant));
        for (uint256 i = 0; i < proof.length; i += 32) {
            bytes32 sibling = bytes32(proof[i:i + 32]);
            node = node < sibling ? _hashPair(node, sibling) : _hashPair(sibling, node);
        }
        return node == root;
    }

    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            h := keccak256(0x00, 0x40)
        }
    }

    // ---------------------------------------------------------------- session ops: execution

    /// The SimpleAccount-shaped host's execution hook (SessionKeyAccount), called at the start of every
    /// execution the EntryPoint makes with `data = msg.data`. Only the op that validated last may
    /// execute; a session op is charged here, so a payment that reverts (undoing this frame) costs no
    /// token budget.
    function consumeOp(address account, bytes calldata data) internal {
        uint256 marker = consumeMarker(account, tagOf(data));
        if (marker & FLAG_SESSION == 0) return;
        uint256 at = bytes4(data[:4]) == EXECUTE_BATCH_SELECTOR ? BATCH_SETTLE_ARGS : EXECUTE_SETTLE_ARGS;
        chargeSession(
            account,
            marker,
            address(uint160(uint256(bytes32(data[at:at + 32])))),
            uint256(bytes32(data[at + 64:at + 96]))
        );
    }

    /// Only the op that validated last may execute: `tag` must be the one its `parsePayment` (or
    /// `markOwnerOp`) returned. Clears the tag, so each validation allows one execution. Returns the
    /// marker as validation left it; `FLAG_SESSION` says whether `chargeSession` must follow.
    function consumeMarker(address account, uint256 tag) internal returns (uint256 marker) {
        uint256 aSlot = accountSlot(account);
        marker = _load(aSlot);
        require(marker & TAG_MASK == tag, "account: op was not the last validated");
        _store(aSlot, marker & ~TAG_MASK);
    }

    /// Charges the session op whose marker `consumeMarker` returned with the payment its validation
    /// checked (the host passes settle's merchant and amount from the executing calldata, whose tag
    /// matched). Re-checks revocation, pause and epoch, which an op earlier in the same bundle may have
    /// changed after this op validated.
    function chargeSession(address account, uint256 marker, address merchant, uint256 amount) internal {
        uint256 aSlot = accountSlot(account);
        require((marker >> 160) & 0xffffffff == (marker >> 192) & 0xffffffff, "session: revoked (all sessions)");
        bytes32 id = bytes32(_load(aSlot + 1));
        uint256 sSlot = sessionSlot(account, id);
        uint256 state = _load(sSlot);
        require(state & REVOKED == 0, "session: revoked");
        require(state & PAUSED == 0, "session: paused");

        uint256 periodIndex = (marker >> 128) & 0xffffffff;
        uint256 storedPeriod = (state >> 8) & 0xffffffff;
        uint256 inPeriod = (state >> 40) & type(uint96).max;
        uint256 count = state >> 232;
        if (periodIndex != storedPeriod) {
            require(periodIndex > storedPeriod, "session: period already over");
            inPeriod = 0;
            count = 0;
        }
        inPeriod += amount;
        uint256 inLife = ((state >> 136) & type(uint96).max) + amount;
        if (count != type(uint24).max) count += 1;
        // validation proved both sums within caps below 2^96 for exactly this state
        _store(sSlot, (count << 232) | (inLife << 136) | (inPeriod << 40) | (periodIndex << 8) | (state & 0xff));

        if (marker & FLAG_MERCHANT != 0) {
            uint256 mSlot = merchantSlot(account, id, merchant);
            uint256 mState = _load(mSlot);
            uint256 spent = (mState & 0xffffffff) == periodIndex ? (mState >> 32) & type(uint96).max : 0;
            _store(mSlot, ((spent + amount) << 32) | periodIndex);
        }
    }

    // ---------------------------------------------------------------- owner controls

    function revoke(address account, bytes32 id) internal {
        uint256 s = sessionSlot(account, id);
        _store(s, _load(s) | REVOKED);
    }

    /// Bumps the account's epoch; returns the new one.
    function revokeAll(address account) internal returns (uint32 newEpoch) {
        uint256 a = accountSlot(account);
        uint256 marker = _load(a);
        newEpoch = uint32((marker >> 160) & 0xffffffff) + 1;
        _store(a, (marker & ~(uint256(0xffffffff) << 160)) | (uint256(newEpoch) << 160) | FLAG_LIVE);
    }

    /// Sets or clears the pause bit and moves the pause nonce on, so an earlier relayable pause/resume
    /// signature can never be replayed.
    function setPaused(address account, bytes32 id, bool paused) internal {
        uint256 s = sessionSlot(account, id);
        uint256 state = _load(s);
        _store(s, paused ? state | PAUSED : state & ~PAUSED);
        uint256 gas = _load(s + 1);
        uint256 nonce = uint32(gas >> 224) + 1;
        _store(s + 1, (gas & ((1 << 224) - 1)) | (uint256(uint32(nonce)) << 224));
    }

    // ---------------------------------------------------------------- views

    function epochOf(address account) internal view returns (uint32) {
        return uint32(_load(accountSlot(account)) >> 160);
    }

    /// status: 0 unknown, 1 enabled, 2 revoked.
    function sessionState(address account, bytes32 id)
        internal
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
        uint256 state = _load(sessionSlot(account, id));
        status = state & REVOKED != 0 ? 2 : uint8(state & ENABLED);
        paused = state & PAUSED != 0;
        periodIndex = uint32(state >> 8);
        periodSpent = uint96(state >> 40);
        lifetimeSpent = uint96(state >> 136);
        paymentsInPeriod = uint24(state >> 232);
    }

    function gasState(address account, bytes32 id)
        internal
        view
        returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce)
    {
        uint256 v = _load(sessionSlot(account, id) + 1);
        return (uint32(v), uint96(v >> 32), uint96(v >> 128), uint32(v >> 224));
    }

    function merchantState(address account, bytes32 id, address merchant)
        internal
        view
        returns (uint32 periodIndex, uint96 spent)
    {
        uint256 v = _load(merchantSlot(account, id, merchant));
        return (uint32(v), uint96(v >> 32));
    }

    // ---------------------------------------------------------------- EIP-712

    function domainSeparator(address account) internal view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, account));
    }

    function typedDataHash(address account, bytes32 structHash) internal view returns (bytes32 h) {
        bytes32 sep = domainSeparator(account);
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, hex"1901")
            mstore(add(m, 0x02), sep)
            mstore(add(m, 0x22), structHash)
            h := keccak256(m, 0x42)
        }
    }

    /// The session id: the EIP-712 digest of the grant the owner signs, computed from the packed grant.
    function sessionIdPacked(address account, bytes calldata g) internal view returns (bytes32) {
        bytes32 structHash;
        bytes32 typeHash = SESSION_GRANT_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            let c := g.offset
            mstore(m, typeHash)
            mstore(add(m, 0x20), shr(96, calldataload(c))) // sessionKey
            mstore(add(m, 0x40), shr(208, calldataload(add(c, 20)))) // validAfter
            mstore(add(m, 0x60), shr(208, calldataload(add(c, 26)))) // validUntil
            mstore(add(m, 0x80), shr(96, calldataload(add(c, 32)))) // token
            mstore(add(m, 0xa0), shr(96, calldataload(add(c, 52)))) // settlement
            mstore(add(m, 0xc0), shr(160, calldataload(add(c, 72)))) // perPaymentMax
            mstore(add(m, 0xe0), shr(160, calldataload(add(c, 84)))) // periodCap
            mstore(add(m, 0x100), shr(224, calldataload(add(c, 96)))) // period
            mstore(add(m, 0x120), shr(160, calldataload(add(c, 100)))) // lifetimeCap
            mstore(add(m, 0x140), shr(232, calldataload(add(c, 112)))) // maxPaymentsPerPeriod
            mstore(add(m, 0x160), shr(160, calldataload(add(c, 115)))) // merchantPeriodCap
            mstore(add(m, 0x180), calldataload(add(c, 127))) // merchantRoot
            mstore(add(m, 0x1a0), shr(96, calldataload(add(c, 159)))) // paymaster
            mstore(add(m, 0x1c0), shr(160, calldataload(add(c, 179)))) // maxGasCostPerOp
            mstore(add(m, 0x1e0), shr(160, calldataload(add(c, 191)))) // gasPeriodBudget
            mstore(add(m, 0x200), shr(160, calldataload(add(c, 203)))) // gasLifetimeBudget
            mstore(add(m, 0x220), shr(224, calldataload(add(c, 215)))) // epoch
            mstore(add(m, 0x240), calldataload(add(c, 219))) // salt
            structHash := keccak256(m, 0x260)
        }
        return typedDataHash(account, structHash);
    }

    function sessionId(address account, SessionGrant memory grant) internal view returns (bytes32) {
        return typedDataHash(account, keccak256(abi.encode(SESSION_GRANT_TYPEHASH, grant)));
    }

    /// The 251-byte packed grant an op carries.
    function encodeGrant(SessionGrant memory g) internal pure returns (bytes memory) {
        return bytes.concat(
            abi.encodePacked(g.sessionKey, g.validAfter, g.validUntil, g.token, g.settlement, g.perPaymentMax),
            abi.encodePacked(g.periodCap, g.period, g.lifetimeCap, g.maxPaymentsPerPeriod, g.merchantPeriodCap),
            abi.encodePacked(g.merchantRoot, g.paymaster, g.maxGasCostPerOp, g.gasPeriodBudget),
            abi.encodePacked(g.gasLifetimeBudget, g.epoch, g.salt)
        );
    }

    /// Whether `signature` (65 bytes r ‖ s ‖ v) is `signer`'s ECDSA signature over `digest` (low s only).
    function isSignature(bytes32 digest, bytes calldata signature, address signer) internal pure returns (bool) {
        return _recovers(digest, signature, signer);
    }

    // ---------------------------------------------------------------- helpers

    /// Big-endian unsigned field of `size` bytes at byte `at` of the packed grant.
    function _u(bytes calldata g, uint256 at, uint256 size) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(sub(256, shl(3, size)), calldataload(add(g.offset, at)))
        }
    }

    function _recovers(bytes32 digest, bytes calldata signature, address signer) private pure returns (bool) {
        if (signature.length != 65 || signer == address(0)) return false;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
        return err == ECDSA.RecoverError.NoError && recovered == signer;
    }

    function _toEthSigned(bytes32 hash) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, "\x19Ethereum Signed Message:\n32")
            mstore(0x1c, hash)
            h := keccak256(0x00, 0x3c)
        }
    }

    /// The marker tag of an execution's calldata: keccak's low 128 bits, never 0 (0 = consumed).
    function tagOf(bytes calldata data) internal pure returns (uint256 tag) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, data.offset, data.length)
            tag := or(and(keccak256(m, data.length), TAG_MASK), 1)
        }
    }

    // ---------------------------------------------------------------- diagnostics (failure path only)

    /// Says precisely why callData is not the permitted payment. Every read is bounds-checked, so a
    /// malformed encoding gets a reason instead of an empty revert.
    function _explainCallData(bytes calldata d, address account, uint256 token, uint256 settlement)
        private
        pure
        returns (string memory)
    {
        if (d.length < 4) return "session: callData is not execute/executeBatch";
        bytes4 selector = bytes4(d[:4]);
        if (selector == EXECUTE_SELECTOR) {
            (bool ok, uint256 target) = _word(d, 4);
            (bool ok2, uint256 value) = _word(d, 36);
            (bool ok3, uint256 fStart, uint256 fLen) = _bytesAt(d, 4, 68);
            if (!(ok && ok2 && ok3) || target >> 160 != 0) return "session: malformed callData";
            if (target == uint160(account)) return "session: self-call not allowed";
            if (value != 0) return "session: value transfer not allowed";
            if (target != settlement) return "session: target not allowed";
            return _explainSettle(d, fStart, fLen, token);
        }
        if (selector != EXECUTE_BATCH_SELECTOR) return "session: callData is not execute/executeBatch";
        (bool okD, uint256 destOff) = _word(d, 4);
        (bool okF, uint256 funcOff) = _word(d, 36);
        if (!okD || !okF || destOff > d.length || funcOff > d.length) return "session: malformed callData";
        (bool okDl, uint256 destLen) = _word(d, 4 + destOff);
        (bool okFl, uint256 funcLen) = _word(d, 4 + funcOff);
        if (!okDl || !okFl || destLen > d.length / 32 || funcLen > d.length / 32) {
            return "session: malformed callData";
        }
        uint256[] memory dest = new uint256[](destLen);
        for (uint256 i = 0; i < destLen; i++) {
            (bool okI, uint256 di) = _word(d, 4 + destOff + 32 + 32 * i);
            if (!okI || di >> 160 != 0) return "session: malformed callData";
            if (di == uint160(account)) return "session: self-call not allowed";
            dest[i] = di;
        }
        if (destLen != funcLen) return "session: malformed callData";
        if (destLen != 2) return "session: batch must be exactly approve + settle";
        if (dest[0] != token) return "session: token not allowed";
        if (dest[1] != settlement) return "session: target not allowed";
        uint256 base = 4 + funcOff + 32;
        (bool ok0, uint256 aStart, uint256 aLen) = _bytesAt(d, base, base);
        (bool ok1, uint256 sStart, uint256 sLen) = _bytesAt(d, base, base + 32);
        if (!ok0 || !ok1) return "session: malformed callData";
        if (aLen != 68 || bytes4(d[aStart:aStart + 4]) != APPROVE_SELECTOR) {
            return "session: first call must be approve";
        }
        if (uint256(bytes32(d[aStart + 4:aStart + 36])) != settlement) {
            return "session: approve spender not allowed";
        }
        string memory settleReason = _explainSettle(d, sStart, sLen, token);
        if (keccak256(bytes(settleReason)) != keccak256("session: non-canonical callData")) return settleReason;
        if (bytes32(d[aStart + 36:aStart + 68]) != bytes32(d[sStart + 68:sStart + 100])) {
            return "session: approve amount differs from payment";
        }
        return "session: non-canonical callData";
    }

    function _explainSettle(bytes calldata d, uint256 start, uint256 len, uint256 token)
        internal
        pure
        returns (string memory)
    {
        if (len != 132 || bytes4(d[start:start + 4]) != SETTLE_SELECTOR) return "session: second call must be settle";
        if (uint256(bytes32(d[start + 36:start + 68])) != token) return "session: token not allowed";
        return "session: non-canonical callData";
    }

    function _word(bytes calldata d, uint256 at) internal pure returns (bool ok, uint256 w) {
        if (at > d.length || d.length - at < 32) return (false, 0);
        return (true, uint256(bytes32(d[at:at + 32])));
    }

    /// A `bytes` value whose offset (relative to `base`) sits at `headAt`: returns where its data starts
    /// and its length, if both lie inside `d`.
    function _bytesAt(bytes calldata d, uint256 base, uint256 headAt)
        internal
        pure
        returns (bool ok, uint256 start, uint256 len)
    {
        (bool okO, uint256 off) = _word(d, headAt);
        if (!okO || off > d.length) return (false, 0, 0);
        (bool okL, uint256 l) = _word(d, base + off);
        if (!okL) return (false, 0, 0);
        start = base + off + 32;
        if (start > d.length || l > d.length - start) return (false, 0, 0);
        return (true, start, l);
    }
}
