//! The paywall in front of axum routes, against a stub facilitator: what x402-axum does, and what
//! the wrapper adds (base64url, `extensions: null`, address case, failed-settlement receipts).

use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, B256, U256, address};
use axum::{
    Router,
    body::Body,
    http::{HeaderValue, Request, StatusCode},
    response::Response,
    routing::get,
};
use base64::Engine as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use x402_aa::{
    UserOperation,
    x402::{
        self, AaNativePayload, AaNativeRequirements, PAYMENT_REQUIRED_HEADER,
        PAYMENT_RESPONSE_HEADER, PAYMENT_SIGNATURE_HEADER, SettlementCallSpec,
    },
};
use x402_aa_paywall::{Facilitator, Paywall, PriceTag, Token, demo, price_tag, proto};

const TOKEN: Address = address!("0x1111111111111111111111111111111111111111");
const MERCHANT: Address = address!("0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa");
const SETTLEMENT: Address = address!("0x3333333333333333333333333333333333333333");
const PAYER: Address = address!("0x4444444444444444444444444444444444444444");
const TX: &str = "0x5555555555555555555555555555555555555555555555555555555555555555";

/// Records every call; answers `/verify` valid and `/settle` with `settle`.
#[derive(Clone)]
struct Stub {
    calls: Arc<Mutex<Vec<(&'static str, Value)>>>,
    settle: Value,
}

impl Stub {
    fn new() -> Self {
        Self::settling(json!({
            "success": true, "payer": PAYER.to_string(), "transaction": TX, "network": "eip155:689"
        }))
    }

    fn settling(settle: Value) -> Self {
        Self { calls: Arc::default(), settle }
    }

    fn calls(&self) -> Vec<(&'static str, Value)> {
        self.calls.lock().expect("calls").clone()
    }

    fn names(&self) -> Vec<&'static str> {
        self.calls().into_iter().map(|(name, _)| name).collect()
    }

    fn record(&self, name: &'static str, request: &proto::VerifyRequest) {
        let body = serde_json::from_str(request.as_str()).expect("request JSON");
        self.calls.lock().expect("calls").push((name, body));
    }
}

impl Facilitator for Stub {
    type Error = String;

    async fn verify(
        &self,
        request: &proto::VerifyRequest,
    ) -> Result<proto::VerifyResponse, String> {
        self.record("verify", request);
        Ok(proto::VerifyResponse(json!({ "isValid": true, "payer": PAYER.to_string() })))
    }

    async fn settle(
        &self,
        request: &proto::SettleRequest,
    ) -> Result<proto::SettleResponse, String> {
        self.record("settle", request);
        Ok(proto::SettleResponse(self.settle.clone()))
    }

    async fn supported(&self) -> Result<proto::SupportedResponse, String> {
        Ok(proto::SupportedResponse::default())
    }
}

fn tag() -> PriceTag {
    let usdt = Token::known(TOKEN, "USDT").expect("USDT");
    price_tag(689, MERCHANT, "0.01 USDT", &usdt, SETTLEMENT).expect("price tag")
}

fn app(paywall: Paywall<Stub>) -> Router {
    let layer = paywall.layer([tag()]).expect("layer");
    demo::router(layer.clone())
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }).layer(layer))
}

async fn get_with(app: &Router, path: &str, signature: Option<HeaderValue>) -> Response {
    let mut request = Request::get(path).header("host", "shop.example");
    if let Some(signature) = signature {
        request = request.header(PAYMENT_SIGNATURE_HEADER, signature);
    }
    let request = request.body(Body::empty()).expect("request");
    app.clone().oneshot(request).await.expect("infallible")
}

async fn body_json(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    serde_json::from_slice(&bytes).expect("JSON body")
}

/// A well-formed aa-native payload for `accepted` (the stub does not check the op).
fn payload(accepted: Value) -> Value {
    let spec = SettlementCallSpec {
        merchant: MERCHANT,
        token: TOKEN,
        amount: U256::from(10_000u64),
        request_hash: B256::repeat_byte(1),
    };
    let op = UserOperation { sender: PAYER, ..Default::default() };
    let payload = x402::payment_payload(
        accepted,
        AaNativePayload { user_op: op, settlement_call_spec: spec, request: None },
        None,
    );
    serde_json::to_value(payload).expect("payload")
}

fn standard(value: &Value) -> HeaderValue {
    HeaderValue::from_str(&x402::encode_header(value).expect("encode")).expect("ascii")
}

fn accepted() -> Value {
    serde_json::to_value(tag().requirements).expect("requirements")
}

