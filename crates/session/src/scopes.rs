//! Scopes: the limits of a session in words a person writes and reads, turned into a [`SessionGrant`].
//!
//! ```
//! # use x402_aa_session::scopes::{Scopes, per_day};
//! # use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let scopes = Scopes::new()
//!     .spend_cap("10 USDT".parse()?, per_day())
//!     .per_payment_max("1 USDT".parse()?)
//!     .lifetime_cap("100 USDT".parse()?)
//!     .any_merchant()
//!     .valid_for(Duration::from_secs(24 * 3600))
//!     .require_paymaster();
//! # let _ = scopes; Ok(()) }
//! ```

use std::{fmt, str::FromStr, time::Duration};

use alloy::primitives::{
    Address, B256, U256,
    aliases::{U24, U48},
};

use crate::{file::TokenInfo, grant::SessionGrant, merkle::MerchantTree};

/// A token amount as written: `"10 USDT"`, `"0.5"`. The symbol, if given, is checked against the
/// session's token when the grant is built; decimals come from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    text: String,
}

/// Why scopes cannot become a grant. Raised before anything is signed, so the owner fixes the
/// scopes and tries again; the contract would refuse (or misread) a grant built from them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeError {
    /// Not a decimal number with an optional symbol, or more decimals than the token has (a
    /// limit is never rounded). Holds the text as given.
    #[error("{0:?} is not an amount like \"10 USDT\" or \"0.5\"")]
    BadAmount(String),
    /// The amount names another token than the session's (compared case-insensitively).
    #[error("amount {amount:?} is in {given}, but the session token is {expected}")]
    WrongSymbol {
        /// The amount as written.
        amount: String,
        /// The symbol it names.
        given: String,
        /// The session token's symbol.
        expected: String,
    },
    /// A required scope was not given; holds its builder name (only `spend_cap` is required).
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A value is larger than the grant field that carries it (`uint96` amounts and gas budgets,
    /// `uint48` timestamps, `uint24` payment count).
    #[error("{what} ({value}) does not fit the contract's {bits}-bit field")]
    TooLarge {
        /// The scope, by builder name.
        what: &'static str,
        /// The value, in atomic units, wei or seconds.
        value: String,
        /// The field's width.
        bits: u32,
    },
    /// A cap or budget was set to zero. The contract refuses zero token caps (`session: grant
    /// cap is zero`) and reads a zero count, merchant cap or gas budget as "no limit" (or
    /// "paymaster required"), so a zero never means what it says. Holds the scope's name.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// The per-payment max is above the period cap, so no payment could ever use it.
    #[error("per-payment max {per_payment} exceeds the period cap {period_cap}")]
    PerPaymentAbovePeriodCap {
        /// The per-payment max, formatted with the token's symbol.
        per_payment: String,
        /// The period cap, formatted with the token's symbol.
        period_cap: String,
    },
    /// `valid_for` is zero, or start plus duration overflows: the contract refuses an empty
    /// window (`session: grant window empty`).
    #[error("validity window is empty or ends before it starts")]
    EmptyWindow,
    /// The period is zero or does not fit the grant's `uint32` seconds.
    #[error("period must be between 1 second and 136 years")]
    BadPeriod,
    /// `merchants` was given an empty list. Its Merkle root would be zero, which the contract
    /// reads as "any merchant": the opposite of an empty allowlist, so it is refused like a zero
    /// cap. [`Scopes::any_merchant`] says "any" on purpose.
    #[error("the merchant list is empty (it would allow any merchant; say any_merchant for that)")]
    NoMerchants,
}

impl ScopeError {
    /// Always `invalid_scopes`: the detail is in the message, for the person who wrote them.
    pub fn reason(&self) -> &'static str {
        "invalid_scopes"
    }
}

