//! The console with the owner key elsewhere: the page's API shows the EIP-712 data, takes the
//! owner's signature, and a relayer submits pauses and revocations. Bad input is refused with a
//! reason, and leaves nothing behind.

use alloy::{
    primitives::{B256, Bytes},
    signers::SignerSync,
};
use serde_json::{Value, json};

use crate::common::Chain;

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let r = self.http.post(format!("{}{path}", self.url)).json(&body).send().await?;
        Ok((r.status().as_u16(), r.json().await?))
    }

    async fn overview(&self) -> anyhow::Result<Value> {
        Ok(self.http.get(format!("{}api/overview", self.url)).send().await?.json().await?)
    }
}

fn sign(key: &impl SignerSync, digest: &Value) -> anyhow::Result<String> {
    let digest: B256 = serde_json::from_value(digest.clone())?;
    Ok(Bytes::from(key.sign_hash_sync(&digest)?.as_bytes()).to_string())
}

/// `sign`, as wallets that answer `v` as 0/1 do.
fn sign_zero_based_v(key: &impl SignerSync, digest: &Value) -> anyhow::Result<String> {
    let digest: B256 = serde_json::from_value(digest.clone())?;
    let mut signature = key.sign_hash_sync(&digest)?.as_bytes();
    signature[64] -= 27;
    Ok(Bytes::from(signature).to_string())
}

