//! NERO-style paymaster JSON-RPC (`pm_sponsor_userop`).

use std::time::Duration;

use alloy::primitives::{Address, Bytes, U256};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize, Serializer};
use x402_aa::UserOperation;

use crate::{Result, RetryPolicy, quantity, transport::Transport};

/// The header NERO also reads the API key from.
pub const API_KEY_HEADER: &str = "x-api-key";

/// A paymaster endpoint. The API key is passed per call and never stored, so it cannot end up in
/// a `Debug` dump of the client.
#[derive(Debug, Clone)]
pub struct PaymasterClient {
    transport: Transport,
}

/// Who pays the gas, as NERO's `type` field says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SponsorType {
    /// Type 0: the paymaster sponsors the gas outright; the account needs no native coin.
    Free,
    /// Type 1: gas paid in an ERC-20 before execution.
    Erc20Prepay,
    /// Type 2: gas paid in an ERC-20 after execution.
    Erc20Postpay,
}

impl SponsorType {
    /// The wire form: a decimal string, as NERO's `userop` SDK sends it (`type: "0"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Free => "0",
            Self::Erc20Prepay => "1",
            Self::Erc20Postpay => "2",
        }
    }
}

impl Serialize for SponsorType {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The fourth `pm_sponsor_userop` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SponsorContext {
    /// Who pays the gas.
    #[serde(rename = "type")]
    pub kind: SponsorType,
    /// The ERC-20 that pays the gas; required by types 1 and 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Address>,
}

impl SponsorContext {
    /// Type 0, the sponsorship x402 agents use: they hold only the stablecoin.
    pub const fn free() -> Self {
        Self { kind: SponsorType::Free, token: None }
    }

    /// Gas paid in `token`, before (type 1) or after (type 2) execution.
    pub const fn erc20(kind: SponsorType, token: Address) -> Self {
        Self { kind, token: Some(token) }
    }
}

/// What the paymaster returns: its `paymasterAndData`, and the gas values it signed over.
///
/// The paymaster's signature covers the gas fields, so any it returns must be written into the op
/// (see [`SponsorResult::apply_to`]) before the account signs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SponsorResult {
    /// The paymaster's address followed by its own data, for the op's `paymasterAndData`.
    pub paymaster_and_data: Bytes,
    /// The `preVerificationGas` the paymaster signed over, if it set one.
    #[serde(default, with = "quantity::opt_u256")]
    pub pre_verification_gas: Option<U256>,
    /// The `verificationGasLimit` the paymaster signed over, if it set one.
    #[serde(default, with = "quantity::opt_u256")]
    pub verification_gas_limit: Option<U256>,
    /// The `callGasLimit` the paymaster signed over, if it set one.
    #[serde(default, with = "quantity::opt_u256")]
    pub call_gas_limit: Option<U256>,
    /// The `maxFeePerGas` (wei per gas) the paymaster signed over, if it set one.
    #[serde(default, with = "quantity::opt_u256")]
    pub max_fee_per_gas: Option<U256>,
    /// The `maxPriorityFeePerGas` (wei per gas) the paymaster signed over, if it set one.
    #[serde(default, with = "quantity::opt_u256")]
    pub max_priority_fee_per_gas: Option<U256>,
}

impl SponsorResult {
    /// Inserts `paymasterAndData` and every gas value the paymaster set.
    pub fn apply_to(&self, op: &mut UserOperation) {
        op.paymaster_and_data = self.paymaster_and_data.clone();
        let fields = [
            (self.pre_verification_gas, &mut op.pre_verification_gas),
            (self.verification_gas_limit, &mut op.verification_gas_limit),
            (self.call_gas_limit, &mut op.call_gas_limit),
            (self.max_fee_per_gas, &mut op.max_fee_per_gas),
            (self.max_priority_fee_per_gas, &mut op.max_priority_fee_per_gas),
        ];
        for (value, field) in fields {
            if let Some(value) = value {
                *field = value;
            }
        }
    }
}

impl PaymasterClient {
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

    /// `pm_sponsor_userop(op, apiKey, entryPoint, context)`; the key also goes in `X-API-Key`.
    pub async fn sponsor_user_op(
        &self,
        op: &UserOperation,
        entry_point: Address,
        api_key: &str,
        context: SponsorContext,
    ) -> Result<SponsorResult> {
        let mut headers = HeaderMap::new();
        // A key that is not a valid header value still travels in the params.
        if let Ok(mut value) = HeaderValue::from_str(api_key) {
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static(API_KEY_HEADER), value);
        }
        self.transport.call("pm_sponsor_userop", (op, api_key, entry_point, context), headers).await
    }
}
