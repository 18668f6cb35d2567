//! Where payments happen: a network preset (NERO testnet / mainnet), or any chain by its RPC URL,
//! with every address and service URL overridable.
//!
//! Presets hold what is public and fixed (EntryPoint, factories, settlement contract, USDT, the
//! NERO bundler and paymaster URLs); a program or its environment adds what is not (an RPC URL of
//! its own, a paymaster API key, a devnet's addresses). [`Network::from_env`] reads the same
//! settings from `X402_AA_*` variables, so one binary runs against a devnet and a real network
//! unchanged.

use std::{collections::HashMap, fmt, str::FromStr};

use alloy::{
    network::EthereumWallet,
    primitives::{Address, address},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use x402_aa::{
    ENTRY_POINT_V06, SIMPLE_ACCOUNT_FACTORY_V06,
    accounts::{AccountKind, biconomy, kernel::KERNEL_FACTORY, safe::SafeDeployment},
};

use super::SdkError;
use crate::file::TokenInfo;

/// A chain and the contracts and services aa-native payments use on it.
///
/// ```
/// # use x402_aa_session::sdk::{Network, Address};
/// # fn main() -> Result<(), x402_aa_session::sdk::SdkError> {
/// let testnet: Network = "nero-testnet".parse()?;
/// assert_eq!(testnet.chain_id(), Some(689));
/// let local = Network::rpc("http://127.0.0.1:8545")
///     .with_settlement(Address::repeat_byte(0x5e))
///     .with_paymaster("http://127.0.0.1:3000", "local");
/// # let _ = local; Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Network {
    name: String,
    chain_id: Option<u64>,
    rpc_url: Option<String>,
    bundler_url: Option<String>,
    paymaster_url: Option<String>,
    paymaster_api_key: Option<String>,
    entry_point: Address,
    factories: HashMap<AccountKind, Address>,
    settlement: Option<Address>,
    token: Option<Address>,
    /// Symbol and decimals when known without asking the chain (presets).
    token_info: Option<TokenInfo>,
    paymaster: Option<Address>,
    /// Safe's singleton, module and libraries (canonical unless set): a Safe's address and
    /// initCode depend on all of them.
    safe: SafeDeployment,
    /// Biconomy's implementation, ECDSA module and proxy code (canonical unless set; the
    /// devnet's vendored build differs).
    biconomy: biconomy::Deployment,
    /// This project's `KernelSessionValidator`, which session keys on Kernel accounts pay
    /// through.
    kernel_session_validator: Option<Address>,
    /// This project's `BiconomySessionModule`, which session keys on Biconomy accounts pay
    /// through.
    biconomy_session_module: Option<Address>,
    /// This project's `SafeSessionModule`, which session keys on Safes pay through.
    safe_session_module: Option<Address>,
}

/// The names [`Network::preset`] knows.
pub const PRESETS: [&str; 3] = ["nero-testnet", "nero-mainnet", "devnet"];

/// Environment variables [`Network::from_env`] reads (besides one `X402_AA_FACTORY_<KIND>` per
/// account kind, e.g. `X402_AA_FACTORY_SESSION_KEY_ACCOUNT`).
pub mod env {
    /// A preset name or an RPC URL.
    pub const NETWORK: &str = "X402_AA_NETWORK";
    /// The chain's JSON-RPC URL; overrides the preset's, or alone makes a custom network.
    pub const RPC_URL: &str = "X402_AA_RPC_URL";
    /// An ERC-4337 bundler URL, for gas estimates.
    pub const BUNDLER_URL: &str = "X402_AA_BUNDLER_URL";
    /// A NERO-style paymaster URL (`pm_sponsor_userop`) that sponsors every op.
    pub const PAYMASTER_URL: &str = "X402_AA_PAYMASTER_URL";
    /// The paymaster's API key (a credential: never logged).
    pub const PAYMASTER_API_KEY: &str = "X402_AA_PAYMASTER_API_KEY";
    /// The EntryPoint, when not the canonical v0.6.
    pub const ENTRY_POINT: &str = "X402_AA_ENTRY_POINT";
    /// The settlement contract payments call (and grants bind).
    pub const SETTLEMENT: &str = "X402_AA_SETTLEMENT";
    /// The token payments are made in; symbol and decimals are read from the chain.
    pub const TOKEN: &str = "X402_AA_TOKEN";
    /// The paymaster contract grants may pin (`Scopes::only_paymaster`).
    pub const PAYMASTER: &str = "X402_AA_PAYMASTER";
    /// This project's `KernelSessionValidator` (session keys on Kernel accounts).
    pub const KERNEL_SESSION_VALIDATOR: &str = "X402_AA_KERNEL_SESSION_VALIDATOR";
    /// This project's `BiconomySessionModule` (session keys on Biconomy accounts).
    pub const BICONOMY_SESSION_MODULE: &str = "X402_AA_BICONOMY_SESSION_MODULE";
    /// This project's `SafeSessionModule` (session keys on Safe 1.4.1 accounts).
    pub const SAFE_SESSION_MODULE: &str = "X402_AA_SAFE_SESSION_MODULE";
    /// Prefix of the per-kind factory overrides.
    pub const FACTORY_PREFIX: &str = "X402_AA_FACTORY_";
}

