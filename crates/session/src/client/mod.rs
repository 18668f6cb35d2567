//! Paying x402 APIs over HTTP with aa-native payments (feature `client`), on x402-reqwest.
//!
//! - [`AaNativeScheme`] is x402-reqwest's [`X402SchemeClient`] for aa-native: it offers a
//!   [`PaymentCandidate`] for each `accepts[]` entry the [`PaymentSigner`] supports and its budget
//!   can afford, and signs the chosen one through [`PaymentSigner::pay`]. Entries it cannot pay
//!   become [`Refusal`]s carrying the signer's or the ledger's reason.
//! - [`X402PayingClient`] is a reqwest client that answers a 402 by paying once and retrying once,
//!   then reconciles the payment with the budget ledger: [`PaymentSigner::settled`] when the
//!   merchant's `PAYMENT-RESPONSE` reports success and the chain shows the UserOp executed,
//!   [`PaymentSigner::failed`] when the payment certainly did not land, and nothing (the
//!   reservation lapses at `maxTimeoutSeconds`) when it may still land.
//!
//! # How the pieces fit x402-reqwest 2.0.2
//!
//! x402-reqwest's middleware consumes the 402, signs, retries and returns the retry's response;
//! it has no hook for the outcome, and its scheme callbacks see neither the HTTP request nor
//! anything per request. [`PaymentReconciler`], a middleware placed *outside* it, scopes a
//! per-request [`tokio::task_local!`] slot around the call: `accept` and `sign_payment` run in
//! the same task, so they find the request's method and URL there (for the requestHash) and leave
//! the signed payment and any refusal in it. When the response comes back the reconciler settles
//! or releases the reservation and attaches the decoded [`SettlementResponse`] and the
//! [`PaymentRecord`] to the response's extensions, where [`PaidResponse`] picks them up. Refusals
//! become a typed [`ClientError`] instead of x402-reqwest's bare "no matching payment option".
//! [`PaymentRequiredCompat`], placed *inside* it, re-encodes a `PAYMENT-REQUIRED` that
//! x402-reqwest could not read (base64url, `"extensions": null`) into the standard form.
//!
//! [`PaymentIdentifier`], also inside it, adds the x402 `payment-identifier` extension to the paid
//! retry when the 402 declares it (`payment_id`).
//!
//! Other schemes register beside aa-native: [`exact_scheme`] pays x402's EIP-3009 `exact` from a
//! plain key (x402-rs' client), and an [`AaNativeScheme`] over an
//! [`OwnerAccount`](crate::signer::OwnerAccount) pays aa-native from a SimpleAccount's owner key.
//!
//! Registered in a bare `X402Client` without the reconciler, an [`AaNativeScheme`] still pays,
//! but binds the requestHash to `GET` and nothing reconciles: reservations lapse after
//! `maxTimeoutSeconds` (catch up with [`crate::Ledger::reconcile`]).

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use alloy::{
    primitives::B256,
    providers::{DynProvider, Provider},
    sol_types::SolEvent,
};
use async_trait::async_trait;
use reqwest::{
    IntoUrl, Method, StatusCode,
    header::{HeaderMap, HeaderValue},
};
use reqwest_middleware as rqm;
use x402_aa::{
    ENTRY_POINT_V06,
    x402::{
        AaNativeRequirements, NAMESPACE, PAYMENT_REQUIRED_HEADER, PAYMENT_RESPONSE_HEADER, Reason,
        SCHEME, SettlementResponse, decode_payment_required, decode_payment_response,
        encode_payment_required, encode_payment_signature, network,
    },
};
use x402_aa_contracts::EntryPoint::UserOperationEvent;
use x402_reqwest::X402Client;
pub use x402_types::scheme::client::{
    FirstMatch, MaxAmount, PaymentCandidate, PaymentSelector, PreferChain, X402Error,
    X402SchemeClient,
};
use x402_types::{
    proto::{self, OriginalJson, v2},
    scheme::{X402SchemeId, client::PaymentCandidateSigner},
    util::Base64Bytes,
};

mod payment_id;

pub use payment_id::{PAYMENT_IDENTIFIER, PaymentIdentifier};
/// x402-rs' `exact` (EIP-3009) client; [`exact_scheme`] makes one from a plain key.
pub use x402_chain_eip155::v2_eip155_exact::client::V2Eip155ExactClient as ExactScheme;

