//! Solidity ABI types of the calls that make up a payment (the op itself is
//! [`crate::entry_point::UserOperation`]).
//!
//! Kept in one `sol!` block so every Rust type here is generated from the same Solidity text a
//! reader can hold against the contracts.

use alloy::sol;

sol! {
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
