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
    #[serde(with = "quantity::u256")]
    pub pre_verification_gas: U256,
    /// Older v0.6 bundlers call it `verificationGas`.
    #[serde(with = "quantity::u256", alias = "verificationGas")]
    pub verification_gas_limit: U256,
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
    pub user_op_hash: B256,
    #[serde(default)]
    pub entry_point: Option<Address>,
    pub sender: Address,
    #[serde(with = "quantity::u256")]
    pub nonce: U256,
    #[serde(default)]
    pub paymaster: Option<Address>,
    /// `false` when execution reverted; the bundle (and the fee) still went through.
    pub success: bool,
    #[serde(with = "quantity::u256")]
    pub actual_gas_cost: U256,
    #[serde(with = "quantity::u256")]
    pub actual_gas_used: U256,
    /// Revert data of a failed execution, as the bundler reports it.
    #[serde(default)]
    pub reason: Option<String>,
    /// The logs emitted by this op only.
    #[serde(default)]
    pub logs: Vec<Log>,
    pub receipt: TransactionReceipt,
}

/// The bundle transaction's receipt, reduced to what payment settlement needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionReceipt {
    pub transaction_hash: B256,
    #[serde(with = "quantity::u64")]
    pub block_number: u64,
    #[serde(default)]
    pub block_hash: Option<B256>,
    #[serde(default, with = "quantity::opt_u64")]
    pub status: Option<u64>,
    #[serde(default)]
    pub logs: Vec<Log>,
}

/// An EVM log as JSON-RPC reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    pub address: Address,
    #[serde(default)]
    pub topics: Vec<B256>,
    #[serde(default)]
    pub data: Bytes,
    #[serde(default, with = "quantity::opt_u64")]
    pub log_index: Option<u64>,
    #[serde(default)]
    pub transaction_hash: Option<B256>,
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

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.transport.set_retry(retry);
        self
    }

    /// Uses a preconfigured HTTP client (proxies, extra roots, a shared connection pool).
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.transport.set_http_client(http);
        self
    }

    pub fn url(&self) -> &url::Url {
        self.transport.url()
    }

    pub fn timeout(&self) -> Duration {
        self.transport.timeout()
    }

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
