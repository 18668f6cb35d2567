//! Facilitator throughput on the bench devnet: `/verify` of valid aa-native session payments on
//! our facilitator beside x402-rs' own `exact` `/verify` (same anvil, same load generator, same
//! run), and end-to-end settlement throughput with direct bundling.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{B256, U256},
    signers::local::PrivateKeySigner,
};
use serde::Serialize;
use serde_json::json;
use x402_aa::x402::SettlementResponse;
use x402_aa_facilitator::{FacilitatorHandle, FacilitatorService, SubmissionConfig};
use x402_aa_session::signer::{PaidRequest, PaymentSigner, SessionAccount, SignedPayment};

use crate::{
    gas::{Bench, USD},
    load::{self, Budget, LoadFigure},
    x402rs,
};

/// Distinct pre-signed payloads each load level cycles through.
pub(crate) const DISTINCT_PAYLOADS: usize = 64;

/// `/verify` load levels: (concurrency, request budget). Each is also bounded in time.
const LEVELS: [(usize, usize); 3] = [(1, 400), (8, 1_500), (64, 3_000)];
pub(crate) const LEVEL_MAX_DURATION: Duration = Duration::from_secs(20);
/// Slices each `/verify` level is run in, per side (see `run`).
pub(crate) const VERIFY_ROUNDS: usize = 6;

/// Settlement throughput levels: (concurrent agents, payments per agent).
/// Enough payments per level that start-up and the last stragglers do not decide the figure.
const AGENT_LEVELS: [(usize, usize); 3] = [(1, 30), (10, 20), (50, 20)];

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VerifyLevel {
    pub(crate) concurrency: usize,
    pub(crate) ours: LoadFigure,
    pub(crate) x402rs_exact: LoadFigure,
    /// Our requests/s over theirs.
    pub(crate) rps_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SettleLevel {
    pub(crate) agents: usize,
    pub(crate) payments: usize,
    pub(crate) seconds: f64,
    pub(crate) payments_per_s: f64,
    /// Median and worst time from "sign" to the facilitator's successful `/settle` answer.
    pub(crate) p50_ms: f64,
    pub(crate) max_ms: f64,
    /// Median of the agent's share (the SDK signing: chain reads and paymaster sponsorship) and
    /// of the facilitator's (`/settle`: verify, bundle, receipt), so a latency goal shows where
    /// its time goes.
    pub(crate) sign_p50_ms: f64,
    pub(crate) settle_p50_ms: f64,
    /// `handleOps` transactions the payments landed in (fewer than payments = batching).
    pub(crate) bundles: usize,
    /// CPU time per payment (user + system, from `/proc`) of anvil and of this process (agents,
    /// facilitator and paymaster run in it). On a CPU-bound machine, payments/s is the cores
    /// divided by their sum; it moves less than payments/s when the machine is shared, but still
    /// with the machine's speed.
    pub(crate) anvil_cpu_ms_per_payment: Option<f64>,
    pub(crate) ours_cpu_ms_per_payment: Option<f64>,
}

/// User + system CPU time of process `pid` (all its threads) so far, from `/proc/<pid>/stat`;
/// `None` off Linux.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15, in
    // USER_HZ ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let ticks: u64 = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FacilitatorReport {
    pub(crate) verify: Vec<VerifyLevel>,
    pub(crate) settle: Vec<SettleLevel>,
    pub(crate) max_batch: usize,
    pub(crate) max_wait_ms: u64,
}

/// Our facilitator as the local stack configures it (direct bundling from a funded key, SQLite
/// registry in a temp dir), without the background recovery pass; its batching settings.
async fn start_ours(
    bench: &Bench,
    key: &PrivateKeySigner,
    dir: &tempfile::TempDir,
) -> anyhow::Result<(FacilitatorHandle, usize, u64)> {
    let registry = dir.path().join("registry.sqlite3");
    let mut config = x402_aa_stack::facilitator_config(&bench.devnet, key, &registry);
    config.recovery_interval_ms = 0;
    let (max_batch, max_wait_ms) = match config.chains.values().next().map(|c| &c.submission) {
        Some(SubmissionConfig::Direct { max_batch, max_wait_ms, .. }) => (*max_batch, *max_wait_ms),
        _ => (0, 0),
    };
    let service = FacilitatorService::with_env(config, |_| None).await?;
    Ok((service.bind().await?, max_batch, max_wait_ms))
}

