//! Session keys on Kernel v2.4 through `KernelSessionValidator`, on the real EntryPoint v0.6 with
//! ZeroDev's vendored Kernel, KernelFactory and ECDSAValidator bytecode at their canonical addresses.
//! The owner installs the validator with one owner op; then the adversarial cases of issue 12 item 4,
//! each refused by the EntryPoint with the reason a user would see.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address, b256, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolError, SolEvent, SolStruct, eip712_domain},
};
use x402_aa_policy_evm::{
    Chain, Outcome,
    abi::{
        IEntryPoint::{self, UserOperation},
        IToken, RevokeSession, SetSessionPaused,
        kernel::{IKernel, IKernelSessionValidator},
    },
    artifacts::Artifacts,
    chain::{ADMIN, CREATE2_DEPLOYER, GENESIS_TIME},
    kernel::{self as k, KernelStack, MODE_PLUGIN, MODE_SUDO},
    ops::{self, Format, GasFields, Grant, SessionSig},
};

use crate::support::*;

pub(crate) struct Kx {
    pub(crate) chain: Chain,
    pub(crate) kernel: KernelStack,
    pub(crate) owner: PrivateKeySigner,
    pub(crate) session_key: PrivateKeySigner,
    pub(crate) account: Address,
}

impl Kx {
    /// The stack plus a Kernel account (owner key 1) funded with 1000 USDT and 10 ETH, with the
    /// session validator installed by one owner op.
    pub(crate) fn new() -> anyhow::Result<Self> {
        let artifacts = Artifacts::project();
        let mut chain = Chain::deploy(&artifacts)?;
        let kernel = chain.deploy_kernel(&artifacts)?;
        let owner = key(1);
        let account = chain.create_kernel_account(owner.address(), U256::ZERO)?;
        let mut kx = Self { chain, kernel, owner, session_key: key(2), account };
        kx.fund(account)?;
        let out = kx.install(account)?;
        anyhow::ensure!(out.success, "install: {:?}", out.revert_reason());
        Ok(kx)
    }

    pub(crate) fn fund(&mut self, account: Address) -> anyhow::Result<()> {
        self.chain.mint(account, U256::from(1_000 * USD))?;
        self.chain.set_balance(account, U256::from(10 * ETH));
        Ok(())
    }

    /// `setExecution(executeSessionPayment, validator, validator, 0, 0, "")` as an owner op.
    pub(crate) fn install(&mut self, account: Address) -> anyhow::Result<Outcome> {
        let data = IKernel::setExecutionCall {
            _selector: k::SESSION_PAYMENT_SELECTOR.into(),
            _executor: self.kernel.session_validator,
            _validator: self.kernel.session_validator,
            _validUntil: Default::default(),
            _validAfter: Default::default(),
            _enableData: Bytes::new(),
        };
        let nonce = self.nonce(account)?;
        let op =
            self.owner_op_for(account, data.abi_encode().into(), GasFields::default(), nonce)?;
        self.submit(vec![op])
    }

    pub(crate) fn nonce(&mut self, sender: Address) -> anyhow::Result<U256> {
        Ok(self.chain.view(
            self.chain.addrs.entry_point,
            IEntryPoint::getNonceCall { sender, key: alloy::primitives::Uint::ZERO },
        )?)
    }

