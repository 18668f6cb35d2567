//! Owner-side operations: sign a grant, revoke (one transaction, or a signature anyone may relay),
//! and read what a session has left from the chain.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, TxHash, U256},
    providers::{PendingTransactionError, Provider},
    rpc::types::TransactionRequest,
    signers::SignerSync,
    sol_types::SolCall,
};
use alloy::{primitives::aliases::U192, signers::local::PrivateKeySigner};
use std::time::Duration;
use x402_aa::{
    ENTRY_POINT_V06, UserOperation,
    accounts::{
        biconomy,
        kernel::{self, IKernel},
        safe::{
            IMultiSend, ISafe, MultiSendTx, Operation, encode_multi_send,
            session::{self as safe_session, ISafeAdmin, ISafeExec},
        },
    },
    user_op_hash,
};
use x402_aa_contracts::EntryPoint;
use x402_aa_contracts::{
    BiconomySessionModule, KernelSessionValidator, SafeSessionModule, SessionKeyAccount,
};

use x402_aa_policy::{SessionHost, SessionStatus as ChainStatus, read_usage_in};

use crate::grant::{GrantWindow, SessionGrant, revoke_all_digest, revoke_digest, session_id};

/// Why an owner control (grant, revoke, pause, install, deploy) did not take effect. Each variant
/// says whether anything reached the chain, so the owner knows whether to retry or check first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OwnerError {
    /// The owner key failed to sign (grant, relayed control or owner op); nothing was sent.
    #[error("signing failed: {0}")]
    Sign(#[from] alloy::signers::Error),
    /// A chain read or the transaction's submission failed (endpoint down, wallet cannot sign
    /// for the sender); holds the cause. Whether a submitted transaction landed is unknown: read
    /// the session's status before sending again.
    #[error("rpc: {0}")]
    Rpc(String),
    /// Mined, but reverted (state changed between the estimate and the block); the gas is spent
    /// and nothing else changed. Holds the transaction hash.
    #[error("transaction {0} reverted")]
    Reverted(TxHash),
    /// The chain's simulation of the control reverted: nothing was sent and no nonce was spent.
    #[error("the chain refuses the transaction: {0}")]
    WouldRevert(String),
    /// Sent, but no receipt arrived in time: the control may still land; read the session's
    /// status before sending it again.
    #[error("transaction {0} sent but not mined within {RECEIPT_TIMEOUT:?}")]
    NotMined(TxHash),
    /// A call to an address without code "succeeds" and does nothing: a counterfactual account must
    /// be deployed before a revocation can mean anything.
    #[error("account {0} is not deployed yet; deploy it first, or the revocation would do nothing")]
    NotDeployed(Address),
    /// The factory call succeeded but left no code at the account: a factory of another
    /// deployment, or none deployed on this chain.
    #[error("factory {factory} did not deploy account {account}")]
    FactoryDidNotDeploy {
        /// The factory the initCode names.
        factory: Address,
        /// The account that still has no code.
        account: Address,
    },
    /// The initCode is shorter than the 20-byte factory address it must start with; holds its
    /// length in bytes. Nothing was sent.
    #[error("initCode is {0} bytes; it starts with the 20-byte factory address")]
    BadInitCode(usize),
    /// Biconomy accounts accept calls from the EntryPoint only: the owner's control is an
    /// owner-signed message relayed to `module`, so it needs the owner's key, not only its address.
    #[error(
        "a Biconomy account takes no direct owner call: its session module {module} takes an \
         owner-signed control instead, so pass the owner's key (not only its address)"
    )]
    NoDirectOwnerCall {
        /// The Biconomy session module the control must be relayed to.
        module: Address,
    },
    /// The owner's direct transaction to a Safe carries its "pre-validated" signature, which
    /// alone meets a threshold of one only: other Safes install and control sessions with
    /// Safe transactions or owner ops signed at their threshold.
    #[error(
        "Safe {account} needs {threshold} owner signatures; the owner key alone can send only \
         to a Safe of threshold 1"
    )]
    SafeThreshold {
        /// The Safe.
        account: Address,
        /// Its `getThreshold()`.
        threshold: U256,
    },
}

