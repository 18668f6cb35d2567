//! The sponsoring core: authorise, apply the policy, sign for the VerifyingPaymaster.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U48, keccak256},
    providers::{DynProvider, Provider},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolValue,
};
use serde::Serialize;
use x402_aa::UserOperation;
use x402_aa_contracts::VerifyingPaymaster;
use x402_aa_policy::SessionOpSignature;
use x402_aa_rpc::ChainClock;

use crate::{
    Error, PaymasterConfig, Result, SponsorError, SponsorPolicy,
    budget::Budgets,
    metrics::Metrics,
    policy::{self, RateLimiter},
    simulate::Simulation,
};

/// Where the signature starts in `paymasterAndData`: `paymaster(20) ‖ abi.encode(uint48, uint48)`.
const SIGNATURE_OFFSET: usize = 20 + 64;
/// An ECDSA signature `r ‖ s ‖ v`.
const SIGNATURE_LEN: usize = 65;

/// A paymaster that signs VerifyingPaymaster approvals for ops its policy accepts.
///
/// Cheap to clone; clones share the rate limiter, the budgets and the metrics. Serve it over JSON-RPC with
/// [`PaymasterService::serve`], or call [`PaymasterService::sponsor`] in-process.
#[derive(Clone)]
pub struct PaymasterService {
    inner: Arc<Inner>,
}

struct Inner {
    chain_id: u64,
    entry_point: Address,
    paymaster: Address,
    signer: PrivateKeySigner,
    /// Hashes, so comparing a candidate key takes the same time whatever prefix it shares with
    /// a real one.
    api_key_hashes: Vec<B256>,
    policy: SponsorPolicy,
    limiter: RateLimiter,
    budgets: Budgets,
    /// A well-formed signature over a fixed message, for the signature slots of simulated ops.
    placeholder: Bytes,
    metrics: Metrics,
    provider: DynProvider,
    /// The latest block timestamp read so far: the first guess of the chain's time.
    chain_time_seen: AtomicU64,
    /// Reads the latest block's timestamp, folded into the approval's reads where the node
    /// allows.
    clock: ChainClock,
}

/// What `pm_sponsor_userop` returns: the op's gas values as signed, and `paymasterAndData`.
///
/// The signature covers every gas field, so the client must write all of them into the op
/// before the account signs (`x402_aa_rpc::SponsorResult::apply_to` does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sponsorship {
    /// The VerifyingPaymaster's address, validity window and signature, ready for the op.
    pub paymaster_and_data: Bytes,
    /// As signed: the op must carry exactly these gas values.
    pub pre_verification_gas: U256,
    /// As signed (raised to the policy's minimum when the op asked for less).
    pub verification_gas_limit: U256,
    /// As signed.
    pub call_gas_limit: U256,
    /// As signed.
    pub max_fee_per_gas: U256,
    /// As signed.
    pub max_priority_fee_per_gas: U256,
    /// Last second (chain time) the approval is valid; inside `paymasterAndData` on the wire.
    #[serde(skip)]
    pub valid_until: u64,
}

/// An approval ready to sign: `paymasterAndData` with its signature slot zeroed, the hash the
/// signature goes over, and the `validUntil` both carry.
struct Prepared {
    pnd: Vec<u8>,
    hash: B256,
    valid_until: u64,
}

impl Sponsorship {
    /// Writes the signed gas values and `paymasterAndData` into `op`.
    pub fn apply_to(&self, op: &mut UserOperation) {
        op.paymaster_and_data = self.paymaster_and_data.clone();
        op.pre_verification_gas = self.pre_verification_gas;
        op.verification_gas_limit = self.verification_gas_limit;
        op.call_gas_limit = self.call_gas_limit;
        op.max_fee_per_gas = self.max_fee_per_gas;
        op.max_priority_fee_per_gas = self.max_priority_fee_per_gas;
    }
}