#[tokio::test]
async fn unpaid_request_gets_402_with_our_requirements() {
    let stub = Stub::new();
    let app = app(Paywall::from_facilitator(stub.clone()));

    let response = get_with(&app, "/joke", None).await;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    let header = response.headers().get(PAYMENT_REQUIRED_HEADER).expect("PAYMENT-REQUIRED").clone();
    let required = x402::decode_payment_required(header.as_bytes()).unwrap();
    assert_eq!(required.accepts, vec![accepted()]);
    let offered = AaNativeRequirements::select(&required);
    let want = AaNativeRequirements::parse(&tag().requirements).unwrap();
    assert_eq!(offered.into_iter().map(|(_, typed)| typed).collect::<Vec<_>>(), vec![want]);
    assert_eq!(required.resource.unwrap().url, "http://shop.example/joke");
    // The same PaymentRequired is in the body, for clients that read it there.
    assert_eq!(
        body_json(response).await,
        serde_json::from_slice::<Value>(&x402::decode_header_bytes(header.as_bytes()).unwrap())
            .unwrap()
    );

    let health = get_with(&app, "/health", None).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(stub.calls().is_empty(), "nothing reaches the facilitator without a payment");
}

#[tokio::test]
async fn malformed_payment_signatures_get_402_without_reaching_the_facilitator() {
    let stub = Stub::new();
    let app = app(Paywall::from_facilitator(stub.clone()));
    let mut wrong_amount = accepted();
    wrong_amount["amount"] = "1".into();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let cases: Vec<(&str, HeaderValue)> = vec![
        ("not base64", HeaderValue::from_static("not base64!!")),
        ("empty", HeaderValue::from_static("")),
        ("base64 of text", HeaderValue::from_str(&b64(b"hello")).unwrap()),
        ("json, not a payload", standard(&json!({ "x402Version": 2 }))),
        ("json array", standard(&json!([1, 2, 3]))),
        ("x402 v1", standard(&json!({ "x402Version": 1, "scheme": "exact" }))),
        ("unoffered amount", standard(&payload(wrong_amount))),
        ("opaque bytes", HeaderValue::from_bytes(&[0xff, 0xfe, 0x80]).unwrap()),
        ("huge", HeaderValue::from_str(&"A".repeat(200_000)).unwrap()),
    ];
    for (name, value) in cases {
        let response = get_with(&app, "/joke", Some(value)).await;
        assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED, "{name}");
        let header = response.headers().get(PAYMENT_REQUIRED_HEADER).expect(name);
        let required = x402::decode_payment_required(header.as_bytes()).unwrap();
        assert!(required.error.is_some(), "{name}: the 402 says what was wrong");
    }
    assert!(stub.calls().is_empty(), "{:?}", stub.names());
}

#[tokio::test]
async fn paid_request_is_verified_run_then_settled() {
    let stub = Stub::new();
    let app = app(Paywall::from_facilitator(stub.clone()));
    let response = get_with(&app, "/joke", Some(standard(&payload(accepted())))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let receipt = response.headers().get(PAYMENT_RESPONSE_HEADER).expect("PAYMENT-RESPONSE");
    let receipt = x402::decode_payment_response(receipt.as_bytes()).unwrap();
    assert!(receipt.success);
    assert_eq!(receipt.transaction, TX);
    assert!(body_json(response).await["joke"].is_string());

    assert_eq!(stub.names(), ["verify", "settle"]);
    let (_, verify) = &stub.calls()[0];
    assert_eq!(verify["paymentRequirements"], accepted());
    assert_eq!(verify["paymentPayload"], payload(accepted()));
}

#[tokio::test]
async fn base64url_null_extensions_and_address_case_are_tolerated() {
    let stub = Stub::new();
    let app = app(Paywall::from_facilitator(stub.clone()));
    let mut lower = accepted();
    lower["payTo"] = MERCHANT.to_string().to_lowercase().into();
    lower["asset"] = TOKEN.to_string().to_lowercase().into();
    assert_ne!(lower, accepted(), "the test must exercise a different spelling");
    let mut nero = payload(lower);
    nero["extensions"] = Value::Null;
    let json = serde_json::to_vec(&nero).unwrap();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&json);
    assert!(base64::engine::general_purpose::STANDARD.decode(&url).is_err());

    let response = get_with(&app, "/joke", Some(HeaderValue::from_str(&url).unwrap())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(stub.names(), ["verify", "settle"]);
    let (_, verify) = &stub.calls()[0];
    assert_eq!(verify["paymentPayload"]["accepted"], accepted(), "echo mapped to our own tag");
    assert!(verify["paymentPayload"].get("extensions").is_none());
}

#[tokio::test]
async fn failed_settlement_is_relayed_in_payment_response() {
    let stub = Stub::settling(json!({
        "success": false, "errorReason": "bundler_error", "transaction": "",
        "network": "eip155:689", "payer": PAYER.to_string()
    }));
    let app = app(Paywall::from_facilitator(stub.clone()));
    let response = get_with(&app, "/joke", Some(standard(&payload(accepted())))).await;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    let receipt = response.headers().get(PAYMENT_RESPONSE_HEADER).expect("PAYMENT-RESPONSE");
    let receipt = x402::decode_payment_response(receipt.as_bytes()).unwrap();
    assert!(!receipt.success);
    assert_eq!(receipt.error_reason.as_deref(), Some("bundler_error"));
    assert_eq!(stub.names(), ["verify", "settle"]);
}

#[tokio::test]
async fn failing_handler_is_not_charged() {
    let stub = Stub::new();
    let app = app(Paywall::from_facilitator(stub.clone()));
    let response = get_with(&app, "/fail", Some(standard(&payload(accepted())))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get(PAYMENT_RESPONSE_HEADER).is_none());
    assert_eq!(stub.names(), ["verify"], "settled only after a 2xx answer");
}

#[tokio::test]
async fn settle_before_execution_settles_then_runs_the_handler() {
    let stub = Stub::new();
    let app = app(Paywall::from_facilitator(stub.clone()).settle_before_execution());
    let response = get_with(&app, "/joke", Some(standard(&payload(accepted())))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(PAYMENT_RESPONSE_HEADER).is_some());
    // x402-axum's settle-first path goes straight to /settle; the facilitator re-verifies there.
    assert_eq!(stub.names(), ["settle"]);

    // Settled first, so a failing handler has already been paid for: the receipt says so.
    let response = get_with(&app, "/fail", Some(standard(&payload(accepted())))).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get(PAYMENT_RESPONSE_HEADER).is_some());
}