/// x402's EIP-3009 `exact` scheme paid from `key`'s own token balance, for
/// [`X402PayingClientBuilder::register`]: what the official x402 clients pay with.
pub fn exact_scheme(
    key: alloy::signers::local::PrivateKeySigner,
) -> ExactScheme<alloy::signers::local::PrivateKeySigner> {
    ExactScheme::new(key)
}

use crate::{
    ledger::{Ledger, LedgerError, ReservationId},
    signer::{PaidRequest, PaymentAccount, PaymentSigner, SignedPayment, SignerError},
};

/// x402-reqwest's scheme client for aa-native payments from one account.
///
/// Cheap to clone; clones share the signer.
pub struct AaNativeScheme<A> {
    inner: Arc<SchemeInner<A>>,
}

struct SchemeInner<A> {
    signer: PaymentSigner<A>,
    /// Reads the settlement transaction's receipt before a reservation is committed.
    provider: DynProvider,
    /// The ledger `signer` reserves in, for the affordability check in `accept`.
    ledger: Option<Arc<Ledger>>,
}

impl<A: PaymentAccount + 'static> AaNativeScheme<A> {
    /// Pays through `signer`; `provider` is its chain (receipts are read through it).
    ///
    /// `accept` checks the requirements and the account's static limits; when `signer` has a
    /// ledger, prefer [`AaNativeScheme::with_ledger`] so the remaining budget is checked too.
    pub fn new(signer: PaymentSigner<A>, provider: DynProvider) -> Self {
        Self { inner: Arc::new(SchemeInner { signer, provider, ledger: None }) }
    }

    /// Like [`AaNativeScheme::new`], with `ledger` given to the signer (so the two cannot differ)
    /// and consulted in `accept`: a requirement the remaining budget cannot cover is not offered.
    pub fn with_ledger(
        signer: PaymentSigner<A>,
        provider: DynProvider,
        ledger: Arc<Ledger>,
    ) -> Result<Self, SignerError> {
        let signer = signer.ledger(ledger.clone())?;
        Ok(Self { inner: Arc::new(SchemeInner { signer, provider, ledger: Some(ledger) }) })
    }

    /// The signer payments go through (and its ledger), e.g. to report outcomes of payments
    /// made outside the reconciler.
    pub fn signer(&self) -> &PaymentSigner<A> {
        &self.inner.signer
    }

    /// Whether this scheme would offer to pay `accepted` now: the signer supports it
    /// ([`PaymentSigner::supports`]) and the session's limits and remaining budget cover it.
    ///
    /// Advisory: [`PaymentSigner::pay`] checks again, against chain time, and reserves.
    pub fn check(&self, accepted: &serde_json::Value) -> Result<AaNativeRequirements, SignerError> {
        let requirements = self.inner.signer.supports(accepted)?;
        self.inner.affordable(&requirements)?;
        Ok(requirements)
    }
}

impl<A> Clone for AaNativeScheme<A> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<A: PaymentAccount> fmt::Debug for AaNativeScheme<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AaNativeScheme")
            .field("chain_id", &self.inner.signer.chain_id())
            .field("ledger", &self.inner.ledger.is_some())
            .finish_non_exhaustive()
    }
}

impl<A> X402SchemeId for AaNativeScheme<A> {
    fn namespace(&self) -> &str {
        NAMESPACE
    }

    fn scheme(&self) -> &str {
        SCHEME
    }
}

impl<A: PaymentAccount + 'static> X402SchemeClient for AaNativeScheme<A> {
    fn accept(&self, payment_required: &proto::PaymentRequired) -> Vec<PaymentCandidate> {
        // aa-native exists only in x402 v2.
        let proto::PaymentRequired::V2(required) = payment_required else { return Vec::new() };
        let attempt = Attempt::current();
        let request = paid_request(required, attempt.as_ref());
        let mut candidates = Vec::new();
        for OriginalJson(raw) in &required.accepts {
            let Ok(accepted) = serde_json::from_str::<serde_json::Value>(raw.get()) else {
                continue;
            };
            if accepted.get("scheme").and_then(|s| s.as_str()) != Some(SCHEME) {
                continue; // another scheme's entry: not ours to refuse
            }
            match self.inner.check(&accepted) {
                Ok(requirements) => candidates.push(PaymentCandidate {
                    chain_id: network(requirements.chain_id),
                    asset: requirements.asset.to_checksum(None),
                    amount: requirements.amount,
                    scheme: SCHEME.to_owned(),
                    x402_version: v2::X402Version2::VALUE,
                    pay_to: requirements.pay_to.to_checksum(None),
                    signer: Box::new(CandidateSigner {
                        scheme: self.inner.clone(),
                        accepted,
                        requirements,
                        request: request.clone(),
                    }),
                }),
                Err(refusal) => {
                    if let Some(attempt) = &attempt {
                        attempt.lock().refusals.push(refusal);
                    }
                }
            }
        }
        if let Some(attempt) = &attempt {
            attempt.lock().candidates += candidates.len();
        }
        candidates
    }
}

