//! x402-rs' `exact` scheme served beside aa-native when the config enables it, paid end to
//! end with x402-rs' own client against the devnet's EIP-3009 token.

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use serde_json::json;
use x402_aa_contracts::TestEip3009Token;
use x402_aa_facilitator::{aa_native_everywhere, exact_on};

use crate::common::{Env, Facilitator, SessionOpts, USD, body, exact_body, exact_payload};

#[tokio::test]
async fn exact_is_served_beside_aa_native() -> anyhow::Result<()> {
    let env = Env::new().await?;
    let chain_id = env.devnet.chain_id();
    let mut config = env.config();
    config.schemes = Some(vec![aa_native_everywhere(), exact_on(chain_id)]);
    let f = env.start(config).await?;

    let (status, supported) = f.get("/supported").await?;
    assert_eq!(status, 200);
    let mut schemes: Vec<&str> = supported["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .filter_map(|k| k["scheme"].as_str())
        .collect();
    schemes.sort();
    assert_eq!(schemes, ["aa-native", "exact"], "{supported}");
    let signer = env.facilitator_key.address().to_checksum(None);
    assert_eq!(supported["signers"]["eip155:31337"], json!([signer]), "{supported}");

    // An exact payload x402-rs cannot read is a verdict like any other: HTTP 200, the spec's
    // `invalid_payload`, and the network the request names.
    let garbage = json!({
        "x402Version": 2,
        "paymentPayload": {
            "x402Version": 2,
            "accepted": { "scheme": "exact", "network": "eip155:31337" },
            "payload": {}
        },
        "paymentRequirements": { "scheme": "exact", "network": "eip155:31337" }
    });
    let (status, v) = f.verify(&garbage).await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["isValid"], false);
    assert_eq!(v["invalidReason"], "invalid_payload", "{v}");
    let (status, s) = f.settle(&garbage).await?;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (&s["errorReason"], &s["network"]),
        (&json!("invalid_payload"), &json!("eip155:31337"))
    );

    // aa-native is unaffected.
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let (_, s) = f.settle(&body(&payer.pay(&accepted, 1).await?, &accepted)).await?;
    assert_eq!(s["success"], true, "{s}");
    f.stop().await
}

/// A facilitator serving aa-native and exact, and a spare devnet key holding 10 units of the
/// devnet's EIP-3009 token.
async fn exact_env() -> anyhow::Result<(Env, Facilitator, PrivateKeySigner)> {
    let env = Env::new().await?;
    let mut config = env.config();
    config.schemes = Some(vec![aa_native_everywhere(), exact_on(env.devnet.chain_id())]);
    let f = env.start(config).await?;
    let payer = env.devnet.keys.spare[0].clone();
    env.devnet.mint_eip3009(payer.address(), U256::from(10 * USD)).await?;
    Ok((env, f, payer))
}

async fn eip3009_balances(env: &Env, payer: Address) -> anyhow::Result<(U256, U256)> {
    Ok((env.devnet.eip3009_balance(payer).await?, env.devnet.eip3009_balance(env.merchant).await?))
}

