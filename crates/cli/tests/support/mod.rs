//! What the CLI's process-level tests share: a running `x402-aa devnet up` and the CLI run
//! against it. Each test binary uses a part of it.
#![allow(dead_code)]

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// A running `x402-aa --json devnet up` and the JSON it printed; stopped with SIGINT (its
/// Ctrl-C) by [`DevnetUp::stop`], and also when dropped by a failing test: a SIGKILL would leave
/// its anvil running, holding the test harness's output pipe open.
pub(crate) struct DevnetUp {
    child: Child,
    pub(crate) info: Value,
}

impl DevnetUp {
    pub(crate) async fn start(state: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_x402-aa"))
            .arg("--json")
            .arg("--devnet-state")
            .arg(state)
            .args(["devnet", "up"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        // One pretty-printed JSON document, then nothing until Ctrl-C.
        let read = async {
            let mut printed = String::new();
            while let Some(line) = lines.next_line().await? {
                printed.push_str(&line);
                printed.push('\n');
                if let Ok(info) = serde_json::from_str::<Value>(&printed) {
                    return Ok(info);
                }
            }
            anyhow::bail!("devnet up exited without printing its JSON: {printed}")
        };
        let info = tokio::time::timeout(Duration::from_secs(300), read).await??;
        anyhow::ensure!(info.get("error").is_none(), "devnet up failed: {info}");
        Ok(Self { child, info })
    }

    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().ok_or_else(|| anyhow::anyhow!("devnet up already exited"))?;
        let signal = Command::new("kill").args(["-INT", &pid.to_string()]).status().await?;
        anyhow::ensure!(signal.success(), "could not signal devnet up");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        anyhow::ensure!(status.success(), "devnet up stopped with {status}");
        Ok(())
    }
}

/// `x402-aa --json ARGS… LAST` against the running devnet; its JSON result.
pub(crate) fn cli(state: &Path, args: &[&str], last: &str) -> anyhow::Result<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_x402-aa"))
        .arg("--json")
        .arg("--devnet-state")
        .arg(state)
        .args(args)
        .arg(last)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "{args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_str(&stdout)?)
}

pub(crate) fn text(value: &Value) -> anyhow::Result<String> {
    value.as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("not a string: {value}"))
}

pub(crate) fn parse<T: std::str::FromStr>(value: &Value) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let s = text(value)?;
    s.parse().map_err(|e| anyhow::anyhow!("{s:?}: {e}"))
}

impl Drop for DevnetUp {
    fn drop(&mut self) {
        let Some(pid) = self.child.id() else { return };
        let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