    /// Self-paid grant: 5 USDT per payment, 20 per day, 100 in life, 0.1 ETH per op, 1 ETH in gas.
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
            max_gas_cost_per_op: ETH / 10,
            gas_period_budget: ETH,
            gas_lifetime_budget: ETH,
            salt: b256!("00000000000000000000000000000000000000000000000000000000000000aa"),
            ..Default::default()
        }
    }

    pub(crate) fn period_index(&self, grant: &Grant) -> u32 {
        period_index(&self.chain, grant)
    }

    pub(crate) fn pay(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let a = self.chain.addrs;
        k::session_payment(
            a.token,
            a.settlement,
            merchant,
            U256::from(amount),
            request_hash(request),
        )
    }

    /// A session op of `self.account` in plugin mode.
    pub(crate) fn session_op(
        &mut self,
        grant: &Grant,
        enable: bool,
        call_data: Bytes,
        gas: GasFields,
        nonce: U256,
    ) -> anyhow::Result<UserOperation> {
        let account = self.account;
        self.session_op_for(account, grant, enable, call_data, gas, nonce)
    }

    pub(crate) fn session_op_for(
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

    pub(crate) fn sign_session(
        &self,
        op: &mut UserOperation,
        grant: &Grant,
        enable: bool,
    ) -> anyhow::Result<()> {
        let sig = SessionSig {
            format: Format::V2,
            grant,
            enable_with: enable.then_some(&self.owner),
            session_key: &self.session_key,
            period_index: self.period_index(grant),
            merchant_proof: vec![],
            id_override: None,
        };
        ops::sign_session(op, &sig)?;
        op.signature = k::with_mode(MODE_PLUGIN, &op.signature);
        Ok(())
    }

    /// An owner op (sudo mode: ECDSAValidator, EIP-191 over the userOpHash).
    pub(crate) fn owner_op_for(
        &mut self,
        account: Address,
        call_data: Bytes,
        gas: GasFields,
        nonce: U256,
    ) -> anyhow::Result<UserOperation> {
        let mut op = ops::unsigned_op(account, nonce, call_data, gas);
        sign_owner(&mut op, &self.owner)?;
        Ok(op)
    }

    /// An owner op calling the session validator through `execute`.
    pub(crate) fn control_op(&mut self, data: Vec<u8>) -> anyhow::Result<UserOperation> {
        let execute = IKernel::executeCall {
            to: self.kernel.session_validator,
            value: U256::ZERO,
            data: data.into(),
            operation: 0,
        };
        let (account, nonce) = (self.account, self.nonce(self.account)?);
        self.owner_op_for(account, execute.abi_encode().into(), GasFields::default(), nonce)
    }

    pub(crate) fn submit(&mut self, ops: Vec<UserOperation>) -> anyhow::Result<Outcome> {
        Ok(self.chain.handle_ops(ops, BUNDLER, BUNDLER)?)
    }

    pub(crate) fn id(&self, grant: &Grant) -> B256 {
        grant.id(Format::V2, self.account)
    }

    pub(crate) fn state(
        &mut self,
        grant: &Grant,
    ) -> anyhow::Result<IKernelSessionValidator::sessionStateReturn> {
        let (v, account, id) = (self.kernel.session_validator, self.account, self.id(grant));
        Ok(self.chain.view(v, IKernelSessionValidator::sessionStateCall { account, id })?)
    }

    pub(crate) fn tokens_of(&mut self, who: Address) -> anyhow::Result<U256> {
        Ok(self.chain.token_balance(who)?)
    }

    /// Pays 1 USDT (request `request`) with the grant enabled by this op, asserting it lands.
    pub(crate) fn enable(&mut self, grant: &Grant, request: u64) -> anyhow::Result<()> {
        let nonce = self.nonce(self.account)?;
        let op = self.session_op(
            grant,
            true,
            self.pay(MERCHANT, USD, request),
            GasFields::default(),
            nonce,
        )?;
        let out = self.submit(vec![op])?;
        anyhow::ensure!(out.success, "enable: {:?}", out.revert_reason());
        anyhow::ensure!(execution_reverts(&out).is_empty(), "{:?}", execution_reverts(&out));
        Ok(())
    }
}

