//! A deployed stack with one session-key account, the `SessionHost` trait every host's harness
//! implements (how its ops are built, signed and submitted), and helpers to sign and submit ops.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address, b256, keccak256},
    signers::local::PrivateKeySigner,
    sol,
    sol_types::{SolCall, SolError, SolEvent, SolValue},
};
use x402_aa_policy_evm::{
    Chain, Outcome,
    abi::{
        IAccount, IEntryPoint, IEntryPoint::UserOperation, ISessionAccount, RevokeSession,
        SetSessionPaused,
    },
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

    /// 5 USDT per payment, 20 per day, 100 in life, any merchant, paymaster required, for 30 days
    /// (`SessionHost::grant` is the self-paid one).
    pub(crate) fn sponsored_grant(&self) -> Grant {
        Grant {
            max_gas_cost_per_op: 0,
            gas_period_budget: 0,
            gas_lifetime_budget: 0,
            ..self.grant()
        }
    }
}

impl SessionHost for Fx {
    const NAME: &'static str = "SessionKeyAccount";

    harness_fields!();

    fn owner(&self) -> &PrivateKeySigner {
        &self.owner
    }
    fn format(&self) -> Format {
        self.format
    }
    fn store(&self) -> SessionStore {
        SessionStore::Account
    }

    /// `executeBatch([approve, settle])`: the session payment and the owner payment are one shape.
    fn pay(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let a = self.chain.addrs;
        ops::batch_payment(
            a.token,
            a.settlement,
            merchant,
            U256::from(amount),
            request_hash(request),
        )
    }
    fn owner_payment(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        self.pay(merchant, amount, request)
    }
    fn seal(&self, session_signature: &[u8]) -> Bytes {
        Bytes::copy_from_slice(session_signature)
    }
    fn sign_owner(&self, op: &mut UserOperation) -> anyhow::Result<()> {
        Ok(ops::sign_owner(op, &self.owner)?)
    }

    /// The account's own control functions, called by itself.
    fn control_op(&mut self, control: Control) -> anyhow::Result<UserOperation> {
        let data = match control {
            Control::Revoke(id) => call(ISessionAccount::revokeSession_olCall { id }),
            Control::RevokeAll => call(ISessionAccount::revokeAllSessionsCall {}),
            Control::SetPaused(id, true) => call(ISessionAccount::pauseSessionCall { id }),
            Control::SetPaused(id, false) => call(ISessionAccount::resumeSessionCall { id }),
        };
        let nonce = self.nonce(self.account)?;
        let account = self.account;
        self.owner_op_for(account, data, GasFields::default(), nonce)
    }
    fn another_account(&mut self) -> anyhow::Result<Address> {
        let other = self.chain.create_session_account(self.owner.address(), U256::from(1))?;
        self.chain.mint(other, U256::from(1_000 * USD))?;
        self.chain.set_balance(other, U256::from(10 * ETH));
        Ok(other)
    }
}

sol! {
    /// The owner controls and views of `SessionModule.sol`, which KernelSessionValidator,
    /// SafeSessionModule and BiconomySessionModule inherit: one ABI for the three modules.
    #[derive(Debug)]
    interface ISessionModule {
        function revoke(bytes32 id) external;
        function revokeAll() external;
        function setPaused(bytes32 id, bool paused) external;
        function revokeWithSignature(address account, bytes32 id, bytes ownerSignature) external;
        function setPausedWithSignature(address account, bytes32 id, bool paused, uint32 nonce,
            bytes ownerSignature) external;
        function ownerOf(address account) external view returns (address);
        function sessionEpoch(address account) external view returns (uint32);
        function sessionState(address account, bytes32 id) external view returns (uint8 status,
            bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent,
            uint24 paymentsInPeriod);
    }
}

/// An owner control of one account's sessions, sent as an owner op.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Control {
    Revoke(B256),
    RevokeAll,
    SetPaused(B256, bool),
}

/// A control the owner signs (EIP-712, the account's domain) and anyone relays.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Relayed {
    Revoke(B256),
    SetPaused { id: B256, paused: bool, nonce: u32 },
}

