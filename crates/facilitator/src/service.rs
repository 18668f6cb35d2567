//! Wiring: config → networks, registry, submitters → x402-rs scheme registry → HTTP service.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use alloy::signers::local::PrivateKeySigner;
use tokio::net::TcpListener;
use x402_aa_rpc::{BundlerClient, RetryPolicy};
use x402_facilitator_local::FacilitatorLocal;
use x402_types::{
    chain::{ChainId, ChainIdPattern, ChainRegistry},
    scheme::{SchemeBlueprints, SchemeConfig, SchemeHandlerSlug, SchemeRegistry},
};

use crate::{
    AA_NATIVE_SCHEME_ID, EXACT_SCHEME_ID, Error, Result,
    aa_native::{AaNative, Recovery},
    chain::Network,
    config::{ChainConfig, Config, ConfigError, SubmissionConfig, resolve_env},
    nonce::KeySender,
    scheme::{AaNativeBlueprint, ChainProvider, ExactBlueprint, ExactProvider},
    server::{self, AppState, FacilitatorHandle},
    store::{self, Store},
    submit::{BatchConfig, Batcher, Submitter},
};

/// A configured facilitator, networks reachable and registry open, not yet listening.
#[derive(Debug)]
pub struct FacilitatorService {
    state: Arc<AppState>,
    bind: SocketAddr,
    recovery_interval: Option<Duration>,
    stale_after: Duration,
}

impl FacilitatorService {
    /// Builds everything from `config`, reading keys and `$VAR`s from the process environment,
    /// then runs start-up recovery of open registry rows.
    pub async fn new(config: Config) -> Result<Self> {
        Self::with_env(config, |name| std::env::var(name).ok()).await
    }

    /// [`FacilitatorService::new`] with environment lookups through `lookup`.
    pub async fn with_env(config: Config, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let registry_url = resolve_env(&config.registry_url, "registry_url", &lookup)?;
        let schemes = config.scheme_configs()?;
        let receipt_timeout = config.receipt_timeout();

        // Every node is checked before the registry is opened, so a bad config creates nothing.
        let mut networks = Vec::new();
        for (chain_id, chain) in config.chain_ids()? {
            let caip2 = ChainId::new("eip155", chain_id.to_string());
            let enabled = |id: &str| {
                schemes.iter().any(|s| s.enabled && s.id == id && s.chains.matches(&caip2))
            };
            let (aa_on, exact_on) = (enabled(AA_NATIVE_SCHEME_ID), enabled(EXACT_SCHEME_ID));
            if aa_on || exact_on {
                let net = network(chain_id, chain, &lookup).await?;
                networks.push((chain_id, chain, caip2, net, aa_on, exact_on));
            }
        }
        let store = store::open(&registry_url).await?;

        let mut providers = HashMap::new();
        // One signing provider per (chain, key): its nonce manager then numbers every
        // transaction of the key, whichever scheme sends it.
        let mut signing = Signing::default();
        let mut aa_native = BTreeMap::new();
        let mut routes = HashSet::new();
        for (chain_id, chain, caip2, net, aa_on, exact_on) in networks {
            let aa = if aa_on {
                let submitter = submitter(&net, chain, receipt_timeout, &lookup, &mut signing)?;
                let aa = AaNative::new(
                    net.clone(),
                    store.clone(),
                    submitter,
                    receipt_timeout,
                    config.instance_id.clone(),
                );
                routes.insert(SchemeHandlerSlug::new(
                    caip2.clone(),
                    2,
                    x402_aa::x402::SCHEME.into(),
                ));
                Some(Arc::new(aa))
            } else {
                None
            };
            let exact = if exact_on {
                let key = chain.exact_signer.clone().or_else(|| chain.submission.direct_key());
                let key = key.ok_or_else(|| ConfigError::Chain {
                    chain: caip2.to_string(),
                    why: "exact needs exact_signer or a direct-submission key".into(),
                })?;
                let signer = key.resolve(&format!("{caip2} exact_signer"), &lookup)?;
                let sender = signing.sender(chain_id, chain, signer, receipt_timeout, &lookup)?;
                routes.insert(SchemeHandlerSlug::new(caip2.clone(), 2, "exact".into()));
                Some(Arc::new(ExactProvider::new(chain_id, sender, receipt_timeout)))
            } else {
                None
            };
            if let Some(aa) = &aa {
                aa_native.insert(chain_id, aa.clone());
            }
            providers.insert(caip2, ChainProvider::new(chain_id, aa, exact));
        }
        if routes.is_empty() {
            return Err(ConfigError::Invalid("no scheme is enabled on any chain".into()).into());
        }

        let blueprints =
            SchemeBlueprints::new().and_register(AaNativeBlueprint).and_register(ExactBlueprint);
        let registry = SchemeRegistry::build(ChainRegistry::new(providers), blueprints, &schemes);
        let state = Arc::new(AppState {
            facilitator: FacilitatorLocal::new(registry),
            routes,
            aa_native,
            store,
            max_body_bytes: config.max_body_bytes,
            payment_ids: Default::default(),
        });
        let service = Self {
            state,
            bind: config.bind,
            recovery_interval: (config.recovery_interval_ms > 0)
                .then(|| Duration::from_millis(config.recovery_interval_ms)),
            stale_after: config.stale_after(),
        };
        for (chain_id, result) in service.recover().await {
            if let Err(e) = result {
                tracing::warn!(
                    target: "x402_aa::facilitator",
                    chain_id, error = %e, "start-up recovery incomplete; the background pass retries"
                );
            }
        }
        Ok(service)
    }

