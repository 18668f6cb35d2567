//! What can be wrong with a paywall's configuration. Requests never fail with these: x402-axum
//! answers every bad payment with a 402 of its own.

use x402_aa::x402::AmountError;
use x402_axum::facilitator_client::FacilitatorClientError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaywallError {
    #[error("price {price:?}: {source}")]
    Price {
        price: String,
        #[source]
        source: AmountError,
    },
    #[error("price {price:?} is in {symbol} but the token is {expected}")]
    SymbolMismatch { price: String, symbol: String, expected: String },
    #[error("price {price:?} is zero, which the settlement contract refuses")]
    ZeroPrice { price: String },
    #[error("{field} is the zero address, which the settlement contract refuses")]
    ZeroAddress { field: &'static str },
    #[error("token {symbol:?} has no default decimals; give them explicitly")]
    UnknownDecimals { symbol: String },
    #[error("facilitator URL {url:?}: {source}")]
    FacilitatorUrl {
        url: String,
        #[source]
        source: FacilitatorClientError,
    },
    #[error("a paywall needs at least one price tag")]
    NoPriceTags,
}

impl PaywallError {
    /// Every variant is a bad merchant configuration, which upstream x402 names this way.
    pub fn reason(&self) -> &'static str {
        x402_aa::x402::Reason::InvalidPaymentRequirements.as_str()
    }
}
