use alloy::{
    primitives::{Address, Bytes, U256},
    signers::local::PrivateKeySigner,
};
use serde_json::Value;
use x402_aa::{UserOperation, encode_payment_batch};
use x402_aa_devnet::Devnet;
use x402_aa_paymaster::{PaymasterConfig, PaymasterHandle, PaymasterService, SponsorPolicy};
use x402_aa_rpc::{PaymasterClient, RetryPolicy, RpcError};

pub(crate) const API_KEY: &str = "devnet-test-key";
/// One dollar in TestStablecoin units (6 decimals).
pub(crate) const USD: u64 = 1_000_000;

/// A devnet with the paymaster service serving in front of its VerifyingPaymaster.
pub(crate) struct Env {
    pub(crate) devnet: Devnet,
    pub(crate) handle: PaymasterHandle,
    /// No retries, so a throttled answer surfaces at once.
    pub(crate) client: PaymasterClient,
}

pub(crate) fn config(devnet: &Devnet, policy: SponsorPolicy) -> PaymasterConfig {
    PaymasterConfig::new(
        devnet.rpc_url(),
        devnet.chain_id(),
        devnet.addresses.verifying_paymaster,
        devnet.keys.paymaster_signer.clone(),
        vec!["another-key".into(), API_KEY.into()],
    )
    .with_policy(policy)
}

/// The default policy without simulation, for tests of the RPC surface whose ops come from
/// senders that do not exist (a simulation refuses those with AA20).
pub(crate) fn unsimulated() -> SponsorPolicy {
    SponsorPolicy { simulate: false, ..SponsorPolicy::default() }
}

pub(crate) async fn start(policy: SponsorPolicy) -> anyhow::Result<Env> {
    let devnet = Devnet::spawn().await?;
    let service = PaymasterService::new(config(&devnet, policy))?;
    let handle = service.bind(([127, 0, 0, 1], 0).into()).await?;
    let client = PaymasterClient::new(&handle.url())?.with_retry(RetryPolicy::none());
    Ok(Env { devnet, handle, client })
}

/// An unsigned payment op (approve + settle through `executeBatch`) with gas values a deployed
/// SimpleAccount needs, its `verificationGasLimit` left for the paymaster to raise.
pub(crate) fn payment_op(
    devnet: &Devnet,
    sender: Address,
    nonce: u64,
    request: &str,
) -> UserOperation {
    let a = devnet.addresses;
    UserOperation {
        sender,
        nonce: U256::from(nonce),
        init_code: Bytes::new(),
        call_data: encode_payment_batch(
            a.token,
            a.settlement,
            devnet.keys.spare[1].address(),
            U256::from(USD),
            alloy::primitives::keccak256(request),
        ),
        call_gas_limit: U256::from(300_000),
        verification_gas_limit: U256::from(40_000),
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: U256::from(3_000_000_000u64),
        max_priority_fee_per_gas: U256::from(1_000_000_000u64),
        paymaster_and_data: Bytes::new(),
        signature: Bytes::new(),
    }
}

/// A deployed SimpleAccount of `owner` holding 10 USD.
pub(crate) async fn funded_account(
    devnet: &Devnet,
    owner: &PrivateKeySigner,
) -> anyhow::Result<Address> {
    let account = devnet.create_simple_account(owner.address(), U256::ZERO).await?;
    devnet.mint(account, U256::from(10 * USD)).await?;
    Ok(account)
}

/// POSTs `body` as-is; returns the HTTP status and the body parsed as JSON (Null if empty).
pub(crate) async fn post_raw(
    url: &str,
    body: impl Into<reqwest::Body>,
    api_key: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request =
        reqwest::Client::new().post(url).header("content-type", "application/json").body(body);
    if let Some(key) = api_key {
        request = request.header("X-API-Key", key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes)? };
    Ok((status, value))
}

/// `(code, message, data.reason)` of a JSON-RPC error.
pub(crate) fn json_rpc_error(error: &RpcError) -> (i64, &str, &str) {
    match error {
        RpcError::JsonRpc { code, message, data, .. } => (
            *code,
            message.as_str(),
            data.as_ref().and_then(|d| d["reason"].as_str()).unwrap_or_default(),
        ),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

/// `validUntil` inside `paymasterAndData`.
pub(crate) fn valid_until(pnd: &[u8]) -> u64 {
    U256::from_be_slice(&pnd[20..52]).to::<u64>()
}
