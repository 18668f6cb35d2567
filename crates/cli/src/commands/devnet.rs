//! `devnet up`: a local chain with everything around it, until Ctrl-C.
//!
//! What it prints (text, or `--json`) is the stack's [`StackInfo`]: everything a client or a
//! merchant needs, so the official x402 clients and servers work against it with no other
//! configuration. The JSON field names are the serde names of [`StackInfo`] (camelCase), listed
//! in the README's devnet section; the CLI tests read them.

use alloy::primitives::U256;
use clap::Subcommand;
use x402_aa_devnet::Devnet;
use x402_aa_stack::{LocalStack, StackInfo, StackOptions, fund_devnet_keys};

use crate::{
    Cli,
    chain::{BiconomyState, DevnetState},
    output::Out,
};

/// Spare keys the stack itself uses; every other spare key is funded for clients.
const MERCHANT: usize = 5;
const FACILITATOR: usize = 6;
/// What each client key and its accounts start with: 100 USDT / USDC (6 decimals).
const FUNDING: u64 = 100_000_000;
/// The paymaster service's API key on the devnet.
const PAYMASTER_API_KEY: &str = "devnet";

#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start anvil with EntryPoint v0.6 at its canonical address, our contracts, a paymaster
    /// service, a facilitator (aa-native and `exact`) and a paid API offering both; fund the
    /// test keys; print URLs, tokens, contracts and keys; stay up until Ctrl-C.
    Up {
        /// Port of the paymaster service (0 = any free port).
        #[arg(long, default_value_t = 0)]
        paymaster_port: u16,
    },
}

pub(crate) async fn devnet(cli: &Cli, out: &Out, command: &DevnetCommand) -> anyhow::Result<()> {
    let DevnetCommand::Up { paymaster_port } = command;
    let spinner = out.spinner(
        "starting anvil and deploying EntryPoint v0.6, factories, paymaster, settlement, tokens",
    );
    let devnet = Devnet::spawn().await?;
    let spare = &devnet.keys.spare;
    // The facilitator submits directly from a funded devnet key; the example API charges
    // 0.01 USDT (aa-native) or 0.01 USDC (`exact`).
    let merchant = spare[MERCHANT].address();
    let options = StackOptions::new(spare[FACILITATOR].clone(), merchant, "0.01 USDT")
        .registry(cli.devnet_state.with_file_name("facilitator.sqlite"))
        .paymaster_bind(([127, 0, 0, 1], *paymaster_port).into())
        .paymaster_api_key(PAYMASTER_API_KEY);
    let stack = LocalStack::start(&devnet, options).await?;
    let clients: Vec<_> = spare
        .iter()
        .enumerate()
        .filter(|(i, _)| ![MERCHANT, FACILITATOR].contains(i))
        .map(|(_, key)| key.clone())
        .collect();
    let funded = fund_devnet_keys(&devnet, &clients, U256::from(FUNDING)).await?;
    let info = stack.info(&devnet, funded);
    drop(spinner);

    let state = state(&devnet, &info);
    if let Some(dir) = cli.devnet_state.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.devnet_state, serde_json::to_string_pretty(&state)?)?;
    // The owner console, signing as the first funded key.
    let console =
        super::console::start_for_devnet(&state, cli.devnet_state.with_file_name("console-devnet"))
            .await?;
    let text = format!(
        "{info}  owner console              {}\nstate written to {}; Ctrl-C stops everything.",
        console.url(),
        cli.devnet_state.display()
    );
    let mut json = serde_json::to_value(&info)?;
    json["consoleUrl"] = console.url().into();
    out.result(text, json);

    tokio::signal::ctrl_c().await?;
    let _ = console.shutdown().await;
    let stopped = stack.shutdown().await;
    let _ = std::fs::remove_file(&cli.devnet_state);
    stopped?;
    drop(devnet);
    Ok(())
}

/// What the other commands read from a running devnet (`--network devnet`).
fn state(devnet: &Devnet, info: &StackInfo) -> DevnetState {
    let c = &info.contracts;
    DevnetState {
        rpc_url: info.rpc_url.clone(),
        chain_id: info.chain_id,
        entry_point: c.entry_point,
        simple_account_factory: c.simple_account_factory,
        session_account_factory: c.session_account_factory,
        settlement: c.settlement,
        token: devnet.addresses.token,
        verifying_paymaster: c.verifying_paymaster,
        kernel_session_validator: Some(devnet.addresses.kernel_session_validator),
        biconomy_session_module: Some(devnet.biconomy.session_module),
        biconomy: Some(BiconomyState {
            factory: devnet.biconomy.factory,
            implementation: devnet.biconomy.implementation,
            ecdsa_module: devnet.biconomy.ecdsa_module,
        }),
        safe_session_module: Some(devnet.addresses.safe_session_module),
        paymaster_url: info.paymaster.url.clone(),
        paymaster_api_key: info.paymaster.api_key.clone(),
        funded_keys: info.funded_keys.iter().map(|k| k.private_key).collect(),
    }
}
