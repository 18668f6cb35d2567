//! The facilitator as a real process, SIGKILLed mid-settlement and restarted on the same
//! registry; and one payload settled concurrently through two instances sharing a registry.
//! Either way: each payment settles exactly once and every caller ends with the same answer.

use std::{path::PathBuf, process::Stdio, time::Duration};

use alloy::primitives::U256;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};
use x402_aa_facilitator::{
    store::{SqliteStore, Status, Store},
    submit::{HALT_MESSAGE, HALT_POINTS},
};

use crate::common::{Env, SessionOpts, USD, body};

/// A facilitator child process and the lines it writes to stderr.
struct Process {
    child: Child,
    url: String,
    stderr: mpsc::UnboundedReceiver<String>,
}

impl Process {
    /// Starts the binary on `env`'s registry, halting at `halt_at` if given, and waits until
    /// `/health` answers.
    async fn start(env: &Env, halt_at: Option<&str>) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut config = env.config();
        config.bind = ([127, 0, 0, 1], port).into();
        let path: PathBuf = env.dir.path().join(format!("facilitator-{port}.json"));
        std::fs::write(&path, serde_json::to_vec(&config)?)?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_x402-aa-facilitator"));
        command
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove(HALT_POINTS.env())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(point) = halt_at {
            command.env(HALT_POINTS.env(), point);
        }
        let mut child = command.spawn()?;
        let (lines, stderr) = mpsc::unbounded_channel();
        let mut reader = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = lines.send(line);
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{url}/health")).send().await
                && r.status().is_success()
            {
                return Ok(Self { child, url, stderr });
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("the facilitator exited at start: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the facilitator did not become healthy")
    }

    /// Waits for a stderr line containing `needle`.
    async fn wait_for(&mut self, needle: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, self.stderr.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => anyhow::bail!("stderr closed before {needle:?}"),
                Err(_) => anyhow::bail!("no {needle:?} within 30 s"),
            }
        }
    }

    /// SIGKILL: no destructor, no flush, no graceful shutdown.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

async fn settle(url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = reqwest::Client::new().post(format!("{url}/settle")).json(body).send().await?;
    Ok(response.json().await?)
}

/// Killed at each point of a settlement, then restarted: the payment settles exactly once, the
/// registry agrees with the chain, and the merchant's retry gets that one settlement.
#[tokio::test]
async fn sigkill_mid_settlement_then_restart_settles_exactly_once() -> anyhow::Result<()> {
    for &point in HALT_POINTS.points() {
        let env = Env::new().await?;
        let accepted = env.accepted(USD);
        let payer = env.session_payer(SessionOpts::default()).await?;
        let paid = payer.pay(&accepted, 1).await?;
        let b = body(&paid, &accepted);

        let mut first = Process::start(&env, Some(point)).await?;
        let url = first.url.clone();
        let pending = tokio::spawn({
            let b = b.clone();
            async move { settle(&url, &b).await }
        });
        first.wait_for(&format!("{HALT_MESSAGE} {point}")).await?;
        first.kill().await?;
        assert!(pending.await?.is_err(), "{point}: the caller saw the process die");
        let sent = point != "before_send";
        let expected = U256::from(if sent { USD } else { 0 });
        assert_eq!(env.merchant_balance().await?, expected, "{point}: the chain before restart");

        // Restart on the same registry: start-up recovery reads the op's fate from the chain.
        let second = Process::start(&env, None).await?;
        let store = SqliteStore::open(env.registry_path())?;
        let row = store.get(env.devnet.chain_id(), paid.request_hash).await?.expect("row");
        if sent {
            assert_eq!(row.status, Status::Settled, "{point}: {row:?}");
        } else {
            assert_eq!((row.status, row.retryable), (Status::Failed, true), "{point}: {row:?}");
        }
        // The merchant retries: one settlement, whatever the crash left.
        let answer = settle(&second.url, &b).await?;
        assert_eq!(answer["success"], true, "{point}: {answer}");
        let again = settle(&second.url, &b).await?;
        assert_eq!(again, answer, "{point}: a retry gets the recorded answer");
        assert_eq!(env.merchant_balance().await?, U256::from(USD), "{point}: paid exactly once");
        let row = store.get(env.devnet.chain_id(), paid.request_hash).await?.expect("row");
        assert_eq!(row.status, Status::Settled, "{point}: {row:?}");
        assert_eq!(
            row.tx_hash.map(|t| t.to_string()),
            answer["transaction"].as_str().map(str::to_owned),
            "{point}: the registry records the settlement the caller was told"
        );
        second.kill().await?;
    }
    Ok(())
}

/// N callers settle one payload at once through two instances sharing one registry: one
/// settlement, and every caller (retrying `in_flight` as x402 clients do) the same answer.
#[tokio::test]
async fn concurrent_settles_across_two_instances_settle_once() -> anyhow::Result<()> {
    const N: usize = 8;
    let env = Env::new().await?;
    let a = env.start(env.config()).await?;
    let b = env.start(env.config()).await?;
    let accepted = env.accepted(USD);
    let payer = env.session_payer(SessionOpts::default()).await?;
    let payload = body(&payer.pay(&accepted, 1).await?, &accepted);

    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
            let payload = payload.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    let answer = settle(&url, &payload).await?;
                    if answer["errorReason"] != "in_flight" {
                        return anyhow::Ok(answer);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                anyhow::bail!("still in_flight after 10 s")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await??);
    }
    assert_eq!(answers[0]["success"], true, "{}", answers[0]);
    for answer in &answers {
        assert_eq!(answer, &answers[0], "every caller gets the same answer");
    }
    assert_eq!(env.merchant_balance().await?, U256::from(USD), "settled exactly once");
    a.stop().await?;
    b.stop().await
}
