//! The devnet stack, the owner's funded account and a console on them.

use std::path::{Path, PathBuf};

use alloy::{
    primitives::{Address, U256},
    providers::ext::AnvilApi,
    signers::local::PrivateKeySigner,
};
use x402_aa_console::{ConsoleConfig, ConsoleHandle};
use x402_aa_contracts::SessionKeyAccountFactory;
use x402_aa_devnet::Devnet;
use x402_aa_session::sdk::{AccountKind, Network, PayError, PayingClient, PaymentOutcome};
use x402_aa_stack::{LocalStack, StackOptions};

pub(crate) const API_KEY: &str = "console";

pub(crate) fn usd(cents: u64) -> U256 {
    U256::from(cents * 10_000)
}

pub(crate) struct Chain {
    pub(crate) devnet: Devnet,
    pub(crate) stack: LocalStack,
    pub(crate) merchant: Address,
    pub(crate) owner: PrivateKeySigner,
    /// The owner's SessionKeyAccount (salt 0), funded with 5 USDT.
    pub(crate) account: Address,
}

impl Chain {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let devnet = Devnet::spawn().await?;
        // Push the deployment's presigned 100 gwei transaction out of alloy's fee estimate.
        devnet.provider().anvil_mine(Some(10), None).await?;
        let merchant = devnet.keys.spare[5].address();
        let options = StackOptions::new(devnet.keys.spare[6].clone(), merchant, "0.25 USDT")
            .paymaster_api_key(API_KEY);
        let stack = LocalStack::start(&devnet, options).await?;
        let owner = devnet.keys.spare[0].clone();
        let account = SessionKeyAccountFactory::new(
            devnet.addresses.session_account_factory,
            devnet.provider(),
        )
        .getAddress(owner.address(), U256::ZERO)
        .call()
        .await?;
        devnet.mint(account, usd(500)).await?;
        Ok(Self { devnet, stack, merchant, owner, account })
    }

    /// A console on this devnet keeping its files in `data`; the caller sets who signs.
    pub(crate) fn config(&self, data: &Path) -> ConsoleConfig {
        let a = self.devnet.addresses;
        let mut config = ConsoleConfig::new(self.devnet.rpc_url(), a.settlement, a.token, data);
        config.chain_id = Some(self.devnet.chain_id());
        config.session_account_factory = Some(a.session_account_factory);
        config.paymaster = Some(a.verifying_paymaster);
        config
    }

    pub(crate) async fn console(&self, config: ConsoleConfig) -> anyhow::Result<ConsoleHandle> {
        Ok(x402_aa_console::serve(config).await?)
    }

    fn network(&self) -> Network {
        let a = self.devnet.addresses;
        Network::devnet()
            .with_rpc_url(self.devnet.rpc_url())
            .with_paymaster(self.stack.paymaster.url(), API_KEY)
            .with_paymaster_contract(a.verifying_paymaster)
            .with_settlement(a.settlement)
            .with_token(a.token)
            .with_factory(AccountKind::SessionKeyAccount, a.session_account_factory)
    }

    /// The agent, holding only the session file and key the console wrote.
    pub(crate) async fn agent(&self, session: &Path, key: &Path) -> anyhow::Result<Agent> {
        let client = PayingClient::session()
            .session_file(session)
            .key_file(key)
            .network(self.network())
            .build()
            .await?;
        Ok(Agent { client, url: self.stack.paid_url() })
    }

    pub(crate) async fn merchant_balance(&self) -> anyhow::Result<U256> {
        Ok(self.devnet.token_balance(self.merchant).await?)
    }
}

pub(crate) struct Agent {
    client: PayingClient,
    url: String,
}

impl Agent {
    /// One paid call; `Ok` only when it was paid and settled on chain.
    pub(crate) async fn pay(&self) -> anyhow::Result<()> {
        let paid = self.client.get(&self.url).send().await?;
        anyhow::ensure!(paid.status().is_success(), "HTTP {}", paid.status());
        match paid.payment.map(|p| p.outcome) {
            Some(PaymentOutcome::Settled { .. }) => Ok(()),
            other => anyhow::bail!("not settled: {other:?}"),
        }
    }

    /// One call that must be refused; the refusal's x402 reason.
    pub(crate) async fn refused(&self) -> anyhow::Result<&'static str> {
        match self.client.get(&self.url).send().await {
            Err(e) => Ok(PayError::reason(&e)),
            Ok(paid) => anyhow::bail!(
                "paid although it should be refused: HTTP {} {:?}",
                paid.status(),
                paid.payment.map(|p| p.outcome)
            ),
        }
    }
}

/// Screenshots go under the build directory: `<target>/console-screenshots`.
pub(crate) fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("console-screenshots")
}
