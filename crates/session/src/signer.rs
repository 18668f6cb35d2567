//! Turning a merchant's aa-native `PaymentRequirements` into a signed payment payload.
//!
//! [`PaymentSigner`] does the parts every account shares (requirement checks, requestHash, budget
//! reservation, counterfactual deployment, nonce, gas, paymaster sponsorship) and asks a
//! [`PaymentAccount`] for what differs between account contracts: who the sender is, how it is
//! deployed, and how an op is signed. [`SessionAccount`] pays under a session key; [`OwnerAccount`]
//! is the plain owner-key path (NERO's `aaNativeSigner`), for SimpleAccount or any
//! SimpleAccount-compatible account. Other account kinds plug in the same way: see
//! `docs/account-kinds.md`.

use std::{future::Future, sync::Arc};

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U192},
    providers::{DynProvider, Provider},
    signers::{SignerSync, local::PrivateKeySigner},
};
use x402_aa::{
    ENTRY_POINT_V06, RequestHashInput, SIMPLE_ACCOUNT_FACTORY_V06, SettleCall, UserOperation,
    accounts::{
        AccountAbi, AccountConfig, AccountConfigError, AccountKind, KernelSessionAbi, PaymentCall,
        biconomy::{self, BiconomySessionAbi},
        kernel,
        safe::{SafeDeployment, session::SafeSessionAbi},
    },
    x402::{
        AaNativePayload, AaNativePaymentPayload, AaNativeRequirements, RequestBinding,
        SettlementCallSpec, payment_payload,
    },
};
use x402_aa_contracts::EntryPoint;
use x402_aa_rpc::{BundlerClient, ChainClock, PaymasterClient, SponsorContext};

use x402_aa_policy::{
    self as policy, Attempt, GasRequest, GasUsage, Limits, Rule, ScopeViolation, SessionHost,
    SessionStatus, SessionUsage, read_usage_in,
};

use crate::{
    file::SessionFile,
    grant::SessionGrant,
    ledger::{Ledger, LedgerError, ReservationId, ReservationRequest, SettlementRecord},
    signature::{SessionMode, SessionSignature, SessionSignatureCodec, session_digest},
};

