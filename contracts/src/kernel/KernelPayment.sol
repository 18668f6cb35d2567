// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ChargedBatch} from "../ChargedBatch.sol";
import {SessionPolicy} from "../SessionPolicy.sol";

/// @title KernelPayment
/// @notice The one callData a session op may carry on a Kernel v2.4 account: `executeBatch(Call[])`
/// (Kernel's `Call {address to; uint256 value; bytes data;}`) with exactly
///   [{token, 0, approve(settlement, A)},
///    {settlement, 0, settle(merchant, token, A, requestHash)},
///    {validator, 0, chargePayment(token, settlement, merchant, A, requestHash)}]
/// in canonical ABI encoding (996 bytes). The third call charges the session in the execution phase;
/// Kernel's `executeBatch` reverts as a whole when any call reverts, so the charge stands exactly
/// when the payment does.
library KernelPayment {
    bytes4 internal constant EXECUTE_BATCH_SELECTOR = 0x34fcd5be; // executeBatch((address,uint256,bytes)[])

    uint256 internal constant LENGTH = 996;
    /// settle's (merchant, token, amount, requestHash) words.
    uint256 internal constant SETTLE_ARGS = 520;
    /// Where the charge call's bytes start (ChargedBatch.CHARGE_LENGTH of them).
    uint256 internal constant CHARGE_AT = 804;

    /// Proves `callData` is the canonical payment for this token, settlement and validator by
    /// re-encoding it from settle's arguments and comparing hashes; returns settle's merchant, amount
    /// and requestHash and the charge call's tag. Otherwise reverts with the diagnosis.
    function parse(bytes calldata callData, address account, address token, address settlement, address validator)
        internal
        pure
        returns (address merchant, uint256 amount, bytes32 requestHash, uint256 tag)
    {
        if (callData.length != LENGTH || bytes4(callData[:4]) != EXECUTE_BATCH_SELECTOR) {
            revert(explain(callData, account, token, settlement, validator));
        }
        bool same;
        assembly ("memory-safe") {
            let c := callData.offset
            let m := mload(0x40)
            let merchantWord := and(calldataload(add(c, 520)), 0xffffffffffffffffffffffffffffffffffffffff)
            amount := calldataload(add(c, 584))
            requestHash := calldataload(add(c, 616))
            // zeroes, then every non-zero field in ascending order (each mstore's tail is overwritten
            // by the next field or is padding)
            calldatacopy(m, calldatasize(), 1024)
            mstore(m, shl(224, 0x34fcd5be))
            mstore(add(m, 4), 0x20)
            mstore(add(m, 36), 3)
            mstore(add(m, 68), 0x60)
            mstore(add(m, 100), 0x140)
            mstore(add(m, 132), 0x260)
            // Call 0: {token, 0, approve(settlement, amount)}
            mstore(add(m, 164), token)
            mstore(add(m, 228), 0x60)
            mstore(add(m, 260), 0x44)
            mstore(add(m, 292), shl(224, 0x095ea7b3))
            mstore(add(m, 296), settlement)
            mstore(add(m, 328), amount)
            // Call 1: {settlement, 0, settle(merchant, token, amount, requestHash)}
            mstore(add(m, 388), settlement)
            mstore(add(m, 452), 0x60)
            mstore(add(m, 484), 0x84)
            mstore(add(m, 516), shl(224, 0xd4729c72))
            mstore(add(m, 520), merchantWord)
            mstore(add(m, 552), token)
            mstore(add(m, 584), amount)
            mstore(add(m, 616), requestHash)
            // Call 2: {validator, 0, chargePayment(token, settlement, merchant, amount, requestHash)}
            mstore(add(m, 676), validator)
            mstore(add(m, 740), 0x60)
            mstore(add(m, 772), 0xa4)
            mstore(add(m, 804), shl(224, 0x5d617d53))
            mstore(add(m, 808), token)
            mstore(add(m, 840), settlement)
            mstore(add(m, 872), merchantWord)
            mstore(add(m, 904), amount)
            mstore(add(m, 936), requestHash)
            let expected := keccak256(m, 996)
            calldatacopy(m, c, 996)
            same := eq(keccak256(m, 996), expected)
            merchant := merchantWord
        }
        // a merchant word with high bits set was re-encoded clean, so it cannot match
        if (!same) revert(explain(callData, account, token, settlement, validator));
        tag = SessionPolicy.tagOf(callData[CHARGE_AT:CHARGE_AT + ChargedBatch.CHARGE_LENGTH]);
    }

    /// Says precisely why callData is not the permitted payment (failure path only). Every read is
    /// bounds-checked, so a malformed encoding gets a reason instead of an empty revert.
    function explain(bytes calldata d, address account, address token, address settlement, address validator)
        internal
        pure
        returns (string memory)
    {
        if (d.length < 4 || bytes4(d[:4]) != EXECUTE_BATCH_SELECTOR) {
            return "session: callData is not execute/executeBatch";
        }
        (bool ok, uint256 arrayAt) = SessionPolicy._word(d, 4);
        if (!ok || arrayAt > d.length) return "session: malformed callData";
        uint256 base = 4 + arrayAt;
        (bool okN, uint256 n) = SessionPolicy._word(d, base);
        if (!okN || n > d.length / 32) return "session: malformed callData";
        ChargedBatch.Calls memory calls;
        calls.n = n;
        for (uint256 i = 0; i < n; i++) {
            (bool okO, uint256 off) = SessionPolicy._word(d, base + 32 + 32 * i);
            if (!okO || off > d.length) return "session: malformed callData";
            uint256 t = base + 32 + off;
            (bool okT, uint256 target) = SessionPolicy._word(d, t);
            (bool okV, uint256 value) = SessionPolicy._word(d, t + 32);
            (bool okD, uint256 dStart, uint256 dLen) = SessionPolicy._bytesAt(d, t, t + 64);
            if (!(okT && okV && okD) || target >> 160 != 0) return "session: malformed callData";
            if (target == uint160(account)) return "session: self-call not allowed";
            if (value != 0) return "session: value transfer not allowed";
            if (i < 3) (calls.start[i], calls.len[i], calls.to[i]) = (dStart, dLen, target);
        }
        string memory targets = ChargedBatch.explainTargets(calls, token, settlement, validator);
        if (bytes(targets).length != 0) return targets;
        return ChargedBatch.explainCalls(d, calls, token, settlement);
    }
}