    /// The routes, for embedding in a larger axum app.
    pub fn router(&self) -> axum::Router {
        server::router(self.state.clone())
    }

    /// The aa-native service of a chain, for direct (non-HTTP) use.
    pub fn aa_native(&self, chain_id: u64) -> Option<&Arc<AaNative>> {
        self.state.aa_native.get(&chain_id)
    }

    /// The settlement registry shared by every network, for inspection and recovery.
    pub fn registry(&self) -> &Arc<dyn Store> {
        &self.state.store
    }

    /// One recovery pass over every aa-native network (see [`AaNative::recover`]).
    pub async fn recover(&self) -> Vec<(u64, std::result::Result<Recovery, crate::Rejection>)> {
        let mut out = Vec::new();
        for (chain_id, aa) in &self.state.aa_native {
            out.push((*chain_id, aa.recover(self.stale_after).await));
        }
        out
    }

    /// Listens on the configured address.
    pub async fn bind(self) -> Result<FacilitatorHandle> {
        let listener = TcpListener::bind(self.bind).await.map_err(Error::Io)?;
        self.serve(listener).await
    }

    /// Serves on `listener` (e.g. `127.0.0.1:0` in tests) and starts background recovery.
    pub async fn serve(self, listener: TcpListener) -> Result<FacilitatorHandle> {
        let mut background = Vec::new();
        if let Some(interval) = self.recovery_interval {
            for aa in self.state.aa_native.values() {
                let (aa, stale_after) = (aa.clone(), self.stale_after);
                background.push(tokio::spawn(async move {
                    let mut ticker = tokio::time::interval(interval);
                    ticker.tick().await;
                    loop {
                        ticker.tick().await;
                        if let Err(e) = aa.recover(stale_after).await {
                            tracing::warn!(
                                target: "x402_aa::facilitator",
                                chain_id = aa.chain_id(), error = %e, "recovery pass failed"
                            );
                        }
                    }
                }));
            }
        }
        let handle = server::serve(self.state, listener, background).await.map_err(Error::Io)?;
        tracing::info!(target: "x402_aa::facilitator", addr = %handle.local_addr(), "listening");
        Ok(handle)
    }
}

