//! `make demo` (for now): start the devnet, deploy everything, print what is where, exit 0.
#![allow(clippy::print_stdout)]

use x402_aa_devnet::Devnet;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    println!("devnet up: {} (chain id {})", devnet.rpc_url(), devnet.chain_id());
    println!();
    for (name, address) in [
        ("EntryPoint v0.6 (canonical)", a.entry_point),
        ("SimpleAccountFactory v0.6 (canonical)", a.simple_account_factory),
        ("VerifyingPaymaster", a.verifying_paymaster),
        ("SettlementContract", a.settlement),
        ("TestStablecoin (USDT, 6 decimals)", a.token),
        ("SessionKeyAccountFactory", a.session_account_factory),
    ] {
        println!("  {name:<40} {address}");
    }
    println!();
    println!("  {:<40} {}", "deployer (token + settlement owner)", devnet.keys.deployer.address());
    println!("  {:<40} {}", "bundler / beneficiary", devnet.keys.bundler.address());
    println!("  {:<40} {}", "paymaster signer", devnet.keys.paymaster_signer.address());
    for (i, key) in devnet.keys.spare.iter().enumerate() {
        println!("  {:<40} {}", format!("funded account {i}"), key.address());
    }
    println!();
    println!("anvil stops when this process exits.");
    Ok(())
}
