//! `make bench`: measures on a fresh devnet and writes BENCHMARKS.md and BENCHMARKS.json at the
//! repository root. Figures are reported, never judged: nothing here passes or fails on a number.

/// glibc malloc took about a tenth of the settlement path's CPU; mimalloc takes less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod facilitator;
mod gas;
mod load;
mod x402rs;

use std::{fmt::Write as _, path::PathBuf};

use serde_json::json;

fn ratio(a: u64, b: u64) -> f64 {
    ratio_f(a as f64, b as f64)
}

fn ratio_f(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { (a / b * 1000.0).round() / 1000.0 }
}

/// The one place the bench prints: progress while measuring, then the report.
#[allow(clippy::print_stdout)]
fn progress(line: &str) {
    println!("{line}");
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

fn command_version(cmd: &str, arg: &str) -> String {
    std::process::Command::new(cmd)
        .arg(arg)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Median nanoseconds of a Criterion benchmark run earlier by `make bench`.
fn criterion_median_ns(name: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = PathBuf::from(target).join("criterion").join(name).join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut bench = gas::Bench::new().await?;
    // `-- --facilitator-only`: just the facilitator figures, printed, no files written;
    // `-- --settle-only`: just the settlement levels (to profile them alone).
    let settle_only = std::env::args().any(|a| a == "--settle-only");
    if settle_only || std::env::args().any(|a| a == "--facilitator-only") {
        let f = facilitator::run(&mut bench, !settle_only).await?;
        progress(&serde_json::to_string_pretty(&f)?);
        return Ok(());
    }
    // `-- --biconomy-only`: just Biconomy's owner and session rows and their ratio, printed, no
    // files written.
    if std::env::args().any(|a| a == "--biconomy-only") {
        let b = gas::biconomy(&mut bench).await?;
        progress(&serde_json::to_string_pretty(&json!({
            "figures": b,
            "gas_ratio_biconomy_session_steady": ratio(b.session_steady.handle_ops_gas, b.owner.handle_ops_gas),
            "gas_ratio_biconomy_session_first": ratio(b.session_first.handle_ops_gas, b.owner.handle_ops_gas),
        }))?);
        return Ok(());
    }
    progress("measuring gas per payment ...");
    let g = gas::run(&mut bench).await?;
    let base = g.simple_account_owner;
    progress("measuring facilitator /verify and settlement throughput ...");
    let f = facilitator::run(&mut bench, true).await?;

    let anvil = root.join("node_modules/.bin/anvil");
    let versions = json!({
        "x402-aa-session": env!("CARGO_PKG_VERSION"),
        "rustc": command_version("rustc", "--version"),
        "anvil": command_version(&anvil.to_string_lossy(), "--version"),
        "entryPoint": "v0.6 (@account-abstraction/contracts 0.6.0)",
        "x402-rs": "2.0.2 (x402-chain-eip155, x402-facilitator-local, x402-types from crates.io)",
    });
    let date = command_version("date", "-u");
    let scenarios = [
        (
            "simple_account_owner",
            "1. canonical SimpleAccount, owner-signed (baseline)",
            g.simple_account_owner,
        ),
        ("session_account_owner", "2. SessionKeyAccount, owner-signed", g.session_account_owner),
        (
            "session_first",
            "3. SessionKeyAccount, session key, first payment (lazy enable)",
            g.session_first,
        ),
        ("session_steady", "4. SessionKeyAccount, session key, steady state", g.session_steady),
        (
            "session_first_of_life",
            "5. SessionKeyAccount, session key, initCode deploy + enable + pay",
            g.session_first_of_life,
        ),
        (
            "kernel_owner",
            "7. Kernel v2.4 (ECDSAValidator), owner-signed, steady state",
            g.kernel_owner,
        ),
        (
            "kernel_session_first",
            "10. Kernel v2.4 + KernelSessionValidator, session key, first payment (enable)",
            g.kernel_session_first,
        ),
        (
            "kernel_session_steady",
            "11. Kernel v2.4 + KernelSessionValidator, session key, steady state",
            g.kernel_session_steady,
        ),
        (
            "safe_owner",
            "8. Safe 1.4.1 + Safe4337Module v0.2.0 (1-of-1), owner-signed, steady state",
            g.safe_owner,
        ),
        (
            "safe_session_first",
            "14. Safe 1.4.1 + SafeSessionModule, session key, first payment (enable)",
            g.safe_session_first,
        ),
        (
            "safe_session_steady",
            "15. Safe 1.4.1 + SafeSessionModule, session key, steady state",
            g.safe_session_steady,
        ),
        (
            "biconomy_owner",
            "9. Biconomy v2 (ECDSA module), owner-signed, steady state",
            g.biconomy_owner,
        ),
        (
            "biconomy_session_first",
            "12. Biconomy v2 + BiconomySessionModule, session key, first payment (enable)",
            g.biconomy_session_first,
        ),
        (
            "biconomy_session_steady",
            "13. Biconomy v2 + BiconomySessionModule, session key, steady state",
            g.biconomy_session_steady,
        ),
    ];

    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(md, "Measured by `make bench` on {date}. Machine: {}.", machine())?;
    writeln!(md, "Versions: {}.\n", versions)?;
    writeln!(md, "## Gas per aa-native payment (exact, from receipts on anvil)\n")?;
    writeln!(
        md,
        "Same payment everywhere: approve + settle in the account's batch call (SimpleAccount's \
         `executeBatch([token, settlement], [approve, settle])`, Kernel's `executeBatch(Call[])`, Safe's MultiSend \
         through the 4337 module, Biconomy's `executeBatch_y6U`; session payments on Kernel and Safe carry the 164-byte \
         `executeSessionPayment`, which the session host turns into the same approve + settle), 0.01 USDT to a merchant \
         that already holds USDT, sponsored by the VerifyingPaymaster, built by the SDK's `PaymentSigner`. \
         `actualGasUsed` is the EntryPoint's figure and includes the op's preVerificationGas ({} for every op); \
         `handleOps gas` is the bundle transaction's.\n",
        g.pre_verification_gas
    )?;
    writeln!(md, "| scenario | actualGasUsed | ratio to 1 | handleOps gas | ratio to 1 |")?;
    writeln!(md, "|---|---:|---:|---:|---:|")?;
    for (_, name, f) in &scenarios {
        writeln!(
            md,
            "| {name} | {} | {:.3} | {} | {:.3} |",
            f.actual_gas_used,
            ratio(f.actual_gas_used, base.actual_gas_used),
            f.handle_ops_gas,
            ratio(f.handle_ops_gas, base.handle_ops_gas)
        )?;
    }
    writeln!(
        md,
        "\nTargets, measured on the handleOps transaction: (4) ≤ 1.15×, (3) ≤ 1.40× the baseline. \
         The owner's `revokeSession_ol` transaction: {} gas (target ≤ 35,000). Kernel session \
         payment (11) vs Kernel's own owner payment (7): {:.3}× (goal ≤ 1.15×), first payment (10): {:.3}×.\n",
        g.revoke_gas,
        ratio(g.kernel_session_steady.handle_ops_gas, g.kernel_owner.handle_ops_gas),
        ratio(g.kernel_session_first.handle_ops_gas, g.kernel_owner.handle_ops_gas)
    )?;
    writeln!(
        md,
        "Biconomy session payment (13) vs Biconomy's own owner payment (9): {:.3}× (goal ≤ 1.15×; \
         a published Biconomy v2 session transfer costs 1.14× its owner path), first payment (12): \
         {:.3}×.\n",
        ratio(g.biconomy_session_steady.handle_ops_gas, g.biconomy_owner.handle_ops_gas),
        ratio(g.biconomy_session_first.handle_ops_gas, g.biconomy_owner.handle_ops_gas)
    )?;
    writeln!(
        md,
        "Safe session payment (15) vs the Safe owner payment (8): {:.3}× (goal ≤ 1.15×), first \
         payment (14): {:.3}×.\n",
        ratio(g.safe_session_steady.handle_ops_gas, g.safe_owner.handle_ops_gas),
        ratio(g.safe_session_first.handle_ops_gas, g.safe_owner.handle_ops_gas)
    )?;
    writeln!(md, "### 6. Bundles of steady-state session payments from different accounts\n")?;
    writeln!(md, "| N | handleOps gas | per payment | actualGasUsed per payment |")?;
    writeln!(md, "|---:|---:|---:|---:|")?;
    for b in &g.bundles {
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            b.n, b.handle_ops_gas, b.handle_ops_gas_per_payment, b.actual_gas_used_per_payment
        )?;
    }

    let verify_ns = criterion_median_ns("session_payment_offchain_verify");
    let floor_ns = criterion_median_ns("floor_secp256k1_recover_plus_keccak");
    writeln!(md, "\n## Off-chain verification cost (Criterion, no RPC)\n")?;
    match (verify_ns, floor_ns) {
        (Some(v), Some(f)) => {
            writeln!(md, "| what | median |\n|---|---:|")?;
            writeln!(
                md,
                "| session payment: decode + owner and session signature recovery + scope checks (enable mode) | {:.1} µs |",
                v / 1000.0
            )?;
            writeln!(md, "| floor: one secp256k1 recovery + keccak | {:.1} µs |", f / 1000.0)?;
            writeln!(
                md,
                "\nA first (enable-mode) payment needs two recoveries, so ≈ 2× the floor is the bound."
            )?;
        }
        _ => writeln!(
            md,
            "Not measured: run `cargo bench -p x402-aa-bench --bench offchain_verify` first (make bench does)."
        )?,
    }

    writeln!(md, "\n## Facilitator `/verify` throughput and latency\n")?;
    writeln!(
        md,
        "Closed-loop load generator (`crates/bench/src/load.rs`) over loopback: each of `c` workers keeps one \
         request in flight, cycling through {} distinct pre-signed valid payloads, until the request budget or \
         {} s run out. Each level runs in {} slices per side, ours and theirs taking turns, so the host's load \
         drifting during the level falls on both alike. Every answer must be `200 {{isValid: true}}` (failures are counted). Ours: aa-native \
         session-key payments (steady state). Theirs: x402-rs 2.0.2's own facilitator stack (`Eip155ChainProvider` \
         + `V2Eip155Exact` + `FacilitatorLocal` + `handlers::routes`) verifying EIP-3009 `exact` payloads signed by \
         x402-rs' client for the devnet's `TestEip3009Token`. Same anvil, same run.\n",
        facilitator::DISTINCT_PAYLOADS,
        facilitator::LEVEL_MAX_DURATION.as_secs(),
        facilitator::VERIFY_ROUNDS
    )?;
    writeln!(
        md,
        "| c | ours req/s | p50 ms | p99 ms | failures | x402-rs exact req/s | p50 ms | p99 ms | failures | ours / x402-rs |"
    )?;
    writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for v in &f.verify {
        writeln!(
            md,
            "| {} | {:.0} | {} | {} | {} | {:.0} | {} | {} | {} | {:.3} |",
            v.concurrency,
            v.ours.requests_per_s,
            v.ours.p50_ms,
            v.ours.p99_ms,
            v.ours.failures,
            v.x402rs_exact.requests_per_s,
            v.x402rs_exact.p50_ms,
            v.x402rs_exact.p99_ms,
            v.x402rs_exact.failures,
            v.rps_ratio
        )?;
    }
    let verify_ratio = f.verify.iter().map(|v| v.rps_ratio).fold(f64::INFINITY, f64::min);
    let verify_ratio = if verify_ratio.is_finite() { verify_ratio } else { 0.0 };
    writeln!(
        md,
        "\n`verify_rps_ratio_vs_x402rs` = {verify_ratio:.3}, the lowest of the three levels. Goal: ≥ 1.\n"
    )?;
    writeln!(md, "## Settlement throughput (end to end, direct bundling)\n")?;
    writeln!(
        md,
        "Each agent is its own steady-state SessionKeyAccount with its own node client (as the SDK builds one: \
         its reads leave as one JSON-RPC batch, its `eth_call`s folded into one, never mixed with another agent's) and pays in a loop: the \
         SDK's `PaymentSigner` signs (chain reads + paymaster sponsorship), then the facilitator's `/settle` verifies, bundles (`handleOps`, \
         max_batch {}, max_wait {} ms) and answers once the receipt is read. anvil mines each transaction at once. \
         The machine is CPU-bound here, so payments/s is its cores divided by the CPU time per payment of \
         anvil plus ours (this process: agents, facilitator, paymaster). On a shared machine the CPU columns \
         move less than payments/s, but still with the machine's speed: read them beside the Criterion \
         floor above.\n",
        f.max_batch, f.max_wait_ms
    )?;
    writeln!(
        md,
        "| agents | payments | seconds | payments/s | p50 ms | max ms | sign p50 ms | /settle p50 ms | handleOps txs | anvil CPU ms/payment | our CPU ms/payment |"
    )?;
    writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    let ms = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"));
    for s in &f.settle {
        writeln!(
            md,
            "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
            s.agents,
            s.payments,
            s.seconds,
            s.payments_per_s,
            s.p50_ms,
            s.max_ms,
            s.sign_p50_ms,
            s.settle_p50_ms,
            s.bundles,
            ms(s.anvil_cpu_ms_per_payment),
            ms(s.ours_cpu_ms_per_payment)
        )?;
    }
    let settle_pps = f.settle.iter().map(|s| s.payments_per_s).fold(0.0, f64::max);
    writeln!(md, "\n`settle_payments_per_s` = {settle_pps:.2}, the best of the three levels.")?;

    let mut raw = serde_json::Map::new();
    for (key, _, f) in &scenarios {
        raw.insert(key.to_string(), serde_json::to_value(f)?);
    }
    let report = json!({
        "date": date,
        "machine": machine(),
        "versions": versions,
        // The handleOps transaction of a one-op bundle: `actualGasUsed` adds the same
        // preVerificationGas to both sides and so understates the difference (kept beside it).
        "gas_ratio_session_steady": ratio(g.session_steady.handle_ops_gas, base.handle_ops_gas),
        "gas_ratio_session_first": ratio(g.session_first.handle_ops_gas, base.handle_ops_gas),
        "gas_ratio_session_steady_actual_gas_used": ratio(g.session_steady.actual_gas_used, base.actual_gas_used),
        "gas_ratio_session_first_actual_gas_used": ratio(g.session_first.actual_gas_used, base.actual_gas_used),
        "revoke_gas": g.revoke_gas,
        // Kernel's session payment against Kernel's own owner payment (goal ≤ 1.15).
        "gas_ratio_kernel_session_steady": ratio(g.kernel_session_steady.handle_ops_gas, g.kernel_owner.handle_ops_gas),
        "gas_ratio_kernel_session_first": ratio(g.kernel_session_first.handle_ops_gas, g.kernel_owner.handle_ops_gas),
        // Biconomy's session payment against Biconomy's own owner payment (goal ≤ 1.15).
        "gas_ratio_biconomy_session_steady": ratio(g.biconomy_session_steady.handle_ops_gas, g.biconomy_owner.handle_ops_gas),
        "gas_ratio_biconomy_session_first": ratio(g.biconomy_session_first.handle_ops_gas, g.biconomy_owner.handle_ops_gas),
        // Safe's session payment against the Safe owner payment (goal ≤ 1.15).
        "gas_ratio_safe_session_steady": ratio(g.safe_session_steady.handle_ops_gas, g.safe_owner.handle_ops_gas),
        "gas_ratio_safe_session_first": ratio(g.safe_session_first.handle_ops_gas, g.safe_owner.handle_ops_gas),
        "gas_ratio_session_first_of_life": ratio(g.session_first_of_life.actual_gas_used, base.actual_gas_used),
        "gas": raw,
        "bundles": g.bundles,
        "pre_verification_gas": g.pre_verification_gas,
        "verify_rps_ratio_vs_x402rs": verify_ratio,
        "settle_payments_per_s": settle_pps,
        "facilitator": f,
        "offchain_verify_ns": verify_ns,
        "floor_recover_keccak_ns": floor_ns,
    });
    std::fs::write(root.join("BENCHMARKS.md"), &md)?;
    std::fs::write(root.join("BENCHMARKS.json"), serde_json::to_string_pretty(&report)? + "\n")?;
    progress(&md);
    progress("wrote BENCHMARKS.md and BENCHMARKS.json");
    Ok(())
}
