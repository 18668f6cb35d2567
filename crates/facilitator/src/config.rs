//! Configuration: a JSON file in x402-rs' layout (`chains` keyed by CAIP-2 id, `schemes` as
//! x402-rs `SchemeConfig`s), `$VAR` / `${VAR}` references in string values, and environment
//! variables that override the file.
//!
//! ```json
//! {
//!   "bind": "0.0.0.0:8402",
//!   "registry_url": "sqlite:facilitator.sqlite3",
//!   "receipt_timeout_ms": 30000,
//!   "max_body_bytes": 65536,
//!   "chains": {
//!     "eip155:689": {
//!       "rpc_url": "$NERO_TESTNET_RPC",
//!       "settlement_contract": "0x925dbba44570683ac8da99be08bc5ece8cf5a8c6",
//!       "session_account_factory": "0x…",
//!       "accounts": { "biconomy": null },
//!       "allowed_tokens": ["0x…"],
//!       "submission": { "mode": "bundler", "url": "${NERO_BUNDLER_URL}" }
//!     },
//!     "eip155:31337": {
//!       "rpc_url": "http://127.0.0.1:8545",
//!       "settlement_contract": "0x…",
//!       "submission": { "mode": "direct", "private_key_env": "FACILITATOR_KEY" }
//!     }
//!   },
//!   "schemes": [
//!     { "id": "v2-eip155-aa-native", "chains": "eip155:*" },
//!     { "id": "v2-eip155-exact", "chains": "eip155:31337", "enabled": false }
//!   ]
//! }
//! ```

use std::{collections::BTreeMap, net::SocketAddr, path::Path, str::FromStr, time::Duration};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use serde::{Deserialize, Serialize};
use x402_aa::ENTRY_POINT_V06;
use x402_types::{chain::ChainIdPattern, scheme::SchemeConfig};

use crate::{AA_NATIVE_SCHEME_ID, EXACT_SCHEME_ID};

/// Environment variables read by [`Config::apply_env`]; each overrides the file's value.
pub mod env {
    /// Path of the config file (the binary's `--config` wins over it).
    pub const CONFIG: &str = "X402_AA_CONFIG";
    /// `ip:port` to listen on.
    pub const BIND: &str = "X402_AA_BIND";
    /// x402-rs' names for the listening address, honoured after [`BIND`].
    pub const HOST: &str = "HOST";
    /// x402-rs' name for the listening port, with [`HOST`].
    pub const PORT: &str = "PORT";
    /// `sqlite:<path>`, `sqlite::memory:` or `postgres://…`.
    pub const REGISTRY_URL: &str = "X402_AA_REGISTRY_URL";
    /// How long `/settle` waits for a receipt before answering `receipt_timeout`, in ms.
    pub const RECEIPT_TIMEOUT_MS: &str = "X402_AA_RECEIPT_TIMEOUT_MS";
    /// Largest request body accepted, in bytes.
    pub const MAX_BODY_BYTES: &str = "X402_AA_MAX_BODY_BYTES";
    /// This instance's name in the shared registry (instances sharing one must differ).
    pub const INSTANCE_ID: &str = "X402_AA_INSTANCE_ID";
}

/// Default listening address; 8402 as a nod to HTTP 402, off x402-rs' 8080.
pub const DEFAULT_BIND: &str = "0.0.0.0:8402";
/// A SQLite file in the working directory: one instance, nothing to set up.
pub const DEFAULT_REGISTRY_URL: &str = "sqlite:x402-aa-facilitator.sqlite3";
/// Thirty seconds: a couple of blocks on a slow network; the op may still land later.
pub const DEFAULT_RECEIPT_TIMEOUT_MS: u64 = 30_000;
/// A v2 request with a session op (grant, proofs, initCode, paymaster) is a few KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Fine for one instance; several sharing a registry each need their own.
pub const DEFAULT_INSTANCE_ID: &str = "default";

