//! The agent under faults (issue 16, agent side), with the real binaries: `x402-aa devnet up`
//! and `x402-aa pay` as the agent process.
//!
//! 1. An agent SIGKILLed at each step of a payment (after reserving, after signing, after the
//!    merchant's answer arrived but before reconciling) and restarted on the same ledger file:
//!    every payment is settled once or not at all, the restart records the one that landed while
//!    the agent was dead, and the ledger's settled payments are exactly the chain's.
//! 2. Ten agent replicas sharing one session, each with a ledger of its own (no shared store):
//!    waves of them pay until the cap is reached, the chain paying out at most the cap, to the
//!    unit, each payment once; then a whole wave more, each replica's own ledger still showing
//!    room, is refused by the cap's name.
//! 3. Ten replicas sharing one ledger file: the SDK refuses past the cap before signing, so no
//!    over-cap op ever reaches the facilitator.
//! 4. Ten replicas sharing one Postgres ledger (`--ledger postgres://…`, as replicas on several
//!    machines would): the same, and after a reconciliation the ledger's settled payments are
//!    exactly the chain's. Runs when `X402_AA_TEST_POSTGRES_URL` is set (`make test` sets it).
//!
//! Each replica runs with its own `--replica` index (its own EntryPoint nonce keys).

use std::{collections::HashSet, path::Path, process::Stdio, time::Duration};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};
use x402_aa_contracts::SettlementContract::ReceiptLog;
use x402_aa_session::{
    SessionFile,
    fault::{HALT_MESSAGE, HALT_POINTS},
    ledger::{Ledger, ReservationState},
    policy::read_usage_in,
};

mod support;
use support::{DevnetUp, cli, parse, text};