impl PaymasterService {
    /// Validates the configuration; does not touch the network (see
    /// [`PaymasterService::check_chain`]).
    pub fn new(config: PaymasterConfig) -> Result<Self> {
        if config.api_keys.is_empty() {
            return Err(Error::NoApiKeys);
        }
        if config.api_keys.iter().any(String::is_empty) {
            return Err(Error::EmptyApiKey);
        }
        if config.policy.validity_seconds == 0 {
            return Err(Error::InvalidPolicy("validity_seconds must be positive"));
        }
        if config.policy.limits.period_seconds == 0 {
            return Err(Error::InvalidPolicy("limits.period_seconds must be positive"));
        }
        if config.policy.min_verification_gas_limit > config.policy.max_gas_per_op {
            return Err(Error::InvalidPolicy(
                "min_verification_gas_limit exceeds max_gas_per_op, so no op could pass",
            ));
        }
        let url = config.rpc_url.parse().map_err(Error::InvalidRpcUrl)?;
        // Concurrent sponsorships' reads (and each one's hash, simulation and settled check) go to
        // the node as batches.
        let provider = x402_aa_rpc::coalescing_provider(url, x402_aa_rpc::DEFAULT_TIMEOUT);
        let limiter = RateLimiter::per_minute(config.policy.rate_limit_per_sender_per_minute);
        let budgets = Budgets::new(config.policy.limits.clone());
        let placeholder = placeholder_signature()?;
        Ok(Self {
            inner: Arc::new(Inner {
                chain_id: config.chain_id,
                entry_point: config.entry_point,
                paymaster: config.paymaster,
                api_key_hashes: config.api_keys.iter().map(keccak256).collect(),
                signer: config.signer,
                policy: config.policy,
                limiter,
                budgets,
                placeholder,
                metrics: Metrics::new(),
                provider,
                chain_time_seen: AtomicU64::new(0),
                clock: ChainClock::default(),
            }),
        })
    }

    /// Confirms the node is the configured chain and the paymaster contract will accept this
    /// service's signatures for this EntryPoint; otherwise every sponsored op would fail only
    /// later, at bundling, as AA34 or AA33.
    pub async fn check_chain(&self) -> Result<()> {
        let inner = &self.inner;
        let actual = inner.provider.get_chain_id().await?;
        if actual != inner.chain_id {
            return Err(Error::ChainIdMismatch { configured: inner.chain_id, actual });
        }
        let contract = VerifyingPaymaster::new(inner.paymaster, &inner.provider);
        let on_chain = contract.verifyingSigner().call().await?;
        if on_chain != inner.signer.address() {
            return Err(Error::SignerMismatch {
                paymaster: inner.paymaster,
                configured: inner.signer.address(),
                on_chain,
            });
        }
        let on_chain = contract.entryPoint().call().await?;
        if on_chain != inner.entry_point {
            return Err(Error::EntryPointMismatch {
                paymaster: inner.paymaster,
                configured: inner.entry_point,
                on_chain,
            });
        }
        Ok(())
    }

    /// The chain the service signs for (checked against the node at start).
    pub fn chain_id(&self) -> u64 {
        self.inner.chain_id
    }

    /// The EntryPoint whose ops it sponsors; requests naming another are refused.
    pub fn entry_point(&self) -> Address {
        self.inner.entry_point
    }

    /// The VerifyingPaymaster its approvals are for.
    pub fn paymaster(&self) -> Address {
        self.inner.paymaster
    }

