//! The paying HTTP client end to end on the devnet: agent (reqwest + x402-reqwest + AaNativeScheme)
//! → paywall (x402-axum on 127.0.0.1) → facilitator (HTTP) → EntryPoint.handleOps.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy::primitives::{B256, U256};
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use base64::Engine as _;
use serde_json::{Value, json};
use x402_aa::{
    ENTRY_POINT_V06,
    x402::{
        self, AaNativeExtra, AaNativeRequirements, PaymentRequirements, Reason, SettlementResponse,
        network,
    },
};
use x402_aa_paywall::{Paywall, PriceTag, Token, demo, price_tag, tag};
use x402_aa_session::{
    Scopes, SessionFile, TokenInfo,
    client::{AaNativeScheme, Cheapest, ClientError, MaxAmount, PaymentOutcome, X402PayingClient},
    ledger::{Ledger, ReservationState},
    owner::sign_grant,
    per_day,
    scopes::GasBudget,
    signer::{PaymentSigner, SessionAccount},
};

use crate::fixture::{Fx, USD};

// ------------------------------------------------------------------------------------------------
// STAND-IN FACILITATOR — to be replaced by crates/facilitator once it is ready.
//
// Just enough of /verify, /settle and /supported for these tests: the stateless aa-native checks
// from x402_aa::x402 and a direct `handleOps` through the devnet's bundler key. No replay
// registry, no idempotency, no bundler RPC.
// ------------------------------------------------------------------------------------------------

struct StandIn {
    fx: Arc<Fx>,
    verifies: AtomicUsize,
    settles: AtomicUsize,
}

impl StandIn {
    async fn serve(fx: Arc<Fx>) -> anyhow::Result<(Arc<Self>, String)> {
        let state =
            Arc::new(Self { fx, verifies: AtomicUsize::new(0), settles: AtomicUsize::new(0) });
        let router = Router::new()
            .route("/verify", post(stand_in_verify))
            .route("/settle", post(stand_in_settle))
            .route("/supported", get(stand_in_supported))
            .with_state(state.clone());
        Ok((state, serve(router).await?))
    }

    fn calls(&self) -> (usize, usize) {
        (self.verifies.load(Ordering::SeqCst), self.settles.load(Ordering::SeqCst))
    }
}

/// The stateless /verify checks; the typed envelope and requirements on success.
fn stand_in_check(
    body: &Value,
) -> Result<(x402::AaNativeEnvelope, AaNativeRequirements), x402::PayloadError> {
    let envelope = x402::decode_payment_payload(body["paymentPayload"].clone())?;
    let required = AaNativeRequirements::parse_json(&body["paymentRequirements"])?;
    envelope.verify_against(&required, &x402_aa::accounts::SimpleAccountAbi)?;
    Ok((envelope, required))
}

async fn stand_in_verify(State(s): State<Arc<StandIn>>, Json(body): Json<Value>) -> Json<Value> {
    s.verifies.fetch_add(1, Ordering::SeqCst);
    Json(match stand_in_check(&body) {
        Ok((envelope, _)) => json!({ "isValid": true, "payer": envelope.payer().to_string() }),
        Err(e) => json!({ "isValid": false, "invalidReason": e.reason() }),
    })
}