impl Relayed {
    /// What the owner signs, the same on every host.
    pub(crate) fn digest(self, account: Address) -> B256 {
        match self {
            Relayed::Revoke(id) => ops::control_digest(account, &RevokeSession { sessionId: id }),
            Relayed::SetPaused { id, paused, nonce } => {
                ops::control_digest(account, &SetSessionPaused { sessionId: id, paused, nonce })
            }
        }
    }
}

/// Where a host keeps session state and takes relayed controls: in the account itself
/// (SessionKeyAccount) or in one of our modules (`SessionModule.sol`), keyed by account.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SessionStore {
    Account,
    Module(Address),
}

impl SessionStore {
    fn address(self, account: Address) -> Address {
        match self {
            SessionStore::Account => account,
            SessionStore::Module(m) => m,
        }
    }
}

/// A session's counters as every host's `sessionState` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionState {
    pub(crate) status: u8,
    pub(crate) paused: bool,
    pub(crate) period_spent: u128,
    pub(crate) lifetime_spent: u128,
    pub(crate) payments_in_period: u32,
}

/// One account on one session host (SessionKeyAccount, or Kernel, Safe, Biconomy with our module):
/// what differs between hosts is how an op is built, signed and routed and how the owner sends a
/// control; the adversarial properties in `hosts.rs` are written once against this.
pub(crate) trait SessionHost {
    /// How failure messages name the account.
    const NAME: &'static str;
    /// What the owner payment of `gas_owner_vs_session_payment` is, for its report.
    const OWNER_PAYMENT: &'static str = "owner";
    /// The most a steady session payment may cost relative to the owner payment, where the host
    /// has such a goal.
    const GAS_RATIO_GOAL: Option<f64> = None;

    fn chain(&self) -> &Chain;
    fn chain_mut(&mut self) -> &mut Chain;
    fn account(&self) -> Address;
    /// The key whose signature enables a grant inside a session op.
    fn owner(&self) -> &PrivateKeySigner;
    fn session_key(&self) -> &PrivateKeySigner;
    /// The session id and signature format (V1 only for SessionKeyAccount from old artifacts).
    fn format(&self) -> Format {
        Format::V2
    }
    /// The session payment callData: the only shape a session op may carry on this host.
    fn pay(&self, merchant: Address, amount: u128, request: u64) -> Bytes;
    /// The same payment as the owner sends it.
    fn owner_payment(&self, merchant: Address, amount: u128, request: u64) -> Bytes;
    /// A packed session signature (`ops::sign_session`) in the envelope that routes it to the
    /// session validator on this host.
    fn seal(&self, session_signature: &[u8]) -> Bytes;
    /// Signs `op` as the owner, through the account's own owner validation.
    fn sign_owner(&self, op: &mut UserOperation) -> anyhow::Result<()>;
    /// An owner op of the account sending `control`.
    fn control_op(&mut self, control: Control) -> anyhow::Result<UserOperation>;
    /// Where the account's session state lives and relayed controls go.
    fn store(&self) -> SessionStore;
    /// Another account of the same owner with sessions installed, funded like the first.
    fn another_account(&mut self) -> anyhow::Result<Address>;
    /// The account whose owner payment a session payment's gas is measured against.
    fn baseline_account(&mut self) -> anyhow::Result<Address> {
        Ok(self.account())
    }

    /// Self-paid grant: 5 USDT per payment, 20 per day, 100 in life, 0.1 ETH per op, 1 ETH in gas,
    /// any merchant, for 30 days.
    fn grant(&self) -> Grant {
        Grant {
            session_key: self.session_key().address(),
            valid_after: GENESIS_TIME - 100,
            valid_until: GENESIS_TIME + 30 * DAY,
            token: self.chain().addrs.token,
            settlement: self.chain().addrs.settlement,
            per_payment_max: 5 * USD,
            period_cap: 20 * USD,
            period: DAY as u32,
            lifetime_cap: 100 * USD,
            max_gas_cost_per_op: ETH / 10,
            gas_period_budget: ETH,
            gas_lifetime_budget: ETH,
            salt: b256!("00000000000000000000000000000000000000000000000000000000000000aa"),
            ..Default::default()
        }
    }

