//! A deployed stack with one session-key account, and helpers to sign and submit its ops.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address, b256, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolValue},
};
use x402_aa_policy_evm::{
    Chain, Outcome,
    abi::{IEntryPoint, IEntryPoint::UserOperation},
    artifacts::Artifacts,
    chain::{ADMIN, CREATE2_DEPLOYER, GENESIS_TIME},
    ops::{self, Format, GasFields, Grant, SessionSig},
};

pub(crate) const USD: u128 = 1_000_000;
pub(crate) const ETH: u128 = 1_000_000_000_000_000_000;
pub(crate) const MERCHANT: Address = address!("00000000000000000000000000000000000b0001");
pub(crate) const BUNDLER: Address = address!("00000000000000000000000000000000000c0001");
pub(crate) const DAY: u64 = 86_400;

pub(crate) fn key(n: u64) -> PrivateKeySigner {
    let mut b = [0u8; 32];
    b[24..].copy_from_slice(&n.to_be_bytes());
    b[0] = 0x11;
    PrivateKeySigner::from_bytes(&B256::from(b)).expect("valid test key")
}

pub(crate) struct Fx {
    pub(crate) chain: Chain,
    pub(crate) format: Format,
    pub(crate) owner: PrivateKeySigner,
    pub(crate) session_key: PrivateKeySigner,
    pub(crate) account: Address,
}

impl Fx {
    /// The stack from `contracts/artifacts` (or `$X402_POLICY_ARTIFACTS`), one session account funded
    /// with 1000 USDT and 10 ETH.
    pub(crate) fn new() -> anyhow::Result<Self> {
        let artifacts = Artifacts::project();
        let format = if artifacts.is_v1()? { Format::V1 } else { Format::V2 };
        let mut chain = Chain::deploy(&artifacts)?;
        let owner = key(1);
        let session_key = key(2);
        let account = chain.create_session_account(owner.address(), U256::ZERO)?;
        chain.mint(account, U256::from(1_000 * USD))?;
        chain.set_balance(account, U256::from(10 * ETH));
        Ok(Self { chain, format, owner, session_key, account })
    }

    /// 5 USDT per payment, 20 per day, 100 in life, any merchant, paymaster required, for 30 days.
    pub(crate) fn grant(&self) -> Grant {
        Grant {
            session_key: self.session_key.address(),
            valid_after: GENESIS_TIME - 100,
            valid_until: GENESIS_TIME + 30 * DAY,
            token: self.chain.addrs.token,
            settlement: self.chain.addrs.settlement,
            per_payment_max: 5 * USD,
            period_cap: 20 * USD,
            period: DAY as u32,
            lifetime_cap: 100 * USD,
            salt: b256!("00000000000000000000000000000000000000000000000000000000000000aa"),
            ..Default::default()
        }
    }

    pub(crate) fn nonce(&mut self, sender: Address) -> anyhow::Result<U256> {
        Ok(self.chain.view(
            self.chain.addrs.entry_point,
            IEntryPoint::getNonceCall { sender, key: alloy::primitives::Uint::ZERO },
        )?)
    }

    pub(crate) fn period_index(&self, grant: &Grant) -> u32 {
        period_index(&self.chain, grant)
    }

    pub(crate) fn payment(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let a = self.chain.addrs;
        ops::batch_payment(
            a.token,
            a.settlement,
            merchant,
            U256::from(amount),
            request_hash(request),
        )
    }

    /// A session op paying `amount` to MERCHANT, nonce `nonce`.
    pub(crate) fn session_op(
        &mut self,
        grant: &Grant,
        enable: bool,
        call_data: Bytes,
        gas: GasFields,
        nonce: U256,
    ) -> anyhow::Result<UserOperation> {
        let mut op = ops::unsigned_op(self.account, nonce, call_data, gas);
        let sig = SessionSig {
            format: self.format,
            grant,
            enable_with: enable.then_some(&self.owner),
            session_key: &self.session_key,
            period_index: self.period_index(grant),
            merchant_proof: vec![],
            id_override: None,
        };
        ops::sign_session(&mut op, &sig)?;
        Ok(op)
    }

