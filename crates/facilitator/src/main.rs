//! `x402-aa-facilitator`: the facilitator as a process.
//!
//! ```text
//! x402-aa-facilitator [--config facilitator.json] [--check]
//! ```
//! The config path also comes from `X402_AA_CONFIG` (or x402-rs' `CONFIG`); environment
//! overrides are listed in `x402_aa_facilitator::config::env`. Logs go to stderr, filtered by
//! `RUST_LOG` (default `info`).

/// glibc malloc took about a tenth of the settlement path's CPU; mimalloc takes less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use tracing_subscriber::EnvFilter;
use x402_aa_facilitator::{Config, FacilitatorService, config::env};

/// x402 facilitator for aa-native (ERC-4337 v0.6) and exact (EIP-3009) payments.
#[derive(Debug, Parser)]
#[command(name = "x402-aa-facilitator", version)]
struct Args {
    /// JSON config file.
    #[arg(long, short, env = env::CONFIG)]
    config: Option<PathBuf>,
    /// Check the config, the nodes and the registry, then exit.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(target: "x402_aa::facilitator", error = %e, "facilitator stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> x402_aa_facilitator::Result<()> {
    let path = args
        .config
        .or_else(|| std::env::var_os("CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("facilitator.json"));
    let mut config = Config::from_file(&path)?;
    config.apply_env()?;
    let service = FacilitatorService::new(config).await?;
    if args.check {
        tracing::info!(target: "x402_aa::facilitator", config = %path.display(), "config ok");
        return Ok(());
    }
    let handle = service.bind().await?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if let Err(e) = result {
                tracing::warn!(target: "x402_aa::facilitator", error = %e, "no signal handler");
            }
            tracing::info!(target: "x402_aa::facilitator", "shutting down");
        }
    }
    handle.shutdown().await.map_err(x402_aa_facilitator::Error::Io)
}