/// Why a payment was not signed. Every variant has a stable x402-style reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The `accepts[]` entry is not a well-formed aa-native requirement (scheme, network, amount,
    /// `extra`): the merchant's offer is unusable; try another entry or another merchant.
    #[error("requirements: {0}")]
    Requirements(#[from] x402_aa::x402::PayloadError),
    /// The requirement is for another chain than the RPC endpoint's: this signer cannot pay it;
    /// pick the entry for this chain or a signer on the requirement's network.
    #[error("requirement is for chain {got}, this signer pays on chain {expected}")]
    WrongNetwork {
        /// The chain id this signer's RPC endpoint reported.
        expected: u64,
        /// The chain id in the requirement's `network`.
        got: u64,
    },
    /// An owner account was asked to pay in a token it is not set up for (for a session the same
    /// case is the scope violation `TokenNotAllowed`). Nothing was reserved or signed.
    #[error("requirement asks for token {got}, this session pays with {expected}")]
    WrongAsset {
        /// The token this account pays with.
        expected: Address,
        /// The requirement's `asset`.
        got: Address,
    },
    /// The requirement's `extra.settlementContract` is not the one this account (or grant) pays
    /// through; an op calling it would be refused by the account, so none is signed.
    #[error("requirement names settlement contract {got}, this session uses {expected}")]
    WrongSettlement {
        /// The settlement contract this account pays through.
        expected: Address,
        /// The one the requirement names.
        got: Address,
    },
    /// The requirement's `extra.entryPoint` is not this signer's: the userOpHash (and so the
    /// signature) would be for the wrong EntryPoint.
    #[error("requirement names entry point {got}, this signer uses {expected}")]
    WrongEntryPoint {
        /// This signer's EntryPoint ([`PaymentSigner::entry_point`]).
        expected: Address,
        /// The one the requirement names.
        got: Address,
    },
    /// The budget ledger would not reserve the amount (a cap already spent or reserved by payments
    /// in flight) or could not be written; nothing was signed.
    #[error("refused by the budget ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// Outside the session's scopes (the one policy check, with the chain's figures where read).
    #[error("out of scope: {0}")]
    Scope(#[from] ScopeViolation),
    /// The paid request's URL cannot be bound into a requestHash (see
    /// [`x402_aa::RequestHashError`]): a caller bug, retrying does not help.
    #[error("request hash: {0}")]
    RequestHash(#[from] x402_aa::RequestHashError),
    /// A chain read failed (RPC down, no latest block), or a Kernel, Safe or Biconomy session's
    /// account is not deployed yet (its owner must install the session first). Holds the cause.
    #[error("chain rpc: {0}")]
    Chain(String),
    /// The bundler's gas estimate or the paymaster's sponsorship failed for a reason that is not
    /// one of the session's rules; [`SignerError::reason`] passes the RPC error's own reason on.
    #[error("bundler / paymaster: {0}")]
    Rpc(#[from] x402_aa_rpc::RpcError),
    /// The paymaster simulated the op and the account refused it for one of the session's rules
    /// (`AA23 reverted: session: …`) that the SDK's own check could not see (a pinned paymaster,
    /// another client's spending): the rule's reason, as the facilitator and the chain name it.
    #[error("the paymaster's simulation: the account refuses the op ({rule}): {source}")]
    SponsorRefused {
        /// The session rule the account's revert string names.
        rule: Rule,
        /// The paymaster's error, with the revert string as it arrived.
        source: x402_aa_rpc::RpcError,
    },
    /// The account (or its session module) refuses the op on chain for one of the session's rules
    /// in a way the shared policy check does not model (a Safe that is not 1-of-1 enabling a
    /// grant in-op): the rule's reason, with the contract's revert string.
    #[error("the account refuses the session op ({rule}): {revert}")]
    ChainScope {
        /// The session rule the refusal falls under.
        rule: Rule,
        /// The contract's revert string.
        revert: String,
    },
    /// The local key failed to sign (not expected with an in-memory key).
    #[error("signing: {0}")]
    Sign(#[from] alloy::signers::Error),
    /// The account's deployment parameters cannot make an initCode.
    #[error("account: {0}")]
    Account(#[from] AccountConfigError),
    /// Every one of this signer's [`NONCE_LANES`] nonce keys holds a payment whose outcome was not
    /// reported yet. Report outcomes ([`PaymentSigner::settled`] / [`PaymentSigner::failed`]) or
    /// retry after the oldest payment's `maxTimeoutSeconds`, when its lane frees itself.
    #[error("{NONCE_LANES} payments are already in flight")]
    TooManyInFlight,
    /// The OS gave no randomness for the requestHash's client nonce; holds the OS error.
    #[error("no OS randomness: {0}")]
    Randomness(String),
}

impl SignerError {
    /// The stable machine-readable reason (x402 `invalidReason` style) a caller may branch on or
    /// show; scope and ledger refusals keep the shared policy's reason for the rule.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Requirements(e) => e.reason(),
            Self::WrongNetwork { .. } => "network_mismatch",
            Self::WrongAsset { .. } => "asset_mismatch",
            Self::WrongSettlement { .. } | Self::WrongEntryPoint { .. } => "requirements_mismatch",
            Self::Ledger(e) => e.reason(),
            Self::Scope(v) => v.reason(),
            Self::RequestHash(_) => "invalid_request",
            Self::Chain(_) => "rpc_error",
            Self::Rpc(e) => e.reason(),
            Self::SponsorRefused { rule, .. } | Self::ChainScope { rule, .. } => rule.reason(),
            Self::Sign(_) | Self::Randomness(_) => "signing_failed",
            Self::Account(_) => "invalid_account",
            Self::TooManyInFlight => "too_many_in_flight",
        }
    }
}

/// Only a 1-of-1 Safe enables a grant inside an op: the Safe module's `ownerOf` names its owner,
/// and declines (reverts with its reason) for any other Safe, which must enable the grant with a
/// Safe transaction first. Refused here as the chain and the facilitator refuse it.
async fn safe_can_enable_in_op(
    provider: &DynProvider,
    module: Address,
    account: Address,
) -> Result<(), SignerError> {
    match x402_aa_policy::session_module_owner(provider, module, account).await.map_err(chain)? {
        Ok(_) => Ok(()),
        Err(revert) => Err(SignerError::ChainScope { rule: Rule::NotEnabled, revert }),
    }
}

fn chain(e: impl std::fmt::Display) -> SignerError {
    SignerError::Chain(e.to_string())
}

/// One payment about to be signed: what the merchant asked for, bound to one HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Who is paid: the requirement's `payTo`, the `merchant` argument of `settle`.
    pub merchant: Address,
    /// The token paid, the requirement's `asset` (already checked to be the account's).
    pub token: Address,
    /// The settlement contract the op calls.
    pub settlement: Address,
    /// The price in the token's atomic units.
    pub amount: U256,
    /// The `settle` requestHash binding the payment to one HTTP request (and making it pay once).
    pub request_hash: B256,
    /// Chain time the payment is built at (latest block), unix seconds.
    pub now: u64,
}

/// The HTTP request a payment pays for; it goes into the requestHash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidRequest {
    /// The HTTP method, as sent (e.g. `GET`).
    pub method: String,
    /// The request's URL: an absolute http(s) URL or a path starting with `/`, hashed as given.
    pub url: String,
}

/// Where an op is valid: its EntryPoint and chain (the userOpHash's domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpDomain {
    /// The EntryPoint the op is submitted to.
    pub entry_point: Address,
    /// The chain the op is valid on.
    pub chain_id: u64,
}

/// What differs between account contracts, on the agent's side: the keys and what the chain must
/// say before signing. The protocol side (initCode, callData, signature routing) is the kind's
/// [`AccountAbi`]; adding a kind is one module there and one implementation of this trait (see
/// `docs/account-kinds.md`).
pub trait PaymentAccount: Send + Sync {
    /// Whatever `prepare` learns from the chain that signing needs.
    type Prepared: Send + Sync;

    /// The account contract family: its callData and signature routing.
    fn kind(&self) -> AccountKind;
    /// The kind's protocol side for this account's deployment; the canonical one unless the
    /// account was deployed elsewhere (Biconomy on the devnet).
    fn abi(&self) -> &dyn AccountAbi {
        self.kind().abi()
    }
    /// The account that pays: the op's `sender`, counterfactual until its first op deploys it.
    fn sender(&self) -> Address;
    /// The one token this account pays with; a requirement in another asset is refused.
    fn token(&self) -> Address;
    /// The settlement contract its payments call; a requirement naming another is refused.
    fn settlement(&self) -> Address;
    /// `factory ‖ createAccount(...)` for an account that does not exist yet; `None` when the
    /// account cannot be deployed by its first op (it must exist already).
    fn init_code(&self) -> Result<Option<Bytes>, SignerError>;
    /// Scope checks that need no chain access; run before anything is reserved or signed.
    fn check(&self, payment: &Payment) -> Result<(), SignerError>;
    /// Chain reads needed to sign (e.g. whether a session is already enabled).
    fn prepare(
        &self,
        provider: &DynProvider,
        payment: &Payment,
        deployed: bool,
    ) -> impl Future<Output = Result<Self::Prepared, SignerError>> + Send;
    /// Rules that need the built op (gas fields, paymaster), run after sponsorship and before the
    /// op is signed.
    fn check_op(&self, _op: &UserOperation, _prepared: &Self::Prepared) -> Result<(), SignerError> {
        Ok(())
    }
    /// A signature of the final length, for gas estimation and paymaster hashing.
    fn placeholder_signature(&self, prepared: &Self::Prepared) -> Bytes;
    /// Signs the whole op (with its final gas and paymaster fields): some accounts sign the
    /// userOpHash, others a typed view of the op.
    fn sign(
        &self,
        op: &UserOperation,
        domain: OpDomain,
        prepared: &Self::Prepared,
    ) -> Result<Bytes, SignerError>;
    /// The budget ledger's session id and limits, for accounts with a budget.
    fn budget(&self) -> Option<(B256, Limits)> {
        None
    }
}

