//! What the operator decides: which chain and paymaster, who may ask, and what gets sponsored.

use std::{collections::HashSet, fmt, num::NonZeroU32};

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use x402_aa::{ENTRY_POINT_V06, accounts::AccountKind};

/// Everything [`crate::PaymasterService::new`] needs.
#[derive(Clone)]
pub struct PaymasterConfig {
    /// JSON-RPC endpoint of the chain the paymaster is deployed on; `getHash` and the block clock
    /// are read from it.
    pub rpc_url: String,
    /// Checked against `eth_chainId` when serving starts, and what `eth_chainId` answers.
    pub chain_id: u64,
    /// The only EntryPoint whose ops are sponsored.
    pub entry_point: Address,
    /// The VerifyingPaymaster (`@account-abstraction/contracts@0.6.0`) signed for.
    pub paymaster: Address,
    /// The paymaster's `verifyingSigner`.
    pub signer: PrivateKeySigner,
    /// Keys accepted in the `apikey` parameter or the `X-API-Key` header. Must not be empty: an
    /// open paymaster would let anyone drain its EntryPoint deposit.
    pub api_keys: Vec<String>,
    /// What it sponsors, and how much per account and session.
    pub policy: SponsorPolicy,
}

impl PaymasterConfig {
    /// EntryPoint v0.6 and [`SponsorPolicy::default`].
    pub fn new(
        rpc_url: impl Into<String>,
        chain_id: u64,
        paymaster: Address,
        signer: PrivateKeySigner,
        api_keys: Vec<String>,
    ) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            chain_id,
            entry_point: ENTRY_POINT_V06,
            paymaster,
            signer,
            api_keys,
            policy: SponsorPolicy::default(),
        }
    }

    /// The same configuration with another sponsorship policy.
    pub fn with_policy(mut self, policy: SponsorPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// API keys and the node URL (which may embed a key) stay out of logs.
impl fmt::Debug for PaymasterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymasterConfig")
            .field("chain_id", &self.chain_id)
            .field("entry_point", &self.entry_point)
            .field("paymaster", &self.paymaster)
            .field("signer", &self.signer.address())
            .field("api_keys", &format_args!("<{} redacted>", self.api_keys.len()))
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Which ops the paymaster agrees to pay for, and how much.
///
/// Every op the EntryPoint validates is paid from the paymaster's deposit, even when its
/// execution reverts, and `preVerificationGas` and the fees go to whoever bundles it. So a
/// session-key holder running its own bundler could drain the deposit with ops certain to revert,
/// a huge `preVerificationGas` or a priority fee it collects itself. The policy closes each door:
/// static rules on the op, a simulation of the op before signing, and budgets per account and
/// per session.
///
/// Checked in the order of the fields below; the first failing rule is the one reported
/// ([`crate::PolicyViolation`], one reason string each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SponsorPolicy {
    /// If set, only these senders are sponsored.
    pub allowed_senders: Option<HashSet<Address>>,
    /// If set, only ops whose calls (read by [`Self::account_kinds`]' ABIs) go to these contracts
    /// are sponsored; callData of any other shape is refused because its targets cannot be known.
    /// Empty callData (a deploy-only op) calls nothing and passes.
    pub allowed_targets: Option<HashSet<Address>>,
    /// The account contract families this paymaster sponsors (declared, not guessed): an op's
    /// callData is read by the first of these ABIs that decodes it (their selectors differ, so
    /// at most one family's shape fits). All known families by default, so one devnet paymaster
    /// serves SimpleAccount, SessionKeyAccount, Kernel, Safe and Biconomy payers alike.
    pub account_kinds: Vec<AccountKind>,
    /// Sponsor callData that is not an aa-native payment (`approve` + `settle`, or `settle`).
    ///
    /// Off by default: the simulation can tell whether a payment will execute (the settlement
    /// records its requestHash) but not whether an arbitrary call will, and an op whose execution
    /// reverts still costs the deposit its gas. Empty callData executes nothing and always passes.
    pub sponsor_non_payments: bool,
    /// Cap on `callGasLimit + verificationGasLimit + preVerificationGas`, measured after
    /// `verificationGasLimit` has been raised to [`Self::min_verification_gas_limit`].
    pub max_gas_per_op: u64,
    /// Cap on `preVerificationGas`, which the EntryPoint pays to the bundler in full whatever the
    /// op uses: the field a bundler-operating caller would inflate to turn the deposit into its
    /// own income.
    pub max_pre_verification_gas: u64,
    /// Cap on `maxFeePerGas`, in wei; with the gas cap it bounds what one op can cost the deposit.
    pub max_fee_per_gas: u128,
    /// Cap on `maxPriorityFeePerGas`, in wei. The op pays `min(maxFee, baseFee + priority)` per
    /// gas to the bundler; a priority fee near the max fee lets a bundler that pays a lower
    /// price for its own transaction pocket the difference on every unit of gas. An op whose
    /// priority fee exceeds its max fee is refused as malformed.
    pub max_priority_fee_per_gas: u128,
    /// Floor for the returned `verificationGasLimit`.
    ///
    /// In v0.6 the paymaster's validation runs on what the account's validation left of the
    /// op's `verificationGasLimit` (AA33/AA40 otherwise), and clients often estimate without a
    /// paymaster. A deployed SimpleAccount's first sponsored op (cold storage, first write of
    /// the paymaster's `senderNonce`) measured 86k on the devnet; the default of 150k leaves
    /// room for accounts with heavier validation. Ops below the floor are raised to it; ops at
    /// or above it are echoed unchanged.
    pub min_verification_gas_limit: u64,
    /// Run the op through `EntryPoint.simulateHandleOp` (validation and execution, with the
    /// paymaster's approval in place) before signing, and refuse it unless validation passes
    /// and a payment's settlement records its requestHash. On by default; off only for tests
    /// that need approvals of ops the chain will refuse.
    pub simulate: bool,
    /// Budgets per account and per session, charged with each approval's worst-case cost.
    pub limits: SponsorLimits,
    /// How long a sponsorship stays usable: `validUntil = now + validity_seconds`.
    pub validity_seconds: u64,
    /// Sponsorships granted per sender in any 60 s window; `None` disables the limit. NERO's
    /// default is 30.
    pub rate_limit_per_sender_per_minute: Option<NonZeroU32>,
}

