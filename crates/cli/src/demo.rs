//! `x402-aa demo`: the whole story on a local chain with the real EntryPoint v0.6. An owner grants
//! "10 USDT/day, max 1 USDT per payment, merchant X only, 24 h"; an agent buys paid calls until the cap
//! refuses it, at every layer (SDK, paymaster, facilitator, chain); the owner revokes; the agent is
//! refused again. Exits 0 only if every
//! step happened as expected.

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, bail, ensure};
use serde_json::json;
use x402_aa::{
    ENTRY_POINT_V06, UserOperation,
    x402::{AaNativeExtra, AaNativeRequirements},
};
use x402_aa_devnet::{Devnet, HandleOpsOutcome};
use x402_aa_paymaster::{PaymasterService, SponsorPolicy, code::PAYMASTER_REJECTED};
use x402_aa_rpc::{PaymasterClient, RpcError};
use x402_aa_session::{
    Scopes,
    accounts::UncheckedSessionAccount,
    client::{AaNativeScheme, X402PayingClient},
    ledger::{ChainSessionStatus, Ledger, OnChainState},
    owner, per_day,
    signer::{PaidRequest, PaymentSigner, SignedPayment, SignerError},
};
use x402_aa_stack::{LocalStack, StackOptions};

use crate::{commands::SessionAccount, output::Out};

const USD: u64 = 1_000_000;
const API_KEY: &str = "demo";

struct Row {
    n: usize,
    outcome: String,
    tx: Option<B256>,
}

