//! `devnet up`: a local chain with everything around it, until Ctrl-C.

use alloy::primitives::U256;
use clap::Subcommand;
use x402_aa_contracts::SessionKeyAccountFactory;
use x402_aa_devnet::Devnet;
use x402_aa_stack::{LocalStack, StackOptions};

use crate::{Cli, chain::DevnetState, output::Out};

#[derive(Debug, Subcommand)]
pub(crate) enum DevnetCommand {
    /// Start anvil with EntryPoint v0.6 at its canonical address, our contracts and a paymaster
    /// service; print URLs and funded keys; stay up until Ctrl-C.
    Up {
        /// Port of the paymaster service (0 = any free port).
        #[arg(long, default_value_t = 0)]
        paymaster_port: u16,
    },
}

pub(crate) async fn devnet(cli: &Cli, out: &Out, command: &DevnetCommand) -> anyhow::Result<()> {
    let DevnetCommand::Up { paymaster_port } = command;
    let spinner = out.spinner(
        "starting anvil and deploying EntryPoint v0.6, factories, paymaster, settlement, USDT",
    );
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let api_key = "devnet".to_owned();
    // The facilitator submits directly from a funded devnet key; the example API charges 0.01 USDT.
    let merchant = devnet.keys.spare[5].address();
    let options = StackOptions::new(devnet.keys.spare[6].clone(), merchant, "0.01 USDT")
        .registry(cli.devnet_state.with_file_name("facilitator.sqlite"))
        .paymaster_bind(([127, 0, 0, 1], *paymaster_port).into())
        .paymaster_api_key(&api_key);
    let stack = LocalStack::start(&devnet, options).await?;
    // Every funded key's SessionKeyAccount (salt 0) starts with 100 USDT, ready to grant sessions.
    let factory = SessionKeyAccountFactory::new(a.session_account_factory, devnet.provider());
    for key in &devnet.keys.spare {
        let account = factory.getAddress(key.address(), U256::ZERO).call().await?;
        devnet.mint(account, U256::from(100_000_000u64)).await?;
    }
    let api_url = stack.paid_url();
    drop(spinner);
    let state = DevnetState {
        rpc_url: devnet.rpc_url().to_owned(),
        chain_id: devnet.chain_id(),
        entry_point: a.entry_point,
        simple_account_factory: a.simple_account_factory,
        session_account_factory: a.session_account_factory,
        settlement: a.settlement,
        token: a.token,
        verifying_paymaster: a.verifying_paymaster,
        kernel_session_validator: Some(a.kernel_session_validator),
        paymaster_url: stack.paymaster.url(),
        paymaster_api_key: api_key,
        funded_keys: devnet.keys.spare.iter().map(|k| k.to_bytes()).collect(),
    };
    if let Some(dir) = cli.devnet_state.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.devnet_state, serde_json::to_string_pretty(&state)?)?;
    let mut text = format!(
        "devnet up (chain {})\n  rpc                        {}\n  paymaster (pm_sponsor_userop) {}  api key: {}\n",
        state.chain_id, state.rpc_url, state.paymaster_url, state.paymaster_api_key
    );
    for (name, address) in [
        ("EntryPoint v0.6", a.entry_point),
        ("SimpleAccountFactory", a.simple_account_factory),
        ("SessionKeyAccountFactory", a.session_account_factory),
        ("SettlementContract", a.settlement),
        ("USDT (6 decimals)", a.token),
        ("VerifyingPaymaster", a.verifying_paymaster),
    ] {
        text.push_str(&format!("  {name:<26} {address}\n"));
    }
    text.push_str(&format!("  facilitator                {}\n", stack.facilitator.url()));
    text.push_str(&format!("  example paid API           {api_url} (0.01 USDT to {merchant})\n"));
    text.push_str("  funded keys (anvil test keys, never use elsewhere):\n");
    for key in &devnet.keys.spare {
        text.push_str(&format!(
            "    {}  {}  (its account holds 100 USDT)\n",
            key.address(),
            key.to_bytes()
        ));
    }
    text.push_str(&format!(
        "state written to {}; Ctrl-C stops everything.",
        cli.devnet_state.display()
    ));
    let mut json = serde_json::to_value(&state)?;
    json["facilitatorUrl"] = stack.facilitator.url().into();
    json["paidApiUrl"] = api_url.into();
    out.result(text, json);
    tokio::signal::ctrl_c().await?;
    let stopped = stack.shutdown().await;
    let _ = std::fs::remove_file(&cli.devnet_state);
    stopped?;
    drop(devnet);
    Ok(())
}
