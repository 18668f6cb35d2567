//! The agent's side: an x402 paying HTTP client in one builder, from a session (the agent holds
//! only the session key) or from an owner key (any account kind). Both give the same
//! [`PayingClient`]; `client.get(url).send().await` pays a 402 within the grant, refuses beyond it
//! with a typed reason, and reconciles the budget ledger with the payment's outcome.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use alloy::{
    eips::BlockId,
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use reqwest::{IntoUrl, Method};
use x402_aa::accounts::{AccountKind, KernelAbi, biconomy, safe::SafeDeployment};
use x402_aa_contracts::{
    EntryPoint::UserOperationEvent,
    SettlementContract::{self, ReceiptLog},
};
use x402_aa_policy::{Rule, ScopeViolation, SessionStatus as ChainStatus, read_usage_at};
use x402_aa_rpc::{BundlerClient, PaymasterClient};

use super::{Network, SdkError, chain, latest_timestamp, owner::sender_address};
use crate::{
    accounts::{BiconomyOwnerAccount, KernelOwnerAccount, SafeOwnerAccount},
    client::{AaNativeScheme, ClientError, PaidResponse, X402PayingClient},
    file::{SessionFile, load_session_key},
    ledger::{
        ChainSessionStatus, Ledger, LedgerError, OnChainState, Remaining, ReservationState,
        SettlementRecord, blocking,
    },
    signer::{OwnerAccount, PaymentAccount, PaymentSigner, SessionAccount, SignerError},
};

/// An x402 client that pays 402 answers from one smart account, whatever its kind.
///
/// Cheap to clone; clones share the signer, the nonce lanes and the budget ledger.
#[derive(Clone)]
pub struct PayingClient {
    http: X402PayingClient,
    payer: Arc<dyn Payer>,
    provider: DynProvider,
    budget: Option<Budget>,
}

/// A session's budget: its file and the ledger that reserves for it.
#[derive(Clone)]
struct Budget {
    session: Arc<SessionFile>,
    ledger: Arc<Ledger>,
}

impl fmt::Debug for PayingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayingClient")
            .field("kind", &self.payer.kind())
            .field("account", &self.payer.sender())
            .field("session", &self.budget.as_ref().map(|b| b.session.session_id))
            .finish_non_exhaustive()
    }
}

impl PayingClient {
    /// A client paying under a session the owner granted: the equivalent of NERO's
    /// `aaNativeSessionSigner`.
    #[doc(alias = "aaNativeSessionSigner")]
    pub fn session() -> SessionClientBuilder {
        SessionClientBuilder::default()
    }

    /// A client paying with the owner key of an account of `kind`: the equivalent of NERO's
    /// `aaNativeSigner` (with its `entryPoint` / `accountFactory` overrides).
    #[doc(alias = "aaNativeSigner")]
    pub fn owner(owner: PrivateKeySigner, kind: AccountKind) -> OwnerClientBuilder {
        OwnerClientBuilder {
            owner,
            kind,
            network: None,
            entry_point: None,
            account_factory: None,
            salt: U256::ZERO,
            sender: None,
            http: None,
        }
    }

    /// A GET to finish with [`PayRequest::send`].
    pub fn get(&self, url: impl IntoUrl) -> PayRequest {
        self.request(Method::GET, url)
    }

    /// A POST; give it a buffered body ([`PayRequest::body`]), since a paid request is sent
    /// twice.
    pub fn post(&self, url: impl IntoUrl) -> PayRequest {
        self.request(Method::POST, url)
    }