pub(crate) fn sign_owner(op: &mut UserOperation, owner: &PrivateKeySigner) -> anyhow::Result<()> {
    let sig = ops::personal_sign(owner, ops::user_op_hash(op))?;
    op.signature = k::with_mode(MODE_SUDO, &sig);
    Ok(())
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

#[test]
fn a_session_pays_within_its_grant_on_kernel() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let (v, account) = (kx.kernel.session_validator, kx.account);
    let got = kx.chain.view(account, IKernel::getDefaultValidatorCall {})?;
    assert_eq!(got, k::ECDSA_VALIDATOR);
    assert_eq!(
        kx.chain.view(v, IKernelSessionValidator::ownerOfCall { account })?,
        kx.owner.address()
    );
    let grant = kx.grant();
    kx.enable(&grant, 1001)?;
    for n in 2..=4u64 {
        let nonce = kx.nonce(account)?;
        let op = kx.session_op(
            &grant,
            false,
            kx.pay(MERCHANT, 5 * USD, n),
            GasFields::default(),
            nonce,
        )?;
        let out = kx.submit(vec![op])?;
        assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    }
    assert_eq!(kx.tokens_of(MERCHANT)?, U256::from(16 * USD));
    let s = kx.state(&grant)?;
    assert_eq!(s.status, 1);
    assert_eq!(s.periodSpent.to::<u128>(), 16 * USD);
    assert_eq!(s.lifetimeSpent.to::<u128>(), 16 * USD);
    assert_eq!(s.paymentsInPeriod.to::<u32>(), 4);
    // 16 + 5 > 20: the period cap holds
    let nonce = kx.nonce(account)?;
    let op =
        kx.session_op(&grant, false, kx.pay(MERCHANT, 5 * USD, 5), GasFields::default(), nonce)?;
    let out = kx.submit(vec![op])?;
    assert!(refused_with(&out, "session: over period cap"), "{:?}", out.revert_reason());
    // ERC-1271 and direct calls are never authorised by this validator
    let h = B256::repeat_byte(7);
    let sig =
        IKernelSessionValidator::validateSignatureCall { hash: h, signature: vec![0u8; 65].into() };
    assert_eq!(kx.chain.view(v, sig)?, U256::from(1));
    let caller = IKernelSessionValidator::validCallerCall {
        caller: kx.session_key.address(),
        data: Bytes::new(),
    };
    assert!(!kx.chain.view(v, caller)?);
    Ok(())
}