    pub(crate) fn owner_op(
        &mut self,
        call_data: Bytes,
        gas: GasFields,
        nonce: U256,
    ) -> anyhow::Result<UserOperation> {
        let mut op = ops::unsigned_op(self.account, nonce, call_data, gas);
        ops::sign_owner(&mut op, &self.owner)?;
        Ok(op)
    }

    pub(crate) fn submit(&mut self, ops: Vec<UserOperation>) -> anyhow::Result<Outcome> {
        Ok(self.chain.handle_ops(ops, BUNDLER, BUNDLER)?)
    }

    /// Balance plus EntryPoint deposit: everything native the account owns.
    pub(crate) fn native(&mut self) -> anyhow::Result<U256> {
        let a = self.account;
        Ok(self.chain.balance(a) + self.chain.deposit(a)?)
    }

    pub(crate) fn tokens_of(&mut self, who: Address) -> anyhow::Result<U256> {
        Ok(self.chain.token_balance(who)?)
    }

    pub(crate) fn id(&self, grant: &Grant) -> B256 {
        grant.id(self.format, self.account)
    }
}

pub(crate) fn request_hash(n: u64) -> B256 {
    alloy::primitives::keccak256(n.to_be_bytes())
}

/// `executeBatch` ops from the owner are SimpleAccount-style; a direct call of the account's own
/// function (e.g. `revokeAllSessions()`) as callData is also an owner op.
pub(crate) fn call<C: SolCall>(c: C) -> Bytes {
    c.abi_encode().into()
}

/// Whether a failed `handleOps` names the session refusal `reason` (`FailedOp(i, "AA23 reverted: …")`).
pub(crate) fn refused_with(out: &Outcome, reason: &str) -> bool {
    !out.success && out.revert_reason().is_some_and(|r| r == format!("AA23 reverted: {reason}"))
}

/// The period a grant is in at the chain's current time (0 for a grant without periods), as the
/// contract computes it.
pub(crate) fn period_index(chain: &Chain, grant: &Grant) -> u32 {
    if grant.period == 0 {
        return 0;
    }
    ((chain.time() - grant.valid_after) / grant.period as u64) as u32
}

/// An enable-mode session signature whose owner signature covers `owner_signs` instead of the real
/// session id (`None`: a use-mode signature); the session key signs the real id (it is the attacker).
pub(crate) fn raw_session_sig(
    chain: &Chain,
    session_key: &PrivateKeySigner,
    owner: &PrivateKeySigner,
    op: &UserOperation,
    grant: &Grant,
    account: Address,
    owner_signs: Option<B256>,
) -> anyhow::Result<Vec<u8>> {
    let id = grant.id(Format::V2, account);
    let period = period_index(chain, grant);
    let digest = keccak256((ops::user_op_hash(op), id, U256::from(period)).abi_encode_params());
    let mut out = vec![if owner_signs.is_some() { 1u8 } else { 2 }];
    out.extend(grant.packed());
    out.extend(period.to_be_bytes());
    out.extend(ops::personal_sign(session_key, digest)?);
    if let Some(h) = owner_signs {
        out.extend(ops::sign_hash(owner, h)?);
    }
    Ok(out)
}

/// CREATE2 (salt 0) of `init` (creation code and constructor arguments) through the deterministic
/// deployer, as the devnet deploys third-party contracts at their canonical addresses.
pub(crate) fn create2(chain: &mut Chain, init: &[u8]) -> anyhow::Result<Address> {
    let mut data = B256::ZERO.to_vec();
    data.extend_from_slice(init);
    let out = chain.send(ADMIN, CREATE2_DEPLOYER, U256::ZERO, data, 30_000_000)?;
    anyhow::ensure!(
        out.success && out.output.len() == 20,
        "CREATE2 failed: {:?}",
        out.revert_reason()
    );
    Ok(Address::from_slice(&out.output))
}