/// The whole service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_bind")]
    /// Where to listen (default [`DEFAULT_BIND`]).
    pub bind: SocketAddr,
    /// Settlement registry: `sqlite:<path>` (default), `sqlite::memory:`, or `postgres://…`
    /// for several instances sharing one registry. `$VAR` allowed.
    #[serde(default = "default_registry_url")]
    pub registry_url: String,
    /// How long `/settle` waits for an op's receipt before answering `receipt_timeout`.
    #[serde(default = "default_receipt_timeout_ms")]
    pub receipt_timeout_ms: u64,
    /// Larger request bodies get HTTP 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Names this instance's claims in the registry. On start an instance resumes the
    /// `in_flight` rows carrying its id (a crash left them) and, from any id, rows stale for
    /// longer than twice the receipt bound. Must be unique among live instances.
    #[serde(default = "default_instance_id")]
    pub instance_id: String,
    /// How often open registry rows (`in_flight` left by a crash, submitted ops that timed
    /// out) are re-read from the chain; 0 disables the background pass (start-up recovery
    /// always runs).
    #[serde(default = "default_recovery_interval_ms")]
    pub recovery_interval_ms: u64,
    /// Networks by CAIP-2 id (`eip155:<chainId>`), as x402-rs' `chains`.
    pub chains: BTreeMap<String, ChainConfig>,
    /// x402-rs scheme list. Absent: aa-native on every chain, `exact` off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemes: Option<Vec<SchemeConfig>>,
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Node JSON-RPC (HTTP). `$VAR` allowed.
    pub rpc_url: String,
    #[serde(default = "default_entry_point")]
    /// The EntryPoint (v0.6, the canonical one by default).
    pub entry_point: Address,
    /// The SettlementContract payments must call.
    pub settlement_contract: Address,
    /// Factory of SessionKeyAccount; needed to check session ops of accounts not deployed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_account_factory: Option<Address>,
    /// Where the third-party account kinds live on this network: an op's kind is read from the
    /// factory its initCode calls or from the implementation behind the deployed account.
    /// Defaults to each kind's canonical deployment; `null` turns a kind off.
    #[serde(default)]
    pub accounts: AccountsConfig,
    /// Tokens accepted as `asset`; empty accepts any (the contract's allowlist still applies).
    #[serde(default)]
    pub allowed_tokens: Vec<Address>,
    /// How ops reach the chain: a bundler, or the facilitator bundling itself.
    pub submission: SubmissionConfig,
    /// Key for the `exact` scheme's `transferWithAuthorization` transactions; defaults to the
    /// direct-submission key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_signer: Option<KeySource>,
    /// Per-call bound on node RPCs.
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// How far back (blocks) recovery searches for an op's `UserOperationEvent` when a
    /// registry row lacks its start block.
    #[serde(default = "default_log_lookback_blocks")]
    pub log_lookback_blocks: u64,
}

/// The third-party account kinds a network recognises, each by its own deployment. An account
/// none of them (nor the session account factory) names is read as a SimpleAccount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    #[serde(default = "KernelAccounts::canonical")]
    /// ZeroDev Kernel v2.4.
    pub kernel: Option<KernelAccounts>,
    #[serde(default = "SafeAccounts::canonical")]
    /// Safe 1.4.1 with Safe4337Module v0.2.0.
    pub safe: Option<SafeAccounts>,
    #[serde(default = "BiconomyAccounts::canonical")]
    /// Biconomy Smart Account v2.
    pub biconomy: Option<BiconomyAccounts>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            kernel: KernelAccounts::canonical(),
            safe: SafeAccounts::canonical(),
            biconomy: BiconomyAccounts::canonical(),
        }
    }
}

/// ZeroDev Kernel v2.4: the KernelFactory (initCode) and the implementation behind a deployed
/// account's ERC-1967 slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelAccounts {
    /// The KernelFactory an undeployed account's initCode calls.
    pub factory: Address,
    /// The implementation a deployed account's proxy points to.
    pub implementation: Address,
    /// This project's `KernelSessionValidator`: session payments from Kernel accounts are its
    /// `executeSessionPayment` shape, checked by the off-chain policy mirror. Absent: Kernel
    /// session payments are not recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_validator: Option<Address>,
}

