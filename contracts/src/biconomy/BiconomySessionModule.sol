// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";
import {SessionPolicy} from "../SessionPolicy.sol";
import {SessionModule} from "../SessionModule.sol";
import {IBiconomyAccount, IBiconomyAuthorizationModule, IEcdsaOwnershipRegistryModule} from "./IBiconomyModule.sol";
import {BiconomyPayment} from "./BiconomyPayment.sol";

/// @title BiconomySessionModule
/// @notice Pay-only session keys for Biconomy Smart Account v2 (EntryPoint v0.6), with SessionPolicy's
/// scopes: a validation (authorization) module of its own. One deployment serves every account: all
/// state is SessionPolicy's, keyed by the account (`msg.sender`), so validation touches only storage
/// associated with the sender (ERC-7562).
///
/// Install (owner, once): an owner op whose callData is
/// `setupAndEnableModule(this, initForSmartAccount())`. A session op then carries
/// `signature = abi.encode(<session signature>, this)`; the account hands it to `validateUserOp` here.
/// The owner whose signature enables a grant is the account's EcdsaOwnershipRegistryModule owner, while
/// that module is enabled on the account. Owner controls and views are SessionModule's. See
/// contracts/README.md.
contract BiconomySessionModule is SessionModule, IBiconomyAuthorizationModule {
    /// The EcdsaOwnershipRegistryModule whose owner of an account enables that account's grants.
    address public immutable ECDSA_MODULE;

    constructor(address ecdsaModule) {
        ECDSA_MODULE = ecdsaModule;
    }

    // ---------------------------------------------------------------- install

    /// The setup call of `setupAndEnableModule(this, initForSmartAccount())` (msg.sender = the account):
    /// makes the account's marker slots non-zero (no op pays a zero-to-non-zero write for them later)
    /// and returns the module the account enables. Calling it again changes nothing.
    function initForSmartAccount() external returns (address) {
        SessionPolicy.initAccount(msg.sender);
        return address(this);
    }

    // ---------------------------------------------------------------- IBiconomyAuthorizationModule

    /// A session op of the calling account: SessionPolicy's checks with Biconomy's payment shape, over
    /// the `bytes` the account decoded the module from.
    function validateUserOp(UserOperation calldata userOp, bytes32 userOpHash) external returns (uint256) {
        require(userOp.sender == msg.sender, "session: op is not the caller's");
        return SessionPolicy.validateSessionOp(
            msg.sender, _ownerOf, userOp, _moduleSignature(userOp.signature), userOpHash, _parsePayment
        );
    }

    /// Session keys sign nothing but ops: no ERC-1271 signature is ever valid through this module.
    function isValidSignature(bytes32, bytes memory) external pure returns (bytes4) {
        return 0xffffffff;
    }

    // ---------------------------------------------------------------- execution

    /// The third call of every session payment (see BiconomyPayment), made by the account inside its
    /// `executeBatch_y6U`: only the op that validated last may execute, and its session is charged now,
    /// so a payment that reverts (the whole batch reverts) costs no token budget. Re-checks
    /// revocation, pause and epoch, which an op earlier in the same bundle may have changed.
    function chargePayment(address, address, address merchant, uint256 amount, bytes32) external {
        uint256 marker = SessionPolicy.consumeMarker(msg.sender, SessionPolicy.tagOf(msg.data));
        if (marker & SessionPolicy.FLAG_SESSION != 0) SessionPolicy.chargeSession(msg.sender, marker, merchant, amount);
    }

    // ---------------------------------------------------------------- internals

    /// The owner registered for `account` in the ECDSA module. The module must still be enabled on the
    /// account: its registry keeps an owner after the account disables it, and that stale owner must
    /// not enable grants (or sign relayed controls) any more.
    function _ownerOf(address account) internal view override returns (address) {
        require(IBiconomyAccount(account).isModuleEnabled(ECDSA_MODULE), "session: ECDSA module not enabled");
        try IEcdsaOwnershipRegistryModule(ECDSA_MODULE).getOwner(account) returns (address owner) {
            return owner;
        } catch {
            revert("session: account has no ECDSA owner");
        }
    }

    /// The session signature inside `abi.encode(bytes moduleSignature, address module)`, in canonical
    /// encoding only (offset 0x40, zero-padded to a whole word, nothing after): the account decoded the
    /// module from the same bytes, so both read one envelope.
    function _moduleSignature(bytes calldata envelope) internal pure returns (bytes calldata sig) {
        require(envelope.length >= 96 && uint256(bytes32(envelope[:32])) == 0x40, "session: malformed signature");
        uint256 len = uint256(bytes32(envelope[64:96]));
        require(len <= envelope.length && envelope.length - 96 == (len + 31) / 32 * 32, "session: malformed signature");
        sig = envelope[96:96 + len];
    }

    function _parsePayment(bytes calldata callData, address account, address token, address settlement)
        internal
        view
        returns (address, uint256, bytes32, uint256)
    {
        return BiconomyPayment.parse(callData, account, token, settlement, address(this));
    }

    /// A Biconomy account controls its own sessions by calling (an owner op's `execute_ncC`).
    function _controlledAccount() internal view override returns (address) {
        return msg.sender;
    }
}
