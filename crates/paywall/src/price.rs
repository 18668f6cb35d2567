//! aa-native price tags from prices written the way people say them.

use alloy::primitives::Address;
use x402_aa::{
    ENTRY_POINT_V06,
    x402::{AaNativeExtra, AaNativeRequirements, TokenAmount, default_decimals},
};
use x402_types::{
    chain::ChainId,
    proto::v2::{PaymentRequirements, PriceTag},
};

use crate::PaywallError;

/// `maxTimeoutSeconds` of the tags [`price_tag`] makes: how long a client's payment may take to
/// settle, and so how long its budget stays reserved on the client's side.
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 60;

/// The ERC-20 a merchant is paid in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token {
    /// The ERC-20 contract, advertised as the tag's `asset`.
    pub address: Address,
    /// The symbol a price may name (`"0.01 USDT"`); compared case-insensitively.
    pub symbol: String,
    /// How many decimals one whole token has (6 for USDT), to turn prices into atomic units.
    pub decimals: u8,
}

impl Token {
    /// A token with explicit decimals, for symbols [`Token::known`] does not know.
    pub fn new(address: Address, symbol: impl Into<String>, decimals: u8) -> Self {
        Self { address, symbol: symbol.into(), decimals }
    }

    /// A token whose symbol has well-known decimals (USDT and USDC: 6).
    pub fn known(address: Address, symbol: &str) -> Result<Self, PaywallError> {
        let decimals = default_decimals(symbol)
            .ok_or_else(|| PaywallError::UnknownDecimals { symbol: symbol.to_owned() })?;
        Ok(Self::new(address, symbol.to_ascii_uppercase(), decimals))
    }
}

/// An aa-native price tag: `price` (`"0.01 USDT"`, or a bare `"0.01"`) of `token`, paid to
/// `pay_to` on chain `chain_id` through the settlement contract `settlement` (advertised in
/// `extra.settlementContract`, with EntryPoint v0.6).
///
/// A symbol in `price` must be the token's: "0.01 USDC" against a USDT token is refused rather
/// than silently charged in the wrong unit.
pub fn price_tag(
    chain_id: u64,
    pay_to: Address,
    price: &str,
    token: &Token,
    settlement: Address,
) -> Result<PriceTag, PaywallError> {
    Ok(tag(&requirements(chain_id, pay_to, price, token, settlement)?))
}

/// The EIP-712 domain of an EIP-3009 token (`name`, `version`), which an `exact` payer signs
/// its `transferWithAuthorization` under; the `extra` of an `exact` price tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Eip712Domain {
    /// The token's EIP-712 `name` (e.g. `"USD Coin"`), exactly as its contract hashes it.
    pub name: String,
    /// The token's EIP-712 `version` (e.g. `"2"`).
    pub version: String,
}

impl Eip712Domain {
    /// The domain from its `name` and `version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self { name: name.into(), version: version.into() }
    }
}

/// An x402 `exact` price tag (EIP-3009 `transferWithAuthorization`, the scheme of the official
/// x402 clients): `price` of `token`, whose EIP-712 domain is `domain`, paid to `pay_to` on
/// chain `chain_id`. Offered beside aa-native tags, it lets any x402 client pay the route.
pub fn exact_price_tag(
    chain_id: u64,
    pay_to: Address,
    price: &str,
    token: &Token,
    domain: &Eip712Domain,
) -> Result<PriceTag, PaywallError> {
    let amount = atomic_amount(price, token)?;
    for (field, address) in [("payTo", pay_to), ("asset", token.address)] {
        if address.is_zero() {
            return Err(PaywallError::ZeroAddress { field });
        }
    }
    let requirements = PaymentRequirements {
        scheme: EXACT.to_owned(),
        network: ChainId::new("eip155", chain_id.to_string()),
        amount: amount.to_string(),
        pay_to: pay_to.to_checksum(None),
        max_timeout_seconds: DEFAULT_MAX_TIMEOUT_SECONDS,
        asset: token.address.to_checksum(None),
        extra: Some(serde_json::json!({ "name": domain.name, "version": domain.version })),
    };
    Ok(PriceTag { requirements, enricher: None })
}

/// The `scheme` of x402's EIP-3009 payments.
pub const EXACT: &str = "exact";