impl OwnerError {
    /// The stable machine-readable reason (`rpc_error`, `transaction_reverted`, …) for callers
    /// that branch on the outcome or show it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Sign(_) => "signing_failed",
            Self::Rpc(_) => "rpc_error",
            Self::Reverted(_) | Self::WouldRevert(_) => "transaction_reverted",
            Self::NotMined(_) => "transaction_not_mined",
            Self::NotDeployed(_) | Self::FactoryDidNotDeploy { .. } => "account_not_deployed",
            Self::BadInitCode(_) => "invalid_init_code",
            Self::NoDirectOwnerCall { .. } | Self::SafeThreshold { .. } => {
                "owner_call_not_supported"
            }
        }
    }
}

fn rpc(e: impl std::fmt::Display) -> OwnerError {
    OwnerError::Rpc(e.to_string())
}

/// How long an owner control waits for its receipt before answering [`OwnerError::NotMined`].
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Estimates, then sends `tx` and waits (bounded) for a successful receipt.
///
/// The estimate comes first and on its own because a provider's nonce filler may take a nonce
/// while its gas filler fails on a reverting call: with a caching nonce manager that leaves a gap,
/// and every later transaction from the same address waits behind it forever. Estimating before
/// any filler runs turns a control the chain would refuse into [`OwnerError::WouldRevert`] with
/// no nonce consumed.
pub async fn transact<P: Provider>(
    provider: &P,
    tx: TransactionRequest,
) -> Result<TxHash, OwnerError> {
    let gas = provider
        .estimate_gas(tx.clone())
        .await
        .map_err(|e| OwnerError::WouldRevert(e.to_string()))?;
    let pending = provider.send_transaction(tx.with_gas_limit(gas)).await.map_err(rpc)?;
    let hash = *pending.tx_hash();
    let receipt = match pending.with_timeout(Some(RECEIPT_TIMEOUT)).get_receipt().await {
        Ok(receipt) => receipt,
        Err(PendingTransactionError::TxWatcher(_)) => {
            return Err(OwnerError::NotMined(hash));
        }
        Err(e) => return Err(rpc(e)),
    };
    if !receipt.status() {
        return Err(OwnerError::Reverted(receipt.transaction_hash));
    }
    Ok(receipt.transaction_hash)
}

/// Who performs an owner control: the owner's address, whose transactions the provider's wallet
/// signs, or the owner's key itself. Most hosts take a direct owner transaction and need only the
/// address; a Biconomy account takes none, so its controls are owner-signed messages relayed to
/// the session module, and those need the key. Both convert with `.into()`, so callers pass
/// `owner_key.address()` or `&owner_key`.
#[derive(Debug, Clone, Copy)]
pub enum OwnerRef<'a> {
    /// The owner's address; the provider's wallet must sign transactions for it.
    Address(Address),
    /// The owner's key: signs relayed controls, and sends every transaction from its address
    /// (the provider's wallet must sign for it).
    Key(&'a PrivateKeySigner),
}

impl OwnerRef<'_> {
    /// The address the owner's transactions are sent from.
    pub fn address(&self) -> Address {
        match self {
            Self::Address(address) => *address,
            Self::Key(key) => key.address(),
        }
    }
}

impl From<Address> for OwnerRef<'_> {
    fn from(address: Address) -> Self {
        Self::Address(address)
    }
}

impl<'a> From<&'a PrivateKeySigner> for OwnerRef<'a> {
    fn from(key: &'a PrivateKeySigner) -> Self {
        Self::Key(key)
    }
}

/// The owner's key for a Biconomy control, which is always relayed (see [`OwnerRef`]).
fn relay_key<'a>(owner: OwnerRef<'a>, module: Address) -> Result<&'a PrivateKeySigner, OwnerError> {
    match owner {
        OwnerRef::Key(key) => Ok(key),
        OwnerRef::Address(_) => Err(OwnerError::NoDirectOwnerCall { module }),
    }
}

/// The owner's EIP-712 signature on `grant` for `account` on `chain_id`: the one signature a session
/// needs. Returns `(session id, signature)`.
pub fn sign_grant(
    owner: &impl SignerSync,
    grant: &SessionGrant,
    chain_id: u64,
    account: Address,
) -> Result<(B256, Bytes), OwnerError> {
    let id = session_id(grant, chain_id, account);
    Ok((id, owner.sign_hash_sync(&id)?.as_bytes().into()))
}

/// A revocation anyone may submit with [`relay_revocation`]: useful when the owner holds no gas.
pub fn signed_revocation(
    owner: &impl SignerSync,
    session: B256,
    chain_id: u64,
    account: Address,
) -> Result<Bytes, OwnerError> {
    Ok(owner.sign_hash_sync(&revoke_digest(session, chain_id, account))?.as_bytes().into())
}

