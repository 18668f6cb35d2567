//! Malformed and hostile requests: each gets its specific reason and HTTP status, none panics,
//! and the service stays healthy.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, hex},
    rpc::types::TransactionRequest,
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolCall,
};
use serde_json::{Value, json};
use x402_aa::{
    encode_approve, encode_execute, encode_execute_batch, encode_payment_batch, x402::encode_header,
};
use x402_aa_contracts::SessionKeyAccount;
use x402_aa_facilitator::store::{Claim, SqliteStore, Store, now_ms};
use x402_aa_session::{
    SessionSignature, SessionSignatureCodec, owner::signed_revocation, session_id,
};

use crate::common::{Env, Facilitator, Payer, SessionOpts, USD, body};

/// One request and what must come back.
struct Case {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    reason: &'static str,
}

fn json_case(name: &'static str, body: &Value, status: u16, reason: &'static str) -> Case {
    Case {
        name,
        path: "/verify",
        content_type: "application/json",
        body: serde_json::to_vec(body).expect("json"),
        status,
        reason,
    }
}

fn settle_case(name: &'static str, body: &Value, reason: &'static str) -> Case {
    Case { path: "/settle", ..json_case(name, body, 200, reason) }
}

fn raw_case(name: &'static str, ct: &'static str, body: Vec<u8>, status: u16) -> Case {
    Case { name, path: "/verify", content_type: ct, body, status, reason: "invalid_envelope" }
}

/// `base` with `edit` applied.
fn with(base: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    edit(&mut v);
    v
}

fn op(v: &mut Value) -> &mut Value {
    &mut v["paymentPayload"]["payload"]["userOp"]
}

fn spec(v: &mut Value) -> &mut Value {
    &mut v["paymentPayload"]["payload"]["settlementCallSpec"]
}

/// Sets a field of both `accepted` and `paymentRequirements`.
fn both(v: &mut Value, field: &str, value: Value) {
    v["paymentPayload"]["accepted"][field] = value.clone();
    v["paymentRequirements"][field] = value;
}

fn hexs(b: &[u8]) -> Value {
    Value::String(hex::encode_prefixed(b))
}

