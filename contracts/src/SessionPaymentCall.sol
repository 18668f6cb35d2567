// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SessionPolicy} from "./SessionPolicy.sol";

/// @title SessionPaymentCall
/// @notice The one callData a session op may carry on a Safe (through SafeSessionModule, the Safe's
/// fallback handler) or a Kernel v2.4 account (through KernelSessionValidator, registered with Kernel as
/// both validator and executor of this selector):
///   `executeSessionPayment(address token, address settlement, address merchant, uint256 amount,
///   bytes32 requestHash)`
/// in canonical ABI encoding (exactly 164 bytes). The host turns it into exactly
/// `token.approve(settlement, amount)` and `settlement.settle(merchant, token, amount, requestHash)`,
/// both plain CALLs made by the account, and charges the session in the same frame. The shape has no
/// target, value, operation or calldata field, so a session op cannot even express another call, a
/// delegatecall or a value transfer; and it is the smallest payment an op can carry (the batch
/// shapes cost a Kernel session payment about 4% more gas, mostly calldata).
library SessionPaymentCall {
    /// executeSessionPayment(address,address,address,uint256,bytes32)
    bytes4 internal constant SELECTOR = 0x5f0dcdb8;
    uint256 internal constant LENGTH = 164;

    /// Proves `callData` is the canonical payment for this token and settlement; returns settle's
    /// merchant, amount and requestHash. Otherwise reverts with the diagnosis. (Each host derives its
    /// marker tag from these bytes as its execution will present them.)
    function parse(bytes calldata callData, address token, address settlement)
        internal
        pure
        returns (address merchant, uint256 amount, bytes32 requestHash)
    {
        uint256 diff;
        uint256 m;
        if (callData.length == LENGTH) {
            assembly ("memory-safe") {
                let c := callData.offset
                diff := or(xor(shr(224, calldataload(c)), 0x5f0dcdb8), xor(calldataload(add(c, 4)), token))
                diff := or(diff, xor(calldataload(add(c, 36)), settlement))
                m := calldataload(add(c, 68))
                amount := calldataload(add(c, 100))
                requestHash := calldataload(add(c, 132))
            }
        }
        if (callData.length != LENGTH || diff != 0 || m >> 160 != 0) revert(explain(callData, token, settlement));
        merchant = address(uint160(m));
    }

    /// Says precisely why callData is not the permitted payment (failure path only).
    function explain(bytes calldata d, address token, address settlement) internal pure returns (string memory) {
        if (d.length < 4 || bytes4(d[:4]) != SELECTOR) return "session: callData is not executeSessionPayment";
        if (d.length != LENGTH) return "session: malformed callData";
        uint256 t = uint256(bytes32(d[4:36]));
        uint256 s = uint256(bytes32(d[36:68]));
        if (t >> 160 != 0 || s >> 160 != 0 || uint256(bytes32(d[68:100])) >> 160 != 0) {
            return "session: malformed callData";
        }
        if (t != uint160(token)) return "session: token not allowed";
        if (s != uint160(settlement)) return "session: target not allowed";
        return "session: non-canonical callData";
    }
}
