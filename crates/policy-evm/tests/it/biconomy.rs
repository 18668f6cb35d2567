//! Session keys on Biconomy Smart Account v2 through `BiconomySessionModule`, on the real EntryPoint
//! v0.6 with the committed `contracts/vendor/biconomy-v2` build of SmartAccount, its factory and the
//! ECDSA ownership module. The owner installs the module with one owner op; then the adversarial cases
//! of issue 12 item 4 (asked again by issue 14) that only Biconomy has (its callData shape, envelope
//! and module list), each refused by the EntryPoint with the reason a user would see. The properties
//! every host shares run on Biconomy in `hosts.rs`. Biconomy lets an op validated by any enabled
//! module call any account function, so the module's payment shape is the whole method scope: the
//! top-level admin calls are in the list too.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address},
    signers::local::PrivateKeySigner,
    sol,
    sol_types::{SolCall, SolValue},
};
use x402_aa_policy_evm::{
    Chain, Outcome,
    abi::{IEntryPoint::UserOperation, ISettlement, IToken},
    artifacts::Artifacts,
    chain::ADMIN,
    ops::{self, GasFields},
};

use crate::support::*;

sol! {
    /// `SmartAccount` 2.0.0: the functions an op can reach (EntryPoint-only or EntryPoint-or-self).
    #[derive(Debug)]
    interface IBiconomyAccount {
        function executeBatch_y6U(address[] dest, uint256[] value, bytes[] func);
        function executeBatch(address[] dest, uint256[] value, bytes[] func);
        function execute_ncC(address dest, uint256 value, bytes func);
        function enableModule(address module);
        function disableModule(address prevModule, address module);
        function setupAndEnableModule(address setupContract, bytes setupData) returns (address);
        function updateImplementation(address _implementation);
        function withdrawDepositTo(address withdrawAddress, uint256 amount);
        function isModuleEnabled(address module) view returns (bool);
        function isValidSignature(bytes32 dataHash, bytes signature) view returns (bytes4);
    }

    #[derive(Debug)]
    interface IBiconomyFactory {
        function deployCounterFactualAccount(address moduleSetupContract, bytes moduleSetupData, uint256 index) returns (address proxy);
    }

    #[derive(Debug)]
    interface IEcdsaModule {
        function initForSmartAccount(address eoaOwner) returns (address);
        function getOwner(address smartAccount) view returns (address);
    }

    /// What BiconomySessionModule adds to `ISessionModule` (its owner controls and views).
    #[derive(Debug)]
    interface IBiconomySessionModule {
        function initForSmartAccount() returns (address);
        function isValidSignature(bytes32 dataHash, bytes moduleSignature) view returns (bytes4);
        function chargePayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash);
    }
}

/// Where the vendored Biconomy build lives (see its PROVENANCE.md).
fn vendored() -> Artifacts {
    Artifacts::at(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/vendor/biconomy-v2"),
    )
}

/// Biconomy's linked list of modules starts at address 1.
const SENTINEL: Address = address!("0000000000000000000000000000000000000001");

pub(crate) struct Bx {
    pub(crate) chain: Chain,
    pub(crate) factory: Address,
    pub(crate) ecdsa: Address,
    pub(crate) module: Address,
    pub(crate) owner: PrivateKeySigner,
    pub(crate) session_key: PrivateKeySigner,
    pub(crate) account: Address,
}

impl Bx {
    /// The stack, Biconomy (implementation, factory, ECDSA module) and our module through the CREATE2
    /// deployer, and a Biconomy account (owner key 1) funded with 1000 USDT and 10 ETH, with the
    /// session module installed by one owner op.
    pub(crate) fn new() -> anyhow::Result<Self> {
        let project = Artifacts::project();
        let biconomy = vendored();
        let mut chain = Chain::deploy(&project)?;
        let ep = chain.addrs.entry_point;
        let implementation = create2(
            &mut chain,
            &[biconomy.bytecode("SmartAccount")?.to_vec(), ep.abi_encode()].concat(),
        )?;
        let factory = create2(
            &mut chain,
            &[
                biconomy.bytecode("SmartAccountFactory")?.to_vec(),
                (implementation, ADMIN).abi_encode_params(),
            ]
            .concat(),
        )?;
        let ecdsa = create2(&mut chain, &biconomy.bytecode("EcdsaOwnershipRegistryModule")?)?;
        let module = create2(
            &mut chain,
            &[project.bytecode("BiconomySessionModule")?.to_vec(), ecdsa.abi_encode()].concat(),
        )?;
        let owner = key(1);
        let mut bx =
            Self { chain, factory, ecdsa, module, owner, session_key: key(2), account: ADMIN };
        bx.account = bx.create_account(U256::ZERO)?;
        let account = bx.account;
        bx.fund(account)?;
        let out = bx.install(account)?;
        anyhow::ensure!(out.success, "install: {:?}", out.revert_reason());
        anyhow::ensure!(bx.chain.view(account, IBiconomyAccount::isModuleEnabledCall { module })?);
        Ok(bx)
    }

