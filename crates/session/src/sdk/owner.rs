//! The owner's side in one object: grant a session (one signature, no transaction), revoke it (one
//! transaction), read what it has left. Wraps [`crate::owner`], [`Scopes::to_grant`] and
//! [`SessionFile::new`].

use std::path::Path;

use alloy::{
    primitives::{Address, B256, Bytes, TxHash, U256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use x402_aa::accounts::{
    AccountAbi, AccountConfig, AccountKind, KernelSessionAbi,
    biconomy::Deployment,
    safe::{SafeConfig, SafeDeployment},
};
use x402_aa_contracts::EntryPoint;
use x402_aa_policy::SessionHost;

use super::{Network, SdkError, chain, latest_timestamp};
use crate::{
    file::{AccountDeployment, SessionFile, save_session_key},
    owner::{self, OnChainSession},
    scopes::Scopes,
};

/// The session key a grant names.
#[derive(Debug, Clone, Default)]
pub enum SessionKey {
    /// A fresh random key, returned in the [`GrantedSession`] (write it with
    /// [`GrantedSession::save`], mode 0600).
    #[default]
    Generate,
    /// A key the agent generated and sent its address of; the owner never sees the private key.
    Address(Address),
    /// A key the caller holds.
    Key(PrivateKeySigner),
}

/// A signed session: the session file (no secret in it) and, when the SDK generated or was given
/// it, the session's private key, kept apart.
#[derive(Debug, Clone)]
pub struct GrantedSession {
    /// The account contract family the session lives in.
    pub kind: AccountKind,
    /// The session file to hand to the agent (shareable: no private key).
    pub file: SessionFile,
    /// The session's private key, for the agent only; `None` when the grant named only an
    /// address ([`SessionKey::Address`]).
    pub key: Option<PrivateKeySigner>,
}

impl GrantedSession {
    /// Writes the session file and, if this value holds the key, the key file (created 0600,
    /// never widened).
    pub fn save(
        &self,
        session_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<(), SdkError> {
        self.file.save(session_path)?;
        if let Some(key) = &self.key {
            save_session_key(key_path, key)?;
        }
        Ok(())
    }

    /// The account the session pays from: fund it with the token before the agent pays.
    pub fn account(&self) -> Address {
        self.file.account
    }
}

/// An account owner on one network. The owner key signs grants and revocations; it never has to
/// be online while an agent pays.
///
/// ```no_run
/// # async fn run() -> Result<(), x402_aa_session::sdk::SdkError> {
/// use std::time::Duration;
/// use x402_aa_session::sdk::*;
///
/// let owner_key: PrivateKeySigner = std::env::var("OWNER_KEY").unwrap_or_default().parse()
///     .map_err(|_| SdkError::Missing { what: "owner key", hint: "set OWNER_KEY" })?;
/// let owner = SessionOwner::new(owner_key, Network::from_env()?);
/// let scopes = Scopes::new()
///     .spend_cap("10 USDT".parse()?, per_day())
///     .per_payment_max("1 USDT".parse()?)
///     .valid_for(Duration::from_secs(24 * 3600));
/// let session = owner.grant(AccountKind::SessionKeyAccount, &scopes, SessionKey::Generate).await?;
/// session.save("session.json", "session.key")?;
/// // … later, one transaction ends it:
/// owner.revoke(&session.file).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SessionOwner {
    key: PrivateKeySigner,
    network: Network,
    account_salt: U256,
}

impl SessionOwner {
    /// The owner's account is the one its factory deploys for `(owner, salt 0)`; see
    /// [`SessionOwner::account_salt`].
    pub fn new(owner: PrivateKeySigner, network: Network) -> Self {
        Self { key: owner, network, account_salt: U256::ZERO }
    }

    /// Selects another of the owner's accounts (the factory's salt).
    pub fn account_salt(mut self, salt: U256) -> Self {
        self.account_salt = salt;
        self
    }

    /// The owner's own address (the key's), which signs grants and sends revocations.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The network the owner's grants and controls are for.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The owner's account of `kind`: counterfactual (the same address before and after
    /// deployment), as the EntryPoint computes it from the initCode.
    pub async fn account(&self, kind: AccountKind) -> Result<Address, SdkError> {
        let factory = self.network.require_factory(kind)?;
        // SafeProxyFactory reverts for a Safe that exists already, so the EntryPoint cannot be
        // asked once the Safe is deployed (as it is once sessions are installed).
        if kind == AccountKind::Safe {
            return self.safe_address(factory).map(|(account, _)| account);
        }
        let (provider, _) = self.network.connect().await?;
        sender_address(
            &provider,
            self.network.entry_point(),
            kind,
            factory,
            self.address(),
            self.account_salt,
        )
        .await
    }

    /// Signs a session grant for `session_key` under `scopes` in the owner's account of `kind`:
    /// one EIP-712 signature, no transaction. The account may still be undeployed (the session's
    /// first payment deploys it) and must hold the tokens the agent will spend.
    ///
    /// The window starts at the chain's latest block unless `scopes` sets `valid_from`; the grant
    /// names the account's current revocation epoch and a random salt, so each grant is a new
    /// session.
    pub async fn grant(
        &self,
        kind: AccountKind,
        scopes: &Scopes,
        session_key: SessionKey,
    ) -> Result<GrantedSession, SdkError> {
        let (provider, chain_id) = match kind {
            AccountKind::SessionKeyAccount => self.network.connect().await?,
            // A Kernel account gets the validator installed by an owner transaction.
            AccountKind::Kernel => self.network.connect_with(Some(&self.key)).await?,
            // A Biconomy account gets the module installed by an owner UserOperation.
            AccountKind::Biconomy => self.network.connect_with(Some(&self.key)).await?,
            // A Safe gets the module enabled (and set as fallback handler) by an owner
            // transaction.
            AccountKind::Safe => self.network.connect_with(Some(&self.key)).await?,
            kind => return Err(SdkError::UnsupportedAccountKind { kind, role: "session grants" }),
        };
        let factory = self.network.require_factory(kind)?;
        let settlement = self.network.require_settlement()?;
        let entry_point = self.network.entry_point();
        let (token, now) =
            tokio::try_join!(self.network.token_info(&provider), latest_timestamp(&provider))?;
        let (account, host, deployment) = match kind {
            AccountKind::Kernel => {
                let (account, validator, config) = self.kernel_account(factory)?;
                let init_code = KernelSessionAbi::new(validator)
                    .init_code(&config)
                    .map_err(|e| SdkError::Chain(e.to_string()))?;
                owner::deploy_account(&provider, self.address(), account, &init_code).await?;
                owner::install_kernel_sessions(&provider, self.address(), account, validator)
                    .await?;
                (account, SessionHost::KernelValidator(validator), None)
            }
            AccountKind::Biconomy => {
                let (account, module) = self.biconomy_account(factory)?;
                let deployment = Deployment { factory, ..self.network.biconomy_deployment() };
                let init_code = deployment.init_code(self.address(), self.account_salt);
                owner::deploy_account(&provider, self.address(), account, &init_code).await?;
                owner::install_biconomy_sessions(
                    &provider,
                    &self.key,
                    account,
                    module,
                    deployment.ecdsa_module,
                )
                .await?;
                (account, SessionHost::BiconomyModule(module), None)
            }
            AccountKind::Safe => {
                let (account, module, deployment) = self.safe_account(factory)?;
                let config = SafeConfig::single_owner(self.address(), self.account_salt);
                let init_code =
                    deployment.init_code(&config).map_err(|e| SdkError::Chain(e.to_string()))?;
                owner::deploy_account(&provider, self.address(), account, &init_code).await?;
                owner::install_safe_sessions(
                    &provider,
                    self.address(),
                    account,
                    module,
                    deployment.multi_send_call_only,
                )
                .await?;
                (account, SessionHost::SafeModule(module), None)
            }
            _ => {
                let account = sender_address(
                    &provider,
                    entry_point,
                    kind,
                    factory,
                    self.address(),
                    self.account_salt,
                )
                .await?;
                let deployment =
                    AccountDeployment { factory, owner: self.address(), salt: self.account_salt };
                (account, SessionHost::Account, Some(deployment))
            }
        };
        let epoch = owner::session_epoch_in(&provider, host, account).await?;
        let (key, key_address) = match session_key {
            SessionKey::Generate => {
                let key = PrivateKeySigner::random();
                let address = key.address();
                (Some(key), address)
            }
            SessionKey::Address(address) => (None, address),
            SessionKey::Key(key) => {
                let address = key.address();
                (Some(key), address)
            }
        };
        let grant = scopes.to_grant(key_address, &token, settlement, now, epoch, random_salt()?)?;
        let (_, signature) = owner::sign_grant(&self.key, &grant, chain_id, account)?;
        let mut file = SessionFile::new(
            chain_id,
            account,
            entry_point,
            deployment,
            token,
            self.address(),
            scopes.merchant_list(),
            &grant,
            signature,
        );
        if let SessionHost::KernelValidator(validator) = host {
            file = file.in_kernel(validator);
        }
        if let SessionHost::BiconomyModule(module) = host {
            file = file.in_biconomy(module);
        }
        if let SessionHost::SafeModule(module) = host {
            file = file.in_safe(module);
        }
        Ok(GrantedSession { kind, file, key })
    }

    /// Ends `session` with one owner transaction (`revokeSession_ol`; on a Biconomy account the
    /// owner's signed revocation, relayed to the session module by the owner); the agent's next
    /// payment is refused with `session_revoked`. An account not deployed yet is deployed first
    /// (by the owner), so the revocation lands in real storage and a later first payment cannot
    /// enable the session. The owner's address needs gas for these transactions.
    pub async fn revoke(&self, session: &SessionFile) -> Result<TxHash, SdkError> {
        self.check_owner(session.owner)?;
        let (provider, _) = self.network.connect_with(Some(&self.key)).await?;
        self.deploy_if_needed(&provider, session).await?;
        let (host, account, id) = (session.host(), session.account, session.session_id);
        Ok(owner::revoke_in(&provider, host, &self.key, account, id).await?)
    }

    /// Pauses `session` (`paused = true`) or resumes it, with one owner transaction (relayed on
    /// a Biconomy account, like [`SessionOwner::revoke`]): a paused session's payments are refused
    /// with `session_paused`; it keeps its counters and resumes where it stopped.
    pub async fn set_paused(
        &self,
        session: &SessionFile,
        paused: bool,
    ) -> Result<TxHash, SdkError> {
        self.check_owner(session.owner)?;
        let (provider, _) = self.network.connect_with(Some(&self.key)).await?;
        self.deploy_if_needed(&provider, session).await?;
        let (host, account, id) = (session.host(), session.account, session.session_id);
        Ok(owner::set_paused_in(&provider, host, &self.key, account, id, paused).await?)
    }

    /// Ends every session of the owner's account of `kind` (`revokeAllSessions`).
    pub async fn revoke_all(&self, kind: AccountKind) -> Result<TxHash, SdkError> {
        let (provider, _) = self.network.connect_with(Some(&self.key)).await?;
        let factory = self.network.require_factory(kind)?;
        let (account, host) = match kind {
            AccountKind::SessionKeyAccount => {
                let account = sender_address(
                    &provider,
                    self.network.entry_point(),
                    kind,
                    factory,
                    self.address(),
                    self.account_salt,
                )
                .await?;
                (account, SessionHost::Account)
            }
            AccountKind::Kernel => {
                let (account, validator, _) = self.kernel_account(factory)?;
                (account, SessionHost::KernelValidator(validator))
            }
            AccountKind::Biconomy => {
                let (account, module) = self.biconomy_account(factory)?;
                (account, SessionHost::BiconomyModule(module))
            }
            AccountKind::Safe => {
                let (account, module, _) = self.safe_account(factory)?;
                (account, SessionHost::SafeModule(module))
            }
            kind => {
                return Err(SdkError::UnsupportedAccountKind { kind, role: "session revocation" });
            }
        };
        Ok(owner::revoke_all_in(&provider, host, &self.key, account).await?)
    }

    /// A revocation signed now that anyone may submit later ([`crate::owner::relay_revocation`]),
    /// for an owner without gas.
    pub fn signed_revocation(&self, session: &SessionFile) -> Result<Bytes, SdkError> {
        self.check_owner(session.owner)?;
        Ok(owner::signed_revocation(
            &self.key,
            session.session_id,
            session.chain_id,
            session.account,
        )?)
    }

    /// What `session` has spent and has left, and whether it is revoked, from the chain.
    pub async fn status(&self, session: &SessionFile) -> Result<OnChainSession, SdkError> {
        session_status(&self.network, session).await
    }

    /// The owner's Kernel account from `factory`, the network's session validator, and the
    /// account's deployment config.
    fn kernel_account(
        &self,
        factory: Address,
    ) -> Result<(Address, Address, AccountConfig), SdkError> {
        let validator = self.network.kernel_session_validator().ok_or(SdkError::Missing {
            what: "KernelSessionValidator",
            hint: "use Network::with_kernel_session_validator or X402_AA_KERNEL_SESSION_VALIDATOR",
        })?;
        let config = AccountConfig::single_owner(factory, self.address(), self.account_salt);
        let account = KernelSessionAbi::new(validator)
            .counterfactual_address(&config)
            .map_err(|e| SdkError::Chain(e.to_string()))?
            .ok_or(SdkError::CannotDeploy(Address::ZERO))?;
        Ok((account, validator, config))
    }

    /// The owner's Biconomy account from `factory` and the network's session module.
    fn biconomy_account(&self, factory: Address) -> Result<(Address, Address), SdkError> {
        let module = self.network.biconomy_session_module().ok_or(SdkError::Missing {
            what: "BiconomySessionModule",
            hint: "use Network::with_biconomy_session_module or X402_AA_BICONOMY_SESSION_MODULE",
        })?;
        let deployment = Deployment { factory, ..self.network.biconomy_deployment() };
        Ok((deployment.account_address(self.address(), self.account_salt), module))
    }

    /// The owner's 1-of-1 Safe from `factory` (the same Safe its owner payments use, born with
    /// Safe4337Module only), the network's `SafeSessionModule`, and the Safe deployment.
    fn safe_account(
        &self,
        factory: Address,
    ) -> Result<(Address, Address, SafeDeployment), SdkError> {
        let module = self.network.safe_session_module().ok_or(SdkError::Missing {
            what: "SafeSessionModule",
            hint: "use Network::with_safe_session_module or X402_AA_SAFE_SESSION_MODULE",
        })?;
        let (account, deployment) = self.safe_address(factory)?;
        Ok((account, module, deployment))
    }

    /// The owner's 1-of-1 Safe from `factory` and the Safe deployment it belongs to.
    fn safe_address(&self, factory: Address) -> Result<(Address, SafeDeployment), SdkError> {
        let deployment =
            SafeDeployment { proxy_factory: factory, ..self.network.safe_deployment() };
        let config = SafeConfig::single_owner(self.address(), self.account_salt);
        let account =
            deployment.account_address(&config).map_err(|e| SdkError::Chain(e.to_string()))?;
        Ok((account, deployment))
    }

    fn check_owner(&self, owner: Address) -> Result<(), SdkError> {
        if owner != self.address() {
            return Err(SdkError::NotOwner { key: self.address(), owner });
        }
        Ok(())
    }

    async fn deploy_if_needed(
        &self,
        provider: &DynProvider,
        session: &SessionFile,
    ) -> Result<(), SdkError> {
        if !provider.get_code_at(session.account).await.map_err(chain)?.is_empty() {
            return Ok(());
        }
        let d = session.deployment.as_ref().ok_or(SdkError::CannotDeploy(session.account))?;
        // initCode is `factory ‖ calldata`: the same call the EntryPoint would make.
        let config = AccountConfig::single_owner(d.factory, d.owner, d.salt);
        let init_code = AccountKind::SessionKeyAccount
            .abi()
            .init_code(&config)
            .map_err(|e| SdkError::Chain(e.to_string()))?;
        owner::deploy_account(provider, self.address(), session.account, &init_code).await?;
        Ok(())
    }
}

/// What `session` has spent and has left on-chain, read through `network`'s RPC (anyone may ask:
/// the agent, an operator, an auditor).
pub async fn session_status(
    network: &Network,
    session: &SessionFile,
) -> Result<OnChainSession, SdkError> {
    let (provider, chain_id) = network.connect().await?;
    if chain_id != session.chain_id {
        return Err(SdkError::WrongChain {
            expected: session.chain_id,
            got: chain_id,
            rpc_url: network.rpc_url().unwrap_or_default().to_owned(),
        });
    }
    let now = latest_timestamp(&provider).await?;
    let grant = session.grant()?;
    Ok(owner::remaining_in(&provider, session.host(), chain_id, session.account, &grant, now)
        .await?)
}

/// The account `factory` deploys for `(owner, salt)` as a `kind` account, asked of the EntryPoint
/// (`getSenderAddress` runs the initCode and reverts with the address), so it holds for every
/// kind and factory without knowing their address formulas.
pub async fn sender_address(
    provider: &DynProvider,
    entry_point: Address,
    kind: AccountKind,
    factory: Address,
    owner: Address,
    salt: U256,
) -> Result<Address, SdkError> {
    let config = AccountConfig::single_owner(factory, owner, salt);
    let init_code = kind.abi().init_code(&config).map_err(|e| SdkError::Chain(e.to_string()))?;
    let ep = EntryPoint::new(entry_point, provider);
    match ep.getSenderAddress(init_code).call().await {
        Ok(_) => Err(SdkError::Chain(format!(
            "EntryPoint {entry_point} returned no SenderAddressResult (is it an EntryPoint v0.6?)"
        ))),
        Err(e) => match e.as_decoded_error::<EntryPoint::SenderAddressResult>() {
            Some(result) if result.sender != Address::ZERO => Ok(result.sender),
            _ => Err(SdkError::Chain(format!(
                "factory {factory} does not deploy a {kind} account for {owner}: {e}"
            ))),
        },
    }
}

fn random_salt() -> Result<B256, SdkError> {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| SdkError::Randomness(e.to_string()))?;
    Ok(B256::from(salt))
}
