// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IEntryPoint} from "@account-abstraction/contracts/interfaces/IEntryPoint.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";
import {ERC1967Proxy} from "@openzeppelin/contracts/proxy/ERC1967/ERC1967Proxy.sol";
import {SessionKeyAccount} from "./SessionKeyAccount.sol";

/// @title SessionKeyAccountFactory
/// @notice SimpleAccountFactory's ABI (`createAccount(owner, salt)`, `getAddress(owner, salt)`) for
/// SessionKeyAccount, so the same initCode-based counterfactual deployment works in the first UserOp.
contract SessionKeyAccountFactory {
    SessionKeyAccount public immutable accountImplementation;

    constructor(IEntryPoint entryPoint) {
        accountImplementation = new SessionKeyAccount(entryPoint);
    }

    /// Returns the existing account when already deployed, so the EntryPoint's initCode path and a
    /// repeated call are both safe.
    function createAccount(address owner, uint256 salt) public returns (SessionKeyAccount ret) {
        address addr = getAddress(owner, salt);
        if (addr.code.length > 0) {
            return SessionKeyAccount(payable(addr));
        }
        ret = SessionKeyAccount(
            payable(
                new ERC1967Proxy{salt: bytes32(salt)}(
                    address(accountImplementation), abi.encodeCall(SessionKeyAccount.initialize, (owner))
                )
            )
        );
    }

    function getAddress(address owner, uint256 salt) public view returns (address) {
        return Create2.computeAddress(
            bytes32(salt),
            keccak256(
                abi.encodePacked(
                    type(ERC1967Proxy).creationCode,
                    abi.encode(address(accountImplementation), abi.encodeCall(SessionKeyAccount.initialize, (owner)))
                )
            )
        );
    }
}
