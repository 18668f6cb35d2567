use std::path::PathBuf;

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    transports::{RpcError, TransportErrorKind},
};
use x402_aa_contracts::ArtifactError;

/// Everything that can go wrong starting or driving a devnet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No anvil where the devnet looks: run `npm ci` (anvil comes from the repo's npm packages).
    #[error("anvil binary not found at {path} (run `npm ci` at the workspace root or set $ANVIL)")]
    AnvilNotFound {
        /// Where it looked.
        path: PathBuf,
    },
    /// anvil exited or never answered.
    #[error("anvil failed to start: {0}")]
    Spawn(#[from] alloy::node_bindings::NodeError),
    /// anvil started with another account count than the three the key roles need.
    #[error("anvil reported {0} funded accounts; the devnet asks it for exactly 3")]
    NotEnoughAccounts(usize),
    /// A committed contract artifact is missing or unreadable.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A JSON-RPC call to anvil failed.
    #[error("rpc: {0}")]
    Rpc(#[from] RpcError<TransportErrorKind>),
    /// A contract call or deployment failed (revert, decoding).
    #[error("contract call: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// A devnet key could not sign.
    #[error("signing: {0}")]
    Signer(#[from] alloy::signers::Error),
    /// A deterministic deployment landed elsewhere than its canonical address: the vendored
    /// creation code or the deployer differs from the upstream one.
    #[error("{name} landed at {actual}, expected the canonical {expected}")]
    WrongAddress {
        /// The contract.
        name: &'static str,
        /// Its canonical address.
        expected: Address,
        /// Where it landed.
        actual: Address,
    },
    /// A setup transaction was mined but reverted.
    #[error("transaction for {what} reverted (tx {tx_hash})")]
    Reverted {
        /// What the transaction was for.
        what: String,
        /// The reverted transaction.
        tx_hash: B256,
    },
    /// `handleOps` reverted for another reason than an op's validation (e.g. the beneficiary).
    #[error("handleOps reverted without FailedOp: {message} (revert data {revert_data:?})")]
    HandleOpsReverted {
        /// The node's error message.
        message: String,
        /// The raw revert data, when the node returned it.
        revert_data: Option<Bytes>,
    },
    /// The EntryPoint refused one op in validation (`FailedOp(index, "AAxx …")`).
    #[error("handleOps rejected op {op_index}: {reason}")]
    FailedOp {
        /// The op's index in the bundle.
        op_index: U256,
        /// The EntryPoint's reason, `AAxx` code first.
        reason: String,
    },
    /// A sponsorship window beyond the paymaster's 48-bit timestamps.
    #[error("timestamp {0} does not fit the paymaster's uint48")]
    TimestampOutOfRange(u64),
    /// anvil answered `eth_getBlockByNumber(latest)` with nothing.
    #[error("latest block is missing")]
    NoLatestBlock,
    /// A blocking helper task panicked or was cancelled.
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
