//! The whole owner story in a real browser: a refused bad form, a grant from the form, an agent
//! paying to the cap while the chart and the 100 % indicator follow, pause (payment refused),
//! resume (payment accepted), revoke (payment refused). Screenshots of each step are written to
//! `<target>/console-screenshots`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::providers::ext::AnvilApi;
use x402_aa_session::{GrantWindow, SessionFile};

use crate::{
    common::{Chain, screenshot_dir, usd},
    webdriver::Browser,
};

/// The session row of `id`, for CSS selectors.
fn row(id: &str) -> String {
    format!(".session[data-session=\"{id}\"]")
}

fn state_is(id: &str, state: &str) -> String {
    format!(
        "return !!document.querySelector('{}[data-state=\"{state}\"]')",
        row(id).replace('\'', "\\'")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn owner_grants_watches_pauses_resumes_and_revokes_in_the_browser() -> anyhow::Result<()> {
    crate::webdriver::require_chromium()?;
    let chain = Chain::start().await?;
    let data = tempfile::tempdir()?;
    let mut config = chain.config(data.path());
    config.owner_key = Some(chain.owner.clone());
    let console = chain.console(config).await?;
    let browser = Browser::start(screenshot_dir()).await?;
    browser.goto(&console.url()).await?;
    browser.wait("the page to load", "return document.body.dataset.loaded === 'true'").await?;
    let account = chain.account.to_string().to_lowercase();
    let header = browser.text(".account-head").await?;
    assert!(
        header.to_lowercase().contains(&account) && header.contains("holds 5 USDT"),
        "{header}"
    );

    // Bad input: a clear message in the page, and nothing written or signed.
    browser.fill("#spend-cap", "ten dollars").await?;
    browser.fill("#justification", "research agent").await?;
    browser.click("#preview").await?;
    browser.wait("the error", "return document.querySelector('#message.error') !== null").await?;
    let message = browser.text("#message").await?;
    assert!(message.contains("spend cap") && message.contains("ten dollars"), "{message}");
    browser.screenshot("01-bad-input").await?;
    assert_eq!(
        std::fs::read_dir(data.path().join("sessions"))?.count(),
        0,
        "no file for a bad grant"
    );

    // Grant: the preview says exactly what the agent may spend before anything is signed.
    let merchant = chain.merchant.to_string();
    for (field, value) in [
        ("#spend-cap", "0.5 USDT"),
        ("#period", "30 s"),
        ("#per-payment", "0.25 USDT"),
        ("#lifetime", "1 USDT"),
        ("#merchants", merchant.as_str()),
        ("#valid-for", "1 day"),
        ("#justification", "nightly research agent: pays the joke API"),
    ] {
        browser.fill(field, value).await?;
    }
    // The grant's window starts at the latest block: mine one now, so its first 30-second period
    // starts now and holds the payments below.
    chain.devnet.provider().anvil_mine(Some(1), None).await?;
    browser.click("#preview").await?;
    browser.wait("the preview", "return !document.querySelector('#preview-panel').hidden").await?;
    let sentence = browser.text("#preview-sentence").await?;
    for part in ["0.5 USDT per 30 seconds", "0.25 USDT per payment", "1 USDT in total", &merchant] {
        assert!(
            sentence.to_lowercase().contains(&part.to_lowercase()),
            "{part:?} missing from {sentence:?}"
        );
    }
    assert_eq!(
        std::fs::read_dir(data.path().join("sessions"))?.count(),
        0,
        "a preview writes nothing"
    );
    browser.screenshot("02-preview").await?;
    browser.click("#confirm-grant").await?;
    browser
        .wait(
            "the granted session",
            "return !!document.querySelector('.session[data-state=\"active\"]')",
        )
        .await?;
    let id = browser
        .script("return document.querySelector('.session').dataset.session")
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let text = browser.text(&row(&id)).await?;
    for part in ["nightly research agent", "up to 0.5 USDT per 30 seconds", "only to", "active"] {
        assert!(text.contains(part), "{part:?} missing from the session row:\n{text}");
    }
    browser.screenshot("03-granted").await?;

    // The agent pays with the files the console wrote, until the cap.
    let sessions = data.path().join("sessions");
    let session_file = sessions.join(format!("{id}.json"));
    let grant = SessionFile::load(&session_file)?.grant()?;
    let agent = chain.agent(&session_file, &sessions.join(format!("{id}.key"))).await?;
    agent.pay().await?;
    agent.pay().await?;
    assert_eq!(agent.refused().await?, "spend_cap_exceeded");
    assert_eq!(chain.merchant_balance().await?, usd(50));
    let full = format!(
        "return !!document.querySelector('{} .meter[data-level=\"100\"]')",
        row(&id).replace('\'', "\\'")
    );
    browser.wait("the 100 % indicator", &full).await?;
    browser
        .wait(
            "the chart",
            &format!(
                "const c = document.querySelector('#chart-sessions'); return c.dataset.points === '2' && c.querySelector('polyline.series').dataset.key === '{id}' && document.querySelector('#chart-merchants polyline.series').dataset.key.toLowerCase() === '{}'",
                merchant.to_lowercase()
            ),
        )
        .await?;
    let meter = browser.text(&format!("{} .meter[data-level=\"100\"]", row(&id))).await?;
    assert!(meter.contains("0.5 USDT of 0.5 USDT") && meter.contains("100 %"), "{meter}");
    let total = browser.text(&format!("{} .meter[data-label=\"in total\"]", row(&id))).await?;
    assert!(total.contains("0.5 USDT of 1 USDT (50 %)"), "{total}");
    browser.screenshot("04-cap-reached").await?;

    // The next period, by the chain's clock and the agent's (its ledger reads the wall clock):
    // the budget allows a payment again, so what refuses it below is the pause.
    let next_period = grant.valid_after_secs() + u64::from(grant.period) + 1;
    let wall = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    tokio::time::sleep(Duration::from_secs(next_period.saturating_sub(wall))).await;
    chain.devnet.provider().anvil_mine(Some(1), None).await?;
    browser.click(&format!("{} button.pause", row(&id))).await?;
    browser.wait("the paused state", &state_is(&id, "paused")).await?;
    assert_eq!(agent.refused().await?, "session_paused");
    assert_eq!(chain.merchant_balance().await?, usd(50), "nothing paid while paused");
    browser.screenshot("05-paused").await?;

    browser.click(&format!("{} button.resume", row(&id))).await?;
    browser.wait("the active state", &state_is(&id, "active")).await?;
    agent.pay().await?;
    assert_eq!(chain.merchant_balance().await?, usd(75));
    browser
        .wait(
            "three payments in the chart",
            "return document.querySelector('#chart-sessions').dataset.points === '3'",
        )
        .await?;
    browser.screenshot("06-resumed").await?;

    browser.click(&format!("{} button.revoke", row(&id))).await?;
    browser.wait("the revoked state", &state_is(&id, "revoked")).await?;
    assert_eq!(agent.refused().await?, "session_revoked");
    assert_eq!(chain.merchant_balance().await?, usd(75), "nothing paid after the revocation");
    let text = browser.text(&row(&id)).await?;
    assert!(text.contains("revoked") && !text.contains("Pause"), "{text}");
    browser.screenshot("07-revoked").await?;
    drop(browser);
    console.shutdown().await?;
    Ok(())
}
