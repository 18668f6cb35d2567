//! The example binaries, run as a user would run them, against a live devnet stack (anvil with
//! the real EntryPoint v0.6, the paymaster service, the facilitator, the paid API): the owner
//! grants, the agent pays until its cap, the owner revokes, and an operator holds three users'
//! sessions whose budgets and revocations stay apart. Assertions are on the binaries' output and
//! on the chain (token balances, session state). Also the SDK's owner-key client for each
//! account kind it supports.

use std::{path::Path, process::Stdio, time::Duration};

use alloy::{
    primitives::{Address, U256},
    providers::ext::AnvilApi,
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, ensure};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{ChildStdin, ChildStdout, Command},
};
use x402_aa_contracts::SessionKeyAccountFactory;
use x402_aa_devnet::Devnet;
use x402_aa_session::sdk::{
    AccountKind, Network, PayingClient, Rule, SafeConfig, ScopeViolation, Scopes, SdkError,
    SessionFile, SessionKey, SessionOwner, SessionStatus, env, factory_var, per_day,
    session_status,
};
use x402_aa_stack::{LocalStack, StackOptions};

const USD: u64 = 1_000_000;
const API_KEY: &str = "examples";

/// The devnet, the stack on it, and the `X402_AA_*` settings that point the binaries at them.
struct Chain {
    devnet: Devnet,
    stack: LocalStack,
    url: String,
    merchant: Address,
    env: Vec<(String, String)>,
}

impl Chain {
    async fn start() -> anyhow::Result<Self> {
        let devnet = Devnet::spawn().await?;
        // The devnet's deployment ends with a presigned factory transaction paying a ~100 gwei tip;
        // alloy's fee estimate (20th-percentile tip of the last 10 blocks) would then price every
        // later transaction (mints, handleOps) at that tip, and the payment signer's maxFeePerGas
        // (twice the gas price) above the paymaster's 100 gwei cap. Ten empty blocks push it out.
        devnet.provider().anvil_mine(Some(10), None).await?;
        let a = devnet.addresses;
        let merchant = devnet.keys.spare[5].address();
        let options = StackOptions::new(devnet.keys.spare[6].clone(), merchant, "0.25 USDT")
            .paymaster_api_key(API_KEY);
        let stack = LocalStack::start(&devnet, options).await?;
        let env = [
            (env::NETWORK.to_owned(), "devnet".to_owned()),
            (env::RPC_URL.to_owned(), devnet.rpc_url().to_owned()),
            (env::PAYMASTER_URL.to_owned(), stack.paymaster.url()),
            (env::PAYMASTER_API_KEY.to_owned(), API_KEY.to_owned()),
            (env::SETTLEMENT.to_owned(), a.settlement.to_string()),
            (env::TOKEN.to_owned(), a.token.to_string()),
            (env::PAYMASTER.to_owned(), a.verifying_paymaster.to_string()),
            (factory_var(AccountKind::SessionKeyAccount), a.session_account_factory.to_string()),
            (env::KERNEL_SESSION_VALIDATOR.to_owned(), a.kernel_session_validator.to_string()),
        ]
        .into();
        Ok(Self { url: stack.paid_url(), devnet, stack, merchant, env })
    }

    /// The same settings as a [`Network`], for the library calls of the tests.
    fn network(&self) -> anyhow::Result<Network> {
        Ok(Network::from_lookup(|name| {
            self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })?)
    }

    fn command(&self, bin: &str) -> Command {
        let mut command = Command::new(bin);
        command.envs(self.env.iter().cloned()).env_remove("X402_AA_SESSION_KEY").kill_on_drop(true);
        command
    }