    /// The owner's account `index` with the ECDSA module, deployed now through the factory.
    pub(crate) fn create_account(&mut self, index: U256) -> anyhow::Result<Address> {
        let setup = IEcdsaModule::initForSmartAccountCall { eoaOwner: self.owner.address() };
        let deploy = IBiconomyFactory::deployCounterFactualAccountCall {
            moduleSetupContract: self.ecdsa,
            moduleSetupData: setup.abi_encode().into(),
            index,
        };
        let out = self.chain.must(ADMIN, self.factory, U256::ZERO, deploy.abi_encode())?;
        Ok(IBiconomyFactory::deployCounterFactualAccountCall::abi_decode_returns(&out.output)?)
    }

    pub(crate) fn fund(&mut self, account: Address) -> anyhow::Result<()> {
        self.chain.mint(account, U256::from(1_000 * USD))?;
        self.chain.set_balance(account, U256::from(10 * ETH));
        Ok(())
    }

    /// `setupAndEnableModule(module, initForSmartAccount())` as an owner op.
    pub(crate) fn install(&mut self, account: Address) -> anyhow::Result<Outcome> {
        let data = IBiconomyAccount::setupAndEnableModuleCall {
            setupContract: self.module,
            setupData: IBiconomySessionModule::initForSmartAccountCall {}.abi_encode().into(),
        };
        let nonce = self.nonce(account)?;
        let op =
            self.owner_op_for(account, data.abi_encode().into(), GasFields::default(), nonce)?;
        self.submit(vec![op])
    }

    /// The three calls of a session payment as `(dest, value, func)`.
    pub(crate) fn calls(
        &self,
        merchant: Address,
        amount: u128,
        request: u64,
    ) -> (Vec<Address>, Vec<U256>, Vec<Bytes>) {
        let a = self.chain.addrs;
        let amount = U256::from(amount);
        let request_hash = request_hash(request);
        let func = vec![
            call(IToken::approveCall { spender: a.settlement, value: amount }),
            call(ISettlement::settleCall {
                merchant,
                token: a.token,
                amount,
                requestHash: request_hash,
            }),
            call(IBiconomySessionModule::chargePaymentCall {
                token: a.token,
                settlement: a.settlement,
                merchant,
                amount,
                requestHash: request_hash,
            }),
        ];
        (vec![a.token, a.settlement, self.module], vec![U256::ZERO; 3], func)
    }
}

impl SessionHost for Bx {
    const NAME: &'static str = "Biconomy account";
    const OWNER_PAYMENT: &'static str = "ECDSA module, 2 calls";

    harness_fields!();

    fn owner(&self) -> &PrivateKeySigner {
        &self.owner
    }

    /// `executeBatch_y6U([approve, settle, chargePayment])`.
    fn pay(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let (dest, value, func) = self.calls(merchant, amount, request);
        batch(dest, value, func)
    }
    /// As the SDK builds it for Biconomy: `executeBatch_y6U([approve, settle])`.
    fn owner_payment(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let (d, v, f) = self.calls(merchant, amount, request);
        batch(d[..2].to_vec(), v[..2].to_vec(), f[..2].to_vec())
    }
    /// Biconomy's envelope `abi.encode(bytes, module)`, naming our module.
    fn seal(&self, session_signature: &[u8]) -> Bytes {
        envelope(session_signature, self.module)
    }
    /// The ECDSA module's rule, EIP-191 over the userOpHash, in the envelope.
    fn sign_owner(&self, op: &mut UserOperation) -> anyhow::Result<()> {
        let sig = ops::personal_sign(&self.owner, ops::user_op_hash(op))?;
        op.signature = envelope(&sig, self.ecdsa);
        Ok(())
    }
    fn store(&self) -> SessionStore {
        SessionStore::Module(self.module)
    }
    /// An owner op calling the session module through `execute_ncC` (msg.sender = the account).
    fn control_op(&mut self, control: Control) -> anyhow::Result<UserOperation> {
        let execute = IBiconomyAccount::execute_ncCCall {
            dest: self.module,
            value: U256::ZERO,
            func: module_control(control),
        };
        let (account, nonce) = (self.account, self.nonce(self.account)?);
        self.owner_op_for(account, call(execute), GasFields::default(), nonce)
    }
    fn another_account(&mut self) -> anyhow::Result<Address> {
        let other = self.create_account(U256::from(1))?;
        self.fund(other)?;
        let out = self.install(other)?;
        anyhow::ensure!(out.success, "install: {:?}", out.revert_reason());
        Ok(other)
    }
}