impl Network {
    /// NERO testnet, `eip155:689` (addresses from NERO 402's documentation).
    pub fn nero_testnet() -> Self {
        Self {
            name: "nero-testnet".into(),
            chain_id: Some(689),
            rpc_url: Some("https://rpc-testnet.nerochain.io".into()),
            bundler_url: Some("https://bundler-testnet.nerochain.io".into()),
            paymaster_url: Some("https://paymaster-testnet.nerochain.io".into()),
            settlement: Some(address!("0x925dbba44570683ac8da99be08bc5ece8cf5a8c6")),
            ..Self::base("nero-testnet")
        }
        .with_token_info(TokenInfo {
            address: address!("0x9a2eabdecda3eae051bca75fbe71a3dbdb35f9d4"),
            symbol: "USDT".into(),
            decimals: 6,
        })
    }

    /// NERO mainnet, `eip155:1689`.
    pub fn nero_mainnet() -> Self {
        Self {
            name: "nero-mainnet".into(),
            chain_id: Some(1689),
            rpc_url: Some("https://rpc.nerochain.io".into()),
            bundler_url: Some("https://bundler-mainnet.nerochain.io".into()),
            paymaster_url: Some("https://paymaster-mainnet.nerochain.io".into()),
            settlement: Some(address!("0x5eCfc64f2339992668f555918674B604F97B412D")),
            ..Self::base("nero-mainnet")
        }
        .with_token_info(TokenInfo {
            address: address!("0xff13a7a12fd485bc9687ff88d8ae1a6b655ab469"),
            symbol: "USDT".into(),
            decimals: 6,
        })
    }

    /// A local anvil devnet (`x402-aa devnet up`, chain 31337): the canonical EntryPoint and
    /// SimpleAccountFactory; its RPC URL and the addresses of the project's contracts come from
    /// the running devnet (`with_*` or the environment).
    pub fn devnet() -> Self {
        Self { chain_id: Some(31_337), ..Self::base("devnet") }
    }

    /// Any chain by its RPC URL; EntryPoint v0.6 and the canonical SimpleAccountFactory are
    /// assumed, everything else is set with the `with_*` methods.
    pub fn rpc(url: impl Into<String>) -> Self {
        Self { rpc_url: Some(url.into()), ..Self::base("custom") }
    }

