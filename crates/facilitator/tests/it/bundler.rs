//! The bundler submission path: an unreachable bundler, and a real one (`@pimlico/alto`).

use std::{path::PathBuf, process::Stdio, time::Duration};

use alloy::primitives::{U256, hex};
use x402_aa::ENTRY_POINT_V06;
use x402_aa_facilitator::store::{SqliteStore, Status, Store};
use x402_aa_rpc::{BundlerClient, RetryPolicy};

use crate::common::{Env, SessionOpts, USD, body};

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[tokio::test]
async fn unreachable_bundler_is_a_bundler_error_and_the_payment_stays_retryable()
-> anyhow::Result<()> {
    let env = Env::new().await?;
    // Nothing listens there once the probe socket is closed.
    let dead = format!("http://127.0.0.1:{}", free_port()?);
    let f = env.start(env.with_bundler(&dead)).await?;
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let paid = payer.pay(&accepted, 1).await?;
    let b = body(&paid, &accepted);

    let (_, v) = f.verify(&b).await?;
    assert_eq!(v["isValid"], true, "verify needs no bundler: {v}");
    let (status, s) = f.settle(&b).await?;
    assert_eq!(status, 200);
    assert_eq!(s["success"], false, "{s}");
    assert_eq!(s["errorReason"], "bundler_error", "{s}");
    assert_eq!(s["transaction"], "");

    let row = SqliteStore::open(env.registry_path())?
        .get(env.devnet.chain_id(), paid.request_hash)
        .await?
        .expect("row");
    assert_eq!(row.status, Status::Failed, "not left in_flight: {row:?}");
    assert!(row.retryable);
    f.stop().await?;

    // The same payment settles once the facilitator can reach the chain.
    let f = env.start(env.config()).await?;
    let (_, s) = f.settle(&b).await?;
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(env.merchant_balance().await?, U256::from(USD));
    f.stop().await
}

/// `node_modules/@pimlico/alto` (0.0.20) from the workspace's npm install, if present.
fn alto_cli() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules/@pimlico/alto/esm/cli/alto.js");
    path.is_file().then_some(path)
}

#[tokio::test]
async fn settles_through_alto() -> anyhow::Result<()> {
    let Some(cli) = alto_cli() else {
        eprintln!("SKIP: node_modules/@pimlico/alto is not installed (npm ci)");
        return Ok(());
    };
    let env = Env::new().await?;
    let port = free_port()?;
    let (executor, utility) = (&env.devnet.keys.spare[5], &env.devnet.keys.spare[6]);
    let log = std::fs::File::create(env.dir.path().join("alto.log"))?;
    // alto listens on 0.0.0.0 (no host flag); we only ever talk to it over 127.0.0.1.
    let mut alto = tokio::process::Command::new("node")
        .arg(&cli)
        .args(["--entrypoints", &ENTRY_POINT_V06.to_string()])
        .args(["--rpc-url", env.devnet.rpc_url()])
        .args(["--port", &port.to_string()])
        .args(["--executor-private-keys", &hex::encode_prefixed(executor.to_bytes())])
        .args(["--utility-private-key", &hex::encode_prefixed(utility.to_bytes())])
        .args(["--safe-mode", "false"])
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}");
    let probe = BundlerClient::new(&url)?
        .with_retry(RetryPolicy::none())
        .with_timeout(Duration::from_secs(1));
    let started = tokio::time::Instant::now();
    while probe.supported_entry_points().await.is_err() {
        if let Some(status) = alto.try_wait()? {
            anyhow::bail!(
                "alto exited with {status}; see {}",
                env.dir.path().join("alto.log").display()
            );
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "alto did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let f = env.start(env.with_bundler(&url)).await?;
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let paid = payer.pay(&accepted, 1).await?;
    let b = body(&paid, &accepted);
    let (_, v) = f.verify(&b).await?;
    assert_eq!(v["isValid"], true, "{v}");
    let (_, s) = f.settle(&b).await?;
    let log = std::fs::read_to_string(env.dir.path().join("alto.log")).unwrap_or_default();
    assert_eq!(s["success"], true, "{s}\nalto log tail:\n{}", tail(&log, 40));
    assert_eq!(env.merchant_balance().await?, U256::from(USD));
    let (_, again) = f.settle(&b).await?;
    assert_eq!(again, s);
    f.stop().await?;
    alto.kill().await?;
    Ok(())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
