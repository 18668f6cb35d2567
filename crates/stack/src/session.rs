//! A funded SessionKeyAccount (or Kernel account with the session validator, or Biconomy account
//! with the session module) with a signed grant, ready for a `PaymentSigner`.

use alloy::{
    network::TransactionBuilder,
    primitives::{B256, U256},
    providers::ProviderBuilder,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use x402_aa::{
    ENTRY_POINT_V06,
    accounts::{kernel, safe::SafeConfig},
};
use x402_aa_contracts::SessionKeyAccountFactory;
use x402_aa_devnet::Devnet;
use x402_aa_session::{
    Scopes, SessionFile, TokenInfo,
    file::AccountDeployment,
    owner::{self, sign_grant},
    policy::SessionHost,
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

/// `owner`'s Kernel v2.4 account (index 0, canonical factory) holding `mint` USDT, with this
/// project's `KernelSessionValidator` installed by one owner transaction, and a session of
/// `session_key` under `scopes` signed by `owner`. The owner gets a little native coin for its
/// transactions (deploying the account through the factory, installing the validator). Window
/// and salt as [`session_account`].
pub async fn kernel_session_account(
    devnet: &Devnet,
    owner: &PrivateKeySigner,
    session_key: PrivateKeySigner,
    scopes: &Scopes,
    grant_salt: B256,
    mint: U256,
) -> Result<SessionAccount, StackError> {
    let a = devnet.addresses;
    let validator = a.kernel_session_validator;
    let account = kernel::account_address(owner.address(), U256::ZERO);
    devnet.fund(owner.address(), U256::from(10u64.pow(17))).await?;
    let url =
        devnet.rpc_url().parse().map_err(|e| StackError::KernelSetup(format!("RPC URL: {e}")))?;
    let as_owner = ProviderBuilder::new().wallet(owner.clone()).connect_http(url);
    let init_code = kernel::init_code(owner.address(), U256::ZERO);
    owner::deploy_account(&as_owner, owner.address(), account, &init_code)
        .await
        .map_err(|e| StackError::KernelSetup(format!("deploying the Kernel account: {e}")))?;
    owner::install_kernel_sessions(&as_owner, owner.address(), account, validator)
        .await
        .map_err(|e| StackError::KernelSetup(format!("installing the session validator: {e}")))?;
    let host = SessionHost::KernelValidator(validator);
    let grant = Granted { owner, session_key, scopes, grant_salt, mint };
    grant.in_module(devnet, &as_owner, account, host, StackError::KernelSetup).await
}

/// `owner`'s Biconomy Smart Account v2 (index 0, the devnet's Biconomy build) holding `mint`
/// USDT, with this project's `BiconomySessionModule` enabled by one owner UserOperation (the
/// owner submits it as its own bundler: a Biconomy account takes no direct owner call), and a
/// session of `session_key` under `scopes` signed by `owner`. The owner gets a little native coin
/// for deploying the account and submitting that op. Window and salt as [`session_account`].
pub async fn biconomy_session_account(
    devnet: &Devnet,
    owner: &PrivateKeySigner,
    session_key: PrivateKeySigner,
    scopes: &Scopes,
    grant_salt: B256,
    mint: U256,
) -> Result<SessionAccount, StackError> {
    let b = devnet.biconomy;
    let deployment = b.deployment();
    let account = deployment.account_address(owner.address(), U256::ZERO);
    devnet.fund(owner.address(), U256::from(10u64.pow(17))).await?;
    let url =
        devnet.rpc_url().parse().map_err(|e| StackError::BiconomySetup(format!("RPC URL: {e}")))?;
    let as_owner = ProviderBuilder::new().wallet(owner.clone()).connect_http(url);
    let init_code = deployment.init_code(owner.address(), U256::ZERO);
    owner::deploy_account(&as_owner, owner.address(), account, &init_code)
        .await
        .map_err(|e| StackError::BiconomySetup(format!("deploying the Biconomy account: {e}")))?;
    owner::install_biconomy_sessions(&as_owner, owner, account, b.session_module, b.ecdsa_module)
        .await
        .map_err(|e| StackError::BiconomySetup(format!("enabling the session module: {e}")))?;
    let host = SessionHost::BiconomyModule(b.session_module);
    let grant = Granted { owner, session_key, scopes, grant_salt, mint };
    grant.in_module(devnet, &as_owner, account, host, StackError::BiconomySetup).await
}

/// `owner`'s 1-of-1 Safe (salt nonce 0, the devnet's Safe 1.4.1, the same Safe its owner payments
/// use) holding `mint` USDT, with this project's `SafeSessionModule` enabled as a module and set
/// as the fallback handler by one owner transaction, and a session of `session_key` under
/// `scopes` signed by `owner` (enabled in-op by the first payment, as a 1-of-1 Safe allows). The
/// owner gets a little native coin for its transactions (deploying the Safe, installing the
/// module). Window and salt as [`session_account`].
pub async fn safe_session_account(
    devnet: &Devnet,
    owner: &PrivateKeySigner,
    session_key: PrivateKeySigner,
    scopes: &Scopes,
    grant_salt: B256,
    mint: U256,
) -> Result<SessionAccount, StackError> {
    let a = devnet.addresses;
    let module = a.safe_session_module;
    let config = SafeConfig::single_owner(owner.address(), U256::ZERO);
    let setup =
        |what: &str, e: &dyn std::fmt::Display| StackError::SafeSetup(format!("{what}: {e}"));
    let account = devnet.safe.account_address(&config).map_err(|e| setup("Safe address", &e))?;
    let init_code = devnet.safe.init_code(&config).map_err(|e| setup("Safe initCode", &e))?;
    devnet.fund(owner.address(), U256::from(10u64.pow(17))).await?;
    let url = devnet.rpc_url().parse().map_err(|e| setup("RPC URL", &e))?;
    let as_owner = ProviderBuilder::new().wallet(owner.clone()).connect_http(url);
    owner::deploy_account(&as_owner, owner.address(), account, &init_code)
        .await
        .map_err(|e| setup("deploying the Safe", &e))?;
    let multi_send = devnet.safe.multi_send_call_only;
    owner::install_safe_sessions(&as_owner, owner.address(), account, module, multi_send)
        .await
        .map_err(|e| setup("installing the session module", &e))?;
    let host = SessionHost::SafeModule(module);
    let grant = Granted { owner, session_key, scopes, grant_salt, mint };
    grant.in_module(devnet, &as_owner, account, host, StackError::SafeSetup).await
}

/// What the module hosts' session accounts share once the account holds the module: the owner's
/// grant of `session_key` under `scopes`, signed at the host's current epoch, and `mint` USDT.
struct Granted<'a> {
    owner: &'a PrivateKeySigner,
    session_key: PrivateKeySigner,
    scopes: &'a Scopes,
    grant_salt: B256,
    mint: U256,
}

impl Granted<'_> {
    /// Funds `account`, signs the grant for the session kept by `host` and writes the session file
    /// naming that host; a failed epoch read is reported through `setup_error`, the host's own
    /// setup error.
    async fn in_module(
        self,
        devnet: &Devnet,
        as_owner: &impl alloy::providers::Provider,
        account: alloy::primitives::Address,
        host: SessionHost,
        setup_error: fn(String) -> StackError,
    ) -> Result<SessionAccount, StackError> {
        let Self { owner, session_key, scopes, grant_salt, mint } = self;
        devnet.mint(account, mint).await?;
        let token = usdt(devnet);
        let now = devnet.block_timestamp().await?;
        let epoch = owner::session_epoch_in(as_owner, host, account)
            .await
            .map_err(|e| setup_error(format!("reading the session epoch: {e}")))?;
        let settlement = devnet.addresses.settlement;
        let grant = scopes.to_grant(
            session_key.address(),
            &token,
            settlement,
            now - 1,
            epoch,
            grant_salt,
        )?;
        let chain_id = devnet.chain_id();
        let (_, signature) = sign_grant(owner, &grant, chain_id, account)?;
        let file = SessionFile::new(
            chain_id,
            account,
            ENTRY_POINT_V06,
            None,
            token,
            owner.address(),
            scopes.merchant_list(),
            &grant,
            signature,
        );
        let file = match host {
            SessionHost::KernelValidator(validator) => file.in_kernel(validator),
            SessionHost::BiconomyModule(module) => file.in_biconomy(module),
            SessionHost::SafeModule(module) => file.in_safe(module),
            SessionHost::Account => file,
        };
        Ok(SessionAccount::new(file, session_key)?)
    }
}