/// Pays under a session key, with the grant and limits from a session file.
#[derive(Debug, Clone)]
pub struct SessionAccount {
    /// The session file it was built from: account, session id, host and merchant list (for
    /// allowlist proofs).
    pub file: SessionFile,
    grant: SessionGrant,
    limits: Limits,
    key: PrivateKeySigner,
    /// Set for a session installed in a Kernel account (the file's `kernel` kind): the payment
    /// shape with its charge call and the plugin-mode signature.
    kernel: Option<KernelSessionAbi>,
    /// Set for a session installed in a Biconomy account (the file's `biconomy` kind): the payment
    /// shape with its charge call and the `abi.encode(signature, module)` envelope.
    biconomy: Option<BiconomySessionAbi>,
    /// Set for a session kept by a Safe's `SafeSessionModule` (the file's `safe` kind): the
    /// `executeSessionPayment` shape; the signature is the plain session signature.
    safe: Option<SafeSessionAbi>,
}

/// Session-specific signing state.
#[derive(Debug, Clone)]
pub struct SessionPrepared {
    /// `Enable` while the chain does not hold the session as enabled (the op then carries the
    /// owner's grant signature and enables it), `Use` afterwards.
    pub mode: SessionMode,
    /// The period the op claims, counted from the grant's `validAfter` at the payment's time.
    pub period_index: u32,
    /// The merchant's allowlist proof; empty for an any-merchant grant or a one-merchant list.
    pub merchant_proof: Vec<B256>,
    /// The session's gas charged so far, for the gas rule on the built op.
    pub gas: GasUsage,
}

impl SessionAccount {
    /// The session of `file`, signing with `key`. Fails when the file's grant does not decode or
    /// `key` is not the grant's session key ([`WrongSessionKey`]): every op it signed would fail
    /// on chain (`AA24`).
    ///
    /// [`WrongSessionKey`]: crate::SessionFileError::WrongSessionKey
    pub fn new(file: SessionFile, key: PrivateKeySigner) -> Result<Self, crate::SessionFileError> {
        let grant = file.grant()?;
        if key.address() != grant.sessionKey {
            return Err(crate::SessionFileError::WrongSessionKey {
                expected: grant.sessionKey,
                found: key.address(),
            });
        }
        // The SDK pays the merchants its file lists; a list that does not build the grant's root
        // (a hand-edited file) is still what this agent was told, and the chain refuses the rest.
        let limits = Limits::from_grant(&grant, &file.merchants).unwrap_or_else(|_| {
            let listed = file.merchants.iter().copied().collect();
            Limits::of_grant(&grant).with_merchants(Some(listed))
        });
        let kernel = match file.host() {
            SessionHost::KernelValidator(validator) => Some(KernelSessionAbi::new(validator)),
            SessionHost::Account | SessionHost::SafeModule(_) | SessionHost::BiconomyModule(_) => {
                None
            }
        };
        // The deployment only matters for initCode, and a Biconomy session lives in an account
        // that exists (the file has no deployment).
        let biconomy = match file.host() {
            SessionHost::BiconomyModule(module) => {
                Some(BiconomySessionAbi::new(biconomy::Deployment::CANONICAL, module))
            }
            SessionHost::Account | SessionHost::KernelValidator(_) | SessionHost::SafeModule(_) => {
                None
            }
        };
        // As for Biconomy, the Safe exists before a session is granted in it; the deployment only
        // matters for initCode, so the canonical one serves.
        let safe = match file.host() {
            SessionHost::SafeModule(module) => {
                Some(SafeSessionAbi::new(SafeDeployment::CANONICAL, module))
            }
            SessionHost::Account
            | SessionHost::KernelValidator(_)
            | SessionHost::BiconomyModule(_) => None,
        };
        Ok(Self { file, grant, limits, key, kernel, biconomy, safe })
    }

    /// The owner-signed grant this session pays under, as the contract checks it.
    pub fn grant(&self) -> &SessionGrant {
        &self.grant
    }

    fn session_signature(
        &self,
        prepared: &SessionPrepared,
        session_signature: Bytes,
    ) -> Result<Bytes, SignerError> {
        let owner_signature = match prepared.mode {
            SessionMode::Enable => self.file.signed_grant.owner_signature.clone(),
            SessionMode::Use => Bytes::new(),
        };
        let packed = SessionSignature {
            grant: self.grant.clone(),
            owner_signature,
            period_index: prepared.period_index,
            merchant_proof: prepared.merchant_proof.clone(),
            session_signature,
        }
        .encode(prepared.mode)
        .map_err(|e| SignerError::Scope(ScopeViolation::MalformedSignature(e.to_string())))?;
        // Kernel hands the validator registered for `executeBatch` what follows its mode.
        // A Biconomy account hands the module named after the `bytes` what is inside them.
        // A Safe's module takes the packed signature as it is (the callData routes the op).
        Ok(match (self.kernel, self.biconomy) {
            (Some(_), _) => kernel::session_signature(&packed),
            (None, Some(b)) => biconomy::session_signature(&packed, b.module),
            (None, None) => packed,
        })
    }
}