fn body(payment: &SignedPayment, requirements: &serde_json::Value) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&json!({
        "x402Version": 2,
        "paymentPayload": serde_json::to_value(&payment.payload)?,
        "paymentRequirements": requirements,
    }))?)
}

/// A deployed session account whose grant is already enabled on chain (steady state).
async fn steady_session(
    bench: &mut Bench,
    n: u64,
) -> anyhow::Result<PaymentSigner<SessionAccount>> {
    let (_, account) = bench.session_account(false).await?;
    let signer = bench.signer(account).await?;
    bench.pay(&signer, n).await?;
    Ok(signer)
}

/// `with_verify: false` skips the `/verify` levels (for profiling settlement alone).
pub(crate) async fn run(bench: &mut Bench, with_verify: bool) -> anyhow::Result<FacilitatorReport> {
    let dir = tempfile::tempdir()?;
    let key = PrivateKeySigner::random();
    bench.devnet.fund(key.address(), U256::from(10u64.pow(19))).await?;
    let (ours, max_batch, max_wait_ms) = start_ours(bench, &key, &dir).await?;

    // Valid aa-native session payments: one steady-state account, distinct requests, all
    // valid at once (same nonce; /verify writes nothing).
    let signer = steady_session(bench, 500).await?;
    let requirements = bench.accepted(USD / 100);
    let mut aa_bodies = Vec::with_capacity(DISTINCT_PAYLOADS);
    for i in 0..DISTINCT_PAYLOADS {
        let request =
            PaidRequest { method: "GET".into(), url: format!("http://127.0.0.1/verify/{i}") };
        let payment = signer.pay(&requirements, &request).await?;
        signer.failed(&payment, "bench: verified only")?;
        aa_bodies.push(body(&payment, &requirements)?);
    }
    let aa_bodies = Arc::new(aa_bodies);

    // x402-rs' exact: an EOA holding the EIP-3009 token, distinct authorizations.
    let theirs_key = PrivateKeySigner::random();
    let theirs = x402rs::start(&bench.devnet, &theirs_key).await?;
    let payer = PrivateKeySigner::random();
    bench.devnet.mint_eip3009(payer.address(), U256::from(1_000 * USD)).await?;
    let exact_requirements =
        x402rs::requirements(&bench.devnet, bench.merchant, U256::from(USD / 100));
    let exact_bodies =
        Arc::new(x402rs::verify_bodies(&payer, &exact_requirements, DISTINCT_PAYLOADS).await?);

    let (ours_url, theirs_url) =
        (format!("{}/verify", ours.url()), format!("{}/verify", theirs.url));
    let mut verify = Vec::new();
    for (concurrency, max_requests) in LEVELS.into_iter().filter(|_| with_verify) {
        // The level's budget in slices, ours and x402-rs' taking turns (who goes first
        // alternating), so a change in this shared host's load falls on both sides alike
        // instead of on whichever side ran second.
        let slice = Budget {
            max_requests: max_requests.div_ceil(VERIFY_ROUNDS),
            max_duration: LEVEL_MAX_DURATION / VERIFY_ROUNDS as u32,
        };
        let ours_run = || load::run(&ours_url, aa_bodies.clone(), concurrency, slice);
        let theirs_run = || load::run(&theirs_url, exact_bodies.clone(), concurrency, slice);
        let (mut ours_runs, mut theirs_runs) = (Vec::new(), Vec::new());
        for round in 0..VERIFY_ROUNDS {
            if round % 2 == 0 {
                ours_runs.push(ours_run().await?);
                theirs_runs.push(theirs_run().await?);
            } else {
                theirs_runs.push(theirs_run().await?);
                ours_runs.push(ours_run().await?);
            }
        }
        let (ours_fig, theirs_fig) = (LoadFigure::of(ours_runs), LoadFigure::of(theirs_runs));
        crate::progress(&format!(
            "  /verify c={concurrency}: ours {:.0} req/s (p50 {} ms, p99 {} ms), x402-rs exact {:.0} req/s (p50 {} ms, p99 {} ms)",
            ours_fig.requests_per_s,
            ours_fig.p50_ms,
            ours_fig.p99_ms,
            theirs_fig.requests_per_s,
            theirs_fig.p50_ms,
            theirs_fig.p99_ms
        ));
        let rps_ratio = crate::ratio_f(ours_fig.requests_per_s, theirs_fig.requests_per_s);
        verify.push(VerifyLevel {
            concurrency,
            ours: ours_fig,
            x402rs_exact: theirs_fig,
            rps_ratio,
        });
    }
    drop(theirs);

    let mut settle = Vec::new();
    for (agents, per_agent) in AGENT_LEVELS {
        let mut signers = Vec::with_capacity(agents);
        for i in 0..agents {
            signers.push(Arc::new(steady_session(bench, 10_000 + i as u64).await?));
        }
        crate::progress(&format!("  {agents} agents ready"));
        let anvil = bench.devnet.anvil_pid();
        settle.push(settle_level(&ours.url(), &requirements, signers, per_agent, anvil).await?);
        let last = settle.last().map(|s| (s.payments_per_s, s.bundles)).unwrap_or_default();
        let (sign, settle_ms) =
            settle.last().map(|s| (s.sign_p50_ms, s.settle_p50_ms)).unwrap_or_default();
        let cpu = settle.last().map(|s| (s.anvil_cpu_ms_per_payment, s.ours_cpu_ms_per_payment));
        crate::progress(&format!(
            "  settle {agents} agents: {:.1} payments/s in {} bundles (p50: sign {sign} ms, /settle {settle_ms} ms; CPU ms per payment (anvil, ours): {cpu:?})",
            last.0, last.1
        ));
    }
    ours.shutdown().await?;
    Ok(FacilitatorReport { verify, settle, max_batch, max_wait_ms })
}