async fn run(f: &Facilitator, cases: Vec<Case>) -> anyhow::Result<usize> {
    let mut failures = Vec::new();
    let count = cases.len();
    for case in cases {
        let (status, _, answer) = f.raw(case.path, case.content_type, case.body).await?;
        let field = if case.path == "/settle" { "errorReason" } else { "invalidReason" };
        let reason = answer.get(field).and_then(Value::as_str).unwrap_or("<none>");
        let invalid = answer
            .get(if case.path == "/settle" { "success" } else { "isValid" })
            .and_then(Value::as_bool)
            == Some(false);
        if status != case.status || reason != case.reason || !invalid {
            failures.push(format!(
                "{}: expected {} {}, got {status} {reason}: {answer}",
                case.name, case.status, case.reason
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(count)
}

#[tokio::test]
async fn malformed_and_hostile_requests_get_specific_reasons() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let f = env.start(env.config()).await?;
    let a = env.devnet.addresses;
    let accepted = env.accepted(USD);

    let owner = env.owner_payer(100 * USD).await?;
    let base_paid = owner.pay(&accepted, 1).await?;
    let base = body(&base_paid, &accepted);
    let rh = base_paid.request_hash;
    let (_, v) = f.verify(&base).await?;
    assert_eq!(v["isValid"], true, "the base payment is valid: {v}");

    let other = Address::repeat_byte(0x77);
    let mut cases = Vec::new();

    // The body itself.
    cases.push(raw_case("empty body", "application/json", Vec::new(), 400));
    cases.push(raw_case("not JSON", "application/json", b"hello".to_vec(), 400));
    let text = serde_json::to_vec(&base)?;
    cases.push(raw_case(
        "truncated JSON",
        "application/json",
        text[..text.len() / 2].to_vec(),
        400,
    ));
    cases.push(raw_case("text/plain", "text/plain", text.clone(), 415));
    cases.push(raw_case("no content type", "", text.clone(), 415));
    let pad = "a".repeat(70_000);
    cases.push(raw_case(
        "oversized body",
        "application/json",
        format!(r#"{{"x402Version":2,"pad":"{pad}"}}"#).into_bytes(),
        413,
    ));
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    cases.push(raw_case("5000-deep nesting", "application/json", deep.into_bytes(), 400));
    cases.push(Case {
        path: "/settle",
        ..raw_case("settle: not JSON", "application/json", b"{".to_vec(), 400)
    });
    // No scheme takes a body without `x402Version`: the spec's reason for that.
    cases.push(Case {
        reason: "invalid_x402_version",
        ..raw_case("JSON array", "application/json", b"[]".to_vec(), 400)
    });

    // Envelope and routing.
    cases.push(json_case(
        "x402Version 1",
        &with(&base, |v| v["x402Version"] = json!(1)),
        400,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "x402Version missing",
        &with(&base, |v| {
            v.as_object_mut().map(|o| o.remove("x402Version"));
        }),
        400,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "x402Version \"2\"",
        &with(&base, |v| v["x402Version"] = json!("2")),
        400,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "paymentPayload missing",
        &with(&base, |v| {
            v.as_object_mut().map(|o| o.remove("paymentPayload"));
        }),
        400,
        "invalid_payload",
    ));
    cases.push(json_case(
        "unknown scheme",
        &with(&base, |v| both(v, "scheme", json!("foo"))),
        400,
        "unsupported_scheme",
    ));
    cases.push(json_case(
        "exact is not enabled",
        &with(&base, |v| both(v, "scheme", json!("exact"))),
        400,
        "unsupported_scheme",
    ));
    cases.push(json_case(
        "unserved network",
        &with(&base, |v| both(v, "network", json!("eip155:1"))),
        400,
        "unsupported_scheme",
    ));
    cases.push(json_case(
        "network not CAIP-2",
        &with(&base, |v| both(v, "network", json!("banana"))),
        400,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "accepted is a string",
        &with(&base, |v| v["paymentPayload"]["accepted"] = json!("aa-native")),
        400,
        "invalid_payload",
    ));
    cases.push(json_case(
        "paymentPayload bad base64",
        &with(&base, |v| v["paymentPayload"] = json!("!!not base64!!")),
        400,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "paymentPayload base64 of non-JSON",
        &with(&base, |v| v["paymentPayload"] = json!("aGVsbG8gd29ybGQ=")),
        400,
        "invalid_envelope",
    ));

    // Routed to aa-native: the envelope and the inner payload.
    cases.push(json_case(
        "paymentRequirements missing",
        &with(&base, |v| {
            v.as_object_mut().map(|o| o.remove("paymentRequirements"));
        }),
        200,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "payload missing",
        &with(&base, |v| {
            v["paymentPayload"].as_object_mut().map(|o| o.remove("payload"));
        }),
        200,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "inner x402Version 1",
        &with(&base, |v| v["paymentPayload"]["x402Version"] = json!(1)),
        200,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "amount with 101 digits",
        &with(&base, |v| both(v, "amount", json!("1".repeat(101)))),
        200,
        "invalid_envelope",
    ));
    cases.push(json_case(
        "userOp missing",
        &with(&base, |v| {
            v["paymentPayload"]["payload"].as_object_mut().map(|o| o.remove("userOp"));
        }),
        200,
        "invalid_inner_payload",
    ));
    cases.push(json_case(
        "decimal nonce",
        &with(&base, |v| op(v)["nonce"] = json!("7")),
        200,
        "invalid_inner_payload",
    ));
    cases.push(json_case(
        "numeric gas",
        &with(&base, |v| op(v)["callGasLimit"] = json!(100000)),
        200,
        "invalid_inner_payload",
    ));
    cases.push(json_case(
        "short sender",
        &with(&base, |v| op(v)["sender"] = json!("0x1234")),
        200,
        "invalid_inner_payload",
    ));
    cases.push(json_case(
        "v0.7 field",
        &with(&base, |v| op(v)["factory"] = json!("0x")),
        200,
        "invalid_inner_payload",
    ));
    cases.push(json_case(
        "odd hex callData",
        &with(&base, |v| op(v)["callData"] = json!("0xabc")),
        200,
        "invalid_inner_payload",
    ));
    cases.push(json_case(
        "spec amount 1e6",
        &with(&base, |v| spec(v)["amount"] = json!("1e6")),
        200,
        "invalid_inner_payload",
    ));
    cases.push(json_case(
        "zero requestHash",
        &with(&base, |v| spec(v)["requestHash"] = json!(B256::ZERO)),
        200,
        "invalid_inner_payload",
    ));

    // callData.
    let settle = x402_aa::SettleCall {
        merchant: env.merchant,
        token: a.token,
        amount: U256::from(USD),
        request_hash: rh,
    };
    cases.push(json_case(
        "callData garbage",
        &with(&base, |v| op(v)["callData"] = json!("0x1234")),
        200,
        "calldata_decode_failed",
    ));
    cases.push(json_case(
        "callData empty",
        &with(&base, |v| op(v)["callData"] = json!("0x")),
        200,
        "calldata_decode_failed",
    ));
    let transfer = hexs(
        &x402_aa_contracts::TestStablecoin::transferCall { to: other, value: U256::from(1) }
            .abi_encode(),
    );
    let extra_call = encode_execute_batch(
        vec![a.token, a.settlement, a.token],
        vec![
            encode_approve(a.settlement, U256::from(USD)),
            settle.abi_encode(),
            transfer.as_str().unwrap_or_default().parse::<Bytes>()?,
        ],
    );
    cases.push(json_case(
        "callData with an extra call",
        &with(&base, |v| op(v)["callData"] = hexs(&extra_call)),
        200,
        "calldata_decode_failed",
    ));
    let twice = encode_execute_batch(
        vec![a.token, a.settlement, a.settlement],
        vec![
            encode_approve(a.settlement, U256::from(USD)),
            settle.abi_encode(),
            settle.abi_encode(),
        ],
    );
    cases.push(json_case(
        "callData settles twice",
        &with(&base, |v| op(v)["callData"] = hexs(&twice)),
        200,
        "calldata_decode_failed",
    ));
    let with_value = encode_execute(a.settlement, U256::from(1), settle.abi_encode());
    cases.push(json_case(
        "execute forwards value",
        &with(&base, |v| op(v)["callData"] = hexs(&with_value)),
        200,
        "calldata_decode_failed",
    ));
    let drain = encode_execute(
        a.token,
        U256::ZERO,
        transfer.as_str().unwrap_or_default().parse::<Bytes>()?,
    );
    cases.push(json_case(
        "callData is a token transfer",
        &with(&base, |v| op(v)["callData"] = hexs(&drain)),
        200,
        "calldata_decode_failed",
    ));

    // The spec against callData, and against the requirements.
    cases.push(json_case(
        "spec merchant differs",
        &with(&base, |v| spec(v)["merchant"] = json!(other)),
        200,
        "spec_mismatch",
    ));
    cases.push(json_case(
        "spec requestHash differs",
        &with(&base, |v| spec(v)["requestHash"] = json!(B256::repeat_byte(5))),
        200,
        "spec_mismatch",
    ));
    cases.push(json_case(
        "spec amount differs",
        &with(&base, |v| spec(v)["amount"] = json!("999")),
        200,
        "spec_mismatch",
    ));
    cases.push(json_case(
        "accepted amount differs",
        &with(&base, |v| v["paymentPayload"]["accepted"]["amount"] = json!("2000000")),
        200,
        "amount_mismatch",
    ));
    cases.push(json_case(
        "accepted payTo differs",
        &with(&base, |v| v["paymentPayload"]["accepted"]["payTo"] = json!(other)),
        200,
        "payTo_mismatch",
    ));
    cases.push(json_case(
        "accepted asset differs",
        &with(&base, |v| v["paymentPayload"]["accepted"]["asset"] = json!(other)),
        200,
        "asset_mismatch",
    ));
    cases.push(json_case(
        "wrong chain id in requirements",
        &with(&base, |v| v["paymentRequirements"]["network"] = json!("eip155:1")),
        200,
        "network_mismatch",
    ));
    cases.push(json_case(
        "maxTimeoutSeconds differs",
        &with(&base, |v| v["paymentPayload"]["accepted"]["maxTimeoutSeconds"] = json!(5)),
        200,
        "requirements_mismatch",
    ));
    cases.push(json_case(
        "requirements are for exact",
        &with(&base, |v| v["paymentRequirements"]["scheme"] = json!("exact")),
        200,
        "requirements_mismatch",
    ));
    cases.push(json_case(
        "requirements amount not a number",
        &with(&base, |v| v["paymentRequirements"]["amount"] = json!("abc")),
        200,
        "invalid_payment_requirements",
    ));
    cases.push(json_case(
        "requirements ask 2 USD, op pays 1",
        &with(&base, |v| both(v, "amount", json!("2000000"))),
        200,
        "amount_mismatch",
    ));
    cases.push(json_case(
        "requirements pay someone else",
        &with(&base, |v| both(v, "payTo", json!(other))),
        200,
        "payTo_mismatch",
    ));
    cases.push(json_case(
        "requirements name another settlement contract",
        &with(&base, |v| {
            v["paymentPayload"]["accepted"]["extra"]["settlementContract"] = json!(other);
            v["paymentRequirements"]["extra"]["settlementContract"] = json!(other);
        }),
        200,
        "requirements_mismatch",
    ));
    cases.push(json_case(
        "requirements name another EntryPoint",
        &with(&base, |v| {
            v["paymentPayload"]["accepted"]["extra"]["entryPoint"] = json!(other);
            v["paymentRequirements"]["extra"]["entryPoint"] = json!(other);
        }),
        200,
        "requirements_mismatch",
    ));
    let elsewhere = encode_payment_batch(a.token, other, env.merchant, U256::from(USD), rh);
    cases.push(json_case(
        "settles through a contract this facilitator does not serve",
        &with(&base, |v| {
            both(v, "extra", json!({}));
            op(v)["callData"] = hexs(&elsewhere);
        }),
        200,
        "requirements_mismatch",
    ));
    let other_token = encode_payment_batch(other, a.settlement, env.merchant, U256::from(USD), rh);
    cases.push(json_case(
        "token not accepted here",
        &with(&base, |v| {
            both(v, "asset", json!(other));
            op(v)["callData"] = hexs(&other_token);
            spec(v)["token"] = json!(other);
        }),
        200,
        "invalid_payment_requirements",
    ));

    // Signatures and funds (simulated against the EntryPoint).
    let stranger = PrivateKeySigner::random();
    let forged = stranger.sign_message_sync(base_paid.user_op_hash.as_slice())?;
    cases.push(json_case(
        "signed by a stranger",
        &with(&base, |v| op(v)["signature"] = hexs(&forged.as_bytes())),
        200,
        "invalid_signature",
    ));
    cases.push(settle_case(
        "settle: signed by a stranger",
        &with(&base, |v| op(v)["signature"] = hexs(&forged.as_bytes())),
        "invalid_signature",
    ));
    cases.push(settle_case(
        "settle: spec mismatch",
        &with(&base, |v| spec(v)["merchant"] = json!(other)),
        "spec_mismatch",
    ));
    let broke = env.broke_owner_payer().await?;
    let broke_body = body(&broke.pay(&accepted, 2).await?, &accepted);
    cases.push(json_case("payer holds no tokens", &broke_body, 200, "insufficient_funds"));

    // Session keys.
    let session = env.session_payer(SessionOpts { cap: "1 USDT", ..Default::default() }).await?;
    let first = session.pay(&accepted, 10).await?;
    let first_body = body(&first, &accepted);
    let session_sig = |edit: &dyn Fn(&mut SessionSignature)| {
        let sig: Bytes = first.payload.payload.user_op.signature.clone();
        let (mode, mut decoded) = SessionSignature::decode(&sig).expect("session signature");
        edit(&mut decoded);
        hexs(&decoded.encode(mode).expect("encodes"))
    };
    let tampered = session_sig(&|s| {
        let mut b = s.session_signature.to_vec();
        b[10] ^= 1;
        s.session_signature = b.into();
    });
    cases.push(json_case(
        "session signature tampered",
        &with(&first_body, |v| op(v)["signature"] = tampered.clone()),
        200,
        "invalid_session_signature",
    ));
    let bad_grant = session_sig(&|s| s.owner_signature = forged.as_bytes().to_vec().into());
    cases.push(json_case(
        "grant not signed by the owner",
        &with(&first_body, |v| op(v)["signature"] = bad_grant.clone()),
        200,
        "invalid_session_grant",
    ));
    let mut bad_mode = first.payload.payload.user_op.signature.to_vec();
    bad_mode[0] = 9;
    cases.push(json_case(
        "unknown session mode",
        &with(&first_body, |v| op(v)["signature"] = hexs(&bad_mode)),
        200,
        "invalid_session_signature",
    ));
    // The session file lists `other` beside the grant's allowlist, so the SDK signs a payment
    // to it that the account must refuse.
    let liar = env
        .session_payer(SessionOpts { file_extra_merchants: vec![other], ..Default::default() })
        .await?;
    let elsewhere_merchant = liar.pay(&env.accepted_for(other, USD), 11).await?;
    cases.push(json_case(
        "merchant not on the allowlist",
        &body(&elsewhere_merchant, &env.accepted_for(other, USD)),
        200,
        "merchant_not_allowed",
    ));

    let counterfactual =
        env.session_payer(SessionOpts { deployed: false, ..Default::default() }).await?;
    let cf = counterfactual.pay(&accepted, 20).await?;
    let cf_body = body(&cf, &accepted);
    let init_code = cf.payload.payload.user_op.init_code.to_vec();
    let mut wrong_factory = init_code.clone();
    wrong_factory[..20].copy_from_slice(a.simple_account_factory.as_slice());
    cases.push(json_case(
        "initCode from another factory",
        &with(&cf_body, |v| op(v)["initCode"] = hexs(&wrong_factory)),
        200,
        "invalid_inner_payload",
    ));
    let mut wrong_owner = init_code.clone();
    wrong_owner[24 + 12..24 + 32].copy_from_slice(other.as_slice());
    cases.push(json_case(
        "initCode deploys someone else's account",
        &with(&cf_body, |v| op(v)["initCode"] = hexs(&wrong_owner)),
        200,
        "invalid_inner_payload",
    ));
    let (_, v) = f.verify(&cf_body).await?;
    assert_eq!(v["isValid"], true, "the counterfactual session payment itself is valid: {v}");

    let count = run(&f, cases).await?;

    // A base64 paymentPayload (the PAYMENT-SIGNATURE header value) is read like the object.
    let b64 = with(&broke_body, |v| {
        v["paymentPayload"] = json!(encode_header(&v["paymentPayload"]).expect("encodes"));
    });
    let (status, v) = f.verify(&b64).await?;
    assert_eq!((status, v["invalidReason"].as_str()), (200, Some("insufficient_funds")), "{v}");

    // Stateful: replay, spend cap, in flight, revocation, expiry.
    let (_, s) = f.settle(&first_body).await?;
    assert_eq!(s["success"], true, "{s}");
    // The SDK refuses to sign past the cap; a hostile agent's own code does not.
    let second = session.pay_unchecked(&accepted, 12).await?;
    let (_, s) = f.settle(&base).await?;
    assert_eq!(s["success"], true, "{s}");
    let busy = owner.pay(&accepted, 3).await?;
    SqliteStore::open(env.registry_path())?
        .claim(&Claim {
            chain_id: env.devnet.chain_id(),
            request_hash: busy.request_hash,
            user_op_hash: busy.user_op_hash,
            payer: owner.sender(),
            from_block: 0,
            owner: "another-instance".into(),
            now_ms: now_ms(),
        })
        .await?;
    let mut later = vec![
        json_case("replayed requestHash", &base, 200, "replay"),
        json_case("over the daily cap", &body(&second, &accepted), 200, "spend_cap_exceeded"),
        json_case("in flight elsewhere", &body(&busy, &accepted), 200, "in_flight"),
        settle_case("settle: in flight elsewhere", &body(&busy, &accepted), "in_flight"),
    ];

    let revoked = env.session_payer(SessionOpts::default()).await?;
    let revoked_paid = revoked.pay(&accepted, 30).await?;
    revoke(&env, &revoked).await?;
    later.push(json_case(
        "revoked session",
        &body(&revoked_paid, &accepted),
        200,
        "session_revoked",
    ));
    let count = count + run(&f, later).await?;

    let expiring = env.session_payer(SessionOpts::default()).await?;
    let expiring_paid = expiring.pay(&accepted, 40).await?;
    env.devnet.increase_time(3_700).await?;
    let count = count
        + run(
            &f,
            vec![json_case(
                "expired session",
                &body(&expiring_paid, &accepted),
                200,
                "session_expired",
            )],
        )
        .await?;

    assert!(count >= 40, "{count} cases");
    eprintln!("{count} malformed or hostile requests answered as expected");
    // Nothing above took the service down.
    let (status, _) = f.get("/health").await?;
    assert_eq!(status, 200);
    f.stop().await
}

/// The owner revokes the session with a relayable signature (the owner holds no ETH).
async fn revoke(env: &Env, payer: &Payer) -> anyhow::Result<()> {
    let Payer::Session(signer, owner, _) = payer else { anyhow::bail!("not a session payer") };
    let account = signer.account().file.account;
    let grant = signer.account().grant();
    let id = session_id(grant, env.devnet.chain_id(), account);
    let sig = signed_revocation(owner, id, env.devnet.chain_id(), account)?;
    let call = SessionKeyAccount::revokeWithSignatureCall { id, ownerSignature: sig };
    let tx = TransactionRequest::default()
        .with_from(env.devnet.keys.deployer.address())
        .with_to(account)
        .with_input(call.abi_encode());
    env.devnet.send("revokeWithSignature", tx).await?;
    Ok(())
}