impl PaymentAccount for SessionAccount {
    type Prepared = SessionPrepared;

    fn kind(&self) -> AccountKind {
        self.file.account_kind
    }

    fn abi(&self) -> &dyn AccountAbi {
        match (&self.kernel, &self.biconomy, &self.safe) {
            (Some(abi), _, _) => abi,
            (None, Some(abi), _) => abi,
            (None, None, Some(abi)) => abi,
            (None, None, None) => self.kind().abi(),
        }
    }

    fn sender(&self) -> Address {
        self.file.account
    }

    fn token(&self) -> Address {
        self.grant.token
    }

    fn settlement(&self) -> Address {
        self.grant.settlement
    }

    fn init_code(&self) -> Result<Option<Bytes>, SignerError> {
        let Some(d) = &self.file.deployment else { return Ok(None) };
        let config = AccountConfig::single_owner(d.factory, d.owner, d.salt);
        Ok(Some(self.abi().init_code(&config)?))
    }

    /// Before the ledger and the chain are asked: the rules that need neither (merchant, per-payment
    /// max, the claimed period's window and time), through the one policy check with no spending.
    fn check(&self, p: &Payment) -> Result<(), SignerError> {
        let attempt = Attempt {
            account: self.file.account,
            ..Attempt::payment(&self.limits, p.merchant, p.amount, p.request_hash, p.now)
        };
        let usage = SessionUsage {
            status: SessionStatus::Enabled,
            account_epoch: attempt.grant_epoch,
            period_index: attempt.period_index,
            ..SessionUsage::default()
        };
        policy::check(&self.limits, &usage, &attempt)?;
        Ok(())
    }

    /// Reads the session's stored state and runs the whole policy check against it, so a payment the
    /// account would refuse for revocation or its caps is never signed.
    async fn prepare(
        &self,
        provider: &DynProvider,
        payment: &Payment,
        deployed: bool,
    ) -> Result<SessionPrepared, SignerError> {
        let (account, id) = (self.file.account, self.file.session_id);
        if self.kernel.is_some() && !deployed {
            return Err(SignerError::Chain(format!(
                "Kernel account {account} is not deployed: its owner installs the session \
                 validator in an existing account"
            )));
        }
        if self.biconomy.is_some() && !deployed {
            return Err(SignerError::Chain(format!(
                "Biconomy account {account} is not deployed: its owner installs the session \
                 module in an existing account"
            )));
        }
        if self.safe.is_some() && !deployed {
            return Err(SignerError::Chain(format!(
                "Safe {account} is not deployed: its owner installs the session module in an \
                 existing Safe"
            )));
        }
        let mut usage =
            read_usage_in(provider, self.file.host(), account, id, payment.merchant, deployed)
                .await
                .map_err(chain)?;
        if !deployed {
            // The account will be created with epoch 0, the only epoch a grant for it can name.
            usage.account_epoch = 0;
        }
        let mode = if usage.status == SessionStatus::Enabled {
            SessionMode::Use
        } else {
            SessionMode::Enable
        };
        let merchant_proof = self.file.merchant_proof(payment.merchant);
        let attempt = Attempt {
            grant_epoch: self.grant.epoch,
            mode,
            account,
            merchant_proof: Some(&merchant_proof),
            ..Attempt::payment(
                &self.limits,
                payment.merchant,
                payment.amount,
                payment.request_hash,
                payment.now,
            )
        };
        policy::check(&self.limits, &usage, &attempt)?;
        if let (SessionMode::Enable, SessionHost::SafeModule(module)) = (mode, self.file.host()) {
            safe_can_enable_in_op(provider, module, account).await?;
        }
        let period_index = attempt.period_index;
        Ok(SessionPrepared { mode, period_index, merchant_proof, gas: usage.gas })
    }

    /// The gas rule with the op's final gas fields and paymaster: a grant that requires (or pins) a
    /// paymaster never gets an op signed that the account would refuse for it.
    fn check_op(&self, op: &UserOperation, prepared: &SessionPrepared) -> Result<(), SignerError> {
        let request = GasRequest::of(op);
        policy::check_gas(&self.grant, request, &prepared.gas, prepared.period_index)?;
        Ok(())
    }

    fn placeholder_signature(&self, prepared: &SessionPrepared) -> Bytes {
        // ECDSA signatures are always 65 bytes and the grant's own fields never fail to encode.
        self.session_signature(prepared, Bytes::from(vec![0xffu8; 65])).unwrap_or_default()
    }

    fn sign(
        &self,
        op: &UserOperation,
        domain: OpDomain,
        prepared: &SessionPrepared,
    ) -> Result<Bytes, SignerError> {
        let user_op_hash = op.hash(domain.entry_point, domain.chain_id);
        let digest = session_digest(user_op_hash, self.file.session_id, prepared.period_index);
        let sig = x402_aa_policy::ecdsa::sign_message(&self.key, digest.as_slice());
        self.session_signature(prepared, sig.into())
    }

    fn budget(&self) -> Option<(B256, Limits)> {
        Some((self.file.session_id, self.limits.clone()))
    }
}