/// `abi.encode(bytes moduleSignature, address module)`: the account's `userOp.signature`.
fn envelope(module_signature: &[u8], module: Address) -> Bytes {
    (Bytes::copy_from_slice(module_signature), module).abi_encode_params().into()
}

fn batch(dest: Vec<Address>, value: Vec<U256>, func: Vec<Bytes>) -> Bytes {
    IBiconomyAccount::executeBatch_y6UCall { dest, value, func }.abi_encode().into()
}

/// What the EntryPoint answers when the account reverts with a custom error (no reason string),
/// e.g. SmartAccount's `WrongValidationModule(module)`.
const REVERTED_NO_REASON: &str = "AA23 reverted (or OOG)";

/// ERC-1271 is never valid through this module, asked directly or through the account. (The
/// payments themselves: `hosts::biconomy`.)
#[test]
fn biconomy_module_never_signs_for_the_account() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let (m, account) = (bx.module, bx.account);
    let h = B256::repeat_byte(7);
    let sig = vec![0u8; 65];
    let direct = IBiconomySessionModule::isValidSignatureCall {
        dataHash: h,
        moduleSignature: sig.clone().into(),
    };
    assert_eq!(bx.chain.view(m, direct)?, [0xff; 4]);
    let via_account =
        IBiconomyAccount::isValidSignatureCall { dataHash: h, signature: envelope(&sig, m) };
    assert_eq!(bx.chain.view(account, via_account)?, [0xff; 4]);
    Ok(())
}