async fn stand_in_settle(State(s): State<Arc<StandIn>>, Json(body): Json<Value>) -> Json<Value> {
    s.settles.fetch_add(1, Ordering::SeqCst);
    let chain_id = s.fx.devnet.chain_id();
    let (envelope, _) = match stand_in_check(&body) {
        Ok(checked) => checked,
        Err(e) => {
            let failure =
                SettlementResponse::failure(chain_id, e.kind(), Some(e.to_string()), None);
            return Json(serde_json::to_value(failure).expect("serialise"));
        }
    };
    let payer = envelope.payer();
    let op = envelope.payload.payload.user_op.clone();
    let hash = op.hash(ENTRY_POINT_V06, chain_id);
    let devnet = &s.fx.devnet;
    let response = match devnet.handle_ops(&[op], devnet.keys.bundler.address()).await {
        Ok(outcome) => {
            match (outcome.failed_op().map(|(_, r)| r.to_owned()), outcome.into_included()) {
                (Some(reason), _) => SettlementResponse::failure(
                    chain_id,
                    Reason::BundlerError,
                    Some(reason),
                    Some(payer),
                ),
                (None, Ok(included)) if included.event(hash).is_some_and(|e| e.success) => {
                    SettlementResponse::success(chain_id, payer, included.receipt.transaction_hash)
                }
                (None, _) => {
                    SettlementResponse::failure(chain_id, Reason::UserOpFailed, None, Some(payer))
                }
            }
        }
        Err(e) => SettlementResponse::failure(
            chain_id,
            Reason::InternalError,
            Some(e.to_string()),
            Some(payer),
        ),
    };
    Json(serde_json::to_value(response).expect("serialise"))
}

async fn stand_in_supported(State(s): State<Arc<StandIn>>) -> Json<Value> {
    let network = network(s.fx.devnet.chain_id()).to_string();
    Json(json!({
        "kinds": [{ "x402Version": 2, "scheme": "aa-native", "network": network }],
        "extensions": [],
        "signers": {}
    }))
}

// ------------------------------------------------------------------------------------------------
// Merchant and agent
// ------------------------------------------------------------------------------------------------

async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

fn usdt(fx: &Fx) -> Token {
    Token::known(fx.devnet.addresses.token, "USDT").expect("USDT decimals")
}

fn tag_for(fx: &Fx, price: &str) -> PriceTag {
    let a = fx.devnet.addresses;
    price_tag(fx.devnet.chain_id(), fx.merchant, price, &usdt(fx), a.settlement).expect("price tag")
}

/// The paid API (`demo::router`: `/joke` paid, `/health` free) behind `tags`, its facilitator,
/// and the API's base URL.
async fn shop(fx: &Arc<Fx>, tags: Vec<PriceTag>) -> anyhow::Result<(String, Arc<StandIn>)> {
    let (facilitator, facilitator_url) = StandIn::serve(fx.clone()).await?;
    let layer = Paywall::new(&facilitator_url)?.layer(tags)?;
    Ok((serve(demo::router(layer)).await?, facilitator))
}

fn default_scopes(fx: &Fx) -> Scopes {
    Scopes::new()
        .spend_cap("3 USDT".parse().expect("amount"), per_day())
        .per_payment_max("1 USDT".parse().expect("amount"))
        .merchants([fx.merchant])
        .valid_for(Duration::from_secs(3600))
        .self_paid_gas(GasBudget {
            per_op: 10u128.pow(16),
            per_period: 10u128.pow(17),
            lifetime: 10u128.pow(17),
        })
}

/// The session account's scheme, with its ledger (shared, for assertions) and session id.
async fn agent(
    fx: &Fx,
    scopes: Scopes,
) -> anyhow::Result<(AaNativeScheme<SessionAccount>, Arc<Ledger>, B256)> {
    let a = fx.devnet.addresses;
    let now = fx.devnet.block_timestamp().await?;
    let chain_id = fx.devnet.chain_id();
    let token = TokenInfo { address: a.token, symbol: "USDT".into(), decimals: 6 };
    let grant = scopes.to_grant(
        fx.session_key.address(),
        &token,
        a.settlement,
        now - 1,
        0,
        B256::repeat_byte(9),
    )?;
    let (_, sig) = sign_grant(&fx.owner, &grant, chain_id, fx.account)?;
    let file = SessionFile::new(
        chain_id,
        fx.account,
        ENTRY_POINT_V06,
        None,
        token,
        fx.owner.address(),
        scopes.merchant_list(),
        &grant,
        sig,
    );
    let account = SessionAccount::new(file, fx.session_key.clone())?;
    let session_id = account.file.session_id;
    let provider = fx.devnet.provider().clone();
    let signer = PaymentSigner::new(account, provider.clone()).await?;
    let ledger = Arc::new(Ledger::in_memory()?);
    let scheme = AaNativeScheme::with_ledger(signer, provider, ledger.clone())?;
    Ok((scheme, ledger, session_id))
}

