//! Wire-shape, codec and verification tests for the aa-native scheme.

use alloy::primitives::{Address, B256, U256, address, b256, hex};
use base64::Engine;
use serde_json::{Value, json};

use super::*;
use crate::{CallDataError, UserOperation, encode_payment_batch, encode_payment_execute};

const TOKEN: Address = address!("0x1111111111111111111111111111111111111111");
const MERCHANT: Address = address!("0x2222222222222222222222222222222222222222");
const SETTLEMENT: Address = address!("0x5eCfc64f2339992668f555918674B604F97B412D");
const SENDER: Address = address!("0x3333333333333333333333333333333333333333");
const REQUEST_HASH: B256 =
    b256!("0x4444444444444444444444444444444444444444444444444444444444444444");

fn user_op(call_data: alloy::primitives::Bytes) -> UserOperation {
    UserOperation {
        sender: SENDER,
        nonce: U256::from(1),
        call_data,
        call_gas_limit: U256::from(100_000),
        verification_gas_limit: U256::from(200_000),
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: U256::from(1_000_000_000u64),
        max_priority_fee_per_gas: U256::from(1_000_000_000u64),
        paymaster_and_data: hex!("aabbcc").into(),
        signature: hex!("0102").into(),
        ..Default::default()
    }
}

fn good_op() -> UserOperation {
    user_op(encode_payment_batch(TOKEN, SETTLEMENT, MERCHANT, U256::from(1000), REQUEST_HASH))
}

fn required() -> AaNativeRequirements {
    AaNativeRequirements {
        chain_id: NERO_MAINNET_CHAIN_ID,
        amount: U256::from(1000),
        pay_to: MERCHANT,
        asset: TOKEN,
        max_timeout_seconds: 60,
        extra: None,
    }
}

/// nero402-spec §4.3, with concrete values in the elided places.
fn nero_payload_json() -> Value {
    json!({
        "x402Version": 2,
        "accepted": {
            "scheme": "aa-native",
            "network": "eip155:1689",
            "amount": "1000",
            "asset": "0x1111111111111111111111111111111111111111",
            "payTo": "0x2222222222222222222222222222222222222222",
            "maxTimeoutSeconds": 60
        },
        "payload": {
            "userOp": serde_json::to_value(good_op()).unwrap(),
            "settlementCallSpec": {
                "merchant": "0x2222222222222222222222222222222222222222",
                "token": "0x1111111111111111111111111111111111111111",
                "amount": "1000",
                "requestHash": REQUEST_HASH.to_string()
            }
        },
        "extensions": null
    })
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(value).unwrap())
}

#[test]
fn nero_payment_required_example_parses() {
    // nero402-spec §4.2: relative resource URL, no `extra`.
    let body = json!({
        "x402Version": 2,
        "resource": { "url": "/api/llm", "description": "demo paid endpoint" },
        "accepts": [{
            "scheme": "aa-native", "network": "eip155:1689", "amount": "1000",
            "asset": "0x1111111111111111111111111111111111111111",
            "payTo": "0x2222222222222222222222222222222222222222", "maxTimeoutSeconds": 60
        }]
    });
    let required_msg = decode_payment_required(b64(&body)).unwrap();
    assert_eq!(required_msg.resource.as_ref().unwrap().url, "/api/llm");
    let selected = AaNativeRequirements::select(&required_msg);
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].1, required());
    assert_eq!(parse_payment_required(body.clone()).unwrap().accepts, required_msg.accepts);

    // Entries stay raw JSON, so re-encoding gives back exactly what the merchant sent.
    assert_eq!(serde_json::to_value(&required_msg).unwrap(), body);
    assert_eq!(
        decode_payment_required(encode_payment_required(&required_msg).unwrap()).unwrap().accepts,
        required_msg.accepts
    );
}