    /// `(to, callData)` of the relayed `control` carrying the owner's `signature`.
    fn relayed(&self, control: Relayed, signature: Vec<u8>) -> (Address, Bytes) {
        let (account, sig) = (self.account(), Bytes::from(signature));
        let data = match (self.store(), control) {
            (SessionStore::Account, Relayed::Revoke(id)) => {
                call(ISessionAccount::revokeWithSignatureCall { id, ownerSignature: sig })
            }
            (SessionStore::Account, Relayed::SetPaused { id, paused, nonce }) => {
                call(ISessionAccount::setPausedWithSignatureCall {
                    id,
                    paused,
                    nonce,
                    ownerSignature: sig,
                })
            }
            (SessionStore::Module(_), Relayed::Revoke(id)) => {
                call(ISessionModule::revokeWithSignatureCall { account, id, ownerSignature: sig })
            }
            (SessionStore::Module(_), Relayed::SetPaused { id, paused, nonce }) => {
                call(ISessionModule::setPausedWithSignatureCall {
                    account,
                    id,
                    paused,
                    nonce,
                    ownerSignature: sig,
                })
            }
        };
        (self.store().address(account), data)
    }

    fn state(&mut self, grant: &Grant) -> anyhow::Result<SessionState> {
        let (account, id) = (self.account(), self.id(grant));
        let s = match self.store() {
            SessionStore::Account => {
                self.chain_mut().view(account, ISessionAccount::sessionStateCall { id })?
            }
            SessionStore::Module(m) => {
                let s =
                    self.chain_mut().view(m, ISessionModule::sessionStateCall { account, id })?;
                ISessionAccount::sessionStateReturn {
                    status: s.status,
                    paused: s.paused,
                    periodIndex: s.periodIndex,
                    periodSpent: s.periodSpent,
                    lifetimeSpent: s.lifetimeSpent,
                    paymentsInPeriod: s.paymentsInPeriod,
                }
            }
        };
        Ok(SessionState {
            status: s.status,
            paused: s.paused,
            period_spent: s.periodSpent.to(),
            lifetime_spent: s.lifetimeSpent.to(),
            payments_in_period: s.paymentsInPeriod.to(),
        })
    }

    fn epoch(&mut self) -> anyhow::Result<u32> {
        let account = self.account();
        Ok(match self.store() {
            SessionStore::Account => {
                self.chain_mut().view(account, ISessionAccount::sessionEpochCall {})?
            }
            SessionStore::Module(m) => {
                self.chain_mut().view(m, ISessionModule::sessionEpochCall { account })?
            }
        })
    }

    /// The owner the host's session validator reads for the account.
    fn owner_of(&mut self) -> anyhow::Result<Address> {
        let account = self.account();
        Ok(match self.store() {
            SessionStore::Account => self.chain_mut().view(account, IAccount::ownerCall {})?,
            SessionStore::Module(m) => {
                self.chain_mut().view(m, ISessionModule::ownerOfCall { account })?
            }
        })
    }

    fn nonce(&mut self, sender: Address) -> anyhow::Result<U256> {
        let entry_point = self.chain().addrs.entry_point;
        let key = alloy::primitives::Uint::ZERO;
        Ok(self.chain_mut().view(entry_point, IEntryPoint::getNonceCall { sender, key })?)
    }

    fn period_index(&self, grant: &Grant) -> u32 {
        period_index(self.chain(), grant)
    }

    fn id(&self, grant: &Grant) -> B256 {
        grant.id(self.format(), self.account())
    }

    /// Signs `op` with the session key (and, with `enable`, the owner's grant signature).
    fn sign_session(
        &self,
        op: &mut UserOperation,
        grant: &Grant,
        enable: bool,
    ) -> anyhow::Result<()> {
        let sig = SessionSig {
            format: self.format(),
            grant,
            enable_with: enable.then_some(self.owner()),
            session_key: self.session_key(),
            period_index: self.period_index(grant),
            merchant_proof: vec![],
            id_override: None,
        };
        ops::sign_session(op, &sig)?;
        op.signature = self.seal(&op.signature);
        Ok(())
    }

