// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title SettlementContract
/// @notice The aa-native (NERO 402) settlement point: one shared deployment, merchants are arguments.
/// A payment is `settle(merchant, token, amount, requestHash)` called by the paying smart account,
/// which has approved this contract for `amount` in the same UserOp.
/// @dev Mirrors NERO's documented behaviour and custom errors. Deployed directly (not behind a UUPS
/// proxy) on the devnet: upgradeability is an operator choice that does not change the ABI.
contract SettlementContract is Ownable, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// A requestHash settles at most once, whichever merchant it names.
    mapping(bytes32 requestHash => bool settled) public isSettled;
    mapping(address token => bool allowed) public isTokenAllowed;

    /// @dev `requestHash` is indexed (not `token`) because facilitators and receipts look payments up by it.
    event ReceiptLog(
        address indexed merchant, address indexed payer, address token, uint256 amount, bytes32 indexed requestHash
    );
    event TokenAllowed(address indexed token, bool allowed);

    error UnexpectedNativeValue();
    error ZeroAddress();
    error ZeroAmount();
    error ZeroRequestHash();
    error TokenNotAllowed(address token);
    error AlreadySettled(bytes32 requestHash);
    /// Fee-on-transfer, rebasing or otherwise misbehaving tokens, and merchant == payer, end here.
    error MerchantBalanceMismatch(uint256 expectedIncrease, uint256 actualIncrease);

    constructor(address initialOwner) Ownable(initialOwner) {}

    function settle(address merchant, address token, uint256 amount, bytes32 requestHash)
        external
        payable
        nonReentrant
        whenNotPaused
    {
        if (msg.value != 0) revert UnexpectedNativeValue();
        if (merchant == address(0) || token == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (requestHash == bytes32(0)) revert ZeroRequestHash();
        if (!isTokenAllowed[token]) revert TokenNotAllowed(token);
        if (isSettled[requestHash]) revert AlreadySettled(requestHash);

        isSettled[requestHash] = true;

        uint256 before = IERC20(token).balanceOf(merchant);
        IERC20(token).safeTransferFrom(msg.sender, merchant, amount);
        uint256 increase = IERC20(token).balanceOf(merchant) - before;
        if (increase != amount) revert MerchantBalanceMismatch(amount, increase);

        emit ReceiptLog(merchant, msg.sender, token, amount, requestHash);
    }

    function setTokenAllowed(address token, bool allowed) external onlyOwner {
        if (token == address(0)) revert ZeroAddress();
        isTokenAllowed[token] = allowed;
        emit TokenAllowed(token, allowed);
    }

    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }
}