    /// A preset by name ([`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, SdkError> {
        match name {
            "nero-testnet" => Ok(Self::nero_testnet()),
            "nero-mainnet" => Ok(Self::nero_mainnet()),
            "devnet" => Ok(Self::devnet()),
            other => Err(SdkError::UnknownNetwork(other.to_owned())),
        }
    }

    /// The preset for `chain_id`, if there is one: what an agent knows from its session file.
    pub fn for_chain(chain_id: u64) -> Option<Self> {
        PRESETS
            .into_iter()
            .filter_map(|n| Self::preset(n).ok())
            .find(|n| n.chain_id == Some(chain_id))
    }

    /// `X402_AA_NETWORK` (a preset or an RPC URL; a custom network when only `X402_AA_RPC_URL`
    /// is set), then every other `X402_AA_*` override in [`mod@env`].
    pub fn from_env() -> Result<Self, SdkError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`Network::from_env`] over any source of variables (a config map, a test).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SdkError> {
        let mut network = match (lookup(env::NETWORK), lookup(env::RPC_URL)) {
            (Some(name), _) => name.parse::<Self>()?,
            (None, Some(url)) => Self::rpc(url),
            (None, None) => {
                return Err(SdkError::Missing { what: "network", hint: MISSING_NETWORK });
            }
        };
        let address = |var: &'static str| -> Result<Option<Address>, SdkError> {
            lookup(var)
                .map(|v| {
                    v.trim().parse::<Address>().map_err(|e| SdkError::BadSetting {
                        name: var.to_owned(),
                        value: v.clone(),
                        reason: e.to_string(),
                    })
                })
                .transpose()
        };
        if let Some(url) = lookup(env::RPC_URL) {
            network.rpc_url = Some(url);
        }
        if let Some(url) = lookup(env::BUNDLER_URL) {
            network.bundler_url = Some(url);
        }
        if let Some(url) = lookup(env::PAYMASTER_URL) {
            network.paymaster_url = Some(url);
        }
        if let Some(key) = lookup(env::PAYMASTER_API_KEY) {
            network.paymaster_api_key = Some(key);
        }
        if let Some(a) = address(env::ENTRY_POINT)? {
            network.entry_point = a;
        }
        if let Some(a) = address(env::SETTLEMENT)? {
            network.settlement = Some(a);
        }
        if let Some(a) = address(env::TOKEN)? {
            network = network.with_token(a);
        }
        if let Some(a) = address(env::PAYMASTER)? {
            network.paymaster = Some(a);
        }
        if let Some(a) = address(env::KERNEL_SESSION_VALIDATOR)? {
            network.kernel_session_validator = Some(a);
        }
        if let Some(a) = address(env::BICONOMY_SESSION_MODULE)? {
            network.biconomy_session_module = Some(a);
        }
        if let Some(a) = address(env::SAFE_SESSION_MODULE)? {
            network.safe_session_module = Some(a);
        }
        for kind in AccountKind::ALL {
            let var = factory_var(kind);
            let value = lookup(&var);
            if let Some(v) = value {
                let a = v.trim().parse::<Address>().map_err(|e| SdkError::BadSetting {
                    name: var.clone(),
                    value: v.clone(),
                    reason: e.to_string(),
                })?;
                network.factories.insert(kind, a);
            }
        }
        Ok(network)
    }

    /// A network with nothing set but EntryPoint v0.6 and the canonical SimpleAccountFactory.
    #[cfg(feature = "client")]
    pub(crate) fn custom() -> Self {
        Self::base("custom")
    }

    fn base(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            chain_id: None,
            rpc_url: None,
            bundler_url: None,
            paymaster_url: None,
            paymaster_api_key: None,
            entry_point: ENTRY_POINT_V06,
            // Kernel, Safe and Biconomy deploy their factories at the same address on every
            // chain they support (and on the devnet, except Biconomy's vendored build).
            factories: HashMap::from([
                (AccountKind::SimpleAccount, SIMPLE_ACCOUNT_FACTORY_V06),
                (AccountKind::Kernel, KERNEL_FACTORY),
                (AccountKind::Safe, SafeDeployment::CANONICAL.proxy_factory),
                (AccountKind::Biconomy, biconomy::Deployment::CANONICAL.factory),
            ]),
            settlement: None,
            token: None,
            token_info: None,
            paymaster: None,
            safe: SafeDeployment::CANONICAL,
            biconomy: biconomy::Deployment::CANONICAL,
            kernel_session_validator: None,
            biconomy_session_module: None,
            safe_session_module: None,
        }
    }

    /// Uses this JSON-RPC endpoint (e.g. a private node instead of the preset's public one).
    pub fn with_rpc_url(mut self, url: impl Into<String>) -> Self {
        self.rpc_url = Some(url.into());
        self
    }

    /// Gas limits come from this ERC-4337 bundler (`eth_estimateUserOperationGas`).
    pub fn with_bundler(mut self, url: impl Into<String>) -> Self {
        self.bundler_url = Some(url.into());
        self
    }

    /// Every op is sponsored through this NERO-style paymaster (`pm_sponsor_userop`).
    pub fn with_paymaster(mut self, url: impl Into<String>, api_key: impl Into<String>) -> Self {
        self.paymaster_url = Some(url.into());
        self.paymaster_api_key = Some(api_key.into());
        self
    }

    /// The paymaster contract sponsoring ops here (what `Scopes::only_paymaster` pins).
    pub fn with_paymaster_contract(mut self, paymaster: Address) -> Self {
        self.paymaster = Some(paymaster);
        self
    }

    /// Another EntryPoint than the canonical v0.6 (the userOpHash and every signature depend on
    /// it; the ops must still be v0.6 ones).
    pub fn with_entry_point(mut self, entry_point: Address) -> Self {
        self.entry_point = entry_point;
        self
    }

    /// The factory deploying accounts of `kind` (counterfactual accounts, initCode).
    pub fn with_factory(mut self, kind: AccountKind, factory: Address) -> Self {
        self.factories.insert(kind, factory);
        self
    }

    /// Where Safe's contracts live, when not at Safe's canonical addresses (also sets the
    /// [`AccountKind::Safe`] factory).
    pub fn with_safe_deployment(mut self, deployment: SafeDeployment) -> Self {
        self.factories.insert(AccountKind::Safe, deployment.proxy_factory);
        self.safe = deployment;
        self
    }

    /// Where Biconomy's contracts live, when not at Biconomy's canonical addresses, as on the
    /// devnet (also sets the [`AccountKind::Biconomy`] factory).
    pub fn with_biconomy_deployment(mut self, deployment: biconomy::Deployment) -> Self {
        self.factories.insert(AccountKind::Biconomy, deployment.factory);
        self.biconomy = deployment;
        self
    }

    /// The `BiconomySessionModule` that session keys on Biconomy accounts pay through.
    pub fn with_biconomy_session_module(mut self, module: Address) -> Self {
        self.biconomy_session_module = Some(module);
        self
    }

    /// The `BiconomySessionModule`, if set; Biconomy session grants need it.
    pub fn biconomy_session_module(&self) -> Option<Address> {
        self.biconomy_session_module
    }

    /// The `SafeSessionModule` that session keys on Safes pay through (one deployment serves
    /// every Safe; the devnet deploys it with `devnet up`).
    pub fn with_safe_session_module(mut self, module: Address) -> Self {
        self.safe_session_module = Some(module);
        self
    }

    /// The `SafeSessionModule`, if set; Safe session grants need it.
    pub fn safe_session_module(&self) -> Option<Address> {
        self.safe_session_module
    }

    /// The `KernelSessionValidator` that session keys on Kernel accounts pay through.
    pub fn with_kernel_session_validator(mut self, validator: Address) -> Self {
        self.kernel_session_validator = Some(validator);
        self
    }

    /// The `KernelSessionValidator`, if set; Kernel session grants need it.
    pub fn kernel_session_validator(&self) -> Option<Address> {
        self.kernel_session_validator
    }

    /// The settlement contract payments call. A grant binds it, so a session only pays merchants
    /// whose requirements name this one.
    pub fn with_settlement(mut self, settlement: Address) -> Self {
        self.settlement = Some(settlement);
        self
    }

    /// The token payments are made in; its symbol and decimals are read from the chain.
    pub fn with_token(mut self, token: Address) -> Self {
        self.token = Some(token);
        self.token_info = self.token_info.filter(|t| t.address == token);
        self
    }

    /// The token, with symbol and decimals given (no chain read).
    pub fn with_token_info(mut self, token: TokenInfo) -> Self {
        self.token = Some(token.address);
        self.token_info = Some(token);
        self
    }

    /// The preset's name, or `custom` for a network made from an RPC URL.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chain id the preset is for; `None` for a network known only by its RPC URL.
    pub fn chain_id(&self) -> Option<u64> {
        self.chain_id
    }

    /// The JSON-RPC URL; `None` on the devnet preset until one is set.
    pub fn rpc_url(&self) -> Option<&str> {
        self.rpc_url.as_deref()
    }

    /// The bundler URL; `None` means gas limits come from the signer's defaults.
    pub fn bundler_url(&self) -> Option<&str> {
        self.bundler_url.as_deref()
    }

    /// The paymaster URL; `None` means ops pay their own gas (refused by a grant that requires a
    /// paymaster).
    pub fn paymaster_url(&self) -> Option<&str> {
        self.paymaster_url.as_deref()
    }

    /// The paymaster API key, if set (a credential: `Debug` redacts it).
    pub fn paymaster_api_key(&self) -> Option<&str> {
        self.paymaster_api_key.as_deref()
    }

    /// The EntryPoint (canonical v0.6 unless overridden).
    pub fn entry_point(&self) -> Address {
        self.entry_point
    }

    /// The factory for `kind`: canonical for SimpleAccount, Kernel, Safe and Biconomy; `None`
    /// for SessionKeyAccount until set (it is this project's own deployment).
    pub fn factory(&self, kind: AccountKind) -> Option<Address> {
        self.factories.get(&kind).copied()
    }

    /// The settlement contract, if known (presets) or set.
    pub fn settlement(&self) -> Option<Address> {
        self.settlement
    }

    /// Safe's contracts (canonical unless set): a Safe's address and initCode depend on them.
    pub fn safe_deployment(&self) -> SafeDeployment {
        self.safe
    }

    /// Biconomy's contracts (canonical unless set, as on the devnet).
    pub fn biconomy_deployment(&self) -> biconomy::Deployment {
        self.biconomy
    }

    /// The payment token, if known (presets: USDT) or set.
    pub fn token(&self) -> Option<Address> {
        self.token
    }

    /// The paymaster contract, if set: what [`Scopes::only_paymaster`] would pin here.
    ///
    /// [`Scopes::only_paymaster`]: crate::scopes::Scopes::only_paymaster
    pub fn paymaster_contract(&self) -> Option<Address> {
        self.paymaster
    }

    pub(crate) fn require_rpc_url(&self) -> Result<&str, SdkError> {
        self.rpc_url().ok_or(SdkError::Missing {
            what: "RPC URL",
            hint: "use Network::with_rpc_url or X402_AA_RPC_URL",
        })
    }

    pub(crate) fn require_settlement(&self) -> Result<Address, SdkError> {
        self.settlement.ok_or(SdkError::Missing {
            what: "settlement contract",
            hint: "use Network::with_settlement or X402_AA_SETTLEMENT",
        })
    }

    pub(crate) fn require_factory(&self, kind: AccountKind) -> Result<Address, SdkError> {
        self.factory(kind).ok_or(SdkError::MissingFactory { kind })
    }

    /// A read-only provider, and the chain id it reports (checked against the preset's).
    pub(crate) async fn connect(&self) -> Result<(DynProvider, u64), SdkError> {
        self.connect_with(None).await
    }

    /// A provider whose wallet signs transactions as `signer` (owner transactions: revocation).
    pub(crate) async fn connect_with(
        &self,
        signer: Option<&PrivateKeySigner>,
    ) -> Result<(DynProvider, u64), SdkError> {
        let url = self.require_rpc_url()?;
        let bad_url = |e: alloy::transports::TransportError| SdkError::BadSetting {
            name: "rpc url".into(),
            value: url.to_owned(),
            reason: e.to_string(),
        };
        let provider = match signer {
            Some(signer) => ProviderBuilder::new()
                .wallet(EthereumWallet::from(signer.clone()))
                .connect(url)
                .await
                .map_err(bad_url)?
                .erased(),
            // Over HTTP, a payment's independent reads (nonce, gas price, the session's usage)
            // leave as one batch.
            None => match url.parse::<alloy::transports::http::reqwest::Url>() {
                Ok(http) if matches!(http.scheme(), "http" | "https") => {
                    x402_aa_rpc::coalescing_provider(http, x402_aa_rpc::DEFAULT_TIMEOUT)
                }
                _ => ProviderBuilder::new().connect(url).await.map_err(bad_url)?.erased(),
            },
        };
        let got = provider.get_chain_id().await.map_err(super::chain)?;
        if let Some(expected) = self.chain_id
            && expected != got
        {
            return Err(SdkError::WrongChain { expected, got, rpc_url: url.to_owned() });
        }
        Ok((provider, got))
    }

    /// The payment token with its symbol and decimals (read from the chain unless known).
    pub(crate) async fn token_info(&self, provider: &DynProvider) -> Result<TokenInfo, SdkError> {
        let address = self.token.ok_or(SdkError::Missing {
            what: "payment token",
            hint: "use Network::with_token or X402_AA_TOKEN",
        })?;
        if let Some(info) = self.token_info.clone().filter(|t| t.address == address) {
            return Ok(info);
        }
        let erc20 = Erc20Metadata::new(address, provider);
        let (symbol, decimals) =
            tokio::try_join!(async { erc20.symbol().call().await.map_err(super::chain) }, async {
                erc20.decimals().call().await.map_err(super::chain)
            },)?;
        Ok(TokenInfo { address, symbol, decimals })
    }
}

