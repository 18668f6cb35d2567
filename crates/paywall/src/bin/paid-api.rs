//! `paid-api`: the example paid API. `GET /joke` costs `--price` in aa-native x402 payments,
//! verified and settled by the facilitator at `--facilitator`; `GET /health` is free.

use std::{io::IsTerminal as _, net::SocketAddr};

use alloy::primitives::Address;
use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use url::Url;
use x402_aa::x402::{NERO_TESTNET_CHAIN_ID, TokenAmount, default_decimals};
use x402_aa_paywall::{Paywall, Token, demo, price_tag};

#[derive(Debug, Parser)]
#[command(version, about = "Example paid API: GET /joke costs an aa-native x402 payment")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PAID_API_BIND", default_value = "127.0.0.1:8402")]
    bind: SocketAddr,
    /// Facilitator base URL (POST /verify, POST /settle, GET /supported below it).
    #[arg(long, env = "PAID_API_FACILITATOR")]
    facilitator: String,
    /// The merchant address that receives the payments.
    #[arg(long, env = "PAID_API_PAY_TO")]
    pay_to: Address,
    /// Price of one joke, with the token's symbol.
    #[arg(long, env = "PAID_API_PRICE", default_value = "0.01 USDT")]
    price: String,
    /// The ERC-20 token address the price is paid in.
    #[arg(long, env = "PAID_API_TOKEN")]
    token: Address,
    /// The token's decimals; default: known from the price's symbol (USDT, USDC: 6).
    #[arg(long, env = "PAID_API_TOKEN_DECIMALS")]
    token_decimals: Option<u8>,
    /// The SettlementContract address, advertised in the 402's `extra.settlementContract`.
    #[arg(long, env = "PAID_API_SETTLEMENT")]
    settlement: Address,
    /// EIP-155 chain id of the network payments settle on.
    #[arg(long, env = "PAID_API_CHAIN_ID", default_value_t = NERO_TESTNET_CHAIN_ID)]
    chain_id: u64,
    /// Settle before running the handler instead of after a 2xx answer.
    #[arg(long)]
    settle_before: bool,
    /// Public origin of this API, for `resource.url` in the 402 (default: from the Host header).
    #[arg(long, env = "PAID_API_BASE_URL")]
    base_url: Option<Url>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();

    let token = token(&args)?;
    let tag = price_tag(args.chain_id, args.pay_to, &args.price, &token, args.settlement)?;
    let mut paywall = Paywall::new(&args.facilitator)?;
    if args.settle_before {
        paywall = paywall.settle_before_execution();
    }
    if let Some(base_url) = args.base_url.clone() {
        paywall = paywall.with_base_url(base_url);
    }
    let layer = paywall.layer([tag])?.with_description("one joke");
    let app = demo::router(layer);

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    tracing::info!(
        target: "paid_api",
        addr = %listener.local_addr()?,
        price = %args.price,
        pay_to = %args.pay_to,
        chain_id = args.chain_id,
        facilitator = %args.facilitator,
        "serving GET /joke (paid) and GET /health (free)"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The token from `--token`, its symbol from `--price`, its decimals from `--token-decimals` or
/// the symbol.
fn token(args: &Args) -> anyhow::Result<Token> {
    let symbol = args.price.split_ascii_whitespace().nth(1).unwrap_or_default().to_owned();
    let decimals = match args.token_decimals {
        Some(decimals) => decimals,
        None => default_decimals(&symbol).with_context(|| {
            format!("--price {:?}: no known decimals; pass --token-decimals", args.price)
        })?,
    };
    // Parse once here so a bad price is reported against the flag that carries it.
    TokenAmount::parse_with_decimals(&args.price, decimals)
        .with_context(|| format!("--price {:?}", args.price))?;
    Ok(Token::new(args.token, symbol, decimals))
}