/// Revoke-all by signature; single use, it names the epoch it ends.
pub fn signed_revocation_of_all(
    owner: &impl SignerSync,
    epoch: u32,
    chain_id: u64,
    account: Address,
) -> Result<Bytes, OwnerError> {
    Ok(owner.sign_hash_sync(&revoke_all_digest(epoch, chain_id, account))?.as_bytes().into())
}

/// Deploys `account` from `from` with the factory call its `init_code` (`factory ‖ calldata`,
/// what the EntryPoint would run) makes, unless it has code already; returns the transaction if
/// one was sent. The account must have code afterwards.
pub async fn deploy_account<P: Provider>(
    provider: &P,
    from: Address,
    account: Address,
    init_code: &[u8],
) -> Result<Option<TxHash>, OwnerError> {
    if !provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
        return Ok(None);
    }
    let (factory, call) =
        init_code.split_at_checked(20).ok_or(OwnerError::BadInitCode(init_code.len()))?;
    let factory = Address::from_slice(factory);
    let tx =
        TransactionRequest::default().with_from(from).with_to(factory).with_input(call.to_vec());
    let hash = transact(provider, tx).await?;
    if provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
        return Err(OwnerError::FactoryDidNotDeploy { factory, account });
    }
    Ok(Some(hash))
}

/// Sends an owner control: for a Safe host, only after checking that the owner's pre-validated
/// signature can meet the Safe's threshold (a clear error instead of a reverted transaction).
async fn send_control<P: Provider>(
    provider: &P,
    host: SessionHost,
    from: Address,
    account: Address,
    input: Vec<u8>,
) -> Result<TxHash, OwnerError> {
    if let SessionHost::SafeModule(_) = host
        && !provider.get_code_at(account).await.map_err(rpc)?.is_empty()
    {
        let threshold = safe_threshold(provider, account).await?;
        if threshold != U256::from(1) {
            return Err(OwnerError::SafeThreshold { account, threshold });
        }
    }
    send(provider, from, account, input).await
}

async fn send<P: Provider>(
    provider: &P,
    from: Address,
    account: Address,
    input: Vec<u8>,
) -> Result<TxHash, OwnerError> {
    send_to(provider, from, account, account, input).await
}

/// Sends `input` to `to` (the account itself, or the module keeping its sessions) once `account`
/// has code: a control for an undeployed account would do nothing.
async fn send_to<P: Provider>(
    provider: &P,
    from: Address,
    account: Address,
    to: Address,
    input: Vec<u8>,
) -> Result<TxHash, OwnerError> {
    if provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
        return Err(OwnerError::NotDeployed(account));
    }
    let tx = TransactionRequest::default().with_from(from).with_to(to).with_input(input);
    transact(provider, tx).await
}

/// The owner's transaction input for a session control: the account's own function
/// (SessionKeyAccount), or the validator's through Kernel's `execute`, which Kernel lets the
/// owner key call directly and which calls the validator as the account, or (Safe) the module's
/// same-ABI call made by the Safe on itself through `execTransaction` with the owner's
/// pre-validated signature (threshold-1 Safes; the module acts only on the Safe's self-calls).
///
/// A Biconomy account takes calls only from the EntryPoint (or itself): its owner's controls are
/// relayed signatures instead ([`revoke_in`] and the others route them), never built here.
fn control(
    host: SessionHost,
    owner: Address,
    account: Address,
    account_call: Vec<u8>,
    validator_call: Vec<u8>,
) -> Result<Vec<u8>, OwnerError> {
    match host {
        SessionHost::Account => Ok(account_call),
        SessionHost::KernelValidator(validator) => {
            Ok(kernel::encode_execute(validator, U256::ZERO, validator_call.into()).to_vec())
        }
        SessionHost::SafeModule(_) => {
            Ok(safe_session::owner_transaction(account, owner, validator_call).to_vec())
        }
        SessionHost::BiconomyModule(module) => Err(OwnerError::NoDirectOwnerCall { module }),
    }
}

/// `revokeSession_ol(id)` sent by the owner (the provider's wallet must sign for `owner`).
pub async fn revoke<P: Provider>(
    provider: &P,
    owner: Address,
    account: Address,
    session: B256,
) -> Result<TxHash, OwnerError> {
    revoke_in(provider, SessionHost::Account, owner, account, session).await
}