async fn funded_fx() -> anyhow::Result<Arc<Fx>> {
    let fx = Fx::new().await?;
    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    Ok(Arc::new(fx))
}

fn amount_paid(settled: &x402_aa_session::client::PaidResponse) -> U256 {
    settled.payment.as_ref().expect("a payment was made").requirements.amount
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn paid_call_settles_on_chain_and_commits_the_reservation() -> anyhow::Result<()> {
    let fx = funded_fx().await?;
    let (base, facilitator) = shop(&fx, vec![tag_for(&fx, "0.5 USDT")]).await?;
    let (scheme, ledger, session_id) = agent(&fx, default_scopes(&fx)).await?;
    let client = X402PayingClient::builder().register(scheme).build();

    let free = client.get(format!("{base}/health")).await?;
    assert_eq!(free.status(), StatusCode::OK);
    assert!(free.payment.is_none() && free.settlement.is_none());

    let paid = client.get(format!("{base}/joke")).await?;
    assert_eq!(paid.status(), StatusCode::OK, "{:?}", paid.payment);
    let settlement = paid.settlement.clone().expect("PAYMENT-RESPONSE decoded");
    assert!(settlement.success);
    assert_eq!(settlement.payer.as_deref(), Some(fx.account.to_checksum(None).as_str()));
    assert_eq!(settlement.network, network(fx.devnet.chain_id()));
    let payment = paid.payment.clone().expect("payment record");
    let PaymentOutcome::Settled { transaction, block_number } = payment.outcome else {
        panic!("not settled: {:?}", payment.outcome);
    };
    assert_eq!(settlement.transaction, transaction.to_string());
    assert!(paid.is_settled());
    assert_eq!(payment.requirements.amount, U256::from(USD / 2));
    assert_eq!(facilitator.calls(), (1, 1), "verified once, settled once");

    // The merchant got paid, and the ledger committed exactly this payment.
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(USD / 2));
    let history = ledger.history(session_id)?;
    assert_eq!(history.len(), 1);
    let reservation = &history[0];
    assert_eq!(Some(reservation.id), payment.reservation);
    assert_eq!(reservation.state, ReservationState::Committed);
    assert_eq!(reservation.request_hash, payment.request_hash);
    let record = reservation.settlement.expect("settlement record");
    assert_eq!((record.tx_hash, record.block_number), (transaction, block_number));
    assert_eq!(record.user_op_hash, payment.user_op_hash);

    let body: Value = paid.response.json().await?;
    assert!(body["joke"].is_string(), "{body}");
    Ok(())
}

#[tokio::test]
async fn over_cap_call_is_refused_before_signing_with_the_ledgers_reason() -> anyhow::Result<()> {
    let fx = funded_fx().await?;
    let (base, facilitator) = shop(&fx, vec![tag_for(&fx, "0.6 USDT")]).await?;
    let scopes = default_scopes(&fx).spend_cap("1 USDT".parse()?, per_day());
    let (scheme, ledger, session_id) = agent(&fx, scopes).await?;
    let client = X402PayingClient::builder().register(scheme).build();

    assert!(client.get(format!("{base}/joke")).await?.is_settled());
    // 0.6 + 0.6 > 1 USDT/day: refused in `accept`, before anything is signed or sent.
    let err = client.get(format!("{base}/joke")).await.unwrap_err();
    assert_eq!(err.reason(), "spend_cap_exceeded", "{err}");
    let ClientError::NothingPayable { refusals } = &err else { panic!("{err:?}") };
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].budget);
    assert!(err.to_string().contains("spend_cap_exceeded"), "{err}");

    assert_eq!(facilitator.calls(), (1, 1), "the refused call never reached the facilitator");
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(6 * USD / 10));
    assert_eq!(ledger.history(session_id)?.len(), 1, "nothing was reserved for the refusal");
    Ok(())
}

