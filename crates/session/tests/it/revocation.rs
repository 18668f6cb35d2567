//! The owner ends sessions with one transaction, or with a signature anyone may relay; nothing
//! revives a revoked session.

use alloy::{
    network::TransactionBuilder,
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::SignerSync,
    sol_types::{SolCall, SolError},
};
use x402_aa_contracts::SessionKeyAccount;
use x402_aa_session::{SessionMode, revoke_all_digest, revoke_digest};

use crate::fixture::{Fx, request};

const INVALID_OWNER_SIGNATURE: [u8; 4] = SessionKeyAccount::InvalidOwnerSignature::SELECTOR;
const WRONG_EPOCH: [u8; 4] = SessionKeyAccount::WrongEpoch::SELECTOR;

fn hex(selector: [u8; 4]) -> String {
    alloy::primitives::hex::encode(selector)
}

const REVOKED: &str = "AA23 reverted: session: revoked";
const REVOKED_ALL: &str = "AA23 reverted: session: revoked (all sessions)";

#[tokio::test]
async fn revoked_session_is_refused_and_cannot_be_re_enabled() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let grant = fx.grant();
    fx.pay_ok(&fx.pay(&grant)).await?;
    fx.owner_call(SessionKeyAccount::revokeSession_olCall { id: fx.session_id(&grant) }).await?;
    assert_eq!(fx.state(&grant).await?.0, 2);

    let mut p = fx.pay(&grant);
    p.mode = SessionMode::Use;
    p.request_hash = request(2);
    fx.refused(&p, REVOKED).await?;
    // Re-submitting the owner-signed grant does not bring it back.
    p.mode = SessionMode::Enable;
    fx.refused(&p, REVOKED).await
}

#[tokio::test]
async fn a_session_revoked_before_first_use_never_starts() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let grant = fx.grant();
    fx.owner_call(SessionKeyAccount::revokeSession_olCall { id: fx.session_id(&grant) }).await?;
    fx.refused(&fx.pay(&grant), REVOKED).await
}

#[tokio::test]
async fn revoke_all_kills_enabled_and_unused_grants_but_not_new_ones() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let used = fx.grant();
    let unused = fx.grant();
    fx.pay_ok(&fx.pay(&used)).await?;
    fx.owner_call(SessionKeyAccount::revokeAllSessionsCall {}).await?;

    let mut p = fx.pay(&used);
    p.mode = SessionMode::Use;
    fx.refused(&p, REVOKED_ALL).await?;
    fx.refused(&fx.pay(&unused), REVOKED_ALL).await?;

    let mut fresh = fx.grant();
    fresh.epoch = 1;
    fx.pay_ok(&fx.pay(&fresh)).await?;
    Ok(())
}

#[tokio::test]
async fn signed_revocation_relayed_by_anyone() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let grant = fx.grant();
    fx.pay_ok(&fx.pay(&grant)).await?;
    let id = fx.session_id(&grant);
    let chain = fx.devnet.chain_id();
    let sig = fx.owner.sign_hash_sync(&revoke_digest(id, chain, fx.account))?;

    // A signature by anyone else is rejected.
    let forged = fx.session_key.sign_hash_sync(&revoke_digest(id, chain, fx.account))?;
    let relay = |input: Vec<u8>| {
        TransactionRequest::default()
            .with_from(fx.devnet.keys.bundler.address())
            .with_to(fx.account)
            .with_input(input)
    };
    let bad =
        SessionKeyAccount::revokeWithSignatureCall { id, ownerSignature: forged.as_bytes().into() };
    // Refusals are checked with eth_call: a transaction that fails estimation is never sent.
    let forged = fx.devnet.provider().call(relay(bad.abi_encode())).await;
    assert!(forged.is_err_and(|e| e.to_string().contains(&hex(INVALID_OWNER_SIGNATURE))));

    let call =
        SessionKeyAccount::revokeWithSignatureCall { id, ownerSignature: sig.as_bytes().into() };
    fx.devnet.send("relayed revoke", relay(call.abi_encode())).await?;
    let mut p = fx.pay(&grant);
    p.mode = SessionMode::Use;
    fx.refused(&p, REVOKED).await?;

    // Revoke-all by signature, single use: it names the epoch it ends.
    let other = fx.grant();
    let sig = fx.owner.sign_hash_sync(&revoke_all_digest(0, chain, fx.account))?;
    let call = SessionKeyAccount::revokeAllWithSignatureCall {
        epoch: 0,
        ownerSignature: sig.as_bytes().into(),
    };
    fx.devnet.send("relayed revoke-all", relay(call.abi_encode())).await?;
    let replayed = fx.devnet.provider().call(relay(call.abi_encode())).await;
    assert!(replayed.is_err_and(|e| e.to_string().contains(&hex(WRONG_EPOCH))));
    fx.refused(&fx.pay(&other), REVOKED_ALL).await
}