/// [`revoke`] of a session kept by `host`: one owner transaction either way. On a Biconomy
/// account the transaction relays the owner's signed revocation to the module, so `owner` must
/// be the key ([`OwnerRef::Key`]).
pub async fn revoke_in<'a, P: Provider>(
    provider: &P,
    host: SessionHost,
    owner: impl Into<OwnerRef<'a>>,
    account: Address,
    session: B256,
) -> Result<TxHash, OwnerError> {
    let owner = owner.into();
    if let SessionHost::BiconomyModule(module) = host {
        let key = relay_key(owner, module)?;
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        let signature = signed_revocation(key, session, chain_id, account)?;
        return relay_revocation_in(provider, host, key.address(), account, session, signature)
            .await;
    }
    let owner = owner.address();
    let input = control(
        host,
        owner,
        account,
        SessionKeyAccount::revokeSession_olCall { id: session }.abi_encode(),
        KernelSessionValidator::revokeCall { id: session }.abi_encode(),
    )?;
    send_control(provider, host, owner, account, input).await
}

/// `revokeAllSessions()` sent by the owner.
pub async fn revoke_all<P: Provider>(
    provider: &P,
    owner: Address,
    account: Address,
) -> Result<TxHash, OwnerError> {
    revoke_all_in(provider, SessionHost::Account, owner, account).await
}

/// [`revoke_all`] of the sessions `host` keeps for `account`. On a Biconomy account the owner's
/// signed revoke-all of the current epoch is relayed to the module (`owner` must be the key).
pub async fn revoke_all_in<'a, P: Provider>(
    provider: &P,
    host: SessionHost,
    owner: impl Into<OwnerRef<'a>>,
    account: Address,
) -> Result<TxHash, OwnerError> {
    let owner = owner.into();
    if let SessionHost::BiconomyModule(module) = host {
        let key = relay_key(owner, module)?;
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        if provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
            return Err(OwnerError::NotDeployed(account));
        }
        let epoch = session_epoch_in(provider, host, account).await?;
        let signature = signed_revocation_of_all(key, epoch, chain_id, account)?;
        return relay_revocation_of_all_in(
            provider,
            host,
            key.address(),
            account,
            epoch,
            signature,
        )
        .await;
    }
    let owner = owner.address();
    let input = control(
        host,
        owner,
        account,
        SessionKeyAccount::revokeAllSessionsCall {}.abi_encode(),
        KernelSessionValidator::revokeAllCall {}.abi_encode(),
    )?;
    send_control(provider, host, owner, account, input).await
}

/// Installs this project's `KernelSessionValidator` in the owner's deployed Kernel account (one
/// owner transaction; nothing is sent when it is installed already). Returns the transaction,
/// if one was needed.
pub async fn install_kernel_sessions<P: Provider>(
    provider: &P,
    owner: Address,
    account: Address,
    validator: Address,
) -> Result<Option<TxHash>, OwnerError> {
    if !provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
        let query = IKernel::getExecutionCall {
            _selector: x402_aa::accounts::session_payment::SESSION_PAYMENT_SELECTOR.into(),
        };
        let tx = TransactionRequest::default().with_to(account).with_input(query.abi_encode());
        let answer = provider.call(tx).await.map_err(rpc)?;
        let installed = IKernel::getExecutionCall::abi_decode_returns(&answer).map_err(rpc)?;
        if installed.validator == validator && installed.executor == validator {
            return Ok(None);
        }
    }
    let input = kernel::install_session_validator_call(account, validator).to_vec();
    send(provider, owner, account, input).await.map(Some)
}

