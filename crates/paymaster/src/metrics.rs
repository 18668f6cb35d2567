//! Prometheus metrics of one service, served as OpenMetrics text at `GET /metrics`.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `x402_paymaster_requests_total` | `method`, `outcome` | JSON-RPC requests: `ok` or the error reason |
//! | `x402_paymaster_request_duration_seconds` | `method` | time to answer one request |
//! | `x402_paymaster_refusals_total` | `reason` | sponsorships refused, by reason ([`crate::SponsorError::reason`]) |
//! | `x402_paymaster_sponsorships_total` | | approvals signed |
//! | `x402_paymaster_sponsored_max_cost_wei_total` | | their worst-case cost to the deposit |
//!
//! Method names outside this service's own are counted as `other`, so no caller can grow the
//! label set; reasons are this crate's fixed vocabulary.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use alloy::primitives::U256;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// The OpenMetrics text format `GET /metrics` answers in.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodOutcome {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The service's metric handles; clones share them.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    requests: Family<MethodOutcome, Counter>,
    durations: Family<MethodLabel, Histogram, fn() -> Histogram>,
    refusals: Family<ReasonLabel, Counter>,
    sponsorships: Counter,
    sponsored_wei: Counter<f64, AtomicU64>,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("x402_paymaster");
        let requests = Family::<MethodOutcome, Counter>::default();
        registry.register(
            "requests",
            "JSON-RPC requests by method and outcome (ok or the error reason)",
            requests.clone(),
        );
        let durations = Family::<MethodLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer one JSON-RPC request, by method",
            durations.clone(),
        );
        let refusals = Family::<ReasonLabel, Counter>::default();
        registry.register("refusals", "Sponsorships refused, by reason", refusals.clone());
        let sponsorships = Counter::default();
        registry.register("sponsorships", "Approvals signed", sponsorships.clone());
        let sponsored_wei = Counter::<f64, AtomicU64>::default();
        registry.register(
            "sponsored_max_cost_wei",
            "Worst-case deposit cost of the approvals signed, in wei",
            sponsored_wei.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            durations,
            refusals,
            sponsorships,
            sponsored_wei,
        }
    }

    /// One JSON-RPC request answered after `elapsed`: `Ok` or the reason of its error.
    pub(crate) fn request(
        &self,
        method: &str,
        outcome: Result<(), &'static str>,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let outcome = outcome.err().unwrap_or("ok");
        self.requests.get_or_create(&MethodOutcome { method, outcome }).inc();
        self.durations.get_or_create(&MethodLabel { method }).observe(elapsed.as_secs_f64());
        if method == "pm_sponsor_userop" && outcome != "ok" {
            self.refusals.get_or_create(&ReasonLabel { reason: outcome }).inc();
        }
    }

    /// An approval signed whose op can cost the deposit at most `max_cost` wei.
    pub(crate) fn sponsored(&self, max_cost: U256) {
        self.sponsorships.inc();
        self.sponsored_wei.inc_by(u128::try_from(max_cost).map_or(f64::MAX, |wei| wei as f64));
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn method_label(method: &str) -> &'static str {
    match method {
        "pm_sponsor_userop" => "pm_sponsor_userop",
        "pm_supported_tokens" => "pm_supported_tokens",
        "pm_entrypoints" => "pm_entrypoints",
        "eth_chainId" => "eth_chainId",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_refusals_and_sponsorships() {
        let m = Metrics::new();
        m.request("pm_sponsor_userop", Err("account_ops_limit"), Duration::from_millis(3));
        m.request("pm_sponsor_userop", Ok(()), Duration::from_millis(3));
        m.request("eth_sendRawTransaction", Err("method_not_found"), Duration::ZERO);
        m.sponsored(U256::from(1_000_000_000u64));
        let text = m.render();
        for line in [
            r#"x402_paymaster_requests_total{method="pm_sponsor_userop",outcome="ok"} 1"#,
            r#"x402_paymaster_requests_total{method="other",outcome="method_not_found"} 1"#,
            r#"x402_paymaster_refusals_total{reason="account_ops_limit"} 1"#,
            "x402_paymaster_sponsorships_total 1",
            "x402_paymaster_sponsored_max_cost_wei_total 1000000000", // a float: "1000000000.0"
            r#"x402_paymaster_request_duration_seconds_count{method="pm_sponsor_userop"} 2"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
