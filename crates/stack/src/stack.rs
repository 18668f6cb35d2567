//! Paymaster service, facilitator and example paid API on a devnet.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use tokio::task::JoinHandle;
use x402_aa_devnet::Devnet;
use x402_aa_facilitator::{
    ChainConfig, Config, FacilitatorHandle, FacilitatorService, KeySource,
    config::{AccountsConfig, BiconomyAccounts},
};
use x402_aa_paymaster::{PaymasterConfig, PaymasterHandle, PaymasterService};
use x402_aa_paywall::{Paywall, Token, price_tag};

use crate::StackError;

/// The paid route of the example API (`x402_aa_paywall::demo::router`).
pub const PAID_ROUTE: &str = "/joke";

/// What differs between the places that start a [`LocalStack`]. The rest is fixed by the devnet:
/// its VerifyingPaymaster, settlement contract, session-account factory and USDT.
#[derive(Debug, Clone)]
pub struct StackOptions {
    facilitator_key: PrivateKeySigner,
    merchant: Address,
    price: String,
    registry: Option<PathBuf>,
    paymaster_bind: SocketAddr,
    paymaster_api_key: String,
}

impl StackOptions {
    /// `facilitator_key` submits `handleOps` (a funded devnet key, so no bundler is needed);
    /// `merchant` is paid `price` (e.g. `"0.01 USDT"`) per call of the paid API. The paymaster
    /// listens on any free local port with API key `"local"`; the facilitator's registry is a
    /// temporary file.
    pub fn new(facilitator_key: PrivateKeySigner, merchant: Address, price: &str) -> Self {
        Self {
            facilitator_key,
            merchant,
            price: price.to_owned(),
            registry: None,
            paymaster_bind: ([127, 0, 0, 1], 0).into(),
            paymaster_api_key: "local".to_owned(),
        }
    }

    /// Keeps the facilitator's SQLite registry at `path` (replaced at start, left in place at
    /// shutdown for inspection) instead of a temporary file deleted with the stack.
    pub fn registry(mut self, path: impl Into<PathBuf>) -> Self {
        self.registry = Some(path.into());
        self
    }

    /// Where the paymaster service listens, for clients configured with a fixed URL.
    pub fn paymaster_bind(mut self, addr: SocketAddr) -> Self {
        self.paymaster_bind = addr;
        self
    }

    /// The API key the paymaster service accepts.
    pub fn paymaster_api_key(mut self, key: impl Into<String>) -> Self {
        self.paymaster_api_key = key.into();
        self
    }
}

/// The devnet's VerifyingPaymaster service configuration (default sponsor policy), accepting
/// `api_key`; adjust its `policy` before starting it where the defaults do not fit.
pub fn paymaster_config(devnet: &Devnet, api_key: &str) -> PaymasterConfig {
    PaymasterConfig::new(
        devnet.rpc_url().to_owned(),
        devnet.chain_id(),
        devnet.addresses.verifying_paymaster,
        devnet.keys.paymaster_signer.clone(),
        vec![api_key.to_owned()],
    )
}

/// Our facilitator on the devnet: direct `handleOps` submission from `key`, the devnet's USDT
/// only, counterfactual session accounts checked against its factory, Kernel, Safe and the
/// devnet's Biconomy deployment recognised, a SQLite registry at
/// `registry`, listening on any free local port.
pub fn facilitator_config(devnet: &Devnet, key: &PrivateKeySigner, registry: &Path) -> Config {
    let a = devnet.addresses;
    let b = devnet.biconomy;
    // Kernel and Safe sit at their canonical addresses on the devnet; Biconomy's build does not.
    let accounts = AccountsConfig {
        biconomy: Some(BiconomyAccounts {
            factory: b.factory,
            implementation: b.implementation,
            ecdsa_module: b.ecdsa_module,
        }),
        ..AccountsConfig::default()
    };
    let chain = ChainConfig {
        session_account_factory: Some(a.session_account_factory),
        accounts,
        allowed_tokens: vec![a.token],
        ..ChainConfig::with_direct(devnet.rpc_url(), a.settlement, KeySource::literal(key))
    };
    Config {
        bind: ([127, 0, 0, 1], 0).into(),
        registry_url: format!("sqlite:{}", registry.display()),
        ..Config::single(devnet.chain_id(), chain)
    }
}

