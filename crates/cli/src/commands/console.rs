//! `console`: the owner console, a local web page to see every session and stop it in one click
//! (the `x402-aa-console` crate). Works against the running devnet or any network by RPC URL.

use std::{net::SocketAddr, path::PathBuf};

use alloy::{primitives::Address, providers::Provider, signers::local::PrivateKeySigner};
use anyhow::Context;
use clap::Args;
use serde_json::json;
use x402_aa_console::{ConsoleConfig, ConsoleHandle, load_key_file};
use x402_aa_session::TokenInfo;

use crate::{
    Cli,
    chain::{Chain, DevnetState},
    output::Out,
};

/// Where the owner key may come from besides `--owner-key-file`.
const OWNER_KEY_ENV: &str = "X402_AA_OWNER_KEY";
const RELAYER_KEY_ENV: &str = "X402_AA_RELAYER_KEY";
const DEVNET_CHAIN_ID: u64 = 31_337;
/// How far back the spend chart reads on a network other than the devnet, unless told.
const RECENT_BLOCKS: u64 = 100_000;

#[derive(Debug, Args)]
pub(crate) struct ConsoleArgs {
    /// Where the page is served.
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: SocketAddr,
    /// A directory of session files to show (as `session list` reads it).
    #[arg(long)]
    sessions: Option<PathBuf>,
    /// The console's own files: the grants it made with their justification, their session
    /// files and generated session keys (0600).
    #[arg(long, default_value = ".x402-aa/console")]
    data_dir: PathBuf,
    /// A file holding the owner key (hex, mode 0600); or set X402_AA_OWNER_KEY. The key is never
    /// typed into the page.
    #[arg(long)]
    owner_key_file: Option<PathBuf>,
    /// The owner's address when its key signs elsewhere: the page then shows the EIP-712 data
    /// to sign and takes the signature.
    #[arg(long)]
    owner: Option<Address>,
    /// A funded key file that submits owner-signed pauses and revocations; or set
    /// X402_AA_RELAYER_KEY.
    #[arg(long)]
    relayer_key_file: Option<PathBuf>,
    /// SessionKeyAccountFactory (default: the network's or the devnet's).
    #[arg(long)]
    session_factory: Option<Address>,
    /// Settlement contract (default: the network's).
    #[arg(long)]
    settlement: Option<Address>,
    /// Payment token (default: the network's).
    #[arg(long)]
    token: Option<Address>,
    /// First block to read settlement receipts from (default: the devnet's first, or the last
    /// 100,000 blocks of another network).
    #[arg(long)]
    from_block: Option<u64>,
}

fn key_from(file: Option<&PathBuf>, env: &str) -> anyhow::Result<Option<PrivateKeySigner>> {
    if let Some(path) = file {
        return Ok(Some(load_key_file(path)?));
    }
    match std::env::var(env) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(
            text.trim().parse().with_context(|| format!("{env} is not a hex private key"))?,
        )),
        _ => Ok(None),
    }
}

pub(crate) async fn console(cli: &Cli, out: &Out, args: &ConsoleArgs) -> anyhow::Result<()> {
    let chain = Chain::resolve(cli)?;
    let settlement = args
        .settlement
        .or(chain.settlement)
        .context("no settlement contract known for this network: pass --settlement")?;
    let token = args
        .token
        .or(chain.token.as_ref().map(|t| t.address))
        .context("no payment token known for this network: pass --token")?;
    let mut config = ConsoleConfig::new(chain.rpc_url.clone(), settlement, token, &args.data_dir);
    config.chain_id = Some(chain.chain_id);
    config.entry_point = chain.entry_point;
    config.session_account_factory = args.session_factory.or(chain.session_account_factory);
    config.token_info = chain.token.clone().filter(|t| t.address == token);
    config.paymaster = chain.paymaster;
    config.owner_key = key_from(args.owner_key_file.as_ref(), OWNER_KEY_ENV)?;
    config.owner = args.owner;
    config.relayer_key = key_from(args.relayer_key_file.as_ref(), RELAYER_KEY_ENV)?;
    config.sessions_dir = args.sessions.clone();
    config.from_block = match args.from_block {
        Some(block) => block,
        None if chain.chain_id == DEVNET_CHAIN_ID => 0,
        // A public chain's history is long; the spend chart starts at recent blocks.
        None => chain.provider(None)?.get_block_number().await?.saturating_sub(RECENT_BLOCKS),
    };
    config.bind = args.bind;
    let from_block = config.from_block;
    let handle = x402_aa_console::serve(config).await?;
    out.result(
        format!(
            "owner console at {} (chain {}, receipts from block {from_block}); Ctrl-C stops it.",
            handle.url(),
            chain.chain_id
        ),
        json!({ "url": handle.url(), "chainId": chain.chain_id, "fromBlock": from_block }),
    );
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await?;
    Ok(())
}

/// The console for `devnet up`: the devnet's addresses, its first funded key as the owner (an
/// anvil test key, public anyway), files under `data_dir`, any free local port.
pub(crate) fn devnet_config(state: &DevnetState, data_dir: PathBuf) -> ConsoleConfig {
    let mut config =
        ConsoleConfig::new(state.rpc_url.clone(), state.settlement, state.token, data_dir);
    config.chain_id = Some(state.chain_id);
    config.entry_point = state.entry_point;
    config.session_account_factory = Some(state.session_account_factory);
    config.token_info =
        Some(TokenInfo { address: state.token, symbol: "USDT".into(), decimals: 6 });
    config.paymaster = Some(state.verifying_paymaster);
    config.owner_key = state.funded_keys.first().and_then(|k| PrivateKeySigner::from_bytes(k).ok());
    config
}

/// Starts the devnet's console (see [`devnet_config`]) for `devnet up` to print its URL. The
/// data directory starts empty: grants of an earlier devnet name sessions this chain never saw.
pub(crate) async fn start_for_devnet(
    state: &DevnetState,
    data_dir: PathBuf,
) -> anyhow::Result<ConsoleHandle> {
    match std::fs::remove_dir_all(&data_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow::Error::new(e).context(format!("clearing {}", data_dir.display())));
        }
        _ => {}
    }
    Ok(x402_aa_console::serve(devnet_config(state, data_dir)).await?)
}