#[test]
fn select_keeps_only_aa_native_entries() {
    let body = json!({
        "x402Version": 2,
        "resource": null,
        "accepts": [
            { "scheme": "exact", "network": "eip155:1689", "amount": "1000",
              "asset": "0x1111111111111111111111111111111111111111",
              "payTo": "0x2222222222222222222222222222222222222222", "maxTimeoutSeconds": 60,
              "extra": { "name": "USDT", "version": "1" } },
            required().to_wire(),
            { "scheme": "aa-native", "network": "solana:mainnet", "amount": "1", "asset": "x",
              "payTo": "y", "maxTimeoutSeconds": 60 }
        ],
        "extensions": null
    });
    let msg = parse_payment_required(body).unwrap();
    let selected = AaNativeRequirements::select(&msg);
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].0, serde_json::to_value(required().to_wire()).unwrap());
}

#[test]
fn requirements_wire_round_trip() {
    let mut req = required();
    let wire = serde_json::to_value(req.to_wire()).unwrap();
    assert_eq!(
        wire,
        json!({
            "scheme": "aa-native",
            "network": "eip155:1689",
            "amount": "1000",
            "payTo": "0x2222222222222222222222222222222222222222",
            "maxTimeoutSeconds": 60,
            "asset": "0x1111111111111111111111111111111111111111",
            "extra": {}
        })
    );
    assert_eq!(AaNativeRequirements::parse(&req.to_wire()).unwrap(), req);

    req.extra = Some(AaNativeExtra {
        settlement_contract: SETTLEMENT,
        entry_point: crate::ENTRY_POINT_V06,
    });
    let wire = serde_json::to_value(req.to_wire()).unwrap();
    assert_eq!(
        wire["extra"],
        json!({
            "settlementContract": "0x5eCfc64f2339992668f555918674B604F97B412D",
            "entryPoint": "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"
        })
    );
    assert_eq!(AaNativeRequirements::parse(&req.to_wire()).unwrap(), req);

    // entryPoint defaults to v0.6 when a merchant names only the settlement contract.
    let mut wire = req.to_wire();
    wire.extra = Some(json!({ "settlementContract": SETTLEMENT }));
    assert_eq!(AaNativeRequirements::parse(&wire).unwrap(), req);
}

#[test]
fn nero_payment_payload_example_round_trips() {
    let original = nero_payload_json();
    let env = decode_payment_signature(b64(&original)).unwrap();
    assert_eq!(env.accepted, required());
    assert_eq!(env.chain_id(), 1689);
    assert_eq!(env.payer(), SENDER);
    assert_eq!(env.payload.payload.user_op, good_op());
    assert_eq!(
        env.payload.payload.settlement_call_spec,
        SettlementCallSpec {
            merchant: MERCHANT,
            token: TOKEN,
            amount: U256::from(1000),
            request_hash: REQUEST_HASH
        }
    );

    // Our encoder writes the same object, minus the null `extensions` (absent is equivalent).
    let header = encode_payment_signature(&env.payload).unwrap();
    let mut expected = original;
    expected.as_object_mut().unwrap().remove("extensions");
    assert_eq!(
        serde_json::from_slice::<Value>(&decode_header_bytes(&header).unwrap()).unwrap(),
        expected
    );
    let again = decode_payment_signature(&header).unwrap();
    assert_eq!(again.payload.payload, env.payload.payload);
    assert_eq!(again.payload.accepted, env.payload.accepted);
}

#[test]
fn accepted_is_echoed_verbatim() {
    // Checksummed on one side, lower case on the other: the echo must not rewrite it.
    let mut json = nero_payload_json();
    json["accepted"]["payTo"] = json!("0x5eCfc64f2339992668f555918674B604F97B412D");
    let env = decode_payment_payload(json.clone()).unwrap();
    let out = serde_json::to_value(&env.payload).unwrap();
    assert_eq!(out["accepted"], json["accepted"]);
}

