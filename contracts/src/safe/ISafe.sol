// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice The parts of a Safe 1.4.1 account the session module calls, written from its ABI
/// (npm safe-contracts 1.4.1, `Safe.sol`, `base/ModuleManager.sol`, `base/OwnerManager.sol`).
/// `operation` is Safe's `Enum.Operation` (0 = CALL, 1 = DELEGATECALL); the module only ever passes 0.
interface ISafe {
    /// Only an enabled module may call it; the Safe makes the call itself (msg.sender = the Safe).
    function execTransactionFromModule(address to, uint256 value, bytes calldata data, uint8 operation)
        external
        returns (bool success);

    /// As above, and returns the callee's return or revert data.
    function execTransactionFromModuleReturnData(address to, uint256 value, bytes calldata data, uint8 operation)
        external
        returns (bool success, bytes memory returnData);

    /// Reverts unless `signatures` carry the Safe's threshold of valid owner signatures over `dataHash`
    /// (`data` is its pre-image, handed to EIP-1271 owners).
    function checkSignatures(bytes32 dataHash, bytes calldata data, bytes calldata signatures) external view;

    function getOwners() external view returns (address[] memory);

    function getThreshold() external view returns (uint256);

    function isOwner(address owner) external view returns (bool);

    /// The Safe's own EIP-712 domain separator (chain id + Safe address), used for `SafeMessage`s.
    function domainSeparator() external view returns (bytes32);

    /// Non-zero when the owners approved `messageHash` on chain (`SignMessageLib`).
    function signedMessages(bytes32 messageHash) external view returns (uint256);
}