    /// Any request; the payment's requestHash binds its method and URL.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> PayRequest {
        PayRequest { builder: self.http.request(method, url), client: self.clone() }
    }

    /// The smart account that pays.
    pub fn account(&self) -> Address {
        self.payer.sender()
    }

    /// The paying account's contract family (how its ops are encoded and signed).
    pub fn kind(&self) -> AccountKind {
        self.payer.kind()
    }

    /// The session this client pays under (`None` for an owner-key client).
    pub fn session_file(&self) -> Option<&SessionFile> {
        self.budget.as_ref().map(|b| b.session.as_ref())
    }

    /// What the budget ledger says is left now (chain time): `None` for an owner-key client,
    /// whose account has no budget. Payments in flight count as spent until they settle or fail.
    pub async fn remaining(&self) -> Result<Option<Remaining>, SdkError> {
        let Some(budget) = &self.budget else { return Ok(None) };
        let now = latest_timestamp(&self.provider).await?;
        let session_id = budget.session.session_id;
        Ok(Some(blocking(&budget.ledger, move |l| l.remaining(session_id, now)).await?))
    }

    /// Takes the chain's figures for the session into the ledger (spending by other clients of
    /// the same session, a revocation); the session builder does it once at build time.
    ///
    /// Also settles, from the chain's word, reservations a crashed process left pending (see
    /// [`Recovery`]); building the client does the same.
    pub async fn sync(&self) -> Result<Recovery, SdkError> {
        let Some(budget) = &self.budget else { return Ok(Recovery::default()) };
        sync_ledger(&self.provider, &budget.session, &budget.ledger).await?;
        recover_pending(&self.provider, &budget.session, &budget.ledger).await
    }

    /// The typed reason behind a refusal: x402-reqwest keeps only the reason string of an
    /// `accepts[]` entry it could not pay, so the refused entry is checked again here.
    fn explain(&self, error: ClientError) -> PayError {
        match error {
            ClientError::Signer(error) => PayError::NotSigned(error),
            ClientError::NothingPayable { refusals } => {
                let typed = refusals.iter().find_map(|r| self.payer.check(&r.accepted).err());
                match typed {
                    Some(error) => PayError::NotSigned(error),
                    None => PayError::Client(ClientError::NothingPayable { refusals }),
                }
            }
            other => PayError::Client(other),
        }
    }
}

/// A request about to be sent through a [`PayingClient`].
#[derive(Debug)]
pub struct PayRequest {
    builder: reqwest_middleware::RequestBuilder,
    client: PayingClient,
}

impl PayRequest {
    /// Adds a header, sent with the first request and with the paid retry.
    pub fn header(self, name: &str, value: &str) -> Self {
        Self { builder: self.builder.header(name, value), ..self }
    }

    /// A request body; it must be buffered (not a stream), since a paid request is sent twice.
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        Self { builder: self.builder.body(body), ..self }
    }

    /// Sends the request; answers a 402 by paying once (within the grant) and retrying once.
    /// The response tells what was paid and how it ended ([`PaidResponse::payment`]).
    pub async fn send(self) -> Result<PaidResponse, PayError> {
        self.client.http.send(self.builder).await.map_err(|e| self.client.explain(e))
    }
}

/// Why a request through a [`PayingClient`] did not get a paid answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    /// Nothing was signed or sent: the session's scopes or remaining budget rule the payment
    /// out ([`PayError::violation`]), or the signer could not pay this requirement (another
    /// chain or token, the paymaster failed).
    #[error("payment not made: {0}")]
    NotSigned(#[source] SignerError),
    /// The HTTP exchange, or a failure after the payment was signed.
    #[error(transparent)]
    Client(ClientError),
}

impl PayError {
    /// The stable reason string: a [`Rule::reason`] for a scope refusal (`spend_cap_exceeded`,
    /// `session_revoked`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotSigned(e) => e.reason(),
            Self::Client(e) => e.reason(),
        }
    }

    /// The grant rule the payment would have broken, with its figures.
    pub fn violation(&self) -> Option<&ScopeViolation> {
        match self {
            Self::NotSigned(SignerError::Scope(v) | SignerError::Ledger(LedgerError::Scope(v))) => {
                Some(v)
            }
            _ => None,
        }
    }

    /// Just the rule of [`PayError::violation`], to branch on (`Rule::OverPeriodCap`, …);
    /// `None` when the refusal was not a scope's.
    pub fn rule(&self) -> Option<Rule> {
        self.violation().map(ScopeViolation::rule)
    }
}