#[tokio::test]
async fn exact_eip3009_payment_verifies_and_settles_once() -> anyhow::Result<()> {
    let (env, f, payer) = exact_env().await?;
    let from = payer.address();
    let token = TestEip3009Token::new(env.devnet.addresses.eip3009_token, env.devnet.provider());
    let requirements = env.exact_requirements(USD);
    let payload = exact_payload(&payer, &requirements).await?;

    // What x402-rs' client signed: an EIP-3009 authorization for exactly these requirements.
    assert_eq!(payload["x402Version"], 2, "{payload}");
    assert_eq!(payload["accepted"], requirements, "{payload}");
    let authorization = &payload["payload"]["authorization"];
    let party = |field: &str| serde_json::from_value::<Address>(authorization[field].clone());
    assert_eq!(party("from")?, from, "{payload}");
    assert_eq!(party("to")?, env.merchant, "{payload}");
    assert_eq!(authorization["value"], USD.to_string(), "{payload}");
    let nonce: B256 = serde_json::from_value(authorization["nonce"].clone())?;
    let body = exact_body(&payload, &requirements);

    let (status, v) = f.verify(&body).await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["isValid"], true, "{v}");
    assert_eq!(v["payer"], from.to_checksum(None), "{v}");
    assert_eq!(eip3009_balances(&env, from).await?, (U256::from(10 * USD), U256::ZERO));
    assert!(!token.authorizationState(from, nonce).call().await?, "verify must not settle");

    let (status, s) = f.settle(&body).await?;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(s["payer"], from.to_checksum(None), "{s}");
    assert_eq!(s["network"], "eip155:31337", "{s}");
    let tx: B256 = serde_json::from_value(s["transaction"].clone())?;
    let receipt =
        env.devnet.provider().get_transaction_receipt(tx).await?.expect("settlement receipt");
    assert!(receipt.status(), "{receipt:?}");
    assert_eq!(receipt.from, env.facilitator_key.address(), "the facilitator pays the gas");
    assert_eq!(receipt.to, Some(env.devnet.addresses.eip3009_token));
    assert_eq!(eip3009_balances(&env, from).await?, (U256::from(9 * USD), U256::from(USD)));
    assert!(token.authorizationState(from, nonce).call().await?);

    // The same payload again: the authorization's nonce is used, so it neither verifies nor
    // settles, and nothing moves. A client-side fault, answered as the official facilitator
    // does: HTTP 200, its reason, payer and network filled.
    let (status, again) = f.settle(&body).await?;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["success"], false, "{again}");
    assert_eq!(again["errorReason"], "invalid_exact_evm_nonce_already_used", "{again}");
    assert_eq!(again["payer"], from.to_checksum(None), "{again}");
    assert_eq!(again["network"], "eip155:31337", "{again}");
    assert_eq!(again["transaction"], "", "{again}");
    let (status, v) = f.verify(&body).await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["isValid"], false, "{v}");
    assert_eq!(v["invalidReason"], "invalid_exact_evm_nonce_already_used", "{v}");
    assert_eq!(v["payer"], from.to_checksum(None), "{v}");
    assert_eq!(eip3009_balances(&env, from).await?, (U256::from(9 * USD), U256::from(USD)));

    f.stop().await
}

/// A refused `exact` settlement (its gas estimate reverts) must not cost the facilitator key a
/// nonce: with alloy's cached nonce manager that left a gap, and every later settlement of the
/// key timed out unmined until a restart. `ExactProvider` now estimates before the fillers run.
#[tokio::test]
async fn exact_settles_again_after_a_refused_settlement() -> anyhow::Result<()> {
    let (env, f, payer) = exact_env().await?;
    let requirements = env.exact_requirements(USD);
    let body = exact_body(&exact_payload(&payer, &requirements).await?, &requirements);
    let (_, s) = f.settle(&body).await?;
    assert_eq!(s["success"], true, "{s}");
    let (_, again) = f.settle(&body).await?;
    assert_eq!(again["success"], false, "{again}");

    let next = exact_body(&exact_payload(&payer, &requirements).await?, &requirements);
    let (_, s) = f.settle(&next).await?;
    assert_eq!(s["success"], true, "{s}");
    let balances = eip3009_balances(&env, payer.address()).await?;
    assert_eq!(balances, (U256::from(8 * USD), U256::from(2 * USD)));
    f.stop().await
}

