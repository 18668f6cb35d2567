//! Why a session payment is out of scope.
//!
//! [`Rule`] is the list of the account's session checks, in `_validateSession`'s order. Each rule has
//! exactly one x402 reason string ([`Rule::reason`], the stable `invalidReason` a facilitator answers
//! and the SDK reports) and, where the chain names it, exactly one contract revert string
//! ([`Rule::revert_strings`], what the EntryPoint reports as `AA23 reverted: <string>`).
//! [`Rule::from_entry_point`] reads a rule back from an EntryPoint refusal, so a refusal that only the
//! chain noticed still gets the same reason as the off-chain check would have given.
//!
//! [`ScopeViolation`] is a rule plus the numbers that explain it (amounts, periods, addresses).

use alloy::primitives::{Address, U256};

/// One session check of the account contract. Declared in the contract's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// The signature is not `mode ‖ abi.encode(SessionSignature)` (empty, unknown mode, bad ABI).
    MalformedSignature,
    /// The session was revoked by the owner.
    Revoked,
    /// The owner paused the session (it may resume).
    Paused,
    /// The grant names an older account epoch: the owner revoked every session.
    RevokedAll,
    /// A use-mode op for a session no enable-mode op has enabled yet.
    NotEnabled,
    /// The owner's signature on the grant does not recover to the account owner.
    BadOwnerSignature,
    /// The grant is not one the account accepts (see [`GrantDefect`]).
    MalformedGrant,
    /// The op names a paymaster other than the one the grant pins.
    PaymasterNotAllowed,
    /// The op pays its own gas but the grant requires a paymaster.
    PaymasterRequired,
    /// The op's self-paid gas could cost more than the grant allows per op.
    GasCostOverCap,
    /// The op's self-paid gas would take the period's gas spending above the gas period budget.
    OverGasPeriodBudget,
    /// The op's self-paid gas would take the session's gas spending above its lifetime budget.
    OverGasLifetimeBudget,
    /// `callData` is not the payment shape (`execute`/`executeBatch` around approve + settle).
    MethodNotAllowed,
    /// The payment's token is not the grant's.
    TokenNotAllowed,
    /// The payment is certain to revert in `settle` (zero amount, merchant or requestHash, or the
    /// account paying itself): refused in validation, where its gas would otherwise be lost.
    InvalidPayment,
    /// The merchant is not on the grant's allowlist.
    MerchantNotAllowed,
    /// The amount is above the grant's per-payment maximum.
    OverPerPaymentMax,
    /// The op claims a period before the one the account already charges.
    PeriodAlreadyOver,
    /// The payment would take the period's spending above the period cap.
    OverPeriodCap,
    /// The payment would take lifetime spending above the lifetime cap.
    OverLifetimeCap,
    /// The period already holds the most payments the grant allows.
    OverPaymentCount,
    /// The payment would take this merchant's spending in the period above its sub-budget.
    OverMerchantPeriodCap,
    /// The claimed period lies outside the grant window.
    PeriodOutsideWindow,
    /// The session key did not sign the op (EntryPoint `AA24 signature error`).
    BadSessionSignature,
    /// Chain time is before the op's window (EntryPoint `AA22 expired or not due`).
    NotYetValid,
    /// Chain time is after the op's window (EntryPoint `AA22 expired or not due`).
    Expired,
}

impl Rule {
    /// Every rule, in the contract's order.
    pub const ALL: [Self; 26] = [
        Self::MalformedSignature,
        Self::Revoked,
        Self::Paused,
        Self::RevokedAll,
        Self::NotEnabled,
        Self::BadOwnerSignature,
        Self::MalformedGrant,
        Self::PaymasterNotAllowed,
        Self::PaymasterRequired,
        Self::GasCostOverCap,
        Self::OverGasPeriodBudget,
        Self::OverGasLifetimeBudget,
        Self::MethodNotAllowed,
        Self::TokenNotAllowed,
        Self::InvalidPayment,
        Self::MerchantNotAllowed,
        Self::OverPerPaymentMax,
        Self::PeriodAlreadyOver,
        Self::OverPeriodCap,
        Self::OverLifetimeCap,
        Self::OverPaymentCount,
        Self::OverMerchantPeriodCap,
        Self::PeriodOutsideWindow,
        Self::BadSessionSignature,
        Self::NotYetValid,
        Self::Expired,
    ];