#[tokio::test]
async fn failed_settlement_releases_the_reservation() -> anyhow::Result<()> {
    use alloy::sol_types::SolCall as _;
    use x402_aa_contracts::{SessionKeyAccount, TestStablecoin};

    let fx = funded_fx().await?;
    let (base, facilitator) = shop(&fx, vec![tag_for(&fx, "0.5 USDT")]).await?;
    let (scheme, ledger, session_id) = agent(&fx, default_scopes(&fx)).await?;
    let client = X402PayingClient::builder().register(scheme).build();
    // The owner empties the account: the op validates, but its settle reverts in execution.
    let balance = fx.devnet.token_balance(fx.account).await?;
    let transfer = TestStablecoin::transferCall { to: fx.stranger, value: balance };
    let dest = fx.devnet.addresses.token;
    let func = transfer.abi_encode().into();
    fx.owner_call(SessionKeyAccount::executeCall { dest, value: U256::ZERO, func }).await?;

    let paid = client.get(format!("{base}/joke")).await?;
    assert_eq!(paid.status(), StatusCode::PAYMENT_REQUIRED);
    let settlement = paid.settlement.clone().expect("the paywall relays the failed settlement");
    assert!(!settlement.success);
    assert_eq!(settlement.error_reason.as_deref(), Some("user_op_failed"));
    let payment = paid.payment.clone().expect("payment record");
    assert_eq!(payment.outcome, PaymentOutcome::Released { reason: "user_op_failed".into() });
    assert_eq!(facilitator.calls(), (1, 1));
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::ZERO);
    let history = ledger.history(session_id)?;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, ReservationState::Released);
    assert_eq!(history[0].release_reason.as_deref(), Some("user_op_failed"));
    Ok(())
}

#[tokio::test]
async fn a_signer_refusal_after_selection_surfaces_its_reason() -> anyhow::Result<()> {
    let fx = funded_fx().await?;
    let (base, facilitator) = shop(&fx, vec![tag_for(&fx, "0.5 USDT")]).await?;
    let (scheme, ledger, session_id) = agent(&fx, default_scopes(&fx)).await?;
    let client = X402PayingClient::builder().register(scheme).build();
    assert!(client.get(format!("{base}/joke")).await?.is_settled());

    // Revoked on chain: the ledger does not know, so the offer is selected; `pay` then refuses.
    let id = session_id;
    fx.owner_call(x402_aa_contracts::SessionKeyAccount::revokeSession_olCall { id }).await?;
    let err = client.get(format!("{base}/joke")).await.unwrap_err();
    assert!(matches!(err, ClientError::Signer(_)), "{err:?}");
    assert_eq!(err.reason(), "session_revoked", "{err}");
    assert_eq!(facilitator.calls(), (1, 1));
    // `pay` found the revocation in its chain reads, which come before the reservation: nothing
    // of the budget was ever held for the refused payment.
    let states: Vec<_> = ledger.history(session_id)?.into_iter().map(|r| r.state).collect();
    assert_eq!(states, [ReservationState::Committed]);
    Ok(())
}

