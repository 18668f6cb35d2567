//! Invariant fuzzing of the session policy on the real EntryPoint v0.6 (revm).
//!
//! Each case signs two random grants for one account and runs a random sequence of steps: bundles of
//! owner ops (payments, revocations, pauses) and session ops (valid, over a cap, zero, malformed, to a
//! merchant outside the allowlist, for the wrong period, with the wrong key, reusing a request hash so
//! settle is certain to revert), relayed owner signatures, time jumps and settlement pauses. The bundler
//! is an adversary: it picks preVerificationGas, fees (priority = max) and the beneficiary, and drops a
//! refused op and resubmits the rest. After every step the chain is held against a model built from
//! the bundle's own events:
//!
//! * tokens out of the account = session payments + owner payments, nothing else;
//! * every session payment: amount in (0, perPaymentMax], merchant allowed, session enabled and neither
//!   revoked nor paused nor of another epoch at that moment, time inside the grant window;
//! * per period: sum ≤ periodCap, count ≤ maxPaymentsPerPeriod, per merchant ≤ merchantPeriodCap;
//!   lifetime sum ≤ lifetimeCap;
//! * native value out of the account (balance + deposit) = the self-paid ops' gas, per grant within its
//!   per-op ceiling, period and lifetime gas budgets (zero budget: nothing at all);
//! * the account's counters equal the model: lifetime and period spent, payment count, per-merchant
//!   spent (budget charged = tokens paid); gas charged ≥ gas paid and ≤ the budget.
//!
//! `POLICY_FUZZ_SEED` reproduces a run, `POLICY_FUZZ_CASES` sets the number of cases (default 10 000).
//! A failing case is shrunk (steps, then ops) and printed.

// The event dispatch reads better as one `if` per event kind than as collapsed let-chains.
#![allow(clippy::collapsible_if, clippy::while_let_loop)]

use std::{collections::HashMap, fmt::Write as _};

use alloy::{
    primitives::{Address, B256, Bytes, Log, U256, address, keccak256},
    signers::local::PrivateKeySigner,
    sol,
    sol_types::{SolCall, SolError, SolEvent},
};
use x402_aa_policy_evm::{
    Chain,
    abi::{
        IEntryPoint, IEntryPoint::UserOperation, ISessionAccount, ISettlement, RevokeSession,
        SetSessionPaused,
    },
    artifacts::Artifacts,
    chain::{ADMIN, GENESIS_TIME},
    ops::{self, Format, GasFields, Grant, SessionSig},
};

use crate::support::{DAY, ETH, USD, key};

sol! {
    event ReceiptLog(address indexed merchant, address indexed payer, address token, uint256 amount, bytes32 indexed requestHash);
    event SessionRevoked(bytes32 indexed sessionId);
    event AllSessionsRevoked(uint32 newEpoch);
    event SessionPaused(bytes32 indexed sessionId, bool paused);
}

const MERCHANTS: [Address; 3] = [
    address!("00000000000000000000000000000000000d0001"),
    address!("00000000000000000000000000000000000d0002"),
    address!("00000000000000000000000000000000000d0003"),
];
const OWNER_MERCHANT: Address = address!("00000000000000000000000000000000000d00ff");
const RELAYER: Address = address!("00000000000000000000000000000000000e0001");
const BENEFICIARIES: [Address; 2] = [
    address!("00000000000000000000000000000000000c0001"),
    address!("00000000000000000000000000000000000c0002"),
];
const BUNDLER: Address = address!("00000000000000000000000000000000000c0009");