/// Installs this project's `BiconomySessionModule` in the owner's deployed Biconomy account
/// (nothing is sent when it is enabled already). A Biconomy account takes calls only from the
/// EntryPoint, so the owner signs a UserOperation (`setupAndEnableModule(module,
/// initForSmartAccount())`, validated by `ecdsa_module`) and submits it with `handleOps` as its own
/// bundler and beneficiary. The op's fees are zero: the owner pays the transaction's gas and the
/// account pays nothing. Returns the transaction, if one was needed.
pub async fn install_biconomy_sessions<P: Provider>(
    provider: &P,
    owner: &PrivateKeySigner,
    account: Address,
    module: Address,
    ecdsa_module: Address,
) -> Result<Option<TxHash>, OwnerError> {
    if provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
        return Err(OwnerError::NotDeployed(account));
    }
    if biconomy_module_enabled(provider, account, module).await? {
        return Ok(None);
    }
    let chain_id = provider.get_chain_id().await.map_err(rpc)?;
    let entry_point = EntryPoint::new(ENTRY_POINT_V06, provider);
    let nonce = entry_point.getNonce(account, U192::ZERO).call().await.map_err(rpc)?;
    let mut op = UserOperation {
        sender: account,
        nonce,
        call_data: biconomy::install_session_module_call(module),
        call_gas_limit: U256::from(200_000),
        verification_gas_limit: U256::from(150_000),
        pre_verification_gas: U256::from(50_000),
        ..Default::default()
    };
    let hash = user_op_hash(&op, ENTRY_POINT_V06, chain_id);
    let signature = owner.sign_message_sync(hash.as_slice())?;
    op.signature = biconomy::encode_signature(&signature.as_bytes(), ecdsa_module);
    let call = EntryPoint::handleOpsCall { ops: vec![op.into()], beneficiary: owner.address() };
    let hash = send(provider, owner.address(), ENTRY_POINT_V06, call.abi_encode()).await?;
    // handleOps succeeds even when the op's execution reverts: the module must be enabled now.
    if !biconomy_module_enabled(provider, account, module).await? {
        return Err(OwnerError::Reverted(hash));
    }
    Ok(Some(hash))
}

/// The storage slot where Safe 1.4.1 keeps its fallback handler
/// (`keccak256("fallback_manager.handler.address")`).
const SAFE_FALLBACK_HANDLER_SLOT: B256 =
    alloy::primitives::b256!("0x6c9a6c4a39284e37ed1cf53d337577d14212a4870fb976a4366c693b939918d5");

/// Installs this project's `SafeSessionModule` in the owner's deployed **threshold-1** Safe:
/// `enableModule(module)` and `setFallbackHandler(module)`, together, as the Safe calling itself
/// twice inside one delegatecall to `multi_send_call_only`, sent by the owner as
/// `execTransaction` with its pre-validated signature (no hash to sign; the owner pays the gas).
/// Safe4337Module stays enabled: the module forwards owner ops to it. Nothing is sent when both
/// are in place already; only the missing half is when one is. Returns the transaction, if one
/// was needed.
pub async fn install_safe_sessions<P: Provider>(
    provider: &P,
    owner: Address,
    account: Address,
    module: Address,
    multi_send_call_only: Address,
) -> Result<Option<TxHash>, OwnerError> {
    if provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
        return Err(OwnerError::NotDeployed(account));
    }
    let (enabled, handler) = safe_session_parts(provider, account, module).await?;
    if enabled && handler {
        return Ok(None);
    }
    let threshold = safe_threshold(provider, account).await?;
    if threshold != U256::from(1) {
        return Err(OwnerError::SafeThreshold { account, threshold });
    }
    let call = |data: Vec<u8>| MultiSendTx {
        operation: Operation::Call,
        to: account,
        value: U256::ZERO,
        data: data.into(),
    };
    let mut calls = Vec::new();
    if !enabled {
        calls.push(call(ISafeAdmin::enableModuleCall { module }.abi_encode()));
    }
    if !handler {
        calls.push(call(ISafeAdmin::setFallbackHandlerCall { handler: module }.abi_encode()));
    }
    let transactions = encode_multi_send(&calls);
    let input = ISafeExec::execTransactionCall {
        to: multi_send_call_only,
        value: U256::ZERO,
        data: IMultiSend::multiSendCall { transactions }.abi_encode().into(),
        operation: Operation::DelegateCall as u8,
        safeTxGas: U256::ZERO,
        baseGas: U256::ZERO,
        gasPrice: U256::ZERO,
        gasToken: Address::ZERO,
        refundReceiver: Address::ZERO,
        signatures: pre_validated(owner),
    };
    let hash = send(provider, owner, account, input.abi_encode()).await?;
    // The transaction's success is execTransaction's; what counts is the Safe's state after it.
    if safe_session_parts(provider, account, module).await? != (true, true) {
        return Err(OwnerError::Reverted(hash));
    }
    Ok(Some(hash))
}

/// Safe's "pre-validated" signature for `owner` (`r` = owner, `s` = 0, `v` = 1): valid when
/// `owner` itself sends the `execTransaction`.
fn pre_validated(owner: Address) -> Bytes {
    let mut signature = owner.into_word().to_vec();
    signature.extend([0u8; 32]);
    signature.push(1);
    signature.into()
}

