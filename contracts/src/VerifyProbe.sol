// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";

interface ISettled {
    function isSettled(bytes32 requestHash) external view returns (bool);
}

/// @title VerifyProbe
/// @notice Never deployed: the facilitator places this runtime code at an unused address through an
/// `eth_call` state override and asks, in one call, "would this op land and pay?". It runs the op
/// through the real `EntryPoint.handleOps` (so signature, time range, paymaster, the account's
/// session scopes and the settle itself all run exactly as a bundle would run them), then reads
/// `isSettled(requestHash)`. A refused op makes `handleOps` revert with `FailedOp`, which this call
/// bubbles up unchanged. It also reads `isSettled` before the op runs: a requestHash someone else
/// settled first would otherwise look paid by this op, and reading it here spares the caller a
/// second round trip.
contract VerifyProbe {
    /// @return settled whether the op's settle recorded `requestHash`
    /// @return blockNumber the block the call ran in
    /// @return timestamp its timestamp (the time the op's validity window was checked against)
    /// @return settledBefore whether `requestHash` was already recorded before the op ran
    function probe(IEntryPoint entryPoint, UserOperation calldata op, ISettled settlement, bytes32 requestHash)
        external
        returns (bool settled, uint256 blockNumber, uint256 timestamp, bool settledBefore)
    {
        settledBefore = settlement.isSettled(requestHash);
        UserOperation[] memory ops = new UserOperation[](1);
        ops[0] = op;
        entryPoint.handleOps(ops, payable(address(this)));
        return (settlement.isSettled(requestHash), block.number, block.timestamp, settledBefore);
    }

    /// The bundle's gas compensation is paid to this contract as beneficiary.
    receive() external payable {}
}