/// Every way the session key could reach beyond the one payment in one op: the shape names no target,
/// value or calldata, so the attempts are other arguments, other encodings and other selectors.
#[test]
fn kernel_session_ops_outside_the_payment_shape_are_refused() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let grant = kx.grant();
    kx.enable(&grant, 1002)?;
    let a = kx.chain.addrs;
    let (v, account) = (kx.kernel.session_validator, kx.account);
    let attacker = address!("00000000000000000000000000000000000bad01");
    let usd = U256::from(USD);
    let pay = |token, settlement, merchant: Address, amount: u128| -> Bytes {
        k::session_payment(token, settlement, merchant, U256::from(amount), request_hash(77))
    };
    let canonical = pay(a.token, a.settlement, MERCHANT, USD).to_vec();
    let mut long = canonical.clone();
    long.push(0);
    let mut dirty_merchant = canonical.clone();
    dirty_merchant[68] = 1;
    let mut dirty_token = canonical.clone();
    dirty_token[4] = 1;
    let set_execution = IKernel::setExecutionCall {
        _selector: k::SESSION_PAYMENT_SELECTOR.into(),
        _executor: attacker,
        _validator: attacker,
        _validUntil: Default::default(),
        _validAfter: Default::default(),
        _enableData: Bytes::new(),
    };
    let set_default =
        IKernel::setDefaultValidatorCall { _defaultValidator: attacker, _data: Bytes::new() };
    // The shape this validator accepted before it became the executor: approve + settle + charge.
    let old_batch = k::execute_batch(vec![
        k::call(a.token, IToken::approveCall { spender: a.settlement, value: usd }.abi_encode()),
        k::call(
            v,
            IKernelSessionValidator::chargePaymentCall {
                token: a.token,
                settlement: a.settlement,
                merchant: MERCHANT,
                amount: usd,
                requestHash: request_hash(78),
            }
            .abi_encode(),
        ),
    ]);

    let cases: Vec<(&str, Bytes, &str)> = vec![
        (
            "another token",
            pay(attacker, a.settlement, MERCHANT, USD),
            "AA23 reverted: session: token not allowed",
        ),
        (
            "another settlement (spender)",
            pay(a.token, attacker, MERCHANT, USD),
            "AA23 reverted: session: target not allowed",
        ),
        (
            "the account as settlement",
            pay(a.token, account, MERCHANT, USD),
            "AA23 reverted: session: target not allowed",
        ),
        (
            "the validator as settlement",
            pay(a.token, v, MERCHANT, USD),
            "AA23 reverted: session: target not allowed",
        ),
        ("a trailing byte", long.into(), "AA23 reverted: session: malformed callData"),
        (
            "a truncated call",
            canonical[..100].to_vec().into(),
            "AA23 reverted: session: malformed callData",
        ),
        (
            "merchant word with high bits",
            dirty_merchant.into(),
            "AA23 reverted: session: malformed callData",
        ),
        (
            "token word with high bits",
            dirty_token.into(),
            "AA23 reverted: session: malformed callData",
        ),
        (
            "merchant is the account",
            pay(a.token, a.settlement, account, USD),
            "AA23 reverted: session: merchant is the account",
        ),
        (
            "zero amount",
            pay(a.token, a.settlement, MERCHANT, 0),
            "AA23 reverted: session: zero amount",
        ),
        (
            "over per-payment max",
            pay(a.token, a.settlement, MERCHANT, 6 * USD),
            "AA23 reverted: session: over per-payment max",
        ),
        // Kernel routes plugin-mode ops by the callData's selector: only executeSessionPayment
        // reaches the session validator; other selectors have no validator and Kernel itself
        // refuses them (without a reason).
        ("a batch (approve + charge)", old_batch, "AA23 reverted (or OOG)"),
        ("top-level setExecution", set_execution.abi_encode().into(), "AA23 reverted (or OOG)"),
        (
            "top-level setDefaultValidator",
            set_default.abi_encode().into(),
            "AA23 reverted (or OOG)",
        ),
        (
            "top-level execute",
            IKernel::executeCall { to: attacker, value: usd, data: Bytes::new(), operation: 0 }
                .abi_encode()
                .into(),
            "AA23 reverted (or OOG)",
        ),
        (
            "top-level chargePayment",
            IKernelSessionValidator::chargePaymentCall {
                token: a.token,
                settlement: a.settlement,
                merchant: MERCHANT,
                amount: usd,
                requestHash: request_hash(79),
            }
            .abi_encode()
            .into(),
            "AA23 reverted (or OOG)",
        ),
    ];

    let before = kx.tokens_of(MERCHANT)? + kx.tokens_of(attacker)?;
    let mut wrong = Vec::new();
    for (what, data, expected) in cases {
        let nonce = kx.nonce(account)?;
        let op = kx.session_op(&grant, false, data, GasFields::default(), nonce)?;
        let out = kx.submit(vec![op])?;
        let reason = out.revert_reason().unwrap_or_else(|| "included".into());
        if reason != expected {
            wrong.push(format!("{what}: got `{reason}`, want `{expected}`"));
        }
    }
    // The session key signing in the owner's (sudo) mode
    let nonce = kx.nonce(account)?;
    let mut op =
        kx.session_op(&grant, false, kx.pay(MERCHANT, USD, 30), GasFields::default(), nonce)?;
    let mut sig = op.signature.to_vec();
    sig[..4].copy_from_slice(&MODE_SUDO);
    op.signature = sig.into();
    let out = kx.submit(vec![op])?;
    let reason = out.revert_reason().unwrap_or_default();
    if out.success || !(reason.starts_with("AA24") || reason.starts_with("AA23")) {
        wrong.push(format!("sudo mode with the session key: {reason}"));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(kx.tokens_of(MERCHANT)? + kx.tokens_of(attacker)?, before, "nothing paid");
    assert_eq!(kx.chain.view(account, IKernel::getDefaultValidatorCall {})?, k::ECDSA_VALIDATOR);
    Ok(())
}

