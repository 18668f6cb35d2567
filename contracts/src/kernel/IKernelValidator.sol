// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";

/// @notice The validator interface Kernel v2 (v2.4 for EntryPoint v0.6) calls, written from its ABI
/// (`zerodevapp/kernel` tag v2.4, `src/interfaces/IKernelValidator.sol`). Kernel's `ValidationData`
/// is a uint256 user-defined value type, so the ABI is the same as spelled here.
interface IKernelValidator {
    /// Kernel calls it from `setExecution`, `setDefaultValidator`, `initialize` and enable mode
    /// (msg.sender = the account).
    function enable(bytes calldata data) external payable;

    /// Kernel v2.4 itself never calls it; accounts and executors may.
    function disable(bytes calldata data) external payable;

    /// `userOp.signature` is what follows Kernel's 4-byte mode (msg.sender = the account, which has
    /// already paid `missingFunds` to the EntryPoint).
    function validateUserOp(UserOperation calldata userOp, bytes32 userOpHash, uint256 missingFunds)
        external
        payable
        returns (uint256 validationData);

    /// ERC-1271 through `Kernel.isValidSignature` / `validateSignature`.
    function validateSignature(bytes32 hash, bytes calldata signature) external view returns (uint256);

    /// Whether `caller` may call the account's function `data` directly (not through the EntryPoint).
    function validCaller(address caller, bytes calldata data) external view returns (bool);
}

/// @notice The parts of a Kernel v2.4 account the session validator reads.
interface IKernelAccount {
    function getDefaultValidator() external view returns (address);
}

/// @notice Kernel v2's ECDSAValidator: one owner per account (`ecdsaValidatorStorage(kernel)`).
interface IECDSAValidator {
    function ecdsaValidatorStorage(address kernel) external view returns (address owner);
}