    /// The stable x402 reason string (`invalidReason`). Renaming one is a wire break.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::MalformedSignature | Self::BadSessionSignature => "invalid_session_signature",
            Self::Revoked | Self::RevokedAll => "session_revoked",
            Self::Paused => "session_paused",
            Self::NotEnabled => "session_not_enabled",
            Self::BadOwnerSignature | Self::MalformedGrant => "invalid_session_grant",
            Self::PaymasterNotAllowed | Self::PaymasterRequired | Self::GasCostOverCap => {
                "gas_policy_violation"
            }
            Self::OverGasPeriodBudget | Self::OverGasLifetimeBudget => "gas_budget_exceeded",
            Self::InvalidPayment => "invalid_payment",
            Self::OverPaymentCount => "payment_count_exceeded",
            Self::OverMerchantPeriodCap => "merchant_cap_exceeded",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TokenNotAllowed => "token_not_allowed",
            Self::MerchantNotAllowed => "merchant_not_allowed",
            Self::OverPerPaymentMax => "per_payment_max_exceeded",
            Self::PeriodAlreadyOver => "period_already_over",
            Self::OverPeriodCap => "spend_cap_exceeded",
            Self::OverLifetimeCap => "lifetime_cap_exceeded",
            Self::PeriodOutsideWindow | Self::Expired => "session_expired",
            Self::NotYetValid => "session_not_yet_valid",
        }
    }

    /// The contract's revert strings for this rule (several for the rules whose diagnostics name
    /// the precise defect). Empty for the rules the EntryPoint reports itself (`AA22`, `AA24`).
    pub const fn revert_strings(self) -> &'static [&'static str] {
        match self {
            Self::MalformedSignature => {
                &["session: unknown signature mode", "session: malformed signature"]
            }
            Self::Revoked => &["session: revoked"],
            Self::Paused => &["session: paused"],
            Self::RevokedAll => &["session: revoked (all sessions)"],
            // The Safe module enables in-op for 1-of-1 Safes only.
            Self::NotEnabled => {
                &["session: not enabled", "session: Safe is not 1-of-1 (enable with enableSession)"]
            }
            Self::BadOwnerSignature => &["session: bad owner signature"],
            Self::MalformedGrant => &GRANT_DEFECT_REVERTS,
            Self::PaymasterNotAllowed => &["session: paymaster not allowed"],
            Self::PaymasterRequired => &["session: paymaster required"],
            Self::GasCostOverCap => &["session: gas cost over per-op cap"],
            Self::OverGasPeriodBudget => &["session: over gas period budget"],
            Self::OverGasLifetimeBudget => &["session: over gas lifetime budget"],
            Self::InvalidPayment => &[
                "session: zero amount",
                "session: zero merchant",
                "session: zero requestHash",
                "session: merchant is the account",
            ],
            Self::MethodNotAllowed => &[
                "session: callData is not execute/executeBatch",
                "session: self-call not allowed",
                "session: value transfer not allowed",
                "session: target not allowed",
                "session: batch must be exactly approve + settle",
                "session: first call must be approve",
                "session: second call must be settle",
                "session: approve spender not allowed",
                "session: approve amount differs from payment",
                "session: malformed callData",
                "session: non-canonical callData",
            ],
            Self::TokenNotAllowed => &["session: token not allowed"],
            Self::MerchantNotAllowed => &["session: merchant not allowed"],
            Self::OverPerPaymentMax => &["session: over per-payment max"],
            Self::PeriodAlreadyOver => &["session: period already over"],
            Self::OverPeriodCap => &["session: over period cap"],
            Self::OverLifetimeCap => &["session: over lifetime cap"],
            Self::OverPaymentCount => &["session: over payment count"],
            Self::OverMerchantPeriodCap => &["session: over merchant period cap"],
            Self::PeriodOutsideWindow => &["session: period outside grant window"],
            Self::BadSessionSignature | Self::NotYetValid | Self::Expired => &[],
        }
    }

    /// Whether the rule is about time alone (the window and the clock), which a caller without chain
    /// time cannot judge.
    pub const fn is_time(self) -> bool {
        matches!(self, Self::PeriodOutsideWindow | Self::NotYetValid | Self::Expired)
    }

    /// The rule behind a contract revert string (`session: over period cap`), if it is one.
    pub fn from_revert_string(revert: &str) -> Option<Self> {
        let revert = revert.trim();
        Self::ALL.into_iter().find(|rule| rule.revert_strings().contains(&revert))
    }

    /// The rule behind an EntryPoint `FailedOp` reason: `AA23 reverted: <revert string>` for a
    /// session check of the account. `AA22`/`AA24` are not mapped: the EntryPoint reports them for
    /// owner ops and paymasters too, so only the off-chain check can say whose rule failed.
    pub fn from_entry_point(reason: &str) -> Option<Self> {
        reason.strip_prefix("AA23 reverted: ").and_then(Self::from_revert_string)
    }

    /// The rule behind an `AA23 reverted: <revert string>` quoted anywhere in a longer message (a
    /// paymaster's or bundler's error that passes the EntryPoint's refusal on), so a layer that
    /// only sees the message still names the rule. The longest revert string that follows wins.
    pub fn quoted_in(message: &str) -> Option<Self> {
        const MARK: &str = "AA23 reverted: ";
        let at = message.find(MARK)?;
        let rest = &message[at + MARK.len()..];
        Self::ALL
            .into_iter()
            .flat_map(|rule| rule.revert_strings().iter().map(move |s| (rule, *s)))
            .filter(|(_, revert)| rest.starts_with(revert))
            .max_by_key(|(_, revert)| revert.len())
            .map(|(rule, _)| rule)
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// Why the account refuses to enable a grant (`_requireWellFormed`), in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantDefect {
    /// `sessionKey` is the zero address.
    NoSessionKey = 0,
    /// `sessionKey` is the account owner: a session must be a different key.
    KeyIsOwner = 1,
    /// `validUntil` is not after `validAfter`.
    EmptyWindow = 2,
    /// `token` or `settlement` is the zero address.
    ZeroAddress = 3,
    /// `token` or `settlement` is the account itself.
    TargetsAccount = 4,
    /// `perPaymentMax`, `periodCap` or `lifetimeCap` is zero.
    ZeroCap = 5,
}