pub(crate) async fn run(out: &Out, kind: SessionAccount) -> anyhow::Result<()> {
    let spinner = out.spinner("starting anvil, EntryPoint v0.6, paymaster, settlement, USDT");
    let devnet = Devnet::spawn().await?;
    let a = devnet.addresses;
    let chain_id = devnet.chain_id();
    let merchant = devnet.keys.spare[1].address();
    // The facilitator submits directly with its own funded key, bundling ops into handleOps.
    // The merchant's paid API: GET /joke costs 1 USDT, verified and settled by the facilitator.
    let options = StackOptions::new(devnet.keys.spare[2].clone(), merchant, "1 USDT")
        .paymaster_api_key(API_KEY);
    let stack = LocalStack::start(&devnet, options).await?;
    drop(spinner);
    out.say(format!("devnet up at {} — EntryPoint v0.6 at {}", devnet.rpc_url(), a.entry_point));
    let facilitator = stack.facilitator.url();
    out.say(format!("facilitator {facilitator}   paid API {} (1 USDT)", stack.paid_url()));

    // The owner: a counterfactual SessionKeyAccount holding 20 USDT and no native coin, or a
    // Kernel account whose owner installs the session validator with one transaction, or a
    // Biconomy account whose owner enables the session module with one UserOperation.
    // The grant: one owner signature, then the owner key goes offline.
    let owner_key = devnet.keys.spare[0].clone();
    let provider = devnet.provider().clone();
    let scopes = Scopes::new()
        .spend_cap("10 USDT".parse()?, per_day())
        .per_payment_max("1 USDT".parse()?)
        .merchants([merchant])
        .valid_for(Duration::from_secs(2 * 86_400))
        .only_paymaster(a.verifying_paymaster)
        // From the latest block on (the stack's default starts one second earlier).
        .valid_from(devnet.block_timestamp().await?);
    let (session, where_) = match kind {
        SessionAccount::SessionKeyAccount => {
            let session = x402_aa_stack::session_account(
                &devnet,
                &owner_key,
                PrivateKeySigner::random(),
                &scopes,
                B256::repeat_byte(0x42),
                false,
                U256::from(20 * USD),
            )
            .await?;
            (session, "SessionKeyAccount, not deployed yet")
        }
        SessionAccount::Kernel => {
            let session = x402_aa_stack::kernel_session_account(
                &devnet,
                &owner_key,
                PrivateKeySigner::random(),
                &scopes,
                B256::repeat_byte(0x42),
                U256::from(20 * USD),
            )
            .await?;
            (session, "Kernel v2.4, KernelSessionValidator installed by one owner transaction")
        }
        SessionAccount::Biconomy => {
            let session = x402_aa_stack::biconomy_session_account(
                &devnet,
                &owner_key,
                PrivateKeySigner::random(),
                &scopes,
                B256::repeat_byte(0x42),
                U256::from(20 * USD),
            )
            .await?;
            (
                session,
                "Biconomy Smart Account v2, BiconomySessionModule enabled by one owner \
                 UserOperation",
            )
        }
        SessionAccount::Safe => {
            let session = x402_aa_stack::safe_session_account(
                &devnet,
                &owner_key,
                PrivateKeySigner::random(),
                &scopes,
                B256::repeat_byte(0x42),
                U256::from(20 * USD),
            )
            .await?;
            (session, "1-of-1 Safe 1.4.1, SafeSessionModule installed by one owner transaction")
        }
    };
    let host = session.file.host();
    let (file, grant) = (&session.file, session.grant().clone());
    let (account, session_id, token) = (file.account, file.session_id, file.token.clone());
    out.say(format!("owner {} → account {account} ({where_}), 20 USDT", owner_key.address()));
    out.say(format!(
        "grant {session_id}: {} per day, max {} per payment, merchant {merchant} only, until {}",
        file.limits.per_period, file.limits.per_payment, file.limits.valid_until
    ));

    let ledger = Arc::new(Ledger::in_memory()?);
    let paymaster_client = || PaymasterClient::new(&stack.paymaster.url());
    let agent_signer = PaymentSigner::new(session.clone(), provider.clone())
        .await?
        .paymaster(paymaster_client()?, API_KEY);
    let agent = X402PayingClient::builder()
        .register(AaNativeScheme::with_ledger(agent_signer, provider.clone(), ledger.clone())?)
        .build();
    // The same key with the SDK's checks taken out: what a buggy or hostile agent could sign,
    // asking the stack's paymaster for gas like the agent does.
    let rogue = PaymentSigner::new(UncheckedSessionAccount(session.clone()), provider.clone())
        .await?
        .paymaster(paymaster_client()?, API_KEY);
    // That paymaster simulates every op before it signs and so refuses over-cap payments. A
    // sponsor that signs without simulating (the same VerifyingPaymaster and signer, simulation
    // off) shows that the facilitator and the account refuse them on their own.
    let careless = PaymasterService::new(
        x402_aa_stack::paymaster_config(&devnet, API_KEY)
            .with_policy(SponsorPolicy { simulate: false, ..SponsorPolicy::default() }),
    )?
    .bind(([127, 0, 0, 1], 0).into())
    .await?;
    let rogue_sponsored = PaymentSigner::new(UncheckedSessionAccount(session), provider.clone())
        .await?
        .paymaster(PaymasterClient::new(&careless.url())?, API_KEY);

    let price = U256::from(USD);
    let accepted = requirements(chain_id, merchant, a.token, a.settlement, price);
    let bundler = devnet.keys.bundler.address();
    let http = reqwest::Client::new();

    // 1. The agent buys calls over HTTP until its own SDK refuses.
    let mut rows = Vec::new();
    let mut paid = 0usize;
    let sdk_refusal = loop {
        let n = rows.len() + 1;
        match agent.get(stack.paid_url()).await {
            Ok(response) if response.is_settled() => {
                let tx =
                    response.settlement.as_ref().and_then(|s| s.transaction.parse::<B256>().ok());
                paid += 1;
                rows.push(Row { n, outcome: "paid 1 USDT".into(), tx });
                out.say(format!(
                    "  call {n:>2}: HTTP {} paid 1 USDT, tx {}",
                    response.status(),
                    tx.map(|t| t.to_string()).unwrap_or_default()
                ));
            }
            Ok(response) => bail!("call {n}: HTTP {} without a settled payment", response.status()),
            Err(e) => {
                rows.push(Row { n, outcome: format!("refused by SDK: {}", e.reason()), tx: None });
                break e;
            }
        }
        ensure!(n <= 20, "the cap never refused the agent");
    };
    ensure!(paid == 10, "expected 10 paid calls under a 10 USDT/day cap, got {paid}");
    ensure!(sdk_refusal.reason() == "spend_cap_exceeded", "SDK refused for {sdk_refusal}");
    out.say(format!(
        "  call {:>2}: SDK refused before signing: {}",
        rows.len(),
        sdk_refusal.reason()
    ));

    // 2. A payment signed past the cap anyway is refused by the paymaster (its simulation runs
    //    the account's own checks), the facilitator's checks and the chain.
    let rogue_request =
        PaidRequest { method: "GET".into(), url: "http://merchant.local/joke?rogue".into() };
    let err = rogue
        .pay(&accepted, &rogue_request)
        .await
        .err()
        .context("the paymaster sponsored an over-cap payment")?;
    let (paymaster_reason, paymaster_detail) = paymaster_refusal(&err)?;
    ensure!(
        paymaster_reason == "spend_cap_exceeded" && paymaster_detail.contains("over period cap"),
        "paymaster said {paymaster_reason}: {paymaster_detail}"
    );
    out.say(format!(
        "  paymaster refused to sponsor the over-cap payment: {paymaster_reason} ({paymaster_detail})"
    ));
    let over = rogue_sponsored
        .pay(&accepted, &rogue_request)
        .await
        .context("the rogue signer has no ledger and a sponsor that does not simulate")?;
    out.say("  signed anyway with gas from a sponsor that does not simulate:");
    let facilitator_reason = verify(&http, &facilitator, &over, &accepted).await?;
    ensure!(
        facilitator_reason == "spend_cap_exceeded",
        "facilitator /verify said {facilitator_reason}"
    );
    out.say(format!("  facilitator /verify refused the over-cap payload: {facilitator_reason}"));
    let chain_reason =
        chain_refusal(&devnet, over.payload.payload.user_op.clone(), bundler).await?;
    ensure!(chain_reason.contains("over period cap"), "EntryPoint said {chain_reason}");
    out.say(format!("  EntryPoint.handleOps refused it on-chain: {chain_reason}"));

    // 3. Next day the budget is back; the owner revokes; the agent is refused at every layer again.
    devnet.increase_time(86_400).await?;
    let probe = rogue
        .pay(
            &accepted,
            &PaidRequest {
                method: "GET".into(),
                url: "http://merchant.local/joke?after-revoke".into(),
            },
        )
        .await?;
    // The key, not only its address: a Biconomy account takes no direct owner call, so its
    // revocation is the owner's signature relayed to the session module.
    let revoke_tx = owner::revoke_in(&provider, host, &owner_key, account, session_id).await?;
    out.say(format!("next day: owner revoked the session (tx {revoke_tx})"));
    // The agent reconciles its ledger with the chain (as it does at every start) and tries again.
    let now = devnet.block_timestamp().await?;
    let state = owner::remaining_in(&provider, host, chain_id, account, &grant, now).await?;
    let chain_state = OnChainState {
        block_number: provider.get_block_number().await?,
        status: if state.status == owner::SessionStatus::Revoked {
            ChainSessionStatus::Revoked
        } else {
            ChainSessionStatus::Enabled
        },
        period_index: state.period_index,
        period_spent: state.period_spent,
        lifetime_spent: state.lifetime_spent,
    };
    ledger.reconcile(session_id, &chain_state)?;
    let err = agent.get(stack.paid_url()).await.err().context("the agent paid after revocation")?;
    ensure!(err.reason() == "session_revoked", "SDK said {err}");
    rows.push(Row {
        n: rows.len() + 1,
        outcome: format!("refused by SDK: {}", err.reason()),
        tx: None,
    });
    out.say(format!("  SDK refused: {}", err.reason()));
    let facilitator_reason = verify(&http, &facilitator, &probe, &accepted).await?;
    ensure!(
        facilitator_reason == "session_revoked",
        "facilitator /verify said {facilitator_reason}"
    );
    out.say(format!("  facilitator /verify refused a pre-signed payload: {facilitator_reason}"));
    let chain_reason =
        chain_refusal(&devnet, probe.payload.payload.user_op.clone(), bundler).await?;
    ensure!(chain_reason.ends_with("session: revoked"), "EntryPoint said {chain_reason}");
    out.say(format!("  EntryPoint refused it on-chain: {chain_reason}"));

    // Summary from the chain itself.
    let now = devnet.block_timestamp().await?;
    let state = owner::remaining_in(&provider, host, chain_id, account, &grant, now).await?;
    let merchant_balance = devnet.token_balance(merchant).await?;
    ensure!(merchant_balance == U256::from(10 * USD), "merchant holds {merchant_balance}");
    let mut table = String::from("\n| # | outcome | tx |\n|---:|---|---|\n");
    for row in &rows {
        let tx = row.tx.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
        table.push_str(&format!("| {} | {} | {tx} |\n", row.n, row.outcome));
    }
    table.push_str(&format!(
        "\npayments: {paid}   spent: {}   remaining: {} (session revoked)   merchant received: {}\n",
        token.format(state.lifetime_spent),
        token.format(state.period_remaining),
        token.format(merchant_balance),
    ));
    out.result(
        format!("{table}demo complete: every layer refused what the grant does not allow."),
        json!({
            "payments": paid,
            "spent": state.lifetime_spent.to_string(),
            "merchantReceived": merchant_balance.to_string(),
            "txs": rows.iter().filter_map(|r| r.tx).collect::<Vec<_>>(),
            "refusals": { "sdk": ["spend_cap_exceeded", "session_revoked"], "paymaster": [paymaster_reason], "facilitator": ["spend_cap_exceeded", "session_revoked"], "chain": ["over period cap", "revoked"] },
        }),
    );
    careless.shutdown().await?;
    stack.shutdown().await?;
    Ok(())
}