/// Every way the session key could reach beyond `approve + settle + charge` in one op, including the
/// account's own admin functions as top-level callData (Biconomy routes by the signature's module, not
/// by the callData, so the module itself must refuse them).
#[test]
fn biconomy_session_ops_outside_the_payment_shape_are_refused() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let grant = bx.grant();
    bx.enable(&grant, 1002)?;
    let a = bx.chain.addrs;
    let (m, account) = (bx.module, bx.account);
    let attacker = address!("00000000000000000000000000000000000bad01");
    let usd = U256::from(USD);
    let enable_module = call(IBiconomyAccount::enableModuleCall { module: attacker });
    let update = call(IBiconomyAccount::updateImplementationCall { _implementation: attacker });
    let setup = call(IBiconomyAccount::setupAndEnableModuleCall {
        setupContract: attacker,
        setupData: Bytes::new(),
    });

    let mut cases: Vec<(&str, Bytes, &str)> = Vec::new();
    let (d, v, mut f) = bx.calls(MERCHANT, USD, 10);
    f[0] = call(IToken::approveCall { spender: attacker, value: usd });
    cases.push(("another spender", batch(d, v, f), "session: approve spender not allowed"));
    let (d, v, mut f) = bx.calls(MERCHANT, USD, 11);
    f[0] = [&[0xa9, 0x05, 0x9c, 0xbb][..], &(attacker, usd).abi_encode_params()].concat().into();
    cases.push(("another call (transfer)", batch(d, v, f), "session: first call must be approve"));
    let (d, mut v, f) = bx.calls(MERCHANT, USD, 12);
    v[1] = U256::from(1);
    cases.push(("native value", batch(d, v, f), "session: value transfer not allowed"));
    let (mut d, v, mut f) = bx.calls(MERCHANT, USD, 13);
    (d[2], f[2]) = (account, enable_module.clone());
    cases.push(("self-call: enableModule", batch(d, v, f), "session: self-call not allowed"));
    let (mut d, mut v, mut f) = bx.calls(MERCHANT, USD, 14);
    d.push(account);
    v.push(U256::ZERO);
    f.push(update.clone());
    cases.push((
        "self-call: updateImplementation",
        batch(d, v, f),
        "session: self-call not allowed",
    ));
    let (d, v, f) = bx.calls(MERCHANT, USD, 15);
    cases.push((
        "payment without the charge",
        batch(d[..2].to_vec(), v[..2].to_vec(), f[..2].to_vec()),
        "session: batch must be exactly approve + settle + charge",
    ));
    let (mut d, v, f) = bx.calls(MERCHANT, USD, 16);
    d[2] = attacker;
    cases.push(("charge at another contract", batch(d, v, f), "session: target not allowed"));
    let (d, v, mut f) = bx.calls(MERCHANT, USD, 17);
    f[2] = call(IBiconomySessionModule::chargePaymentCall {
        token: a.token,
        settlement: a.settlement,
        merchant: MERCHANT,
        amount: U256::from(1),
        requestHash: request_hash(17),
    });
    cases.push((
        "charge smaller than the payment",
        batch(d, v, f),
        "session: charge differs from payment",
    ));
    let (d, v, mut f) = bx.calls(MERCHANT, USD, 18);
    f[2] = call(ISessionModule::revokeAllCall {});
    cases.push((
        "another module function",
        batch(d, v, f),
        "session: third call must be the charge",
    ));
    let (mut d, v, mut f) = bx.calls(MERCHANT, 500 * USD, 19);
    d.swap(0, 1);
    f.swap(0, 1);
    cases.push(("calls reordered", batch(d, v, f), "session: token not allowed"));
    let (d, mut v, f) = bx.calls(MERCHANT, USD, 20);
    v.pop();
    cases.push(("fewer values than calls", batch(d, v, f), "session: malformed callData"));
    let mut data = bx.pay(MERCHANT, USD, 21).to_vec();
    data[648..660].copy_from_slice(&[0xff; 12]);
    cases.push((
        "merchant word not an address",
        data.into(),
        "session: charge differs from payment",
    ));
    let mut data = bx.pay(MERCHANT, USD, 22).to_vec();
    data.extend([0u8; 32]);
    cases.push(("trailing bytes", data.into(), "session: non-canonical callData"));
    // the same calls with a 32-byte gap after the head: decodes to the payment, not canonical ABI
    let mut data = bx.pay(MERCHANT, USD, 23).to_vec();
    data.splice(100..100, [0u8; 32]);
    for at in [4, 36, 68] {
        let w = U256::from_be_slice(&data[at..at + 32]) + U256::from(32);
        data[at..at + 32].copy_from_slice(&w.to_be_bytes::<32>());
    }
    cases.push(("non-canonical ABI", data.into(), "session: non-canonical callData"));
    cases.push((
        "over per-payment max",
        bx.pay(MERCHANT, 6 * USD, 24),
        "session: over per-payment max",
    ));
    cases.push(("zero amount", bx.pay(MERCHANT, 0, 25), "session: zero amount"));
    cases.push((
        "merchant is the account",
        bx.pay(account, USD, 26),
        "session: merchant is the account",
    ));
    // Top-level callData the EntryPoint may call on a Biconomy account
    let not_batch = "session: callData is not execute/executeBatch";
    cases.push(("top-level enableModule", enable_module, not_batch));
    cases.push(("top-level setupAndEnableModule", setup, not_batch));
    cases.push(("top-level updateImplementation", update, not_batch));
    let execute =
        IBiconomyAccount::execute_ncCCall { dest: attacker, value: usd, func: Bytes::new() };
    cases.push(("top-level execute_ncC", call(execute), not_batch));
    let withdraw =
        IBiconomyAccount::withdrawDepositToCall { withdrawAddress: attacker, amount: usd };
    cases.push(("top-level withdrawDepositTo", call(withdraw), not_batch));
    let (d, v, f) = bx.calls(MERCHANT, USD, 27);
    let alias = IBiconomyAccount::executeBatchCall { dest: d, value: v, func: f };
    cases.push(("the executeBatch alias", call(alias), not_batch));

    let before = bx.tokens_of(MERCHANT)? + bx.tokens_of(attacker)?;
    let mut wrong = Vec::new();
    for (what, data, expected) in cases {
        let nonce = bx.nonce(account)?;
        let op = bx.session_op(&grant, false, data, GasFields::default(), nonce)?;
        let out = bx.submit(vec![op])?;
        let reason = out.revert_reason().unwrap_or_else(|| "included".into());
        if reason != format!("AA23 reverted: {expected}") {
            wrong.push(format!("{what}: got `{reason}`, want `{expected}`"));
        }
    }
    // Envelopes: the session key signing as an owner would, under the ECDSA module (the key is not
    // the owner); the session signature under a module the account never enabled, and in a
    // non-canonical envelope.
    let nonce = bx.nonce(account)?;
    let mut op =
        bx.session_op(&grant, false, bx.pay(MERCHANT, USD, 30), GasFields::default(), nonce)?;
    let (inner, _) = <(Bytes, Address)>::abi_decode_params_validate(&op.signature)?;
    let as_owner = ops::personal_sign(&bx.session_key, ops::user_op_hash(&op))?;
    for (what, sig, expected) in [
        ("ECDSA module", envelope(&as_owner, bx.ecdsa), "AA24 signature error"),
        ("module not enabled", envelope(&inner, attacker), REVERTED_NO_REASON),
        (
            "padded envelope",
            [&envelope(&inner, m)[..], &[0u8; 32]].concat().into(),
            "AA23 reverted: session: malformed signature",
        ),
    ] {
        op.signature = sig;
        let out = bx.submit(vec![op.clone()])?;
        let reason = out.revert_reason().unwrap_or_else(|| "included".into());
        if reason != expected {
            wrong.push(format!("{what}: got `{reason}`, want `{expected}`"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(bx.tokens_of(MERCHANT)? + bx.tokens_of(attacker)?, before, "nothing paid");
    assert!(!bx.chain.view(account, IBiconomyAccount::isModuleEnabledCall { module: attacker })?);
    Ok(())
}

/// After the install the owner still pays and administers through the ECDSA module; disabling our
/// module stops every session at once; with the ECDSA module disabled no grant can be enabled any
/// more (its registry still holds the old owner), while sessions enabled before keep their scope.
#[test]
fn biconomy_owner_keeps_control_after_install() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let account = bx.account;
    // an owner payment through the ECDSA module
    let nonce = bx.nonce(account)?;
    let data = bx.owner_payment(MERCHANT, 50 * USD, 80);
    let op = bx.owner_op_for(account, data, GasFields::default(), nonce)?;
    let out = bx.submit(vec![op])?;
    assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    assert_eq!(bx.tokens_of(MERCHANT)?, U256::from(50 * USD), "over any session cap: the owner's");

    let grant = bx.grant();
    bx.enable(&grant, 1009)?;
    // the ECDSA module disabled (list: SENTINEL -> session module -> ECDSA module)
    let mut second = grant.clone();
    second.salt = B256::repeat_byte(0xdd);
    let disable_ecdsa =
        IBiconomyAccount::disableModuleCall { prevModule: bx.module, module: bx.ecdsa };
    let nonce = bx.nonce(account)?;
    let op = bx.owner_op_for(account, call(disable_ecdsa), GasFields::default(), nonce)?;
    assert!(bx.submit(vec![op])?.success);
    let nonce = bx.nonce(account)?;
    let data = bx.pay(MERCHANT, USD, 81);
    let op = bx.session_op(&second, true, data, GasFields::default(), nonce)?;
    let out = bx.submit(vec![op])?;
    assert!(refused_with(&out, "session: ECDSA module not enabled"), "{:?}", out.revert_reason());
    assert!(bx.pay_once(&grant, USD, 82)?.success, "a session enabled before keeps paying");

    // a fresh account: disabling our module (owner op) ends every session at once
    let other = bx.create_account(U256::from(2))?;
    bx.fund(other)?;
    assert!(bx.install(other)?.success);
    bx.account = other;
    bx.enable(&grant, 1010)?;
    let disable = IBiconomyAccount::disableModuleCall { prevModule: SENTINEL, module: bx.module };
    let nonce = bx.nonce(other)?;
    let op = bx.owner_op_for(other, call(disable), GasFields::default(), nonce)?;
    assert!(bx.submit(vec![op])?.success);
    let out = bx.pay_once(&grant, USD, 83)?;
    assert_eq!(out.revert_reason().unwrap_or_default(), REVERTED_NO_REASON);
    Ok(())
}
