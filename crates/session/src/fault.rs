//! Fault injection for the agent's crash tests: a process started with [`HALT_AT_ENV`] set to one
//! of [`HALT_POINTS`] stops there for good, so a test can SIGKILL it at exactly that step of a
//! payment and check what a restart recovers. Unset (always, outside those tests) it costs one
//! comparison per point.

use std::sync::LazyLock;

/// The environment variable naming the halt point, read once per process.
pub const HALT_AT_ENV: &str = "X402_AA_AGENT_HALT_AT";

/// Every point, in the order a payment passes them: the budget is reserved in the ledger; the
/// payment header is signed (not yet sent); the merchant's answer arrived (not yet reconciled).
pub const HALT_POINTS: [&str; 3] = ["after_reserve", "after_sign", "after_send"];

/// What the halted process writes to stderr, followed by the point's name.
pub const HALT_MESSAGE: &str = "x402-aa agent halt point reached:";

static HALT_AT: LazyLock<Option<String>> = LazyLock::new(|| std::env::var(HALT_AT_ENV).ok());

/// Never returns when [`HALT_AT_ENV`] names `point`.
pub(crate) async fn halt_point(point: &'static str) {
    debug_assert!(HALT_POINTS.contains(&point), "unknown halt point {point}");
    if HALT_AT.as_deref() == Some(point) {
        #[allow(clippy::print_stderr)] // the crash test waits for this line; no logger is assumed
        {
            eprintln!("{HALT_MESSAGE} {point}");
        }
        std::future::pending::<()>().await;
    }
}
