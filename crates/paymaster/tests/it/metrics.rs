//! `GET /metrics` counts requests, refusals by reason and sponsorships.

use alloy::primitives::U256;
use x402_aa::ENTRY_POINT_V06;
use x402_aa_paymaster::SponsorPolicy;
use x402_aa_rpc::SponsorContext;

use crate::common::{API_KEY, funded_account, payment_op, start};

#[tokio::test]
async fn metrics_move_with_traffic() -> anyhow::Result<()> {
    let env = start(SponsorPolicy::default()).await?;
    let devnet = &env.devnet;
    let url = format!("{}metrics", env.handle.url());
    let scrape = || async {
        let response = reqwest::get(&url).await?;
        anyhow::ensure!(response.status() == 200);
        let content_type = response.headers()["content-type"].to_str()?.to_owned();
        anyhow::ensure!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
        anyhow::Ok(response.text().await?)
    };
    let before = scrape().await?;
    assert!(!before.contains("pm_sponsor_userop"), "{before}");

    let account = funded_account(devnet, &devnet.keys.spare[0]).await?;
    let free = SponsorContext::free();
    env.client
        .sponsor_user_op(&payment_op(devnet, account, 0, "m"), ENTRY_POINT_V06, API_KEY, free)
        .await?;
    let mut greedy = payment_op(devnet, account, 0, "m2");
    greedy.pre_verification_gas = U256::from(10_000_000);
    env.client.sponsor_user_op(&greedy, ENTRY_POINT_V06, API_KEY, free).await.unwrap_err();
    env.client.sponsor_user_op(&greedy, ENTRY_POINT_V06, "wrong", free).await.unwrap_err();

    let after = scrape().await?;
    for line in [
        r#"x402_paymaster_requests_total{method="pm_sponsor_userop",outcome="ok"} 1"#,
        r#"x402_paymaster_requests_total{method="pm_sponsor_userop",outcome="gas_too_high"} 1"#,
        r#"x402_paymaster_refusals_total{reason="gas_too_high"} 1"#,
        r#"x402_paymaster_refusals_total{reason="unknown_api_key"} 1"#,
        "x402_paymaster_sponsorships_total 1",
        r#"x402_paymaster_request_duration_seconds_count{method="pm_sponsor_userop"} 3"#,
    ] {
        assert!(after.contains(line), "{line} missing from\n{after}");
    }
    assert!(after.ends_with("# EOF\n"));
    Ok(())
}