/// Whether `module` is enabled in the Safe, and whether it is the Safe's fallback handler.
async fn safe_session_parts<P: Provider>(
    provider: &P,
    account: Address,
    module: Address,
) -> Result<(bool, bool), OwnerError> {
    let query = ISafe::isModuleEnabledCall { module };
    let tx = TransactionRequest::default().with_to(account).with_input(query.abi_encode());
    let answer = provider.call(tx).await.map_err(rpc)?;
    let enabled = ISafe::isModuleEnabledCall::abi_decode_returns(&answer).map_err(rpc)?;
    let word =
        provider.get_storage_at(account, SAFE_FALLBACK_HANDLER_SLOT.into()).await.map_err(rpc)?;
    let handler = B256::from(word) == module.into_word();
    Ok((enabled, handler))
}

async fn safe_threshold<P: Provider>(provider: &P, account: Address) -> Result<U256, OwnerError> {
    let query = ISafe::getThresholdCall {};
    let tx = TransactionRequest::default().with_to(account).with_input(query.abi_encode());
    let answer = provider.call(tx).await.map_err(rpc)?;
    ISafe::getThresholdCall::abi_decode_returns(&answer).map_err(rpc)
}

async fn biconomy_module_enabled<P: Provider>(
    provider: &P,
    account: Address,
    module: Address,
) -> Result<bool, OwnerError> {
    let query = biconomy::isModuleEnabledCall { module };
    let tx = TransactionRequest::default().with_to(account).with_input(query.abi_encode());
    let answer = provider.call(tx).await.map_err(rpc)?;
    biconomy::isModuleEnabledCall::abi_decode_returns(&answer).map_err(rpc)
}

/// `pauseSession(id)` (`paused = true`) or `resumeSession(id)` sent by the owner: the session stops
/// paying, keeps its counters, and resumes where it stopped.
pub async fn set_paused<P: Provider>(
    provider: &P,
    owner: Address,
    account: Address,
    session: B256,
    paused: bool,
) -> Result<TxHash, OwnerError> {
    set_paused_in(provider, SessionHost::Account, owner, account, session, paused).await
}

/// [`set_paused`] of a session kept by `host`. On a Biconomy account the owner's signed pause
/// (or resume), naming the session's current pause nonce, is relayed to the module (`owner` must
/// be the key).
pub async fn set_paused_in<'a, P: Provider>(
    provider: &P,
    host: SessionHost,
    owner: impl Into<OwnerRef<'a>>,
    account: Address,
    session: B256,
    paused: bool,
) -> Result<TxHash, OwnerError> {
    let owner = owner.into();
    if let SessionHost::BiconomyModule(module) = host {
        let key = relay_key(owner, module)?;
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        if provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
            return Err(OwnerError::NotDeployed(account));
        }
        let nonce = BiconomySessionModule::new(module, provider)
            .sessionGasState(account, session)
            .call()
            .await
            .map_err(rpc)?
            .pauseNonce;
        let signature = signed_pause(key, session, paused, nonce, chain_id, account)?;
        return relay_pause_in(
            provider,
            host,
            key.address(),
            account,
            session,
            paused,
            nonce,
            signature,
        )
        .await;
    }
    let owner = owner.address();
    let account_call = if paused {
        SessionKeyAccount::pauseSessionCall { id: session }.abi_encode()
    } else {
        SessionKeyAccount::resumeSessionCall { id: session }.abi_encode()
    };
    let validator_call = KernelSessionValidator::setPausedCall { id: session, paused }.abi_encode();
    let input = control(host, owner, account, account_call, validator_call)?;
    send_control(provider, host, owner, account, input).await
}

/// A pause or resume anyone may submit with [`relay_pause`]; `nonce` is the session's pause nonce
/// (`sessionGasState(id).pauseNonce`), so the signature is single use.
pub fn signed_pause(
    owner: &impl SignerSync,
    session: B256,
    paused: bool,
    nonce: u32,
    chain_id: u64,
    account: Address,
) -> Result<Bytes, OwnerError> {
    let digest = crate::grant::pause_digest(session, paused, nonce, chain_id, account);
    Ok(owner.sign_hash_sync(&digest)?.as_bytes().into())
}

/// Submits an owner-signed pause or resume from any funded address.
pub async fn relay_pause<P: Provider>(
    provider: &P,
    relayer: Address,
    account: Address,
    session: B256,
    paused: bool,
    nonce: u32,
    owner_signature: Bytes,
) -> Result<TxHash, OwnerError> {
    relay_pause_in(
        provider,
        SessionHost::Account,
        relayer,
        account,
        session,
        paused,
        nonce,
        owner_signature,
    )
    .await
}