/// The owner key signs every op (SimpleAccount's rule): NERO's `aaNativeSigner`.
#[derive(Debug, Clone)]
pub struct OwnerAccount {
    /// SimpleAccount, or a SessionKeyAccount paid from by its owner.
    pub kind: AccountKind,
    /// The account's owner: signs every op (EIP-191 over the userOpHash).
    pub owner: PrivateKeySigner,
    /// The account; must be what `account_factory` gives for `(owner, salt)`, or its deploying
    /// op fails on chain (`AA14 initCode must return sender`).
    pub sender: Address,
    /// The token it pays with.
    pub token: Address,
    /// The settlement contract its payments call.
    pub settlement: Address,
    /// Factory (default: the canonical SimpleAccountFactory) and salt for counterfactual deployment.
    pub account_factory: Address,
    /// The factory's salt for this owner's account (0 for the first one).
    pub salt: U256,
}

impl OwnerAccount {
    /// A SimpleAccount from the canonical factory; `sender` must be its `getAddress(owner, salt)`.
    pub fn simple_account(
        owner: PrivateKeySigner,
        sender: Address,
        token: Address,
        settlement: Address,
    ) -> Self {
        Self {
            kind: AccountKind::SimpleAccount,
            owner,
            sender,
            token,
            settlement,
            account_factory: SIMPLE_ACCOUNT_FACTORY_V06,
            salt: U256::ZERO,
        }
    }
}

impl PaymentAccount for OwnerAccount {
    type Prepared = ();

    fn kind(&self) -> AccountKind {
        self.kind
    }

    fn sender(&self) -> Address {
        self.sender
    }

    fn token(&self) -> Address {
        self.token
    }

    fn settlement(&self) -> Address {
        self.settlement
    }

    fn init_code(&self) -> Result<Option<Bytes>, SignerError> {
        let config =
            AccountConfig::single_owner(self.account_factory, self.owner.address(), self.salt);
        Ok(Some(self.abi().init_code(&config)?))
    }

    fn check(&self, _payment: &Payment) -> Result<(), SignerError> {
        Ok(())
    }

    async fn prepare(&self, _: &DynProvider, _: &Payment, _: bool) -> Result<(), SignerError> {
        Ok(())
    }

    fn placeholder_signature(&self, _: &()) -> Bytes {
        Bytes::from(vec![0xffu8; 65])
    }

    fn sign(&self, op: &UserOperation, domain: OpDomain, _: &()) -> Result<Bytes, SignerError> {
        let user_op_hash = op.hash(domain.entry_point, domain.chain_id);
        Ok(self.owner.sign_message_sync(user_op_hash.as_slice())?.as_bytes().into())
    }
}

/// Gas values used when no bundler estimate is available. Generous: an unused limit costs nothing
/// with a paymaster, and an op that runs out of gas still consumes its nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasDefaults {
    /// `callGasLimit` (default 250 000).
    pub call_gas_limit: u64,
    /// `verificationGasLimit` of an op whose account exists (default 250 000).
    pub verification_gas_limit: u64,
    /// Extra verification gas when the op also deploys the account.
    pub deployment_gas: u64,
    /// `preVerificationGas` (default 60 000).
    pub pre_verification_gas: u64,
}

impl Default for GasDefaults {
    fn default() -> Self {
        Self {
            call_gas_limit: 250_000,
            verification_gas_limit: 250_000,
            deployment_gas: 350_000,
            pre_verification_gas: 60_000,
        }
    }
}

/// Builds and signs aa-native payment payloads for one account.
#[derive(Debug)]
pub struct PaymentSigner<A> {
    account: A,
    provider: DynProvider,
    chain_id: u64,
    entry_point: Address,
    bundler: Option<BundlerClient>,
    paymaster: Option<(PaymasterClient, String)>,
    ledger: Option<Arc<Ledger>>,
    gas: GasDefaults,
    lanes: NonceLanes,
    /// Chain time minus wall-clock time at the last block this signer read, in seconds: lets
    /// synchronous checks (choosing between offers) judge periods by the chain's clock, which
    /// is what the account enforces, not by the machine's (a devnet's time is moved at will; a
    /// real chain's lags by up to a block).
    clock_offset: Arc<std::sync::atomic::AtomicI64>,
    /// Reads the latest block's timestamp, folded into the payment's reads where the node allows.
    clock: ChainClock,
    /// Set once the account's code was seen on chain. An account never loses its code, so later
    /// payments skip that read and fetch the session's usage together with the nonce and fees.
    deployed: Arc<std::sync::atomic::AtomicBool>,
}

/// A signed payment, and the budget reservation it holds until [`PaymentSigner::settled`] or
/// [`PaymentSigner::failed`] says how it ended.
#[derive(Debug, Clone)]
pub struct SignedPayment {
    /// The x402 payment payload to send to the merchant (the payment header's content).
    pub payload: AaNativePaymentPayload,
    /// The op's userOpHash (this signer's EntryPoint and chain), to find its receipt.
    pub user_op_hash: B256,
    /// The `settle` requestHash: what the settlement contract records as paid (`isSettled`).
    pub request_hash: B256,
    /// The ledger reservation holding the amount; `None` without a ledger or for an account
    /// without a budget (owner accounts).
    pub reservation: Option<ReservationId>,
    /// The EntryPoint nonce key the op uses; free again once the payment settled or failed.
    pub nonce_lane: u64,
}

/// The chain's answers a payment is signed on ([`PaymentSigner::read`]).
struct Read<P> {
    deployed: bool,
    /// The lane's whole EntryPoint nonce (`key << 64 | sequence`).
    seq: U256,
    /// `(maxFeePerGas, maxPriorityFeePerGas)`.
    fees: (U256, U256),
    prepared: P,
}

/// How many payments one signer keeps in flight at once (one EntryPoint nonce key each).
pub const NONCE_LANES: u64 = 16;