impl<A: PaymentAccount> SchemeInner<A> {
    /// [`AaNativeScheme::check`], with the error as the [`Refusal`] of `accepted`.
    fn check(&self, accepted: &serde_json::Value) -> Result<AaNativeRequirements, Refusal> {
        let refusal = |error: SignerError, budget| Refusal::new(accepted.clone(), &error, budget);
        let requirements = self.signer.supports(accepted).map_err(|e| refusal(e, false))?;
        self.affordable(&requirements).map_err(|e| refusal(e, true))?;
        Ok(requirements)
    }

    /// The one policy check against the ledger's tally, without reserving, to decide between
    /// offers, at the chain time the signer last saw (carried forward by the wall clock). Time
    /// rules are left to `pay`, which reads the chain's time; without a ledger every check is
    /// left to `pay`.
    fn affordable(&self, requirements: &AaNativeRequirements) -> Result<(), SignerError> {
        let Some((session_id, _)) = self.signer.account().budget() else { return Ok(()) };
        let Some(ledger) = &self.ledger else { return Ok(()) };
        let now = self.signer.estimated_chain_time();
        let read = || ledger.check(session_id, requirements.pay_to, requirements.amount, now);
        match off_the_runtime(read) {
            Err(LedgerError::Scope(v)) if v.rule().is_time() => Ok(()),
            other => other.map_err(SignerError::from),
        }
    }
}

/// Runs a blocking ledger read from x402-reqwest's synchronous `accept` without stalling the
/// runtime: on a multi-threaded runtime the worker hands its other tasks to the rest of the pool
/// first (`block_in_place`); a current-thread runtime has no other worker to hand them to, and
/// outside a runtime nothing is stalled, so there the read simply runs.
fn off_the_runtime<T>(read: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(read),
        _ => read(),
    }
}

/// The method and endpoint a payment's requestHash binds: the 402's `resource.url` when it
/// names one (what the merchant advertised, see [`x402_aa::request_hash`]), else the request URL.
fn paid_request(
    required: &v2::PaymentRequired<OriginalJson>,
    attempt: Option<&Attempt>,
) -> PaidRequest {
    let (method, url) = match attempt {
        Some(attempt) => {
            let state = attempt.lock();
            (state.method.clone(), state.url.clone())
        }
        None => (Method::GET.to_string(), String::new()),
    };
    let url =
        required.resource.as_ref().map(|r| r.url.clone()).filter(|u| !u.is_empty()).unwrap_or(url);
    PaidRequest { method, url }
}

/// Signs one candidate when x402-reqwest's selector picks it.
struct CandidateSigner<A> {
    scheme: Arc<SchemeInner<A>>,
    accepted: serde_json::Value,
    requirements: AaNativeRequirements,
    request: PaidRequest,
}

#[async_trait]
impl<A: PaymentAccount + 'static> PaymentCandidateSigner for CandidateSigner<A> {
    async fn sign_payment(&self) -> Result<String, X402Error> {
        let attempt = Attempt::current();
        let signer = &self.scheme.signer;
        let header = match signer.pay(&self.accepted, &self.request).await {
            Ok(signed) => match encode_payment_signature(&signed.payload) {
                Ok(header) => Ok((signed, header)),
                Err(e) => {
                    let _ = signer.failed_async(&signed, e.reason()).await;
                    Err(SignerError::Requirements(e))
                }
            },
            Err(e) => Err(e),
        };
        match header {
            Ok((signed, header)) => {
                crate::fault::HALT_POINTS.reached("after_sign").await;
                if let Some(attempt) = attempt {
                    attempt.lock().signed = Some(Tracked {
                        scheme: self.scheme.clone(),
                        signed,
                        requirements: self.requirements,
                    });
                }
                Ok(header)
            }
            Err(error) => {
                let message = error.to_string();
                if let Some(attempt) = attempt {
                    attempt.lock().sign_error = Some(error);
                }
                Err(X402Error::SigningError(message))
            }
        }
    }
}

