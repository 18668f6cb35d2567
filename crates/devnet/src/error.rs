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
    #[error("anvil binary not found at {path} (run `npm ci` at the workspace root or set $ANVIL)")]
    AnvilNotFound { path: PathBuf },
    #[error("anvil failed to start: {0}")]
    Spawn(#[from] alloy::node_bindings::NodeError),
    #[error("anvil reported {0} funded accounts; the devnet asks it for exactly 3")]
    NotEnoughAccounts(usize),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("rpc: {0}")]
    Rpc(#[from] RpcError<TransportErrorKind>),
    #[error("contract call: {0}")]
    Contract(#[from] alloy::contract::Error),
    #[error("signing: {0}")]
    Signer(#[from] alloy::signers::Error),
    #[error("{name} landed at {actual}, expected the canonical {expected}")]
    WrongAddress { name: &'static str, expected: Address, actual: Address },
    #[error("transaction for {what} reverted (tx {tx_hash})")]
    Reverted { what: String, tx_hash: B256 },
    #[error("handleOps reverted without FailedOp: {message} (revert data {revert_data:?})")]
    HandleOpsReverted { message: String, revert_data: Option<Bytes> },
    #[error("handleOps rejected op {op_index}: {reason}")]
    FailedOp { op_index: U256, reason: String },
    #[error("timestamp {0} does not fit the paymaster's uint48")]
    TimestampOutOfRange(u64),
    #[error("latest block is missing")]
    NoLatestBlock,
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