/// The executor runs only as the account's DELEGATECALL from the EntryPoint, and the charge only for
/// the op that validated last: a stranger can neither make the account pay nor spend a session's
/// budget, and an owner op cannot borrow the session path.
#[test]
fn kernel_session_execution_is_reachable_only_through_a_validated_op() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let grant = kx.grant();
    kx.enable(&grant, 1005)?;
    let a = kx.chain.addrs;
    let (v, account) = (kx.kernel.session_validator, kx.account);
    let stranger = key(9).address();
    kx.chain.set_balance(stranger, U256::from(ETH));
    let payment = kx.pay(MERCHANT, USD, 81);
    let charge = IKernelSessionValidator::chargePaymentCall {
        token: a.token,
        settlement: a.settlement,
        merchant: MERCHANT,
        amount: U256::from(USD),
        requestHash: request_hash(81),
    };
    let before = kx.state(&grant)?.lifetimeSpent;
    // Through the account's fallback: Kernel lets only the EntryPoint (or a validCaller) in.
    let out = kx.chain.send(stranger, account, U256::ZERO, payment.to_vec(), 1_000_000)?;
    assert!(!out.success, "a stranger ran the payment through the account");
    // On the validator itself: not in an account's context.
    let out = kx.chain.send(stranger, v, U256::ZERO, payment.to_vec(), 1_000_000)?;
    assert!(!out.success, "the validator ran a payment itself");
    assert_eq!(
        out.revert_reason().as_deref(),
        Some("session: executeSessionPayment runs in the account")
    );
    // The charge, by a stranger or by the account outside a validated op: no marker to consume.
    let out = kx.chain.send(stranger, v, U256::ZERO, charge.abi_encode(), 1_000_000)?;
    assert!(!out.success, "a stranger charged a session");
    assert_eq!(out.revert_reason().as_deref(), Some("account: op was not the last validated"));
    // An owner op (sudo mode) whose callData is the session payment: it left no session marker.
    let nonce = kx.nonce(account)?;
    let op = kx.owner_op_for(account, payment.clone(), GasFields::default(), nonce)?;
    let out = kx.submit(vec![op])?;
    assert_eq!(execution_reverts(&out), vec!["account: op was not the last validated".to_string()]);
    assert_eq!(kx.state(&grant)?.lifetimeSpent, before, "nothing charged");
    assert_eq!(kx.tokens_of(MERCHANT)?, U256::from(USD), "only the enabling payment landed");
    Ok(())
}

/// A grant signed for one Kernel account (or chain) enables nothing on another, even with the same
/// owner and the validator installed there.
#[test]
fn kernel_grants_do_not_replay_across_accounts_or_chains() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let grant = kx.grant();
    kx.enable(&grant, 1003)?;
    let other = kx.chain.create_kernel_account(kx.owner.address(), U256::from(1))?;
    kx.fund(other)?;
    assert!(kx.install(other)?.success);

    // the enabling signature of account 1 copied onto an op of account 2
    let nonce = kx.nonce(other)?;
    let mut op = ops::unsigned_op(other, nonce, kx.pay(MERCHANT, USD, 40), GasFields::default());
    let id1 = kx.id(&grant);
    op.signature = k::with_mode(
        MODE_PLUGIN,
        &raw_session_sig(&kx.chain, &kx.session_key, &kx.owner, &op, &grant, other, Some(id1))?,
    );
    let out = kx.submit(vec![op])?;
    assert!(refused_with(&out, "session: bad owner signature"), "{:?}", out.revert_reason());
    // use mode on account 2 (the grant was never enabled there)
    let op = kx.session_op_for(
        other,
        &grant,
        false,
        kx.pay(MERCHANT, USD, 41),
        GasFields::default(),
        nonce,
    )?;
    let out = kx.submit(vec![op])?;
    assert!(refused_with(&out, "session: not enabled"), "{:?}", out.revert_reason());

    // the owner's signature over the grant in chain 1's domain
    let domain = eip712_domain! {
        name: "X402SessionAccount", version: "1", chain_id: 1, verifying_contract: other,
    };
    let other_chain_id = grant.v2().eip712_signing_hash(&domain);
    let mut op = ops::unsigned_op(other, nonce, kx.pay(MERCHANT, USD, 42), GasFields::default());
    op.signature = k::with_mode(
        MODE_PLUGIN,
        &raw_session_sig(
            &kx.chain,
            &kx.session_key,
            &kx.owner,
            &op,
            &grant,
            other,
            Some(other_chain_id),
        )?,
    );
    let out = kx.submit(vec![op])?;
    assert!(refused_with(&out, "session: bad owner signature"), "{:?}", out.revert_reason());
    Ok(())
}