/// [`relay_pause`] of a session kept by `host`: the account's own function, or the module's,
/// which names the account first (every module host has the same relayed controls).
#[allow(
    clippy::too_many_arguments,
    reason = "the relayed call's own fields, plus where to send it"
)]
pub async fn relay_pause_in<P: Provider>(
    provider: &P,
    host: SessionHost,
    relayer: Address,
    account: Address,
    session: B256,
    paused: bool,
    nonce: u32,
    owner_signature: Bytes,
) -> Result<TxHash, OwnerError> {
    let (to, input) = match host.module() {
        None => (
            account,
            SessionKeyAccount::setPausedWithSignatureCall {
                id: session,
                paused,
                nonce,
                ownerSignature: owner_signature,
            }
            .abi_encode(),
        ),
        Some(module) => (
            module,
            BiconomySessionModule::setPausedWithSignatureCall {
                account,
                id: session,
                paused,
                nonce,
                ownerSignature: owner_signature,
            }
            .abi_encode(),
        ),
    };
    send_to(provider, relayer, account, to, input).await
}

/// Submits an owner-signed revocation from any funded address.
pub async fn relay_revocation<P: Provider>(
    provider: &P,
    relayer: Address,
    account: Address,
    session: B256,
    owner_signature: Bytes,
) -> Result<TxHash, OwnerError> {
    relay_revocation_in(provider, SessionHost::Account, relayer, account, session, owner_signature)
        .await
}

/// [`relay_revocation`] of a session kept by `host`.
pub async fn relay_revocation_in<P: Provider>(
    provider: &P,
    host: SessionHost,
    relayer: Address,
    account: Address,
    session: B256,
    owner_signature: Bytes,
) -> Result<TxHash, OwnerError> {
    let (to, input) = match host.module() {
        None => (
            account,
            SessionKeyAccount::revokeWithSignatureCall {
                id: session,
                ownerSignature: owner_signature,
            }
            .abi_encode(),
        ),
        Some(module) => (
            module,
            BiconomySessionModule::revokeWithSignatureCall {
                account,
                id: session,
                ownerSignature: owner_signature,
            }
            .abi_encode(),
        ),
    };
    send_to(provider, relayer, account, to, input).await
}

/// Submits an owner-signed revoke-all ([`signed_revocation_of_all`] of `epoch`) of the sessions
/// `host` keeps for `account`, from any funded address.
pub async fn relay_revocation_of_all_in<P: Provider>(
    provider: &P,
    host: SessionHost,
    relayer: Address,
    account: Address,
    epoch: u32,
    owner_signature: Bytes,
) -> Result<TxHash, OwnerError> {
    let (to, input) = match host.module() {
        None => (
            account,
            SessionKeyAccount::revokeAllWithSignatureCall {
                epoch,
                ownerSignature: owner_signature,
            }
            .abi_encode(),
        ),
        Some(module) => (
            module,
            BiconomySessionModule::revokeAllWithSignatureCall {
                account,
                epoch,
                ownerSignature: owner_signature,
            }
            .abi_encode(),
        ),
    };
    send_to(provider, relayer, account, to, input).await
}

/// The account's `sessionEpoch()`, 0 for an account not deployed yet (its epoch will start at 0).
pub async fn session_epoch<P: Provider>(provider: &P, account: Address) -> Result<u32, OwnerError> {
    session_epoch_in(provider, SessionHost::Account, account).await
}

/// [`session_epoch`] as `host` keeps it.
pub async fn session_epoch_in<P: Provider>(
    provider: &P,
    host: SessionHost,
    account: Address,
) -> Result<u32, OwnerError> {
    if provider.get_code_at(account).await.map_err(rpc)?.is_empty() {
        return Ok(0);
    }
    match host {
        SessionHost::Account => {
            SessionKeyAccount::new(account, provider).sessionEpoch().call().await.map_err(rpc)
        }
        SessionHost::KernelValidator(validator) | SessionHost::BiconomyModule(validator) => {
            KernelSessionValidator::new(validator, provider)
                .sessionEpoch(account)
                .call()
                .await
                .map_err(rpc)
        }
        SessionHost::SafeModule(module) => {
            SafeSessionModule::new(module, provider).sessionEpoch(account).call().await.map_err(rpc)
        }
    }
}

