//! `GET /metrics`: after real traffic the request, refusal, settlement and bundle counters have
//! moved.
//!
//! The registry is per process and the test binary runs other tests beside this one, so every
//! check is "grew by at least", read before and after.

use serde_json::json;

use crate::common::{Env, SessionOpts, USD, body};

/// The value of the sample `name{labels}` (exactly as rendered), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_refusals_settlements_and_bundles() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let scrape = || async {
        let response = f.http.get(format!("{}/metrics", f.url)).send().await?;
        anyhow::ensure!(response.status() == 200);
        let content_type = response.headers()["content-type"].to_str()?.to_owned();
        anyhow::ensure!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
        let text = response.text().await?;
        anyhow::ensure!(text.ends_with("# EOF\n"), "{text}");
        anyhow::Ok(text)
    };
    let series = [
        r#"x402_facilitator_requests_total{route="/settle",status="200"}"#,
        r#"x402_facilitator_requests_total{route="/verify",status="200"}"#,
        r#"x402_facilitator_request_duration_seconds_count{route="/settle"}"#,
        r#"x402_facilitator_settlements_total{outcome="success"}"#,
        r#"x402_facilitator_refusals_total{route="/verify",reason="replay"}"#,
        r#"x402_facilitator_refusals_total{route="/settle",reason="invalid_envelope"}"#,
        r#"x402_facilitator_bundles_total{outcome="landed"}"#,
        "x402_facilitator_bundle_ops_count",
    ];
    let before = scrape().await?;

    let accepted = env.accepted(USD);
    let payer = env.session_payer(SessionOpts::default()).await?;
    let paid = body(&payer.pay(&accepted, 1).await?, &accepted);
    let (_, v) = f.verify(&paid).await?;
    assert_eq!(v["isValid"], true, "{v}");
    let (_, s) = f.settle(&paid).await?;
    assert_eq!(s["success"], true, "{s}");
    let (_, v) = f.verify(&paid).await?;
    assert_eq!(v["invalidReason"], "replay", "{v}");
    let (status, _, answer) = f.raw("/settle", "application/json", b"not json".to_vec()).await?;
    assert_eq!((status, &answer["errorReason"]), (400, &json!("invalid_envelope")), "{answer}");

    let after = scrape().await?;
    let grew = |series: &str, by: f64| {
        let (b, a) = (sample(&before, series), sample(&after, series));
        assert!(a - b >= by, "{series}: {b} -> {a}, expected +{by}\n{after}");
    };
    grew(series[0], 1.0);
    grew(series[1], 2.0);
    grew(series[2], 2.0);
    grew(series[3], 1.0);
    grew(series[4], 1.0);
    grew(series[5], 1.0);
    grew(series[6], 1.0);
    grew(series[7], 1.0);
    assert!(after.contains("x402_facilitator_queue_depth "), "{after}");
    // The scrape itself is a request too.
    assert!(
        sample(&after, r#"x402_facilitator_requests_total{route="/metrics",status="200"}"#) >= 1.0
    );
    f.stop().await?;
    Ok(())
}
