//! How the schemes plug into x402-rs 2.0.2: one [`ChainProvider`] per network (x402-rs' `P`,
//! shared by every scheme), and a blueprint per scheme that x402-rs' `SchemeRegistry` builds
//! into an `X402SchemeFacilitator` for each chain its `SchemeConfig` matches.
//!
//! - [`AaNativeBlueprint`] (`v2-eip155-aa-native`) wraps this crate's [`AaNative`].
//! - [`ExactBlueprint`] (`v2-eip155-exact`) hands x402-rs' own EIP-3009 `V2Eip155Exact` an
//!   [`ExactProvider`] — a signer over the network's node — instead of x402-rs'
//!   `Eip155ChainProvider`, whose constructor insists that Permit2 and the EIP-6492 validator
//!   are deployed (they are not on a devnet or on NERO), and wraps it in
//!   [`ExactFacilitator`] so its refusals reach the wire as the
//!   x402 v2 spec words them.
//!
//! When `exact` signs with the same key as aa-native's direct submission, both get the same
//! provider (`service.rs`), so one nonce manager numbers every transaction of that key.
//!
//! aa-native answers every verdict as `Ok(VerifyResponse(json))` / `Ok(SettleResponse(json))`
//! so NERO's reason strings reach the wire: x402-rs' `Err` path only knows its fixed
//! `ErrorReason` list.

use std::{sync::Arc, time::Duration};

use alloy::{
    network::TransactionBuilder,
    primitives::Address,
    providers::{DynProvider, Provider},
    rpc::types::{TransactionReceipt, TransactionRequest},
};
use x402_chain_eip155::{
    V2Eip155Exact,
    chain::{
        Eip155ChainReference, Eip155MetaTransactionProvider, MetaTransaction,
        MetaTransactionSendError,
    },
};
use x402_types::{
    chain::{ChainId, ChainProviderOps},
    proto,
    scheme::{
        X402SchemeFacilitator, X402SchemeFacilitatorBuilder, X402SchemeFacilitatorError,
        X402SchemeId,
    },
};

use crate::{aa_native::AaNative, exact::ExactFacilitator, nonce::KeySender};

/// x402-rs' per-chain provider for this facilitator: what each scheme needs on one network.
#[derive(Debug, Clone)]
pub struct ChainProvider {
    chain_id: u64,
    aa_native: Option<Arc<AaNative>>,
    exact: Option<Arc<ExactProvider>>,
}

impl ChainProvider {
    /// The schemes served on `chain_id`; either may be absent.
    pub fn new(
        chain_id: u64,
        aa_native: Option<Arc<AaNative>>,
        exact: Option<Arc<ExactProvider>>,
    ) -> Self {
        Self { chain_id, aa_native, exact }
    }

    fn signers(&self) -> Vec<Address> {
        let mut signers: Vec<Address> = self
            .aa_native
            .as_ref()
            .and_then(|aa| aa.signer())
            .into_iter()
            .chain(self.exact.as_ref().map(|e| e.sender.address))
            .collect();
        signers.dedup();
        signers
    }
}

impl ChainProviderOps for ChainProvider {
    fn signer_addresses(&self) -> Vec<String> {
        self.signers().iter().map(|a| a.to_checksum(None)).collect()
    }

    fn chain_id(&self) -> ChainId {
        ChainId::new("eip155", self.chain_id.to_string())
    }
}

/// The aa-native scheme for x402-rs' `SchemeBlueprints`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AaNativeBlueprint;

impl X402SchemeId for AaNativeBlueprint {
    fn namespace(&self) -> &str {
        "eip155"
    }

    fn scheme(&self) -> &str {
        x402_aa::x402::SCHEME
    }
}

impl X402SchemeFacilitatorBuilder<&ChainProvider> for AaNativeBlueprint {
    fn build(
        &self,
        provider: &ChainProvider,
        _config: Option<serde_json::Value>,
    ) -> Result<Box<dyn X402SchemeFacilitator>, Box<dyn std::error::Error>> {
        let aa = provider.aa_native.clone().ok_or_else(|| {
            format!("aa-native is not configured on eip155:{}", provider.chain_id)
        })?;
        Ok(Box::new(AaNativeFacilitator { aa, signers: provider.signer_addresses() }))
    }
}

/// aa-native on one chain, as x402-rs calls it.
#[derive(Debug)]
pub struct AaNativeFacilitator {
    aa: Arc<AaNative>,
    signers: Vec<String>,
}