impl FromStr for Amount {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, ScopeError> {
        let mut parts = s.split_whitespace();
        let number = parts.next().ok_or_else(|| ScopeError::BadAmount(s.to_owned()))?;
        let symbol = parts.next();
        let valid_number = !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit() || c == '.')
            && number.chars().filter(|c| *c == '.').count() <= 1
            && number.chars().any(|c| c.is_ascii_digit());
        let valid_symbol =
            symbol.is_none_or(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
        if !valid_number || !valid_symbol || parts.next().is_some() {
            return Err(ScopeError::BadAmount(s.to_owned()));
        }
        Ok(Self { text: s.split_whitespace().collect::<Vec<_>>().join(" ") })
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Amount {
    /// Base units of `token`; refuses a symbol that is not the token's and more decimals than it has.
    pub fn to_units(&self, token: &TokenInfo) -> Result<U256, ScopeError> {
        let mut parts = self.text.split(' ');
        let number = parts.next().unwrap_or_default();
        if let Some(symbol) = parts.next()
            && !symbol.eq_ignore_ascii_case(&token.symbol)
        {
            return Err(ScopeError::WrongSymbol {
                amount: self.text.clone(),
                given: symbol.to_owned(),
                expected: token.symbol.clone(),
            });
        }
        // parse_units would round extra decimals away; a limit must mean exactly what was written.
        let fraction = number.split_once('.').map_or(0, |(_, f)| f.len());
        if fraction > usize::from(token.decimals) {
            return Err(ScopeError::BadAmount(self.text.clone()));
        }
        alloy::primitives::utils::parse_units(number, token.decimals)
            .map(Into::into)
            .map_err(|_| ScopeError::BadAmount(self.text.clone()))
    }
}

/// A period length for the periodic cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(Duration);

/// Periods of 3 600 s. Like every period, fixed windows counted from the grant's start, not
/// calendar hours.
pub fn per_hour() -> Period {
    Period(Duration::from_secs(3_600))
}

/// Periods of 86 400 s from the grant's start (not calendar days: no midnight reset).
pub fn per_day() -> Period {
    Period(Duration::from_secs(86_400))
}

/// Periods of 7 × 86 400 s from the grant's start.
pub fn per_week() -> Period {
    Period(Duration::from_secs(7 * 86_400))
}

/// Any period length, e.g. `every(Duration::from_secs(600))` for a 10-minute budget.
pub fn every(length: Duration) -> Period {
    Period(length)
}

/// Who may be paid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Merchants {
    /// Any merchant (the grant's merchant root is zero).
    #[default]
    Any,
    /// Only these (a Merkle root in the grant; the session file keeps the list for proofs). An
    /// empty list would build the zero root, which the contract reads as any merchant, so
    /// [`Scopes::to_grant`] refuses it.
    Only(Vec<Address>),
}

/// Who pays the gas of session ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GasPolicy {
    /// A paymaster must sponsor every op; `Some` pins which one.
    Paymaster(Option<Address>),
    /// The account's own deposit may pay, within this budget. Every op the EntryPoint validates
    /// pays its gas even when its payment reverts, so the budget, not the caps on tokens, bounds
    /// what a runaway key can burn in gas.
    SelfPaid(GasBudget),
}

/// Native gas a session may cost the account, in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasBudget {
    /// Most one op may cost (its worst-case prefund).
    pub per_op: u128,
    /// Most all ops of one period may cost together.
    pub per_period: u128,
    /// Most all ops may cost over the session's life.
    pub lifetime: u128,
}

/// The limits of one session. Build with the methods, then [`Scopes::to_grant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes {
    /// Most spent per period, and the period; required.
    pub spend_cap: Option<(Amount, Period)>,
    /// Most one payment may be; `None` = the spend cap.
    pub per_payment_max: Option<Amount>,
    /// Most spent over the session's life; `None` = the spend cap times the periods in the
    /// window (rounded up).
    pub lifetime_cap: Option<Amount>,
    /// Who may be paid.
    pub merchants: Merchants,
    /// Length of the validity window (whole seconds count).
    pub valid_for: Duration,
    /// Start of the window (unix seconds); `None` = the time passed to `to_grant`.
    pub valid_from: Option<u64>,
    /// Who pays the gas of session ops (default: a paymaster, any).
    pub gas: GasPolicy,
    /// Most payments per period (a rate limit for runaway loops of small payments); `None` = any.
    pub max_payments_per_period: Option<u32>,
    /// Most paid to any one merchant per period (a sub-budget under the spend cap); `None` = the
    /// spend cap alone.
    pub merchant_period_cap: Option<Amount>,
}