    /// Runs an example to completion; its stdout, or an error with its stderr.
    async fn run(
        &self,
        bin: &str,
        owner: Option<&PrivateKeySigner>,
        args: &[&str],
    ) -> anyhow::Result<String> {
        let mut command = self.command(bin);
        command.args(args);
        match owner {
            Some(key) => command.env("X402_AA_OWNER_KEY", key.to_bytes().to_string()),
            None => command.env_remove("X402_AA_OWNER_KEY"),
        };
        let out = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .with_context(|| format!("{bin} {args:?} timed out"))??;
        let stdout = String::from_utf8(out.stdout)?;
        ensure!(
            out.status.success(),
            "{bin} {args:?} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(stdout)
    }

    /// `owner grant` for `owner` into `dir/<name>.json` + `.key`; the granted account gets `fund`.
    async fn grant(
        &self,
        owner: &PrivateKeySigner,
        dir: &Path,
        name: &str,
        spend_cap: &str,
        fund: U256,
    ) -> anyhow::Result<SessionFile> {
        let (session, key) = (dir.join(format!("{name}.json")), dir.join(format!("{name}.key")));
        let (session_arg, key_arg) = (path(&session)?, path(&key)?);
        let merchant = self.merchant.to_string();
        let args = [
            "grant",
            "--spend-cap",
            spend_cap,
            "--per-payment",
            "0.25 USDT",
            "--merchant",
            &merchant,
            "--valid-for-secs",
            "3600",
            "--out",
            session_arg,
            "--key-out",
            key_arg,
        ];
        let out = self.run(OWNER, Some(owner), &args).await?;
        let file = SessionFile::load(&session)?;
        ensure!(out.contains(&format!("session {}", file.session_id)), "{out}");
        ensure!(out.contains(&format!("account {}", file.account)), "{out}");
        ensure!(file.owner == owner.address() && file.merchants == [self.merchant]);
        self.devnet.mint(file.account, fund).await?;
        Ok(file)
    }

    async fn balance(&self, who: Address) -> anyhow::Result<U256> {
        Ok(self.devnet.token_balance(who).await?)
    }
}

const AGENT: &str = env!("CARGO_BIN_EXE_agent");
const OWNER: &str = env!("CARGO_BIN_EXE_owner");
const OPERATOR: &str = env!("CARGO_BIN_EXE_operator");

fn path(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("non-UTF-8 temporary path")
}

fn usd(cents: u64) -> U256 {
    U256::from(cents * USD / 100)
}

/// The lines of `out` that start with `prefix`, for readable assertions.
fn line<'a>(out: &'a str, prefix: &str) -> anyhow::Result<&'a str> {
    out.lines().find(|l| l.starts_with(prefix)).with_context(|| format!("no {prefix:?} in:\n{out}"))
}

#[tokio::test]
async fn owner_grants_agent_pays_to_its_cap_and_revocation_stops_it() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let dir = tempfile::tempdir()?;
    let owner = chain.devnet.keys.spare[0].clone();

    // Owner: 0.5 USDT a day, 0.25 per payment, this merchant only; the account holds 5 USDT.
    let file = chain.grant(&owner, dir.path(), "session", "0.5 USDT", usd(500)).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("session.key"))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the session key file is private");
    }
    let session_json = std::fs::read_to_string(dir.path().join("session.json"))?;
    assert!(!session_json.contains("rivateKey"), "the session file holds no key");
    let (session, key) = (dir.path().join("session.json"), dir.path().join("session.key"));
    let (session, key) = (path(&session)?, path(&key)?);

    // Agent: two calls paid and settled, the third refused by the cap before anything is signed.
    let out = chain.run(AGENT, None, &[session, key, &chain.url, "3"]).await?;
    for call in ["call 1:", "call 2:"] {
        let l = line(&out, call)?;
        assert!(l.contains("HTTP 200") && l.contains("payment settled in 0x"), "{l}");
    }
    assert!(line(&out, "call 3:")?.contains("refused spend_cap_exceeded"), "{out}");
    assert_eq!(chain.balance(chain.merchant).await?, usd(50), "2 × 0.25 USDT reached the merchant");
    assert_eq!(chain.balance(file.account).await?, usd(450));

    // Owner: the chain says what was spent; one transaction revokes.
    let status = chain.run(OWNER, Some(&owner), &["status", session]).await?;
    assert!(
        status.contains("is Enabled") && status.contains("spent 0.5 USDT in total"),
        "{status}"
    );
    let out = chain.run(OWNER, Some(&owner), &["revoke", session]).await?;
    assert!(out.contains(&format!("revoked session {}", file.session_id)), "{out}");
    let on_chain = session_status(&chain.network()?, &file).await?;
    assert_eq!(on_chain.status, SessionStatus::Revoked);

    // Another owner cannot revoke it, and the agent is refused with the revocation's reason.
    let stranger = chain.devnet.keys.spare[4].clone();
    assert!(chain.run(OWNER, Some(&stranger), &["revoke", session]).await.is_err());
    let out = chain.run(AGENT, None, &[session, key, &chain.url, "1"]).await?;
    assert!(line(&out, "call 1:")?.contains("refused session_revoked"), "{out}");
    assert_eq!(chain.balance(chain.merchant).await?, usd(50), "nothing paid after revocation");

    chain.stack.shutdown().await?;
    Ok(())
}