/// Builds a [`PayingClient`] that pays under a session. See [`PayingClient::session`].
///
/// Everything not set comes from the session file (chain, account, EntryPoint, settlement
/// contract, token) and from the network preset of its chain (RPC, bundler and paymaster URLs).
#[doc(alias = "aaNativeSessionSigner")]
#[derive(Default)]
pub struct SessionClientBuilder {
    session: Option<SessionSource>,
    key: Option<KeySource>,
    network: Option<Network>,
    rpc_url: Option<String>,
    bundler_url: Option<String>,
    paymaster: Option<(String, String)>,
    settlement: Option<Address>,
    ledger: Option<LedgerSource>,
    http: Option<reqwest::Client>,
    replica: u32,
}

enum SessionSource {
    File(Box<SessionFile>),
    Path(PathBuf),
}

enum KeySource {
    Key(PrivateKeySigner),
    Path(PathBuf),
}

enum LedgerSource {
    Shared(Arc<Ledger>),
    Path(PathBuf),
    Url(String),
}

impl fmt::Debug for SessionClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionClientBuilder")
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl SessionClientBuilder {
    /// The session file already in memory; it is checked again at
    /// [`SessionClientBuilder::build`] ([`SessionFile::validate`]).
    pub fn session(mut self, session: SessionFile) -> Self {
        self.session = Some(SessionSource::File(Box::new(session)));
        self
    }

    /// The session file, read (and checked) at [`SessionClientBuilder::build`].
    pub fn session_file(mut self, path: impl AsRef<Path>) -> Self {
        self.session = Some(SessionSource::Path(path.as_ref().to_owned()));
        self
    }

    /// The session key itself; build refuses it unless it is the grant's session key.
    pub fn key(mut self, key: PrivateKeySigner) -> Self {
        self.key = Some(KeySource::Key(key));
        self
    }

    /// The 0600 key file (refused if others can read it). Without a key or key file the key
    /// comes from `X402_AA_SESSION_KEY`.
    pub fn key_file(mut self, path: impl AsRef<Path>) -> Self {
        self.key = Some(KeySource::Path(path.as_ref().to_owned()));
        self
    }

    /// Where URLs (and a paymaster API key) come from; default: the preset of the session's chain.
    pub fn network(mut self, network: Network) -> Self {
        self.network = Some(network);
        self
    }

    /// Overrides the network's RPC URL; build checks it serves the session's chain.
    pub fn rpc_url(mut self, url: impl Into<String>) -> Self {
        self.rpc_url = Some(url.into());
        self
    }

    /// Overrides the network's bundler, which estimates each op's gas.
    pub fn bundler_url(mut self, url: impl Into<String>) -> Self {
        self.bundler_url = Some(url.into());
        self
    }

    /// Overrides the network's paymaster (URL and API key), which sponsors every op. Required
    /// when the grant lets no op pay its own gas ([`SdkError::PaymasterRequired`]).
    pub fn paymaster(mut self, url: impl Into<String>, api_key: impl Into<String>) -> Self {
        self.paymaster = Some((url.into(), api_key.into()));
        self
    }

    /// Only checked: the grant names the settlement contract, and a different one is refused here
    /// rather than at the first payment.
    pub fn settlement_contract(mut self, settlement: Address) -> Self {
        self.settlement = Some(settlement);
        self
    }

    /// A ledger shared with other clients (an operator's sessions; sessions are kept apart by
    /// their id). Default: an in-memory ledger synced from the chain at build time.
    pub fn ledger(mut self, ledger: Arc<Ledger>) -> Self {
        self.ledger = Some(LedgerSource::Shared(ledger));
        self
    }

    /// A ledger file that survives restarts (SQLite; any number of processes may share it).
    pub fn ledger_path(mut self, path: impl AsRef<Path>) -> Self {
        self.ledger = Some(LedgerSource::Path(path.as_ref().to_owned()));
        self
    }

    /// A Postgres ledger (`postgres://user:password@host:port/dbname`), connected at
    /// [`SessionClientBuilder::build`]: replicas on several machines share one budget check.
    pub fn ledger_url(mut self, url: impl Into<String>) -> Self {
        self.ledger = Some(LedgerSource::Url(url.into()));
        self
    }

    /// The reqwest client underneath (timeouts, proxies, TLS).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// This process is replica `index` of several paying under the same session at once: see
    /// [`PaymentSigner::replica`]. Replicas sharing one ledger file also share the budget check
    /// before signing; without one, the account's caps still hold on chain.
    pub fn replica(mut self, index: u32) -> Self {
        self.replica = index;
        self
    }

    /// Loads and checks the session file and key, connects (checking the chain id), opens the
    /// ledger, registers the session, takes the chain's figures for it and recovers what a
    /// previous process left pending ([`PayingClient::sync`]). Nothing is paid yet.
    pub async fn build(self) -> Result<PayingClient, SdkError> {
        let file = match self.session {
            Some(SessionSource::File(file)) => {
                file.validate()?;
                *file
            }
            Some(SessionSource::Path(path)) => SessionFile::load(path)?,
            None => {
                return Err(SdkError::Missing {
                    what: "session",
                    hint: "pass SessionClientBuilder::session_file or ::session",
                });
            }
        };
        let key = match self.key {
            Some(KeySource::Key(key)) => key,
            Some(KeySource::Path(path)) => load_session_key(Some(&path), &file)?,
            None => load_session_key(None, &file)?,
        };
        if let Some(given) = self.settlement
            && given != file.settlement
        {
            return Err(SdkError::SessionMismatch {
                what: "settlement contract",
                given,
                session: file.settlement,
            });
        }
        let mut network = self
            .network
            .or_else(|| Network::for_chain(file.chain_id))
            .unwrap_or_else(Network::custom);
        if let Some(url) = self.rpc_url {
            network = network.with_rpc_url(url);
        }
        if let Some(url) = self.bundler_url {
            network = network.with_bundler(url);
        }
        if let Some((url, api_key)) = self.paymaster {
            network = network.with_paymaster(url, api_key);
        }
        let (provider, chain_id) = network.connect().await?;
        if chain_id != file.chain_id {
            return Err(SdkError::WrongChain {
                expected: file.chain_id,
                got: chain_id,
                rpc_url: network.rpc_url().unwrap_or_default().to_owned(),
            });
        }
        let grant = file.grant()?;
        if grant.gasLifetimeBudget.is_zero() && network.paymaster_url().is_none() {
            return Err(SdkError::PaymasterRequired);
        }
        let ledger = match self.ledger {
            Some(LedgerSource::Shared(ledger)) => ledger,
            Some(LedgerSource::Path(path)) => Arc::new(Ledger::open(path)?),
            Some(LedgerSource::Url(url)) => {
                // Connecting blocks (network, schema check): off the runtime's workers.
                Arc::new(crate::ledger::connect_blocking(url).await?)
            }
            None => Arc::new(Ledger::in_memory()?),
        };
        let entry_point = file.entry_point;
        let session = Arc::new(file.clone());
        let account = SessionAccount::new(file, key)?;
        let signer = configure(PaymentSigner::new(account, provider.clone()).await?, &network)?
            .entry_point(entry_point)
            .replica(self.replica);
        let scheme = AaNativeScheme::with_ledger(signer, provider.clone(), ledger.clone())?;
        sync_ledger(&provider, &session, &ledger).await?;
        recover_pending(&provider, &session, &ledger).await?;
        let budget = Some(Budget { session, ledger });
        Ok(finish(scheme, provider, budget, self.http))
    }
}

