//! An operator running agents for many users at once, without any user's owner key: it holds one
//! session per user, each paying from that user's own account under that user's own grant. One
//! user's budget running out, or one user revoking, changes nothing for the others.
//!
//! ```sh
//! operator sessions/     # sessions/<user>.json + sessions/<user>.key for every user
//! ```
//! Then commands on stdin, one per line; every answer line starts with the user's name:
//! - `pay USER URL` — one paid request for USER
//! - `pay-all URL` — one paid request for every user, concurrently
//! - `remaining USER` — what USER's budget has left (the operator's ledger)
//! - `quit`
//!
//! Network settings come from `X402_AA_*` variables (`Network::from_env`).

use std::{collections::BTreeMap, path::Path, sync::Arc};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use x402_aa_session::sdk::{Ledger, Network, PayingClient};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).context("usage: operator SESSIONS_DIR")?;
    let network = Network::from_env()?;
    // One ledger for every user: budgets are kept apart by session id, not by database.
    let ledger = Arc::new(Ledger::in_memory()?);
    let users = load_users(Path::new(&dir), &network, &ledger).await?;
    let names: Vec<&str> = users.keys().map(String::as_str).collect();
    println!("holding {} sessions: {}", users.len(), names.join(" "));

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["pay", user, url] => match users.get(*user) {
                Some(client) => println!("{user} {}", pay(client, url).await),
                None => println!("{user} unknown user"),
            },
            ["pay-all", url] => {
                let mut tasks = tokio::task::JoinSet::new();
                for (user, client) in &users {
                    let (user, client, url) = (user.clone(), client.clone(), url.to_string());
                    tasks.spawn(async move { (user, pay(&client, &url).await) });
                }
                let mut answers = BTreeMap::new();
                while let Some(answer) = tasks.join_next().await {
                    let (user, outcome) = answer?;
                    answers.insert(user, outcome);
                }
                for (user, outcome) in answers {
                    println!("{user} {outcome}");
                }
            }
            ["remaining", user] => match users.get(*user) {
                Some(client) => match client.remaining().await {
                    Ok(Some(left)) => {
                        let token = client.session_file().map(|f| f.token.clone());
                        let format = |v| token.as_ref().map_or(format!("{v}"), |t| t.format(v));
                        println!(
                            "{user} remaining {} this period, {} in total{}",
                            format(left.period_remaining),
                            format(left.lifetime_remaining),
                            if left.revoked { " (revoked)" } else { "" }
                        );
                    }
                    Ok(None) => println!("{user} has no budget"),
                    Err(e) => println!("{user} remaining unknown: {} ({e})", e.reason()),
                },
                None => println!("{user} unknown user"),
            },
            ["quit"] => break,
            [] => {}
            _ => println!("? pay USER URL | pay-all URL | remaining USER | quit"),
        }
    }
    Ok(())
}

/// One paying client per `<user>.json` + `<user>.key` pair in `dir`.
async fn load_users(
    dir: &Path,
    network: &Network,
    ledger: &Arc<Ledger>,
) -> anyhow::Result<BTreeMap<String, PayingClient>> {
    let mut users = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let user = path.file_stem().and_then(|s| s.to_str()).context("user name")?.to_owned();
        let client = PayingClient::session()
            .session_file(&path)
            .key_file(path.with_extension("key"))
            .network(network.clone())
            .ledger(ledger.clone())
            .build()
            .await
            .with_context(|| format!("session of {user}"))?;
        users.insert(user, client);
    }
    Ok(users)
}

/// `paid, settled in …` or `refused <reason> (…)`.
async fn pay(client: &PayingClient, url: &str) -> String {
    match client.get(url).send().await {
        Ok(paid) => {
            let payment = paid.payment.as_ref().map_or("none".into(), |p| p.outcome.to_string());
            format!("HTTP {}, payment {payment}", paid.status())
        }
        Err(refused) => format!("refused {} ({refused})", refused.reason()),
    }
}
