//! x402-rs' `exact` scheme served beside aa-native when the config enables it.

use serde_json::json;
use x402_aa_facilitator::{aa_native_everywhere, exact_on};

use crate::common::{Env, SessionOpts, USD, body};

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

    // An exact payload x402-rs cannot read is answered by x402-rs' exact handler, with its
    // own status and reason.
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
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["isValid"], false);
    assert_eq!(v["invalidReason"], "invalid_format", "{v}");

    // aa-native is unaffected.
    let payer = env.session_payer(SessionOpts::default()).await?;
    let accepted = env.accepted(USD);
    let (_, s) = f.settle(&body(&payer.pay(&accepted, 1).await?, &accepted)).await?;
    assert_eq!(s["success"], true, "{s}");
    f.stop().await
}
