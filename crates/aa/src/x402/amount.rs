//! Human token amounts ("0.01 USDT") to atomic units and back, in integer arithmetic only.
//!
//! Prices and spending caps are money: a float would turn "0.1" into 0.1000000000000000055…, so
//! the decimal string is split at the point and scaled with `U256` arithmetic instead.

use std::{fmt, str::FromStr};

use alloy::primitives::U256;

use super::Reason;

/// Decimals assumed for a symbol when the caller does not give them. Only the stablecoins x402
/// prices in are listed: guessing the decimals of an arbitrary token would silently misprice.
pub fn default_decimals(symbol: &str) -> Option<u8> {
    match symbol.to_ascii_uppercase().as_str() {
        "USDT" | "USDC" => Some(6),
        _ => None,
    }
}

/// The largest `decimals` whose unit (`10^decimals`) fits a `uint256`.
pub const MAX_DECIMALS: u8 = 77;

const MAX_SYMBOL_LEN: usize = 16;

/// Why a human amount could not be turned into atomic units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// Nothing but whitespace.
    #[error("amount is empty")]
    Empty,
    /// The number part is not digits with an optional `.` and more digits (no sign, exponent
    /// or separators).
    #[error("{input:?} is not a plain decimal number (digits, optionally '.' and more digits)")]
    InvalidNumber {
        /// The number part of the input.
        input: String,
    },
    /// More fractional digits than the token has: refused rather than rounded.
    #[error("{input:?} has {fraction_digits} fractional digits but the token has {decimals}")]
    TooPrecise {
        /// The number part of the input.
        input: String,
        /// Significant fractional digits (trailing zeros do not count).
        fraction_digits: usize,
        /// The token's decimals.
        decimals: u8,
    },
    /// The atomic amount exceeds a `uint256`.
    #[error("{input:?} does not fit in a uint256 with {decimals} decimals")]
    Overflow {
        /// The number part of the input.
        input: String,
        /// The token's decimals.
        decimals: u8,
    },
    /// Over [`MAX_DECIMALS`].
    #[error("{decimals} decimals exceed the maximum of {MAX_DECIMALS}")]
    DecimalsTooLarge {
        /// The decimals given.
        decimals: u8,
    },
    /// More than a number and one symbol, or a symbol that is too long, starts with a digit or
    /// `.`, or holds control characters.
    #[error("{input:?} is not \"<number> <SYMBOL>\"")]
    InvalidFormat {
        /// The input as given.
        input: String,
    },
    /// Parsing with default decimals needs a symbol to look them up by.
    #[error("{input:?} names no token symbol, so its decimals are unknown")]
    MissingSymbol {
        /// The input as given.
        input: String,
    },
    /// [`default_decimals`] does not know the symbol; give decimals explicitly.
    #[error("no default decimals for symbol {symbol:?}; use TokenAmount::parse_with_decimals")]
    UnknownSymbol {
        /// The symbol as given.
        symbol: String,
    },
}

impl AmountError {
    /// A bad price is a bad merchant configuration, which upstream x402 names this way.
    pub fn reason(&self) -> &'static str {
        Reason::InvalidPaymentRequirements.as_str()
    }
}

/// Atomic units of `amount` ("1.5", "0.01 USDT") for a token with `decimals` decimals.
///
/// A trailing symbol is allowed and ignored; use [`TokenAmount`] when the symbol matters.
pub fn price(amount: &str, decimals: u8) -> Result<U256, AmountError> {
    let (number, _symbol) = split_symbol(amount)?;
    to_atomic(number, decimals)
}

/// An amount of a token: atomic units plus what is needed to show them to a human.
///
/// `"10 USDT".parse()` uses [`default_decimals`]; other tokens go through
/// [`TokenAmount::parse_with_decimals`]. Display writes the shortest exact decimal form followed
/// by the symbol, so `parse(display(x)) == x` for every amount.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenAmount {
    atomic: U256,
    decimals: u8,
    symbol: Option<String>,
}

impl TokenAmount {
    /// An amount already in atomic units.
    pub fn from_atomic(
        atomic: U256,
        decimals: u8,
        symbol: Option<&str>,
    ) -> Result<Self, AmountError> {
        check_decimals(decimals)?;
        if let Some(symbol) = symbol {
            check_symbol(symbol, symbol)?;
        }
        Ok(Self { atomic, decimals, symbol: symbol.map(str::to_owned) })
    }

    /// Parses `"<number>[ <SYMBOL>]"` with explicitly given decimals; the symbol is optional
    /// and kept as written.
    pub fn parse_with_decimals(input: &str, decimals: u8) -> Result<Self, AmountError> {
        let (number, symbol) = split_symbol(input)?;
        let atomic = to_atomic(number, decimals)?;
        Ok(Self { atomic, decimals, symbol: symbol.map(str::to_owned) })
    }

    /// The amount in the token's smallest unit, as `transfer`/`settle` take it.
    pub fn atomic(&self) -> U256 {
        self.atomic
    }

