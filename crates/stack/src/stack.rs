//! Paymaster service, facilitator and example paid API on a devnet.
//!
//! The facilitator serves aa-native and x402's EIP-3009 `exact` (both from its one key, whose
//! nonces it numbers in one place), and the paid API offers both on its paid route, so the
//! official x402 clients (`@x402/fetch`, x402-rs) pay it with a plain key as our agents pay it
//! with a session key or an owner key.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use tokio::task::JoinHandle;
use x402_aa_contracts::{SessionKeyAccountFactory, SimpleAccountFactory};
use x402_aa_devnet::Devnet;
use x402_aa_facilitator::{
    ChainConfig, Config, FacilitatorHandle, FacilitatorService, KeySource, aa_native_everywhere,
    config::{AccountsConfig, BiconomyAccounts},
    exact_on,
};
use x402_aa_paymaster::{PaymasterConfig, PaymasterHandle, PaymasterService};
use x402_aa_paywall::{Eip712Domain, Paywall, Token, exact_price_tag, price_tag};

use crate::{
    StackError,
    info::{
        ContractsInfo, FacilitatorInfo, FundedKey, Holding, PaidApiInfo, PaymasterInfo, PriceInfo,
        StackInfo, TokenInfo,
    },
};

/// The devnet's EIP-3009 token (`TestEip3009Token`), as `exact` requirements name it.
pub const EXACT_TOKEN_SYMBOL: &str = "USDC";
/// Its EIP-712 domain `name` (`extra.name` / `extra.version` of `exact` requirements).
pub const EXACT_TOKEN_EIP712_NAME: &str = "Devnet USD Coin";
/// Its EIP-712 domain `version`.
pub const EXACT_TOKEN_EIP712_VERSION: &str = "2";
/// Both devnet tokens have 6 decimals.
const DECIMALS: u8 = 6;

/// The paid route of the example API (`x402_aa_paywall::demo::router`).
pub const PAID_ROUTE: &str = "/joke";

