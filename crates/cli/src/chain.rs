//! Where the chain is and what is deployed on it: a network preset, overridden by flags, or the state
//! file a running `devnet up` wrote.

use std::path::Path;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use x402_aa::accounts::biconomy;
use x402_aa_session::TokenInfo;

use crate::{Cli, network};

/// What `devnet up` started, for the other commands (all devnet keys are anvil's public test keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DevnetState {
    pub(crate) rpc_url: String,
    pub(crate) chain_id: u64,
    pub(crate) entry_point: Address,
    pub(crate) simple_account_factory: Address,
    pub(crate) session_account_factory: Address,
    pub(crate) settlement: Address,
    pub(crate) token: Address,
    pub(crate) verifying_paymaster: Address,
    /// Absent in state files of builds before Kernel sessions.
    #[serde(default)]
    pub(crate) kernel_session_validator: Option<Address>,
    /// `BiconomySessionModule` (session keys on Biconomy accounts); absent in state files of
    /// builds before Biconomy sessions.
    #[serde(default)]
    pub(crate) biconomy_session_module: Option<Address>,
    /// The devnet's Biconomy v2 build, which is not at Biconomy's canonical addresses; absent in
    /// state files of builds before Biconomy sessions.
    #[serde(default)]
    pub(crate) biconomy: Option<BiconomyState>,
    /// `SafeSessionModule` (session keys on Safe accounts); absent in state files of builds
    /// before Safe sessions.
    #[serde(default)]
    pub(crate) safe_session_module: Option<Address>,
    pub(crate) paymaster_url: String,
    pub(crate) paymaster_api_key: String,
    pub(crate) funded_keys: Vec<B256>,
}

/// Where a devnet's Biconomy v2 contracts are: what account addresses and initCode derive from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BiconomyState {
    pub(crate) factory: Address,
    pub(crate) implementation: Address,
    pub(crate) ecdsa_module: Address,
}

impl BiconomyState {
    pub(crate) fn deployment(self) -> biconomy::Deployment {
        biconomy::Deployment::vendored(self.factory, self.implementation, self.ecdsa_module)
    }
}

impl DevnetState {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "no running devnet found at {} (start one with `x402-aa devnet up`)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a devnet state file", path.display()))
    }
}

/// Resolved chain context for one command.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub(crate) rpc_url: String,
    pub(crate) chain_id: u64,
    pub(crate) entry_point: Address,
    pub(crate) session_account_factory: Option<Address>,
    pub(crate) settlement: Option<Address>,
    pub(crate) token: Option<TokenInfo>,
    pub(crate) paymaster: Option<Address>,
    pub(crate) kernel_session_validator: Option<Address>,
    pub(crate) biconomy_session_module: Option<Address>,
    /// Biconomy v2's contracts: canonical, except on the devnet.
    pub(crate) biconomy: biconomy::Deployment,
    /// `SafeSessionModule` (session keys on Safes), from a devnet's state file.
    pub(crate) safe_session_module: Option<Address>,
}

impl Chain {
    pub(crate) fn resolve(cli: &Cli) -> anyhow::Result<Self> {
        let preset = network::preset(&cli.network).with_context(|| {
            format!("unknown network {:?} (devnet, nero-testnet, nero-mainnet)", cli.network)
        })?;
        if preset.name == "devnet" {
            let state = DevnetState::load(&cli.devnet_state)?;
            return Ok(Self {
                rpc_url: cli.rpc_url.clone().unwrap_or_else(|| state.rpc_url.clone()),
                chain_id: state.chain_id,
                entry_point: state.entry_point,
                session_account_factory: Some(state.session_account_factory),
                settlement: Some(state.settlement),
                token: Some(TokenInfo { address: state.token, symbol: "USDT".into(), decimals: 6 }),
                paymaster: Some(state.verifying_paymaster),
                kernel_session_validator: state.kernel_session_validator,
                biconomy_session_module: state.biconomy_session_module,
                biconomy: state
                    .biconomy
                    .map_or(biconomy::Deployment::CANONICAL, BiconomyState::deployment),
                safe_session_module: state.safe_session_module,
            });
        }
        let rpc_url = cli
            .rpc_url
            .clone()
            .or_else(|| preset.rpc_url.map(str::to_owned))
            .context("no RPC URL: pass --rpc-url")?;
        Ok(Self {
            rpc_url,
            chain_id: preset.chain_id,
            entry_point: preset.entry_point,
            session_account_factory: preset.session_account_factory,
            settlement: preset.settlement,
            token: preset.token.map(|(address, symbol, decimals)| TokenInfo {
                address,
                symbol: symbol.to_owned(),
                decimals,
            }),
            paymaster: None,
            kernel_session_validator: None,
            biconomy_session_module: None,
            biconomy: biconomy::Deployment::CANONICAL,
            safe_session_module: None,
        })
    }

    pub(crate) fn provider(
        &self,
        signer: Option<&PrivateKeySigner>,
    ) -> anyhow::Result<DynProvider> {
        let url = self.rpc_url.parse().with_context(|| format!("bad RPC URL {}", self.rpc_url))?;
        Ok(match signer {
            Some(signer) => ProviderBuilder::new()
                .wallet(EthereumWallet::from(signer.clone()))
                .connect_http(url)
                .erased(),
            None => ProviderBuilder::new().connect_http(url).erased(),
        })
    }

    pub(crate) fn session_factory(&self) -> anyhow::Result<Address> {
        self.session_account_factory
            .context("SessionKeyAccountFactory is not deployed on this network; pass it explicitly")
    }

    pub(crate) fn kernel_session_validator(&self) -> anyhow::Result<Address> {
        self.kernel_session_validator
            .context("no KernelSessionValidator known for this network (Kernel sessions need one)")
    }

    pub(crate) fn biconomy_session_module(&self) -> anyhow::Result<Address> {
        self.biconomy_session_module
            .context("no BiconomySessionModule known for this network (Biconomy sessions need one)")
    }

    pub(crate) fn safe_session_module(&self) -> anyhow::Result<Address> {
        self.safe_session_module
            .context("no SafeSessionModule known for this network (Safe sessions need one)")
    }

    pub(crate) fn settlement(&self) -> anyhow::Result<Address> {
        self.settlement.context("no settlement contract known for this network")
    }

    pub(crate) fn token(&self) -> anyhow::Result<TokenInfo> {
        self.token.clone().context("no token known for this network")
    }

    pub(crate) async fn now(&self, provider: &DynProvider) -> anyhow::Result<u64> {
        let block = provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await?
            .context("chain has no latest block")?;
        Ok(block.header.timestamp)
    }
}
