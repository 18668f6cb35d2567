//! Keeps the facilitator's settle answer for the wrapper, which x402-axum reduces to a string.
//!
//! x402-axum calls the facilitator from inside its own service future, which the wrapper awaits
//! in the same task; a task-local slot scoped around that future is how the answer gets out
//! without changing x402-axum.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{extract::Request, response::Response};
use tower::Service;
use x402_types::{facilitator::Facilitator, proto};

tokio::task_local! {
    static SETTLEMENT: Arc<Mutex<Option<serde_json::Value>>>;
}

/// A [`Facilitator`] that delegates everything to `F` and remembers, for the request being
/// served, the JSON its `/settle` answered.
#[derive(Debug, Clone)]
pub struct SettlementCapture<F> {
    inner: F,
}

impl<F> SettlementCapture<F> {
    /// Wraps `inner`; used directly (outside a paywall) it only delegates.
    pub fn new(inner: F) -> Self {
        Self { inner }
    }

    /// The wrapped facilitator.
    pub fn inner(&self) -> &F {
        &self.inner
    }
}

impl<F: Facilitator + Sync> Facilitator for SettlementCapture<F> {
    type Error = F::Error;

    async fn verify(
        &self,
        request: &proto::VerifyRequest,
    ) -> Result<proto::VerifyResponse, Self::Error> {
        self.inner.verify(request).await
    }

    async fn settle(
        &self,
        request: &proto::SettleRequest,
    ) -> Result<proto::SettleResponse, Self::Error> {
        let response = self.inner.settle(request).await?;
        // Outside a paywall (x402-axum used with this facilitator directly) there is no slot.
        let _ = SETTLEMENT.try_with(|slot| {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(response.0.clone());
        });
        Ok(response)
    }

    async fn supported(&self) -> Result<proto::SupportedResponse, Self::Error> {
        self.inner.supported().await
    }
}

/// Runs `service` on `req` and returns its response with the settle JSON it produced, if any.
pub(crate) async fn capture<S>(
    mut service: S,
    req: Request,
) -> (Response, Option<serde_json::Value>)
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let slot = Arc::new(Mutex::new(None));
    let Ok(response) = SETTLEMENT.scope(slot.clone(), async move { service.call(req).await }).await;
    let settlement = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    (response, settlement)
}