impl KernelAccounts {
    fn canonical() -> Option<Self> {
        use x402_aa::accounts::kernel;
        Some(Self {
            factory: kernel::KERNEL_FACTORY,
            implementation: kernel::KERNEL_V24_IMPLEMENTATION,
            session_validator: None,
        })
    }
}

/// Safe 1.4.1 with Safe4337Module v0.2.0: the SafeProxyFactory (initCode), the singletons a
/// deployed Safe may hold in storage slot 0, and the MultiSend libraries a payment batch may
/// delegatecall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafeAccounts {
    /// The SafeProxyFactory an undeployed Safe's initCode calls.
    pub proxy_factory: Address,
    /// Singletons a deployed Safe may point to (Safe and SafeL2).
    pub singletons: Vec<Address>,
    /// MultiSend, which an owner payment batch may delegatecall.
    pub multi_send: Address,
    /// MultiSendCallOnly, likewise.
    pub multi_send_call_only: Address,
    /// This project's `SafeSessionModule`: session payments from Safes are its
    /// `executeSessionPayment` shape, checked by the off-chain policy mirror. Absent: Safe session
    /// payments are not recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_module: Option<Address>,
}

impl SafeAccounts {
    fn canonical() -> Option<Self> {
        use x402_aa::accounts::safe;
        Some(Self {
            proxy_factory: safe::SAFE_PROXY_FACTORY_V141,
            singletons: vec![safe::SAFE_SINGLETON_V141, safe::SAFE_L2_SINGLETON_V141],
            multi_send: safe::MULTI_SEND_V141,
            multi_send_call_only: safe::MULTI_SEND_CALL_ONLY_V141,
            session_module: None,
        })
    }
}

/// Biconomy Smart Account v2: the SmartAccountFactory (initCode), the implementation a deployed
/// account's proxy stores at the slot of its own address, and the ECDSA ownership module that
/// makes a signature the owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiconomyAccounts {
    /// The SmartAccountFactory an undeployed account's initCode calls.
    pub factory: Address,
    /// The implementation a deployed account's proxy stores.
    pub implementation: Address,
    /// The EcdsaOwnershipRegistryModule whose signatures are the owner's.
    pub ecdsa_module: Address,
    /// This project's `BiconomySessionModule`: session payments from Biconomy accounts carry a
    /// charge call to it (the third call of their batch). Absent: Biconomy session payments are not recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_module: Option<Address>,
}

impl BiconomyAccounts {
    fn canonical() -> Option<Self> {
        let d = x402_aa::accounts::biconomy::Deployment::CANONICAL;
        Some(Self {
            factory: d.factory,
            implementation: d.implementation,
            ecdsa_module: d.ecdsa_module,
            session_module: None,
        })
    }
}

/// How accepted ops reach the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubmissionConfig {
    /// `eth_sendUserOperation`, then `eth_getUserOperationReceipt` polled within the bound.
    Bundler {
        /// `$VAR` allowed (hosted bundler URLs often carry an API key).
        url: String,
        /// How often to ask for the op's receipt, in ms.
        #[serde(default = "default_poll_interval_ms")]
        poll_interval_ms: u64,
        /// Per-request HTTP bound.
        #[serde(default = "default_bundler_timeout_ms")]
        request_timeout_ms: u64,
    },
    /// The facilitator bundles: `EntryPoint.handleOps(ops, beneficiary = itself)` from its own
    /// key, batching ops of different senders.
    Direct {
        /// Name of the environment variable holding the facilitator's hex private key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        private_key_env: Option<String>,
        /// Literal hex key or `$VAR` ([`KeySource::private_key`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        private_key: Option<String>,
        /// Most ops in one `handleOps`.
        #[serde(default = "default_max_batch")]
        max_batch: usize,
        /// How long the first op of an idle submitter waits for company; 0 (the default) sends
        /// it at once. Ops arriving while a bundle is in flight always share the next one.
        #[serde(default = "default_max_wait_ms")]
        max_wait_ms: u64,
    },
}