#[async_trait::async_trait]
impl X402SchemeFacilitator for AaNativeFacilitator {
    async fn verify(
        &self,
        request: &proto::VerifyRequest,
    ) -> Result<proto::VerifyResponse, X402SchemeFacilitatorError> {
        Ok(proto::VerifyResponse(self.aa.verify(request.as_str()).await))
    }

    async fn settle(
        &self,
        request: &proto::SettleRequest,
    ) -> Result<proto::SettleResponse, X402SchemeFacilitatorError> {
        let response = self.aa.settle(request.as_str()).await;
        serde_json::to_value(response)
            .map(proto::SettleResponse)
            .map_err(|e| X402SchemeFacilitatorError::OnchainFailure(e.to_string()))
    }

    async fn supported(&self) -> Result<proto::SupportedResponse, X402SchemeFacilitatorError> {
        let chain_id = ChainId::new("eip155", self.aa.chain_id().to_string());
        Ok(proto::SupportedResponse {
            kinds: vec![proto::SupportedPaymentKind {
                x402_version: 2,
                scheme: x402_aa::x402::SCHEME.to_owned(),
                network: chain_id.to_string(),
                extra: Some(self.aa.supported_extra()),
            }],
            extensions: Vec::new(),
            signers: [(chain_id, self.signers.clone())].into_iter().collect(),
        })
    }
}

/// x402-rs' `exact` (EIP-3009 `transferWithAuthorization`) on this facilitator's networks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactBlueprint;

impl X402SchemeId for ExactBlueprint {
    fn namespace(&self) -> &str {
        V2Eip155Exact.namespace()
    }

    fn scheme(&self) -> &str {
        "exact"
    }
}

impl X402SchemeFacilitatorBuilder<&ChainProvider> for ExactBlueprint {
    fn build(
        &self,
        provider: &ChainProvider,
        config: Option<serde_json::Value>,
    ) -> Result<Box<dyn X402SchemeFacilitator>, Box<dyn std::error::Error>> {
        let exact = provider
            .exact
            .clone()
            .ok_or_else(|| format!("exact needs a signer key on eip155:{}", provider.chain_id))?;
        let inner = V2Eip155Exact.build(exact.clone(), config)?;
        Ok(Box::new(ExactFacilitator::new(inner, exact)))
    }
}

/// The `Eip155MetaTransactionProvider` x402-rs' `exact` scheme settles through: the network's
/// node plus one facilitator key that pays the gas of `transferWithAuthorization`.
#[derive(Debug)]
pub struct ExactProvider {
    chain: Eip155ChainReference,
    sender: KeySender,
    receipt_timeout: Duration,
}

impl ExactProvider {
    /// Settles with `sender`'s key (shared with every other sender of that key).
    pub fn new(chain_id: u64, sender: KeySender, receipt_timeout: Duration) -> Self {
        Self { chain: Eip155ChainReference::new(chain_id), sender, receipt_timeout }
    }

    /// The node, for reads.
    pub fn inner_provider(&self) -> &DynProvider {
        &self.sender.provider
    }
}

impl ChainProviderOps for ExactProvider {
    fn signer_addresses(&self) -> Vec<String> {
        vec![self.sender.address.to_checksum(None)]
    }

    fn chain_id(&self) -> ChainId {
        self.chain.as_chain_id()
    }
}

impl Eip155MetaTransactionProvider for ExactProvider {
    type Error = MetaTransactionSendError;
    type Inner = DynProvider;

    fn inner(&self) -> &Self::Inner {
        &self.sender.provider
    }

    fn chain(&self) -> &Eip155ChainReference {
        &self.chain
    }

    async fn send_transaction(
        &self,
        tx: MetaTransaction,
    ) -> Result<TransactionReceipt, Self::Error> {
        let request = TransactionRequest::default()
            .with_from(tx.from.unwrap_or(self.sender.address))
            .with_to(tx.to)
            .with_input(tx.calldata);
        // Estimate before the fillers run: a send whose estimate reverts (a replayed or
        // cancelled authorization) then never takes one of the key's nonces.
        let gas = self
            .sender
            .provider
            .estimate_gas(request.clone())
            .await
            .map_err(MetaTransactionSendError::Transport)?;
        let pending = match self.sender.provider.send_transaction(request.with_gas_limit(gas)).await
        {
            Ok(pending) => pending,
            Err(e) => {
                // Refused (or lost) after the key's nonce was taken: the next transaction takes
                // the node's count, so no gap is left behind.
                self.sender.resync().await;
                return Err(e.into());
            }
        };
        let receipt = pending
            .with_required_confirmations(tx.confirmations)
            .with_timeout(Some(self.receipt_timeout))
            .get_receipt()
            .await?;
        Ok(receipt)
    }
}