#[test]
fn client_builds_payload_from_402() {
    let wire = serde_json::to_value(required().to_wire()).unwrap();
    let spec = SettlementCallSpec::from_settle(&required().settle_call(REQUEST_HASH));
    let payload = payment_payload(
        wire.clone(),
        AaNativePayload { user_op: good_op(), settlement_call_spec: spec, request: None },
        Some(ResourceInfo { url: "/api/llm".into(), description: None, mime_type: None }),
    );
    let env = decode_payment_signature(encode_payment_signature(&payload).unwrap()).unwrap();
    assert_eq!(env.payload.accepted, wire);
    assert_eq!(env.payload.resource.as_ref().unwrap().url, "/api/llm");
    assert_eq!(
        env.verify_against(&required(), &crate::accounts::SimpleAccountAbi).unwrap().settle,
        spec.to_settle()
    );
}

#[test]
fn headers_accept_both_alphabets_with_or_without_padding() {
    let mut json = nero_payload_json();
    // Bytes chosen so the standard encoding contains both '+' and '/'.
    json["resource"] = json!({ "url": "/api/llm", "description": "~~~???>>>" });
    let standard = b64(&json);
    assert!(standard.contains('+') && standard.contains('/'), "{standard}");
    let unpadded = standard.trim_end_matches('=').to_owned();
    let url_safe = standard.replace('+', "-").replace('/', "_");
    let url_safe_unpadded = url_safe.trim_end_matches('=').to_owned();
    let with_ows = format!("  {standard}\t");
    let reference = decode_payment_signature(&standard).unwrap();
    for variant in [&unpadded, &url_safe, &url_safe_unpadded, &with_ows] {
        let env = decode_payment_signature(variant).unwrap();
        assert_eq!(env.payload.payload, reference.payload.payload, "{variant}");
    }

    // Encoding is standard alphabet, padded: strictly decodable by upstream readers.
    let ours = encode_payment_signature(&reference.payload).unwrap();
    assert_eq!(ours.len() % 4, 0);
    assert!(base64::engine::general_purpose::STANDARD.decode(&ours).is_ok());
    assert!(!ours.contains('-') && !ours.contains('_'));
}

#[test]
fn settlement_response_shapes() {
    let tx = b256!("0x5555555555555555555555555555555555555555555555555555555555555555");
    let ok = SettlementResponse::success(1689, SENDER, tx);
    assert_eq!(
        serde_json::to_value(&ok).unwrap(),
        json!({
            "success": true,
            "payer": "0x3333333333333333333333333333333333333333",
            "transaction": tx.to_string(),
            "network": "eip155:1689"
        })
    );
    assert_eq!(decode_payment_response(encode_payment_response(&ok).unwrap()).unwrap(), ok);

    let failed = SettlementResponse::failure(689, Reason::UserOpFailed, Some("AA23".into()), None);
    assert_eq!(
        serde_json::to_value(&failed).unwrap(),
        json!({
            "success": false,
            "errorReason": "user_op_failed",
            "errorMessage": "AA23",
            "transaction": "",
            "network": "eip155:689"
        })
    );
    assert_eq!(decode_payment_response(encode_payment_response(&failed).unwrap()).unwrap(), failed);

    // What x402-types 2.0.2 writes for a failure still reads, reason included.
    let theirs = x402_types::proto::v2::SettleResponse::Error {
        reason: "replay".into(),
        network: "eip155:1689".into(),
    };
    let theirs_json = serde_json::to_value(&theirs).unwrap();
    assert!(theirs_json.get("error_reason").is_some(), "x402-types changed: {theirs_json}");
    let read: SettlementResponse = serde_json::from_value(theirs_json).unwrap();
    assert_eq!(read.error_reason.as_deref(), Some("replay"));
    assert_eq!(read.transaction, "");
}

