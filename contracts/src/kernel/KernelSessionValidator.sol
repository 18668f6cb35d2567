// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {UserOperation} from "@account-abstraction/contracts/interfaces/UserOperation.sol";
import {SessionPolicy} from "../SessionPolicy.sol";
import {SessionModule} from "../SessionModule.sol";
import {IECDSAValidator, IKernelAccount, IKernelValidator} from "./IKernelValidator.sol";
import {SessionPaymentCall} from "../SessionPaymentCall.sol";

/// @title KernelSessionValidator
/// @notice Pay-only session keys for Kernel v2.4 accounts (EntryPoint v0.6), with SessionPolicy's scopes.
/// One deployment serves every Kernel account: all state is SessionPolicy's, keyed by the account
/// (`msg.sender`), so validation touches only storage associated with the sender (ERC-7562).
///
/// Install (owner, once): `kernel.setExecution(SessionPaymentCall.SELECTOR, this, this, 0, 0, "")`, i.e.
/// this contract is both the validator and the executor of `executeSessionPayment`. Kernel then hands
/// every op whose signature starts with mode `0x00000001` and whose callData is
/// `executeSessionPayment(...)` to `validateUserOp` here (with the signature after the mode), and
/// executes such an op by DELEGATECALLing `executeSessionPayment` here from its fallback, which only the
/// EntryPoint may reach (`validCaller` is false). The owner whose signature enables a grant is the
/// account's ECDSAValidator owner. Owner controls and views are SessionModule's. See contracts/README.md.
contract KernelSessionValidator is SessionModule, IKernelValidator {
    /// The canonical ECDSAValidator: the default validator every account using sessions must have.
    address public immutable ECDSA_VALIDATOR;

    /// This deployment: `executeSessionPayment` runs only as the account's DELEGATECALL, never here.
    address private immutable SELF;

    constructor(address ecdsaValidator) {
        ECDSA_VALIDATOR = ecdsaValidator;
        SELF = address(this);
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

    /// A session op of the calling Kernel account: SessionPolicy's checks with the 164-byte
    /// `executeSessionPayment` shape.
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

    /// Nobody but the EntryPoint may make the account run `executeSessionPayment`.
    function validCaller(address, bytes calldata) external pure returns (bool) {
        return false;
    }

    // ---------------------------------------------------------------- execution

    /// A session payment's execution, DELEGATECALLed by the Kernel account's fallback (so `this` is
    /// the account): charges the session through `chargePayment` on this contract, then the account
    /// approves exactly `amount` to `settlement` and settles. One frame: if anything reverts, the
    /// charge is undone with the payment, so a reverted payment costs no token budget.
    function executeSessionPayment(
        address token,
        address settlement,
        address merchant,
        uint256 amount,
        bytes32 requestHash
    ) external {
        require(address(this) != SELF, "session: executeSessionPayment runs in the account");
        KernelSessionValidator(SELF).chargePayment(token, settlement, merchant, amount, requestHash);
        _call(token, abi.encodeWithSelector(SessionPolicy.APPROVE_SELECTOR, settlement, amount));
        _call(settlement, abi.encodeWithSelector(SessionPolicy.SETTLE_SELECTOR, merchant, token, amount, requestHash));
    }

    /// The charge of a session payment, called by the account while it executes the payment: only
    /// the op that validated last may execute (its marker tag is over these five arguments, the
    /// op's callData after the selector), and its session is charged now. Re-checks revocation,
    /// pause and epoch, which an op earlier in the same bundle may have changed. An owner op cannot
    /// pass: it left no marker.
    function chargePayment(address, address, address merchant, uint256 amount, bytes32) external {
        uint256 marker = SessionPolicy.consumeMarker(msg.sender, SessionPolicy.tagOf(msg.data[4:]));
        require(marker & SessionPolicy.FLAG_SESSION != 0, "account: op was not the last validated");
        SessionPolicy.chargeSession(msg.sender, marker, merchant, amount);
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

    /// The 164-byte payment for the grant's token and settlement; the tag is over its arguments,
    /// which `chargePayment` receives unchanged.
    function _parsePayment(bytes calldata callData, address, address token, address settlement)
        internal
        pure
        returns (address merchant, uint256 amount, bytes32 requestHash, uint256 tag)
    {
        (merchant, amount, requestHash) = SessionPaymentCall.parse(callData, token, settlement);
        tag = SessionPolicy.tagOf(callData[4:]);
    }

    /// One CALL by the account, bubbling the callee's revert data so the EntryPoint's
    /// `UserOperationRevertReason` names e.g. the settlement's error.
    function _call(address to, bytes memory data) private {
        (bool ok, bytes memory ret) = to.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