/// The contract's revert strings of the [`GrantDefect`]s, indexed by the defect.
const GRANT_DEFECT_REVERTS: [&str; 6] = [
    "session: grant has no session key",
    "session: grant key is the owner",
    "session: grant window empty",
    "session: grant has zero address",
    "session: grant targets account",
    "session: grant cap is zero",
];

impl GrantDefect {
    /// The contract's revert string for this defect.
    pub const fn revert_string(self) -> &'static str {
        GRANT_DEFECT_REVERTS[self as usize]
    }
}

impl std::fmt::Display for GrantDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.revert_string().trim_start_matches("session: "))
    }
}

/// A session payment outside its grant: the [`Rule`] it breaks and the figures that show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeViolation {
    /// [`Rule::MalformedSignature`]; the text says what is wrong with the signature bytes.
    #[error("not a session signature: {0}")]
    MalformedSignature(String),
    /// [`Rule::Revoked`]: final; the owner must grant a new session.
    #[error("session was revoked")]
    Revoked,
    /// [`Rule::Paused`]: the owner may resume it; retrying before then fails the same way.
    #[error("session is paused by the owner")]
    Paused,
    /// [`Rule::RevokedAll`]: final; the owner must grant a new session in the current epoch.
    #[error(
        "every session of this account was revoked (grant epoch {grant}, account epoch {account})"
    )]
    RevokedAll {
        /// The epoch the grant was signed for.
        grant: u32,
        /// The account's current epoch.
        account: u32,
    },
    /// [`Rule::NotEnabled`]: send an enable-mode op (with the owner's grant signature) first.
    #[error("session is not enabled and the op carries no owner signature")]
    NotEnabled,
    /// [`Rule::BadOwnerSignature`].
    #[error("the grant is not signed by the account owner")]
    BadOwnerSignature,
    /// [`Rule::MalformedGrant`], with the first defect in the contract's order.
    #[error("the grant is malformed: {0}")]
    MalformedGrant(GrantDefect),
    /// [`Rule::PaymasterNotAllowed`], naming the op's paymaster.
    #[error("paymaster {0} is not the one the grant allows")]
    PaymasterNotAllowed(Address),
    /// [`Rule::PaymasterRequired`]: the grant has no gas budget, so only sponsored ops pass.
    #[error("the grant requires a paymaster")]
    PaymasterRequired,
    /// [`Rule::GasCostOverCap`]: lower the op's gas limits or fee, or have it sponsored.
    #[error("self-paid gas could cost more than the grant's per-op cap")]
    GasCostOverCap,
    /// [`Rule::OverGasPeriodBudget`]; a later period has its budget again.
    #[error("gas budget of period {period_index} has {remaining} wei left, the op may cost {cost}")]
    GasPeriodBudgetExceeded {
        /// The period the op claims.
        period_index: u32,
        /// The op's maximum gas cost (the v0.6 prefund), in wei.
        cost: U256,
        /// What the period's gas budget has left, in wei.
        remaining: U256,
    },
    /// [`Rule::OverGasLifetimeBudget`]: final for self-paid ops of this session.
    #[error("lifetime gas budget has {remaining} wei left, the op may cost {cost}")]
    GasLifetimeBudgetExceeded {
        /// The op's maximum gas cost (the v0.6 prefund), in wei.
        cost: U256,
        /// What the lifetime gas budget has left, in wei.
        remaining: U256,
    },
    /// The payment shape is wrong; the text names how (the contract's diagnostic, where known).
    #[error("callData is not the permitted payment: {0}")]
    MethodNotAllowed(String),
    /// [`Rule::TokenNotAllowed`], naming the payment's token.
    #[error("payment uses token {0}, not the grant's")]
    TokenNotAllowed(Address),
    /// The contract's revert string names which (`session: zero amount`, …).
    #[error("the payment is certain to revert: {0}")]
    InvalidPayment(&'static str),
    /// [`Rule::MerchantNotAllowed`], naming the merchant.
    #[error("merchant {0} is not on the allowlist")]
    MerchantNotAllowed(Address),
    /// [`Rule::OverPerPaymentMax`].
    #[error("amount {amount} exceeds the per-payment max {max}")]
    PerPaymentMaxExceeded {
        /// The payment, in the token's atomic units.
        amount: U256,
        /// The grant's per-payment maximum, in the token's atomic units.
        max: U256,
    },
    /// [`Rule::PeriodAlreadyOver`]: claim the account's current period (or a later one) instead.
    #[error("claimed period {claimed} is before the account's period {stored}")]
    PeriodAlreadyOver {
        /// The period the payment claims.
        claimed: u32,
        /// The period the account (or the ledger) already charges.
        stored: u32,
    },
    /// [`Rule::OverPeriodCap`]; the next period has the full cap again.
    #[error("period {period_index} has {remaining} left, payment is {amount}")]
    PeriodCapExceeded {
        /// The period the payment claims.
        period_index: u32,
        /// The payment, in the token's atomic units.
        amount: U256,
        /// What the period cap has left, in the token's atomic units.
        remaining: U256,
    },
    /// [`Rule::OverLifetimeCap`]: final for payments of this size.
    #[error("lifetime budget has {remaining} left, payment is {amount}")]
    LifetimeCapExceeded {
        /// The payment, in the token's atomic units.
        amount: U256,
        /// What the lifetime cap has left, in the token's atomic units.
        remaining: U256,
    },
    /// [`Rule::OverPaymentCount`]; the next period allows payments again.
    #[error("period {period_index} already holds {count} payments, the most the grant allows")]
    PaymentCountExceeded {
        /// The period the payment claims.
        period_index: u32,
        /// Payments already made in it.
        count: u32,
    },
    /// [`Rule::OverMerchantPeriodCap`]; other merchants, or the next period, may still be paid.
    #[error(
        "merchant {merchant} has {remaining} left in period {period_index}, payment is {amount}"
    )]
    MerchantCapExceeded {
        /// The merchant being paid.
        merchant: Address,
        /// The period the payment claims.
        period_index: u32,
        /// The payment, in the token's atomic units.
        amount: U256,
        /// What the merchant's sub-budget has left in the period, in the token's atomic units.
        remaining: U256,
    },
    /// [`Rule::PeriodOutsideWindow`], naming the claimed period.
    #[error("claimed period {0} is outside the grant window")]
    PeriodOutsideWindow(u32),
    /// [`Rule::BadSessionSignature`].
    #[error("the session key did not sign this op")]
    BadSessionSignature,
    /// [`Rule::NotYetValid`]: retry once chain time reaches `valid_after`.
    #[error("session is not valid until {valid_after} (now {now})")]
    NotYetValid {
        /// Start of the claimed period's window, unix seconds (chain time).
        valid_after: u64,
        /// The chain time checked, unix seconds.
        now: u64,
    },
    /// [`Rule::Expired`]: final for this period; a later period may still be open.
    #[error("session expired at {valid_until} (now {now})")]
    Expired {
        /// End of the claimed period's window (inclusive), unix seconds (chain time).
        valid_until: u64,
        /// The chain time checked, unix seconds.
        now: u64,
    },
}

