//! Direct mode bundles payments of different accounts into one `handleOps`, and drops the op
//! the EntryPoint refuses without sinking the others.

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{B256, U256},
    providers::Provider,
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolEvent,
};
use x402_aa::UserOperation;
use x402_aa_contracts::EntryPoint::UserOperationEvent;
use x402_aa_facilitator::{
    SubmissionConfig,
    chain::{Network, Probe},
    nonce::KeySender,
    submit::{BatchConfig, Batcher, Submitted, Submitter},
};

use crate::common::{Env, SessionOpts, USD, body};

#[tokio::test]
async fn payments_from_different_accounts_settle_in_one_handle_ops() -> anyhow::Result<()> {
    const N: usize = 5;
    let env = Env::new().await?;
    let mut config = env.config();
    for chain in config.chains.values_mut() {
        if let SubmissionConfig::Direct { max_batch, max_wait_ms, .. } = &mut chain.submission {
            *max_batch = 8;
            // Long enough that every request of this test joins the first batch.
            *max_wait_ms = 600;
        }
    }
    let f = Arc::new(env.start(config).await?);
    let accepted = env.accepted(USD);
    let mut bodies = Vec::new();
    for n in 0..N {
        let payer = if n == 0 {
            env.owner_payer(100 * USD).await?
        } else {
            env.session_payer(SessionOpts::default()).await?
        };
        bodies.push(body(&payer.pay(&accepted, n as u64).await?, &accepted));
    }
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|b| {
            let f = f.clone();
            tokio::spawn(async move { f.settle(&b).await })
        })
        .collect();
    let mut txs = Vec::new();
    for task in tasks {
        let (_, s) = task.await??;
        assert_eq!(s["success"], true, "{s}");
        txs.push(s["transaction"].as_str().unwrap_or_default().to_owned());
    }
    assert!(txs.iter().all(|t| t == &txs[0]), "one bundle: {txs:?}");
    assert_eq!(ops_in(&env, txs[0].parse()?).await?, N);
    assert_eq!(env.merchant_balance().await?, U256::from(N as u64 * USD));
    Ok(())
}

/// The `UserOperationEvent`s in transaction `tx`: how many ops its bundle carried.
async fn ops_in(env: &Env, tx: B256) -> anyhow::Result<usize> {
    let receipt = env.devnet.provider().get_transaction_receipt(tx).await?.expect("receipt");
    Ok(receipt
        .inner
        .logs()
        .iter()
        .filter(|l| UserOperationEvent::decode_log(&l.inner).is_ok())
        .count())
}

/// Both outcomes landed, paid, in one transaction, which it returns.
fn landed_together(a: &Submitted, b: &Submitted) -> B256 {
    let landed: Vec<_> = [a, b]
        .into_iter()
        .map(|o| match o {
            Submitted::Landed(l) => l.clone(),
            other => panic!("good ops land, got {other:?}"),
        })
        .collect();
    assert!(landed.iter().all(|l| l.success && l.receipt_log.is_some()));
    assert_eq!(landed[0].tx_hash, landed[1].tx_hash, "the rest went out together");
    landed[0].tx_hash
}

/// A network and a direct submitter (max 8 ops, 300 ms for company) on `env`'s devnet.
fn direct_submitter(env: &Env) -> anyhow::Result<(Network, Arc<Submitter>)> {
    let a = env.devnet.addresses;
    let net = Network::new(
        env.devnet.chain_id(),
        env.devnet.rpc_url(),
        a.entry_point,
        a.settlement,
        Some(a.session_account_factory),
        vec![a.token],
        Duration::from_secs(5),
        1_000,
    )?;
    let sender = KeySender::connect(
        env.devnet.rpc_url().parse()?,
        env.facilitator_key.clone(),
        Duration::from_secs(15),
    );
    let batcher = Batcher::spawn(
        net.clone(),
        sender,
        BatchConfig {
            max_batch: 8,
            max_wait: Duration::from_millis(300),
            receipt_timeout: Duration::from_secs(10),
        },
    );
    Ok((net, Arc::new(Submitter::Direct(batcher))))
}

/// Submits every job at once and collects the outcomes in order.
async fn submit_all(
    env: &Env,
    net: &Network,
    submitter: &Arc<Submitter>,
    jobs: Vec<(UserOperation, B256, B256)>,
) -> anyhow::Result<Vec<Submitted>> {
    let head = env.devnet.provider().get_block_number().await?;
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(op, hash, rh)| {
            let (submitter, net) = (submitter.clone(), net.clone());
            tokio::spawn(async move {
                submitter.submit(&net, op, hash, rh, head, Duration::from_secs(10)).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await?);
    }
    Ok(outcomes)
}

#[tokio::test]
async fn the_op_the_entry_point_refuses_is_dropped_from_the_bundle() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let (net, submitter) = direct_submitter(&env)?;
    let accepted = env.accepted(USD);
    let mut jobs = Vec::new();
    for n in 0..3u64 {
        let payer = env.owner_payer(100 * USD).await?;
        let paid = payer.pay(&accepted, n).await?;
        let mut op = paid.payload.payload.user_op.clone();
        if n == 1 {
            // A well-formed signature by the wrong key: the account answers SIG_VALIDATION_FAILED
            // and handleOps reverts with FailedOp(1, "AA24 signature error").
            let stranger = PrivateKeySigner::random();
            op.signature =
                stranger.sign_message_sync(paid.user_op_hash.as_slice())?.as_bytes().into();
        }
        jobs.push((op, paid.user_op_hash, paid.request_hash));
    }
    let outcomes = submit_all(&env, &net, &submitter, jobs).await?;
    match &outcomes[1] {
        // Refused in the bundle's simulation: never sent.
        Submitted::FailedOp { reason } => assert!(reason.contains("AA24"), "{reason}"),
        other => panic!("the bad op must be refused, got {other:?}"),
    }
    landed_together(&outcomes[0], &outcomes[2]);
    assert_eq!(env.merchant_balance().await?, U256::from(2 * USD));
    Ok(())
}

/// Once the node has answered a probe, a batch runs through the `VerifyProbe`'s `probeBundle`
/// before it is sent, which also sees a payment that would not be recorded (here: a payer without
/// the tokens). That op is answered `WouldNotSettle` and never sent, so nobody pays gas for it;
/// the rest land together. (`/settle` relies on this to skip probing each op alone.)
#[tokio::test]
async fn an_op_whose_payment_would_fail_is_dropped_before_sending() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let (net, submitter) = direct_submitter(&env)?;
    let accepted = env.accepted(USD);
    let mut jobs = Vec::new();
    for n in 0..3u64 {
        let payer = if n == 1 {
            env.broke_owner_payer().await?
        } else {
            env.owner_payer(100 * USD).await?
        };
        let paid = payer.pay(&accepted, n).await?;
        jobs.push((paid.payload.payload.user_op.clone(), paid.user_op_hash, paid.request_hash));
    }
    assert!(!net.probes_answered());
    let probe = net.probe(&jobs[0].0, jobs[0].2).await?;
    assert!(matches!(probe, Probe::Settles(_)), "{probe:?}");
    assert!(net.probes_answered(), "a node that answered a probe takes state overrides");

    let outcomes = submit_all(&env, &net, &submitter, jobs).await?;
    assert_eq!(outcomes[1], Submitted::WouldNotSettle, "{outcomes:?}");
    let tx = landed_together(&outcomes[0], &outcomes[2]);
    assert_eq!(ops_in(&env, tx).await?, 2, "the op that would not pay was never sent");
    assert_eq!(env.merchant_balance().await?, U256::from(2 * USD));
    Ok(())
}