#[test]
fn verify_against_accepts_both_payment_shapes() {
    let env = decode_payment_payload(nero_payload_json()).unwrap();
    let decoded = env.verify_against(&required(), &crate::accounts::SimpleAccountAbi).unwrap();
    assert_eq!(decoded.settlement, SETTLEMENT);
    assert!(decoded.approve.is_some());

    let settle = required().settle_call(REQUEST_HASH);
    let mut json = nero_payload_json();
    json["payload"]["userOp"] =
        serde_json::to_value(user_op(encode_payment_execute(SETTLEMENT, &settle))).unwrap();
    let env = decode_payment_payload(json).unwrap();
    assert!(
        env.verify_against(&required(), &crate::accounts::SimpleAccountAbi)
            .unwrap()
            .approve
            .is_none()
    );

    let mut with_extra = required();
    with_extra.extra = Some(AaNativeExtra {
        settlement_contract: SETTLEMENT,
        entry_point: crate::ENTRY_POINT_V06,
    });
    let mut json = nero_payload_json();
    json["accepted"] = serde_json::to_value(with_extra.to_wire()).unwrap();
    let env = decode_payment_payload(json.clone()).unwrap();
    env.verify_against(&with_extra, &crate::accounts::SimpleAccountAbi).unwrap();

    let mut elsewhere = with_extra;
    elsewhere.extra =
        Some(AaNativeExtra { settlement_contract: TOKEN, ..with_extra.extra.unwrap() });
    json["accepted"] = serde_json::to_value(elsewhere.to_wire()).unwrap();
    let env = decode_payment_payload(json).unwrap();
    let err = env.verify_against(&elsewhere, &crate::accounts::SimpleAccountAbi).unwrap_err();
    assert!(matches!(
        err,
        PayloadError::RequirementsMismatch { field: "extra.settlementContract" }
    ));
}

#[test]
fn verify_against_reports_each_mismatch() {
    let env = decode_payment_payload(nero_payload_json()).unwrap();
    let other = address!("0x9999999999999999999999999999999999999999");
    let cases: Vec<(AaNativeRequirements, &str)> = vec![
        (AaNativeRequirements { chain_id: 689, ..required() }, "network_mismatch"),
        (AaNativeRequirements { amount: U256::from(999), ..required() }, "amount_mismatch"),
        (AaNativeRequirements { asset: other, ..required() }, "asset_mismatch"),
        (AaNativeRequirements { pay_to: other, ..required() }, "payTo_mismatch"),
        (AaNativeRequirements { max_timeout_seconds: 30, ..required() }, "requirements_mismatch"),
    ];
    for (req, reason) in cases {
        let err = env.verify_against(&req, &crate::accounts::SimpleAccountAbi).unwrap_err();
        assert_eq!(err.reason(), reason, "{err}");
    }

    // The spec disagrees with the callData, field by field.
    for (field, value) in [
        ("merchant", json!(other)),
        ("token", json!(other)),
        ("amount", json!("1001")),
        ("requestHash", json!(B256::repeat_byte(7))),
    ] {
        let mut json = nero_payload_json();
        json["payload"]["settlementCallSpec"][field] = value;
        let err = decode_payment_payload(json)
            .unwrap()
            .verify_against(&required(), &crate::accounts::SimpleAccountAbi)
            .unwrap_err();
        assert!(matches!(err, PayloadError::SpecMismatch { field: f } if f == field), "{err}");
        assert_eq!(err.reason(), "spec_mismatch");
    }

    // Consistent spec and callData that pay someone else than the merchant asked (step 5).
    let mut json = nero_payload_json();
    json["payload"]["userOp"] = serde_json::to_value(user_op(encode_payment_batch(
        TOKEN,
        SETTLEMENT,
        other,
        U256::from(1000),
        REQUEST_HASH,
    )))
    .unwrap();
    json["payload"]["settlementCallSpec"]["merchant"] = json!(other);
    let err = decode_payment_payload(json)
        .unwrap()
        .verify_against(&required(), &crate::accounts::SimpleAccountAbi)
        .unwrap_err();
    assert!(matches!(err, PayloadError::PayToMismatch { actual, .. } if actual == other));

    // callData that is no payment at all.
    let mut json = nero_payload_json();
    json["payload"]["userOp"]["callData"] = json!("0xdeadbeef");
    let err = decode_payment_payload(json)
        .unwrap()
        .verify_against(&required(), &crate::accounts::SimpleAccountAbi)
        .unwrap_err();
    assert!(matches!(
        &err,
        PayloadError::CallData(e) if matches!(
            **e,
            crate::accounts::AccountCallDataError::Simple(CallDataError::UnknownSelector { .. })
        )
    ));
    assert_eq!(err.reason(), "calldata_decode_failed");
}

