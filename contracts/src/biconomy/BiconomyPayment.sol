// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SessionPolicy} from "../SessionPolicy.sol";

/// @title BiconomyPayment
/// @notice The one callData a session op may carry on a Biconomy v2 account:
///   executeBatch_y6U([token, settlement, module], [0, 0, 0],
///                    [approve(settlement, A),
///                     settle(merchant, token, A, requestHash),
///                     chargePayment(token, settlement, merchant, A, requestHash)])
/// in canonical ABI encoding (1028 bytes). A Biconomy account lets an op validated by any enabled
/// module call any of its functions (`enableModule`, `setupAndEnableModule`, `updateImplementation`,
/// `execute_ncC` to any target with any value), so this exact shape is the whole method scope. The
/// third call charges the session in the execution phase; `executeBatch_y6U` reverts as a whole when
/// any call reverts, so the charge stands exactly when the payment does.
library BiconomyPayment {
    bytes4 internal constant EXECUTE_BATCH_SELECTOR = 0x00004680; // executeBatch_y6U(address[],uint256[],bytes[])
    bytes4 internal constant CHARGE_SELECTOR = 0x5d617d53; // chargePayment(address,address,address,uint256,bytes32)

    uint256 internal constant LENGTH = 1028;
    /// settle's (merchant, token, amount, requestHash) words.
    uint256 internal constant SETTLE_ARGS = 648;
    /// The charge call's bytes (selector and five words): its tag is the op's marker tag.
    uint256 internal constant CHARGE_AT = 836;
    uint256 internal constant CHARGE_LENGTH = 164;

    /// Proves `callData` is the canonical payment for this token, settlement and module by
    /// re-encoding it from settle's arguments and comparing hashes; returns settle's merchant, amount
    /// and requestHash and the charge call's tag. Otherwise reverts with the diagnosis.
    function parse(bytes calldata callData, address account, address token, address settlement, address module)
        internal
        pure
        returns (address merchant, uint256 amount, bytes32 requestHash, uint256 tag)
    {
        if (callData.length != LENGTH || bytes4(callData[:4]) != EXECUTE_BATCH_SELECTOR) {
            revert(explain(callData, account, token, settlement, module));
        }
        bool same;
        assembly ("memory-safe") {
            let c := callData.offset
            let m := mload(0x40)
            let merchantWord := and(calldataload(add(c, 648)), 0xffffffffffffffffffffffffffffffffffffffff)
            amount := calldataload(add(c, 712))
            requestHash := calldataload(add(c, 744))
            // zeroes (the value array and all padding), then every non-zero field in ascending order
            // (each mstore's tail is overwritten by the next field or is padding)
            calldatacopy(m, calldatasize(), 1056)
            mstore(m, shl(224, 0x00004680))
            mstore(add(m, 4), 0x60) // dest
            mstore(add(m, 36), 0xe0) // value
            mstore(add(m, 68), 0x160) // func
            mstore(add(m, 100), 3)
            mstore(add(m, 132), token)
            mstore(add(m, 164), settlement)
            mstore(add(m, 196), module)
            mstore(add(m, 228), 3) // value: three zeroes at 260, 292, 324
            mstore(add(m, 356), 3)
            mstore(add(m, 388), 0x60)
            mstore(add(m, 420), 0xe0)
            mstore(add(m, 452), 0x1a0)
            // func 0: approve(settlement, amount)
            mstore(add(m, 484), 0x44)
            mstore(add(m, 516), shl(224, 0x095ea7b3))
            mstore(add(m, 520), settlement)
            mstore(add(m, 552), amount)
            // func 1: settle(merchant, token, amount, requestHash)
            mstore(add(m, 612), 0x84)
            mstore(add(m, 644), shl(224, 0xd4729c72))
            mstore(add(m, 648), merchantWord)
            mstore(add(m, 680), token)
            mstore(add(m, 712), amount)
            mstore(add(m, 744), requestHash)
            // func 2: chargePayment(token, settlement, merchant, amount, requestHash)
            mstore(add(m, 804), 0xa4)
            mstore(add(m, 836), shl(224, 0x5d617d53))
            mstore(add(m, 840), token)
            mstore(add(m, 872), settlement)
            mstore(add(m, 904), merchantWord)
            mstore(add(m, 936), amount)
            mstore(add(m, 968), requestHash)
            let expected := keccak256(m, 1028)
            calldatacopy(m, c, 1028)
            same := eq(keccak256(m, 1028), expected)
            merchant := merchantWord
        }
        // a merchant word with high bits set was re-encoded clean, so it cannot match
        if (!same) revert(explain(callData, account, token, settlement, module));
        tag = SessionPolicy.tagOf(callData[CHARGE_AT:CHARGE_AT + CHARGE_LENGTH]);
    }

    /// Says precisely why callData is not the permitted payment (failure path only). Every read is
    /// bounds-checked, so a malformed encoding gets a reason instead of an empty revert.
    function explain(bytes calldata d, address account, address token, address settlement, address module)
        internal
        pure
        returns (string memory)
    {
        if (d.length < 4 || bytes4(d[:4]) != EXECUTE_BATCH_SELECTOR) {
            return "session: callData is not execute/executeBatch";
        }
        (bool okD, uint256 destOff) = SessionPolicy._word(d, 4);
        (bool okV, uint256 valueOff) = SessionPolicy._word(d, 36);
        (bool okF, uint256 funcOff) = SessionPolicy._word(d, 68);
        if (!(okD && okV && okF) || destOff > d.length || valueOff > d.length || funcOff > d.length) {
            return "session: malformed callData";
        }
        (bool okDl, uint256 n) = SessionPolicy._word(d, 4 + destOff);
        (bool okVl, uint256 nValue) = SessionPolicy._word(d, 4 + valueOff);
        (bool okFl, uint256 nFunc) = SessionPolicy._word(d, 4 + funcOff);
        if (!(okDl && okVl && okFl) || n > d.length / 32 || nValue > d.length / 32 || nFunc > d.length / 32) {
            return "session: malformed callData";
        }
        uint256[3] memory to;
        for (uint256 i = 0; i < n; i++) {
            (bool okT, uint256 target) = SessionPolicy._word(d, 4 + destOff + 32 + 32 * i);
            if (!okT || target >> 160 != 0) return "session: malformed callData";
            if (target == uint160(account)) return "session: self-call not allowed";
            if (i < 3) to[i] = target;
        }
        if (n != nValue || n != nFunc) return "session: malformed callData";
        for (uint256 i = 0; i < n; i++) {
            (bool okI, uint256 value) = SessionPolicy._word(d, 4 + valueOff + 32 + 32 * i);
            if (!okI) return "session: malformed callData";
            if (value != 0) return "session: value transfer not allowed";
        }
        if (n != 3) return "session: batch must be exactly approve + settle + charge";
        if (to[0] != uint160(token)) return "session: token not allowed";
        if (to[1] != uint160(settlement) || to[2] != uint160(module)) return "session: target not allowed";
        uint256 base = 4 + funcOff + 32;
        (bool ok0, uint256 a, uint256 aLen) = SessionPolicy._bytesAt(d, base, base);
        (bool ok1, uint256 s, uint256 sLen) = SessionPolicy._bytesAt(d, base, base + 32);
        (bool ok2, uint256 c, uint256 cLen) = SessionPolicy._bytesAt(d, base, base + 64);
        if (!(ok0 && ok1 && ok2)) return "session: malformed callData";
        if (aLen != 68 || bytes4(d[a:a + 4]) != SessionPolicy.APPROVE_SELECTOR) {
            return "session: first call must be approve";
        }
        if (uint256(bytes32(d[a + 4:a + 36])) != uint160(settlement)) return "session: approve spender not allowed";
        string memory settleReason = SessionPolicy._explainSettle(d, s, sLen, uint160(token));
        if (keccak256(bytes(settleReason)) != keccak256("session: non-canonical callData")) return settleReason;
        if (bytes32(d[a + 36:a + 68]) != bytes32(d[s + 68:s + 100])) {
            return "session: approve amount differs from payment";
        }
        if (cLen != CHARGE_LENGTH || bytes4(d[c:c + 4]) != CHARGE_SELECTOR) {
            return "session: third call must be the charge";
        }
        if (
            uint256(bytes32(d[c + 4:c + 36])) != uint160(token)
                || uint256(bytes32(d[c + 36:c + 68])) != uint160(settlement)
                || bytes32(d[c + 68:c + 100]) != bytes32(d[s + 4:s + 36])
                || keccak256(d[c + 100:c + 164]) != keccak256(d[s + 68:s + 132])
        ) {
            return "session: charge differs from payment";
        }
        return "session: non-canonical callData";
    }
}