impl ScopeViolation {
    /// The rule this violation breaks.
    pub const fn rule(&self) -> Rule {
        match self {
            Self::MalformedSignature(_) => Rule::MalformedSignature,
            Self::Revoked => Rule::Revoked,
            Self::Paused => Rule::Paused,
            Self::RevokedAll { .. } => Rule::RevokedAll,
            Self::NotEnabled => Rule::NotEnabled,
            Self::BadOwnerSignature => Rule::BadOwnerSignature,
            Self::MalformedGrant(_) => Rule::MalformedGrant,
            Self::PaymasterNotAllowed(_) => Rule::PaymasterNotAllowed,
            Self::PaymasterRequired => Rule::PaymasterRequired,
            Self::GasCostOverCap => Rule::GasCostOverCap,
            Self::GasPeriodBudgetExceeded { .. } => Rule::OverGasPeriodBudget,
            Self::GasLifetimeBudgetExceeded { .. } => Rule::OverGasLifetimeBudget,
            Self::InvalidPayment(_) => Rule::InvalidPayment,
            Self::MethodNotAllowed(_) => Rule::MethodNotAllowed,
            Self::TokenNotAllowed(_) => Rule::TokenNotAllowed,
            Self::MerchantNotAllowed(_) => Rule::MerchantNotAllowed,
            Self::PerPaymentMaxExceeded { .. } => Rule::OverPerPaymentMax,
            Self::PeriodAlreadyOver { .. } => Rule::PeriodAlreadyOver,
            Self::PeriodCapExceeded { .. } => Rule::OverPeriodCap,
            Self::LifetimeCapExceeded { .. } => Rule::OverLifetimeCap,
            Self::PaymentCountExceeded { .. } => Rule::OverPaymentCount,
            Self::MerchantCapExceeded { .. } => Rule::OverMerchantPeriodCap,
            Self::PeriodOutsideWindow(_) => Rule::PeriodOutsideWindow,
            Self::BadSessionSignature => Rule::BadSessionSignature,
            Self::NotYetValid { .. } => Rule::NotYetValid,
            Self::Expired { .. } => Rule::Expired,
        }
    }

