//! Lenient numbers in bundler answers.
//!
//! Bundlers disagree: most send `0x` hex quantities, some v0.6 implementations send decimal
//! strings or bare JSON numbers for gas values. Reading all three here keeps that mess out of
//! the types; requests still go out as strict hex through `UserOperation`.

use alloy::primitives::U256;
use serde::{
    Deserializer,
    de::{Error, Visitor},
};
use std::fmt;

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = U256;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quantity: 0x-hex string, decimal string or non-negative integer")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<U256, E> {
        Ok(U256::from(v))
    }

    fn visit_u128<E: Error>(self, v: u128) -> Result<U256, E> {
        Ok(U256::from(v))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<U256, E> {
        u64::try_from(v).map(U256::from).map_err(|_| E::custom(format!("negative quantity {v}")))
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<U256, E> {
        parse(s).ok_or_else(|| E::custom(format!("{s:?} is not a quantity")))
    }
}

/// `0x`/`0X` hex (at least one digit) or plain decimal digits.
pub(crate) fn parse(s: &str) -> Option<U256> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    let valid = !digits.is_empty()
        && digits.len() <= 80
        && digits
            .bytes()
            .all(|b| if radix == 16 { b.is_ascii_hexdigit() } else { b.is_ascii_digit() });
    if !valid {
        return None;
    }
    U256::from_str_radix(digits, radix).ok()
}

pub(crate) mod u256 {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        d.deserialize_any(QuantityVisitor)
    }
}

pub(crate) mod opt_u256 {
    use serde::Deserialize;

    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<U256>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrap(#[serde(with = "super::u256")] U256);
        Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(v)| v))
    }
}

pub(crate) mod u64 {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = d.deserialize_any(QuantityVisitor)?;
        u64::try_from(v).map_err(|_| D::Error::custom(format!("quantity {v} exceeds u64")))
    }
}

pub(crate) mod opt_u64 {
    use serde::Deserialize;

    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrap(#[serde(with = "super::u64")] u64);
        Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(v)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("0x10"), Some(U256::from(16)));
        assert_eq!(parse("0X10"), Some(U256::from(16)));
        assert_eq!(parse("10"), Some(U256::from(10)));
        assert_eq!(parse("0"), Some(U256::ZERO));
        for bad in ["", "0x", "-1", "+1", "1.0", "0x-1", "ten", " 1", "1_000", "0xg"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
