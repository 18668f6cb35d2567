//! Session keys on Kernel v2.4 through `KernelSessionValidator`, on the real EntryPoint v0.6 with
//! ZeroDev's vendored Kernel, KernelFactory and ECDSAValidator bytecode at their canonical addresses.
//! The owner installs the validator with one owner op; then the adversarial cases of issue 12 item 4
//! that only Kernel has (its modes and selector routing), each refused by the EntryPoint with the
//! reason a user would see. The properties every host shares run on Kernel in `hosts.rs`.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use x402_aa_policy_evm::{
    Chain, Outcome,
    abi::{
        IEntryPoint::UserOperation,
        IToken,
        kernel::{IKernel, IKernelSessionValidator},
    },
    artifacts::Artifacts,
    chain::{ADMIN, CREATE2_DEPLOYER},
    kernel::{self as k, KernelStack, MODE_PLUGIN, MODE_SUDO},
    ops::{self, GasFields},
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
}

impl SessionHost for Kx {
    const NAME: &'static str = "Kernel account";
    const OWNER_PAYMENT: &'static str = "sudo, 2 calls";
    const GAS_RATIO_GOAL: Option<f64> = Some(1.15);

    harness_fields!();

    fn owner(&self) -> &PrivateKeySigner {
        &self.owner
    }

    /// `executeSessionPayment(...)`, which Kernel routes to the session validator as executor.
    fn pay(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let a = self.chain.addrs;
        k::session_payment(
            a.token,
            a.settlement,
            merchant,
            U256::from(amount),
            request_hash(request),
        )
    }
    fn owner_payment(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let a = self.chain.addrs;
        k::owner_payment(a.token, a.settlement, merchant, U256::from(amount), request_hash(request))
    }
    /// Plugin mode: the validator bound to the callData's selector reads the rest.
    fn seal(&self, session_signature: &[u8]) -> Bytes {
        k::with_mode(MODE_PLUGIN, session_signature)
    }
    fn sign_owner(&self, op: &mut UserOperation) -> anyhow::Result<()> {
        sign_owner(op, &self.owner)
    }
    fn store(&self) -> SessionStore {
        SessionStore::Module(self.kernel.session_validator)
    }
    /// An owner op calling the session validator through `execute`.
    fn control_op(&mut self, control: Control) -> anyhow::Result<UserOperation> {
        let execute = IKernel::executeCall {
            to: self.kernel.session_validator,
            value: U256::ZERO,
            data: module_control(control),
            operation: 0,
        };
        let (account, nonce) = (self.account, self.nonce(self.account)?);
        self.owner_op_for(account, execute.abi_encode().into(), GasFields::default(), nonce)
    }
    fn another_account(&mut self) -> anyhow::Result<Address> {
        let other = self.chain.create_kernel_account(self.owner.address(), U256::from(1))?;
        self.fund(other)?;
        let out = self.install(other)?;
        anyhow::ensure!(out.success, "install: {:?}", out.revert_reason());
        Ok(other)
    }
}

pub(crate) fn sign_owner(op: &mut UserOperation, owner: &PrivateKeySigner) -> anyhow::Result<()> {
    let sig = ops::personal_sign(owner, ops::user_op_hash(op))?;
    op.signature = k::with_mode(MODE_SUDO, &sig);
    Ok(())
}

/// The install leaves ECDSAValidator as the default validator; the session validator never
/// authorises ERC-1271 signatures or direct calls. (The payments themselves: `hosts::kernel`.)
#[test]
fn kernel_validator_is_installed_and_never_signs_for_the_account() -> anyhow::Result<()> {
    let mut kx = Kx::new()?;
    let (v, account) = (kx.kernel.session_validator, kx.account);
    let got = kx.chain.view(account, IKernel::getDefaultValidatorCall {})?;
    assert_eq!(got, k::ECDSA_VALIDATOR);
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
    let before = kx.state(&grant)?.lifetime_spent;
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
    assert_eq!(kx.state(&grant)?.lifetime_spent, before, "nothing charged");
    assert_eq!(kx.tokens_of(MERCHANT)?, U256::from(USD), "only the enabling payment landed");
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
