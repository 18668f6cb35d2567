//! Biconomy session keys through the CLI against a running `x402-aa devnet up`: `session grant
//! --account biconomy` deploys the owner's Biconomy account and enables the session module; the
//! session pays the example API; `session pause`/`resume`/`revoke` and `revoke-all
//! --account-kind biconomy` (owner signatures relayed to the module) stop it, and `pay` says why;
//! `session status` reads it back; `pay --owner-key --account biconomy` pays from the same account
//! as its owner.

use std::path::Path;

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use serde_json::Value;
use x402_aa_contracts::TestStablecoin as Erc20;

mod support;
use support::{DevnetUp, cli, parse, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn biconomy_session_grant_pay_pause_revoke_and_owner_pay() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("devnet.json");
    let devnet = DevnetUp::start(&state).await?;
    let info = &devnet.info;
    let rpc_url = text(&info["rpcUrl"])?;
    let provider: DynProvider = ProviderBuilder::new().connect_http(rpc_url.parse()?).erased();
    let url = text(&info["paidApi"]["url"])?;
    let merchant: Address = parse(&info["paidApi"]["merchant"])?;
    let usdt_token = info["tokens"]
        .as_array()
        .and_then(|tokens| tokens.iter().find(|t| t["scheme"] == "aa-native"))
        .ok_or_else(|| anyhow::anyhow!("no aa-native token printed"))?;
    let usdt: Address = parse(&usdt_token["address"])?;
    let minter: PrivateKeySigner = text(&usdt_token["minterKey"])?.parse()?;
    let keys = info["fundedKeys"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(keys.len() >= 4, "at least four funded keys: {info}");
    let owner_key = text(&keys[3]["privateKey"])?;
    let owner: Address = parse(&keys[3]["address"])?;

    let address = cli(
        &state,
        &["account", "address", "--account", "biconomy", "--owner"],
        &owner.to_string(),
    )?;
    let account: Address = parse(&address["account"])?;
    assert_eq!(address["deployed"], false, "counterfactual before the grant: {address}");
    let first = grant(&state, dir.path(), "first", merchant, &owner_key)?;
    assert_eq!(parse::<Address>(&first["session"]["account"])?, account, "{first}");
    assert_eq!(first["session"]["accountKind"], "biconomy", "{first}");
    assert!(!provider.get_code_at(account).await?.is_empty(), "the grant deployed the account");
    let as_minter = ProviderBuilder::new().wallet(minter).connect_http(rpc_url.parse()?);
    Erc20::new(usdt, &as_minter)
        .mint(account, U256::from(1_000_000u64))
        .send()
        .await?
        .get_receipt()
        .await?;
    let balance = || async { Erc20::new(usdt, &provider).balanceOf(merchant).call().await };

    // The session pays; paused it is refused, resumed it pays again.
    let session = Session::new(dir.path(), "first");
    let before = balance().await?;
    session.pays(&state, &url, account)?;
    let pause = cli(&state, &["session", "pause", &session.file, "--owner-key"], &owner_key)?;
    assert_eq!(pause["paused"], true, "{pause}");
    session.refused(&state, &url, "session_paused")?;
    let status = cli(&state, &["session", "status"], &session.file)?;
    assert_eq!(status["status"], "paused", "{status}");
    cli(&state, &["session", "resume", &session.file, "--owner-key"], &owner_key)?;
    session.pays(&state, &url, account)?;
    assert_eq!(balance().await?, before + U256::from(20_000u64), "two payments of 0.01 USDT");
    let status = cli(&state, &["session", "status"], &session.file)?;
    assert_eq!((&status["status"], &status["lifetimeSpent"]), (&"active".into(), &"20000".into()));

    // Revoked: refused, for good.
    cli(&state, &["session", "revoke", &session.file, "--owner-key"], &owner_key)?;
    session.refused(&state, &url, "session_revoked")?;
    let status = cli(&state, &["session", "status"], &session.file)?;
    assert_eq!(status["status"], "revoked", "{status}");

    // Revoke-all ends a second session of the account.
    grant(&state, dir.path(), "second", merchant, &owner_key)?;
    let second = Session::new(dir.path(), "second");
    second.pays(&state, &url, account)?;
    cli(
        &state,
        &[
            "session",
            "revoke-all",
            &account.to_string(),
            "--account-kind",
            "biconomy",
            "--owner-key",
        ],
        &owner_key,
    )?;
    second.refused(&state, &url, "session_revoked")?;
    let status = cli(&state, &["session", "status"], &second.file)?;
    assert_eq!(status["status"], "revoked (all sessions)", "{status}");

    // The owner pays from the same account with its own key (the ECDSA ownership module).
    let before = balance().await?;
    let paid = pay(&state, &url, &["--owner-key", &owner_key, "--account", "biconomy"])?;
    assert_eq!(paid["status"], 200, "{paid}");
    assert_eq!(paid["settlement"]["success"], true, "{paid}");
    assert_eq!(parse::<Address>(&paid["settlement"]["payer"])?, account, "{paid}");
    assert_eq!(balance().await?, before + U256::from(10_000u64));

    devnet.stop().await
}

/// `session grant --account biconomy`, 0.05 USDT/day, 0.01 per payment, `merchant` only, written
/// to `NAME.json` and `NAME.key` in `dir`.
fn grant(
    state: &Path,
    dir: &Path,
    name: &str,
    merchant: Address,
    owner_key: &str,
) -> anyhow::Result<Value> {
    let (file, key) = (dir.join(format!("{name}.json")), dir.join(format!("{name}.key")));
    cli(
        state,
        &[
            "session",
            "grant",
            "--account",
            "biconomy",
            "--spend-cap",
            "0.05 USDT",
            "--per-payment",
            "0.01 USDT",
            "--merchant",
            &merchant.to_string(),
            "--out",
            &file.to_string_lossy(),
            "--key-out",
            &key.to_string_lossy(),
            "--owner-key",
        ],
        owner_key,
    )
}

/// A session file and its key, as `pay --session --key` takes them.
struct Session {
    file: String,
    key: String,
}

impl Session {
    fn new(dir: &Path, name: &str) -> Self {
        let path = |ext: &str| dir.join(format!("{name}.{ext}")).to_string_lossy().into_owned();
        Self { file: path("json"), key: path("key") }
    }

    fn args(&self) -> [&str; 4] {
        ["--session", &self.file, "--key", &self.key]
    }

    /// One paid call, settled from `account`.
    fn pays(&self, state: &Path, url: &str, account: Address) -> anyhow::Result<()> {
        let paid = pay(state, url, &self.args())?;
        anyhow::ensure!(paid["status"] == 200, "{paid}");
        anyhow::ensure!(paid["settlement"]["success"] == true, "{paid}");
        anyhow::ensure!(parse::<Address>(&paid["settlement"]["payer"])? == account, "{paid}");
        Ok(())
    }

    /// `pay` fails and names `reason`.
    fn refused(&self, state: &Path, url: &str, reason: &str) -> anyhow::Result<()> {
        let refused = pay(state, url, &self.args()).expect_err("refused");
        anyhow::ensure!(refused.to_string().contains(reason), "expected {reason}: {refused}");
        Ok(())
    }
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