    /// The sponsorship policy in force.
    pub fn policy(&self) -> &SponsorPolicy {
        &self.inner.policy
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Accepts `key` if it is one of the configured API keys.
    pub fn authorize(&self, key: &str) -> Result<(), SponsorError> {
        if key.is_empty() {
            return Err(SponsorError::MissingApiKey);
        }
        let candidate = keccak256(key);
        // No early exit: the answer should not depend on which configured key matched.
        let known =
            self.inner.api_key_hashes.iter().fold(false, |found, h| found | (*h == candidate));
        if known { Ok(()) } else { Err(SponsorError::UnknownApiKey) }
    }

    /// Sponsors `op` (already authorised, for this service's EntryPoint): applies the gas
    /// floor, the policy and the rate limit, simulates the op, charges its budgets, then signs.
    ///
    /// The approval embeds the paymaster's current `senderNonce` for the sender, which the
    /// paymaster increments when an op of that sender validates. So sponsor a sender's ops one
    /// at a time, each after the previous one landed; a second approval taken before then is
    /// rejected on-chain (AA34).
    pub async fn sponsor(&self, op: &UserOperation) -> Result<Sponsorship, SponsorError> {
        let inner = &self.inner;
        let op = policy::apply_gas_floor(op, &inner.policy);
        policy::check(&op, &inner.policy)?;
        let granted_at = Instant::now();
        if let Err(wait) = inner.limiter.acquire(op.sender, granted_at) {
            let limit = inner.policy.rate_limit_per_sender_per_minute.map_or(0, |l| l.get());
            let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(SponsorError::Throttled {
                sender: op.sender,
                limit,
                retry_after_secs: retry_after_secs.max(1),
            });
        }
        match self.approve(&op).await {
            Ok(sponsorship) => {
                tracing::debug!(
                    target: "x402_aa_paymaster",
                    sender = %op.sender, nonce = %op.nonce,
                    valid_until = sponsorship.valid_until, "sponsored op"
                );
                inner.metrics.sponsored(policy::max_cost(&op));
                Ok(sponsorship)
            }
            Err(e) => {
                inner.limiter.release(op.sender, granted_at);
                Err(e)
            }
        }
    }

    /// Simulation, budget charge and signature, for an op the static policy accepted.
    ///
    /// The approval's window starts at the chain's time, which takes a read of the latest block.
    /// That read goes out beside the hash and the simulation, taken at the time last seen (one
    /// batch for the node instead of two round trips); only when the chain's clock turns out to
    /// have moved otherwise (a devnet's `increaseTime`, a chain ahead of this host's clock) are
    /// they taken again at the time read.
    async fn approve(&self, op: &UserOperation) -> Result<Sponsorship, SponsorError> {
        let inner = &self.inner;
        let session = SessionOpSignature::decode(op, inner.chain_id).ok().map(|s| s.session_id);
        let max_cost = policy::max_cost(op);
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let assumed = wall.max(inner.chain_time_seen.load(Ordering::Relaxed));
        let (chain_time, prepared) =
            tokio::join!(self.chain_time(), self.prepare(op, session, max_cost, assumed));
        let now = wall.max(chain_time?);
        let Prepared { mut pnd, hash, valid_until } = if now == assumed {
            prepared?
        } else {
            self.prepare(op, session, max_cost, now).await?
        };

        inner.budgets.charge(op.sender, session, max_cost, now)?;
        let signature = x402_aa_policy::ecdsa::sign_message(&inner.signer, hash.as_slice());
        pnd[SIGNATURE_OFFSET..].copy_from_slice(&signature);
        Ok(Sponsorship {
            paymaster_and_data: pnd.into(),
            pre_verification_gas: op.pre_verification_gas,
            verification_gas_limit: op.verification_gas_limit,
            call_gas_limit: op.call_gas_limit,
            max_fee_per_gas: op.max_fee_per_gas,
            max_priority_fee_per_gas: op.max_priority_fee_per_gas,
            valid_until,
        })
    }

    /// At time `now`: the budget check, then the approval's `paymasterAndData` (signature slot
    /// zeroed), its expiry and the hash to sign, once the simulation passed.
    async fn prepare(
        &self,
        op: &UserOperation,
        session: Option<B256>,
        max_cost: U256,
        now: u64,
    ) -> Result<Prepared, SponsorError> {
        let inner = &self.inner;
        // Over budget already: refuse before spending a simulation on it.
        inner.budgets.check(op.sender, session, max_cost, now)?;
        let valid_until = now.saturating_add(inner.policy.validity_seconds);
        let until = U48::try_from(valid_until)
            .map_err(|_| SponsorError::Internal("validUntil does not fit in uint48"))?;
        // validAfter 0: usable at once, whatever skew there is between this host and the chain.
        let after = U48::ZERO;
        let mut pnd = inner.paymaster.to_vec();
        pnd.extend((until, after).abi_encode());
        pnd.resize(SIGNATURE_OFFSET + SIGNATURE_LEN, 0);

        // The hash and the simulation are independent reads: one round trip for both.
        let hash = self.approval_hash(op, &pnd, until, after);
        let simulated = async {
            if !inner.policy.simulate {
                return Ok(());
            }
            let mut probe = op.clone();
            let mut placeholder_pnd = pnd.clone();
            placeholder_pnd[SIGNATURE_OFFSET..].copy_from_slice(&inner.placeholder);
            probe.paymaster_and_data = placeholder_pnd.into();
            let simulation = Simulation {
                provider: &inner.provider,
                entry_point: inner.entry_point,
                placeholder: &inner.placeholder,
            };
            simulation.run(&probe, policy::payment_of(&inner.policy.account_kinds, op)).await
        };
        let (hash, simulated) = tokio::join!(hash, simulated);
        simulated?;
        Ok(Prepared { pnd, hash: hash?, valid_until })
    }

    /// The VerifyingPaymaster's own `getHash`, so the hash cannot drift from what
    /// `validatePaymasterUserOp` recomputes (it hashes raw calldata, including `senderNonce`,
    /// read here at the latest block).
    ///
    /// `getHash` covers the signature's ABI offset, which depends on `paymasterAndData`'s
    /// length, so it is asked about the op with a zero signature of the final length in place
    /// (`pnd`).
    async fn approval_hash(
        &self,
        op: &UserOperation,
        pnd: &[u8],
        until: U48,
        after: U48,
    ) -> Result<B256, SponsorError> {
        let inner = &self.inner;
        let mut probe = op.clone();
        probe.paymaster_and_data = Bytes::copy_from_slice(pnd);
        VerifyingPaymaster::new(inner.paymaster, &inner.provider)
            .getHash(probe.into(), until, after)
            .call()
            .await
            .map_err(|e| {
                tracing::warn!(target: "x402_aa_paymaster", error = %e, "getHash failed");
                SponsorError::Internal("paymaster getHash call failed")
            })
    }

    /// The latest block's timestamp (remembered for the next approval's first guess).
    ///
    /// The EntryPoint judges `validUntil` against the including block's timestamp. An automining
    /// devnet's latest block can be far behind the wall clock (nothing mined for a while) and a
    /// test chain can be far ahead of it (`anvil_increaseTime`), so an approval's window starts
    /// at the later of the two: either clock alone would sometimes hand out approvals already
    /// expired when the next block is mined.
    async fn chain_time(&self) -> Result<u64, SponsorError> {
        let timestamp = self.inner.clock.now(&self.inner.provider).await.map_err(|e| {
            tracing::warn!(target: "x402_aa_paymaster", error = %e, "reading the chain's time failed");
            SponsorError::Internal("could not read the chain's time")
        })?;
        self.inner.chain_time_seen.store(timestamp, Ordering::Relaxed);
        Ok(timestamp)
    }
}

/// A well-formed signature that approves nothing: by the public key-1 account (never a signer of
/// ours or an account owner) over a fixed message, so it recovers without error to an address no
/// check accepts.
fn placeholder_signature() -> Result<Bytes> {
    let nobody = PrivateKeySigner::from_bytes(&B256::with_last_byte(1))
        .map_err(|_| Error::InvalidPolicy("placeholder key"))?;
    let signature = nobody
        .sign_message_sync(b"x402-aa-paymaster simulation placeholder")
        .map_err(|_| Error::InvalidPolicy("placeholder signature"))?;
    Ok(signature.as_bytes().into())
}

/// API key hashes and the node URL stay out of logs.
impl fmt::Debug for PaymasterService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("PaymasterService")
            .field("chain_id", &inner.chain_id)
            .field("entry_point", &inner.entry_point)
            .field("paymaster", &inner.paymaster)
            .field("signer", &inner.signer.address())
            .field("api_keys", &inner.api_key_hashes.len())
            .field("policy", &inner.policy)
            .finish_non_exhaustive()
    }
}
