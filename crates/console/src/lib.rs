//! The owner console: a local web page where an account owner sees every session at a glance
//! (scopes in words, what is left, state, spend over time) and stops one in a click.
//!
//! The chain is the truth: state and counters come from the account (`sessionState`,
//! `sessionGasState`, `sessionEpoch`, through [`x402_aa_session::owner::remaining`]), spend over
//! time from the settlement contract's `ReceiptLog` events. The console only remembers what the
//! chain cannot: which sessions to show (session files in a directory, and the grants it made
//! itself) and the justification the owner wrote for each grant.
//!
//! The owner key comes from a file or the environment and never passes through the page. Without
//! it the console shows the EIP-712 data to sign elsewhere and accepts the signature (a grant
//! needs nothing more; pause, resume and revocations are relayed by a funded relayer key), or the
//! transaction to send from the owner's wallet.
//!
//! ```no_run
//! # async fn run(config: x402_aa_console::ConsoleConfig) -> Result<(), x402_aa_console::ConsoleError> {
//! let console = x402_aa_console::serve(config).await?;
//! println!("owner console at {}", console.url());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod actions;
mod chain;
mod config;
mod error;
mod server;
mod store;
mod words;

pub use config::{ConsoleConfig, load_key_file};
pub use error::ConsoleError;
pub use server::{ConsoleHandle, router, serve};
pub use store::{GRANTS_FILE, StoredGrant};
pub use words::{Level, parse_duration};