/// Nonce keys in use, each with the time its lease lapses (the payment's maxTimeoutSeconds): a
/// payment whose outcome the caller never reports frees its lane by itself.
#[derive(Debug, Default)]
struct NonceLanes {
    busy: std::sync::Mutex<std::collections::BTreeMap<u64, u64>>,
    /// The first nonce key: `replica * NONCE_LANES` (see [`PaymentSigner::replica`]).
    base: u64,
}

impl NonceLanes {
    fn acquire(&self, now: u64, until: u64) -> Result<u64, SignerError> {
        let mut busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        busy.retain(|_, lease| *lease > now);
        let lane = (self.base..self.base + NONCE_LANES)
            .find(|l| !busy.contains_key(l))
            .ok_or(SignerError::TooManyInFlight)?;
        busy.insert(lane, until);
        Ok(lane)
    }

    fn release(&self, lane: u64) {
        self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&lane);
    }
}

impl<A: PaymentAccount> PaymentSigner<A> {
    /// A signer for `account` on `provider`'s chain, with no bundler (gas from [`GasDefaults`]), no
    /// paymaster (the account pays its own gas) and no ledger. Reads the chain id and the latest
    /// block now, so an unreachable RPC endpoint fails here ([`SignerError::Chain`]).
    pub async fn new(account: A, provider: DynProvider) -> Result<Self, SignerError> {
        let chain_id = provider.get_chain_id().await.map_err(chain)?;
        let signer = Self {
            account,
            provider,
            chain_id,
            entry_point: ENTRY_POINT_V06,
            bundler: None,
            paymaster: None,
            ledger: None,
            gas: GasDefaults::default(),
            lanes: NonceLanes::default(),
            clock_offset: Arc::default(),
            clock: ChainClock::default(),
            deployed: Arc::default(),
        };
        signer.chain_time().await?;
        Ok(signer)
    }

    /// The chain's time now, estimated from the wall clock and the offset seen at the last
    /// block this signer read (construction, and every payment).
    pub fn estimated_chain_time(&self) -> u64 {
        let offset = self.clock_offset.load(std::sync::atomic::Ordering::Relaxed);
        unix_now().saturating_add_signed(offset)
    }

    /// Overrides the EntryPoint (default: the canonical v0.6).
    pub fn entry_point(mut self, entry_point: Address) -> Self {
        self.entry_point = entry_point;
        self
    }

    /// Gas limits come from this bundler's `eth_estimateUserOperationGas`.
    pub fn bundler(mut self, bundler: BundlerClient) -> Self {
        self.bundler = Some(bundler);
        self
    }

    /// This signer is replica `index` of several processes paying from one account at once: its
    /// ops use nonce keys `index * NONCE_LANES ..` instead of `0 ..`, so two replicas never sign
    /// the same EntryPoint nonce (the second op would fail with AA25). Give each replica its own
    /// stable index (a restart keeps it, so its nonce slots stay warm: 5k gas instead of 22k).
    pub fn replica(mut self, index: u32) -> Self {
        self.lanes.base = u64::from(index) * NONCE_LANES;
        self
    }

    /// Every op is sponsored through `pm_sponsor_userop` with this API key.
    pub fn paymaster(mut self, paymaster: PaymasterClient, api_key: impl Into<String>) -> Self {
        self.paymaster = Some((paymaster, api_key.into()));
        self
    }

    /// Reserve budget before signing; the account's session is registered in the ledger.
    pub fn ledger(mut self, ledger: Arc<Ledger>) -> Result<Self, SignerError> {
        if let Some((id, limits)) = self.account.budget() {
            ledger.register_session(id, &limits)?;
        }
        self.ledger = Some(ledger);
        Ok(self)
    }

    /// Gas limits for ops when no [`bundler`](Self::bundler) estimates them.
    pub fn gas_defaults(mut self, gas: GasDefaults) -> Self {
        self.gas = gas;
        self
    }

    /// The account this signer pays from.
    pub fn account(&self) -> &A {
        &self.account
    }

    /// The chain id read from the RPC endpoint at construction.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Whether this signer can pay `accepted` at all (scheme, network, asset, settlement).
    pub fn supports(
        &self,
        accepted: &serde_json::Value,
    ) -> Result<AaNativeRequirements, SignerError> {
        let req = AaNativeRequirements::parse_json(accepted)?;
        if req.chain_id != self.chain_id {
            return Err(SignerError::WrongNetwork { expected: self.chain_id, got: req.chain_id });
        }
        if req.asset != self.account.token() {
            // For a session this is a scope: the grant names the one token it may pay with.
            if self.account.budget().is_some() {
                return Err(ScopeViolation::TokenNotAllowed(req.asset).into());
            }
            return Err(SignerError::WrongAsset { expected: self.account.token(), got: req.asset });
        }
        if let Some(extra) = req.extra {
            if extra.settlement_contract != self.account.settlement() {
                return Err(SignerError::WrongSettlement {
                    expected: self.account.settlement(),
                    got: extra.settlement_contract,
                });
            }
            if extra.entry_point != self.entry_point {
                return Err(SignerError::WrongEntryPoint {
                    expected: self.entry_point,
                    got: extra.entry_point,
                });
            }
        }
        Ok(req)
    }

    /// Signs a payment for the `accepts[]` entry `accepted` (raw JSON, echoed back verbatim).
    pub async fn pay(
        &self,
        accepted: &serde_json::Value,
        request: &PaidRequest,
    ) -> Result<SignedPayment, SignerError> {
        let req = self.supports(accepted)?;
        let guess = self.estimated_chain_time();
        let lane =
            self.lanes.acquire(guess, guess.saturating_add(req.max_timeout_seconds.max(1)))?;
        let paid = self.pay_in_lane(&req, accepted, request, lane, guess).await;
        if paid.is_err() {
            self.lanes.release(lane);
        }
        paid
    }