    /// How many decimals one whole token has.
    pub fn decimals(&self) -> u8 {
        self.decimals
    }

    /// The symbol, as written, if one was given.
    pub fn symbol(&self) -> Option<&str> {
        self.symbol.as_deref()
    }
}

impl FromStr for TokenAmount {
    type Err = AmountError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (number, symbol) = split_symbol(input)?;
        let symbol =
            symbol.ok_or_else(|| AmountError::MissingSymbol { input: input.to_owned() })?;
        let decimals = default_decimals(symbol)
            .ok_or_else(|| AmountError::UnknownSymbol { symbol: symbol.to_owned() })?;
        let atomic = to_atomic(number, decimals)?;
        Ok(Self { atomic, decimals, symbol: Some(symbol.to_ascii_uppercase()) })
    }
}

impl fmt::Display for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `check_decimals` keeps the unit representable, so the fallback is never taken.
        let unit = U256::from(10u8).checked_pow(U256::from(self.decimals)).unwrap_or(U256::MAX);
        let (int, frac) = self.atomic.div_rem(unit);
        write!(f, "{int}")?;
        if !frac.is_zero() {
            let digits = frac.to_string();
            let padded = format!("{digits:0>width$}", width = usize::from(self.decimals));
            write!(f, ".{}", padded.trim_end_matches('0'))?;
        }
        if let Some(symbol) = &self.symbol {
            write!(f, " {symbol}")?;
        }
        Ok(())
    }
}

fn split_symbol(input: &str) -> Result<(&str, Option<&str>), AmountError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(AmountError::Empty);
    }
    let mut parts = trimmed.split_ascii_whitespace();
    let number = parts.next().ok_or(AmountError::Empty)?;
    let symbol = parts.next();
    if parts.next().is_some() {
        return Err(AmountError::InvalidFormat { input: input.to_owned() });
    }
    if let Some(symbol) = symbol {
        check_symbol(symbol, input)?;
    }
    Ok((number, symbol))
}

fn check_symbol(symbol: &str, input: &str) -> Result<(), AmountError> {
    // Symbols such as "USDC.e" or "USD₮0" exist; digits-first would read as a second number.
    let ok = !symbol.is_empty()
        && symbol.chars().count() <= MAX_SYMBOL_LEN
        && !symbol.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && !symbol.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err(AmountError::InvalidFormat { input: input.to_owned() }) }
}

fn check_decimals(decimals: u8) -> Result<(), AmountError> {
    if decimals > MAX_DECIMALS {
        return Err(AmountError::DecimalsTooLarge { decimals });
    }
    Ok(())
}