/// An offered requirement this client did not pay, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The `accepts[]` entry as offered.
    pub accepted: serde_json::Value,
    /// The signer's or the ledger's stable reason (`spend_cap_exceeded`, `network_mismatch`, …).
    pub reason: &'static str,
    /// The refusal in words, with its figures (for people and logs; not stable).
    pub message: String,
    /// True when the signer could pay such a requirement but the session's limits or remaining
    /// budget do not allow this one (as opposed to a chain, token or contract it does not use).
    pub budget: bool,
}

impl Refusal {
    fn new(accepted: serde_json::Value, error: &SignerError, budget: bool) -> Self {
        Self { accepted, reason: error.reason(), message: error.to_string(), budget }
    }
}

/// A payment this client signed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    /// What was paid: the chosen `accepts[]` entry.
    pub requirements: AaNativeRequirements,
    /// The `settle` requestHash: look it up with the settlement contract's `isSettled`.
    pub request_hash: B256,
    /// The op's userOpHash, to find its `UserOperationEvent`.
    pub user_op_hash: B256,
    /// The budget ledger's reservation, when the account has a budget and the signer a ledger.
    pub reservation: Option<ReservationId>,
    /// How it ended, and so what happened to the reservation.
    pub outcome: PaymentOutcome,
}

/// What became of a signed payment, and so of its budget reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The merchant reported success and the chain shows the UserOp executed in
    /// `transaction`: the reservation is committed.
    Settled {
        /// The transaction that included the op.
        transaction: B256,
        /// Its block.
        block_number: u64,
    },
    /// The payment certainly did not land (refused before submission, or its execution
    /// reverted): the reservation is released.
    Released {
        /// Why it certainly did not land: the facilitator's x402 reason, or `user_op_failed`
        /// when the op's execution reverted.
        reason: String,
    },
    /// It may still land, or the answer could not be checked: the reservation stays pending and
    /// lapses at `maxTimeoutSeconds` (a later [`crate::Ledger::reconcile`] takes the chain's word).
    Unresolved {
        /// Why the outcome is not known: a reason that may hide a landed payment, no
        /// `PAYMENT-RESPONSE`, a receipt not found, or the ledger's own failure.
        reason: String,
    },
}

impl fmt::Display for PaymentOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Settled { transaction, block_number } => {
                write!(f, "settled in {transaction} (block {block_number})")
            }
            Self::Released { reason } => write!(f, "not settled ({reason}); budget released"),
            Self::Unresolved { reason } => {
                write!(f, "unresolved ({reason}); budget still reserved")
            }
        }
    }
}

/// Why a request through [`X402PayingClient`] failed. Every variant has a [`ClientError::reason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The 402 offered nothing this client can pay: each aa-native entry was refused before
    /// anything was signed (budget refusals first), or there was none.
    #[error("nothing payable was offered{}", describe(refusals))]
    NothingPayable {
        /// Each aa-native entry refused, with its reason; empty when there was none.
        refusals: Vec<Refusal>,
    },
    /// Payable entries existed but the selector chose none of them (e.g. [`MaxAmount`] below
    /// every price).
    #[error(
        "the payment selector chose none of {candidates} payable requirements{}",
        describe(refusals)
    )]
    NotSelected {
        /// How many entries were payable.
        candidates: usize,
        /// The entries refused besides them.
        refusals: Vec<Refusal>,
    },
    /// The signer refused or failed while signing the chosen entry; nothing was sent.
    #[error("payment not signed: {0}")]
    Signer(#[source] SignerError),
    /// The paid retry failed without an answer; the payment may have been settled.
    #[error("paid request failed after signing, payment {}: {source}", payment.outcome)]
    AfterPayment {
        /// The payment signed and sent; its outcome says whether the reservation is still held.
        payment: Box<PaymentRecord>,
        /// The HTTP failure of the retry.
        #[source]
        source: rqm::Error,
    },
    /// The HTTP client, or x402-reqwest itself (e.g. an unreadable 402, a streaming body that
    /// cannot be retried).
    #[error(transparent)]
    Http(rqm::Error),
}