#[tokio::test]
async fn exact_payment_below_the_requirement_is_invalid() -> anyhow::Result<()> {
    let (env, f, payer) = exact_env().await?;
    let from = payer.address();
    let requirements = env.exact_requirements(USD);

    // Signed for a cheaper price than the merchant asks.
    let cheap = exact_payload(&payer, &env.exact_requirements(USD / 2)).await?;
    let (_, v) = f.verify(&exact_body(&cheap, &requirements)).await?;
    assert_eq!(v["isValid"], false, "{v}");
    assert_eq!(v["invalidReason"], "invalid_payment_requirements", "{v}");
    assert_eq!(v["payer"], from.to_checksum(None), "{v}");

    // Accepted the right price, but the authorization moves less.
    let mut short = exact_payload(&payer, &requirements).await?;
    short["payload"]["authorization"]["value"] = json!((USD / 2).to_string());
    let body = exact_body(&short, &requirements);
    let (_, v) = f.verify(&body).await?;
    assert_eq!(v["isValid"], false, "{v}");
    assert_eq!(v["invalidReason"], "invalid_exact_evm_payload_authorization_value_mismatch", "{v}");
    let (_, s) = f.settle(&body).await?;
    assert_eq!(s["success"], false, "{s}");
    assert_eq!(s["payer"], from.to_checksum(None), "{s}");

    assert_eq!(eip3009_balances(&env, from).await?, (U256::from(10 * USD), U256::ZERO));
    f.stop().await
}

/// Both schemes send from the facilitator's one key (the config names no `exact_signer`): each
/// must number its transactions after the other's. Before the key's provider was shared, every
/// `exact` settlement after an aa-native one failed with "nonce too low".
#[tokio::test]
async fn schemes_sharing_a_key_interleave() -> anyhow::Result<()> {
    let (env, f, payer) = exact_env().await?;
    let session = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let requirements = env.exact_requirements(USD);
    for round in 1..=2u64 {
        let (_, s) = f.settle(&body(&session.pay(&accepted, round).await?, &accepted)).await?;
        assert_eq!(s["success"], true, "aa-native round {round}: {s}");
        let exact = exact_body(&exact_payload(&payer, &requirements).await?, &requirements);
        let (_, s) = f.settle(&exact).await?;
        assert_eq!(s["success"], true, "exact round {round}: {s}");
    }
    let balances = eip3009_balances(&env, payer.address()).await?;
    assert_eq!(balances, (U256::from(8 * USD), U256::from(2 * USD)));
    f.stop().await
}

/// x402 `payment-identifier` on `/settle`: the same id and payload answer the first settlement
/// again without a second one; the same id with another payload is a 409.
#[tokio::test]
async fn payment_identifier_makes_settle_idempotent() -> anyhow::Result<()> {
    let (env, f, payer) = exact_env().await?;
    let requirements = env.exact_requirements(USD);
    let with_id = |mut payload: serde_json::Value, id: &str| {
        payload["extensions"] =
            json!({ "payment-identifier": { "info": { "required": false, "id": id } } });
        payload
    };
    let id = "pay_interop_0000000000000001";
    let first =
        exact_body(&with_id(exact_payload(&payer, &requirements).await?, id), &requirements);
    let (status, s1) = f.settle(&first).await?;
    assert_eq!((status, &s1["success"]), (200, &json!(true)), "{s1}");
    let (status, s2) = f.settle(&first).await?;
    assert_eq!(status, 200, "{s2}");
    assert_eq!(s2, s1, "the cached answer");
    assert_eq!(eip3009_balances(&env, payer.address()).await?.1, U256::from(USD), "paid once");

    let other =
        exact_body(&with_id(exact_payload(&payer, &requirements).await?, id), &requirements);
    let (status, c) = f.settle(&other).await?;
    assert_eq!(status, 409, "{c}");
    assert_eq!(c["errorReason"], "payment_identifier_conflict", "{c}");
    assert_eq!(c["payer"], payer.address().to_checksum(None), "{c}");
    assert_eq!(eip3009_balances(&env, payer.address()).await?.1, U256::from(USD));

    let bad =
        exact_body(&with_id(exact_payload(&payer, &requirements).await?, "short"), &requirements);
    let (status, b) = f.settle(&bad).await?;
    assert_eq!((status, &b["errorReason"]), (400, &json!("invalid_payload")), "{b}");
    f.stop().await
}
