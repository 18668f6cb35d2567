//! A small closed-loop HTTP load generator for facilitator `/verify` endpoints.
//!
//! `concurrency` workers each keep exactly one request in flight, cycling through pre-built
//! bodies, until the request budget or the time budget runs out (whichever first): bounded in
//! both, loopback only. Every answer is checked (`200` and `isValid: true`), so a throughput
//! figure can never be made of fast refusals.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

/// Bounds of one load level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) max_requests: usize,
    pub(crate) max_duration: Duration,
}

/// What one load level measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LoadFigure {
    pub(crate) concurrency: usize,
    pub(crate) requests: usize,
    /// Answers that were not `200 {isValid: true}` (or failed at the HTTP level).
    pub(crate) failures: usize,
    pub(crate) seconds: f64,
    pub(crate) requests_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// The raw outcome of one [`run`]: what [`LoadFigure::of`] sums up over several.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    concurrency: usize,
    latencies: Vec<Duration>,
    failures: usize,
    seconds: f64,
}

impl LoadFigure {
    /// The figure of several runs of one level taken as one: their requests over their summed
    /// time, percentiles over all their latencies.
    pub(crate) fn of(runs: Vec<Run>) -> Self {
        let concurrency = runs.first().map_or(0, |r| r.concurrency);
        let seconds: f64 = runs.iter().map(|r| r.seconds).sum();
        let failures = runs.iter().map(|r| r.failures).sum();
        let mut latencies: Vec<Duration> = runs.into_iter().flat_map(|r| r.latencies).collect();
        let requests = latencies.len();
        let Percentiles { p50_ms, p99_ms, max_ms } = percentiles(&mut latencies);
        let requests_per_s =
            if seconds > 0.0 { ((requests as f64 / seconds) * 10.0).round() / 10.0 } else { 0.0 };
        Self {
            concurrency,
            requests,
            failures,
            seconds: (seconds * 1000.0).round() / 1000.0,
            requests_per_s,
            p50_ms,
            p99_ms,
            max_ms,
        }
    }
}

/// Runs one level against `url` (a full `/verify` URL) with JSON `bodies` used round-robin.
/// A short unmeasured warm-up (one request per worker) opens the connections first.
pub(crate) async fn run(
    url: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    budget: Budget,
) -> anyhow::Result<Run> {
    anyhow::ensure!(!bodies.is_empty(), "no request bodies");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let warm = futures_join(concurrency, |i| {
        let (client, url, body) =
            (client.clone(), url.to_owned(), bodies[i % bodies.len()].clone());
        async move { one(&client, &url, body).await }
    })
    .await;
    if let Some(Err(e)) = warm.into_iter().find(|r| r.is_err()) {
        anyhow::bail!("warm-up request to {url} failed: {e}");
    }

    let issued = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + budget.max_duration;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, url, bodies, issued) =
            (client.clone(), url.to_owned(), bodies.clone(), issued.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= budget.max_requests || Instant::now() >= deadline {
                    break;
                }
                let body = bodies[n % bodies.len()].clone();
                let t = Instant::now();
                let ok = one(&client, &url, body).await.is_ok();
                latencies.push(t.elapsed());
                failures += usize::from(!ok);
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for w in workers {
        let (l, f) = w.await?;
        latencies.extend(l);
        failures += f;
    }
    Ok(Run { concurrency, latencies, failures, seconds: started.elapsed().as_secs_f64() })
}

/// Nearest-rank percentiles of a run, in milliseconds to 0.01 ms (all 0 for an empty run).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Percentiles {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// Sorts `latencies` and reads their percentiles.
pub(crate) fn percentiles(latencies: &mut [Duration]) -> Percentiles {
    latencies.sort_unstable();
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(i).copied().map(ms).unwrap_or(0.0)
    };
    Percentiles { p50_ms: pct(0.50), p99_ms: pct(0.99), max_ms: pct(1.0) }
}

/// One `/verify` round trip; `Ok` only for `200 {isValid: true}`.
async fn one(client: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<()> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    anyhow::ensure!(status.is_success() && answer["isValid"] == true, "{status}: {answer}");
    Ok(())
}

async fn futures_join<F, Fut, T>(n: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/verify` stand-in that accepts bodies containing `good` only.
    async fn judge() -> anyhow::Result<String> {
        let app = axum::Router::new().route(
            "/verify",
            axum::routing::post(|body: String| async move {
                axum::Json(serde_json::json!({ "isValid": body.contains("good") }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/verify", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(url)
    }

    #[tokio::test]
    async fn counts_every_refusal_and_stops_at_the_request_budget() -> anyhow::Result<()> {
        let url = judge().await?;
        let bodies = Arc::new(vec![b"good".to_vec(), b"bad".to_vec()]);
        let budget = Budget { max_requests: 40, max_duration: Duration::from_secs(30) };
        // The warm-up uses bodies[0] and bodies[1]: a refused warm-up is an error, not a figure.
        assert!(run(&url, bodies.clone(), 2, budget).await.is_err());

        let bodies =
            Arc::new(vec![b"good".to_vec(), b"good".to_vec(), b"bad".to_vec(), b"bad".to_vec()]);
        let f = LoadFigure::of(vec![run(&url, bodies, 1, budget).await?]);
        assert_eq!(f.requests, 40);
        assert_eq!(f.failures, 20, "{f:?}");
        assert!(f.p50_ms <= f.p99_ms && f.p99_ms <= f.max_ms, "{f:?}");
        assert!(f.requests_per_s > 0.0);
        Ok(())
    }

    #[tokio::test]
    async fn stops_at_the_time_budget() -> anyhow::Result<()> {
        let url = judge().await?;
        let bodies = Arc::new(vec![b"good".to_vec()]);
        let budget = Budget { max_requests: usize::MAX, max_duration: Duration::from_millis(300) };
        let f = LoadFigure::of(vec![run(&url, bodies, 4, budget).await?]);
        assert!(f.requests > 0 && f.failures == 0, "{f:?}");
        assert!(f.seconds < 5.0, "the time budget bounds the run: {f:?}");
        Ok(())
    }

    #[tokio::test]
    async fn slices_of_a_level_add_up_to_one_figure() -> anyhow::Result<()> {
        let url = judge().await?;
        let bodies = Arc::new(vec![b"good".to_vec(), b"bad".to_vec()]);
        let budget = |n| Budget { max_requests: n, max_duration: Duration::from_secs(30) };
        let (a, b) = (
            run(&url, bodies.clone(), 1, budget(10)).await?,
            run(&url, bodies, 1, budget(6)).await?,
        );
        let seconds = a.seconds + b.seconds;
        let f = LoadFigure::of(vec![a, b]);
        assert_eq!((f.concurrency, f.requests, f.failures), (1, 16, 8), "{f:?}");
        assert!((f.seconds - seconds).abs() < 0.001, "{f:?}");
        assert!((f.requests_per_s - 16.0 / seconds).abs() <= 0.1, "{f:?}");
        Ok(())
    }
}
