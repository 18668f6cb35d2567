//! Interoperability with the official x402 TypeScript packages (`@x402/fetch`, `@x402/evm`,
//! `@x402/express`, `@x402/core`, pinned in `package.json`), on one devnet stack:
//!
//! 1. the official client pays our paywall with `exact`;
//! 2. an official `@x402/express` server (`examples/ts-merchant`) pointed at our facilitator is
//!    paid with `exact` by the official client and with aa-native by our client;
//! 3. our client pays that official server with `exact` from a plain key and with aa-native from
//!    a session key and from a SimpleAccount's owner key.
//!
//! Every payment is checked on chain (the token balances moved by exactly the price, the
//! settlement transaction succeeded) and through the `PAYMENT-RESPONSE` the payer received.
//! Needs `node` and the repo's `node_modules` (`npm ci`), as `make test` provides.

use std::{path::PathBuf, process::Stdio, time::Duration};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{Provider, ext::AnvilApi},
    signers::local::PrivateKeySigner,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use x402_aa_contracts::SimpleAccountFactory;
use x402_aa_devnet::Devnet;
use x402_aa_rpc::PaymasterClient;
use x402_aa_session::{
    Scopes,
    client::{AaNativeScheme, PaidResponse, X402PayingClient},
    per_day,
    signer::{OwnerAccount, PaymentAccount, PaymentSigner},
};
use x402_aa_stack::{
    EXACT_TOKEN_EIP712_NAME, EXACT_TOKEN_EIP712_VERSION, LocalStack, StackOptions, session_account,
};
use x402_chain_eip155::v2_eip155_exact::client::V2Eip155ExactClient;

/// 0.01 of a 6-decimal token: the price on every route here.
const PRICE: u64 = 10_000;
/// The paymaster API key of `StackOptions`' default.
const PAYMASTER_API_KEY: &str = "local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_typescript_peers_pay_and_are_paid() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    // The Safe singleton factory's presigned deployment (100 gwei) leaves anvil's gas-price
    // oracle at ~100 gwei, above the paymaster's fee cap, until a few blocks have passed.
    devnet.provider().anvil_mine(Some(8), None).await?;
    let merchant = devnet.keys.spare[5].address();
    let options = StackOptions::new(devnet.keys.spare[6].clone(), merchant, "0.01 USDT");
    let stack = LocalStack::start(&devnet, options).await?;
    let a = devnet.addresses;
    let usdc = Balances { devnet: &devnet, token: a.eip3009_token, merchant };
    let usdt = Balances { devnet: &devnet, token: a.token, merchant };

    // 1. The official client pays our paywall, which offers aa-native and exact: it picks exact.
    let plain = devnet.keys.spare[0].clone();
    devnet.mint_eip3009(plain.address(), U256::from(100 * PRICE)).await?;
    let before = usdc.of(plain.address()).await?;
    let paid = ts_client(&stack.paid_url(), &plain, a.eip3009_token).await?;
    assert_eq!(paid["status"], 200, "{paid}");
    usdc.check(&settled(&paid["paymentResponse"], plain.address())?, before, plain.address())
        .await?;

    // 2. The official server in front of our facilitator.
    let server = TsMerchant::start(&stack, &devnet, merchant).await?;
    let url = format!("{}/joke", server.url);

    //    a. paid by the official client with exact;
    let before = usdc.of(plain.address()).await?;
    let paid = ts_client(&url, &plain, a.eip3009_token).await?;
    assert_eq!(paid["status"], 200, "{paid}");
    usdc.check(&settled(&paid["paymentResponse"], plain.address())?, before, plain.address())
        .await?;

    //    b. paid by our client with aa-native from a session key.
    let owner = devnet.keys.spare[1].clone();
    let scopes = Scopes::new()
        .spend_cap("1 USDT".parse()?, per_day())
        .per_payment_max("0.1 USDT".parse()?)
        .merchants([merchant])
        .valid_for(Duration::from_secs(3600));
    let account = session_account(
        &devnet,
        &owner,
        PrivateKeySigner::random(),
        &scopes,
        B256::repeat_byte(1),
        false,
        U256::from(100 * PRICE),
    )
    .await?;
    let client = aa_native_client(&devnet, &stack, account).await?;
    let sender = client.1;
    let before = usdt.of(sender).await?;
    let paid = client.0.get(&url).await?;
    assert_eq!(paid.status(), 200);
    usdt.check(&our_settlement(&paid, sender)?, before, sender).await?;

    // 3. Our client pays the official server with exact from a plain key ...
    let exact =
        X402PayingClient::builder().register(V2Eip155ExactClient::new(plain.clone())).build();
    let before = usdc.of(plain.address()).await?;
    let paid = exact.get(&url).await?;
    assert_eq!(paid.status(), 200);
    usdc.check(&our_settlement(&paid, plain.address())?, before, plain.address()).await?;

    //    ... and with aa-native from a SimpleAccount's owner key (deployed by its first payment).
    let owner = devnet.keys.spare[2].clone();
    let factory = SimpleAccountFactory::new(a.simple_account_factory, devnet.provider());
    let simple = factory.getAddress(owner.address(), U256::ZERO).call().await?;
    devnet.mint(simple, U256::from(100 * PRICE)).await?;
    let account = OwnerAccount::simple_account(owner, simple, a.token, a.settlement);
    let (client, sender) = aa_native_client(&devnet, &stack, account).await?;
    let before = usdt.of(sender).await?;
    let paid = client.get(&url).await?;
    assert_eq!(paid.status(), 200);
    usdt.check(&our_settlement(&paid, sender)?, before, sender).await?;

    drop(server);
    stack.shutdown().await?;
    Ok(())
}

