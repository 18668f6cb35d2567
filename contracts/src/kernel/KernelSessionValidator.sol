// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";
import {SessionPolicy} from "../SessionPolicy.sol";
import {SessionModule} from "../SessionModule.sol";
import {IECDSAValidator, IKernelAccount, IKernelValidator} from "./IKernelValidator.sol";
import {KernelPayment} from "./KernelPayment.sol";

/// @title KernelSessionValidator
/// @notice Pay-only session keys for Kernel v2.4 accounts (EntryPoint v0.6), with SessionPolicy's scopes.
/// One deployment serves every Kernel account: all state is SessionPolicy's, keyed by the account
/// (`msg.sender`), so validation touches only storage associated with the sender (ERC-7562).
///
/// Install (owner, once): `kernel.setExecution(KernelPayment.EXECUTE_BATCH_SELECTOR, address(0), this, 0,
/// 0, "")`. Kernel then hands every op whose signature starts with mode `0x00000001` and whose callData
/// is `executeBatch(...)` to `validateUserOp` here, with the signature after the mode. The owner
/// whose signature enables a grant is the account's ECDSAValidator owner. Owner controls and views are
/// SessionModule's. See contracts/README.md.
contract KernelSessionValidator is SessionModule, IKernelValidator {
    /// The canonical ECDSAValidator: the default validator every account using sessions must have.
    address public immutable ECDSA_VALIDATOR;

    constructor(address ecdsaValidator) {
        ECDSA_VALIDATOR = ecdsaValidator;
    }

    // ---------------------------------------------------------------- IKernelValidator

    /// From `setExecution`: makes the account's marker slots non-zero (no op pays a zero-to-non-zero
    /// write for them later). Calling it again changes nothing.
    function enable(bytes calldata) external payable {
        SessionPolicy.initAccount(msg.sender);
    }

    /// Ends every session of the calling account (as `revokeAll`); Kernel v2.4 never calls it itself.
    function disable(bytes calldata) external payable {
        _revokeAll(msg.sender);
    }

    /// A session op of the calling Kernel account: SessionPolicy's checks with Kernel's payment shape.
    function validateUserOp(UserOperation calldata userOp, bytes32 userOpHash, uint256)
        external
        payable
        returns (uint256)
    {
        require(userOp.sender == msg.sender, "session: op is not the caller's");
        return SessionPolicy.validateSessionOp(
            msg.sender, _ownerOf, userOp, userOp.signature, userOpHash, _parsePayment
        );
    }

    /// Session keys sign nothing but ops: no ERC-1271 signature is ever valid through this validator.
    function validateSignature(bytes32, bytes calldata) external pure returns (uint256) {
        return SessionPolicy.SIG_VALIDATION_FAILED;
    }

    /// Nobody may call the account's `executeBatch` directly on this validator's authority.
    function validCaller(address, bytes calldata) external pure returns (bool) {
        return false;
    }

    // ---------------------------------------------------------------- execution

    /// The third call of every session payment (see KernelPayment), made by the account inside its
    /// `executeBatch`: only the op that validated last may execute, and its session is charged now, so
    /// a payment that reverts (Kernel reverts the whole batch) costs no token budget. Re-checks
    /// revocation, pause and epoch, which an op earlier in the same bundle may have changed.
    function chargePayment(address, address, address merchant, uint256 amount, bytes32) external {
        uint256 marker = SessionPolicy.consumeMarker(msg.sender, SessionPolicy.tagOf(msg.data));
        if (marker & SessionPolicy.FLAG_SESSION != 0) SessionPolicy.chargeSession(msg.sender, marker, merchant, amount);
    }

    // ---------------------------------------------------------------- SessionModule

    /// The account's ECDSAValidator owner, provided ECDSAValidator is its default validator.
    function _ownerOf(address account) internal view override returns (address) {
        require(
            IKernelAccount(account).getDefaultValidator() == ECDSA_VALIDATOR,
            "session: default validator is not ECDSAValidator"
        );
        return IECDSAValidator(ECDSA_VALIDATOR).ecdsaValidatorStorage(account);
    }

    /// A Kernel account controls its own sessions by calling (an owner op's `execute`).
    function _controlledAccount() internal view override returns (address) {
        return msg.sender;
    }

    // ---------------------------------------------------------------- internals

    function _parsePayment(bytes calldata callData, address account, address token, address settlement)
        internal
        view
        returns (address, uint256, bytes32, uint256)
    {
        return KernelPayment.parse(callData, account, token, settlement, address(this));
    }
}