    /// The stable x402 reason string of the rule.
    pub const fn reason(&self) -> &'static str {
        self.rule().reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_revert_string_maps_back_to_its_rule() {
        for rule in Rule::ALL {
            for revert in rule.revert_strings() {
                assert_eq!(Rule::from_revert_string(revert), Some(rule), "{revert}");
                let failed_op = format!("AA23 reverted: {revert}");
                assert_eq!(Rule::from_entry_point(&failed_op), Some(rule));
            }
        }
        assert_eq!(Rule::from_entry_point("AA24 signature error"), None);
        assert_eq!(Rule::from_entry_point("AA23 reverted: something else"), None);
    }

    #[test]
    fn quoted_rules_are_found_in_longer_messages() {
        let message = "simulation: the EntryPoint refuses the op: AA23 reverted: session: over period cap (op 0)";
        assert_eq!(Rule::quoted_in(message), Some(Rule::OverPeriodCap));
        assert_eq!(Rule::quoted_in("AA23 reverted (or OOG)"), None);
        assert_eq!(Rule::quoted_in("AA23 reverted: not ours"), None);
    }

    #[test]
    fn revert_strings_are_unique() {
        let mut all: Vec<&str> =
            Rule::ALL.iter().flat_map(|r| r.revert_strings().iter().copied()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a revert string names two rules");
    }

    #[test]
    fn reasons_are_stable() {
        assert_eq!(ScopeViolation::Revoked.reason(), "session_revoked");
        assert_eq!(
            ScopeViolation::PeriodAlreadyOver { claimed: 0, stored: 1 }.reason(),
            "period_already_over"
        );
        assert_eq!(
            ScopeViolation::PeriodCapExceeded {
                period_index: 0,
                amount: U256::ONE,
                remaining: U256::ZERO
            }
            .reason(),
            "spend_cap_exceeded"
        );
    }
}