// ---------------------------------------------------------------- randomness

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pct(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

// ---------------------------------------------------------------- cases

#[derive(Debug, Clone)]
struct GrantSpec {
    per_payment: u128,
    period_cap: u128,
    period: u32,
    lifetime_cap: u128,
    max_payments: u32,
    merchant_cap: u128,
    allowlist: bool,
    pin_paymaster: bool,
    /// (per-op ceiling, period budget, lifetime budget); None = paymaster required.
    gas: Option<(u128, u128, u128)>,
    epoch: u32,
    valid_for: u64,
}

#[derive(Debug, Clone)]
enum Control {
    RevokeAll,
    Revoke(usize),
    Pause(usize),
    Resume(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Session {
        grant: usize,
        merchant: usize,
        amount: u128,
        request: u64,
        enable: bool,
        period_delta: i8,
        wrong_key: bool,
        corrupt_byte: Option<usize>,
        sponsor: bool,
        gas: GasFields,
    },
    OwnerPay {
        amount: u128,
        request: u64,
    },
    OwnerControl(Control),
}

#[derive(Debug, Clone)]
enum Step {
    Bundle { ops: Vec<Op>, beneficiary: usize },
    Relayed(Control),
    Warp(u64),
    SettlementPaused(bool),
}

#[derive(Debug, Clone)]
struct Case {
    grants: Vec<GrantSpec>,
    steps: Vec<Step>,
}

fn gen_grant(r: &mut Rng) -> GrantSpec {
    let per_payment = (1 + r.below(5) as u128) * USD;
    let period_cap = per_payment * (1 + r.below(4) as u128);
    let period = [0u32, 3_600, DAY as u32][r.below(3) as usize];
    let gas = if r.pct(60) {
        let per_op = (1 + r.below(20) as u128) * ETH / 200;
        Some((per_op, per_op * (1 + r.below(3) as u128), per_op * (1 + r.below(6) as u128)))
    } else {
        None
    };
    GrantSpec {
        per_payment,
        period_cap,
        period,
        lifetime_cap: period_cap * (1 + r.below(4) as u128),
        max_payments: if r.pct(40) { 1 + r.below(3) as u32 } else { 0 },
        merchant_cap: if r.pct(40) { per_payment * (1 + r.below(2) as u128) } else { 0 },
        allowlist: r.pct(30),
        pin_paymaster: r.pct(30),
        gas,
        epoch: if r.pct(15) { 1 } else { 0 },
        valid_for: [2 * 3_600, 3 * DAY, 30 * DAY][r.below(3) as usize],
    }
}

fn gen_gas(r: &mut Rng) -> GasFields {
    let max_fee = [1u128, 1, 5, 20, 100][r.below(5) as usize] * 1_000_000_000;
    GasFields {
        call_gas: [60_000, 200_000, 1_000_000][r.below(3) as usize],
        verification_gas: [150_000, 300_000, 1_000_000][r.below(3) as usize],
        pre_verification_gas: [21_000, 50_000, 50_000, 500_000, 3_000_000][r.below(5) as usize],
        max_fee,
        max_priority_fee: if r.pct(70) { max_fee } else { max_fee / 2 },
    }
}

fn gen_control(r: &mut Rng, grants: usize) -> Control {
    let g = r.below(grants as u64) as usize;
    match r.below(20) {
        0 => Control::RevokeAll,
        1..=3 => Control::Revoke(g),
        4..=10 => Control::Pause(g),
        _ => Control::Resume(g),
    }
}

fn gen_op(r: &mut Rng, grants: &[GrantSpec]) -> Op {
    match r.below(14) {
        0 => Op::OwnerPay { amount: (1 + r.below(3) as u128) * USD, request: r.below(1 << 40) },
        1 => Op::OwnerControl(gen_control(r, grants.len())),
        _ => {
            let grant = r.below(grants.len() as u64) as usize;
            let g = &grants[grant];
            let amount = match r.below(10) {
                0 => 0,
                1 => g.per_payment + 1,
                _ => 1 + r.below(g.per_payment as u64) as u128,
            };
            Op::Session {
                grant,
                merchant: r.below(3) as usize,
                amount,
                request: if r.pct(10) {
                    0
                } else if r.pct(15) {
                    1 + r.below(3)
                } else {
                    10 + r.below(1 << 40)
                },
                enable: r.pct(55),
                period_delta: if r.pct(8) { [-1, 1][r.below(2) as usize] } else { 0 },
                wrong_key: r.pct(4),
                corrupt_byte: r.pct(6).then(|| r.below(580) as usize),
                sponsor: if g.gas.is_some() { r.pct(30) } else { r.pct(92) },
                gas: gen_gas(r),
            }
        }
    }
}

fn gen_case(r: &mut Rng) -> Case {
    let grants = vec![gen_grant(r), gen_grant(r)];
    let n = 1 + r.below(8) as usize;
    let mut steps = Vec::with_capacity(n);
    for _ in 0..n {
        let step = match r.below(20) {
            0..=12 => {
                let k = 1 + r.below(3) as usize;
                Step::Bundle {
                    ops: (0..k).map(|_| gen_op(r, &grants)).collect(),
                    beneficiary: r.below(2) as usize,
                }
            }
            13 | 14 => Step::Relayed(gen_control(r, grants.len())),
            15..=18 => Step::Warp([60, 1_800, 3_600, DAY / 2, DAY, 3 * DAY][r.below(6) as usize]),
            _ => Step::SettlementPaused(r.pct(50)),
        };
        steps.push(step);
    }
    Case { grants, steps }
}

// ---------------------------------------------------------------- running a case

struct World {
    chain: Chain,
    base: x402_aa_policy_evm::chain::Db,
    owner: PrivateKeySigner,
    session_key: PrivateKeySigner,
    account: Address,
    checks: u64,
    payments: u64,
    self_paid: u64,
    refusals: HashMap<String, u64>,
}

#[derive(Default, Clone)]
struct SessionModel {
    revoked: bool,
    paused: bool,
    /// (time, merchant, amount) of every payment.
    payments: Vec<(u64, Address, u128)>,
    /// (time, actual gas cost) of every self-paid op.
    gas: Vec<(u64, u128)>,
}

struct Run<'a> {
    w: &'a mut World,
    grants: Vec<Grant>,
    specs: Vec<GrantSpec>,
    ids: Vec<B256>,
    model: Vec<SessionModel>,
    epoch: u32,
    tokens_start: U256,
    native_start: U256,
    owner_paid: u128,
}

macro_rules! check {
    ($run:expr, $cond:expr, $($msg:tt)*) => {{
        $run.w.checks += 1;
        if !$cond {
            return Err(format!($($msg)*));
        }
    }};
}

fn merkle(merchants: &[Address]) -> (B256, Vec<Vec<B256>>) {
    // two leaves: root = hash(sorted pair); proof of each = the other leaf
    let l0 = keccak256(merchants[0].as_slice());
    let l1 = keccak256(merchants[1].as_slice());
    let (a, b) = if l0 < l1 { (l0, l1) } else { (l1, l0) };
    let mut cat = a.to_vec();
    cat.extend_from_slice(b.as_slice());
    (keccak256(cat), vec![vec![l1], vec![l0]])
}

impl World {
    fn new() -> anyhow::Result<Self> {
        let artifacts = Artifacts::project();
        anyhow::ensure!(
            !artifacts.is_v1()?,
            "the fuzzer speaks the current (packed) session signature only"
        );
        let mut chain = Chain::deploy(&artifacts)?;
        let owner = key(1);
        let session_key = key(2);
        let account = chain.create_session_account(owner.address(), U256::ZERO)?;
        chain.mint(account, U256::from(1_000_000 * USD))?;
        chain.set_balance(account, U256::from(5 * ETH));
        chain.set_balance(RELAYER, U256::from(ETH));
        let base = chain.snapshot();
        Ok(Self {
            chain,
            base,
            owner,
            session_key,
            account,
            checks: 0,
            payments: 0,
            self_paid: 0,
            refusals: HashMap::new(),
        })
    }

    fn run(&mut self, case: &Case) -> Result<(), String> {
        self.chain.restore(self.base.clone(), GENESIS_TIME);
        let a = self.chain.addrs;
        let (root, _) = merkle(&MERCHANTS);
        let grants: Vec<Grant> = case
            .grants
            .iter()
            .enumerate()
            .map(|(i, s)| Grant {
                session_key: self.session_key.address(),
                valid_after: GENESIS_TIME - 10,
                valid_until: GENESIS_TIME + s.valid_for,
                token: a.token,
                settlement: a.settlement,
                per_payment_max: s.per_payment,
                period_cap: s.period_cap,
                period: s.period,
                lifetime_cap: s.lifetime_cap,
                max_payments_per_period: s.max_payments,
                merchant_period_cap: s.merchant_cap,
                merchant_root: if s.allowlist { root } else { B256::ZERO },
                paymaster: if s.pin_paymaster { a.paymaster } else { Address::ZERO },
                max_gas_cost_per_op: s.gas.map_or(0, |g| g.0),
                gas_period_budget: s.gas.map_or(0, |g| g.1),
                gas_lifetime_budget: s.gas.map_or(0, |g| g.2),
                epoch: s.epoch,
                salt: B256::from(U256::from(i)),
            })
            .collect();
        let ids = grants.iter().map(|g| g.id(Format::V2, self.account)).collect();
        let tokens_start = self.chain.token_balance(self.account).map_err(|e| e.to_string())?;
        let native_start = self.native()?;
        let mut run = Run {
            w: self,
            model: vec![SessionModel::default(); grants.len()],
            grants,
            specs: case.grants.clone(),
            ids,
            epoch: 0,
            tokens_start,
            native_start,
            owner_paid: 0,
        };
        for (i, step) in case.steps.iter().enumerate() {
            run.step(step).map_err(|e| format!("step {i}: {e}"))?;
            run.check_all().map_err(|e| format!("after step {i}: {e}"))?;
        }
        Ok(())
    }

    fn native(&mut self) -> Result<U256, String> {
        let a = self.account;
        Ok(self.chain.balance(a) + self.chain.deposit(a).map_err(|e| e.to_string())?)
    }
}

impl Run<'_> {
    fn control_call(&self, c: &Control) -> Bytes {
        match c {
            Control::RevokeAll => ISessionAccount::revokeAllSessionsCall {}.abi_encode(),
            Control::Revoke(g) => {
                ISessionAccount::revokeSession_olCall { id: self.ids[*g] }.abi_encode()
            }
            Control::Pause(g) => {
                ISessionAccount::pauseSessionCall { id: self.ids[*g] }.abi_encode()
            }
            Control::Resume(g) => {
                ISessionAccount::resumeSessionCall { id: self.ids[*g] }.abi_encode()
            }
        }
        .into()
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Warp(secs) => {
                let t = self.w.chain.time() + secs;
                self.w.chain.set_time(t);
                Ok(())
            }
            Step::SettlementPaused(paused) => {
                let s = self.w.chain.addrs.settlement;
                let data = if *paused {
                    ISettlement::pauseCall {}.abi_encode()
                } else {
                    ISettlement::unpauseCall {}.abi_encode()
                };
                let out = self
                    .w
                    .chain
                    .send(ADMIN, s, U256::ZERO, data, 200_000)
                    .map_err(|e| e.to_string())?;
                let logs = out.logs.clone();
                self.apply_logs(&logs, &HashMap::new())
            }
            Step::Relayed(c) => {
                let acc = self.w.account;
                let sig = |w: &World, digest: B256| {
                    ops::sign_hash(&w.owner, digest).map_err(|e| e.to_string())
                };
                let data: Vec<u8> = match c {
                    Control::RevokeAll => {
                        let digest = ops::control_digest(
                            acc,
                            &x402_aa_policy_evm::abi::RevokeAllSessions { epoch: self.epoch },
                        );
                        ISessionAccount::revokeAllWithSignatureCall {
                            epoch: self.epoch,
                            ownerSignature: sig(self.w, digest)?.into(),
                        }
                        .abi_encode()
                    }
                    Control::Revoke(g) => {
                        let digest =
                            ops::control_digest(acc, &RevokeSession { sessionId: self.ids[*g] });
                        ISessionAccount::revokeWithSignatureCall {
                            id: self.ids[*g],
                            ownerSignature: sig(self.w, digest)?.into(),
                        }
                        .abi_encode()
                    }
                    Control::Pause(g) | Control::Resume(g) => {
                        let paused = matches!(c, Control::Pause(_));
                        let id = self.ids[*g];
                        let nonce = self
                            .w
                            .chain
                            .view(acc, ISessionAccount::sessionGasStateCall { id })
                            .map_err(|e| e.to_string())?
                            .pauseNonce;
                        let digest = ops::control_digest(
                            acc,
                            &SetSessionPaused { sessionId: id, paused, nonce },
                        );
                        ISessionAccount::setPausedWithSignatureCall {
                            id,
                            paused,
                            nonce,
                            ownerSignature: sig(self.w, digest)?.into(),
                        }
                        .abi_encode()
                    }
                };
                let out = self
                    .w
                    .chain
                    .send(RELAYER, acc, U256::ZERO, data.clone(), 300_000)
                    .map_err(|e| e.to_string())?;
                check!(
                    self,
                    out.success,
                    "relayed owner signature refused: {:?}",
                    out.revert_reason()
                );
                // a relayed signature works once: replaying it changes nothing
                let replay = self
                    .w
                    .chain
                    .send(RELAYER, acc, U256::ZERO, data, 300_000)
                    .map_err(|e| e.to_string())?;
                check!(
                    self,
                    !replay.success
                        || !matches!(
                            c,
                            Control::RevokeAll | Control::Pause(_) | Control::Resume(_)
                        ),
                    "a relayed signature replayed"
                );
                let logs = out.logs.clone();
                self.apply_logs(&logs, &HashMap::new())
            }
            Step::Bundle { ops, beneficiary } => self.bundle(ops, BENEFICIARIES[*beneficiary]),
        }
    }

    fn build(&mut self, op: &Op, nonce: U256) -> Result<UserOperation, String> {
        let e = |e: x402_aa_policy_evm::Error| e.to_string();
        let a = self.w.chain.addrs;
        match op {
            Op::OwnerPay { amount, request } => {
                let data = ops::batch_payment(
                    a.token,
                    a.settlement,
                    OWNER_MERCHANT,
                    U256::from(*amount),
                    keccak256(request.to_be_bytes()),
                );
                self.owner_op(data, nonce)
            }
            Op::OwnerControl(c) => {
                let data = self.control_call(c);
                self.owner_op(data, nonce)
            }
            Op::Session {
                grant,
                merchant,
                amount,
                request,
                enable,
                period_delta,
                wrong_key,
                corrupt_byte,
                sponsor,
                gas,
            } => {
                let g = self.grants[*grant].clone();
                let request_hash =
                    if *request == 0 { B256::ZERO } else { keccak256(request.to_be_bytes()) };
                let m = MERCHANTS[*merchant];
                let mut data =
                    ops::batch_payment(a.token, a.settlement, m, U256::from(*amount), request_hash)
                        .to_vec();
                if let Some(b) = corrupt_byte {
                    data[*b] ^= 0x5a;
                }
                let mut uop = ops::unsigned_op(self.w.account, nonce, data.into(), *gas);
                if *sponsor {
                    ops::sponsor(&mut self.w.chain, &mut uop).map_err(e)?;
                }
                let now = self.w.chain.time();
                let period = if g.period == 0 {
                    0
                } else {
                    ((now - g.valid_after) / g.period as u64) as i64
                };
                let period_index = (period + *period_delta as i64).max(0) as u32;
                let (_, proofs) = merkle(&MERCHANTS);
                let other = key(99);
                let sig = SessionSig {
                    format: Format::V2,
                    grant: &g,
                    enable_with: enable.then_some(&self.w.owner),
                    session_key: if *wrong_key { &other } else { &self.w.session_key },
                    period_index,
                    merchant_proof: if g.merchant_root != B256::ZERO && *merchant < 2 {
                        proofs[*merchant].clone()
                    } else {
                        vec![]
                    },
                    id_override: None,
                };
                ops::sign_session(&mut uop, &sig).map_err(e)?;
                Ok(uop)
            }
        }
    }

    fn owner_op(&mut self, data: Bytes, nonce: U256) -> Result<UserOperation, String> {
        let mut uop = ops::unsigned_op(self.w.account, nonce, data, GasFields::default());
        ops::sponsor(&mut self.w.chain, &mut uop).map_err(|e| e.to_string())?;
        ops::sign_owner(&mut uop, &self.w.owner).map_err(|e| e.to_string())?;
        Ok(uop)
    }

    fn bundle(&mut self, ops: &[Op], beneficiary: Address) -> Result<(), String> {
        let mut live: Vec<&Op> = ops.iter().collect();
        while !live.is_empty() {
            let nonce = self
                .w
                .chain
                .view(
                    self.w.chain.addrs.entry_point,
                    IEntryPoint::getNonceCall {
                        sender: self.w.account,
                        key: alloy::primitives::Uint::ZERO,
                    },
                )
                .map_err(|e| e.to_string())?;
            let mut built = Vec::new();
            let mut by_hash = HashMap::new();
            for (i, op) in live.iter().enumerate() {
                let uop = self.build(op, nonce + U256::from(i))?;
                by_hash.insert(ops::user_op_hash(&uop), (*op).clone());
                built.push(uop);
            }
            let out =
                self.w.chain.handle_ops(built, beneficiary, BUNDLER).map_err(|e| e.to_string())?;
            if out.success {
                let logs = out.logs.clone();
                return self.apply_logs(&logs, &by_hash);
            }
            // a refused op: the bundler drops it and tries the rest, as a real one would
            match IEntryPoint::FailedOp::abi_decode(&out.output) {
                Ok(f) => {
                    *self.w.refusals.entry(f.reason.clone()).or_default() += 1;
                    let i = f.opIndex.to::<usize>();
                    check!(self, i < live.len(), "FailedOp index {i} out of range");
                    live.remove(i);
                }
                Err(_) => {
                    return Err(format!(
                        "handleOps reverted without FailedOp: {:?}",
                        out.revert_reason()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Replays the bundle's events against the model, in order.
    fn apply_logs(&mut self, logs: &[Log], by_hash: &HashMap<B256, Op>) -> Result<(), String> {
        let acc = self.w.account;
        let now = self.w.chain.time();
        let mut pending: Vec<(Address, u128)> = Vec::new();
        for log in logs {
            if log.address == acc {
                if let Ok(ev) = SessionRevoked::decode_log_data(&log.data) {
                    if let Some(g) = self.ids.iter().position(|id| *id == ev.sessionId) {
                        self.model[g].revoked = true;
                    }
                } else if let Ok(ev) = AllSessionsRevoked::decode_log_data(&log.data) {
                    check!(self, ev.newEpoch == self.epoch + 1, "epoch jumped to {}", ev.newEpoch);
                    self.epoch = ev.newEpoch;
                } else if let Ok(ev) = SessionPaused::decode_log_data(&log.data) {
                    if let Some(g) = self.ids.iter().position(|id| *id == ev.sessionId) {
                        self.model[g].paused = ev.paused;
                    }
                }
            } else if log.address == self.w.chain.addrs.settlement {
                if let Ok(ev) = ReceiptLog::decode_log_data(&log.data) {
                    if ev.payer == acc {
                        pending.push((ev.merchant, ev.amount.to::<u128>()));
                    }
                }
            } else if log.address == self.w.chain.addrs.entry_point {
                if let Ok(ev) = IEntryPoint::UserOperationEvent::decode_log_data(&log.data) {
                    if ev.sender != acc {
                        continue;
                    }
                    let op = by_hash
                        .get(&ev.userOpHash)
                        .ok_or("UserOperationEvent for an op we did not send")?;
                    let paid = std::mem::take(&mut pending);
                    match op {
                        Op::Session { grant, .. } => {
                            let g = *grant;
                            if ev.paymaster == Address::ZERO {
                                self.w.self_paid += 1;
                                self.model[g].gas.push((now, ev.actualGasCost.to::<u128>()));
                            }
                            for (merchant, amount) in paid {
                                self.session_payment(g, now, merchant, amount)?;
                            }
                        }
                        Op::OwnerPay { .. } | Op::OwnerControl(_) => {
                            check!(
                                self,
                                ev.paymaster != Address::ZERO,
                                "owner ops are sponsored in this model"
                            );
                            for (merchant, amount) in paid {
                                check!(
                                    self,
                                    merchant == OWNER_MERCHANT,
                                    "owner op paid a session merchant"
                                );
                                self.owner_paid += amount;
                            }
                        }
                    }
                }
            }
        }
        check!(self, pending.is_empty(), "a payment outside any op: {pending:?}");
        Ok(())
    }

    fn period_of(&self, g: usize, t: u64) -> u64 {
        let grant = &self.grants[g];
        if grant.period == 0 { 0 } else { (t - grant.valid_after) / grant.period as u64 }
    }

    fn session_payment(
        &mut self,
        g: usize,
        t: u64,
        merchant: Address,
        amount: u128,
    ) -> Result<(), String> {
        let grant = self.grants[g].clone();
        let m = &self.model[g];
        check!(self, !m.revoked, "revoked session {g} paid {amount}");
        check!(self, !m.paused, "paused session {g} paid {amount}");
        check!(
            self,
            grant.epoch == self.epoch,
            "session {g} of epoch {} paid in epoch {}",
            grant.epoch,
            self.epoch
        );
        check!(
            self,
            t >= grant.valid_after && t <= grant.valid_until,
            "session {g} paid outside its window at {t}"
        );
        check!(
            self,
            amount > 0 && amount <= grant.per_payment_max,
            "session {g} paid {amount} > per-payment max"
        );
        check!(
            self,
            merchant != self.w.account && merchant != OWNER_MERCHANT && merchant != Address::ZERO,
            "session {g} paid {merchant}"
        );
        if grant.merchant_root != B256::ZERO {
            check!(
                self,
                merchant == MERCHANTS[0] || merchant == MERCHANTS[1],
                "session {g} paid {merchant}, outside its allowlist"
            );
        }
        self.w.payments += 1;
        self.model[g].payments.push((t, merchant, amount));
        Ok(())
    }

    fn check_all(&mut self) -> Result<(), String> {
        let acc = self.w.account;
        // tokens: nothing leaves but the payments we saw
        let tokens = self.w.chain.token_balance(acc).map_err(|e| e.to_string())?;
        let session_paid: u128 =
            self.model.iter().flat_map(|m| m.payments.iter().map(|p| p.2)).sum();
        check!(
            self,
            self.tokens_start - tokens == U256::from(session_paid + self.owner_paid),
            "tokens out {} != payments {}",
            self.tokens_start - tokens,
            session_paid + self.owner_paid
        );
        // native: nothing leaves but the self-paid session ops' gas
        let native = self.w.native()?;
        let gas_paid: u128 = self.model.iter().flat_map(|m| m.gas.iter().map(|p| p.1)).sum();
        check!(
            self,
            self.native_start - native == U256::from(gas_paid),
            "native out {} != self-paid gas {gas_paid}",
            self.native_start - native
        );

        for g in 0..self.grants.len() {
            let grant = self.grants[g].clone();
            let spec = self.specs[g].clone();
            let m = self.model[g].clone();
            // caps in every window
            let life: u128 = m.payments.iter().map(|p| p.2).sum();
            check!(self, life <= grant.lifetime_cap, "session {g} paid {life} > lifetime cap");
            let mut per_period: HashMap<u64, (u128, u32)> = HashMap::new();
            let mut per_merchant: HashMap<(u64, Address), u128> = HashMap::new();
            for (t, merchant, amount) in &m.payments {
                let p = self.period_of(g, *t);
                let e = per_period.entry(p).or_default();
                e.0 += amount;
                e.1 += 1;
                *per_merchant.entry((p, *merchant)).or_default() += amount;
            }
            for (p, (sum, count)) in &per_period {
                check!(
                    self,
                    *sum <= grant.period_cap,
                    "session {g} paid {sum} in period {p} > cap"
                );
                if spec.max_payments != 0 {
                    check!(
                        self,
                        *count <= spec.max_payments,
                        "session {g} made {count} payments in period {p}"
                    );
                }
            }
            if spec.merchant_cap != 0 {
                for ((p, merchant), sum) in &per_merchant {
                    check!(
                        self,
                        *sum <= spec.merchant_cap,
                        "session {g} paid {merchant} {sum} in period {p} > merchant cap"
                    );
                }
            }
            // gas: within the budget in every window
            let gas_life: u128 = m.gas.iter().map(|x| x.1).sum();
            match spec.gas {
                None => check!(
                    self,
                    gas_life == 0,
                    "session {g} cost {gas_life} wei with a paymaster required"
                ),
                Some((per_op, per_period_budget, life_budget)) => {
                    check!(
                        self,
                        gas_life <= life_budget,
                        "session {g} cost {gas_life} wei > lifetime gas budget"
                    );
                    let mut gp: HashMap<u64, u128> = HashMap::new();
                    for (t, cost) in &m.gas {
                        check!(
                            self,
                            *cost <= per_op,
                            "one op of session {g} cost {cost} > per-op ceiling"
                        );
                        *gp.entry(self.period_of(g, *t)).or_default() += cost;
                    }
                    for (p, sum) in gp {
                        check!(
                            self,
                            sum <= per_period_budget,
                            "session {g} cost {sum} wei in period {p} > gas period budget"
                        );
                    }
                }
            }
            // the account's counters = the model (budget charged = tokens paid)
            let id = self.ids[g];
            let s = self
                .w
                .chain
                .view(acc, ISessionAccount::sessionStateCall { id })
                .map_err(|e| e.to_string())?;
            check!(
                self,
                s.lifetimeSpent.to::<u128>() == life,
                "session {g}: lifetimeSpent {} != paid {life}",
                s.lifetimeSpent
            );
            check!(
                self,
                s.paused == m.paused,
                "session {g}: paused {} != model {}",
                s.paused,
                m.paused
            );
            check!(
                self,
                (s.status == 2) == m.revoked,
                "session {g}: status {} but revoked = {}",
                s.status,
                m.revoked
            );
            if !m.payments.is_empty() {
                let stored = u64::from(s.periodIndex);
                let (sum, count) = per_period.get(&stored).copied().unwrap_or_default();
                check!(
                    self,
                    s.periodSpent.to::<u128>() == sum,
                    "session {g}: periodSpent {} != paid {sum} in period {stored}",
                    s.periodSpent
                );
                check!(
                    self,
                    s.paymentsInPeriod.to::<u32>() == count,
                    "session {g}: paymentsInPeriod {} != {count}",
                    s.paymentsInPeriod
                );
            }
            let gs = self
                .w
                .chain
                .view(acc, ISessionAccount::sessionGasStateCall { id })
                .map_err(|e| e.to_string())?;
            let charged = gs.gasLifetimeSpent.to::<u128>();
            check!(
                self,
                charged >= gas_life,
                "session {g}: gas charged {charged} < gas paid {gas_life}"
            );
            check!(
                self,
                charged <= grant.gas_lifetime_budget,
                "session {g}: gas charged {charged} > budget"
            );
            if spec.merchant_cap != 0 {
                for merchant in MERCHANTS {
                    let ms = self
                        .w
                        .chain
                        .view(acc, ISessionAccount::sessionMerchantStateCall { id, merchant })
                        .map_err(|e| e.to_string())?;
                    let paid = per_merchant
                        .get(&(u64::from(ms.periodIndex), merchant))
                        .copied()
                        .unwrap_or_default();
                    check!(
                        self,
                        ms.spent.to::<u128>() == paid,
                        "session {g}: merchant {merchant} spent {} != paid {paid}",
                        ms.spent
                    );
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- shrinking

fn shrink(w: &mut World, mut case: Case) -> (Case, String) {
    let mut reason = w.run(&case).err().unwrap_or_default();
    loop {
        let mut smaller = false;
        let mut i = 0;
        while i < case.steps.len() {
            let mut c = case.clone();
            c.steps.remove(i);
            if let Err(r) = w.run(&c) {
                case = c;
                reason = r;
                smaller = true;
            } else {
                i += 1;
            }
        }
        for s in 0..case.steps.len() {
            let mut j = 0;
            loop {
                let Step::Bundle { ops, .. } = &case.steps[s] else { break };
                if j >= ops.len() || ops.len() == 1 {
                    break;
                }
                let mut c = case.clone();
                if let Step::Bundle { ops, .. } = &mut c.steps[s] {
                    ops.remove(j);
                }
                if let Err(r) = w.run(&c) {
                    case = c;
                    reason = r;
                    smaller = true;
                } else {
                    j += 1;
                }
            }
        }
        if !smaller {
            return (case, reason);
        }
    }
}

#[test]
fn session_policy_invariants_hold_under_random_op_sequences() -> anyhow::Result<()> {
    let seed =
        std::env::var("POLICY_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let cases: usize =
        std::env::var("POLICY_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut w = World::new()?;
    let mut rng = Rng(seed);
    let started = std::time::Instant::now();
    let (mut steps, mut ops) = (0usize, 0usize);
    for n in 0..cases {
        let case = gen_case(&mut rng);
        steps += case.steps.len();
        ops += case
            .steps
            .iter()
            .map(|s| if let Step::Bundle { ops, .. } = s { ops.len() } else { 0 })
            .sum::<usize>();
        if let Err(first) = w.run(&case) {
            let (min, reason) = shrink(&mut w, case);
            let mut msg = String::new();
            let _ = writeln!(msg, "invariant broken (POLICY_FUZZ_SEED={seed}, case {n}): {first}");
            let _ = writeln!(msg, "minimal sequence ({reason}):\n{min:#?}");
            anyhow::bail!(msg);
        }
    }
    #[allow(clippy::print_stdout)]
    {
        println!(
            "policy fuzz: seed {seed}, {cases} sequences, {steps} steps, {ops} ops, {} invariant checks in {:.1?}",
            w.checks,
            started.elapsed()
        );
        let mut refusals: Vec<_> = w.refusals.iter().collect();
        refusals.sort_by(|a, b| b.1.cmp(a.1));
        println!(
            "  {} session payments landed, {} self-paid session ops; refusals by reason:",
            w.payments, w.self_paid
        );
        for (reason, n) in refusals {
            println!("  {n:>7}  {reason}");
        }
    }
    Ok(())
}