/// The paymaster API key is a credential: it never appears in logs.
impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("name", &self.name)
            .field("chain_id", &self.chain_id)
            .field("rpc_url", &self.rpc_url)
            .field("bundler_url", &self.bundler_url)
            .field("paymaster_url", &self.paymaster_url)
            .field("paymaster_api_key", &self.paymaster_api_key.as_ref().map(|_| "<redacted>"))
            .field("entry_point", &self.entry_point)
            .field("factories", &self.factories)
            .field("settlement", &self.settlement)
            .field("token", &self.token)
            .field("paymaster", &self.paymaster)
            .finish_non_exhaustive()
    }
}

impl FromStr for Network {
    type Err = SdkError;

    /// A preset name, or an `http(s)://` RPC URL.
    fn from_str(s: &str) -> Result<Self, SdkError> {
        let s = s.trim();
        if s.starts_with("http://") || s.starts_with("https://") {
            Ok(Self::rpc(s))
        } else {
            Self::preset(s)
        }
    }
}

/// `X402_AA_FACTORY_SESSION_KEY_ACCOUNT` for [`AccountKind::SessionKeyAccount`].
pub fn factory_var(kind: AccountKind) -> String {
    format!("{}{}", env::FACTORY_PREFIX, kind.name().to_ascii_uppercase().replace('-', "_"))
}

