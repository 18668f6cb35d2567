//! The comparison facilitator: x402-rs 2.0.2 as its own crates ship it — `Eip155ChainProvider`
//! (its signer/nonce/gas stack), `V2Eip155Exact` (EIP-3009 `exact`), `FacilitatorLocal` and the
//! axum `handlers::routes()` — serving the same anvil as ours, and EIP-3009 payloads signed by
//! x402-rs' own client (`V2Eip155ExactClient`) for the devnet's `TestEip3009Token`.
//!
//! `Eip155ChainProvider::from_config` refuses to start unless the EIP-6492 validator, Permit2
//! and x402's Permit2 proxy have code. An EOA-signed EIP-3009 `/verify` never calls any of
//! them, so the bench puts a one-byte placeholder (`STOP`) at those addresses rather than
//! forking x402-rs' provider.

use std::{collections::HashMap, sync::Arc};

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::ext::AnvilApi,
    signers::local::PrivateKeySigner,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};
use x402_aa_devnet::Devnet;
use x402_chain_eip155::{
    V2Eip155Exact, V2Eip155ExactClient,
    chain::{
        Eip155ChainProvider, Eip155ChainReference,
        config::{Eip155ChainConfig, Eip155ChainConfigInner},
        permit2::{EXACT_PERMIT2_PROXY_ADDRESS, PERMIT2_ADDRESS},
    },
    v1_eip155_exact::VALIDATOR_ADDRESS,
};
use x402_facilitator_local::{FacilitatorLocal, handlers};
use x402_types::{
    chain::{ChainId, ChainRegistry, FromConfig},
    proto::PaymentRequired,
    scheme::{
        SchemeBlueprints, SchemeConfig, SchemeRegistry, X402SchemeFacilitator,
        X402SchemeFacilitatorBuilder, X402SchemeId, client::X402SchemeClient,
    },
};

/// EIP-712 domain of the devnet's `TestEip3009Token` (what USDC's `extra` carries).
const TOKEN_NAME: &str = "Devnet USD Coin";
const TOKEN_VERSION: &str = "2";

/// x402-rs' `exact` blueprint over its own provider, as x402-rs' facilitator binary wires it
/// (there over its multi-chain provider enum).
struct Exact;

impl X402SchemeId for Exact {
    fn namespace(&self) -> &str {
        V2Eip155Exact.namespace()
    }

    fn scheme(&self) -> &str {
        V2Eip155Exact.scheme()
    }
}

impl X402SchemeFacilitatorBuilder<&Arc<Eip155ChainProvider>> for Exact {
    fn build(
        &self,
        provider: &Arc<Eip155ChainProvider>,
        config: Option<Value>,
    ) -> Result<Box<dyn X402SchemeFacilitator>, Box<dyn std::error::Error>> {
        V2Eip155Exact.build(provider.clone(), config)
    }
}

/// A running x402-rs facilitator on 127.0.0.1.
pub(crate) struct X402rsFacilitator {
    pub(crate) url: String,
    task: JoinHandle<()>,
}

impl Drop for X402rsFacilitator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn start(
    devnet: &Devnet,
    key: &PrivateKeySigner,
) -> anyhow::Result<X402rsFacilitator> {
    for placeholder in [VALIDATOR_ADDRESS, PERMIT2_ADDRESS, EXACT_PERMIT2_PROXY_ADDRESS] {
        devnet.provider().anvil_set_code(placeholder, Bytes::from_static(&[0x00])).await?;
    }
    let chain_id = devnet.chain_id();
    let inner: Eip155ChainConfigInner = serde_json::from_value(json!({
        "signers": [format!("0x{}", alloy::hex::encode(key.to_bytes()))],
        "rpc": [{ "http": devnet.rpc_url() }],
    }))?;
    let config = Eip155ChainConfig { chain_reference: Eip155ChainReference::new(chain_id), inner };
    let provider = Arc::new(
        Eip155ChainProvider::from_config(&config)
            .await
            .map_err(|e| anyhow::anyhow!("x402-rs provider: {e}"))?,
    );
    let caip2 = ChainId::new("eip155", chain_id.to_string());
    let chains = ChainRegistry::new(HashMap::from([(caip2.clone(), provider)]));
    let schemes: Vec<SchemeConfig> = serde_json::from_value(json!([
        { "id": "v2-eip155-exact", "chains": caip2.to_string() }
    ]))?;
    let registry =
        SchemeRegistry::build(chains, SchemeBlueprints::new().and_register(Exact), &schemes);
    let app = handlers::routes().with_state(Arc::new(FacilitatorLocal::new(registry)));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(X402rsFacilitator { url, task })
}

/// The merchant's `exact` requirements for the devnet's EIP-3009 token.
pub(crate) fn requirements(devnet: &Devnet, pay_to: Address, amount: U256) -> Value {
    json!({
        "scheme": "exact",
        "network": format!("eip155:{}", devnet.chain_id()),
        "amount": amount.to_string(),
        "payTo": pay_to.to_checksum(None),
        "asset": devnet.addresses.eip3009_token.to_checksum(None),
        "maxTimeoutSeconds": 300,
        "extra": { "name": TOKEN_NAME, "version": TOKEN_VERSION },
    })
}

/// `n` `/verify` bodies, each a distinct EIP-3009 authorization (random nonce) signed by
/// x402-rs' own client for `payer`.
pub(crate) async fn verify_bodies(
    payer: &PrivateKeySigner,
    requirements: &Value,
    n: usize,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let required = PaymentRequired::V2(serde_json::from_value(json!({
        "x402Version": 2,
        "resource": { "url": "http://127.0.0.1/bench", "description": "", "mimeType": "application/json" },
        "accepts": [requirements],
    }))?);
    let client = V2Eip155ExactClient::new(payer.clone());
    let mut bodies = Vec::with_capacity(n);
    for _ in 0..n {
        let candidate = client.accept(&required).into_iter().next().ok_or_else(|| {
            anyhow::anyhow!("x402-rs' exact client accepts none of {requirements}")
        })?;
        let header = candidate.signer.sign_payment().await?;
        let payload: Value = x402_aa::x402::decode_header(&header)?;
        bodies.push(serde_json::to_vec(&json!({
            "x402Version": 2,
            "paymentPayload": payload,
            "paymentRequirements": requirements,
        }))?);
    }
    Ok(bodies)
}