impl Default for SponsorPolicy {
    fn default() -> Self {
        Self {
            allowed_senders: None,
            allowed_targets: None,
            account_kinds: AccountKind::ALL.to_vec(),
            sponsor_non_payments: false,
            max_gas_per_op: 2_000_000,
            max_pre_verification_gas: 150_000,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 2_000_000_000,
            min_verification_gas_limit: 150_000,
            simulate: true,
            limits: SponsorLimits::default(),
            validity_seconds: 600,
            rate_limit_per_sender_per_minute: NonZeroU32::new(30),
        }
    }
}

/// Sponsorship budgets over fixed periods of chain time (period `n` covers
/// `[n·period_seconds, (n+1)·period_seconds)`).
///
/// Every approval is charged when it is signed, with the most its op can cost the deposit:
/// `(callGasLimit + 3·verificationGasLimit + preVerificationGas) · maxFeePerGas` (the
/// EntryPoint's own prefund with a paymaster). So the sum of what the approvals of one period can
/// ever cost stays within the wei budget, whether the ops land, revert or are never sent. Refused
/// requests cost nothing.
///
/// An op counts against its account, and a session op (its signature placeholder decodes as a
/// session signature, `x402_aa_policy::SessionOpSignature`) also against its session. The
/// VerifyingPaymaster's hash covers every op field except `signature`, so a caller can name a
/// different session (or none) in the placeholder than in the op it finally sends: the account
/// budget is the bound that holds against a lying caller, the session budget keeps honest
/// sessions of one account from starving each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SponsorLimits {
    /// Length of a budget period; periods are aligned to the Unix epoch, so every budget of the
    /// service rolls over at the same instant.
    pub period_seconds: u64,
    /// What one account (the op's `sender`) may be sponsored per period: the bound a lying caller
    /// cannot escape.
    pub per_account: Budget,
    /// What one session of an account may be sponsored per period.
    pub per_session: Budget,
}

impl Default for SponsorLimits {
    /// Per hour: 1000 ops and 10 ETH per account, 500 ops and 5 ETH per session; generous for a
    /// devnet, where the deposit is 100 ETH.
    fn default() -> Self {
        let eth = U256::from(10u64.pow(18));
        Self {
            period_seconds: 3600,
            per_account: Budget { max_ops: Some(1000), max_wei: Some(eth * U256::from(10)) },
            per_session: Budget { max_ops: Some(500), max_wei: Some(eth * U256::from(5)) },
        }
    }
}

/// A budget for one period; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    /// Sponsored operations per period.
    pub max_ops: Option<u64>,
    /// Worst-case gas cost per period, in wei (`(callGasLimit + verificationGasLimit * 3 +
    /// preVerificationGas) * maxFeePerGas`, what the deposit can lose to one op).
    pub max_wei: Option<U256>,
}

impl Budget {
    /// No limit on either figure.
    pub const UNLIMITED: Self = Self { max_ops: None, max_wei: None };
}