    /// The payment is made at the chain's time (the latest block's timestamp), which takes a read.
    /// It goes out with the payment's own reads (nonce, gas price, the session's usage) as one
    /// batch, the payment built at `guess`, the time estimated from the last block read; only
    /// when the block says otherwise (a block in a new second, a test moving the clock) is the
    /// payment made again at the time read, as it would have been with the reads in a row.
    async fn pay_in_lane(
        &self,
        req: &AaNativeRequirements,
        accepted: &serde_json::Value,
        request: &PaidRequest,
        lane: u64,
        guess: u64,
    ) -> Result<SignedPayment, SignerError> {
        // `Err`: the chain's time, where the guess was wrong.
        let at_guess = match self.payment_at(req, request, guess) {
            Ok((payment, binding)) => {
                let (now, read) = tokio::join!(self.chain_time(), self.read(&payment, lane));
                match now? {
                    now if now == guess => Ok((payment, binding, read?)),
                    now => Err(now),
                }
            }
            // Refused at the guessed time (which runs ahead of an idle chain's last block):
            // judged again at the chain's.
            Err(_) => Err(self.chain_time().await?),
        };
        let (payment, binding, read) = match at_guess {
            Ok(made) => made,
            Err(now) => {
                let (payment, binding) = self.payment_at(req, request, now)?;
                let read = self.read(&payment, lane).await?;
                (payment, binding, read)
            }
        };

        let reservation = match (&self.ledger, self.account.budget()) {
            (Some(ledger), Some((session_id, _))) => {
                let request = ReservationRequest {
                    merchant: payment.merchant,
                    amount: payment.amount,
                    request_hash: payment.request_hash,
                    now: payment.now,
                    expires_at: payment.now.saturating_add(req.max_timeout_seconds.max(1)),
                };
                let id = blocking(ledger, move |l| l.reserve(session_id, &request)).await?.id;
                crate::fault::HALT_POINTS.reached("after_reserve").await;
                Some(id)
            }
            _ => None,
        };
        match self.build(&payment, &binding, accepted, read).await {
            Ok((payload, user_op_hash)) => Ok(SignedPayment {
                payload,
                user_op_hash,
                request_hash: payment.request_hash,
                reservation,
                nonce_lane: lane,
            }),
            Err(e) => {
                if let (Some(ledger), Some(id)) = (&self.ledger, reservation) {
                    // The payment was never handed out, so its budget is free again.
                    let reason = e.reason();
                    let _ = blocking(ledger, move |l| l.release(id, reason)).await;
                }
                Err(e)
            }
        }
    }

    /// The payment `req` asks for at chain time `now` (a fresh requestHash), checked against the
    /// rules that need no chain access.
    fn payment_at(
        &self,
        req: &AaNativeRequirements,
        request: &PaidRequest,
        now: u64,
    ) -> Result<(Payment, RequestBinding), SignerError> {
        let client_nonce = B256::from(rand_bytes()?);
        let input = RequestHashInput::new(
            req.pay_to,
            self.chain_id,
            &request.method,
            &request.url,
            now,
            client_nonce,
        );
        let request_hash = input.hash()?;
        // Disclosed in the payload, so the resource server can check what the hash binds.
        let binding = RequestBinding::from_input(&input);
        let payment = Payment {
            merchant: req.pay_to,
            token: req.asset,
            settlement: self.account.settlement(),
            amount: req.amount,
            request_hash,
            now,
        };
        self.account.check(&payment)?;
        Ok((payment, binding))
    }

    /// The merchant's facilitator settled the payment: commit its reservation.
    pub fn settled(
        &self,
        payment: &SignedPayment,
        tx_hash: B256,
        block_number: u64,
    ) -> Result<(), SignerError> {
        if let (Some(ledger), Some(id)) = (&self.ledger, payment.reservation) {
            let record =
                SettlementRecord { tx_hash, user_op_hash: payment.user_op_hash, block_number };
            ledger.commit(id, &record)?;
        }
        self.lanes.release(payment.nonce_lane);
        Ok(())
    }

    /// The payment was refused or never submitted: free its reservation.
    pub fn failed(&self, payment: &SignedPayment, reason: &str) -> Result<(), SignerError> {
        if let (Some(ledger), Some(id)) = (&self.ledger, payment.reservation) {
            ledger.release(id, reason)?;
        }
        self.lanes.release(payment.nonce_lane);
        Ok(())
    }

    /// [`PaymentSigner::settled`] for async callers: the ledger's SQLite write runs on the blocking
    /// pool, so a slow disk or a busy lock never stalls the runtime's worker threads.
    pub async fn settled_async(
        &self,
        payment: &SignedPayment,
        tx_hash: B256,
        block_number: u64,
    ) -> Result<(), SignerError> {
        if let (Some(ledger), Some(id)) = (&self.ledger, payment.reservation) {
            let record =
                SettlementRecord { tx_hash, user_op_hash: payment.user_op_hash, block_number };
            blocking(ledger, move |l| l.commit(id, &record)).await?;
        }
        self.lanes.release(payment.nonce_lane);
        Ok(())
    }

    /// [`PaymentSigner::failed`] for async callers (the ledger write off the runtime's workers).
    pub async fn failed_async(
        &self,
        payment: &SignedPayment,
        reason: &str,
    ) -> Result<(), SignerError> {
        if let (Some(ledger), Some(id)) = (&self.ledger, payment.reservation) {
            let reason = reason.to_owned();
            blocking(ledger, move |l| l.release(id, &reason)).await?;
        }
        self.lanes.release(payment.nonce_lane);
        Ok(())
    }