/// The paymaster's reason (`error.data.reason`) and message for a refused sponsorship.
fn paymaster_refusal(err: &SignerError) -> anyhow::Result<(String, String)> {
    match err {
        SignerError::Rpc(RpcError::JsonRpc { code: PAYMASTER_REJECTED, message, data, .. })
        | SignerError::SponsorRefused {
            source: RpcError::JsonRpc { code: PAYMASTER_REJECTED, message, data, .. },
            ..
        } => {
            let reason = data
                .as_ref()
                .and_then(|d| d["reason"].as_str())
                .context("paymaster refusal without data.reason")?;
            Ok((reason.to_owned(), message.clone()))
        }
        other => bail!("expected the paymaster's refusal, got {other}"),
    }
}

/// The facilitator's `/verify` answer for a payload: "valid" or its invalidReason.
async fn verify(
    http: &reqwest::Client,
    facilitator: &str,
    signed: &SignedPayment,
    accepted: &serde_json::Value,
) -> anyhow::Result<String> {
    let body = json!({ "x402Version": 2, "paymentPayload": signed.payload, "paymentRequirements": accepted });
    let answer: serde_json::Value = http
        .post(format!("{}/verify", facilitator.trim_end_matches('/')))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    if answer["isValid"] == true {
        return Ok("valid".into());
    }
    answer["invalidReason"]
        .as_str()
        .map(str::to_owned)
        .context("facilitator answer has no invalidReason")
}

fn requirements(
    chain_id: u64,
    merchant: Address,
    token: Address,
    settlement: Address,
    amount: U256,
) -> serde_json::Value {
    let req = AaNativeRequirements {
        chain_id,
        amount,
        pay_to: merchant,
        asset: token,
        max_timeout_seconds: 60,
        extra: Some(AaNativeExtra {
            settlement_contract: settlement,
            entry_point: ENTRY_POINT_V06,
        }),
    };
    serde_json::to_value(req.to_wire()).unwrap_or_default()
}

/// Submits straight to `EntryPoint.handleOps`, expecting a refusal; returns the EntryPoint's reason.
async fn chain_refusal(
    devnet: &Devnet,
    op: UserOperation,
    bundler: Address,
) -> anyhow::Result<String> {
    match devnet.handle_ops(&[op], bundler).await? {
        HandleOpsOutcome::FailedOp(f) => Ok(f.reason),
        HandleOpsOutcome::Included(_) => {
            bail!("the EntryPoint accepted an op the grant does not allow")
        }
    }
}