impl ClientError {
    /// Stable machine-readable reason: the signer's or ledger's when a payment was refused.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NothingPayable { refusals } => {
                refusals.first().map_or(NO_MATCHING_REQUIREMENT, |r| r.reason)
            }
            Self::NotSelected { .. } => NO_MATCHING_REQUIREMENT,
            Self::Signer(e) => e.reason(),
            Self::AfterPayment { .. } | Self::Http(_) => "http_error",
        }
    }

    /// The refusals behind [`ClientError::NothingPayable`] / [`ClientError::NotSelected`].
    pub fn refusals(&self) -> &[Refusal] {
        match self {
            Self::NothingPayable { refusals } | Self::NotSelected { refusals, .. } => refusals,
            _ => &[],
        }
    }
}

/// [`ClientError::reason`] when no refusal explains why nothing was paid.
const NO_MATCHING_REQUIREMENT: &str = "no_matching_requirement";

fn describe(refusals: &[Refusal]) -> String {
    refusals.iter().map(|r| format!("; {}: {}", r.reason, r.message)).collect()
}

/// A response from [`X402PayingClient`], with the payment it made, if any.
#[derive(Debug)]
pub struct PaidResponse {
    /// The merchant's final response (the paid retry's, when a payment was made).
    pub response: reqwest::Response,
    /// The merchant's decoded `PAYMENT-RESPONSE`, when it sent a readable one.
    pub settlement: Option<SettlementResponse>,
    /// The payment made for this request and its outcome; `None` when none was needed.
    pub payment: Option<PaymentRecord>,
    /// The x402 `payment-identifier` id sent with the payment, when the merchant declared the
    /// extension.
    pub payment_id: Option<String>,
    /// The `PAYMENT-SIGNATURE` sent with that id: sending it again (same request) returns the
    /// merchant's first answer without a second payment.
    pub payment_signature: Option<HeaderValue>,
}

impl PaidResponse {
    /// Takes what [`PaymentReconciler`] attached to a response (or a typed error out of a
    /// failed one), for callers using the middleware client directly.
    pub fn from_result(result: rqm::Result<reqwest::Response>) -> Result<Self, ClientError> {
        let mut response = match result {
            Ok(response) => response,
            Err(rqm::Error::Middleware(error)) => {
                return Err(match error.downcast::<ClientError>() {
                    Ok(error) => error,
                    Err(error) => ClientError::Http(rqm::Error::Middleware(error)),
                });
            }
            Err(error) => return Err(ClientError::Http(error)),
        };
        let payment = response.extensions_mut().remove::<PaymentRecord>();
        let settlement = response
            .extensions_mut()
            .remove::<SettlementResponse>()
            .or_else(|| settlement_header(response.headers()));
        let sent = response.extensions_mut().remove::<SentPaymentId>();
        let (payment_id, payment_signature) = sent.map(|s| (s.0, s.1)).unzip();
        Ok(Self { response, settlement, payment, payment_id, payment_signature })
    }

    /// The final response's status: 2xx once paid; a 402 again means the merchant refused the
    /// payment (see [`PaidResponse::payment`]).
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// True when this request's payment settled and its reservation was committed.
    pub fn is_settled(&self) -> bool {
        self.payment.as_ref().is_some_and(|p| matches!(p.outcome, PaymentOutcome::Settled { .. }))
    }
}

/// A reqwest client that pays 402s with the registered schemes and reconciles each payment.
///
/// ```text
/// PaymentReconciler → x402-reqwest X402Client (selector, schemes) → PaymentIdentifier
///   → PaymentRequiredCompat → reqwest
/// ```
#[derive(Debug, Clone)]
pub struct X402PayingClient {
    http: rqm::ClientWithMiddleware,
}

impl X402PayingClient {
    /// A builder with x402-reqwest's default [`FirstMatch`] selector.
    pub fn builder() -> X402PayingClientBuilder<FirstMatch> {
        X402PayingClientBuilder { client: reqwest::Client::new(), x402: X402Client::new() }
    }

    /// The middleware client underneath; its results go through [`PaidResponse::from_result`].
    pub fn http(&self) -> &rqm::ClientWithMiddleware {
        &self.http
    }

    /// A request to finish with headers or a body, then pass to [`X402PayingClient::send`].
    pub fn request(&self, method: Method, url: impl IntoUrl) -> rqm::RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends `request`, paying a 402 once with the registered schemes.
    pub async fn send(&self, request: rqm::RequestBuilder) -> Result<PaidResponse, ClientError> {
        PaidResponse::from_result(request.send().await)
    }

    /// `GET url`, paying a 402 once.
    pub async fn get(&self, url: impl IntoUrl) -> Result<PaidResponse, ClientError> {
        self.send(self.http.get(url)).await
    }
}