/// Price of the devnet's paid API in USDT units (0.01 USDT).
const PRICE: u64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_killed_or_replicated_never_pay_twice_or_past_the_cap() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("devnet.json");
    let devnet = DevnetUp::start(&state).await?;
    let info = devnet.info.clone();
    let provider: DynProvider =
        ProviderBuilder::new().connect_http(text(&info["rpcUrl"])?.parse()?).erased();
    let url = text(&info["paidApi"]["url"])?;
    let merchant: Address = parse(&info["paidApi"]["merchant"])?;
    let keys = info["fundedKeys"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(keys.len() >= 3, "three funded keys: {info}");
    let chain = Chain { provider: &provider, settlement: parse(&info["contracts"]["settlement"])? };

    // 1. Killed at each step, restarted on the same ledger. The cap leaves room for the two
    // reservations of the agents killed before sending, which count as spent until they expire.
    let session = grant(&state, dir.path(), "crash", &keys[0], merchant, "0.1 USDT")?;
    let ledger = dir.path().join("crash.sqlite");
    for &point in HALT_POINTS.points() {
        kill_at(&state, &url, &session, &ledger, point).await?;
        let paid = pay(&state, &url, &session, &ledger, 0).await?;
        assert_eq!(paid["status"], 200, "the restarted agent pays after a kill {point}: {paid}");
    }
    // Three restarts paid, and the payment of the agent killed after the merchant's answer
    // landed too: four payments, each settled once (distinct requestHashes, one ReceiptLog each).
    let file = SessionFile::load(&session.0)?;
    let receipts = chain.receipts(file.account).await?;
    assert_eq!(receipts.len(), 4, "four settlements: {receipts:?}");
    let distinct: HashSet<_> = receipts.iter().map(|r| r.0).collect();
    assert_eq!(distinct.len(), 4, "no requestHash settled twice");
    let usage =
        read_usage_in(&provider, file.host(), file.account, file.session_id, Address::ZERO, true)
            .await?;
    assert_eq!(usage.lifetime_spent, U256::from(4 * PRICE), "chain: {usage:?}");
    // The ledger after the restarts: the four settled payments committed, each with the
    // transaction the chain shows for its requestHash, and nothing else counted as settled.
    let history = Ledger::open(&ledger)?.history(file.session_id)?;
    let committed: Vec<_> =
        history.iter().filter(|r| r.state == ReservationState::Committed).collect();
    assert_eq!(committed.len(), 4, "ledger: {history:#?}");
    for reservation in &committed {
        let tx = reservation.settlement.as_ref().map(|s| s.tx_hash);
        assert!(
            receipts
                .iter()
                .any(|(hash, chain_tx)| *hash == reservation.request_hash && Some(*chain_tx) == tx),
            "committed {reservation:?} matches no settlement on chain: {receipts:?}"
        );
    }
    let committed_sum: U256 = committed.iter().map(|r| r.amount).sum();
    assert_eq!(committed_sum, usage.lifetime_spent, "ledger equals chain");
    // The two agents killed before sending left reservations that never landed: still counted
    // as spent (the safe side) until they expire, never committed.
    let pending = history.iter().filter(|r| r.state == ReservationState::Pending).count();
    assert_eq!(pending, 2, "ledger: {history:#?}");

    // 2. Ten replicas, each with its own ledger (no shared store), one session capped at five
    // payments: waves of ten concurrent payments until the cap is reached. Many fail for reasons
    // of their own (the first wave races to deploy the account; the VerifyingPaymaster signs
    // over a per-sender counter, so concurrent sponsored ops of one account invalidate each
    // other: AA34), but every 200 is one settlement and the chain never pays past the cap.
    let session = grant(&state, dir.path(), "replicas", &keys[1], merchant, "0.05 USDT")?;
    let file = SessionFile::load(&session.0)?;
    let replica_wave = || {
        futures_join_all((0..10).map(|i| {
            let ledger = dir.path().join(format!("replica-{i}.sqlite"));
            let (state, url, session) = (state.clone(), url.clone(), session.clone());
            async move { pay(&state, &url, &session, &ledger, i).await }
        }))
    };
    let mut paid_total = 0;
    let mut over_cap_refused_on_chain = 0;
    let mut wave = 0u32;
    while paid_total < 5 {
        anyhow::ensure!(wave < 12, "{paid_total} paid after {wave} waves: the replicas stall");
        let results = replica_wave().await?;
        paid_total += results.iter().filter(|r| r["status"] == 200).count();
        for result in &results {
            let text = result.to_string();
            if text.contains("session: over") {
                // The account's refusal at settle time carries the reason every layer names.
                assert!(text.contains("spend_cap_exceeded"), "{text}");
                over_cap_refused_on_chain += 1;
            }
        }
        let receipts = chain.receipts(file.account).await?;
        assert!(
            receipts.len() <= 5,
            "wave {wave}: {} settlements under a five-payment cap",
            receipts.len()
        );
        assert_eq!(receipts.len(), paid_total, "wave {wave}: every 200 is one settlement");
        wave += 1;
    }
    // The cap is reached on chain, and each replica's own ledger still shows room (it saw at
    // most a few of the five): a whole wave more is refused, every replica by the cap's name,
    // whichever layer (the SDK reading the account's usage, the paymaster's simulation, the
    // facilitator, the account) stops it.
    let results = replica_wave().await?;
    for result in &results {
        assert_ne!(result["status"], 200, "paid past the cap: {result}");
        assert!(result.to_string().contains("spend_cap_exceeded"), "{result}");
    }
    let spent = chain.paid_out(file.account).await?;
    assert_eq!(spent, U256::from(5 * PRICE), "tokens out {spent}: the cap, to the unit");
    assert_eq!(chain.receipts(file.account).await?.len(), 5, "each payment settled once");
    eprintln!(
        "replicas without a shared ledger: 5 paid in {wave} waves, {over_cap_refused_on_chain} \
         over-cap ops refused by the account, then a wave of ten refused by the cap"
    );

    // 3. Ten replicas sharing one ledger file: five reservations, five payments; the other
    // five are refused by the SDK before anything is signed.
    let session = grant(&state, dir.path(), "shared", &keys[2], merchant, "0.05 USDT")?;
    let file = SessionFile::load(&session.0)?;
    let shared = dir.path().join("shared.sqlite");
    let runs = (0..10).map(|i| {
        let (state, url, session, shared) =
            (state.clone(), url.clone(), session.clone(), shared.clone());
        async move { pay(&state, &url, &session, &shared, i).await }
    });
    let results = futures_join_all(runs).await?;
    let paid = results.iter().filter(|r| r["status"] == 200).count();
    let receipts = chain.receipts(file.account).await?;
    assert_eq!(receipts.len(), paid, "every 200 is one settlement: {results:#?}");
    assert!(paid <= 5, "{paid} payments under a five-payment cap");
    assert_eq!(chain.paid_out(file.account).await?, U256::from(paid as u64 * PRICE));
    // The shared ledger's reservations are the cap: no replica signs an op past it, so neither
    // the facilitator's mirror nor the account ever sees one.
    for result in &results {
        let text = result.to_string();
        assert!(
            !text.contains("session: over") && !text.contains("Verification failed: spend_cap"),
            "an over-cap op left a replica despite the shared ledger: {text}"
        );
    }

    // 4. Ten replicas sharing one Postgres ledger, in a schema of its own.
    if let Some(ledger_url) = postgres_ledger_url() {
        anyhow::ensure!(keys.len() >= 4, "four funded keys: {info}");
        let session = grant(&state, dir.path(), "postgres", &keys[3], merchant, "0.05 USDT")?;
        let file = SessionFile::load(&session.0)?;
        let shared = std::path::PathBuf::from(&ledger_url);
        let runs = (0..10).map(|i| {
            let (state, url, session, shared) =
                (state.clone(), url.clone(), session.clone(), shared.clone());
            async move { pay(&state, &url, &session, &shared, i).await }
        });
        let results = futures_join_all(runs).await?;
        let paid = results.iter().filter(|r| r["status"] == 200).count();
        assert!(paid <= 5, "{paid} payments under a five-payment cap: {results:#?}");
        assert_eq!(chain.receipts(file.account).await?.len(), paid, "every 200 is one settlement");
        for result in &results {
            let text = result.to_string();
            assert!(
                !text.contains("session: over") && !text.contains("Verification failed: spend_cap"),
                "an over-cap op left a replica despite the shared Postgres ledger: {text}"
            );
        }
        // One more agent start reconciles the ledger with the chain (and pays if room is left).
        pay(&state, &url, &session, &shared, 10).await?;
        let receipts = chain.receipts(file.account).await?;
        let paid_out = chain.paid_out(file.account).await?;
        assert!(paid_out <= U256::from(5 * PRICE), "tokens out {paid_out} within the cap");
        let history = Ledger::connect(&ledger_url)?.history(file.session_id)?;
        let committed: Vec<_> =
            history.iter().filter(|r| r.state == ReservationState::Committed).collect();
        assert_eq!(committed.len(), receipts.len(), "ledger {history:#?}, chain {receipts:?}");
        for reservation in &committed {
            let tx = reservation.settlement.as_ref().map(|s| s.tx_hash);
            assert!(
                receipts
                    .iter()
                    .any(|(h, chain_tx)| *h == reservation.request_hash && Some(*chain_tx) == tx),
                "committed {reservation:?} matches no settlement on chain: {receipts:?}"
            );
        }
        let committed_sum: U256 = committed.iter().map(|r| r.amount).sum();
        assert_eq!(committed_sum, paid_out, "the Postgres ledger equals the chain");
        eprintln!("replicas on a shared Postgres ledger: {paid} paid, then {}", receipts.len());
    } else {
        eprintln!("SKIP (part 4): set {POSTGRES_URL_ENV} to run replicas on a Postgres ledger");
    }

    devnet.stop().await?;
    Ok(())
}