/// Hostile or broken inputs, each with the reason a facilitator must answer.
#[test]
fn malformed_corpus_maps_to_reasons() {
    fn with(path: &[&str], value: Value) -> Value {
        let mut json = nero_payload_json();
        let mut at = &mut json;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        json
    }
    fn without(path: &[&str]) -> Value {
        let mut json = nero_payload_json();
        let mut at = &mut json;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at.as_object_mut().unwrap().remove(path[path.len() - 1]);
        json
    }
    let b = |v: Value| b64(&v);
    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let raw = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    let cases: Vec<(String, &str)> = vec![
        // Transport: base64 and size.
        ("!!!!".into(), "invalid_envelope"),
        ("ab+_cd==".into(), "invalid_envelope"),
        ("a".into(), "invalid_envelope"),
        ("ab=c".into(), "invalid_envelope"),
        ("A".repeat(MAX_HEADER_LEN + 4), "invalid_envelope"),
        // JSON and envelope shape.
        (String::new(), "invalid_envelope"),
        (raw("not json"), "invalid_envelope"),
        (raw("[]"), "invalid_envelope"),
        (raw("{}"), "invalid_envelope"),
        (raw("null"), "invalid_envelope"),
        (raw(&deep), "invalid_envelope"),
        (raw("\u{feff}{}"), "invalid_envelope"),
        (b(with(&["x402Version"], json!(1))), "invalid_envelope"),
        (b(with(&["x402Version"], json!("2"))), "invalid_envelope"),
        (b(with(&["x402Version"], json!(2.5))), "invalid_envelope"),
        (b(without(&["x402Version"])), "invalid_envelope"),
        (b(without(&["accepted"])), "invalid_envelope"),
        (b(without(&["payload"])), "invalid_envelope"),
        (b(with(&["extensions"], json!([]))), "invalid_envelope"),
        (b(with(&["accepted"], json!("aa-native"))), "invalid_envelope"),
        (b(with(&["accepted", "network"], json!("eip155"))), "invalid_envelope"),
        (b(with(&["accepted", "amount"], json!(1000))), "invalid_envelope"),
        (b(with(&["accepted", "maxTimeoutSeconds"], json!(-1))), "invalid_envelope"),
        (b(with(&["accepted", "amount"], json!("1e3"))), "invalid_envelope"),
        (b(with(&["accepted", "amount"], json!(""))), "invalid_envelope"),
        (b(with(&["accepted", "amount"], json!("-1"))), "invalid_envelope"),
        (
            b(with(&["accepted", "amount"], json!(format!("1{}", "0".repeat(80))))),
            "invalid_envelope",
        ),
        (b(with(&["accepted", "payTo"], json!("0x1234"))), "invalid_envelope"),
        (
            b(with(&["accepted", "payTo"], json!("2222222222222222222222222222222222222222"))),
            "invalid_envelope",
        ),
        (b(with(&["accepted", "asset"], json!("USDT"))), "invalid_envelope"),
        (
            b(with(&["accepted", "extra"], json!({ "settlementContract": "nope" }))),
            "invalid_envelope",
        ),
        (b(with(&["accepted", "extra"], json!([1]))), "invalid_envelope"),
        // Scheme and network.
        (b(with(&["accepted", "scheme"], json!("exact"))), "unsupported_scheme"),
        (b(with(&["accepted", "scheme"], json!("AA-NATIVE"))), "unsupported_scheme"),
        (b(with(&["accepted", "scheme"], json!(""))), "unsupported_scheme"),
        (b(with(&["accepted", "network"], json!("solana:mainnet"))), "network_mismatch"),
        (b(with(&["accepted", "network"], json!("eip155:"))), "network_mismatch"),
        (b(with(&["accepted", "network"], json!("eip155:01"))), "network_mismatch"),
        (b(with(&["accepted", "network"], json!("eip155:+1"))), "network_mismatch"),
        (b(with(&["accepted", "network"], json!("eip155:1689:x"))), "network_mismatch"),
        (
            b(with(&["accepted", "network"], json!("eip155:99999999999999999999"))),
            "network_mismatch",
        ),
        (b(with(&["accepted", "network"], json!("EIP155:1689"))), "network_mismatch"),
        // Inner payload.
        (b(with(&["payload"], Value::Null)), "invalid_inner_payload"),
        (b(with(&["payload"], json!({}))), "invalid_inner_payload"),
        (b(with(&["payload"], json!("0x00"))), "invalid_inner_payload"),
        (b(without(&["payload", "userOp"])), "invalid_inner_payload"),
        (b(without(&["payload", "settlementCallSpec"])), "invalid_inner_payload"),
        (b(with(&["payload", "userOp", "nonce"], json!("1"))), "invalid_inner_payload"),
        (b(with(&["payload", "userOp", "nonce"], json!(1))), "invalid_inner_payload"),
        (b(with(&["payload", "userOp", "callData"], json!("0xabc"))), "invalid_inner_payload"),
        (b(with(&["payload", "userOp", "sender"], json!("0x12"))), "invalid_inner_payload"),
        (b(with(&["payload", "userOp", "factory"], json!("0x"))), "invalid_inner_payload"),
        (b(without(&["payload", "userOp", "signature"])), "invalid_inner_payload"),
        (
            b(with(&["payload", "settlementCallSpec", "amount"], json!("0x3e8"))),
            "invalid_inner_payload",
        ),
        (
            b(with(&["payload", "settlementCallSpec", "amount"], json!(1000))),
            "invalid_inner_payload",
        ),
        (
            b(with(&["payload", "settlementCallSpec", "amount"], json!("1_000"))),
            "invalid_inner_payload",
        ),
        (
            b(with(&["payload", "settlementCallSpec", "amount"], json!(" 1000"))),
            "invalid_inner_payload",
        ),
        (
            b(with(&["payload", "settlementCallSpec", "requestHash"], json!("0x44"))),
            "invalid_inner_payload",
        ),
        (
            b(with(&["payload", "settlementCallSpec", "requestHash"], json!(B256::ZERO))),
            "invalid_inner_payload",
        ),
        (
            b(with(&["payload", "settlementCallSpec", "merchant"], json!(null))),
            "invalid_inner_payload",
        ),
    ];
    for (header, reason) in &cases {
        match decode_payment_signature(header) {
            Ok(_) => panic!("accepted {header:.80}… (want {reason})"),
            Err(e) => assert_eq!(e.reason(), *reason, "{e} for {header:.80}…"),
        }
    }
}

