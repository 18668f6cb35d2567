//! A grant and its usage in the words and figures the page shows: scopes as sentences, and one
//! meter per cap with its approaching-limit level.

use alloy::primitives::{Address, U256};
use serde::Serialize;
use x402_aa_session::{GrantWindow, SessionGrant, TokenInfo, file::rfc3339, owner::OnChainSession};

use crate::ConsoleError;

/// `"1 day"`, `"10 min"`, `"90 s"`, `"2 h"`, `"1 week"`, `"3600"` (seconds) → seconds.
pub fn parse_duration(text: &str) -> Result<u64, ConsoleError> {
    let bad = || {
        ConsoleError::BadInput(format!(
            "{text:?} is not a duration like \"1 day\", \"2 h\", \"10 min\" or \"90 s\""
        ))
    };
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_secs = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
    if secs == 0 {
        return Err(ConsoleError::BadInput(format!("{text:?} is zero; a duration must be longer")));
    }
    Ok(secs)
}

/// `86400` → `"day"`, `600` → `"10 minutes"`: the period as in "per day".
pub(crate) fn period_words(secs: u64) -> String {
    let unit = |n: u64, one: &str, many: &str| {
        if n == 1 { one.to_owned() } else { format!("{n} {many}") }
    };
    match secs {
        0 => "the whole session".to_owned(),
        s if s % (7 * 86_400) == 0 => unit(s / (7 * 86_400), "week", "weeks"),
        s if s % 86_400 == 0 => unit(s / 86_400, "day", "days"),
        s if s % 3_600 == 0 => unit(s / 3_600, "hour", "hours"),
        s if s % 60 == 0 => unit(s / 60, "minute", "minutes"),
        s => unit(s, "second", "seconds"),
    }
}

fn merchants_words(merchants: &[Address]) -> String {
    if merchants.is_empty() {
        "to any merchant".to_owned()
    } else {
        let list: Vec<String> = merchants.iter().map(ToString::to_string).collect();
        format!("only to {}", list.join(", "))
    }
}

/// The scopes of `grant` as sentences, in the order an owner asks about them: how much, to whom,
/// how often, gas, and when.
pub(crate) fn scope_words(
    grant: &SessionGrant,
    token: &TokenInfo,
    merchants: &[Address],
) -> Vec<String> {
    let amount = |v: alloy::primitives::aliases::U96| token.format(U256::from(v));
    let period = period_words(u64::from(grant.period));
    let mut words = vec![
        format!("up to {} per {period}", amount(grant.periodCap)),
        format!("at most {} per payment", amount(grant.perPaymentMax)),
        format!("at most {} in total", amount(grant.lifetimeCap)),
        format!("paid {}", merchants_words(merchants)),
    ];
    let count: u32 = grant.maxPaymentsPerPeriod.to();
    if count > 0 {
        words.push(format!("at most {count} payments per {period}"));
    }
    if !grant.merchantPeriodCap.is_zero() {
        words.push(format!(
            "at most {} to any one merchant per {period}",
            amount(grant.merchantPeriodCap)
        ));
    }
    words.push(if grant.gasLifetimeBudget.is_zero() {
        if grant.paymaster.is_zero() {
            "gas: a paymaster must sponsor every payment".to_owned()
        } else {
            format!("gas: paymaster {} must sponsor every payment", grant.paymaster)
        }
    } else {
        format!(
            "gas: paid by the account, at most {} wei per payment, {} wei per {period}, {} wei in total",
            grant.maxGasCostPerOp, grant.gasPeriodBudget, grant.gasLifetimeBudget
        )
    });
    words.push(format!(
        "valid from {} until {}",
        rfc3339(grant.valid_after_secs()),
        rfc3339(grant.valid_until_secs())
    ));
    words
}

/// The one sentence the grant form shows before signing.
pub(crate) fn spend_sentence(
    grant: &SessionGrant,
    token: &TokenInfo,
    merchants: &[Address],
) -> String {
    let amount = |v: alloy::primitives::aliases::U96| token.format(U256::from(v));
    format!(
        "The agent will be able to spend at most {} per {}, {} per payment and {} in total, paid {}, until {}.",
        amount(grant.periodCap),
        period_words(u64::from(grant.period)),
        amount(grant.perPaymentMax),
        amount(grant.lifetimeCap),
        merchants_words(merchants),
        rfc3339(grant.valid_until_secs())
    )
}