const POSTGRES_URL_ENV: &str = "X402_AA_TEST_POSTGRES_URL";

/// A ledger URL on the test server, in a schema of this run's own (the ledger creates it).
fn postgres_ledger_url() -> Option<String> {
    let server = std::env::var(POSTGRES_URL_ENV).ok()?;
    let nanos = std::time::SystemTime::UNIX_EPOCH.elapsed().ok()?.subsec_nanos();
    let schema = format!("agent_faults_{}_{nanos}", std::process::id());
    let sep = if server.contains('?') { '&' } else { '?' };
    Some(format!("{server}{sep}options=-csearch_path%3D{schema}"))
}

/// `session grant` for `key`'s SessionKeyAccount: `cap` per day, one price per payment, to
/// `merchant` only; the session and key files under `dir`.
fn grant(
    state: &Path,
    dir: &Path,
    name: &str,
    key: &Value,
    merchant: Address,
    cap: &str,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (session, key_file) = (dir.join(format!("{name}.json")), dir.join(format!("{name}.key")));
    cli(
        state,
        &[
            "session",
            "grant",
            "--spend-cap",
            cap,
            "--per-payment",
            "0.01 USDT",
            "--merchant",
            &merchant.to_string(),
            "--out",
            &session.to_string_lossy(),
            "--key-out",
            &key_file.to_string_lossy(),
            "--owner-key",
        ],
        &text(&key["privateKey"])?,
    )?;
    Ok((session, key_file))
}