/// Everything an agent pays through on a devnet, all on 127.0.0.1. Dropping it stops every
/// service without waiting; [`LocalStack::shutdown`] waits.
#[derive(Debug)]
pub struct LocalStack {
    /// `pm_sponsor_userop` for the devnet's VerifyingPaymaster.
    pub paymaster: PaymasterHandle,
    /// Our facilitator: aa-native `/verify` and `/settle`, direct `handleOps` submission.
    pub facilitator: FacilitatorHandle,
    /// Base URL of the example paid API (no trailing slash); see [`LocalStack::paid_url`].
    pub api_url: String,
    /// Who the paid API charges for.
    pub merchant: Address,
    api: ApiServer,
    /// Holds the temporary registry, if no path was given; deleted on drop.
    _registry_dir: Option<tempfile::TempDir>,
}

impl LocalStack {
    /// Starts the paymaster service, the facilitator (accepting the devnet's USDT, checking
    /// counterfactual session accounts against its factory) and the paid API in front of it.
    pub async fn start(devnet: &Devnet, options: StackOptions) -> Result<Self, StackError> {
        let a = devnet.addresses;
        let paymaster =
            PaymasterService::new(paymaster_config(devnet, &options.paymaster_api_key))?
                .bind(options.paymaster_bind)
                .await?;

        let (registry, registry_dir) = match options.registry {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(StackError::io("registry directory"))?;
                }
                // A fresh registry: rows of an earlier devnet's chain mean nothing on this one
                // (SQLite's WAL files go too, or they would be replayed into the new file).
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
                (path, None)
            }
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("x402-aa-stack-")
                    .tempdir()
                    .map_err(StackError::io("temporary registry directory"))?;
                (dir.path().join("facilitator.sqlite"), Some(dir))
            }
        };
        let config = facilitator_config(devnet, &options.facilitator_key, &registry);
        let facilitator = FacilitatorService::new(config).await?.bind().await?;

        let token = Token::new(a.token, "USDT", 6);
        let tag =
            price_tag(devnet.chain_id(), options.merchant, &options.price, &token, a.settlement)?;
        let app = x402_aa_paywall::demo::router(Paywall::new(&facilitator.url())?.layer([tag])?);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(StackError::io("paid API listener"))?;
        let api_url = format!(
            "http://{}",
            listener.local_addr().map_err(StackError::io("paid API listener"))?
        );
        let api = ApiServer(tokio::spawn(async move { axum::serve(listener, app).await }));
        Ok(Self {
            paymaster,
            facilitator,
            api_url,
            merchant: options.merchant,
            api,
            _registry_dir: registry_dir,
        })
    }

    /// The paid route's full URL.
    pub fn paid_url(&self) -> String {
        format!("{}{PAID_ROUTE}", self.api_url)
    }

    /// Stops the paid API, then lets the facilitator and the paymaster finish in-flight
    /// requests; every service is stopped even if an earlier one reports an error (the first
    /// error is returned).
    pub async fn shutdown(self) -> Result<(), StackError> {
        let Self { paymaster, facilitator, api, _registry_dir, .. } = self;
        drop(api);
        let facilitator =
            facilitator.shutdown().await.map_err(StackError::io("facilitator shutdown"));
        let paymaster = paymaster.shutdown().await.map_err(StackError::from);
        facilitator.and(paymaster)
    }
}

/// The paid API's server task, aborted when dropped (as the other handles stop on drop).
#[derive(Debug)]
struct ApiServer(JoinHandle<std::io::Result<()>>);

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}
