//! What can be wrong with a paywall's configuration. Requests never fail with these: x402-axum
//! answers every bad payment with a 402 of its own.

use x402_aa::x402::AmountError;
use x402_axum::facilitator_client::FacilitatorClientError;

/// A paywall that cannot be built as configured; fix the configuration, retrying cannot help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaywallError {
    /// The price is not an amount the token can express: not a plain decimal, more fractional
    /// digits than the token has, or beyond a uint256.
    #[error("price {price:?}: {source}")]
    Price {
        /// The price as configured.
        price: String,
        /// Why it did not parse.
        #[source]
        source: AmountError,
    },
    /// The price names another token's symbol ("0.01 USDC" for a USDT token); refused rather
    /// than charged in the wrong unit.
    #[error("price {price:?} is in {symbol} but the token is {expected}")]
    SymbolMismatch {
        /// The price as configured.
        price: String,
        /// The symbol the price names.
        symbol: String,
        /// The token's symbol.
        expected: String,
    },
    /// The price is zero atomic units.
    #[error("price {price:?} is zero, which the settlement contract refuses")]
    ZeroPrice {
        /// The price as configured.
        price: String,
    },
    /// A recipient, token or settlement address is zero.
    #[error("{field} is the zero address, which the settlement contract refuses")]
    ZeroAddress {
        /// The requirement field that is zero (`payTo`, `token`, `asset` or `settlement`).
        field: &'static str,
    },
    /// [`Token::known`](crate::Token::known) does not know this symbol; use
    /// [`Token::new`](crate::Token::new) with its decimals.
    #[error("token {symbol:?} has no default decimals; give them explicitly")]
    UnknownDecimals {
        /// The symbol asked for.
        symbol: String,
    },
    /// The facilitator URL was refused by x402-axum's client (not a URL, or not joinable with
    /// `/verify`, `/settle`, `/supported`).
    #[error("facilitator URL {url:?}: {source}")]
    FacilitatorUrl {
        /// The URL as configured.
        url: String,
        /// x402-axum's complaint.
        #[source]
        source: FacilitatorClientError,
    },
    /// [`Paywall::layer`](crate::Paywall::layer) was given no price tags.
    #[error("a paywall needs at least one price tag")]
    NoPriceTags,
}

impl PaywallError {
    /// Every variant is a bad merchant configuration, which upstream x402 names this way.
    pub fn reason(&self) -> &'static str {
        x402_aa::x402::Reason::InvalidPaymentRequirements.as_str()
    }
}