impl Default for Scopes {
    fn default() -> Self {
        Self::new()
    }
}

impl Scopes {
    /// Nothing allowed yet: a spend cap is required; 24 h validity and a required paymaster by default.
    pub fn new() -> Self {
        Self {
            spend_cap: None,
            per_payment_max: None,
            lifetime_cap: None,
            merchants: Merchants::Any,
            valid_for: Duration::from_secs(86_400),
            valid_from: None,
            gas: GasPolicy::Paymaster(None),
            max_payments_per_period: None,
            merchant_period_cap: None,
        }
    }

    /// At most `amount` per `period` (the grant's `periodCap` and `period`); required.
    pub fn spend_cap(mut self, amount: Amount, period: Period) -> Self {
        self.spend_cap = Some((amount, period));
        self
    }

    /// Defaults to the period cap when not set.
    pub fn per_payment_max(mut self, amount: Amount) -> Self {
        self.per_payment_max = Some(amount);
        self
    }

    /// Defaults to the period cap times the number of periods in the window when not set.
    pub fn lifetime_cap(mut self, amount: Amount) -> Self {
        self.lifetime_cap = Some(amount);
        self
    }

    /// Only these merchants may be paid (order and duplicates do not matter). An empty list is
    /// refused when the grant is built ([`ScopeError::NoMerchants`]).
    pub fn merchants(mut self, merchants: impl IntoIterator<Item = Address>) -> Self {
        self.merchants = Merchants::Only(merchants.into_iter().collect());
        self
    }

    /// Any merchant may be paid (the default).
    pub fn any_merchant(mut self) -> Self {
        self.merchants = Merchants::Any;
        self
    }

    /// The grant ends `duration` after its start (default 24 h).
    pub fn valid_for(mut self, duration: Duration) -> Self {
        self.valid_for = duration;
        self
    }

    /// The grant starts at `unix_seconds` instead of the `now` given to [`Scopes::to_grant`];
    /// periods are counted from it.
    pub fn valid_from(mut self, unix_seconds: u64) -> Self {
        self.valid_from = Some(unix_seconds);
        self
    }

    /// Every session op must be sponsored, by any paymaster (the default): the session can
    /// never spend the account's own ETH on gas.
    pub fn require_paymaster(mut self) -> Self {
        self.gas = GasPolicy::Paymaster(None);
        self
    }

    /// Every session op must be sponsored by `paymaster`; the account refuses any other
    /// (`session: paymaster not allowed`).
    pub fn only_paymaster(mut self, paymaster: Address) -> Self {
        self.gas = GasPolicy::Paymaster(Some(paymaster));
        self
    }

    /// Lets the account's own deposit pay the gas of session ops, within `budget`.
    pub fn self_paid_gas(mut self, budget: GasBudget) -> Self {
        self.gas = GasPolicy::SelfPaid(budget);
        self
    }

    /// At most `count` payments per period.
    pub fn max_payments_per_period(mut self, count: u32) -> Self {
        self.max_payments_per_period = Some(count);
        self
    }

    /// At most `amount` to any one merchant per period.
    pub fn merchant_period_cap(mut self, amount: Amount) -> Self {
        self.merchant_period_cap = Some(amount);
        self
    }

    /// The allowed merchants sorted and deduplicated, as the session file stores them; empty for
    /// any merchant.
    pub fn merchant_list(&self) -> Vec<Address> {
        match &self.merchants {
            Merchants::Any => Vec::new(),
            Merchants::Only(list) => {
                let mut list = list.clone();
                list.sort();
                list.dedup();
                list
            }
        }
    }