/// The settlement transaction of a successful `PAYMENT-RESPONSE` (JSON), checked to name the
/// devnet's network and `payer`.
fn settled(response: &Value, payer: Address) -> anyhow::Result<B256> {
    anyhow::ensure!(response["success"] == true, "PAYMENT-RESPONSE is not a success: {response}");
    anyhow::ensure!(response["network"] == "eip155:31337", "network: {response}");
    let named: Address = serde_json::from_value(response["payer"].clone())?;
    anyhow::ensure!(named == payer, "payer {named}, expected {payer}: {response}");
    Ok(serde_json::from_value(response["transaction"].clone())?)
}

fn our_settlement(paid: &PaidResponse, payer: Address) -> anyhow::Result<B256> {
    let settlement =
        paid.settlement.as_ref().ok_or_else(|| anyhow::anyhow!("no PAYMENT-RESPONSE"))?;
    settled(&serde_json::to_value(settlement)?, payer)
}

/// One token's balances of a payer and the merchant.
struct Balances<'a> {
    devnet: &'a Devnet,
    token: Address,
    merchant: Address,
}

impl Balances<'_> {
    async fn of(&self, payer: Address) -> anyhow::Result<(U256, U256)> {
        let token = x402_aa_contracts::TestStablecoin::new(self.token, self.devnet.provider());
        Ok((token.balanceOf(payer).call().await?, token.balanceOf(self.merchant).call().await?))
    }

    /// `tx` succeeded and moved exactly [`PRICE`] of this token from `payer` to the merchant.
    async fn check(&self, tx: &B256, before: (U256, U256), payer: Address) -> anyhow::Result<()> {
        let receipt = self
            .devnet
            .provider()
            .get_transaction_receipt(*tx)
            .await?
            .ok_or_else(|| anyhow::anyhow!("settlement {tx} is not on chain"))?;
        anyhow::ensure!(receipt.status(), "settlement {tx} reverted");
        let price = U256::from(PRICE);
        let after = self.of(payer).await?;
        anyhow::ensure!(
            after == (before.0 - price, before.1 + price),
            "token {}: balances (payer, merchant) {before:?} -> {after:?}, expected a move of {price}",
            self.token
        );
        Ok(())
    }
}

/// Our paying client with only aa-native from `account`, sponsored by the stack's paymaster.
async fn aa_native_client<A: PaymentAccount + 'static>(
    devnet: &Devnet,
    stack: &LocalStack,
    account: A,
) -> anyhow::Result<(X402PayingClient, Address)> {
    let sender = account.sender();
    let provider = devnet.provider().clone();
    let signer = PaymentSigner::new(account, provider.clone())
        .await?
        .paymaster(PaymasterClient::new(&stack.paymaster.url())?, PAYMASTER_API_KEY);
    let client =
        X402PayingClient::builder().register(AaNativeScheme::new(signer, provider)).build();
    Ok((client, sender))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `ts-client.mjs`: the official client paying `url` with `exact` from `payer` in `asset`.
async fn ts_client(url: &str, payer: &PrivateKeySigner, asset: Address) -> anyhow::Result<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/ts-client.mjs");
    let output = Command::new("node")
        .arg(script)
        .arg(url)
        .env("PAYER_KEY", payer.to_bytes().to_string())
        .env("NETWORK", "eip155:31337")
        .env("ASSET", asset.to_checksum(None))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output).await??;
    anyhow::ensure!(
        output.status.success(),
        "ts-client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout)?;
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| anyhow::anyhow!("ts-client printed {stdout:?}: {e}"))
}

/// `examples/ts-merchant/server.mjs` on a free port, killed on drop.
struct TsMerchant {
    url: String,
    _child: Child,
}

impl TsMerchant {
    async fn start(stack: &LocalStack, devnet: &Devnet, merchant: Address) -> anyhow::Result<Self> {
        let a = devnet.addresses;
        let mut child = Command::new("node")
            .arg(repo_root().join("examples/ts-merchant/server.mjs"))
            .env("PORT", "0")
            .env("FACILITATOR_URL", stack.facilitator.url())
            .env("NETWORK", format!("eip155:{}", devnet.chain_id()))
            .env("PAY_TO", merchant.to_checksum(None))
            .env("PRICE_ATOMIC", PRICE.to_string())
            .env("EXACT_ASSET", a.eip3009_token.to_checksum(None))
            .env("EXACT_EIP712_NAME", EXACT_TOKEN_EIP712_NAME)
            .env("EXACT_EIP712_VERSION", EXACT_TOKEN_EIP712_VERSION)
            .env("AA_NATIVE_ASSET", a.token.to_checksum(None))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("listening ") {
                    return Ok(url.trim().to_owned());
                }
            }
            anyhow::bail!("the TS merchant exited before listening")
        };
        let url = tokio::time::timeout(Duration::from_secs(30), wait).await??;
        Ok(Self { url, _child: child })
    }
}
