//! Merchant side of aa-native x402: an axum paywall built on x402-axum.
//!
//! x402-axum does the protocol: it answers an unpaid request with `402` and a `PAYMENT-REQUIRED`
//! header, matches the client's `accepted` against the price tags, asks the facilitator to
//! `/verify`, runs the handler, `/settle`s after a 2xx answer (or before the handler, if asked) and
//! relays the facilitator's settle JSON in `PAYMENT-RESPONSE`. This crate adds what aa-native
//! needs on top, without replacing any of it:
//!
//! - [`price_tag`]: aa-native price tags written the way people say prices (`"0.01 USDT"`), turned
//!   into atomic units in integer arithmetic by [`x402_aa::x402::TokenAmount`];
//!   [`exact_price_tag`]: x402's EIP-3009 `exact` tags, offered beside them so the official x402
//!   clients can pay the same route (the client picks).
//! - [`Paywall`] / [`PaywallLayer`]: x402-axum's layer with a thin wrapper in front of it
//!   ([`PaywallService`]) for what x402-axum 2.0.2 cannot be configured to do:
//!   - it decodes `PAYMENT-SIGNATURE` as standard padded base64 only, while NERO's docs say
//!     base64url: the wrapper re-encodes any base64 flavour to the standard one;
//!   - its payload type refuses `"extensions": null`, which NERO clients send: dropped;
//!   - it matches `accepted` by string equality, so an echo with other address case is "no
//!     matching requirements": an `accepted` equal to a price tag as aa-native requirements is
//!     replaced by that tag's exact wire form (nothing signed covers `accepted`);
//!   - on a failed settlement it answers `402` with only the reason inside a JSON body: the wrapper
//!     also relays the facilitator's failed settle JSON in `PAYMENT-RESPONSE`, as x402 v2 says,
//!     so a client can tell "never submitted" from "may still land";
//!   - its `402` has an empty body: the wrapper puts the `PaymentRequired` JSON there too, where
//!     NERO's clients (and people with curl) look for it;
//!   - its `402` may be cached by proxies: the wrapper adds `Cache-Control: no-store`, as the
//!     official x402 server does;
//!   - it has no idempotency: the wrapper honours the x402 `payment-identifier` extension
//!     ([`payment_id`]), which every layer declares.
//! - [`binding`]: an aa-native payment whose disclosed request binding names another method or
//!   resource than the request it is presented with is refused (`request_mismatch`) before the
//!   facilitator is asked: x402-axum matches price tags, not resources, so a payment for `/a` would
//!   otherwise pay for `/b` at the same price.
//! - Every layer's `resource` carries `mimeType` (`application/json` unless set) and
//!   `description` (empty unless set), as the official server's does.
//! - [`demo`]: the example paid API (`GET /joke` paid, `GET /health` free) served by the
//!   `paid-api` binary.

#![warn(missing_docs)]

pub mod binding;
mod capture;
mod compat;
pub mod demo;
mod error;
pub mod payment_id;
mod price;

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{extract::Request, response::Response};
use tower::{Layer, Service};
use url::Url;
use x402_axum::{X402LayerBuilder, X402Middleware, layer::X402MiddlewareService};

pub use capture::SettlementCapture;
pub use error::PaywallError;
pub use payment_id::PaymentIdentifierDeclaration;
pub use price::{
    DEFAULT_MAX_TIMEOUT_SECONDS, EXACT, Eip712Domain, Token, exact_price_tag, price_tag,
    requirements, tag,
};
/// What a facilitator implements; re-exported so a merchant can plug in its own (or a stub).
pub use x402_axum::facilitator_client::FacilitatorClient;
pub use x402_axum::paygate::StaticPriceTags;
pub use x402_types::{facilitator::Facilitator, proto, proto::v2::PriceTag};

/// A paywall bound to one facilitator; [`Paywall::layer`] makes the tower layer for a route.
///
/// Settles after the handler answered 2xx by default (nothing is charged for a failed request);
/// [`Paywall::settle_before_execution`] settles first and runs the handler only once paid.
#[derive(Debug, Clone)]
pub struct Paywall<F> {
    middleware: X402Middleware<SettlementCapture<F>>,
}

impl Paywall<Arc<FacilitatorClient>> {
    /// A paywall whose facilitator is reached over HTTP at `facilitator_url` (`/verify`,
    /// `/settle`, `/supported` below it).
    pub fn new(facilitator_url: &str) -> Result<Self, PaywallError> {
        let client = FacilitatorClient::try_from(facilitator_url).map_err(|source| {
            PaywallError::FacilitatorUrl { url: facilitator_url.to_owned(), source }
        })?;
        Ok(Self::from_facilitator(Arc::new(client)))
    }
}

impl<F: Clone> Paywall<F> {
    /// A paywall over any [`Facilitator`] implementation (in-process, or a test stub).
    pub fn from_facilitator(facilitator: F) -> Self {
        Self { middleware: X402Middleware::from_facilitator(SettlementCapture::new(facilitator)) }
    }

    /// Settle before running the handler; the handler then runs only for a settled payment.
    pub fn settle_before_execution(self) -> Self {
        Self { middleware: self.middleware.settle_before_execution() }
    }

    /// Settle after the handler answered 2xx (the default); a failed request is not charged.
    pub fn settle_after_execution(self) -> Self {
        Self { middleware: self.middleware.settle_after_execution() }
    }