/// Builds a [`PayingClient`] that pays with an owner key. See [`PayingClient::owner`].
#[doc(alias = "aaNativeSigner")]
pub struct OwnerClientBuilder {
    owner: PrivateKeySigner,
    kind: AccountKind,
    network: Option<Network>,
    entry_point: Option<Address>,
    account_factory: Option<Address>,
    salt: U256,
    sender: Option<Address>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for OwnerClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerClientBuilder")
            .field("kind", &self.kind)
            .field("owner", &self.owner.address())
            .finish_non_exhaustive()
    }
}

impl OwnerClientBuilder {
    /// RPC, bundler and paymaster URLs, settlement contract, token, EntryPoint and factories.
    pub fn network(mut self, network: Network) -> Self {
        self.network = Some(network);
        self
    }

    /// Overrides the network's EntryPoint (v0.6 ABI).
    pub fn entry_point(mut self, entry_point: Address) -> Self {
        self.entry_point = Some(entry_point);
        self
    }

    /// Overrides the network's factory for this kind: selects another account contract.
    pub fn account_factory(mut self, factory: Address) -> Self {
        self.account_factory = Some(factory);
        self
    }

    /// The factory salt of the owner's account (default 0).
    pub fn salt(mut self, salt: U256) -> Self {
        self.salt = salt;
        self
    }