    fn session_op_for(
        &mut self,
        account: Address,
        grant: &Grant,
        enable: bool,
        call_data: Bytes,
        gas: GasFields,
        nonce: U256,
    ) -> anyhow::Result<UserOperation> {
        let mut op = ops::unsigned_op(account, nonce, call_data, gas);
        self.sign_session(&mut op, grant, enable)?;
        Ok(op)
    }

    fn session_op(
        &mut self,
        grant: &Grant,
        enable: bool,
        call_data: Bytes,
        gas: GasFields,
        nonce: U256,
    ) -> anyhow::Result<UserOperation> {
        let account = self.account();
        self.session_op_for(account, grant, enable, call_data, gas, nonce)
    }

    /// An owner op of `account` (of this owner) through the host's owner validation.
    fn owner_op_for(
        &mut self,
        account: Address,
        call_data: Bytes,
        gas: GasFields,
        nonce: U256,
    ) -> anyhow::Result<UserOperation> {
        let mut op = ops::unsigned_op(account, nonce, call_data, gas);
        self.sign_owner(&mut op)?;
        Ok(op)
    }

    fn submit(&mut self, ops: Vec<UserOperation>) -> anyhow::Result<Outcome> {
        Ok(self.chain_mut().handle_ops(ops, BUNDLER, BUNDLER)?)
    }

    fn tokens_of(&mut self, who: Address) -> anyhow::Result<U256> {
        Ok(self.chain_mut().token_balance(who)?)
    }

    /// Balance plus EntryPoint deposit: everything native the account owns.
    fn native(&mut self) -> anyhow::Result<U256> {
        let a = self.account();
        Ok(self.chain_mut().balance(a) + self.chain_mut().deposit(a)?)
    }

    /// Pays 1 USDT (request `request`) with the grant enabled by this op, asserting it lands.
    fn enable(&mut self, grant: &Grant, request: u64) -> anyhow::Result<()> {
        let nonce = self.nonce(self.account())?;
        let data = self.pay(MERCHANT, USD, request);
        let op = self.session_op(grant, true, data, GasFields::default(), nonce)?;
        let out = self.submit(vec![op])?;
        anyhow::ensure!(out.success, "enable: {:?}", out.revert_reason());
        anyhow::ensure!(execution_reverts(&out).is_empty(), "{:?}", execution_reverts(&out));
        Ok(())
    }

    /// One session payment of `amount` in use mode, self-paid.
    fn pay_once(&mut self, grant: &Grant, amount: u128, request: u64) -> anyhow::Result<Outcome> {
        let nonce = self.nonce(self.account())?;
        let data = self.pay(MERCHANT, amount, request);
        let op = self.session_op(grant, false, data, GasFields::default(), nonce)?;
        self.submit(vec![op])
    }
}

/// The `SessionHost` accessors of a harness with `chain`, `account` and `session_key` fields.
macro_rules! harness_fields {
    () => {
        fn chain(&self) -> &Chain {
            &self.chain
        }
        fn chain_mut(&mut self) -> &mut Chain {
            &mut self.chain
        }
        fn account(&self) -> Address {
            self.account
        }
        fn session_key(&self) -> &PrivateKeySigner {
            &self.session_key
        }
    };
}
pub(crate) use harness_fields;

/// `control` on one of our modules (`SessionModule.sol`), as the account calls it.
pub(crate) fn module_control(control: Control) -> Bytes {
    match control {
        Control::Revoke(id) => call(ISessionModule::revokeCall { id }),
        Control::RevokeAll => call(ISessionModule::revokeAllCall {}),
        Control::SetPaused(id, paused) => call(ISessionModule::setPausedCall { id, paused }),
    }
}

/// The execution-phase revert reasons of a bundle (`UserOperationRevertReason`, decoded `Error(string)`).
pub(crate) fn execution_reverts(out: &Outcome) -> Vec<String> {
    out.logs
        .iter()
        .filter_map(|log| IEntryPoint::UserOperationRevertReason::decode_log(log).ok())
        .map(|e| {
            alloy::sol_types::Revert::abi_decode(&e.revertReason)
                .map(|r| r.reason)
                .unwrap_or_else(|_| format!("0x{}", alloy::hex::encode(&e.revertReason)))
        })
        .collect()
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
