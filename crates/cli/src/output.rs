//! The single place that writes to the terminal: text or `--json`, and spinners while waiting.

use std::{io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) struct Out {
    json: bool,
}

impl Out {
    pub(crate) fn new(json: bool) -> Self {
        Self { json }
    }

    /// A result: `text` for people, `value` for `--json`.
    pub(crate) fn result(&self, text: impl AsRef<str>, value: serde_json::Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        } else {
            println!("{}", text.as_ref());
        }
    }

    /// Narration (text mode only).
    pub(crate) fn say(&self, text: impl AsRef<str>) {
        if !self.json {
            println!("{}", text.as_ref());
        }
    }

    pub(crate) fn error(&self, e: &anyhow::Error) {
        if self.json {
            let value = serde_json::json!({ "error": format!("{e:#}") });
            println!("{value}");
        } else {
            eprintln!("error: {e:#}");
        }
    }

    /// A spinner on stderr while `what` runs; silent in `--json` mode or when stderr is no terminal.
    pub(crate) fn spinner(&self, what: &str) -> Spinner {
        if self.json || !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(80));
        Spinner(Some(bar))
    }
}

pub(crate) struct Spinner(Option<ProgressBar>);

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