/// Where a private key comes from: preferably the name of an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySource {
    /// The environment variable holding the hex key (preferred: no key in a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_env: Option<String>,
    /// Literal hex key or `$VAR`; for tests and programmatic use, never a committed file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

/// A config problem, found before anything starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The JSON does not parse or has unknown fields.
    #[error("config is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// A `$VAR` (or key variable) names an unset variable.
    #[error("environment variable {name} is not set (referenced by {what})")]
    MissingEnv {
        /// The variable.
        name: String,
        /// The setting that names it.
        what: String,
    },
    /// An override from the environment does not parse.
    #[error("{name}={value:?} is not valid: {why}")]
    BadEnv {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it is refused.
        why: String,
    },
    /// A `chains` key is not `eip155:<id>`.
    #[error("chain key {0:?} is not an eip155:<chainId> network")]
    BadChain(String),
    /// A network's settings contradict each other.
    #[error("chain {chain}: {why}")]
    Chain {
        /// The network key.
        chain: String,
        /// What is wrong.
        why: String,
    },
    /// A scheme name this facilitator does not implement.
    #[error(
        "scheme {0:?} is not served by this facilitator (known: {AA_NATIVE_SCHEME_ID}, {EXACT_SCHEME_ID})"
    )]
    UnknownScheme(String),
    /// Any other inconsistency (the text says which).
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads a JSON config file (no environment applied yet).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::from_json(&text)
    }

    /// Parses a JSON config (no environment applied yet).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Ok(serde_json::from_str(text)?)
    }

    /// A config for one network with everything else defaulted.
    pub fn single(chain_id: u64, chain: ChainConfig) -> Self {
        Self {
            bind: default_bind(),
            registry_url: default_registry_url(),
            receipt_timeout_ms: default_receipt_timeout_ms(),
            max_body_bytes: default_max_body_bytes(),
            instance_id: default_instance_id(),
            recovery_interval_ms: default_recovery_interval_ms(),
            chains: BTreeMap::from([(format!("eip155:{chain_id}"), chain)]),
            schemes: None,
        }
    }

    /// Applies the process environment (see [`mod@env`]).
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        self.apply_env_from(|name| std::env::var(name).ok())
    }

    /// Applies overrides read through `lookup` (the environment, or a map in tests).
    pub fn apply_env_from(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        fn parse<T: FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::BadEnv {
                name,
                value,
                why: e.to_string(),
            })
        }
        if let Some(v) = lookup(env::BIND) {
            self.bind = parse(env::BIND, v)?;
        } else {
            if let Some(v) = lookup(env::HOST) {
                self.bind.set_ip(parse(env::HOST, v)?);
            }
            if let Some(v) = lookup(env::PORT) {
                self.bind.set_port(parse(env::PORT, v)?);
            }
        }
        if let Some(v) = lookup(env::REGISTRY_URL) {
            self.registry_url = v;
        }
        if let Some(v) = lookup(env::RECEIPT_TIMEOUT_MS) {
            self.receipt_timeout_ms = parse(env::RECEIPT_TIMEOUT_MS, v)?;
        }
        if let Some(v) = lookup(env::MAX_BODY_BYTES) {
            self.max_body_bytes = parse(env::MAX_BODY_BYTES, v)?;
        }
        if let Some(v) = lookup(env::INSTANCE_ID) {
            self.instance_id = v;
        }
        Ok(())
    }

    /// [`Config::receipt_timeout_ms`] as a duration.
    pub fn receipt_timeout(&self) -> Duration {
        Duration::from_millis(self.receipt_timeout_ms)
    }

    /// How old another instance's `in_flight` row must be before this one resolves it: twice
    /// the receipt bound plus a minute, far beyond any live settlement.
    pub fn stale_after(&self) -> Duration {
        self.receipt_timeout() * 2 + Duration::from_secs(60)
    }

    /// The scheme list x402-rs' `SchemeRegistry::build` receives.
    pub fn scheme_configs(&self) -> Result<Vec<SchemeConfig>, ConfigError> {
        let schemes = match &self.schemes {
            Some(schemes) => schemes.clone(),
            None => vec![SchemeConfig {
                enabled: true,
                id: AA_NATIVE_SCHEME_ID.to_owned(),
                chains: ChainIdPattern::wildcard("eip155"),
                config: None,
            }],
        };
        if let Some(unknown) =
            schemes.iter().find(|s| s.id != AA_NATIVE_SCHEME_ID && s.id != EXACT_SCHEME_ID)
        {
            return Err(ConfigError::UnknownScheme(unknown.id.clone()));
        }
        Ok(schemes)
    }

    /// Every chain with its numeric id, checked.
    pub fn chain_ids(&self) -> Result<Vec<(u64, &ChainConfig)>, ConfigError> {
        if self.chains.is_empty() {
            return Err(ConfigError::Invalid("no chains configured".into()));
        }
        self.chains
            .iter()
            .map(|(key, chain)| {
                let id = key
                    .strip_prefix("eip155:")
                    .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|r| r.parse::<u64>().ok())
                    .ok_or_else(|| ConfigError::BadChain(key.clone()))?;
                Ok((id, chain))
            })
            .collect()
    }
}

