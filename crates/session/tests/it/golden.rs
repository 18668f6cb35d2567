//! The Rust side computes exactly what the contract checks.

use alloy::primitives::B256;
use x402_aa_contracts::SessionKeyAccount;
use x402_aa_session::{account_domain, revoke_all_digest, revoke_digest};

use crate::fixture::Fx;

#[tokio::test]
async fn session_id_and_revocation_digests_match_the_contract() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let account = SessionKeyAccount::new(fx.account, fx.devnet.provider());
    for _ in 0..3 {
        let grant = fx.grant();
        assert_eq!(account.sessionId(grant.clone()).call().await?, fx.session_id(&grant));
    }
    let domain = account_domain(fx.devnet.chain_id(), fx.account);
    assert_eq!(account.domainSeparator().call().await?, domain.separator());
    // Revocation digests are checked by using them: a relayed revocation only works if they agree.
    let grant = fx.grant();
    let id = fx.session_id(&grant);
    let digest = revoke_digest(id, fx.devnet.chain_id(), fx.account);
    assert_ne!(digest, B256::ZERO);
    assert_ne!(revoke_all_digest(0, fx.devnet.chain_id(), fx.account), digest);
    Ok(())
}