/// Several payments of one session in one bundle each pass validation against the same state; only
/// the last validated executes, so a bundle never pays past the cap.
#[test]
fn kernel_bundle_of_payments_cannot_pass_the_cap() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let grant = kx.grant();
    kx.enable(&grant, 1004)?; // 1 paid
    let nonce = kx.nonce(kx.account)?;
    let mut bundle = Vec::new();
    for i in 0..6u64 {
        let data = kx.pay(MERCHANT, 5 * USD, 50 + i);
        bundle.push(kx.session_op(
            &grant,
            false,
            data,
            GasFields::default(),
            nonce + U256::from(i),
        )?);
    }
    let out = kx.submit(bundle)?;
    assert!(out.success, "{:?}", out.revert_reason());
    let reverts = execution_reverts(&out);
    assert_eq!(reverts.len(), 5, "{reverts:?}");
    assert!(reverts.iter().all(|r| r == "account: op was not the last validated"), "{reverts:?}");
    assert_eq!(kx.tokens_of(MERCHANT)?, U256::from(6 * USD));
    let s = kx.state(&grant)?;
    assert_eq!(s.periodSpent.to::<u128>(), 6 * USD);
    Ok(())
}

/// The key holder as bundler and beneficiary, with ops certain to revert in execution (a reused
/// requestHash; several ops in one bundle) and gas fields maxed out: what leaves the account is
/// bounded by the gas budget, then the budget refuses.
#[test]
fn kernel_gas_is_no_spending_channel() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let gas = GasFields {
        call_gas: 150_000,
        verification_gas: 300_000,
        pre_verification_gas: 1_000_000,
        max_fee: 10_000_000_000,
        max_priority_fee: 10_000_000_000,
    };
    let per_op = gas.prefund().to::<u128>();
    let mut grant = kx.grant();
    grant.max_gas_cost_per_op = per_op;
    grant.gas_period_budget = 4 * per_op;
    grant.gas_lifetime_budget = 4 * per_op;
    let thief = kx.session_key.address();
    let account = kx.account;
    let before = kx.chain.balance(account) + kx.chain.deposit(account)?;
    let mut refused = None;
    for i in 0..10u64 {
        let nonce = kx.nonce(account)?;
        // request 1 again after the first: settle reverts AlreadySettled in execution
        let first = kx.session_op(&grant, i == 0, kx.pay(MERCHANT, USD, 1), gas, nonce)?;
        let second =
            kx.session_op(&grant, false, kx.pay(MERCHANT, USD, 1), gas, nonce + U256::from(1))?;
        let out = kx.chain.handle_ops(vec![first, second], thief, thief)?;
        if !out.success {
            refused = out.revert_reason();
            break;
        }
    }
    let out = before - kx.chain.balance(account) - kx.chain.deposit(account)?;
    assert!(out <= U256::from(grant.gas_lifetime_budget), "{out} wei left the account");
    let r = refused.unwrap_or_default();
    assert!(r.contains("session: over gas"), "{r}");
    assert_eq!(kx.tokens_of(MERCHANT)?, U256::from(USD), "one payment landed");
    Ok(())
}