impl ChainConfig {
    /// The per-call bound on node RPCs.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// Bundler submission with default polling.
    pub fn with_bundler(
        rpc_url: impl Into<String>,
        settlement_contract: Address,
        bundler_url: impl Into<String>,
    ) -> Self {
        Self::new(
            rpc_url,
            settlement_contract,
            SubmissionConfig::Bundler {
                url: bundler_url.into(),
                poll_interval_ms: default_poll_interval_ms(),
                request_timeout_ms: default_bundler_timeout_ms(),
            },
        )
    }

    /// Direct submission from `key` with default batching.
    pub fn with_direct(
        rpc_url: impl Into<String>,
        settlement_contract: Address,
        key: KeySource,
    ) -> Self {
        Self::new(
            rpc_url,
            settlement_contract,
            SubmissionConfig::Direct {
                private_key_env: key.private_key_env,
                private_key: key.private_key,
                max_batch: default_max_batch(),
                max_wait_ms: default_max_wait_ms(),
            },
        )
    }

    fn new(rpc_url: impl Into<String>, settlement: Address, submission: SubmissionConfig) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            entry_point: default_entry_point(),
            settlement_contract: settlement,
            session_account_factory: None,
            accounts: AccountsConfig::default(),
            allowed_tokens: Vec::new(),
            submission,
            exact_signer: None,
            rpc_timeout_ms: default_rpc_timeout_ms(),
            log_lookback_blocks: default_log_lookback_blocks(),
        }
    }
}

impl SubmissionConfig {
    /// The direct-submission key, if this is direct mode.
    pub fn direct_key(&self) -> Option<KeySource> {
        match self {
            Self::Direct { private_key_env, private_key, .. } => Some(KeySource {
                private_key_env: private_key_env.clone(),
                private_key: private_key.clone(),
            }),
            Self::Bundler { .. } => None,
        }
    }
}

impl KeySource {
    /// A key read from the environment variable `name` at start.
    pub fn env(name: impl Into<String>) -> Self {
        Self { private_key_env: Some(name.into()), private_key: None }
    }

    /// A key written into the config itself; for tests and programmatic use.
    pub fn literal(key: &PrivateKeySigner) -> Self {
        Self {
            private_key_env: None,
            private_key: Some(alloy::primitives::hex::encode_prefixed(key.to_bytes())),
        }
    }

    /// The signer, reading the environment through `lookup`.
    pub fn resolve(
        &self,
        what: &str,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<PrivateKeySigner, ConfigError> {
        let text = match (&self.private_key_env, &self.private_key) {
            (Some(name), None) => lookup(name).ok_or_else(|| ConfigError::MissingEnv {
                name: name.clone(),
                what: what.to_owned(),
            })?,
            (None, Some(value)) => resolve_env(value, what, lookup)?,
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "{what}: give exactly one of private_key_env or private_key"
                )));
            }
        };
        // Never echo the value: it is a key.
        text.trim().parse::<PrivateKeySigner>().map_err(|_| {
            ConfigError::Invalid(format!("{what}: the private key is not 32 bytes of hex"))
        })
    }
}

