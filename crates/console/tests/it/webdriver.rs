//! Headless Chromium through chromedriver, spoken to in W3C WebDriver: a handful of JSON calls
//! over HTTP, so the test needs no client crate beyond reqwest (already in the workspace).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key W3C WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Fails loudly when the browser is missing: this test is never skipped.
pub(crate) fn require_chromium() -> anyhow::Result<()> {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        ensure!(
            Path::new(bin).exists(),
            "{bin} is missing: run `make chromium` (apt-get install chromium chromium-driver); the console's browser test cannot run without it"
        );
    }
    Ok(())
}

/// One browser session; the browser and chromedriver stop when it is dropped.
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    pub(crate) async fn start(shots: PathBuf) -> anyhow::Result<Self> {
        require_chromium()?;
        std::fs::create_dir_all(&shots)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {CHROMEDRIVER}"))?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let root = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{root}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            ensure!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::Builder::new().prefix("console-chromium-").tempdir()?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1800",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let session = http.post(format!("{root}/session")).json(&caps).send().await?;
        let session: Value = session.json().await?;
        let id = session["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("chromedriver opened no session: {session}"))?;
        Ok(Self {
            http,
            base: format!("{root}/session/{id}"),
            _driver: driver,
            _profile: profile,
            shots,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = self.http.request(method.clone(), &url);
        let request = if method == reqwest::Method::GET { request } else { request.json(&body) };
        let response: Value = request.send().await?.json().await?;
        if let Some(error) = response["value"]["error"].as_str() {
            bail!("WebDriver {path}: {error}: {}", response["value"]["message"]);
        }
        Ok(response["value"].clone())
    }

    pub(crate) async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url })).await.map(drop)
    }

    async fn element(&self, css: &str) -> anyhow::Result<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        Ok(found[ELEMENT]
            .as_str()
            .with_context(|| format!("no element {css}: {found}"))?
            .to_owned())
    }

    /// Clicks `css` as a user would (retried while the page re-renders it).
    pub(crate) async fn click(&self, css: &str) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..5 {
            let el = self.element(css).await?;
            match self.call(reqwest::Method::POST, &format!("/element/{el}/click"), json!({})).await
            {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("cannot click {css}")))
    }

    /// Replaces the text of the input `css` by typing `text`.
    pub(crate) async fn fill(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self.element(css).await?;
        self.call(reqwest::Method::POST, &format!("/element/{el}/clear"), json!({})).await?;
        self.call(reqwest::Method::POST, &format!("/element/{el}/value"), json!({ "text": text }))
            .await
            .map(drop)
    }

    pub(crate) async fn text(&self, css: &str) -> anyhow::Result<String> {
        let el = self.element(css).await?;
        let text =
            self.call(reqwest::Method::GET, &format!("/element/{el}/text"), json!({})).await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    pub(crate) async fn script(&self, script: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, "/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// Waits until `script` returns true (the page polls the chain every second).
    pub(crate) async fn wait(&self, what: &str, script: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if self.script(script).await? == Value::Bool(true) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = self.screenshot(&format!("timeout-{}", what.replace(' ', "-"))).await;
                let body = self.text("body").await.unwrap_or_default();
                bail!("timed out waiting for {what}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Saves a PNG of the page under the build directory.
    pub(crate) async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.call(reqwest::Method::GET, "/screenshot", json!({})).await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().context("screenshot is not base64")?)?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }
}

impl Drop for Browser {
    /// Ends the browser session (chromedriver then closes Chromium) with a blocking request, so
    /// no browser outlives a failed test; chromedriver itself is killed with its handle.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some((host, path)) =
            self.base.strip_prefix("http://").and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        if let Ok(mut stream) = std::net::TcpStream::connect(host) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}