#[test]
fn a_paywall_needs_a_price_and_a_valid_facilitator_url() {
    let paywall = Paywall::from_facilitator(Stub::new());
    assert!(paywall.layer([]).is_err());
    assert!(Paywall::new("not a url").is_err());
    assert!(Paywall::new("http://127.0.0.1:8403").is_ok());
}

/// A payload whose request binding says it was made for `method path` at `shop.example`.
fn bound_payload(method: &str, path: &str) -> Value {
    let input = x402_aa::RequestHashInput::new(
        MERCHANT,
        689,
        method,
        format!("http://shop.example{path}"),
        1_800_000_000,
        B256::repeat_byte(9),
    );
    let mut value = payload(accepted());
    value["payload"]["settlementCallSpec"]["requestHash"] =
        json!(input.hash().expect("hash").to_string());
    value["payload"]["request"] =
        serde_json::to_value(x402::RequestBinding::from_input(&input)).expect("binding");
    value
}

/// Cross-resource substitution: a payment made for one resource of the merchant, at the same
/// price, is refused at another (or with another method, or with a binding that does not hash to
/// its requestHash) with `request_mismatch`, before the facilitator is asked; at its own resource
/// it pays.
#[tokio::test]
async fn a_payment_pays_only_for_the_request_it_was_made_for() {
    let stub = Stub::new();
    let app = app(Paywall::from_facilitator(stub.clone()));
    let for_joke = bound_payload("GET", "/joke");

    let mut refusals = vec![
        ("another resource", get_with(&app, "/fail", Some(standard(&for_joke))).await),
        (
            "another method",
            get_with(&app, "/joke", Some(standard(&bound_payload("POST", "/joke")))).await,
        ),
        ("another query", get_with(&app, "/joke?size=large", Some(standard(&for_joke))).await),
    ];
    let mut forged = for_joke.clone();
    forged["payload"]["request"]["endpoint"] = json!("http://shop.example/fail");
    refusals.push((
        "a binding that is not the hash's",
        get_with(&app, "/fail", Some(standard(&forged))).await,
    ));
    for (what, response) in refusals {
        assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED, "{what}");
        let body = body_json(response).await;
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("request_mismatch: "), "{what}: {body}");
        assert!(
            !body["accepts"].as_array().is_none_or(Vec::is_empty),
            "{what}: offers a way to pay"
        );
    }
    assert!(stub.names().is_empty(), "the facilitator was never asked");

    // At its own resource it pays.
    let paid = get_with(&app, "/joke", Some(standard(&for_joke))).await;
    assert_eq!(paid.status(), StatusCode::OK);
    assert_eq!(stub.names(), ["verify", "settle"]);
}

/// Payers that do not disclose a binding (NERO's payload has none) pass by default and are refused
/// where the layer requires it.
#[tokio::test]
async fn an_undisclosed_binding_is_refused_only_where_required() {
    let stub = Stub::new();
    let open = app(Paywall::from_facilitator(stub.clone()));
    let unbound = payload(accepted());
    assert_eq!(get_with(&open, "/joke", Some(standard(&unbound))).await.status(), StatusCode::OK);

    let strict_stub = Stub::new();
    let layer = Paywall::from_facilitator(strict_stub.clone())
        .layer([tag()])
        .expect("layer")
        .require_request_binding();
    let strict = demo::router(layer);
    let response = get_with(&strict, "/joke", Some(standard(&unbound))).await;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    let body = body_json(response).await;
    assert!(body["error"].as_str().unwrap_or_default().starts_with("request_mismatch: "), "{body}");
    assert!(strict_stub.names().is_empty());
    let bound = bound_payload("GET", "/joke");
    assert_eq!(get_with(&strict, "/joke", Some(standard(&bound))).await.status(), StatusCode::OK);
}