/// What differs between the places that start a [`LocalStack`]. The rest is fixed by the devnet:
/// its VerifyingPaymaster, settlement contract, session-account factory and USDT.
#[derive(Debug, Clone)]
pub struct StackOptions {
    facilitator_key: PrivateKeySigner,
    merchant: Address,
    price: String,
    exact_price: Option<String>,
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
            exact_price: None,
            registry: None,
            paymaster_bind: ([127, 0, 0, 1], 0).into(),
            paymaster_api_key: "local".to_owned(),
        }
    }

    /// The paid route's `exact` price in the devnet's USDC (default: the aa-native price's
    /// number, e.g. `"0.01 USDT"` → `"0.01 USDC"`).
    pub fn exact_price(mut self, price: impl Into<String>) -> Self {
        self.exact_price = Some(price.into());
        self
    }

    fn exact_price_or_default(&self) -> String {
        self.exact_price.clone().unwrap_or_else(|| {
            let number = self.price.split_whitespace().next().unwrap_or_default();
            format!("{number} {EXACT_TOKEN_SYMBOL}")
        })
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

/// Our facilitator on the devnet: aa-native and `exact`, both sending from `key` (aa-native's
/// direct `handleOps` submission, `exact`'s `transferWithAuthorization`), aa-native in the
/// devnet's USDT only, counterfactual session accounts checked against its factory, Kernel, Safe
/// and the devnet's Biconomy deployment recognised, a SQLite
/// registry at `registry`, listening on any free local port.
pub fn facilitator_config(devnet: &Devnet, key: &PrivateKeySigner, registry: &Path) -> Config {
    let a = devnet.addresses;
    let b = devnet.biconomy;
    // Kernel and Safe sit at their canonical addresses on the devnet; Biconomy's build does not.
    let mut accounts = AccountsConfig {
        biconomy: Some(BiconomyAccounts {
            factory: b.factory,
            implementation: b.implementation,
            ecdsa_module: b.ecdsa_module,
            session_module: Some(b.session_module),
        }),
        ..AccountsConfig::default()
    };
    // Kernel session payments carry a charge call to the devnet's KernelSessionValidator.
    if let Some(kernel) = accounts.kernel.as_mut() {
        kernel.session_validator = Some(a.kernel_session_validator);
    }
    // Safe session payments are the devnet's SafeSessionModule's executeSessionPayment.
    if let Some(safe) = accounts.safe.as_mut() {
        safe.session_module = Some(a.safe_session_module);
    }
    let chain = ChainConfig {
        session_account_factory: Some(a.session_account_factory),
        accounts,
        allowed_tokens: vec![a.token],
        ..ChainConfig::with_direct(devnet.rpc_url(), a.settlement, KeySource::literal(key))
    };
    Config {
        bind: ([127, 0, 0, 1], 0).into(),
        registry_url: format!("sqlite:{}", registry.display()),
        schemes: Some(vec![aa_native_everywhere(), exact_on(devnet.chain_id())]),
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
    /// The paid route's price per scheme.
    pub prices: Vec<PriceInfo>,
    /// Who sends the facilitator's transactions.
    pub facilitator_signer: Address,
    paymaster_api_key: String,
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

        let (registry, registry_dir) = match options.registry.clone() {
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

        let chain_id = devnet.chain_id();
        let usdt = Token::new(a.token, "USDT", DECIMALS);
        let usdc = Token::new(a.eip3009_token, EXACT_TOKEN_SYMBOL, DECIMALS);
        let domain = Eip712Domain::new(EXACT_TOKEN_EIP712_NAME, EXACT_TOKEN_EIP712_VERSION);
        let exact_price = options.exact_price_or_default();
        let tags = [
            price_tag(chain_id, options.merchant, &options.price, &usdt, a.settlement)?,
            exact_price_tag(chain_id, options.merchant, &exact_price, &usdc, &domain)?,
        ];
        let prices = tags
            .iter()
            .zip([&options.price, &exact_price])
            .map(|(tag, price)| PriceInfo {
                scheme: tag.requirements.scheme.clone(),
                price: price.clone(),
                asset: tag.requirements.asset.parse().unwrap_or_default(),
                amount: tag.requirements.amount.clone(),
            })
            .collect();
        // Every payer of this stack (the SDK) discloses its request binding, so none may omit it.
        let layer = Paywall::new(&facilitator.url())?
            .layer(tags)?
            .with_description(DESCRIPTION)
            .require_request_binding();
        let app = x402_aa_paywall::demo::router(layer);
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
            prices,
            facilitator_signer: options.facilitator_key.address(),
            paymaster_api_key: options.paymaster_api_key,
            api,
            _registry_dir: registry_dir,
        })
    }

    /// The paid route's full URL.
    pub fn paid_url(&self) -> String {
        format!("{}{PAID_ROUTE}", self.api_url)
    }

    /// What a client or a merchant needs to use this stack on `devnet`; `funded` from
    /// [`fund_devnet_keys`].
    pub fn info(&self, devnet: &Devnet, funded: Vec<FundedKey>) -> StackInfo {
        let a = devnet.addresses;
        let minter = devnet.keys.deployer.address();
        let minter_key = devnet.keys.deployer.to_bytes();
        StackInfo {
            chain_id: devnet.chain_id(),
            network: format!("eip155:{}", devnet.chain_id()),
            rpc_url: devnet.rpc_url().to_owned(),
            contracts: ContractsInfo {
                entry_point: a.entry_point,
                simple_account_factory: a.simple_account_factory,
                session_account_factory: a.session_account_factory,
                settlement: a.settlement,
                verifying_paymaster: a.verifying_paymaster,
                kernel_session_validator: a.kernel_session_validator,
                safe_session_module: a.safe_session_module,
                biconomy_session_module: devnet.biconomy.session_module,
            },
            tokens: vec![
                TokenInfo {
                    symbol: "USDT".into(),
                    address: a.token,
                    decimals: DECIMALS,
                    scheme: x402_aa::x402::SCHEME.into(),
                    eip712_name: None,
                    eip712_version: None,
                    minter,
                    minter_key,
                },
                TokenInfo {
                    symbol: EXACT_TOKEN_SYMBOL.into(),
                    address: a.eip3009_token,
                    decimals: DECIMALS,
                    scheme: x402_aa_paywall::EXACT.into(),
                    eip712_name: Some(EXACT_TOKEN_EIP712_NAME.into()),
                    eip712_version: Some(EXACT_TOKEN_EIP712_VERSION.into()),
                    minter,
                    minter_key,
                },
            ],
            facilitator: FacilitatorInfo {
                url: self.facilitator.url(),
                schemes: vec![x402_aa::x402::SCHEME.into(), x402_aa_paywall::EXACT.into()],
                signers: vec![self.facilitator_signer],
            },
            paymaster: PaymasterInfo {
                url: self.paymaster.url(),
                api_key: self.paymaster_api_key.clone(),
            },
            paid_api: PaidApiInfo {
                url: self.paid_url(),
                merchant: self.merchant,
                prices: self.prices.clone(),
            },
            funded_keys: funded,
        }
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

/// `resource.description` of the paid route.
const DESCRIPTION: &str = "one joke";

/// What [`fund_devnet_keys`] gives each key: `amount` atomic units (6 decimals) of USDT in its
/// SessionKeyAccount and its SimpleAccount (salt 0, both counterfactual), and of USDC in the key's
/// own address, so any of them can pay aa-native with a session or its owner key, or `exact`.
pub async fn fund_devnet_keys(
    devnet: &Devnet,
    keys: &[PrivateKeySigner],
    amount: U256,
) -> Result<Vec<FundedKey>, StackError> {
    let a = devnet.addresses;
    let sessions = SessionKeyAccountFactory::new(a.session_account_factory, devnet.provider());
    let simple = SimpleAccountFactory::new(a.simple_account_factory, devnet.provider());
    let shown = x402_aa::x402::TokenAmount::from_atomic(amount, DECIMALS, None)
        .map_or_else(|_| amount.to_string(), |a| a.to_string());
    let holding = |holder: &str, address, token, symbol| Holding {
        holder: holder.to_owned(),
        address,
        token,
        amount: amount.to_string(),
        display: format!("{shown} {symbol}"),
    };
    let mut funded = Vec::new();
    for key in keys {
        let owner = key.address();
        let session_account = sessions.getAddress(owner, U256::ZERO).call().await?;
        let simple_account = simple.getAddress(owner, U256::ZERO).call().await?;
        devnet.mint(session_account, amount).await?;
        devnet.mint(simple_account, amount).await?;
        devnet.mint_eip3009(owner, amount).await?;
        funded.push(FundedKey {
            address: owner,
            private_key: key.to_bytes(),
            session_account,
            simple_account,
            holdings: vec![
                holding("sessionAccount", session_account, a.token, "USDT"),
                holding("simpleAccount", simple_account, a.token, "USDT"),
                holding("key", owner, a.eip3009_token, EXACT_TOKEN_SYMBOL),
            ],
        });
    }
    Ok(funded)
}

/// The paid API's server task, aborted when dropped (as the other handles stop on drop).
#[derive(Debug)]
struct ApiServer(JoinHandle<std::io::Result<()>>);

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}
