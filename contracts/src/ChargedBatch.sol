// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SessionPolicy} from "./SessionPolicy.sol";

/// @title ChargedBatch
/// @notice What the Kernel and Biconomy session payments share: one batch of exactly three calls,
///   [token: approve(settlement, A)], [settlement: settle(merchant, token, A, requestHash)],
///   [host: chargePayment(token, settlement, merchant, A, requestHash)],
/// the third charging the session inside the batch, so the charge stands exactly when the payment does.
/// Each host's library (KernelPayment, BiconomyPayment) proves its own batch encoding on the success
/// path; once it has located the calls, this one names why they are not the payment (failure path only).
library ChargedBatch {
    bytes4 internal constant CHARGE_SELECTOR = 0x5d617d53; // chargePayment(address,address,address,uint256,bytes32)
    /// The charge call's bytes (selector and five words): its tag is the op's marker tag.
    uint256 internal constant CHARGE_LENGTH = 164;

    /// The located calls of a batch: `n` calls, the first three's targets and their data's (start, length)
    /// in `d`.
    struct Calls {
        uint256 n;
        uint256[3] to;
        uint256[3] start;
        uint256[3] len;
    }

    /// The first rule the batch's call count and targets break, or "" when they are right.
    function explainTargets(Calls memory calls, address token, address settlement, address host)
        internal
        pure
        returns (string memory)
    {
        if (calls.n != 3) return "session: batch must be exactly approve + settle + charge";
        if (calls.to[0] != uint160(token)) return "session: token not allowed";
        if (calls.to[1] != uint160(settlement) || calls.to[2] != uint160(host)) return "session: target not allowed";
        return "";
    }

    /// The first rule the three calls' data break, given right targets; "non-canonical callData" when
    /// each call is right on its own (the encoding around them is not the canonical one).
    function explainCalls(bytes calldata d, Calls memory calls, address token, address settlement)
        internal
        pure
        returns (string memory)
    {
        (uint256 a, uint256 s, uint256 c) = (calls.start[0], calls.start[1], calls.start[2]);
        if (calls.len[0] != 68 || bytes4(d[a:a + 4]) != SessionPolicy.APPROVE_SELECTOR) {
            return "session: first call must be approve";
        }
        if (uint256(bytes32(d[a + 4:a + 36])) != uint160(settlement)) return "session: approve spender not allowed";
        string memory settleReason = SessionPolicy._explainSettle(d, s, calls.len[1], uint160(token));
        if (keccak256(bytes(settleReason)) != keccak256("session: non-canonical callData")) return settleReason;
        if (bytes32(d[a + 36:a + 68]) != bytes32(d[s + 68:s + 100])) {
            return "session: approve amount differs from payment";
        }
        if (calls.len[2] != CHARGE_LENGTH || bytes4(d[c:c + 4]) != CHARGE_SELECTOR) {
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