/// `sign`, as the same key's other (high `s`) signature of the digest.
fn sign_high_s(key: &impl SignerSync, digest: &Value) -> anyhow::Result<String> {
    let digest: B256 = serde_json::from_value(digest.clone())?;
    let signature = key.sign_hash_sync(&digest)?.as_bytes();
    Ok(Bytes::from(x402_aa_policy::malleable_twin(&signature)).to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_elsewhere_grant_pause_and_revoke_and_bad_input() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let data = tempfile::tempdir()?;
    let mut config = chain.config(data.path());
    config.owner = Some(chain.owner.address());
    config.relayer_key = Some(chain.devnet.keys.spare[4].clone());
    let console = chain.console(config).await?;
    let api = Api { http: reqwest::Client::new(), url: console.url() };
    let form = |justification: &str| {
        json!({
            "spendCap": "1 USDT", "period": "1 day", "perPayment": "0.25 USDT",
            "merchants": chain.merchant.to_string(), "validFor": "2 h",
            "justification": justification,
        })
    };

    // Bad input, each with its reason.
    let (status, body) = api.post("api/grant/preview", form("  ")).await?;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap_or_default().starts_with("justification"), "{body}");
    let mut bad = form("x");
    bad["perPayment"] = "2 USDT".into();
    let (status, body) = api.post("api/grant/preview", bad).await?;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap_or_default().contains("exceeds the period cap"),
        "{body}"
    );
    let mut bad = form("x");
    bad["merchants"] = "0x1234".into();
    let (status, body) = api.post("api/grant/preview", bad).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("merchants: \"0x1234\" is not an address"))
    );
    let (status, body) = api.post("api/grant/preview", json!({ "spendCap": 5 })).await?;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "a malformed body gets a reason too: {body}");

    // Preview: the EIP-712 data to sign elsewhere.
    let (status, draft) = api.post("api/grant/preview", form("weekly report agent")).await?;
    assert_eq!(status, 200, "{draft}");
    let typed = &draft["typedData"];
    assert_eq!(typed["primaryType"], "SessionGrant", "{typed}");
    assert_eq!(
        typed["domain"]["verifyingContract"].as_str().map(str::to_lowercase),
        Some(chain.account.to_string().to_lowercase())
    );
    assert!(draft["sentence"].as_str().unwrap_or_default().contains("1 USDT per day"), "{draft}");
    let id = draft["draftId"].clone();

    // No signature, or someone else's: refused, nothing written.
    let (status, body) = api.post("api/grant", json!({ "draftId": id })).await?;
    assert_eq!(status, 400, "{body}");
    let stranger = chain.devnet.keys.spare[3].clone();
    let (status, body) =
        api.post("api/grant", json!({ "draftId": id, "signature": sign(&stranger, &id)? })).await?;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap_or_default().contains("not by the owner"), "{body}");
    assert_eq!(std::fs::read_dir(data.path().join("sessions"))?.count(), 0);

    let (status, granted) = api
        .post("api/grant", json!({ "draftId": id, "signature": sign(&chain.owner, &id)? }))
        .await?;
    assert_eq!(status, 200, "{granted}");
    assert_eq!(granted["sessionId"], id);
    let overview = api.overview().await?;
    let session = &overview["accounts"][0]["sessions"][0];
    assert_eq!(session["id"], id);
    assert_eq!(session["state"], "active");
    assert_eq!(session["justification"], "weekly report agent");
    assert_eq!(overview["signing"], "elsewhere");

    // Pause: first what to sign, then the relayed signature (the account gets deployed too).
    let (status, ask) = api.post("api/action", json!({ "action": "pause", "session": id })).await?;
    assert_eq!((status, &ask["done"]), (200, &json!(false)), "{ask}");
    assert_eq!(ask["sign"]["typedData"]["primaryType"], "SetSessionPaused");
    assert!(ask["sign"]["deploy"].is_object(), "the account is not deployed yet: {ask}");
    let digest = &ask["sign"]["digest"];
    let (status, body) = api
        .post(
            "api/action",
            json!({ "action": "pause", "session": id, "signature": sign(&stranger, digest)? }),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    // Wallets answer v as 0/1 or a high s: the console relays the form the account accepts.
    let signature = sign_zero_based_v(&chain.owner, digest)?;
    let (status, done) = api
        .post("api/action", json!({ "action": "pause", "session": id, "signature": signature }))
        .await?;
    assert_eq!((status, &done["done"]), (200, &json!(true)), "{done}");
    assert_eq!(api.overview().await?["accounts"][0]["sessions"][0]["state"], "paused");
    let (status, body) =
        api.post("api/action", json!({ "action": "pause", "session": id })).await?;
    assert_eq!(status, 409);
    assert!(body["error"].as_str().unwrap_or_default().contains("nothing to pause"), "{body}");

    // Revoke by signature; a second revocation is refused before anything is sent.
    let (_, ask) = api.post("api/action", json!({ "action": "revoke", "session": id })).await?;
    let signature = sign_high_s(&chain.owner, &ask["sign"]["digest"])?;
    let (status, done) = api
        .post("api/action", json!({ "action": "revoke", "session": id, "signature": signature }))
        .await?;
    assert_eq!((status, &done["done"]), (200, &json!(true)), "{done}");
    assert_eq!(api.overview().await?["accounts"][0]["sessions"][0]["state"], "revoked");
    let (status, body) = api
        .post("api/action", json!({ "action": "revoke", "session": id, "signature": signature }))
        .await?;
    assert_eq!(status, 409, "{body}");
    let (status, _) = api
        .post("api/action", json!({ "action": "pause", "session": B256::repeat_byte(7) }))
        .await?;
    assert_eq!(status, 404);

    // Revoke all: a second grant ends with the account's epoch.
    let (_, draft) = api.post("api/grant/preview", form("second agent")).await?;
    let second = draft["draftId"].clone();
    let signature = sign_high_s(&chain.owner, &second)?;
    let (status, _) =
        api.post("api/grant", json!({ "draftId": second, "signature": signature })).await?;
    assert_eq!(status, 200);
    let account = chain.account.to_string();
    let (_, ask) =
        api.post("api/action", json!({ "action": "revoke-all", "account": account })).await?;
    assert_eq!(ask["sign"]["typedData"]["primaryType"], "RevokeAllSessions", "{ask}");
    let signature = sign(&chain.owner, &ask["sign"]["digest"])?;
    let (status, done) = api
        .post(
            "api/action",
            json!({ "action": "revoke-all", "account": account, "signature": signature }),
        )
        .await?;
    assert_eq!((status, &done["done"]), (200, &json!(true)), "{done}");
    let overview = api.overview().await?;
    let sessions = overview["accounts"][0]["sessions"].as_array().cloned().unwrap_or_default();
    let second = sessions.iter().find(|s| s["id"] == second).cloned().unwrap_or_default();
    assert_eq!(second["stateWords"], "revoked (all sessions)", "{second}");
    console.shutdown().await?;
    Ok(())
}