    /// The account's address when it is not the factory's `(owner, salt)` account (already
    /// deployed some other way).
    pub fn account(mut self, sender: Address) -> Self {
        self.sender = Some(sender);
        self
    }

    /// The reqwest client underneath (timeouts, proxies, TLS).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Connects and derives the account from the owner, kind, factory and salt (or checks the
    /// given [`account`](Self::account) against it for Kernel, Safe and Biconomy). Fails without
    /// a network, token or settlement contract, and for a kind with no owner-key payer.
    pub async fn build(self) -> Result<PayingClient, SdkError> {
        let network = self.network.ok_or(SdkError::Missing {
            what: "network",
            hint: "pass OwnerClientBuilder::network (Network::from_env, a preset or an RPC URL)",
        })?;
        let kind = self.kind;
        let (provider, _) = network.connect().await?;
        let entry_point = self.entry_point.unwrap_or(network.entry_point());
        let factory = match self.account_factory {
            Some(factory) => factory,
            None => network.require_factory(kind)?,
        };
        let token = network.token().ok_or(SdkError::Missing {
            what: "payment token",
            hint: "use Network::with_token or X402_AA_TOKEN",
        })?;
        let settlement = network.require_settlement()?;
        let (owner, salt, http) = (self.owner, self.salt, self.http);
        let connected = Connected { provider: &provider, network: &network, entry_point, http };
        // One arm per account kind with an owner-key `PaymentAccount`; a new kind adds its arm.
        // The kinds whose address follows from their deployment compute it here; SimpleAccount's
        // factory is asked through the EntryPoint.
        let client = match kind {
            AccountKind::SimpleAccount | AccountKind::SessionKeyAccount => {
                let sender = match self.sender {
                    Some(sender) => sender,
                    None => {
                        sender_address(&provider, entry_point, kind, factory, owner.address(), salt)
                            .await?
                    }
                };
                let account = OwnerAccount {
                    kind,
                    owner,
                    sender,
                    token,
                    settlement,
                    account_factory: factory,
                    salt,
                };
                connected.owner_client(account).await?
            }
            AccountKind::Kernel => {
                let account = KernelOwnerAccount::with_deployment(
                    owner,
                    token,
                    settlement,
                    salt,
                    factory,
                    KernelAbi::CANONICAL,
                );
                expect_sender(self.sender, account.sender())?;
                connected.owner_client(account).await?
            }
            AccountKind::Safe => {
                let deployment =
                    SafeDeployment { proxy_factory: factory, ..network.safe_deployment() };
                let account =
                    SafeOwnerAccount::single_owner(owner, deployment, token, settlement, salt)
                        .map_err(|e| SdkError::Chain(e.to_string()))?;
                expect_sender(self.sender, account.sender())?;
                connected.owner_client(account).await?
            }
            AccountKind::Biconomy => {
                let deployment = biconomy::Deployment { factory, ..network.biconomy_deployment() };
                let account = BiconomyOwnerAccount::new(owner, deployment, token, settlement, salt);
                expect_sender(self.sender, account.sender())?;
                connected.owner_client(account).await?
            }
            other => {
                return Err(SdkError::UnsupportedAccountKind {
                    kind: other,
                    role: "owner-key payments",
                });
            }
        };
        Ok(client)
    }
}