/// Drives the operator over stdin / stdout.
struct Operator {
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Operator {
    async fn ask(&mut self, command: &str, answers: usize) -> anyhow::Result<Vec<String>> {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let mut lines = Vec::new();
        for _ in 0..answers {
            let next = tokio::time::timeout(Duration::from_secs(120), self.stdout.next_line());
            lines.push(next.await?.context("operator exited")?.context("no answer")?);
        }
        Ok(lines)
    }
}

#[tokio::test]
async fn operator_keeps_each_users_budget_and_revocation_apart() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let dir = tempfile::tempdir()?;
    let keys = &chain.devnet.keys.spare;
    let (alice, bob, carol) = (keys[1].clone(), keys[2].clone(), keys[3].clone());
    // Alice may spend 0.25 USDT a day (one call), Bob and Carol 1 USDT; each account holds 2.
    let a = chain.grant(&alice, dir.path(), "alice", "0.25 USDT", usd(200)).await?;
    let b = chain.grant(&bob, dir.path(), "bob", "1 USDT", usd(200)).await?;
    let c = chain.grant(&carol, dir.path(), "carol", "1 USDT", usd(200)).await?;

    let mut child = chain
        .command(OPERATOR)
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut operator = Operator {
        stdin: child.stdin.take().context("stdin")?,
        stdout: BufReader::new(child.stdout.take().context("stdout")?).lines(),
    };
    let banner = operator.ask("", 1).await?;
    assert_eq!(banner, ["holding 3 sessions: alice bob carol"]);

    // Every user pays once, concurrently, each from their own account.
    let url = &chain.url;
    let all = operator.ask(&format!("pay-all {url}"), 3).await?;
    for (answer, user) in all.iter().zip(["alice", "bob", "carol"]) {
        assert!(answer.starts_with(user) && answer.contains("payment settled in 0x"), "{all:?}");
    }
    // Alice's cap is spent: she is refused, and Bob is not.
    let answer = operator.ask(&format!("pay alice {url}"), 1).await?;
    assert!(answer[0].starts_with("alice refused spend_cap_exceeded"), "{answer:?}");
    let answer = operator.ask(&format!("pay bob {url}"), 1).await?;
    assert!(answer[0].contains("payment settled in 0x"), "{answer:?}");
    let answer = operator.ask("remaining alice", 1).await?;
    assert!(answer[0].starts_with("alice remaining 0 USDT this period"), "{answer:?}");

    // Bob revokes his session himself, while the operator runs; only Bob is cut off.
    let bob_session = dir.path().join("bob.json");
    chain.run(OWNER, Some(&bob), &["revoke", path(&bob_session)?]).await?;
    let answer = operator.ask(&format!("pay bob {url}"), 1).await?;
    assert!(answer[0].starts_with("bob refused session_revoked"), "{answer:?}");
    let answer = operator.ask(&format!("pay carol {url}"), 1).await?;
    assert!(answer[0].contains("payment settled in 0x"), "{answer:?}");

    operator.ask("quit", 0).await?;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    assert!(status.success(), "operator exited with {status}");

    // The chain: each account paid only its own calls.
    assert_eq!(chain.balance(a.account).await?, usd(175), "alice: one call");
    assert_eq!(chain.balance(b.account).await?, usd(150), "bob: two calls before revoking");
    assert_eq!(chain.balance(c.account).await?, usd(150), "carol: two calls");
    assert_eq!(chain.balance(chain.merchant).await?, usd(125));
    chain.stack.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn owner_key_client_pays_from_each_kind_and_setup_errors_are_named() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let network = chain.network()?;
    let a = chain.devnet.addresses;
    let provider = chain.devnet.provider();

