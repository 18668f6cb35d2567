//! A funded SessionKeyAccount with a signed grant, ready for a `PaymentSigner`.

use alloy::{
    network::TransactionBuilder,
    primitives::{B256, U256},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use x402_aa::ENTRY_POINT_V06;
use x402_aa_contracts::SessionKeyAccountFactory;
use x402_aa_devnet::Devnet;
use x402_aa_session::{
    Scopes, SessionFile, TokenInfo, file::AccountDeployment, owner::sign_grant,
    signer::SessionAccount,
};

use crate::StackError;

/// The devnet's USDT (6 decimals), as a session file names it.
fn usdt(devnet: &Devnet) -> TokenInfo {
    TokenInfo { address: devnet.addresses.token, symbol: "USDT".into(), decimals: 6 }
}

/// `owner`'s SessionKeyAccount (salt 0) holding `mint` USDT, and a session of `session_key`
/// under `scopes`, signed by `owner`: what an agent receives from its owner.
///
/// The account is deployed through the factory first (by the devnet deployer) when `deploy`,
/// and otherwise stays counterfactual, deployed by its first payment; the session file records
/// the factory either way. The grant's window starts one second before the latest block (so it
/// is valid in the next one) unless `scopes` sets `valid_from`; `grant_salt` makes the grant,
/// and so the session id, unique.
pub async fn session_account(
    devnet: &Devnet,
    owner: &PrivateKeySigner,
    session_key: PrivateKeySigner,
    scopes: &Scopes,
    grant_salt: B256,
    deploy: bool,
    mint: U256,
) -> Result<SessionAccount, StackError> {
    let a = devnet.addresses;
    let factory = SessionKeyAccountFactory::new(a.session_account_factory, devnet.provider());
    let deployment = AccountDeployment {
        factory: a.session_account_factory,
        owner: owner.address(),
        salt: U256::ZERO,
    };
    let account = factory.getAddress(deployment.owner, deployment.salt).call().await?;
    if deploy {
        let call = SessionKeyAccountFactory::createAccountCall {
            owner: deployment.owner,
            salt: deployment.salt,
        };
        let tx = TransactionRequest::default()
            .with_from(devnet.keys.deployer.address())
            .with_to(a.session_account_factory)
            .with_input(call.abi_encode());
        devnet.send("createAccount", tx).await?;
    }
    devnet.mint(account, mint).await?;
    let token = usdt(devnet);
    let now = devnet.block_timestamp().await?;
    let grant =
        scopes.to_grant(session_key.address(), &token, a.settlement, now - 1, 0, grant_salt)?;
    let chain_id = devnet.chain_id();
    let (_, signature) = sign_grant(owner, &grant, chain_id, account)?;
    let file = SessionFile::new(
        chain_id,
        account,
        ENTRY_POINT_V06,
        Some(deployment),
        token,
        owner.address(),
        scopes.merchant_list(),
        &grant,
        signature,
    );
    Ok(SessionAccount::new(file, session_key)?)
}
