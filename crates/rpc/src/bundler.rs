//! ERC-4337 v0.6 bundler JSON-RPC (`eth_sendUserOperation` and friends).

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use x402_aa::UserOperation;

use crate::{Result, RetryPolicy, RpcError, quantity, transport::Transport};

/// A bundler endpoint.
///
/// Sends are retried on transport failures like every call: a bundler that already accepted the
/// op answers the duplicate with a rejection (same userOpHash), never with a second inclusion.
#[derive(Debug, Clone)]
pub struct BundlerClient {
    transport: Transport,
}

/// `eth_estimateUserOperationGas` for v0.6: the three limits a v0.6 op carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GasEstimate {
    /// Gas the bundler charges for calldata and bundle overhead, outside any execution frame.
    #[serde(with = "quantity::u256")]
    pub pre_verification_gas: U256,
    /// Gas limit for validation: account deployment, `validateUserOp` and, in v0.6, the
    /// paymaster's validation and `postOp`. Older v0.6 bundlers call it `verificationGas`.
    #[serde(with = "quantity::u256", alias = "verificationGas")]
    pub verification_gas_limit: U256,
    /// Gas limit for the account's execution call (the op's `callData`).
    #[serde(with = "quantity::u256")]
    pub call_gas_limit: U256,
}

impl GasEstimate {
    /// Writes the estimate into the op (before the paymaster call and the signature, which both
    /// cover these fields).
    pub fn apply_to(&self, op: &mut UserOperation) {
        op.pre_verification_gas = self.pre_verification_gas;
        op.verification_gas_limit = self.verification_gas_limit;
        op.call_gas_limit = self.call_gas_limit;
    }
}

/// `eth_getUserOperationReceipt`: the op's outcome and the transaction that carried it.
///
/// Only what every v0.6 bundler sends is required; the rest differs between implementations
/// (alto omits `paymaster` for unsponsored ops, some omit `entryPoint` or `logs`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOpReceipt {
    /// The op this receipt is for.
    pub user_op_hash: B256,
    /// The EntryPoint that executed it; some bundlers omit it.
    #[serde(default)]
    pub entry_point: Option<Address>,
    /// The smart account that sent the op.
    pub sender: Address,
    /// The op's nonce (key in the upper 192 bits, sequence in the lower 64).
    #[serde(with = "quantity::u256")]
    pub nonce: U256,
    /// The sponsoring paymaster; `None` when unsponsored or when the bundler omits it.
    #[serde(default)]
    pub paymaster: Option<Address>,
    /// `false` when execution reverted; the bundle (and the fee) still went through.
    pub success: bool,
    /// What the op paid for gas, in wei (charged to the paymaster's deposit if sponsored).
    #[serde(with = "quantity::u256")]
    pub actual_gas_cost: U256,
    /// Gas the EntryPoint accounted to the op, including `preVerificationGas`.
    #[serde(with = "quantity::u256")]
    pub actual_gas_used: U256,
    /// Revert data of a failed execution, as the bundler reports it.
    #[serde(default)]
    pub reason: Option<String>,
    /// The logs emitted by this op only.
    #[serde(default)]
    pub logs: Vec<Log>,
    /// The receipt of the bundle transaction that carried the op.
    pub receipt: TransactionReceipt,
}

/// The bundle transaction's receipt, reduced to what payment settlement needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionReceipt {
    /// The bundle transaction's hash.
    pub transaction_hash: B256,
    /// The block it was included in.
    #[serde(with = "quantity::u64")]
    pub block_number: u64,
    /// That block's hash, when the bundler reports it.
    #[serde(default)]
    pub block_hash: Option<B256>,
    /// 1 if the bundle transaction succeeded, 0 if it reverted; the op's own outcome is
    /// [`UserOpReceipt::success`].
    #[serde(default, with = "quantity::opt_u64")]
    pub status: Option<u64>,
    /// Every log of the bundle transaction, including other ops' logs.
    #[serde(default)]
    pub logs: Vec<Log>,
}

/// An EVM log as JSON-RPC reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    /// The contract that emitted it.
    pub address: Address,
    /// Event signature hash first, then the indexed arguments.
    #[serde(default)]
    pub topics: Vec<B256>,
    /// ABI-encoded non-indexed arguments.
    #[serde(default)]
    pub data: Bytes,
    /// Position in the block, when reported.
    #[serde(default, with = "quantity::opt_u64")]
    pub log_index: Option<u64>,
    /// The transaction that emitted it, when reported.
    #[serde(default)]
    pub transaction_hash: Option<B256>,
    /// The block it is in, when reported.
    #[serde(default, with = "quantity::opt_u64")]
    pub block_number: Option<u64>,
}

impl BundlerClient {
    /// A client with the default timeout and [`RetryPolicy::default`].
    pub fn new(url: &str) -> Result<Self> {
        Ok(Self { transport: Transport::new(url)? })
    }

    /// Per-attempt HTTP timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.transport.set_timeout(timeout);
        self
    }

    /// Replaces the [`RetryPolicy`]; [`RetryPolicy::none`] for exactly one attempt.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.transport.set_retry(retry);
        self
    }

    /// Uses a preconfigured HTTP client (proxies, extra roots, a shared connection pool).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.transport.set_http_client(http);
        self
    }

    /// The endpoint; may embed an API key, so do not log it.
    pub fn url(&self) -> &url::Url {
        self.transport.url()
    }

    /// The per-attempt HTTP timeout.
    pub fn timeout(&self) -> Duration {
        self.transport.timeout()
    }

    /// The retry policy in force.
    pub fn retry(&self) -> RetryPolicy {
        self.transport.retry()
    }

    /// Submits a signed op; returns its userOpHash as the bundler computed it.
    pub async fn send_user_operation(
        &self,
        op: &UserOperation,
        entry_point: Address,
    ) -> Result<B256> {
        self.transport.call("eth_sendUserOperation", (op, entry_point), HeaderMap::new()).await
    }

    /// Gas limits for an op (its signature may be a dummy of the right length).
    pub async fn estimate_user_operation_gas(
        &self,
        op: &UserOperation,
        entry_point: Address,
    ) -> Result<GasEstimate> {
        self.transport
            .call("eth_estimateUserOperationGas", (op, entry_point), HeaderMap::new())
            .await
    }

    /// The receipt, or `None` while the op is pending (or unknown to this bundler).
    pub async fn get_user_operation_receipt(
        &self,
        user_op_hash: B256,
    ) -> Result<Option<UserOpReceipt>> {
        self.transport.call("eth_getUserOperationReceipt", [user_op_hash], HeaderMap::new()).await
    }

    /// The EntryPoints this bundler serves.
    pub async fn supported_entry_points(&self) -> Result<Vec<Address>> {
        self.transport.call("eth_supportedEntryPoints", [(); 0], HeaderMap::new()).await
    }

    /// Polls for the receipt every `poll_interval` until it appears or `timeout` elapses.
    ///
    /// A timeout is not a failure of the op: it may still be included later, which is why it
    /// maps to NERO's `receipt_timeout` rather than `bundler_error`.
    pub async fn wait_for_receipt(
        &self,
        user_op_hash: B256,
        timeout: Duration,
        poll_interval: Duration,
    ) -> Result<UserOpReceipt> {
        let poll = async {
            loop {
                if let Some(receipt) = self.get_user_operation_receipt(user_op_hash).await? {
                    return Ok(receipt);
                }
                tokio::time::sleep(poll_interval).await;
            }
        };
        tokio::time::timeout(timeout, poll)
            .await
            .unwrap_or(Err(RpcError::ReceiptTimeout { user_op_hash, waited: timeout }))
    }
}
