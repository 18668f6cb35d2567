//! An agent paying an API under a session its owner granted. It holds only the session file and
//! the session key: the account refuses anything outside the grant, and so does this client,
//! before signing.
//!
//! ```sh
//! X402_AA_NETWORK=nero-testnet X402_AA_PAYMASTER_API_KEY=… \
//!     cargo run -p x402-aa-examples --bin agent -- session.json session.key https://api.example/joke 3
//! ```
//! Network settings come from `X402_AA_*` variables (`Network::from_env`).

use x402_aa_session::sdk::{Network, PayingClient};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [session, key, url, calls] = args.as_slice() else {
        anyhow::bail!("usage: agent SESSION_FILE KEY_FILE URL CALLS");
    };
    let client = PayingClient::session()
        .session_file(session)
        .key_file(key)
        .network(Network::from_env()?)
        .build()
        .await?;
    for call in 1..=calls.parse::<u32>()? {
        match client.get(url).send().await {
            Ok(paid) => {
                let payment =
                    paid.payment.as_ref().map_or("none".into(), |p| p.outcome.to_string());
                println!("call {call}: HTTP {}, payment {payment}", paid.status());
            }
            Err(refused) => println!("call {call}: refused {} ({refused})", refused.reason()),
        }
    }
    Ok(())
}