    /// The public origin of this API, for `resource.url` in the 402 (default: from `Host`).
    pub fn with_base_url(self, base_url: Url) -> Self {
        Self { middleware: self.middleware.with_base_url(base_url) }
    }

    /// The layer that puts `tags` (one or more ways to pay, offered in this order) in front of a
    /// route.
    pub fn layer(
        &self,
        tags: impl IntoIterator<Item = PriceTag>,
    ) -> Result<PaywallLayer<F>, PaywallError> {
        let tags: Vec<PriceTag> = tags.into_iter().collect();
        let (first, rest) = tags.split_first().ok_or(PaywallError::NoPriceTags)?;
        let x402 = rest
            .iter()
            .fold(self.middleware.with_price_tag(first.clone()), |b, t| b.with_price_tag(t.clone()))
            .with_mime_type("application/json".to_owned())
            .with_description(String::new())
            .with_extension(PaymentIdentifierDeclaration::default());
        Ok(PaywallLayer {
            x402,
            tags: tags.into(),
            ids: Default::default(),
            resource: None,
            require_binding: false,
        })
    }
}

/// The tower layer for one priced route: [`PaywallService`] around x402-axum's service.
#[derive(Clone)]
pub struct PaywallLayer<F> {
    x402: X402LayerBuilder<StaticPriceTags<PriceTag>, SettlementCapture<F>>,
    tags: Arc<[PriceTag]>,
    /// Paid answers by `payment-identifier`, shared by every service of this layer.
    ids: Arc<payment_id::PaymentIds>,
    /// The fixed `resource.url`, when set: what a payment's binding must name.
    resource: Option<Arc<Url>>,
    /// Refuse aa-native payments that do not disclose their request binding.
    require_binding: bool,
}

impl<F> std::fmt::Debug for PaywallLayer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaywallLayer").field("tags", &self.tags).finish_non_exhaustive()
    }
}

impl<F> PaywallLayer<F> {
    /// `resource.description` in the 402.
    pub fn with_description(self, description: impl Into<String>) -> Self {
        Self { x402: self.x402.with_description(description.into()), ..self }
    }

    /// `resource.mimeType` in the 402.
    pub fn with_mime_type(self, mime_type: impl Into<String>) -> Self {
        Self { x402: self.x402.with_mime_type(mime_type.into()), ..self }
    }

    /// A fixed `resource.url` instead of the base URL joined with the request path.
    pub fn with_resource(self, resource: Url) -> Self {
        Self {
            x402: self.x402.with_resource(resource.clone()),
            resource: Some(Arc::new(resource)),
            ..self
        }
    }

    /// Refuse aa-native payments that do not disclose what their requestHash binds
    /// ([`binding`]); by default they are accepted, as NERO's payload has no such field.
    pub fn require_request_binding(self) -> Self {
        Self { require_binding: true, ..self }
    }

    /// The price tags offered, in order.
    pub fn tags(&self) -> &[PriceTag] {
        &self.tags
    }
}

impl<S, F> Layer<S> for PaywallLayer<F>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    F: Facilitator + Clone + Sync,
{
    type Service =
        PaywallService<X402MiddlewareService<StaticPriceTags<PriceTag>, SettlementCapture<F>>>;

    fn layer(&self, inner: S) -> Self::Service {
        PaywallService {
            inner: self.x402.layer(inner),
            tags: self.tags.clone(),
            ids: self.ids.clone(),
            resource: self.resource.clone(),
            require_binding: self.require_binding,
        }
    }
}

/// The wrapper in front of x402-axum's service (crate docs: what it adds and why).
#[derive(Clone)]
pub struct PaywallService<S> {
    inner: S,
    tags: Arc<[PriceTag]>,
    ids: Arc<payment_id::PaymentIds>,
    resource: Option<Arc<Url>>,
    require_binding: bool,
}

impl<S> std::fmt::Debug for PaywallService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaywallService").field("tags", &self.tags).finish_non_exhaustive()
    }
}

impl<S> Service<Request> for PaywallService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready serves this call (tower's usual swap).
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let (tags, ids) = (self.tags.clone(), self.ids.clone());
        let (resource, require_binding) = (self.resource.clone(), self.require_binding);
        Box::pin(async move {
            let req = compat::normalize_request(req, &tags);
            if let Some(message) = binding::mismatch(&req, resource.as_deref(), require_binding) {
                let (response, _) = capture::capture(ready, binding::without_payment(req)).await;
                return Ok(compat::finish_response(binding::refusal(response, &message), None));
            }
            let Some((id, fingerprint)) = compat::payment_id(&req) else {
                let (response, settlement) = capture::capture(ready, req).await;
                return Ok(compat::finish_response(response, settlement));
            };
            let Some(slot) = ids.slot(&id, fingerprint) else {
                return Ok(compat::conflict(&id));
            };
            let mut kept = slot.lock().await;
            if let Some(answer) = kept.as_ref() {
                return Ok(answer.response());
            }
            let (response, settlement) = capture::capture(ready, req).await;
            let response = compat::finish_response(response, settlement);
            let paid = response.status().is_success()
                && response.headers().contains_key(x402_aa::x402::PAYMENT_RESPONSE_HEADER);
            if !paid {
                return Ok(response);
            }
            let (response, answer) = payment_id::Answer::keep(response).await;
            *kept = answer;
            Ok(response)
        })
    }
}
