//! The owner console against a real devnet stack (anvil, the canonical EntryPoint v0.6, the
//! paymaster service, the facilitator, a paid API): driven in headless Chromium, and through its
//! JSON API for signing elsewhere.

mod api;
mod browser;
mod common;
mod webdriver;