/// A network's node, checked to be the chain the config names.
async fn network(
    chain_id: u64,
    chain: &ChainConfig,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Network> {
    let caip2 = format!("eip155:{chain_id}");
    let rpc_url = resolve_env(&chain.rpc_url, &format!("{caip2} rpc_url"), lookup)?;
    let net = Network::new(
        chain_id,
        &rpc_url,
        chain.entry_point,
        chain.settlement_contract,
        chain.session_account_factory,
        chain.allowed_tokens.clone(),
        chain.rpc_timeout(),
        chain.log_lookback_blocks,
    )
    .map_err(|e| ConfigError::Chain { chain: caip2.clone(), why: format!("rpc_url: {e}") })?
    .with_accounts(&chain.accounts);
    let on_node = net
        .chain_id_on_node()
        .await
        .map_err(|e| Error::Chain { chain_id, message: e.to_string() })?;
    if on_node != chain_id {
        return Err(Error::Chain {
            chain_id,
            message: format!("the node at rpc_url serves chain {on_node}"),
        });
    }
    Ok(net)
}

fn submitter(
    net: &Network,
    chain: &ChainConfig,
    receipt_timeout: Duration,
    lookup: &impl Fn(&str) -> Option<String>,
    signing: &mut Signing,
) -> Result<Submitter> {
    let caip2 = format!("eip155:{}", net.chain_id);
    match &chain.submission {
        SubmissionConfig::Bundler { url, poll_interval_ms, request_timeout_ms } => {
            let url = resolve_env(url, &format!("{caip2} bundler url"), lookup)?;
            let client = BundlerClient::new(&url)
                .map_err(|e| ConfigError::Chain { chain: caip2, why: e.to_string() })?
                .with_timeout(Duration::from_millis(*request_timeout_ms))
                // A settlement waits on these retries; keep them short (the receipt bound is
                // what callers budget for).
                .with_retry(RetryPolicy {
                    max_retries: 2,
                    initial_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(1),
                });
            Ok(Submitter::Bundler {
                client,
                poll_interval: Duration::from_millis((*poll_interval_ms).max(10)),
            })
        }
        SubmissionConfig::Direct { max_batch, max_wait_ms, .. } => {
            let key = chain
                .submission
                .direct_key()
                .unwrap_or(crate::config::KeySource { private_key_env: None, private_key: None });
            let signer = key.resolve(&format!("{caip2} direct submission"), lookup)?;
            let sender = signing.sender(net.chain_id, chain, signer, receipt_timeout, lookup)?;
            let config = BatchConfig {
                max_batch: *max_batch,
                max_wait: Duration::from_millis(*max_wait_ms),
                receipt_timeout,
            };
            Ok(Submitter::Direct(Batcher::spawn(net.clone(), sender, config)))
        }
    }
}

/// Signing providers by (chain, key), so two schemes sending from one key share its nonces.
#[derive(Default)]
struct Signing(HashMap<(u64, alloy::primitives::Address), KeySender>);

impl Signing {
    fn sender(
        &mut self,
        chain_id: u64,
        chain: &ChainConfig,
        signer: PrivateKeySigner,
        receipt_timeout: Duration,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<KeySender> {
        let key = (chain_id, signer.address());
        if let Some(known) = self.0.get(&key) {
            return Ok(known.clone());
        }
        let caip2 = format!("eip155:{chain_id}");
        let rpc_url = resolve_env(&chain.rpc_url, &format!("{caip2} rpc_url"), lookup)?;
        let url: url::Url = rpc_url.parse().map_err(|e: url::ParseError| ConfigError::Chain {
            chain: caip2,
            why: e.to_string(),
        })?;
        // The longest request: a one-call send that waits for its receipt.
        let request_timeout = receipt_timeout + chain.rpc_timeout();
        let sender = KeySender::connect(url, signer, request_timeout);
        self.0.insert(key, sender.clone());
        Ok(sender)
    }
}

/// Whether `config` enables `scheme_id` on `chain_id` (for callers building configs).
pub fn scheme_enabled(schemes: &[SchemeConfig], scheme_id: &str, chain_id: u64) -> bool {
    let chain = ChainId::new("eip155", chain_id.to_string());
    schemes.iter().any(|s| s.enabled && s.id == scheme_id && s.chains.matches(&chain))
}

/// `v2-eip155-exact` enabled on exactly `chain_id`, for [`Config::schemes`].
pub fn exact_on(chain_id: u64) -> SchemeConfig {
    SchemeConfig {
        enabled: true,
        id: EXACT_SCHEME_ID.to_owned(),
        chains: ChainIdPattern::exact("eip155", chain_id.to_string()),
        config: None,
    }
}

/// `v2-eip155-aa-native` on every eip155 chain, for [`Config::schemes`].
pub fn aa_native_everywhere() -> SchemeConfig {
    SchemeConfig {
        enabled: true,
        id: AA_NATIVE_SCHEME_ID.to_owned(),
        chains: ChainIdPattern::wildcard("eip155"),
        config: None,
    }
}
