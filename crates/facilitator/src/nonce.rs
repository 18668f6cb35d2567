//! The facilitator key's transactions: its signing provider and the nonces it numbers with.
//!
//! alloy's cached nonce manager takes a nonce before the transaction is broadcast and never
//! looks back, so a send the node refused (the key ran out of gas money, a fee below the node's
//! floor) leaves a gap: every later transaction of the key then waits behind a nonce that will
//! never be used, and settlement stops until a restart. [`Nonces`] numbers the same way but can
//! be told to [`Nonces::resync`], which makes the next transaction ask the node for the key's
//! pending count again: right whether the doubtful transaction reached the pool or not.

use std::{collections::HashMap, sync::Arc, time::Duration};

use alloy::{
    network::{EthereumWallet, Network},
    primitives::Address,
    providers::{DynProvider, Provider, ProviderBuilder, fillers::NonceManager},
    signers::local::PrivateKeySigner,
    transports::TransportResult,
};
use tokio::sync::Mutex;

/// A key's signing provider: gas, fees and chain id filled by alloy, the nonce from [`Nonces`].
/// One per key, shared by every sender of the key, so its nonces never collide.
#[derive(Clone, Debug)]
pub struct KeySender {
    /// Signs with the key.
    pub provider: DynProvider,
    /// The nonces `provider` numbers with.
    nonces: Nonces,
    /// The key's address.
    pub address: Address,
}

impl KeySender {
    /// The key's sender on the node at `url`, whose HTTP requests give up after
    /// `request_timeout`: callers bound what they wait for more tightly, but a read made through
    /// this provider by code that does not (x402-rs' `exact` scheme reads through it) must not
    /// hang on a stalled node for ever. Give it the longest a request may take: a one-call send
    /// waits for its receipt.
    pub fn connect(url: url::Url, signer: PrivateKeySigner, request_timeout: Duration) -> Self {
        let (nonces, address) = (Nonces::default(), signer.address());
        let client = x402_aa_rpc::bounded_http_client(request_timeout);
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_nonce_management(nonces.clone())
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_reqwest(client, url)
            .erased();
        Self { provider, nonces, address }
    }

    /// Makes the key's next transaction take the node's pending count (see [`Nonces::resync`]).
    pub async fn resync(&self) {
        self.nonces.resync(self.address).await;
    }
}

/// Next nonce per key.
#[derive(Clone, Debug, Default)]
pub struct Nonces {
    next: Arc<Mutex<HashMap<Address, u64>>>,
}

impl Nonces {
    /// Forgets `address`'s count: its next transaction takes the node's pending count.
    pub async fn resync(&self, address: Address) {
        self.next.lock().await.remove(&address);
    }
}

#[async_trait::async_trait]
impl NonceManager for Nonces {
    async fn get_next_nonce<P, N>(&self, provider: &P, address: Address) -> TransportResult<u64>
    where
        P: Provider<N>,
        N: Network,
    {
        // Held across the node read, so two first transactions cannot both take its count.
        let mut next = self.next.lock().await;
        let nonce = match next.get(&address) {
            Some(nonce) => *nonce,
            None => provider.get_transaction_count(address).pending().await?,
        };
        next.insert(address, nonce + 1);
        Ok(nonce)
    }
}