/// Builds an [`X402PayingClient`]: schemes in preference order, then a selector.
pub struct X402PayingClientBuilder<S> {
    client: reqwest::Client,
    x402: X402Client<S>,
}

impl<S> fmt::Debug for X402PayingClientBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X402PayingClientBuilder").finish_non_exhaustive()
    }
}

impl<S> X402PayingClientBuilder<S> {
    /// The reqwest client underneath (timeouts, proxies, TLS).
    pub fn client(self, client: reqwest::Client) -> Self {
        Self { client, ..self }
    }

    /// Adds a scheme client: an [`AaNativeScheme`], or any other x402-reqwest scheme (`exact`).
    pub fn register(self, scheme: impl X402SchemeClient + 'static) -> Self {
        Self { x402: self.x402.register(scheme), ..self }
    }

    /// How to choose among payable offers: [`FirstMatch`] (default), [`Cheapest`],
    /// [`MaxAmount`], [`PreferChain`] or any [`PaymentSelector`].
    pub fn with_selector<P: PaymentSelector + 'static>(
        self,
        selector: P,
    ) -> X402PayingClientBuilder<P> {
        X402PayingClientBuilder { client: self.client, x402: self.x402.with_selector(selector) }
    }
}

impl<S: PaymentSelector + Send + Sync + 'static> X402PayingClientBuilder<S> {
    /// The client, with the middlewares in the order the [`X402PayingClient`] diagram shows.
    pub fn build(self) -> X402PayingClient {
        let http = rqm::ClientBuilder::new(self.client)
            .with(PaymentReconciler)
            .with(self.x402)
            .with(PaymentIdentifier)
            .with(PaymentRequiredCompat)
            .build();
        X402PayingClient { http }
    }
}

/// Chooses the cheapest payable offer (the first of equals). Amounts are compared in atomic
/// units, so this is meaningful among offers in one token.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cheapest;

impl PaymentSelector for Cheapest {
    fn select<'a>(&self, candidates: &'a [PaymentCandidate]) -> Option<&'a PaymentCandidate> {
        candidates.iter().min_by_key(|c| c.amount)
    }
}

/// The middleware outside x402-reqwest's that gives each request its per-request slot and
/// reconciles the payment made in it (module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentReconciler;

#[async_trait]
impl rqm::Middleware for PaymentReconciler {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: rqm::Next<'_>,
    ) -> rqm::Result<reqwest::Response> {
        let attempt = Attempt::new(req.method().as_str(), req.url().as_str());
        let result = ATTEMPT.scope(attempt.clone(), next.run(req, extensions)).await;
        let state = std::mem::take(&mut *attempt.lock());
        match result {
            Ok(mut response) => {
                if let (Some(id), Some(signature)) = (state.payment_id, state.payment_signature) {
                    response.extensions_mut().insert(SentPaymentId(id, signature));
                }
                if let Some(tracked) = state.signed {
                    crate::fault::HALT_POINTS.reached("after_send").await;
                    let settlement = settlement_header(response.headers());
                    let record = tracked.resolve(&response, settlement.as_ref()).await;
                    if let Some(settlement) = settlement {
                        response.extensions_mut().insert(settlement);
                    }
                    response.extensions_mut().insert(record);
                }
                Ok(response)
            }
            Err(error) => Err(state.into_error(error)),
        }
    }
}

/// The middleware inside x402-reqwest's: makes a `PAYMENT-REQUIRED` it cannot read (it decodes
/// standard padded base64 into a v2 body with an `extensions` map) readable, if it is a valid
/// x402 v2 `PaymentRequired` in another base64 flavour or with `"extensions": null`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentRequiredCompat;

#[async_trait]
impl rqm::Middleware for PaymentRequiredCompat {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: rqm::Next<'_>,
    ) -> rqm::Result<reqwest::Response> {
        let mut response = next.run(req, extensions).await?;
        if response.status() == StatusCode::PAYMENT_REQUIRED
            && let Some(value) = response.headers().get(PAYMENT_REQUIRED_HEADER)
            && let Some(value) = readable_payment_required(value)
        {
            response.headers_mut().insert(PAYMENT_REQUIRED_HEADER, value);
        }
        Ok(response)
    }
}

fn readable_payment_required(value: &HeaderValue) -> Option<HeaderValue> {
    let readable = Base64Bytes::from(value.as_bytes())
        .decode()
        .ok()
        .and_then(|json| serde_json::from_slice::<v2::PaymentRequired<OriginalJson>>(&json).ok())
        .is_some();
    if readable {
        return None;
    }
    let required = decode_payment_required(value.as_bytes()).ok()?;
    HeaderValue::from_str(&encode_payment_required(&required).ok()?).ok()
}