/// Revoke, revoke-all, pause (direct owner ops and relayed signatures), expiry, and a revoke-all by
/// an owner op earlier in the same bundle.
#[test]
fn kernel_revoked_paused_and_expired_sessions_cannot_pay() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let v = kx.kernel.session_validator;
    let account = kx.account;
    let mut grant = kx.grant();
    let pay = |kx: &mut Kx, grant: &Grant, n: u64| -> anyhow::Result<Outcome> {
        let nonce = kx.nonce(kx.account)?;
        let op =
            kx.session_op(grant, false, kx.pay(MERCHANT, USD, n), GasFields::default(), nonce)?;
        kx.submit(vec![op])
    };
    kx.enable(&grant, 1005)?;
    let id = kx.id(&grant);

    // pause by relayed signature, then resume by owner op
    let msg = SetSessionPaused { sessionId: id, paused: true, nonce: 0 };
    let sig = ops::sign_hash(&kx.owner, ops::control_digest(account, &msg))?;
    let relay = IKernelSessionValidator::setPausedWithSignatureCall {
        account,
        id,
        paused: true,
        nonce: 0,
        ownerSignature: sig.into(),
    };
    kx.chain.must(ADMIN, v, U256::ZERO, relay.abi_encode())?;
    let out = pay(&mut kx, &grant, 60)?;
    assert!(refused_with(&out, "session: paused"), "{:?}", out.revert_reason());
    let op =
        kx.control_op(IKernelSessionValidator::setPausedCall { id, paused: false }.abi_encode())?;
    assert!(kx.submit(vec![op])?.success);
    assert!(pay(&mut kx, &grant, 61)?.success, "resumed");

    // revoke-all by an owner op earlier in the same bundle as a payment
    let op = kx.control_op(IKernelSessionValidator::revokeAllCall {}.abi_encode())?;
    let nonce = op.nonce + U256::from(1);
    let payment =
        kx.session_op(&grant, false, kx.pay(MERCHANT, USD, 62), GasFields::default(), nonce)?;
    let paid = kx.tokens_of(MERCHANT)?;
    let out = kx.submit(vec![op, payment])?;
    assert!(out.success, "{:?}", out.revert_reason());
    assert_eq!(execution_reverts(&out), vec!["session: revoked (all sessions)".to_owned()]);
    assert_eq!(kx.tokens_of(MERCHANT)?, paid, "the revoked session did not pay");
    assert_eq!(kx.chain.view(v, IKernelSessionValidator::sessionEpochCall { account })?, 1);
    let out = pay(&mut kx, &grant, 63)?;
    assert!(refused_with(&out, "session: revoked (all sessions)"), "{:?}", out.revert_reason());

    // a fresh grant under epoch 1; revoked by owner op; another revoked by relayed signature
    grant.epoch = 1;
    kx.enable(&grant, 1006)?;
    let id = kx.id(&grant);
    let op = kx.control_op(IKernelSessionValidator::revokeCall { id }.abi_encode())?;
    assert!(kx.submit(vec![op])?.success);
    let out = pay(&mut kx, &grant, 64)?;
    assert!(refused_with(&out, "session: revoked"), "{:?}", out.revert_reason());
    grant.salt = B256::repeat_byte(0xbb);
    kx.enable(&grant, 1007)?;
    let id = kx.id(&grant);
    let sig =
        ops::sign_hash(&kx.owner, ops::control_digest(account, &RevokeSession { sessionId: id }))?;
    let relay = IKernelSessionValidator::revokeWithSignatureCall {
        account,
        id,
        ownerSignature: sig.into(),
    };
    kx.chain.must(ADMIN, v, U256::ZERO, relay.abi_encode())?;
    let out = pay(&mut kx, &grant, 65)?;
    assert!(refused_with(&out, "session: revoked"), "{:?}", out.revert_reason());

    // expired: the EntryPoint enforces the window the validator returns
    grant.salt = B256::repeat_byte(0xcc);
    kx.enable(&grant, 1008)?;
    kx.chain.set_time(grant.valid_until + 1);
    let out = pay(&mut kx, &grant, 66)?;
    assert_eq!(out.revert_reason().unwrap_or_default(), "AA22 expired or not due");
    Ok(())
}

/// Grants are enabled by the ECDSAValidator owner only while ECDSAValidator is the default validator.
#[test]
fn kernel_grants_need_ecdsa_validator_as_default() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    // a second ECDSAValidator instance (salt 1) as the account's default validator
    let mut data = B256::with_last_byte(1).to_vec();
    data.extend_from_slice(&k::vendored("ECDSAValidator.initcode.hex")?);
    let out = kx.chain.send(ADMIN, CREATE2_DEPLOYER, U256::ZERO, data, 30_000_000)?;
    let other = Address::from_slice(&out.output);
    let set = IKernel::setDefaultValidatorCall {
        _defaultValidator: other,
        _data: kx.owner.address().to_vec().into(),
    };
    let (account, nonce) = (kx.account, kx.nonce(kx.account)?);
    let op = kx.owner_op_for(account, set.abi_encode().into(), GasFields::default(), nonce)?;
    assert!(kx.submit(vec![op])?.success);
    let grant = kx.grant();
    let nonce = kx.nonce(account)?;
    let op = kx.session_op(&grant, true, kx.pay(MERCHANT, USD, 1), GasFields::default(), nonce)?;
    let out = kx.submit(vec![op])?;
    assert!(
        refused_with(&out, "session: default validator is not ECDSAValidator"),
        "{:?}",
        out.revert_reason()
    );
    Ok(())
}