/// How close a meter is to its cap: the page's approaching-limit indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Level {
    /// Below half.
    #[serde(rename = "0")]
    Low,
    /// At least half, below 80 %.
    #[serde(rename = "50")]
    Half,
    /// At least 80 %, below the cap.
    #[serde(rename = "80")]
    Near,
    /// The cap is reached: the next payment under it is refused.
    #[serde(rename = "100")]
    Reached,
}

impl Level {
    /// The level of `used` out of `limit` (a zero limit is no limit: [`Level::Low`]).
    pub fn of(used: U256, limit: U256) -> Self {
        if limit.is_zero() {
            return Self::Low;
        }
        let scaled = used.saturating_mul(U256::from(100u8));
        if used >= limit {
            Self::Reached
        } else if scaled >= limit.saturating_mul(U256::from(80u8)) {
            Self::Near
        } else if scaled >= limit.saturating_mul(U256::from(50u8)) {
            Self::Half
        } else {
            Self::Low
        }
    }
}

/// One cap and how much of it is used.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meter {
    pub(crate) label: String,
    pub(crate) used: String,
    pub(crate) limit: String,
    pub(crate) percent: u32,
    pub(crate) level: Level,
}

impl Meter {
    fn new(
        label: impl Into<String>,
        used: U256,
        limit: U256,
        show: impl Fn(U256) -> String,
    ) -> Self {
        let percent = if limit.is_zero() {
            0
        } else {
            let p = used.saturating_mul(U256::from(100u8)) / limit;
            u32::try_from(p.min(U256::from(999u32))).unwrap_or(999)
        };
        Self {
            label: label.into(),
            used: show(used),
            limit: show(limit),
            percent,
            level: Level::of(used, limit),
        }
    }
}

/// The meters of a session at chain time `now`: this period's spend, the lifetime spend, and,
/// when the grant limits them, this period's payment count and the self-paid gas.
pub(crate) fn meters(
    grant: &SessionGrant,
    token: &TokenInfo,
    s: &OnChainSession,
    now: u64,
) -> Vec<Meter> {
    // The stored counters belong to `s.period_index`; a later period has spent nothing yet.
    let current = grant.period_index_at(now).is_none_or(|k| k == s.period_index);
    let (period_spent, payments) =
        if current { (s.period_spent, s.payments_in_period) } else { (U256::ZERO, 0) };
    let tokens = |v: U256| token.format(v);
    let period = period_words(u64::from(grant.period));
    // "this period (day)" reads oddly; "this period (1 day)" does not.
    let length = if period.starts_with(|c: char| c.is_ascii_digit()) {
        period.clone()
    } else {
        format!("1 {period}")
    };
    let mut out = vec![
        Meter::new(
            format!("this period ({length})"),
            period_spent,
            U256::from(grant.periodCap),
            tokens,
        ),
        Meter::new("in total", s.lifetime_spent, U256::from(grant.lifetimeCap), tokens),
    ];
    let count: u32 = grant.maxPaymentsPerPeriod.to();
    if count > 0 {
        out.push(Meter::new(
            format!("payments this period ({length})"),
            U256::from(payments),
            U256::from(count),
            |v| v.to_string(),
        ));
    }
    if !grant.gasLifetimeBudget.is_zero() {
        out.push(Meter::new(
            "gas in total",
            s.gas_lifetime_spent,
            U256::from(grant.gasLifetimeBudget),
            |v| format!("{v} wei"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_words() {
        assert_eq!(parse_duration("1 day").unwrap(), 86_400);
        assert_eq!(parse_duration("10 min").unwrap(), 600);
        assert_eq!(parse_duration("2h").unwrap(), 7_200);
        assert_eq!(parse_duration(" 90 ").unwrap(), 90);
        for bad in ["", "day", "0 s", "-1 h", "1 fortnight", "1.5 h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(period_words(86_400), "day");
        assert_eq!(period_words(600), "10 minutes");
        assert_eq!(period_words(90), "90 seconds");
    }

    #[test]
    fn levels_at_50_80_100_percent() {
        let l = |used: u64| Level::of(U256::from(used), U256::from(100u64));
        assert_eq!(
            (l(49), l(50), l(79), l(80), l(99), l(100), l(150)),
            (
                Level::Low,
                Level::Half,
                Level::Half,
                Level::Near,
                Level::Near,
                Level::Reached,
                Level::Reached
            )
        );
        assert_eq!(Level::of(U256::from(5u8), U256::ZERO), Level::Low, "no limit, no alarm");
    }
}