const MISSING_NETWORK: &str =
    "set X402_AA_NETWORK (nero-testnet, nero-mainnet, devnet or an RPC URL) or X402_AA_RPC_URL";

alloy::sol! {
    #[sol(rpc)]
    interface Erc20Metadata {
        function symbol() external view returns (string);
        function decimals() external view returns (uint8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn presets_and_urls_parse() {
        assert_eq!("nero-mainnet".parse::<Network>().unwrap().chain_id(), Some(1689));
        assert_eq!(Network::for_chain(689).unwrap().name(), "nero-testnet");
        assert!(Network::for_chain(1).is_none());
        let custom: Network = "http://127.0.0.1:8545".parse().unwrap();
        assert_eq!((custom.name(), custom.rpc_url()), ("custom", Some("http://127.0.0.1:8545")));
        assert_eq!(custom.factory(AccountKind::SimpleAccount), Some(SIMPLE_ACCOUNT_FACTORY_V06));
        assert!(matches!("mainnet".parse::<Network>(), Err(SdkError::UnknownNetwork(_))));
    }

    #[test]
    fn the_environment_overrides_a_preset() {
        let factory = Address::repeat_byte(0xfa);
        let var = factory_var(AccountKind::SessionKeyAccount);
        assert_eq!(var, "X402_AA_FACTORY_SESSION_KEY_ACCOUNT");
        let n = Network::from_lookup(vars(&[
            (env::NETWORK, "devnet"),
            (env::RPC_URL, "http://127.0.0.1:1"),
            (env::SETTLEMENT, "0x5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"),
            (env::PAYMASTER_URL, "http://127.0.0.1:2"),
            (env::PAYMASTER_API_KEY, "k"),
            (&var, &factory.to_string()),
        ]))
        .unwrap();
        assert_eq!(n.chain_id(), Some(31_337));
        assert_eq!(n.rpc_url(), Some("http://127.0.0.1:1"));
        assert_eq!(n.settlement(), Some(Address::repeat_byte(0x5e)));
        assert_eq!(
            (n.paymaster_url(), n.paymaster_api_key()),
            (Some("http://127.0.0.1:2"), Some("k"))
        );
        assert_eq!(n.factory(AccountKind::SessionKeyAccount), Some(factory));
        let shown = format!("{n:?}");
        assert!(shown.contains("<redacted>") && !shown.contains("\"k\""), "{shown}");
    }

    #[test]
    fn bad_settings_are_named() {
        let err = Network::from_lookup(vars(&[(env::RPC_URL, "http://x"), (env::TOKEN, "0x12")]))
            .unwrap_err();
        assert!(matches!(&err, SdkError::BadSetting { name, .. } if name == env::TOKEN), "{err}");
        assert!(matches!(Network::from_lookup(vars(&[])), Err(SdkError::Missing { .. })));
        assert!(matches!(
            Network::from_lookup(vars(&[(env::NETWORK, "moon")])),
            Err(SdkError::UnknownNetwork(_))
        ));
    }
}