/// `signers.len()` agents pay concurrently, each `per_agent` times in a row: sign (the SDK's
/// `PaymentSigner`: chain reads + paymaster sponsorship) → `/settle` → wait for the answer.
async fn settle_level(
    url: &str,
    requirements: &serde_json::Value,
    signers: Vec<Arc<PaymentSigner<SessionAccount>>>,
    per_agent: usize,
    anvil_pid: u32,
) -> anyhow::Result<SettleLevel> {
    let agents = signers.len();
    let client = reqwest::Client::new();
    let cpu = || (cpu_time(anvil_pid), cpu_time(std::process::id()));
    let cpu_before = cpu();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(agents);
    for (a, signer) in signers.into_iter().enumerate() {
        let (client, url, requirements) =
            (client.clone(), format!("{url}/settle"), requirements.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per_agent);
            for p in 0..per_agent {
                let t = Instant::now();
                let request = PaidRequest {
                    method: "GET".into(),
                    url: format!("http://127.0.0.1/settle/{agents}/{a}/{p}"),
                };
                let payment = signer.pay(&requirements, &request).await?;
                let signed = t.elapsed();
                let answer: SettlementResponse = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body(&payment, &requirements)?)
                    .send()
                    .await?
                    .json()
                    .await?;
                if !answer.success {
                    signer.failed(&payment, answer.error_reason.as_deref().unwrap_or("refused"))?;
                    anyhow::bail!("agent {a} payment {p} refused: {answer:?}");
                }
                let tx: B256 = answer.transaction.parse()?;
                // No ledger is attached in the bench, so the block number is not recorded.
                signer.settled(&payment, tx, 0)?;
                let total = t.elapsed();
                out.push((total, signed, total.saturating_sub(signed), tx));
            }
            anyhow::Ok(out)
        }));
    }
    let (mut latencies, mut signing, mut settling) = (Vec::new(), Vec::new(), Vec::new());
    let mut txs = std::collections::HashSet::new();
    for t in tasks {
        for (latency, signed, settled, tx) in t.await?? {
            latencies.push(latency);
            signing.push(signed);
            settling.push(settled);
            txs.insert(tx);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = cpu();
    let payments = latencies.len();
    let per_payment = |before: Option<Duration>, after: Option<Duration>| {
        let spent = after?.checked_sub(before?)?;
        Some((spent.as_secs_f64() * 1000.0 / payments.max(1) as f64 * 100.0).round() / 100.0)
    };
    let load::Percentiles { p50_ms, max_ms, .. } = load::percentiles(&mut latencies);
    let sign_p50_ms = load::percentiles(&mut signing).p50_ms;
    let settle_p50_ms = load::percentiles(&mut settling).p50_ms;
    Ok(SettleLevel {
        agents,
        payments,
        seconds: (seconds * 1000.0).round() / 1000.0,
        payments_per_s: ((payments as f64 / seconds) * 100.0).round() / 100.0,
        p50_ms,
        max_ms,
        sign_p50_ms,
        settle_p50_ms,
        bundles: txs.len(),
        anvil_cpu_ms_per_payment: per_payment(cpu_before.0, cpu_after.0),
        ours_cpu_ms_per_payment: per_payment(cpu_before.1, cpu_after.1),
    })
}