fn settlement_header(headers: &HeaderMap) -> Option<SettlementResponse> {
    headers.get(PAYMENT_RESPONSE_HEADER).and_then(|v| decode_payment_response(v.as_bytes()).ok())
}

tokio::task_local! {
    static ATTEMPT: Attempt;
}

/// One request's shared state between the reconciler and the scheme callbacks.
#[derive(Clone, Default)]
struct Attempt(Arc<Mutex<AttemptState>>);

#[derive(Default)]
struct AttemptState {
    method: String,
    url: String,
    candidates: usize,
    refusals: Vec<Refusal>,
    signed: Option<Tracked>,
    sign_error: Option<SignerError>,
    /// The last 402 declared `payment-identifier`.
    payment_id_declared: bool,
    payment_id: Option<String>,
    payment_signature: Option<HeaderValue>,
}

/// The id and header [`PaymentIdentifier`] sent, carried to [`PaidResponse`].
#[derive(Debug, Clone)]
struct SentPaymentId(String, HeaderValue);

impl Attempt {
    fn new(method: &str, url: &str) -> Self {
        let state =
            AttemptState { method: method.to_owned(), url: url.to_owned(), ..Default::default() };
        Self(Arc::new(Mutex::new(state)))
    }

    /// The attempt of the request being served in this task, if a reconciler set one.
    fn current() -> Option<Self> {
        ATTEMPT.try_with(Self::clone).ok()
    }

    fn lock(&self) -> MutexGuard<'_, AttemptState> {
        // Only plain field writes happen under the lock; a poisoned one is still consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AttemptState {
    /// The error for a request that failed: typed when the payment machinery explains it,
    /// unchanged otherwise.
    fn into_error(self, error: rqm::Error) -> rqm::Error {
        if let Some(error) = self.sign_error {
            return rqm::Error::middleware(ClientError::Signer(error));
        }
        if let Some(tracked) = self.signed {
            let reason = "no answer to the paid request".to_owned();
            let payment = Box::new(tracked.record(PaymentOutcome::Unresolved { reason }));
            return rqm::Error::middleware(ClientError::AfterPayment { payment, source: error });
        }
        let no_option = match &error {
            rqm::Error::Middleware(e) => {
                matches!(e.downcast_ref::<X402Error>(), Some(X402Error::NoMatchingPaymentOption))
            }
            rqm::Error::Reqwest(_) => false,
        };
        if !no_option {
            return error;
        }
        let mut refusals = self.refusals;
        refusals.sort_by_key(|r| !r.budget); // stable: budget refusals first, each in offer order
        rqm::Error::middleware(match self.candidates {
            0 => ClientError::NothingPayable { refusals },
            candidates => ClientError::NotSelected { candidates, refusals },
        })
    }
}

/// A signed payment awaiting the merchant's answer.
struct Tracked {
    scheme: Arc<dyn Settle>,
    signed: SignedPayment,
    requirements: AaNativeRequirements,
}

/// The parts of a scheme the reconciler needs, without its account type. The ledger writes run
/// on the blocking pool (`*_async`), never on the runtime worker serving the request.
#[async_trait]
trait Settle: Send + Sync {
    async fn settled(
        &self,
        payment: &SignedPayment,
        tx: B256,
        block: u64,
    ) -> Result<(), SignerError>;
    async fn failed(&self, payment: &SignedPayment, reason: &str) -> Result<(), SignerError>;
    fn provider(&self) -> &DynProvider;
}

#[async_trait]
impl<A: PaymentAccount> Settle for SchemeInner<A> {
    async fn settled(
        &self,
        payment: &SignedPayment,
        tx: B256,
        block: u64,
    ) -> Result<(), SignerError> {
        self.signer.settled_async(payment, tx, block).await
    }

    async fn failed(&self, payment: &SignedPayment, reason: &str) -> Result<(), SignerError> {
        self.signer.failed_async(payment, reason).await
    }

    fn provider(&self) -> &DynProvider {
        &self.provider
    }
}

impl Tracked {
    fn record(&self, outcome: PaymentOutcome) -> PaymentRecord {
        PaymentRecord {
            requirements: self.requirements,
            request_hash: self.signed.request_hash,
            user_op_hash: self.signed.user_op_hash,
            reservation: self.signed.reservation,
            outcome,
        }
    }

