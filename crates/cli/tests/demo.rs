//! The README's main command keeps working: `x402-aa demo` runs the whole story and exits 0, and its
//! JSON summary says what happened.

use std::process::Command;

#[test]
fn demo_runs_the_whole_story() {
    demo(&[]);
}

/// The same story from a Kernel v2.4 account whose session key pays through the
/// KernelSessionValidator: paid to the cap, refused by the SDK, the paymaster, the facilitator and
/// the chain, revoked, refused again.
#[test]
fn demo_runs_the_whole_story_on_kernel() {
    demo(&["--account", "kernel"]);
}

/// The same story from a Biconomy Smart Account v2 whose session key pays through the
/// BiconomySessionModule; the owner's revocation is a signature relayed to the module.
#[test]
fn demo_runs_the_whole_story_on_biconomy() {
    demo(&["--account", "biconomy"]);
}

/// The same story from a 1-of-1 Safe whose session key pays through the SafeSessionModule
/// (enabled as module and fallback handler by one owner transaction).
#[test]
fn demo_runs_the_whole_story_on_safe() {
    demo(&["--account", "safe"]);
}

fn demo(extra: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_x402-aa"))
        .args(["--json", "demo"])
        .args(extra)
        .output()
        .expect("run x402-aa demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON summary");
    assert_eq!(summary["payments"], 10);
    assert_eq!(summary["spent"], "10000000");
    assert_eq!(summary["merchantReceived"], "10000000");
    assert_eq!(summary["txs"].as_array().map(Vec::len), Some(10));
    // The over-cap payment is refused by every layer, the sponsor's simulation included.
    assert_eq!(summary["refusals"]["paymaster"][0], "spend_cap_exceeded");
    assert_eq!(summary["refusals"]["facilitator"][0], "spend_cap_exceeded");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let output = Command::new(env!("CARGO_BIN_EXE_x402-aa"))
        .args(["session", "show", "/nonexistent/session.json"])
        .output()
        .expect("run x402-aa");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: cannot read /nonexistent/session.json"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_x402-aa"))
        .args([
            "--network",
            "moon",
            "account",
            "balance",
            "0x0000000000000000000000000000000000000001",
        ])
        .output()
        .expect("run x402-aa");
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown network \"moon\""));
}
