// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";

/// @notice What Biconomy Smart Account v2 (`SmartAccount` 2.0.0) calls on a validation module, written
/// from its ABI (npm `biconomy-devx/account-contracts-v2` 1.0.1, `interfaces/IAuthorizationModule.sol` and
/// `interfaces/ISignatureValidator.sol`). The account decodes `(bytes moduleSignature, address module)`
/// from `userOp.signature`, requires `module` to be enabled, and calls it with the whole op
/// (msg.sender = the account); it pays `missingAccountFunds` itself afterwards.
interface IBiconomyAuthorizationModule {
    function validateUserOp(UserOperation calldata userOp, bytes32 userOpHash)
        external
        returns (uint256 validationData);

    /// ERC-1271 through `SmartAccount.isValidSignature(hash, abi.encode(moduleSignature, module))`.
    function isValidSignature(bytes32 dataHash, bytes memory moduleSignature) external view returns (bytes4);
}

/// @notice The parts of a Biconomy v2 account (its `ModuleManager`) the session module reads.
interface IBiconomyAccount {
    function isModuleEnabled(address module) external view returns (bool);
}

/// @notice Biconomy's `EcdsaOwnershipRegistryModule` 0.2.0: one EOA owner per account. `getOwner`
/// reverts `NoOwnerRegisteredForSmartAccount(account)` when there is none.
interface IEcdsaOwnershipRegistryModule {
    function getOwner(address smartAccount) external view returns (address);
}
