//! Solidity ABI types for the v0.6 `UserOperation` and the calls that make up a payment.
//!
//! Kept in one `sol!` block so every Rust type here is generated from the same Solidity text a
//! reader can hold against the contracts.

use alloy::sol;

sol! {
    /// ERC-4337 v0.6 `UserOperation` as the EntryPoint receives it (`handleOps`, `getUserOpHash`).
    #[derive(Debug, Default, PartialEq, Eq)]
    struct UserOperation {
        address sender;
        uint256 nonce;
        bytes initCode;
        bytes callData;
        uint256 callGasLimit;
        uint256 verificationGasLimit;
        uint256 preVerificationGas;
        uint256 maxFeePerGas;
        uint256 maxPriorityFeePerGas;
        bytes paymasterAndData;
        bytes signature;
    }

    /// SimpleAccountFactory v0.6 (and SessionKeyAccountFactory, which copies its ABI): the call
    /// the EntryPoint's SenderCreator makes with the tail of `initCode`.
    #[derive(Debug, PartialEq, Eq)]
    function createAccount(address owner, uint256 salt);

    /// SimpleAccount v0.6: a single call from the account.
    #[derive(Debug, PartialEq, Eq)]
    function execute(address dest, uint256 value, bytes func);

    /// SimpleAccount v0.6: several zero-value calls from the account, in order.
    #[derive(Debug, PartialEq, Eq)]
    function executeBatch(address[] dest, bytes[] func);

    /// ERC-20 allowance for the settlement contract to pull the payment.
    #[derive(Debug, PartialEq, Eq)]
    function approve(address spender, uint256 amount);

    /// SettlementContract: pull `amount` of `token` from the caller to `merchant`, once per
    /// `requestHash`.
    #[derive(Debug, PartialEq, Eq)]
    function settle(address merchant, address token, uint256 amount, bytes32 requestHash);
}
