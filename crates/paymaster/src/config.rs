//! What the operator decides: which chain and paymaster, who may ask, and what gets sponsored.

use std::{collections::HashSet, fmt, num::NonZeroU32};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
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

/// Which ops the paymaster agrees to pay for.
///
/// Checked in the order of the fields below; the first failing rule is the one reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SponsorPolicy {
    /// If set, only these senders are sponsored.
    pub allowed_senders: Option<HashSet<Address>>,
    /// If set, only ops whose calls (read by [`Self::account_kind`]'s ABI) go to these contracts
    /// are sponsored; callData of any other shape is refused because its targets cannot be known.
    /// Empty callData (a deploy-only op) calls nothing and passes.
    pub allowed_targets: Option<HashSet<Address>>,
    /// The account contract family this paymaster sponsors (declared, not guessed from the op): its
    /// ABI reads the targets of an op's callData.
    pub account_kind: AccountKind,
    /// Cap on `callGasLimit + verificationGasLimit + preVerificationGas`, measured after
    /// `verificationGasLimit` has been raised to [`Self::min_verification_gas_limit`].
    pub max_gas_per_op: u64,
    /// Cap on `maxFeePerGas`, in wei; with the gas cap it bounds what one op can cost the deposit.
    pub max_fee_per_gas: u128,
    /// Floor for the returned `verificationGasLimit`.
    ///
    /// In v0.6 the paymaster's validation runs on what the account's validation left of the
    /// op's `verificationGasLimit` (AA33/AA40 otherwise), and clients often estimate without a
    /// paymaster. A deployed SimpleAccount's first sponsored op (cold storage, first write of
    /// the paymaster's `senderNonce`) measured 86k on the devnet; the default of 150k leaves
    /// room for accounts with heavier validation. Ops below the floor are raised to it; ops at
    /// or above it are echoed unchanged.
    pub min_verification_gas_limit: u64,
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
            account_kind: AccountKind::SimpleAccount,
            max_gas_per_op: 2_000_000,
            max_fee_per_gas: 100_000_000_000,
            min_verification_gas_limit: 150_000,
            validity_seconds: 600,
            rate_limit_per_sender_per_minute: NonZeroU32::new(30),
        }
    }
}
