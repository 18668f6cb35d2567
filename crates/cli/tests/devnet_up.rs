//! `x402-aa devnet up` is enough to pay: the real binary is started, and only what it prints with
//! `--json` configures the payers that follow —
//!
//! 1. the official x402 TypeScript client (`@x402/fetch` + `@x402/evm`'s `exact`) pays the
//!    example paid API from a printed key (issue 15's "done when");
//! 2. `x402-aa pay --payer-key` pays it with `exact` from another printed key;
//! 3. `x402-aa pay --owner-key` pays it with aa-native from a printed key's SimpleAccount
//!    (counterfactual, deployed by this payment, gas sponsored by the printed paymaster).
//!
//! Each payment is checked on chain (the token moved by exactly the printed price, from the
//! payer to the printed merchant; the settlement transaction succeeded) and through the
//! `PAYMENT-RESPONSE` the payer received. Needs `node` and the repo's `node_modules` (`npm ci`).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use serde_json::Value;
use tokio::process::Command;

// Both devnet tokens are plain ERC-20s for `balanceOf`.
use x402_aa_contracts::TestStablecoin as Erc20;

mod support;
use support::{DevnetUp, cli, parse, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_devnet_up_prints_is_enough_to_pay() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("devnet.json");
    let devnet = DevnetUp::start(&state).await?;
    let info = &devnet.info;
    let provider: DynProvider = ProviderBuilder::new()
        .connect_http(info["rpcUrl"].as_str().unwrap_or("").parse()?)
        .erased();
    let url = text(&info["paidApi"]["url"])?;
    let network = text(&info["network"])?;
    let merchant: Address = parse(&info["paidApi"]["merchant"])?;
    let price = |scheme: &str| -> anyhow::Result<(Address, U256)> {
        let prices = info["paidApi"]["prices"].as_array().cloned().unwrap_or_default();
        let p = prices
            .iter()
            .find(|p| p["scheme"] == scheme)
            .ok_or_else(|| anyhow::anyhow!("no {scheme} price printed: {info}"))?;
        Ok((parse(&p["asset"])?, parse(&p["amount"])?))
    };
    // The owner console runs beside the stack and serves its page.
    let console = text(&info["consoleUrl"])?;
    let page = reqwest::get(&console).await?;
    assert_eq!(page.status(), 200, "owner console at {console}");
    let (usdc, exact_amount) = price("exact")?;
    let (usdt, aa_amount) = price("aa-native")?;
    assert!(
        info["facilitator"]["schemes"].as_array().is_some_and(|s| s.len() == 2),
        "the facilitator serves both schemes: {}",
        info["facilitator"]
    );
    let exact_token = info["tokens"]
        .as_array()
        .and_then(|tokens| tokens.iter().find(|t| t["scheme"] == "exact"))
        .ok_or_else(|| anyhow::anyhow!("no exact token printed"))?;
    assert_eq!(parse::<Address>(&exact_token["address"])?, usdc);
    assert!(exact_token["minter"].is_string() && exact_token["minterKey"].is_string());
    let keys = info["fundedKeys"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(keys.len() >= 5, "at least five funded keys: {info}");
    let moved = Moved { provider: &provider, merchant };

    // 1. The official TS client, with a printed key, the printed URL, network and token.
    let payer: Address = parse(&keys[0]["address"])?;
    let before = moved.balances(usdc, payer).await?;
    let paid = ts_client(&url, &text(&keys[0]["privateKey"])?, &network, usdc).await?;
    assert_eq!(paid["status"], 200, "{paid}");
    let tx = settled(&paid["paymentResponse"], payer, &network)?;
    moved.check(tx, usdc, payer, before, exact_amount).await?;

    // 2. `pay --payer-key`: exact from a plain key.
    let payer: Address = parse(&keys[1]["address"])?;
    let before = moved.balances(usdc, payer).await?;
    let paid = pay(&state, &url, &["--payer-key", &text(&keys[1]["privateKey"])?])?;
    assert_eq!(paid["status"], 200, "{paid}");
    let tx = settled(&paid["settlement"], payer, &network)?;
    moved.check(tx, usdc, payer, before, exact_amount).await?;

    // 3. `pay --owner-key`: aa-native from the key's counterfactual SimpleAccount.
    let account: Address = parse(&keys[2]["simpleAccount"])?;
    assert!(provider.get_code_at(account).await?.is_empty(), "counterfactual before paying");
    let before = moved.balances(usdt, account).await?;
    let paid = pay(&state, &url, &["--owner-key", &text(&keys[2]["privateKey"])?])?;
    assert_eq!(paid["status"], 200, "{paid}");
    let tx = settled(&paid["settlement"], account, &network)?;
    moved.check(tx, usdt, account, before, aa_amount).await?;
    assert!(!provider.get_code_at(account).await?.is_empty(), "deployed by its first payment");

    // 4. A session key on a Kernel account, granted and paid through the CLI: the grant deploys
    // the owner's Kernel account and installs the session validator; two payments fill the cap,
    // the third is refused before signing.
    let owner_key = text(&keys[3]["privateKey"])?;
    let owner: Address = parse(&keys[3]["address"])?;
    let address =
        cli(&state, &["account", "address", "--account", "kernel", "--owner"], &owner.to_string())?;
    let kernel_account: Address = parse(&address["account"])?;
    let (session_file, key_file) = (state.with_file_name("k.json"), state.with_file_name("k.key"));
    let granted = cli(
        &state,
        &[
            "session",
            "grant",
            "--account",
            "kernel",
            "--spend-cap",
            "0.02 USDT",
            "--per-payment",
            "0.01 USDT",
            "--merchant",
            &merchant.to_string(),
            "--out",
            &session_file.to_string_lossy(),
            "--key-out",
            &key_file.to_string_lossy(),
            "--owner-key",
        ],
        &owner_key,
    )?;
    assert_eq!(parse::<Address>(&granted["session"]["account"])?, kernel_account, "{granted}");
    assert_eq!(granted["session"]["accountKind"], "kernel", "{granted}");
    let usdt_token = info["tokens"]
        .as_array()
        .and_then(|tokens| tokens.iter().find(|t| t["scheme"] == "aa-native"))
        .ok_or_else(|| anyhow::anyhow!("no aa-native token printed"))?;
    let minter_key: alloy::signers::local::PrivateKeySigner =
        text(&usdt_token["minterKey"])?.parse()?;
    let as_minter = ProviderBuilder::new()
        .wallet(minter_key)
        .connect_http(info["rpcUrl"].as_str().unwrap_or("").parse()?);
    Erc20::new(usdt, &as_minter)
        .mint(kernel_account, U256::from(1_000_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    let session_args =
        ["--session", &*session_file.to_string_lossy(), "--key", &*key_file.to_string_lossy()];
    for _ in 0..2 {
        let before = moved.balances(usdt, kernel_account).await?;
        let paid = pay(&state, &url, &session_args)?;
        assert_eq!(paid["status"], 200, "{paid}");
        let tx = settled(&paid["settlement"], kernel_account, &network)?;
        moved.check(tx, usdt, kernel_account, before, aa_amount).await?;
    }
    let refused = pay(&state, &url, &session_args).expect_err("over the Kernel session's cap");
    assert!(refused.to_string().contains("spend_cap_exceeded"), "{refused}");
    let status = cli(&state, &["session", "status"], &session_file.to_string_lossy())?;
    assert_eq!(status["lifetimeSpent"], "20000", "{status}");

    // 5. `pay --owner-key --account kernel`: aa-native from the key's counterfactual Kernel
    // account, deployed by its first payment.
    let owner: Address = parse(&keys[4]["address"])?;
    let address =
        cli(&state, &["account", "address", "--account", "kernel", "--owner"], &owner.to_string())?;
    let kernel_owned: Address = parse(&address["account"])?;
    Erc20::new(usdt, &as_minter)
        .mint(kernel_owned, U256::from(1_000_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    let before = moved.balances(usdt, kernel_owned).await?;
    let paid =
        pay(&state, &url, &["--owner-key", &text(&keys[4]["privateKey"])?, "--account", "kernel"])?;
    assert_eq!(paid["status"], 200, "{paid}");
    let tx = settled(&paid["settlement"], kernel_owned, &network)?;
    moved.check(tx, usdt, kernel_owned, before, aa_amount).await?;

    devnet.stop().await?;
    assert!(!state.exists(), "devnet up removes its state file when stopped");
    Ok(())
}

/// The payer options exclude each other, and a key whose scheme the server does not offer is
/// told so (with what the server does offer), before anything is signed.
#[tokio::test]
async fn pay_refuses_ambiguous_payers_and_unpayable_offers() -> anyhow::Result<()> {
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_x402-aa"))
        .args(["pay", "http://127.0.0.1:1/", "--payer-key", key, "--owner-key", key])
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    // A server offering aa-native only: an exact payer has nothing to pay.
    let required = serde_json::json!({
        "x402Version": 2,
        "resource": { "url": "http://127.0.0.1/joke", "description": "", "mimeType": "" },
        "accepts": [{
            "scheme": "aa-native",
            "network": "eip155:31337",
            "amount": "10000",
            "asset": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "payTo": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "maxTimeoutSeconds": 60,
            "extra": {}
        }]
    });
    let header = x402_aa::x402::encode_header(&required)?;
    let app =
        axum::Router::new().route(
            "/joke",
            axum::routing::get(move || {
                let header = header.clone();
                async move {
                    (axum::http::StatusCode::PAYMENT_REQUIRED, [("payment-required", header)], "")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/joke", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let run = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_x402-aa"))
                .args(["pay", &url, "--payer-key", key])
                .output()
        })
    };
    let output = run.await??;
    server.abort();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the server offers no payment this key can pay")
            && stderr.contains("--payer-key pays exact")
            && stderr.contains("aa-native on eip155:31337"),
        "{stderr}"
    );
    Ok(())
}

/// `x402-aa --json pay URL ARGS…` against the running devnet; its JSON result.
fn pay(state: &Path, url: &str, args: &[&str]) -> anyhow::Result<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_x402-aa"))
        .arg("--json")
        .arg("--devnet-state")
        .arg(state)
        .args(["pay", url, "--ledger"])
        .arg(state.with_file_name("ledger.sqlite"))
        .args(args)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pay {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_str(&stdout)?)
}

/// `crates/stack/tests/interop/ts-client.mjs`: the official client paying `url` with `exact`.
async fn ts_client(url: &str, key: &str, network: &str, asset: Address) -> anyhow::Result<Value> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../stack/tests/interop/ts-client.mjs");
    let output = Command::new("node")
        .arg(script)
        .arg(url)
        .env("PAYER_KEY", key)
        .env("NETWORK", network)
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

/// The settlement transaction of a successful `PAYMENT-RESPONSE` (JSON) naming `network` and
/// `payer`.
fn settled(response: &Value, payer: Address, network: &str) -> anyhow::Result<B256> {
    anyhow::ensure!(response["success"] == true, "PAYMENT-RESPONSE is not a success: {response}");
    anyhow::ensure!(response["network"] == network, "network: {response}");
    let named: Address = parse(&response["payer"])?;
    anyhow::ensure!(named == payer, "payer {named}, expected {payer}: {response}");
    parse(&response["transaction"])
}

/// Token balances of payers and the merchant.
struct Moved<'a> {
    provider: &'a DynProvider,
    merchant: Address,
}

impl Moved<'_> {
    async fn balances(&self, token: Address, payer: Address) -> anyhow::Result<(U256, U256)> {
        let token = Erc20::new(token, self.provider);
        Ok((token.balanceOf(payer).call().await?, token.balanceOf(self.merchant).call().await?))
    }

    /// `tx` succeeded and moved exactly `amount` of `token` from `payer` to the merchant.
    async fn check(
        &self,
        tx: B256,
        token: Address,
        payer: Address,
        before: (U256, U256),
        amount: U256,
    ) -> anyhow::Result<()> {
        let receipt = self
            .provider
            .get_transaction_receipt(tx)
            .await?
            .ok_or_else(|| anyhow::anyhow!("settlement {tx} is not on chain"))?;
        anyhow::ensure!(receipt.status(), "settlement {tx} reverted");
        let after = self.balances(token, payer).await?;
        anyhow::ensure!(
            after == (before.0 - amount, before.1 + amount),
            "token {token}: balances (payer, merchant) {before:?} -> {after:?}, expected a move of {amount}"
        );
        Ok(())
    }
}
