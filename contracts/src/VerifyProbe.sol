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

    /// The facilitator's pre-send check of a whole bundle, in the same one run of the EVM: runs
    /// `ops` through `handleOps` as the bundle transaction will (same order, same beneficiary) and
    /// says, per op, whether its settle recorded its requestHash in this bundle. A requestHash
    /// recorded before the bundle ran counts as not settled by it. A refused op makes the call
    /// revert with the EntryPoint's `FailedOp(index, reason)`, bubbled up unchanged.
    /// @return settles per op, whether it paid in this bundle
    function probeBundle(
        IEntryPoint entryPoint,
        UserOperation[] calldata ops,
        ISettled settlement,
        bytes32[] calldata requestHashes,
        address payable beneficiary
    ) external returns (bool[] memory settles) {
        require(ops.length == requestHashes.length, "VerifyProbe: one requestHash per op");
        settles = new bool[](ops.length);
        for (uint256 i = 0; i < ops.length; ++i) {
            settles[i] = !settlement.isSettled(requestHashes[i]);
        }
        entryPoint.handleOps(ops, beneficiary);
        for (uint256 i = 0; i < ops.length; ++i) {
            settles[i] = settles[i] && settlement.isSettled(requestHashes[i]);
        }
    }

    /// The bundle's gas compensation is paid to this contract as beneficiary.
    receive() external payable {}
}