/// x402-rs' `LiteralOrEnv` rule: a whole value `$NAME` or `${NAME}` is replaced by the variable.
pub fn resolve_env(
    value: &str,
    what: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let name = if let Some(inner) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(inner)
    } else {
        value
            .strip_prefix('$')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    match name {
        Some(name) => lookup(name).ok_or_else(|| ConfigError::MissingEnv {
            name: name.to_owned(),
            what: what.to_owned(),
        }),
        None => Ok(value.to_owned()),
    }
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8402))
}
fn default_registry_url() -> String {
    DEFAULT_REGISTRY_URL.to_owned()
}
fn default_receipt_timeout_ms() -> u64 {
    DEFAULT_RECEIPT_TIMEOUT_MS
}
fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_instance_id() -> String {
    DEFAULT_INSTANCE_ID.to_owned()
}
fn default_recovery_interval_ms() -> u64 {
    30_000
}
fn default_entry_point() -> Address {
    ENTRY_POINT_V06
}
fn default_rpc_timeout_ms() -> u64 {
    10_000
}
fn default_log_lookback_blocks() -> u64 {
    50_000
}
fn default_poll_interval_ms() -> u64 {
    250
}
fn default_bundler_timeout_ms() -> u64 {
    10_000
}
/// Under load every bundle is full, so this sets the transactions (and blocks) per payment:
/// each costs the facilitator a signature and a receipt and the node a block, and its fixed gas
/// is shared by fewer payments. 32 session payments use about 7M gas, well inside block limits.
fn default_max_batch() -> usize {
    32
}
fn default_max_wait_ms() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SAMPLE: &str = r#"{
        "registry_url": "$REG",
        "chains": {
            "eip155:31337": {
                "rpc_url": "${RPC}",
                "settlement_contract": "0x2000000000000000000000000000000000000002",
                "submission": { "mode": "direct", "private_key_env": "KEY", "max_batch": 4 }
            },
            "eip155:689": {
                "rpc_url": "https://rpc.example",
                "settlement_contract": "0x925dbba44570683ac8da99be08bc5ece8cf5a8c6",
                "submission": { "mode": "bundler", "url": "https://bundler.example" }
            }
        }
    }"#;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn file_defaults_and_env_overrides() {
        let mut config = Config::from_json(SAMPLE).unwrap();
        assert_eq!(config.bind, DEFAULT_BIND.parse().unwrap());
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        let ids: Vec<u64> = config.chain_ids().unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [31337, 689]);
        assert!(matches!(
            config.chains["eip155:31337"].submission,
            SubmissionConfig::Direct { max_batch: 4, max_wait_ms: 0, .. }
        ));
        config
            .apply_env_from(lookup(&[
                (env::PORT, "9000"),
                (env::REGISTRY_URL, "postgres://db/x"),
                (env::MAX_BODY_BYTES, "1024"),
            ]))
            .unwrap();
        assert_eq!(config.bind, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.registry_url, "postgres://db/x");
        assert_eq!(config.max_body_bytes, 1024);
        config.apply_env_from(lookup(&[(env::BIND, "127.0.0.1:1"), (env::PORT, "2")])).unwrap();
        assert_eq!(config.bind, "127.0.0.1:1".parse().unwrap(), "BIND wins over PORT");
        let err = config.apply_env_from(lookup(&[(env::RECEIPT_TIMEOUT_MS, "soon")]));
        assert!(matches!(err, Err(ConfigError::BadEnv { .. })));
    }

    #[test]
    fn env_references_and_keys() {
        let l = lookup(&[("RPC", "http://node"), ("KEY", &format!("0x{}", "11".repeat(32)))]);
        assert_eq!(resolve_env("${RPC}", "rpc", &l).unwrap(), "http://node");
        assert_eq!(resolve_env("$RPC", "rpc", &l).unwrap(), "http://node");
        assert_eq!(resolve_env("http://x/$RPC", "rpc", &l).unwrap(), "http://x/$RPC");
        assert!(matches!(resolve_env("$NOPE", "rpc", &l), Err(ConfigError::MissingEnv { .. })));
        assert!(KeySource::env("KEY").resolve("direct", &l).is_ok());
        assert!(KeySource::env("NOPE").resolve("direct", &l).is_err());
        let bad = KeySource { private_key_env: None, private_key: Some("0x1234".into()) };
        let err = bad.resolve("direct", &l).unwrap_err().to_string();
        assert!(!err.contains("1234"), "keys are never echoed: {err}");
    }

    #[test]
    fn example_config_parses() {
        let config = Config::from_json(include_str!("../facilitator.example.json")).unwrap();
        assert_eq!(config.chain_ids().unwrap().len(), 2);
        let schemes = config.scheme_configs().unwrap();
        assert_eq!(schemes.len(), 2);
        assert!(!schemes[1].enabled);
        let direct = config.chains["eip155:31337"].submission.direct_key().unwrap();
        assert_eq!(direct.private_key_env.as_deref(), Some("FACILITATOR_PRIVATE_KEY"));
    }

    #[test]
    fn account_kinds_default_to_canonical_and_can_be_turned_off() {
        let config = Config::from_json(SAMPLE).unwrap();
        let accounts = &config.chains["eip155:31337"].accounts;
        assert_eq!(*accounts, AccountsConfig::default());
        let kernel = accounts.kernel.unwrap();
        assert_eq!(kernel.factory, x402_aa::accounts::kernel::KERNEL_FACTORY);
        let safe = accounts.safe.as_ref().unwrap();
        assert_eq!(safe.singletons[0], x402_aa::accounts::safe::SAFE_SINGLETON_V141);
        assert_eq!(
            accounts.biconomy.unwrap().factory,
            x402_aa::accounts::biconomy::Deployment::CANONICAL.factory
        );

        let text = SAMPLE.replace(
            r#""settlement_contract": "0x2000000000000000000000000000000000000002","#,
            r#""settlement_contract": "0x2000000000000000000000000000000000000002",
               "accounts": { "biconomy": null, "kernel": {
                 "factory": "0x3000000000000000000000000000000000000003",
                 "implementation": "0x4000000000000000000000000000000000000004" } },"#,
        );
        let config = Config::from_json(&text).unwrap();
        let accounts = &config.chains["eip155:31337"].accounts;
        assert_eq!(accounts.biconomy, None);
        assert_eq!(accounts.safe, SafeAccounts::canonical(), "unnamed kinds keep their default");
        assert_eq!(
            accounts.kernel.unwrap().implementation,
            "0x4000000000000000000000000000000000000004".parse::<Address>().unwrap()
        );
        let typo = SAMPLE.replace(
            r#""submission": { "mode": "direct""#,
            r#""accounts": { "zerodev": null }, "submission": { "mode": "direct""#,
        );
        assert!(Config::from_json(&typo).is_err(), "unknown kinds are refused");
    }

    #[test]
    fn schemes_default_and_validation() {
        let mut config = Config::from_json(SAMPLE).unwrap();
        let schemes = config.scheme_configs().unwrap();
        assert_eq!(schemes.len(), 1);
        assert_eq!(schemes[0].id, AA_NATIVE_SCHEME_ID);
        config.schemes = Some(vec![SchemeConfig {
            enabled: true,
            id: "v2-eip155-upto".into(),
            chains: ChainIdPattern::wildcard("eip155"),
            config: None,
        }]);
        assert!(matches!(config.scheme_configs(), Err(ConfigError::UnknownScheme(_))));
        assert!(Config::from_json(r#"{"chains": {}, "nope": 1}"#).is_err());
        let mut config = Config::from_json(SAMPLE).unwrap();
        config.chains.insert("solana:1".into(), config.chains["eip155:689"].clone());
        assert!(matches!(config.chain_ids(), Err(ConfigError::BadChain(_))));
    }
}
