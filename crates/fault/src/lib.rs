//! Halt points for crash tests.
//!
//! A process started with its halt-point variable naming one of its points stops at that step for
//! good, after saying so on stderr, so a test can SIGKILL it exactly there and check what a
//! restart recovers. Unset (always, outside those tests) a point costs one comparison.
//!
//! Each process declares its own points and variable: the agent's
//! (`x402_aa_session::fault::HALT_POINTS`: after reserving, after signing, after the merchant's
//! answer) and the facilitator's (`x402_aa_facilitator::submit::HALT_POINTS`: before sending a
//! bundle, after sending it, after reading its receipt).

use std::sync::OnceLock;

/// What a halted process writes to stderr, followed by the point's name: the line a crash test
/// waits for before it kills the process.
pub const HALT_MESSAGE: &str = "x402-aa halt point reached:";

/// One process's halt points, and the environment variable naming the one to stop at.
#[derive(Debug)]
pub struct HaltPoints {
    env: &'static str,
    points: &'static [&'static str],
    chosen: OnceLock<Option<String>>,
}

impl HaltPoints {
    /// `points` in the order a run passes them; `env` names the one to stop at.
    pub const fn new(env: &'static str, points: &'static [&'static str]) -> Self {
        Self { env, points, chosen: OnceLock::new() }
    }

    /// The environment variable naming the point to stop at, read once per process.
    pub const fn env(&self) -> &'static str {
        self.env
    }

    /// Every point, in the order a run passes them.
    pub const fn points(&self) -> &'static [&'static str] {
        self.points
    }

    /// Returns at once unless the variable names `point`; then says so on stderr and never
    /// returns.
    pub async fn reached(&self, point: &'static str) {
        debug_assert!(self.points.contains(&point), "{point} is not one of {:?}", self.points);
        if self.chosen.get_or_init(|| std::env::var(self.env).ok()).as_deref() == Some(point) {
            // The crash test waits for this line; no logger is assumed.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{HALT_MESSAGE} {point}");
            }
            std::future::pending::<()>().await;
        }
    }
}