/// `price` in `token`'s atomic units; a symbol in `price` must be the token's, and zero is no
/// price.
fn atomic_amount(price: &str, token: &Token) -> Result<alloy::primitives::U256, PaywallError> {
    let amount = TokenAmount::parse_with_decimals(price, token.decimals)
        .map_err(|source| PaywallError::Price { price: price.to_owned(), source })?;
    if let Some(symbol) = amount.symbol()
        && !symbol.eq_ignore_ascii_case(&token.symbol)
    {
        return Err(PaywallError::SymbolMismatch {
            price: price.to_owned(),
            symbol: symbol.to_owned(),
            expected: token.symbol.clone(),
        });
    }
    if amount.atomic().is_zero() {
        return Err(PaywallError::ZeroPrice { price: price.to_owned() });
    }
    Ok(amount.atomic())
}

/// The typed requirements behind [`price_tag`], for adjusting before [`tag`].
pub fn requirements(
    chain_id: u64,
    pay_to: Address,
    price: &str,
    token: &Token,
    settlement: Address,
) -> Result<AaNativeRequirements, PaywallError> {
    let amount = atomic_amount(price, token)?;
    for (field, address) in
        [("payTo", pay_to), ("token", token.address), ("settlement", settlement)]
    {
        if address.is_zero() {
            return Err(PaywallError::ZeroAddress { field });
        }
    }
    Ok(AaNativeRequirements {
        chain_id,
        amount,
        pay_to,
        asset: token.address,
        max_timeout_seconds: DEFAULT_MAX_TIMEOUT_SECONDS,
        extra: Some(AaNativeExtra {
            settlement_contract: settlement,
            entry_point: ENTRY_POINT_V06,
        }),
    })
}

/// The x402-axum price tag offering `requirements`.
pub fn tag(requirements: &AaNativeRequirements) -> PriceTag {
    PriceTag { requirements: requirements.to_wire(), enricher: None }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{U256, address};

    use super::*;

    const TOKEN: Address = address!("0x1111111111111111111111111111111111111111");
    const MERCHANT: Address = address!("0x2222222222222222222222222222222222222222");
    const SETTLEMENT: Address = address!("0x3333333333333333333333333333333333333333");

    #[test]
    fn prices_become_atomic_amounts() {
        let usdt = Token::known(TOKEN, "usdt").unwrap();
        for (price, atomic) in [("0.01 USDT", 10_000u64), ("1", 1_000_000), ("0.000001 usdt", 1)] {
            let tag = price_tag(689, MERCHANT, price, &usdt, SETTLEMENT).unwrap();
            assert_eq!(tag.requirements.amount, atomic.to_string(), "{price}");
            let typed = AaNativeRequirements::parse(&tag.requirements).unwrap();
            assert_eq!(typed.amount, U256::from(atomic));
            assert_eq!(typed.pay_to, MERCHANT);
            assert_eq!(typed.asset, TOKEN);
            assert_eq!(typed.chain_id, 689);
            assert_eq!(typed.extra.unwrap().settlement_contract, SETTLEMENT);
        }
    }

    #[test]
    fn bad_prices_are_refused() {
        let usdt = Token::known(TOKEN, "USDT").unwrap();
        let refuse = |price: &str| price_tag(689, MERCHANT, price, &usdt, SETTLEMENT).unwrap_err();
        assert!(matches!(refuse("0.01 USDC"), PaywallError::SymbolMismatch { .. }));
        assert!(matches!(refuse("0"), PaywallError::ZeroPrice { .. }));
        assert!(matches!(refuse("0.0000001"), PaywallError::Price { .. }));
        assert!(matches!(refuse("a lot"), PaywallError::Price { .. }));
        let zero = price_tag(689, Address::ZERO, "1", &usdt, SETTLEMENT).unwrap_err();
        assert!(matches!(zero, PaywallError::ZeroAddress { field: "payTo" }));
        assert!(matches!(Token::known(TOKEN, "WETH"), Err(PaywallError::UnknownDecimals { .. })));
        assert_eq!(refuse("0").reason(), "invalid_payment_requirements");
    }

    #[test]
    fn exact_tags_carry_the_eip712_domain() {
        let usdc = Token::known(TOKEN, "USDC").unwrap();
        let domain = Eip712Domain::new("Devnet USD Coin", "2");
        let tag = exact_price_tag(31337, MERCHANT, "0.01 USDC", &usdc, &domain).unwrap();
        let wire = serde_json::to_value(&tag.requirements).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({
                "scheme": "exact",
                "network": "eip155:31337",
                "amount": "10000",
                "payTo": MERCHANT.to_checksum(None),
                "maxTimeoutSeconds": DEFAULT_MAX_TIMEOUT_SECONDS,
                "asset": TOKEN.to_checksum(None),
                "extra": { "name": "Devnet USD Coin", "version": "2" },
            })
        );
        let refused = exact_price_tag(31337, MERCHANT, "0.01 USDT", &usdc, &domain).unwrap_err();
        assert!(matches!(refused, PaywallError::SymbolMismatch { .. }));
    }
}