#[tokio::test]
async fn selectors_choose_among_several_requirements() -> anyhow::Result<()> {
    let fx = funded_fx().await?;
    let a = fx.devnet.addresses;
    let chain_id = fx.devnet.chain_id();
    // Another scheme's entry, an aa-native entry on another chain, one above the per-payment max,
    // then the two the session can pay.
    let exact = PriceTag {
        requirements: PaymentRequirements {
            scheme: "exact".into(),
            network: network(chain_id),
            amount: "1".into(),
            pay_to: fx.merchant.to_string(),
            max_timeout_seconds: 60,
            asset: a.token.to_string(),
            extra: None,
        },
        enricher: None,
    };
    let other_chain = tag(&AaNativeRequirements {
        chain_id: 1,
        amount: U256::from(USD / 10),
        pay_to: fx.merchant,
        asset: a.token,
        max_timeout_seconds: 60,
        extra: Some(AaNativeExtra {
            settlement_contract: a.settlement,
            entry_point: ENTRY_POINT_V06,
        }),
    });
    let tags = vec![
        exact,
        other_chain,
        tag_for(&fx, "2 USDT"),
        tag_for(&fx, "1 USDT"),
        tag_for(&fx, "0.25 USDT"),
    ];
    let (base, facilitator) = shop(&fx, tags).await?;
    let scopes = default_scopes(&fx).spend_cap("5 USDT".parse()?, per_day());
    let (scheme, ledger, session_id) = agent(&fx, scopes).await?;
    let joke = format!("{base}/joke");

    // FirstMatch (the default): the first entry this session can pay.
    let first = X402PayingClient::builder().register(scheme.clone()).build();
    let paid = first.get(&joke).await?;
    assert!(paid.is_settled(), "{:?}", paid.payment);
    assert_eq!(amount_paid(&paid), U256::from(USD));

    // MaxAmount: the first payable entry under the limit.
    let capped = X402PayingClient::builder()
        .register(scheme.clone())
        .with_selector(MaxAmount(U256::from(USD / 2)))
        .build();
    let paid = capped.get(&joke).await?;
    assert!(paid.is_settled(), "{:?}", paid.payment);
    assert_eq!(amount_paid(&paid), U256::from(USD / 4));

    // Cheapest.
    let cheapest =
        X402PayingClient::builder().register(scheme.clone()).with_selector(Cheapest).build();
    let paid = cheapest.get(&joke).await?;
    assert_eq!(amount_paid(&paid), U256::from(USD / 4));
    assert!(paid.is_settled());

    // Nothing under the limit: the selector chooses none, and the error lists what was refused.
    let too_low = X402PayingClient::builder()
        .register(scheme.clone())
        .with_selector(MaxAmount(U256::from(USD / 10)))
        .build();
    let err = too_low.get(&joke).await.unwrap_err();
    let ClientError::NotSelected { candidates, refusals } = &err else { panic!("{err:?}") };
    assert_eq!(*candidates, 2);
    let reasons: Vec<_> = refusals.iter().map(|r| (r.reason, r.budget)).collect();
    assert_eq!(reasons, [("per_payment_max_exceeded", true), ("network_mismatch", false)]);
    assert_eq!(err.reason(), "no_matching_requirement");

    assert_eq!(facilitator.calls(), (3, 3));
    assert_eq!(fx.devnet.token_balance(fx.merchant).await?, U256::from(USD + USD / 2));
    let committed = ledger
        .history(session_id)?
        .into_iter()
        .filter(|r| r.state == ReservationState::Committed)
        .count();
    assert_eq!(committed, 3);
    Ok(())
}

#[tokio::test]
async fn a_nero_style_402_is_read() -> anyhow::Result<()> {
    // base64url without padding and `"extensions": null`, which x402-reqwest alone cannot read.
    let fx = funded_fx().await?;
    let offered = serde_json::to_value(tag_for(&fx, "0.5 USDT").requirements)?;
    let mut foreign = offered;
    foreign["network"] = "eip155:1".into();
    let required = json!({
        "x402Version": 2,
        "resource": { "url": "/api/llm" },
        "accepts": [foreign],
        "extensions": null
    });
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&required)?);
    let router = Router::new().route(
        "/api/llm",
        get(move || {
            let header = header.clone();
            async move {
                let value = HeaderValue::from_str(&header).expect("ascii");
                (StatusCode::PAYMENT_REQUIRED, [("payment-required", value)]).into_response()
            }
        }),
    );
    let base = serve(router).await?;
    let (scheme, _, _) = agent(&fx, default_scopes(&fx)).await?;
    let client = X402PayingClient::builder().register(scheme).build();
    let err = client.get(format!("{base}/api/llm")).await.unwrap_err();
    // The entry was read and judged (wrong chain), rather than the 402 being unreadable.
    assert_eq!(err.reason(), "network_mismatch", "{err}");
    assert_eq!(err.refusals()[0].accepted, foreign);
    Ok(())
}