#[test]
fn payment_required_errors() {
    let empty = json!({ "x402Version": 2, "resource": null, "accepts": [] });
    assert!(matches!(parse_payment_required(empty), Err(PayloadError::EmptyAccepts)));
    let v1 = json!({ "x402Version": 1, "accepts": [required().to_wire()] });
    assert_eq!(parse_payment_required(v1).unwrap_err().reason(), "invalid_envelope");
    assert_eq!(decode_payment_required("%%%").unwrap_err().reason(), "invalid_envelope");
    assert_eq!(
        decode_payment_response(b64(&json!({ "success": true }))).unwrap_err().reason(),
        "invalid_envelope"
    );
}

/// Random bytes and random mutations of a valid header never panic any decoder.
#[test]
fn decoders_never_panic() {
    let valid = serde_json::to_vec(&nero_payload_json()).unwrap();
    let mut seed = 0xdead_beef_cafe_f00du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3_000 {
        let bytes: Vec<u8> = if round % 2 == 0 {
            (0..next() % 200).map(|_| next() as u8).collect()
        } else {
            let mut json = valid.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % json.len();
                json[i] = next() as u8;
            }
            json
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        for header in [&encoded[..], &String::from_utf8_lossy(&bytes)[..]] {
            let _ = decode_payment_signature(header);
            let _ = decode_payment_required(header);
            let _ = decode_payment_response(header);
        }
    }
}