    async fn chain_time(&self) -> Result<u64, SignerError> {
        let timestamp = self.clock.now(&self.provider).await.map_err(chain)?;
        let offset = i64::try_from(timestamp).unwrap_or(i64::MAX)
            - i64::try_from(unix_now()).unwrap_or(i64::MAX);
        self.clock_offset.store(offset, std::sync::atomic::Ordering::Relaxed);
        Ok(timestamp)
    }

    /// What signing `payment` needs from the chain: whether the account exists, the nonce of
    /// its `lane`, the fees and the account's own reads (with its policy check).
    async fn read(&self, payment: &Payment, lane: u64) -> Result<Read<A::Prepared>, SignerError> {
        let sender = self.account.sender();
        // Nonce lanes: each in-flight payment of this signer gets its own EntryPoint nonce key, so
        // payments never wait on each other's sequence; lanes are reused, so the EntryPoint's nonce
        // slot is rewritten (5k gas) rather than created (22k gas) on every payment.
        let key = U192::from(lane);
        let entry_point = EntryPoint::new(self.entry_point, &self.provider);
        let nonce = async { entry_point.getNonce(sender, key).call().await.map_err(chain) };
        // Independent reads go out together: one round trip instead of several.
        if self.deployed.load(std::sync::atomic::Ordering::Relaxed) {
            let (seq, fees, prepared) = tokio::try_join!(
                nonce,
                self.fees(),
                self.account.prepare(&self.provider, payment, true),
            )?;
            return Ok(Read { deployed: true, seq, fees, prepared });
        }
        let (code, seq, fees) = tokio::try_join!(
            async { self.provider.get_code_at(sender).await.map_err(chain) },
            nonce,
            self.fees(),
        )?;
        let deployed = !code.is_empty();
        let prepared = self.account.prepare(&self.provider, payment, deployed).await?;
        if deployed {
            self.deployed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Read { deployed, seq, fees, prepared })
    }

    async fn build(
        &self,
        payment: &Payment,
        binding: &RequestBinding,
        accepted: &serde_json::Value,
        read: Read<A::Prepared>,
    ) -> Result<(AaNativePaymentPayload, B256), SignerError> {
        let Read { deployed, seq, fees: (max_fee, priority), prepared } = read;
        let sender = self.account.sender();
        let init_code =
            if deployed { Bytes::new() } else { self.account.init_code()?.unwrap_or_default() };
        let deployment_gas = if init_code.is_empty() { 0 } else { self.gas.deployment_gas };
        let mut op = UserOperation {
            sender,
            // `getNonce(sender, key)` is already `key << 64 | sequence`: the op's whole nonce.
            nonce: seq,
            init_code,
            call_data: self.account.abi().encode_payment(&PaymentCall {
                settlement: payment.settlement,
                settle: SettleCall {
                    merchant: payment.merchant,
                    token: payment.token,
                    amount: payment.amount,
                    request_hash: payment.request_hash,
                },
            }),
            call_gas_limit: U256::from(self.gas.call_gas_limit),
            verification_gas_limit: U256::from(self.gas.verification_gas_limit + deployment_gas),
            pre_verification_gas: U256::from(self.gas.pre_verification_gas),
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: priority,
            paymaster_and_data: Bytes::new(),
            signature: self.account.placeholder_signature(&prepared),
        };
        if let Some(bundler) = &self.bundler {
            bundler.estimate_user_operation_gas(&op, self.entry_point).await?.apply_to(&mut op);
        }
        if let Some((paymaster, api_key)) = &self.paymaster {
            paymaster
                .sponsor_user_op(&op, self.entry_point, api_key, SponsorContext::free())
                .await
                .map_err(|source| match Rule::quoted_in(&source.to_string()) {
                    Some(rule) => SignerError::SponsorRefused { rule, source },
                    None => SignerError::Rpc(source),
                })?
                .apply_to(&mut op);
        }
        self.account.check_op(&op, &prepared)?;
        let domain = OpDomain { entry_point: self.entry_point, chain_id: self.chain_id };
        let user_op_hash = op.hash(domain.entry_point, domain.chain_id);
        op.signature = self.account.sign(&op, domain, &prepared)?;
        let spec = SettlementCallSpec {
            merchant: payment.merchant,
            token: payment.token,
            amount: payment.amount,
            request_hash: payment.request_hash,
        };
        let payload = payment_payload(
            accepted.clone(),
            AaNativePayload {
                user_op: op,
                settlement_call_spec: spec,
                request: Some(binding.clone()),
            },
            None,
        );
        Ok((payload, user_op_hash))
    }

    /// EIP-1559 fees: twice the current base fee plus a 1 gwei tip (capped by the gas price).
    async fn fees(&self) -> Result<(U256, U256), SignerError> {
        let gas_price = self.provider.get_gas_price().await.map_err(chain)?;
        let priority = gas_price.min(1_000_000_000);
        let max_fee = gas_price.saturating_mul(2).saturating_add(priority);
        Ok((U256::from(max_fee), U256::from(priority)))
    }
}

/// [`crate::ledger::blocking`] with the signer's error.
async fn blocking<T: Send + 'static>(
    ledger: &Arc<Ledger>,
    call: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, SignerError> {
    Ok(crate::ledger::blocking(ledger, call).await?)
}

/// 32 random bytes from the OS for the requestHash's client nonce.
fn rand_bytes() -> Result<[u8; 32], SignerError> {
    let mut out = [0u8; 32];
    getrandom::fill(&mut out).map_err(|e| SignerError::Randomness(e.to_string()))?;
    Ok(out)
}

/// Seconds since the Unix epoch by this machine's clock (0 before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