    // One argument selects the account kind; the address is the factory's (as the EntryPoint
    // computes it, or as the kind's deployment derives it), and the first payment deploys the
    // account. The devnet's Biconomy build is not at Biconomy's canonical addresses, so its
    // network says where it is; Kernel and Safe are at theirs.
    let network = network.with_biconomy_deployment(chain.devnet.biconomy.deployment());
    let spare = &chain.devnet.keys.spare;
    for (kind, owner) in [
        (AccountKind::SimpleAccount, spare[0].clone()),
        (AccountKind::SessionKeyAccount, spare[1].clone()),
        (AccountKind::Kernel, spare[3].clone()),
        (AccountKind::Safe, spare[4].clone()),
        (AccountKind::Biconomy, spare[5].clone()),
    ] {
        let expected = match kind {
            AccountKind::SimpleAccount => {
                chain.devnet.simple_account_address(owner.address(), U256::ZERO).await?
            }
            AccountKind::Kernel => {
                chain.devnet.kernel_account_address(owner.address(), U256::ZERO).await?
            }
            AccountKind::Safe => chain
                .devnet
                .safe
                .account_address(&SafeConfig::single_owner(owner.address(), U256::ZERO))?,
            AccountKind::Biconomy => {
                chain.devnet.biconomy_account_address(owner.address(), U256::ZERO).await?
            }
            _ => {
                SessionKeyAccountFactory::new(a.session_account_factory, provider)
                    .getAddress(owner.address(), U256::ZERO)
                    .call()
                    .await?
            }
        };
        let client = PayingClient::owner(owner, kind).network(network.clone()).build().await?;
        assert_eq!((client.account(), client.kind()), (expected, kind));
        chain.devnet.mint(expected, usd(100)).await?;
        let paid = client.get(&chain.url).send().await?;
        assert!(paid.is_settled(), "{kind}: {:?}", paid.payment);
        assert_eq!(chain.balance(expected).await?, usd(75), "{kind}");
        assert!(client.remaining().await?.is_none(), "an owner key has no budget");
    }
    assert_eq!(chain.balance(chain.merchant).await?, usd(125));

    // The factory override selects the account contract: a session-key factory under the
    // SimpleAccount kind gives that factory's account.
    let owner = chain.devnet.keys.spare[2].clone();
    let client = PayingClient::owner(owner.clone(), AccountKind::SimpleAccount)
        .network(network.clone())
        .account_factory(a.session_account_factory)
        .build()
        .await?;
    let session_account = SessionKeyAccountFactory::new(a.session_account_factory, provider)
        .getAddress(owner.address(), U256::ZERO)
        .call()
        .await?;
    assert_eq!(client.account(), session_account);
    // A contract that is not a factory is refused at build time, not at the first payment.
    let err = PayingClient::owner(owner.clone(), AccountKind::SimpleAccount)
        .network(network.clone())
        .account_factory(a.token)
        .build()
        .await
        .expect_err("the token is no factory");
    assert_eq!(err.reason(), "rpc_error", "{err}");

    // Sessions exist only in SessionKeyAccounts today; other kinds are named, not guessed.
    let owner_side = SessionOwner::new(owner.clone(), network.clone());
    let scopes = Scopes::new().spend_cap("1 USDT".parse()?, per_day());
    let err = owner_side
        .grant(AccountKind::SimpleAccount, &scopes, SessionKey::Generate)
        .await
        .expect_err("SimpleAccount has no sessions");
    assert!(matches!(err, SdkError::UnsupportedAccountKind { .. }), "{err}");