    /// The grant these scopes describe for `session_key` paying `token` through `settlement`.
    /// `now` anchors the window when `valid_from` is unset; `epoch` is the account's
    /// `sessionEpoch()`; `salt` makes the grant unique.
    pub fn to_grant(
        &self,
        session_key: Address,
        token: &TokenInfo,
        settlement: Address,
        now: u64,
        epoch: u32,
        salt: B256,
    ) -> Result<SessionGrant, ScopeError> {
        let (cap, period) = self.spend_cap.as_ref().ok_or(ScopeError::Missing("spend_cap"))?;
        let period_cap = cap.to_units(token)?;
        let period_secs = u32::try_from(period.0.as_secs()).map_err(|_| ScopeError::BadPeriod)?;
        if period_secs == 0 {
            return Err(ScopeError::BadPeriod);
        }
        let per_payment = match &self.per_payment_max {
            Some(a) => a.to_units(token)?,
            None => period_cap,
        };
        let valid_after = self.valid_from.unwrap_or(now);
        let valid_until = valid_after
            .checked_add(self.valid_for.as_secs())
            .filter(|until| *until > valid_after)
            .ok_or(ScopeError::EmptyWindow)?;
        let lifetime = match &self.lifetime_cap {
            Some(a) => a.to_units(token)?,
            None => {
                let periods = (valid_until - valid_after).div_ceil(u64::from(period_secs));
                period_cap.saturating_mul(U256::from(periods))
            }
        };
        if per_payment > period_cap {
            return Err(ScopeError::PerPaymentAbovePeriodCap {
                per_payment: token.format(per_payment),
                period_cap: token.format(period_cap),
            });
        }
        for (what, value) in [
            ("spend_cap", period_cap),
            ("per_payment_max", per_payment),
            ("lifetime_cap", lifetime),
        ] {
            if value.is_zero() {
                return Err(ScopeError::Zero(what));
            }
        }
        let u96 = |what: &'static str, v: U256| {
            crate::grant::to_u96(v).ok_or_else(|| ScopeError::TooLarge {
                what,
                value: v.to_string(),
                bits: 96,
            })
        };
        let u48 = |what: &'static str, v: u64| {
            U48::try_from(v).map_err(|_| ScopeError::TooLarge {
                what,
                value: v.to_string(),
                bits: 48,
            })
        };
        if matches!(&self.merchants, Merchants::Only(list) if list.is_empty()) {
            return Err(ScopeError::NoMerchants);
        }
        let merchants = self.merchant_list();
        let (paymaster, gas) = match self.gas {
            GasPolicy::Paymaster(pin) => {
                (pin.unwrap_or_default(), GasBudget { per_op: 0, per_period: 0, lifetime: 0 })
            }
            GasPolicy::SelfPaid(budget) => {
                if budget.per_op == 0 || budget.per_period == 0 || budget.lifetime == 0 {
                    return Err(ScopeError::Zero("gas budget"));
                }
                (Address::ZERO, budget)
            }
        };
        let max_payments = self.max_payments_per_period.unwrap_or(0);
        if self.max_payments_per_period == Some(0) {
            return Err(ScopeError::Zero("max_payments_per_period"));
        }
        let max_payments = U24::try_from(max_payments).map_err(|_| ScopeError::TooLarge {
            what: "max_payments_per_period",
            value: max_payments.to_string(),
            bits: 24,
        })?;
        let merchant_cap = match &self.merchant_period_cap {
            Some(amount) => {
                let cap = amount.to_units(token)?;
                if cap.is_zero() {
                    return Err(ScopeError::Zero("merchant_period_cap"));
                }
                cap
            }
            None => U256::ZERO,
        };
        let wei = |what: &'static str, v: u128| u96(what, U256::from(v));
        Ok(SessionGrant {
            sessionKey: session_key,
            validAfter: u48("valid_from", valid_after)?,
            validUntil: u48("valid_until", valid_until)?,
            token: token.address,
            settlement,
            perPaymentMax: u96("per_payment_max", per_payment)?,
            periodCap: u96("spend_cap", period_cap)?,
            period: period_secs,
            lifetimeCap: u96("lifetime_cap", lifetime)?,
            maxPaymentsPerPeriod: max_payments,
            merchantPeriodCap: u96("merchant_period_cap", merchant_cap)?,
            merchantRoot: MerchantTree::new(merchants).map(|t| t.root()).unwrap_or_default(),
            paymaster,
            maxGasCostPerOp: wei("gas per op", gas.per_op)?,
            gasPeriodBudget: wei("gas per period", gas.per_period)?,
            gasLifetimeBudget: wei("gas lifetime", gas.lifetime)?,
            epoch,
            salt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::aliases::U96;

    fn usdt() -> TokenInfo {
        TokenInfo { address: Address::repeat_byte(0x70), symbol: "USDT".into(), decimals: 6 }
    }

    #[test]
    fn readable_scopes_become_the_grant_the_contract_checks() {
        let merchant = Address::repeat_byte(0x11);
        let grant = Scopes::new()
            .spend_cap("10 USDT".parse().unwrap(), per_day())
            .per_payment_max("1 USDT".parse().unwrap())
            .merchants([merchant])
            .valid_for(Duration::from_secs(24 * 3600))
            .require_paymaster()
            .to_grant(
                Address::repeat_byte(1),
                &usdt(),
                Address::repeat_byte(2),
                1_000,
                0,
                B256::ZERO,
            )
            .unwrap();
        assert_eq!(grant.periodCap, U96::from(10_000_000u64));
        assert_eq!(grant.perPaymentMax, U96::from(1_000_000u64));
        assert_eq!(grant.period, 86_400);
        assert_eq!(grant.lifetimeCap, U96::from(10_000_000u64), "one day window = one period");
        assert_eq!((grant.validAfter.to::<u64>(), grant.validUntil.to::<u64>()), (1_000, 87_400));
        assert_eq!(grant.merchantRoot, crate::merkle::leaf(merchant));
        assert!(grant.gasLifetimeBudget.is_zero(), "a paymaster is required");
    }

    #[test]
    fn bad_scopes_are_refused_with_reasons() {
        let key = Address::repeat_byte(1);
        let build =
            |s: Scopes| s.to_grant(key, &usdt(), Address::repeat_byte(2), 1_000, 0, B256::ZERO);
        assert_eq!(build(Scopes::new()), Err(ScopeError::Missing("spend_cap")));
        assert!(matches!(
            build(Scopes::new().spend_cap("10 USDC".parse().unwrap(), per_day())),
            Err(ScopeError::WrongSymbol { .. })
        ));
        assert!(matches!(
            build(
                Scopes::new()
                    .spend_cap("1 USDT".parse().unwrap(), per_day())
                    .per_payment_max("2".parse().unwrap())
            ),
            Err(ScopeError::PerPaymentAbovePeriodCap { .. })
        ));
        assert_eq!(
            build(Scopes::new().spend_cap("0".parse().unwrap(), per_day())),
            Err(ScopeError::Zero("spend_cap"))
        );
        assert!(matches!(
            build(Scopes::new().spend_cap("0.0000001".parse().unwrap(), per_day())),
            Err(ScopeError::BadAmount(_))
        ));
        assert!(matches!(
            build(
                Scopes::new().spend_cap("99999999999999999999999999".parse().unwrap(), per_day())
            ),
            Err(ScopeError::TooLarge { .. })
        ));
        assert_eq!(
            build(Scopes::new().spend_cap("1".parse().unwrap(), every(Duration::ZERO))),
            Err(ScopeError::BadPeriod)
        );
        assert_eq!(
            build(
                Scopes::new().spend_cap("1".parse().unwrap(), per_day()).valid_for(Duration::ZERO)
            ),
            Err(ScopeError::EmptyWindow)
        );
        // An empty allowlist must not turn into the zero root, "any merchant".
        assert_eq!(
            build(Scopes::new().spend_cap("1".parse().unwrap(), per_day()).merchants([])),
            Err(ScopeError::NoMerchants)
        );
        for bad in ["", "ten", "1.2.3", "-1 USDT", "1 USDT extra", "1e6", "1 US$"] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?}");
        }
    }
}
