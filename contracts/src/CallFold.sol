// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title CallFold
/// @notice Never deployed: the project's node client places this runtime code at an unused address
/// through an `eth_call` state override, to answer several independent `eth_call`s issued together
/// (an agent's nonce and session usage reads, a paymaster's hash, simulation and settled check) in
/// one. A node spends more on each `eth_call` it is sent (a task, a state snapshot, an EVM set up)
/// than on a cheap view itself, so one call that makes the others is much cheaper for it.
/// Each call runs as it would alone: against the same state, whose writes are undone before the
/// next one runs, and its outcome (return data, or revert data) is returned as it came.
contract CallFold {
    struct Call {
        address target;
        bytes data;
    }

    struct Outcome {
        bool success;
        bytes returnData;
    }

    /// @return outcomes one per call, in order. A call whose frame failed without saying why (out of
    /// gas in this fold, say) is reported as failed with empty return data, so the client asks the
    /// node for it on its own.
    function fold(Call[] calldata calls) external returns (Outcome[] memory outcomes) {
        outcomes = new Outcome[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            (, bytes memory out) = address(this).call(abi.encodeCall(this.isolated, (calls[i].target, calls[i].data)));
            if (out.length >= 64) (outcomes[i].success, outcomes[i].returnData) = abi.decode(out, (bool, bytes));
        }
    }

    /// @return timestamp the timestamp of the block the call runs at: asked beside other calls, the
    /// chain's time comes in the same fold as the reads it goes with (at `latest`, the latest
    /// block's own timestamp), instead of as a block read of its own.
    function clock() external view returns (uint256 timestamp) {
        return block.timestamp;
    }

    /// Makes one call and reverts with its outcome, which undoes the call's writes: a call that
    /// changes state (a simulation) leaves nothing behind for the calls after it.
    function isolated(address target, bytes calldata data) external {
        (bool success, bytes memory returnData) = target.call(data);
        bytes memory outcome = abi.encode(success, returnData);
        assembly ("memory-safe") {
            revert(add(outcome, 32), mload(outcome))
        }
    }
}