    // The agent's builder refuses settings the grant contradicts, before any payment.
    let agent_key = PrivateKeySigner::random();
    let granted = owner_side
        .grant(AccountKind::SessionKeyAccount, &scopes, SessionKey::Address(agent_key.address()))
        .await?;
    assert!(granted.key.is_none(), "the owner never saw the agent's key");
    assert_eq!(granted.file.session_key, agent_key.address());
    let session = || PayingClient::session().session(granted.file.clone()).key(agent_key.clone());
    let err = session().network(network.clone()).settlement_contract(a.token).build().await;
    assert!(matches!(err, Err(SdkError::SessionMismatch { .. })), "{err:?}");
    let no_paymaster = Network::rpc(chain.devnet.rpc_url());
    let err = session().network(no_paymaster).build().await;
    assert!(matches!(err, Err(SdkError::PaymasterRequired)), "{err:?}");
    let err = PayingClient::session()
        .session(granted.file.clone())
        .key(PrivateKeySigner::random())
        .network(network.clone())
        .build()
        .await;
    assert_eq!(err.map(|_| ()).map_err(|e| e.reason()), Err("invalid_session_key"));
    let client = session().network(network.clone()).build().await?;
    let left = client.remaining().await?.context("a session has a budget")?;
    assert_eq!(left.period_remaining, usd(100));

    // Refusals are typed: the rule and the figures, not only a string.
    chain.devnet.mint(granted.account(), usd(200)).await?;
    for _ in 0..4 {
        assert!(client.get(&chain.url).send().await?.is_settled());
    }
    let refused = client.get(&chain.url).send().await.expect_err("1 USDT a day is spent");
    assert_eq!(refused.rule(), Some(Rule::OverPeriodCap), "{refused}");
    assert!(
        matches!(refused.violation(), Some(ScopeViolation::PeriodCapExceeded { remaining, .. }) if remaining.is_zero()),
        "{refused}"
    );
    assert_eq!(chain.balance(granted.account()).await?, usd(100));
    owner_side.revoke(&granted.file).await?;
    client.sync().await?;
    let refused = client.get(&chain.url).send().await.expect_err("revoked");
    assert_eq!((refused.rule(), refused.reason()), (Some(Rule::Revoked), "session_revoked"));
    assert!(client.remaining().await?.context("budget")?.revoked);

    // The EntryPoint override is honoured: an address that is no EntryPoint is refused at build.
    let err = PayingClient::owner(owner, AccountKind::SimpleAccount)
        .network(network)
        .entry_point(a.token)
        .build()
        .await
        .expect_err("the token is no EntryPoint");
    assert_eq!(err.reason(), "rpc_error", "{err}");

    chain.stack.shutdown().await?;
    Ok(())
}

/// The same SDK calls with one argument changed: the owner grants a session on a Kernel account
/// (the SDK deploys it and installs the KernelSessionValidator with owner transactions), the
/// agent's client pays until the cap and is refused with the policy's reason, and the owner's
/// revocation stops it.
#[tokio::test]
async fn kernel_session_through_the_same_sdk_calls() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let network = chain.network()?;
    let owner = SessionOwner::new(chain.devnet.keys.spare[2].clone(), network.clone());
    let scopes =
        Scopes::new().spend_cap("0.5 USDT".parse()?, per_day()).merchants([chain.merchant]);
    let granted = owner.grant(AccountKind::Kernel, &scopes, SessionKey::Generate).await?;
    let file = granted.file.clone();
    assert_eq!(file.account_kind, AccountKind::Kernel);
    assert!(file.session_validator.is_some() && file.deployment.is_none(), "{file:?}");
    let key = granted.key.context("a generated key")?;
    chain.devnet.mint(file.account, usd(100)).await?; // 1 USDT
    let client = PayingClient::session()
        .session(file.clone())
        .key(key)
        .network(network.clone())
        .build()
        .await?;
    assert_eq!((client.account(), client.kind()), (file.account, AccountKind::Kernel));
    for _ in 0..2 {
        assert!(client.get(&chain.url).send().await?.is_settled());
    }
    let refused = client.get(&chain.url).send().await.expect_err("0.5 USDT a day is spent");
    assert_eq!(refused.reason(), "spend_cap_exceeded", "{refused}");
    assert_eq!(chain.balance(file.account).await?, usd(50), "two calls of 0.25 USDT");
    let status = owner.status(&file).await?;
    assert_eq!(status.period_spent, usd(50), "the validator charged both");

    owner.revoke(&file).await?;
    client.sync().await?;
    let refused = client.get(&chain.url).send().await.expect_err("revoked");
    assert_eq!(refused.reason(), "session_revoked", "{refused}");
    chain.stack.shutdown().await?;
    Ok(())
}