/// The builder's `account(..)` must name the address the kind's deployment gives the owner.
fn expect_sender(given: Option<Address>, derived: Address) -> Result<(), SdkError> {
    match given {
        Some(given) if given != derived => Err(SdkError::Chain(format!(
            "account {given} is not the owner's account {derived} of this kind and deployment"
        ))),
        _ => Ok(()),
    }
}

/// What every owner-key account kind's client is built against.
struct Connected<'a> {
    provider: &'a DynProvider,
    network: &'a Network,
    entry_point: Address,
    http: Option<reqwest::Client>,
}

impl Connected<'_> {
    /// The paying client of `account`, an owner-key account of any kind (no budget).
    async fn owner_client<A: PaymentAccount + 'static>(
        self,
        account: A,
    ) -> Result<PayingClient, SdkError> {
        let signer = PaymentSigner::new(account, self.provider.clone()).await?;
        let signer = configure(signer, self.network)?.entry_point(self.entry_point);
        let scheme = AaNativeScheme::new(signer, self.provider.clone());
        Ok(finish(scheme, self.provider.clone(), None, self.http))
    }
}

/// The network's bundler and paymaster, if it names them.
fn configure<A: PaymentAccount>(
    mut signer: PaymentSigner<A>,
    network: &Network,
) -> Result<PaymentSigner<A>, SdkError> {
    if let Some(url) = network.bundler_url() {
        signer = signer.bundler(BundlerClient::new(url)?);
    }
    if let Some(url) = network.paymaster_url() {
        let api_key = network.paymaster_api_key().unwrap_or_default();
        signer = signer.paymaster(PaymasterClient::new(url)?, api_key);
    }
    Ok(signer)
}

fn finish<A: PaymentAccount + 'static>(
    scheme: AaNativeScheme<A>,
    provider: DynProvider,
    budget: Option<Budget>,
    http: Option<reqwest::Client>,
) -> PayingClient {
    let mut builder = X402PayingClient::builder().register(scheme.clone());
    if let Some(http) = http {
        builder = builder.client(http);
    }
    PayingClient { http: builder.build(), payer: Arc::new(scheme), provider, budget }
}

