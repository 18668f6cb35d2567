//! The limits of one session as the policy check reads them: the amount, time and merchant fields of
//! its [`SessionGrant`]. The SDK's ledger keeps them per session, so it can refuse without the grant.

use std::collections::BTreeSet;

use alloy::primitives::{Address, B256, U256, aliases::U48};

use crate::{
    grant::{GrantWindow, PeriodWindow, SessionGrant},
    merkle::MerchantTree,
};

/// Why limits cannot be built or were stored inconsistently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// The limits contradict themselves (window out of order or beyond 48 bits, an empty
    /// merchant set); the text says which. From disk, the stored session is corrupt.
    #[error("invalid limits: {0}")]
    Invalid(&'static str),
    /// The grant has a merchant root but no list was passed; pass the merchants the grant was
    /// made for.
    #[error("the grant restricts merchants (root {root}) but no merchant list was given")]
    MerchantListRequired {
        /// The grant's merchant Merkle root.
        root: B256,
    },
    /// The merchant list is not the one the grant was made for.
    #[error("the merchant list has root {computed}, the grant has {expected}")]
    MerchantRootMismatch {
        /// The grant's merchant Merkle root.
        expected: B256,
        /// The root of the list that was passed.
        computed: B256,
    },
}

impl LimitsError {
    /// Stable machine-readable reason.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_limits",
            Self::MerchantListRequired { .. } => "merchant_list_required",
            Self::MerchantRootMismatch { .. } => "merchant_root_mismatch",
        }
    }
}

/// The scopes of one session that bound what it pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most one payment may move, in the token's atomic units.
    pub per_payment_max: U256,
    /// Most paid per period, in the token's atomic units.
    pub period_cap: U256,
    /// Length of a period in seconds; `0` makes the whole grant window one period.
    pub period_seconds: u32,
    /// Most paid over the session's life, in the token's atomic units.
    pub lifetime_cap: U256,
    /// Most payments per period; 0 = no count limit.
    pub max_payments_per_period: u32,
    /// Most paid to any one merchant per period; 0 = no per-merchant sub-budget.
    pub merchant_period_cap: U256,
    /// Grant window start, inclusive, unix seconds of chain time (the contract's `uint48`).
    pub valid_after: u64,
    /// Grant window end, inclusive, unix seconds of chain time (the contract's `uint48`).
    pub valid_until: u64,
    /// The Merkle root of [`Limits::merchants`] when the list is known (see [`Limits::from_grant`]),
    /// else the grant's root; zero = any merchant.
    pub merchant_root: B256,
    /// The merchants behind the root, where known (the SDK knows them, the facilitator sees only a
    /// proof). `None` = decide by root and proof.
    pub merchants: Option<BTreeSet<Address>>,
}

impl Limits {
    /// The limits of `grant`. The grant holds only the merchant Merkle root, so the list behind it is
    /// passed in and checked against the root: with a non-zero root `merchants` must build exactly
    /// that root; with the zero root ("any merchant") an empty list keeps "any", and a non-empty list
    /// restricts the SDK further than the chain does (the SDK may always be stricter).
    pub fn from_grant(grant: &SessionGrant, merchants: &[Address]) -> Result<Self, LimitsError> {
        let root = grant.merchantRoot;
        let merchants = match (root.is_zero(), MerchantTree::new(merchants.iter().copied())) {
            (true, None) => None,
            (true, Some(tree)) => Some(tree.merchants().iter().copied().collect()),
            (false, None) => return Err(LimitsError::MerchantListRequired { root }),
            (false, Some(tree)) if tree.root() == root => {
                Some(tree.merchants().iter().copied().collect())
            }
            (false, Some(tree)) => {
                return Err(LimitsError::MerchantRootMismatch {
                    expected: root,
                    computed: tree.root(),
                });
            }
        };
        let limits = Self::of_grant(grant).with_merchants(merchants);
        limits.validate()?;
        Ok(limits)
    }

    /// The limits of `grant` as the chain sees them: merchants decided by root and proof.
    pub fn of_grant(grant: &SessionGrant) -> Self {
        Self {
            per_payment_max: U256::from(grant.perPaymentMax),
            period_cap: U256::from(grant.periodCap),
            period_seconds: grant.period,
            lifetime_cap: U256::from(grant.lifetimeCap),
            max_payments_per_period: grant.maxPaymentsPerPeriod.to::<u32>(),
            merchant_period_cap: U256::from(grant.merchantPeriodCap),
            valid_after: grant.valid_after_secs(),
            valid_until: grant.valid_until_secs(),
            merchant_root: grant.merchantRoot,
            merchants: None,
        }
    }

    /// These limits with a known merchant list (`None` = any merchant, or decide by root and proof
    /// when the grant has a root). A known list replaces the root by the list's own root, so the
    /// limits depend only on what they allow.
    pub fn with_merchants(mut self, merchants: Option<BTreeSet<Address>>) -> Self {
        if let Some(tree) = merchants.as_ref().and_then(|m| MerchantTree::new(m.iter().copied())) {
            self.merchant_root = tree.root();
        }
        self.merchants = merchants;
        self
    }

    /// The period containing `now` (`floor((now − valid_after) / period)`, as the contract counts), or
    /// `None` outside the grant window.
    pub fn period_index_at(&self, now: u64) -> Option<u32> {
        self.window_grant()?.period_index_at(now)
    }

    /// The inclusive window in which a payment claiming `period_index` can be included on chain.
    pub fn period_window(&self, period_index: u32) -> Option<PeriodWindow> {
        self.window_grant()?.period_window(period_index)
    }

    /// The merchant rule: with a known list, membership; else the zero root allows anyone and any
    /// other root needs a Merkle proof of the merchant.
    pub fn allows_merchant(&self, merchant: Address, proof: Option<&[B256]>) -> bool {
        match &self.merchants {
            Some(set) => set.contains(&merchant),
            None => {
                self.merchant_root.is_zero()
                    || proof.is_some_and(|p| MerchantTree::verify(self.merchant_root, merchant, p))
            }
        }
    }

    /// A grant carrying only the time fields, so period arithmetic is the one in [`GrantWindow`] that
    /// mirrors the contract, not a second copy of it.
    fn window_grant(&self) -> Option<SessionGrant> {
        Some(SessionGrant {
            validAfter: U48::try_from(self.valid_after).ok()?,
            validUntil: U48::try_from(self.valid_until).ok()?,
            period: self.period_seconds,
            ..SessionGrant::default()
        })
    }

    /// Internal consistency (the ledger also runs it on limits it reads back from disk).
    pub fn validate(&self) -> Result<(), LimitsError> {
        let invalid = |detail| Err(LimitsError::Invalid(detail));
        if self.window_grant().is_none() {
            return invalid("valid_after and valid_until must fit in 48 bits");
        }
        if self.valid_after > self.valid_until {
            return invalid("valid_after is after valid_until");
        }
        if self.merchants.as_ref().is_some_and(BTreeSet::is_empty) {
            return invalid("an empty merchant set allows nobody; use None for any merchant");
        }
        Ok(())
    }
}