fn to_atomic(number: &str, decimals: u8) -> Result<U256, AmountError> {
    check_decimals(decimals)?;
    let invalid = || AmountError::InvalidNumber { input: number.to_owned() };
    let (int, frac) = match number.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (number, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) {
        return Err(invalid());
    }
    if number.contains('.') && frac.is_empty() {
        return Err(invalid());
    }
    // Trailing zeros carry no precision: "1.500000" is fine for a 6-decimal token.
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(decimals) {
        return Err(AmountError::TooPrecise {
            input: number.to_owned(),
            fraction_digits: frac.len(),
            decimals,
        });
    }
    let overflow = || AmountError::Overflow { input: number.to_owned(), decimals };
    let ten = U256::from(10u8);
    let unit = ten.checked_pow(U256::from(decimals)).ok_or_else(overflow)?;
    let int = U256::from_str_radix(int, 10).map_err(|_| overflow())?;
    let frac_value = if frac.is_empty() {
        U256::ZERO
    } else {
        let scale = u32::from(decimals) - u32::try_from(frac.len()).map_err(|_| invalid())?;
        let digits = U256::from_str_radix(frac, 10).map_err(|_| invalid())?;
        digits
            .checked_mul(ten.checked_pow(U256::from(scale)).ok_or_else(overflow)?)
            .ok_or_else(overflow)?
    };
    int.checked_mul(unit).and_then(|v| v.checked_add(frac_value)).ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        for (input, decimals, want) in [
            ("0.01 USDT", 6, 10_000u64),
            ("1.5", 6, 1_500_000),
            ("0.001", 6, 1_000),
            ("1000", 0, 1000),
            ("0", 6, 0),
            ("0.000001 USDC", 6, 1),
            ("1.500000", 6, 1_500_000),
            ("  2 USDT  ", 6, 2_000_000),
            ("007.10", 2, 710),
            ("1", 18, 1_000_000_000_000_000_000),
        ] {
            assert_eq!(price(input, decimals).unwrap(), U256::from(want), "{input}");
        }
        let max = U256::MAX.to_string();
        assert_eq!(price(&max, 0).unwrap(), U256::MAX);
    }

    #[test]
    fn malformed_prices_are_typed_errors() {
        use AmountError as E;
        type Case = (&'static str, u8, fn(&E) -> bool);
        let cases: &[Case] = &[
            ("", 6, |e| matches!(e, E::Empty)),
            ("   ", 6, |e| matches!(e, E::Empty)),
            ("1.", 6, |e| matches!(e, E::InvalidNumber { .. })),
            (".5", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("-1", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("+1", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("1e3", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("1,000", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("1_000", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("1.2.3", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("0x10", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("$1", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("NaN", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("١", 6, |e| matches!(e, E::InvalidNumber { .. })),
            ("0.0000001", 6, |e| matches!(e, E::TooPrecise { fraction_digits: 7, .. })),
            ("1.5", 0, |e| matches!(e, E::TooPrecise { .. })),
            ("1 USDT extra", 6, |e| matches!(e, E::InvalidFormat { .. })),
            ("1 2", 6, |e| matches!(e, E::InvalidFormat { .. })),
            ("1 .5", 6, |e| matches!(e, E::InvalidFormat { .. })),
            ("1 ABCDEFGHIJKLMNOPQ", 6, |e| matches!(e, E::InvalidFormat { .. })),
            ("1", 78, |e| matches!(e, E::DecimalsTooLarge { decimals: 78 })),
            ("1", 255, |e| matches!(e, E::DecimalsTooLarge { .. })),
            ("1000", 77, |e| matches!(e, E::Overflow { .. })),
            (
                "999999999999999999999999999999999999999999999999999999999999999999999999999999999",
                0,
                |e| matches!(e, E::Overflow { .. }),
            ),
        ];
        for (input, decimals, check) in cases {
            let err = price(input, *decimals).unwrap_err();
            assert!(check(&err), "{input:?}/{decimals}: {err:?}");
            assert_eq!(err.reason(), "invalid_payment_requirements");
        }
    }

    #[test]
    fn token_amount_parses_and_displays() {
        let ten: TokenAmount = "10 USDT".parse().unwrap();
        assert_eq!(ten.atomic(), U256::from(10_000_000u64));
        assert_eq!(ten.decimals(), 6);
        assert_eq!(ten.symbol(), Some("USDT"));
        assert_eq!(ten.to_string(), "10 USDT");

        let lower: TokenAmount = "0.25 usdc".parse().unwrap();
        assert_eq!(lower.atomic(), U256::from(250_000u64));
        assert_eq!(lower.to_string(), "0.25 USDC");

        for (atomic, want) in [
            (1u64, "0.000001 USDT"),
            (1_000, "0.001 USDT"),
            (0, "0 USDT"),
            (10_500_000, "10.5 USDT"),
        ] {
            let a = TokenAmount::from_atomic(U256::from(atomic), 6, Some("USDT")).unwrap();
            assert_eq!(a.to_string(), want);
            assert_eq!(want.parse::<TokenAmount>().unwrap(), a);
        }

        let weth = TokenAmount::parse_with_decimals("1.25 WETH", 18).unwrap();
        assert_eq!(weth.atomic(), U256::from(1_250_000_000_000_000_000u128));
        assert_eq!(weth.to_string(), "1.25 WETH");
        let bare = TokenAmount::parse_with_decimals("3.5", 2).unwrap();
        assert_eq!(bare.to_string(), "3.5");
        assert_eq!(bare.symbol(), None);
        let max = TokenAmount::from_atomic(U256::MAX, 77, None).unwrap();
        assert_eq!(TokenAmount::parse_with_decimals(&max.to_string(), 77).unwrap(), max);
    }

    #[test]
    fn token_amount_errors() {
        assert!(matches!("10".parse::<TokenAmount>(), Err(AmountError::MissingSymbol { .. })));
        assert!(matches!("10 WETH".parse::<TokenAmount>(), Err(AmountError::UnknownSymbol { .. })));
        assert!(matches!(
            "0.0000001 USDT".parse::<TokenAmount>(),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            TokenAmount::from_atomic(U256::ZERO, 78, None),
            Err(AmountError::DecimalsTooLarge { .. })
        ));
        assert!(matches!(
            TokenAmount::from_atomic(U256::ZERO, 6, Some("a b")),
            Err(AmountError::InvalidFormat { .. })
        ));
    }

    #[test]
    fn random_inputs_never_panic() {
        let alphabet =
            ["0", "1", "9", ".", " ", "USDT", "e", "-", "\u{0}", "₮", "00000000000000000000"];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut s = String::new();
            let mut x = seed;
            for _ in 0..(seed % 10) {
                s.push_str(alphabet[(x % alphabet.len() as u64) as usize]);
                x /= alphabet.len() as u64;
            }
            let decimals = (seed >> 56) as u8;
            if let Ok(v) = TokenAmount::parse_with_decimals(&s, decimals) {
                assert_eq!(TokenAmount::parse_with_decimals(&v.to_string(), decimals).unwrap(), v);
            }
            let _ = s.parse::<TokenAmount>();
        }
    }
}