    /// Commits, releases or keeps the reservation according to the merchant's answer.
    async fn resolve(
        self,
        response: &reqwest::Response,
        settlement: Option<&SettlementResponse>,
    ) -> PaymentRecord {
        let outcome = match settlement {
            Some(settlement) if settlement.success => self.confirm(settlement).await,
            Some(settlement) => {
                let reason = settlement.error_reason.as_deref().unwrap_or("settlement_failed");
                if never_executed(reason) {
                    self.release(reason).await
                } else {
                    PaymentOutcome::Unresolved { reason: reason.to_owned() }
                }
            }
            // x402-axum's answer to a payment it refused before settling: a fresh 402.
            None if response.status() == StatusCode::PAYMENT_REQUIRED => {
                match response.headers().get(PAYMENT_REQUIRED_HEADER) {
                    Some(value) => {
                        let error =
                            decode_payment_required(value.as_bytes()).ok().and_then(|r| r.error);
                        self.release(error.as_deref().unwrap_or("payment_refused")).await
                    }
                    None => PaymentOutcome::Unresolved {
                        reason: "402 without PAYMENT-REQUIRED or PAYMENT-RESPONSE".to_owned(),
                    },
                }
            }
            None => PaymentOutcome::Unresolved {
                reason: format!("HTTP {} without PAYMENT-RESPONSE", response.status().as_u16()),
            },
        };
        self.record(outcome)
    }

    /// The merchant says it settled: commit once the chain shows the UserOp's execution.
    async fn confirm(&self, settlement: &SettlementResponse) -> PaymentOutcome {
        let unresolved = |reason: String| PaymentOutcome::Unresolved { reason };
        let Ok(tx) = settlement.transaction.parse::<B256>() else {
            return unresolved(format!("transaction {:?} is not a hash", settlement.transaction));
        };
        let receipt = match self.scheme.provider().get_transaction_receipt(tx).await {
            Ok(Some(receipt)) => receipt,
            Ok(None) => return unresolved(format!("transaction {tx} not found on chain")),
            Err(e) => return unresolved(format!("chain rpc: {e}")),
        };
        let entry_point = self.requirements.extra.map_or(ENTRY_POINT_V06, |e| e.entry_point);
        let event = receipt.inner.logs().iter().find_map(|log| {
            let event = UserOperationEvent::decode_log(&log.inner).ok()?;
            (log.address() == entry_point && event.userOpHash == self.signed.user_op_hash)
                .then_some(event.data)
        });
        match (event, receipt.block_number) {
            (None, _) => unresolved(format!("transaction {tx} does not carry this UserOp")),
            (Some(_), None) => unresolved(format!("transaction {tx} is not in a block yet")),
            // The account charges a session in execution: a reverted payment cost no budget.
            (Some(event), Some(_)) if !event.success => {
                self.release(Reason::UserOpFailed.as_str()).await
            }
            (Some(_), Some(block)) => match self.scheme.settled(&self.signed, tx, block).await {
                Ok(()) => PaymentOutcome::Settled { transaction: tx, block_number: block },
                Err(e) => unresolved(format!("settled in {tx} but the ledger failed: {e}")),
            },
        }
    }

    async fn release(&self, reason: &str) -> PaymentOutcome {
        match self.scheme.failed(&self.signed, reason).await {
            Ok(()) => PaymentOutcome::Released { reason: reason.to_owned() },
            Err(e) => {
                PaymentOutcome::Unresolved { reason: format!("{reason}; ledger failed: {e}") }
            }
        }
    }
}

/// Facilitator reasons after which the UserOp certainly did not execute: refused before
/// submission, refused by the bundler, or reverted. Any other reason (`receipt_timeout`,
/// `in_flight`, `replay`, `internal_error`, unknown strings) may hide a payment that landed.
fn never_executed(reason: &str) -> bool {
    use Reason as R;
    reason.parse::<Reason>().is_ok_and(|r| {
        matches!(
            r,
            R::InvalidEnvelope
                | R::UnsupportedScheme
                | R::RequirementsMismatch
                | R::NetworkMismatch
                | R::AmountMismatch
                | R::AssetMismatch
                | R::PayToMismatch
                | R::InvalidInnerPayload
                | R::CalldataDecodeFailed
                | R::SpecMismatch
                | R::BundlerError
                | R::UserOpFailed
                | R::InvalidPaymentRequirements
        )
    })
}
