//! `x402-aa`: the one binary. All terminal output goes through [`output::Out`], so `--json` gives
//! machine-readable results for scripts and spinners never end up in pipes.

/// glibc malloc took about a tenth of the settlement path's CPU; mimalloc takes less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod chain;
mod commands;
mod demo;
mod network;
// The one module allowed to print: everything else hands it text and a `--json` value.
#[allow(clippy::print_stdout, clippy::print_stderr)]
mod output;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "x402-aa",
    version,
    about = "Session keys with spending caps for aa-native x402 payments"
)]
pub(crate) struct Cli {
    /// Machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// devnet, nero-testnet or nero-mainnet.
    #[arg(long, global = true, default_value = "devnet", env = "X402_AA_NETWORK")]
    network: String,
    /// Chain RPC URL (default: the preset's, or the running devnet's).
    #[arg(long, global = true, env = "X402_AA_RPC_URL")]
    rpc_url: Option<String>,
    /// Where `devnet up` writes what it started, and where other commands look for it.
    #[arg(
        long,
        global = true,
        default_value = ".x402-aa/devnet.json",
        env = "X402_AA_DEVNET_STATE"
    )]
    devnet_state: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A local chain with the canonical EntryPoint v0.6 and everything around it.
    Devnet {
        #[command(subcommand)]
        command: commands::DevnetCommand,
    },
    /// Smart accounts (SessionKeyAccount, counterfactual until first use).
    Account {
        #[command(subcommand)]
        command: commands::AccountCommand,
    },
    /// Grant, inspect and revoke session keys.
    Session {
        #[command(subcommand)]
        command: Box<commands::SessionCommand>,
    },
    /// Fetch a URL, paying its x402 price with a session key (the SDK refuses what the grant
    /// forbids), an account owner key (aa-native) or a plain key (`exact`).
    Pay(commands::PayArgs),
    /// Run the facilitator service (`/supported`, `/verify`, `/settle`, `/health`) from a config file;
    /// environment variables override it as in x402-rs.
    Facilitator {
        #[arg(long, default_value = "facilitator.json", env = "X402_AA_FACILITATOR_CONFIG")]
        config: PathBuf,
    },
    /// The owner console: a local web page showing every session, its spend and state, with
    /// pause, resume, revoke and grant.
    Console(commands::ConsoleArgs),
    /// Run the whole story on a devnet: pay, hit the cap, get refused at every layer, revoke.
    Demo {
        /// The account contract the agent's session lives in.
        #[arg(long, value_enum, default_value_t = commands::SessionAccount::SessionKeyAccount)]
        account: commands::SessionAccount,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let out = output::Out::new(cli.json);
    let result = match &cli.command {
        Command::Devnet { command } => commands::devnet(&cli, &out, command).await,
        Command::Account { command } => commands::account(&cli, &out, command).await,
        Command::Session { command } => commands::session(&cli, &out, command).await,
        Command::Pay(args) => commands::pay(&cli, &out, args).await,
        Command::Facilitator { config } => commands::facilitator(&out, config).await,
        Command::Demo { account } => demo::run(&out, *account).await,
        Command::Console(args) => commands::console(&cli, &out, args).await,
    };
    if let Err(e) = result {
        out.error(&e);
        std::process::exit(1);
    }
}