/// ERC-7562 (unstaked sender): the Kernel account's validateUserOp frame, including the session
/// validator and ECDSAValidator reads, touches only storage associated with the account.
#[test]
fn kernel_session_ops_pass_the_erc7562_checker() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    kx.chain.evm.inspector.erc7562_sender = Some(kx.account);
    let mut grant = kx.grant();
    grant.max_payments_per_period = 10;
    grant.merchant_period_cap = 3 * USD;
    grant.merchant_root = keccak256(MERCHANT.as_slice());
    let mut kinds = 0;
    for (n, (enable, sponsor)) in
        [(true, false), (false, false), (false, true)].into_iter().enumerate()
    {
        let nonce = kx.nonce(kx.account)?;
        let mut op = ops::unsigned_op(
            kx.account,
            nonce,
            kx.pay(MERCHANT, USD / 2, 70 + n as u64),
            GasFields::default(),
        );
        if sponsor {
            ops::sponsor(&mut kx.chain, &mut op)?;
        }
        kx.sign_session(&mut op, &grant, enable)?;
        let out = kx.submit(vec![op])?;
        assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
        kinds += 1;
    }
    let op = kx.control_op(IKernelSessionValidator::revokeAllCall {}.abi_encode())?;
    assert!(kx.submit(vec![op])?.success);
    kinds += 1;
    let probe = &kx.chain.evm.inspector;
    assert_eq!(probe.frames_checked, kinds, "every op's validateUserOp frame was traced");
    assert!(probe.violations.is_empty(), "ERC-7562 violations: {:#?}", probe.violations);
    Ok(())
}

/// Gas of one-op `handleOps` bundles, sponsored as in `make bench`: a Kernel owner payment
/// (`executeBatch([approve, settle])`, ECDSAValidator) against a Kernel session payment (plugin mode,
/// the three-call batch), both in steady state (third payment). Reported, not asserted.
#[test]
fn kernel_gas_owner_vs_session_payment() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let a = kx.chain.addrs;
    let account = kx.account;
    let mut owner_gas = 0;
    for n in 0..3u64 {
        let nonce = kx.nonce(account)?;
        let data = k::owner_payment(
            a.token,
            a.settlement,
            MERCHANT,
            U256::from(USD / 100),
            request_hash(100 + n),
        );
        let mut op = ops::unsigned_op(account, nonce, data, GasFields::default());
        ops::sponsor(&mut kx.chain, &mut op)?;
        sign_owner(&mut op, &kx.owner)?;
        let out = kx.submit(vec![op])?;
        anyhow::ensure!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
        owner_gas = out.gas_used;
    }
    let mut grant = kx.grant();
    grant.paymaster = a.paymaster;
    grant.gas_lifetime_budget = 0;
    grant.gas_period_budget = 0;
    grant.max_gas_cost_per_op = 0;
    grant.merchant_root = keccak256(MERCHANT.as_slice());
    let mut session = Vec::new();
    for n in 0..3u64 {
        let nonce = kx.nonce(account)?;
        let mut op = ops::unsigned_op(
            account,
            nonce,
            kx.pay(MERCHANT, USD / 100, 200 + n),
            GasFields::default(),
        );
        ops::sponsor(&mut kx.chain, &mut op)?;
        kx.sign_session(&mut op, &grant, n == 0)?;
        let out = kx.submit(vec![op])?;
        anyhow::ensure!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
        session.push(out.gas_used);
    }
    let ratio = session[2] as f64 / owner_gas as f64;
    #[allow(clippy::print_stdout)]
    {
        println!("handleOps gas, one-op bundle, sponsored, Kernel v2.4:");
        println!("  owner payment (sudo, 2 calls)        {owner_gas}");
        println!(
            "  session first (enable)               {}  ratio {:.3}",
            session[0],
            session[0] as f64 / owner_gas as f64
        );
        println!(
            "  session steady (executeSessionPayment) {}  ratio {ratio:.3} (goal <= 1.15)",
            session[2]
        );
    }
    assert!(session[2] > owner_gas, "a session payment does strictly more work");
    assert!(ratio <= 1.15, "session payment {ratio:.3}x Kernel's owner payment");
    Ok(())
}