/// Where a session stands on-chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Granted but not used yet (or the account is not deployed).
    NotEnabled,
    /// Enabled by its first op and able to pay within its caps.
    Enabled,
    /// Revoked by the owner, this session alone: final, the grant can never pay again.
    Revoked,
    /// Revoked by `revokeAllSessions` (the grant's epoch is no longer the account's).
    RevokedAll,
    /// Paused by the owner; pays again once resumed.
    Paused,
}

/// The chain's view of a session: the spent counters, and what is left now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnChainSession {
    /// Whether the session can pay at all; revocation wins over a pause.
    pub status: SessionStatus,
    /// Period the stored counter belongs to.
    pub period_index: u32,
    /// Spent in the stored period `period_index` (token atomic units); a later period starts at 0.
    pub period_spent: U256,
    /// Spent over the session's life (token atomic units).
    pub lifetime_spent: U256,
    /// Left in the period containing `now`, never more than `lifetime_remaining` (0 outside the
    /// grant window, or when revoked or paused).
    pub period_remaining: U256,
    /// The lifetime cap minus what was spent (0 when revoked or paused).
    pub lifetime_remaining: U256,
    /// Payments made in the stored period.
    pub payments_in_period: u32,
    /// Self-paid gas charged so far, in wei.
    pub gas_lifetime_spent: U256,
    /// The pause nonce a signed pause or resume must name.
    pub pause_nonce: u32,
}

/// Reads `sessionState(id)` and `sessionEpoch()` and works out what `grant` may still spend at `now`.
pub async fn remaining<P: Provider>(
    provider: &P,
    chain_id: u64,
    account: Address,
    grant: &SessionGrant,
    now: u64,
) -> Result<OnChainSession, OwnerError> {
    remaining_in(provider, SessionHost::Account, chain_id, account, grant, now).await
}

/// [`remaining`] for a session kept by `host`.
pub async fn remaining_in<P: Provider>(
    provider: &P,
    host: SessionHost,
    chain_id: u64,
    account: Address,
    grant: &SessionGrant,
    now: u64,
) -> Result<OnChainSession, OwnerError> {
    let id = session_id(grant, chain_id, account);
    let deployed = !provider.get_code_at(account).await.map_err(rpc)?.is_empty();
    let usage =
        read_usage_in(provider, host, account, id, Address::ZERO, deployed).await.map_err(rpc)?;
    let pause_nonce = match (deployed, host) {
        (false, _) => 0,
        (true, SessionHost::Account) => {
            SessionKeyAccount::new(account, provider)
                .sessionGasState(id)
                .call()
                .await
                .map_err(rpc)?
                .pauseNonce
        }
        // BiconomySessionModule's views are KernelSessionValidator's.
        (
            true,
            SessionHost::KernelValidator(validator) | SessionHost::BiconomyModule(validator),
        ) => {
            KernelSessionValidator::new(validator, provider)
                .sessionGasState(account, id)
                .call()
                .await
                .map_err(rpc)?
                .pauseNonce
        }
        (true, SessionHost::SafeModule(module)) => {
            SafeSessionModule::new(module, provider)
                .sessionGasState(account, id)
                .call()
                .await
                .map_err(rpc)?
                .pauseNonce
        }
    };
    let (period_index, period_spent, lifetime_spent) =
        (usage.period_index, usage.period_spent, usage.lifetime_spent);
    let status = match usage.status {
        ChainStatus::Revoked => SessionStatus::Revoked,
        _ if grant.epoch != usage.account_epoch => SessionStatus::RevokedAll,
        _ if usage.paused => SessionStatus::Paused,
        ChainStatus::Enabled => SessionStatus::Enabled,
        ChainStatus::Unknown => SessionStatus::NotEnabled,
    };
    let live = matches!(status, SessionStatus::Enabled | SessionStatus::NotEnabled);
    let lifetime_remaining = if live {
        U256::from(grant.lifetimeCap).saturating_sub(lifetime_spent)
    } else {
        U256::ZERO
    };
    let period_remaining = match grant.period_index_at(now) {
        Some(k) if live && k > period_index => U256::from(grant.periodCap),
        Some(k) if live && k == period_index => {
            U256::from(grant.periodCap).saturating_sub(period_spent)
        }
        _ => U256::ZERO,
    }
    .min(lifetime_remaining);
    Ok(OnChainSession {
        status,
        period_index,
        period_spent,
        lifetime_spent,
        period_remaining,
        lifetime_remaining,
        payments_in_period: usage.payments_in_period,
        gas_lifetime_spent: usage.gas.lifetime_spent,
        pause_nonce,
    })
}