/// Reads the session's counters at one block and hands them to the ledger (its reconcile rule
/// keeps the larger of the chain's and its own figures), and marks a revoke-all.
async fn sync_ledger(
    provider: &DynProvider,
    session: &SessionFile,
    ledger: &Arc<Ledger>,
) -> Result<(), SdkError> {
    let block = provider.get_block_number().await.map_err(chain)?;
    let at = BlockId::from(block);
    let code = provider.get_code_at(session.account).block_id(at).await.map_err(chain)?;
    if code.is_empty() {
        return Ok(()); // nothing spent yet; the first payment deploys the account
    }
    let usage = read_usage_at(
        provider,
        session.host(),
        session.account,
        session.session_id,
        Address::ZERO,
        at,
    )
    .await
    .map_err(chain)?;
    let epoch = usage.account_epoch;
    let chain_state = OnChainState {
        block_number: block,
        status: match usage.status {
            ChainStatus::Unknown => ChainSessionStatus::NotEnabled,
            ChainStatus::Enabled => ChainSessionStatus::Enabled,
            ChainStatus::Revoked => ChainSessionStatus::Revoked,
        },
        period_index: usage.period_index,
        period_spent: usage.period_spent,
        lifetime_spent: usage.lifetime_spent,
    };
    let (session_id, revoked_all) = (session.session_id, epoch != session.signed_grant.grant.epoch);
    blocking(ledger, move |l| {
        l.reconcile(session_id, &chain_state)?;
        if revoked_all {
            l.mark_revoked(session_id)?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// What building a session client (or [`PayingClient::sync`]) did with the reservations a previous
/// process left pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Settled on chain by this account: committed with the transaction that carried them.
    pub committed: usize,
    /// Their requestHash was settled by another payer: this signed op can never execute.
    pub released: usize,
    /// Not settled yet: kept (counted as spent) until they land or expire.
    pub pending: usize,
}

/// Settles, from the chain's word, the reservations a previous process left pending: an agent
/// killed after sending a payment, or before reading the merchant's answer, restarts with the
/// payment either recorded once (the settlement contract's `ReceiptLog` for its requestHash and
/// this account) or still counted as spent until it can no longer land. Nothing is released
/// while it might still execute.
async fn recover_pending(
    provider: &DynProvider,
    session: &SessionFile,
    ledger: &Arc<Ledger>,
) -> Result<Recovery, SdkError> {
    let session_id = session.session_id;
    let pending: Vec<_> = blocking(ledger, move |l| l.history(session_id))
        .await?
        .into_iter()
        .filter(|r| r.state == ReservationState::Pending)
        .collect();
    let mut recovery = Recovery::default();
    if pending.is_empty() {
        return Ok(recovery);
    }
    let settlement = SettlementContract::new(session.settlement, provider);
    for reservation in pending {
        let request_hash = reservation.request_hash;
        let settled = settlement.isSettled(request_hash).call().await.map_err(chain)?;
        if !settled {
            recovery.pending += 1;
            continue;
        }
        let filter = Filter::new()
            .address(session.settlement)
            .event_signature(ReceiptLog::SIGNATURE_HASH)
            .topic2(session.account.into_word())
            .topic3(request_hash)
            .from_block(0);
        let log = provider.get_logs(&filter).await.map_err(chain)?.into_iter().next();
        let id = reservation.id;
        let Some((tx_hash, block_number)) =
            log.and_then(|log| Some((log.transaction_hash?, log.block_number?)))
        else {
            let reason = "request settled by another payer".to_owned();
            blocking(ledger, move |l| l.release(id, &reason)).await?;
            recovery.released += 1;
            continue;
        };
        let receipt = provider
            .get_transaction_receipt(tx_hash)
            .await
            .map_err(chain)?
            .ok_or_else(|| SdkError::Chain(format!("no receipt for {tx_hash}")))?;
        let user_op_hash = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| {
                let event = UserOperationEvent::decode_log(&log.inner).ok()?;
                (log.address() == session.entry_point && event.sender == session.account)
                    .then_some(event.userOpHash)
            })
            .ok_or_else(|| {
                SdkError::Chain(format!("{tx_hash} settled {request_hash} without a UserOp"))
            })?;
        let record = SettlementRecord { tx_hash, user_op_hash, block_number };
        blocking(ledger, move |l| l.commit(id, &record)).await?;
        recovery.committed += 1;
    }
    Ok(recovery)
}

/// The parts of an [`AaNativeScheme`] a [`PayingClient`] needs, without its account type.
trait Payer: Send + Sync {
    fn check(&self, accepted: &serde_json::Value) -> Result<(), SignerError>;
    fn sender(&self) -> Address;
    fn kind(&self) -> AccountKind;
}

impl<A: PaymentAccount + 'static> Payer for AaNativeScheme<A> {
    fn check(&self, accepted: &serde_json::Value) -> Result<(), SignerError> {
        AaNativeScheme::check(self, accepted).map(|_| ())
    }

    fn sender(&self) -> Address {
        self.signer().account().sender()
    }

    fn kind(&self) -> AccountKind {
        self.signer().account().kind()
    }
}