/// The agent process for one payment of `url` with `session`, on `ledger`, as `replica`.
fn agent(
    state: &Path,
    url: &str,
    session: &(std::path::PathBuf, std::path::PathBuf),
    ledger: &Path,
    replica: u32,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_x402-aa"));
    command
        .arg("--json")
        .arg("--devnet-state")
        .arg(state)
        .args(["pay", url, "--session"])
        .arg(&session.0)
        .arg("--key")
        .arg(&session.1)
        .arg("--ledger")
        .arg(ledger)
        .arg("--replica")
        .arg(replica.to_string())
        .env_remove(HALT_POINTS.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// One payment; its JSON result, or for a refusal `{"refused": stdout + stderr}`.
async fn pay(
    state: &Path,
    url: &str,
    session: &(std::path::PathBuf, std::path::PathBuf),
    ledger: &Path,
    replica: u32,
) -> anyhow::Result<Value> {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        agent(state, url, session, ledger, replica).output(),
    )
    .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        return Ok(serde_json::from_str(&stdout)?);
    }
    Ok(
        serde_json::json!({ "refused": format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr)) }),
    )
}

/// Starts a payment that halts at `point`, waits until it is there, and SIGKILLs it.
async fn kill_at(
    state: &Path,
    url: &str,
    session: &(std::path::PathBuf, std::path::PathBuf),
    ledger: &Path,
    point: &str,
) -> anyhow::Result<()> {
    let mut child = agent(state, url, session, ledger, 0).env(HALT_POINTS.env(), point).spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = BufReader::new(stderr).lines();
    let wait = async {
        while let Some(line) = lines.next_line().await? {
            if line.contains(HALT_MESSAGE) && line.contains(point) {
                return Ok(());
            }
        }
        anyhow::bail!("the agent exited before halting {point}")
    };
    tokio::time::timeout(Duration::from_secs(120), wait).await??;
    child.kill().await?;
    Ok(())
}

/// Runs every future concurrently; all their results, in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> anyhow::Result<Vec<Value>>
where
    F: std::future::Future<Output = anyhow::Result<Value>> + Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await??);
    }
    Ok(results)
}

/// What the chain says an account paid through the settlement contract.
struct Chain<'a> {
    provider: &'a DynProvider,
    settlement: Address,
}

impl Chain<'_> {
    /// Every `ReceiptLog` with `payer`.
    async fn receipt_logs(&self, payer: Address) -> anyhow::Result<Vec<alloy::rpc::types::Log>> {
        let filter = Filter::new()
            .address(self.settlement)
            .event_signature(ReceiptLog::SIGNATURE_HASH)
            .topic2(payer.into_word())
            .from_block(0);
        Ok(self.provider.get_logs(&filter).await?)
    }

    /// (requestHash, transaction) of every `ReceiptLog` with `payer`.
    async fn receipts(&self, payer: Address) -> anyhow::Result<Vec<(B256, B256)>> {
        self.receipt_logs(payer)
            .await?
            .iter()
            .map(|log| {
                let hash = log.topics().get(3).copied();
                match (hash, log.transaction_hash) {
                    (Some(hash), Some(tx)) => Ok((hash, tx)),
                    _ => anyhow::bail!("malformed ReceiptLog {log:?}"),
                }
            })
            .collect()
    }

    /// The sum of `ReceiptLog` amounts with `payer`.
    async fn paid_out(&self, payer: Address) -> anyhow::Result<U256> {
        let mut total = U256::ZERO;
        for log in self.receipt_logs(payer).await? {
            total += ReceiptLog::decode_log(&log.inner)?.amount;
        }
        Ok(total)
    }
}
