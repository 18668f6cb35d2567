//! Session keys on Biconomy Smart Account v2 through `BiconomySessionModule`, on the real EntryPoint
//! v0.6 with the committed `contracts/vendor/biconomy-v2` build of SmartAccount, its factory and the
//! ECDSA ownership module. The owner installs the module with one owner op; then the adversarial cases
//! of issue 12 item 4 (asked again by issue 14), each refused by the EntryPoint with the reason a user
//! would see. Biconomy lets an op validated by any enabled module call any account function, so the
//! module's payment shape is the whole method scope: the top-level admin calls are in the list too.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address, b256, keccak256},
    signers::local::PrivateKeySigner,
    sol,
    sol_types::{SolCall, SolStruct, SolValue, eip712_domain},
};
use x402_aa_policy_evm::{
    Chain, Outcome,
    abi::{
        IEntryPoint::{self, UserOperation},
        ISettlement, IToken, RevokeSession, SetSessionPaused,
    },
    artifacts::Artifacts,
    chain::{ADMIN, GENESIS_TIME},
    ops::{self, Format, GasFields, Grant, SessionSig},
};

use crate::{kernel::execution_reverts, support::*};

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

    /// This project's module: KernelSessionValidator's owner controls and views.
    #[derive(Debug)]
    interface IBiconomySessionModule {
        function initForSmartAccount() returns (address);
        function isValidSignature(bytes32 dataHash, bytes moduleSignature) view returns (bytes4);
        function chargePayment(address token, address settlement, address merchant, uint256 amount, bytes32 requestHash);
        function revoke(bytes32 id);
        function revokeAll();
        function setPaused(bytes32 id, bool paused);
        function revokeWithSignature(address account, bytes32 id, bytes ownerSignature);
        function setPausedWithSignature(address account, bytes32 id, bool paused, uint32 nonce, bytes ownerSignature);
        function ownerOf(address account) view returns (address);
        function sessionEpoch(address account) view returns (uint32);
        function sessionState(address account, bytes32 id) view returns (uint8 status, bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent, uint24 paymentsInPeriod);
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

    pub(crate) fn pay(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let (dest, value, func) = self.calls(merchant, amount, request);
        batch(dest, value, func)
    }

    /// An owner payment, as the SDK builds it for Biconomy: `executeBatch_y6U([approve, settle])`.
    pub(crate) fn owner_payment(&self, merchant: Address, amount: u128, request: u64) -> Bytes {
        let (d, v, f) = self.calls(merchant, amount, request);
        batch(d[..2].to_vec(), v[..2].to_vec(), f[..2].to_vec())
    }

    /// A session op of `self.account`.
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

    /// The packed session signature in Biconomy's envelope `abi.encode(bytes, module)`.
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
        op.signature = envelope(&op.signature, self.module);
        Ok(())
    }

    /// An owner op: the ECDSA module's rule, EIP-191 over the userOpHash, in the envelope.
    pub(crate) fn owner_op_for(
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

    pub(crate) fn sign_owner(&self, op: &mut UserOperation) -> anyhow::Result<()> {
        let sig = ops::personal_sign(&self.owner, ops::user_op_hash(op))?;
        op.signature = envelope(&sig, self.ecdsa);
        Ok(())
    }

    /// An owner op calling the session module through `execute_ncC` (msg.sender = the account).
    pub(crate) fn control_op(&mut self, data: Vec<u8>) -> anyhow::Result<UserOperation> {
        let execute = IBiconomyAccount::execute_ncCCall {
            dest: self.module,
            value: U256::ZERO,
            func: data.into(),
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
    ) -> anyhow::Result<IBiconomySessionModule::sessionStateReturn> {
        let (m, account, id) = (self.module, self.account, self.id(grant));
        Ok(self.chain.view(m, IBiconomySessionModule::sessionStateCall { account, id })?)
    }

    pub(crate) fn tokens_of(&mut self, who: Address) -> anyhow::Result<U256> {
        Ok(self.chain.token_balance(who)?)
    }

    /// Pays 1 USDT (request `request`) with the grant enabled by this op, asserting it lands.
    pub(crate) fn enable(&mut self, grant: &Grant, request: u64) -> anyhow::Result<()> {
        let nonce = self.nonce(self.account)?;
        let data = self.pay(MERCHANT, USD, request);
        let op = self.session_op(grant, true, data, GasFields::default(), nonce)?;
        let out = self.submit(vec![op])?;
        anyhow::ensure!(out.success, "enable: {:?}", out.revert_reason());
        anyhow::ensure!(execution_reverts(&out).is_empty(), "{:?}", execution_reverts(&out));
        Ok(())
    }

    /// One self-paid session payment of 1 USDT.
    fn pay_once(&mut self, grant: &Grant, request: u64) -> anyhow::Result<Outcome> {
        let nonce = self.nonce(self.account)?;
        let data = self.pay(MERCHANT, USD, request);
        let op = self.session_op(grant, false, data, GasFields::default(), nonce)?;
        self.submit(vec![op])
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

#[test]
fn a_session_pays_within_its_grant_on_biconomy() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let (m, account) = (bx.module, bx.account);
    let owner = bx.chain.view(m, IBiconomySessionModule::ownerOfCall { account })?;
    assert_eq!(owner, bx.owner.address());
    let grant = bx.grant();
    bx.enable(&grant, 1001)?;
    for n in 2..=4u64 {
        let nonce = bx.nonce(account)?;
        let data = bx.pay(MERCHANT, 5 * USD, n);
        let op = bx.session_op(&grant, false, data, GasFields::default(), nonce)?;
        let out = bx.submit(vec![op])?;
        assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
    }
    assert_eq!(bx.tokens_of(MERCHANT)?, U256::from(16 * USD));
    let s = bx.state(&grant)?;
    assert_eq!(s.status, 1);
    assert_eq!(s.periodSpent.to::<u128>(), 16 * USD);
    assert_eq!(s.lifetimeSpent.to::<u128>(), 16 * USD);
    assert_eq!(s.paymentsInPeriod.to::<u32>(), 4);
    // 16 + 5 > 20: the period cap holds
    let nonce = bx.nonce(account)?;
    let data = bx.pay(MERCHANT, 5 * USD, 5);
    let op = bx.session_op(&grant, false, data, GasFields::default(), nonce)?;
    let out = bx.submit(vec![op])?;
    assert!(refused_with(&out, "session: over period cap"), "{:?}", out.revert_reason());
    // ERC-1271 is never valid through this module, asked directly or through the account
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
    f[2] = call(IBiconomySessionModule::revokeAllCall {});
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

/// A grant signed for one Biconomy account (or chain) enables nothing on another, even with the same
/// owner and the module installed there.
#[test]
fn biconomy_grants_do_not_replay_across_accounts_or_chains() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let grant = bx.grant();
    bx.enable(&grant, 1003)?;
    let other = bx.create_account(U256::from(1))?;
    bx.fund(other)?;
    assert!(bx.install(other)?.success);

    // the enabling signature of account 1 copied onto an op of account 2
    let nonce = bx.nonce(other)?;
    let mut op = ops::unsigned_op(other, nonce, bx.pay(MERCHANT, USD, 40), GasFields::default());
    let id1 = bx.id(&grant);
    op.signature = envelope(
        &raw_session_sig(&bx.chain, &bx.session_key, &bx.owner, &op, &grant, other, Some(id1))?,
        bx.module,
    );
    let out = bx.submit(vec![op])?;
    assert!(refused_with(&out, "session: bad owner signature"), "{:?}", out.revert_reason());
    // use mode on account 2 (the grant was never enabled there)
    let data = bx.pay(MERCHANT, USD, 41);
    let op = bx.session_op_for(other, &grant, false, data, GasFields::default(), nonce)?;
    let out = bx.submit(vec![op])?;
    assert!(refused_with(&out, "session: not enabled"), "{:?}", out.revert_reason());

    // the owner's signature over the grant in chain 1's domain
    let domain = eip712_domain! {
        name: "X402SessionAccount", version: "1", chain_id: 1, verifying_contract: other,
    };
    let other_chain_id = grant.v2().eip712_signing_hash(&domain);
    let mut op = ops::unsigned_op(other, nonce, bx.pay(MERCHANT, USD, 42), GasFields::default());
    op.signature = envelope(
        &raw_session_sig(
            &bx.chain,
            &bx.session_key,
            &bx.owner,
            &op,
            &grant,
            other,
            Some(other_chain_id),
        )?,
        bx.module,
    );
    let out = bx.submit(vec![op])?;
    assert!(refused_with(&out, "session: bad owner signature"), "{:?}", out.revert_reason());
    Ok(())
}

/// Several payments of one session in one bundle each pass validation against the same state; only
/// the last validated executes, so a bundle never pays past the cap.
#[test]
fn biconomy_bundle_of_payments_cannot_pass_the_cap() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let grant = bx.grant();
    bx.enable(&grant, 1004)?; // 1 paid
    let nonce = bx.nonce(bx.account)?;
    let mut bundle = Vec::new();
    for i in 0..6u64 {
        let data = bx.pay(MERCHANT, 5 * USD, 50 + i);
        let op = bx.session_op(&grant, false, data, GasFields::default(), nonce + U256::from(i))?;
        bundle.push(op);
    }
    let out = bx.submit(bundle)?;
    assert!(out.success, "{:?}", out.revert_reason());
    let reverts = execution_reverts(&out);
    assert_eq!(reverts.len(), 5, "{reverts:?}");
    assert!(reverts.iter().all(|r| r == "account: op was not the last validated"), "{reverts:?}");
    assert_eq!(bx.tokens_of(MERCHANT)?, U256::from(6 * USD));
    assert_eq!(bx.state(&grant)?.periodSpent.to::<u128>(), 6 * USD);
    Ok(())
}

/// The key holder as bundler and beneficiary, with ops certain to revert in execution (a reused
/// requestHash; several ops in one bundle) and gas fields maxed out: what leaves the account is
/// bounded by the gas budget, then the budget refuses.
#[test]
fn biconomy_gas_is_no_spending_channel() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let gas = GasFields {
        call_gas: 150_000,
        verification_gas: 300_000,
        pre_verification_gas: 1_000_000,
        max_fee: 10_000_000_000,
        max_priority_fee: 10_000_000_000,
    };
    let per_op = gas.prefund().to::<u128>();
    let mut grant = bx.grant();
    grant.max_gas_cost_per_op = per_op;
    grant.gas_period_budget = 4 * per_op;
    grant.gas_lifetime_budget = 4 * per_op;
    let thief = bx.session_key.address();
    let account = bx.account;
    let before = bx.chain.balance(account) + bx.chain.deposit(account)?;
    let mut refused = None;
    for i in 0..10u64 {
        let nonce = bx.nonce(account)?;
        // request 1 again after the first: settle reverts AlreadySettled in execution
        let first = bx.session_op(&grant, i == 0, bx.pay(MERCHANT, USD, 1), gas, nonce)?;
        let second =
            bx.session_op(&grant, false, bx.pay(MERCHANT, USD, 1), gas, nonce + U256::from(1))?;
        let out = bx.chain.handle_ops(vec![first, second], thief, thief)?;
        if !out.success {
            refused = out.revert_reason();
            break;
        }
    }
    let out = before - bx.chain.balance(account) - bx.chain.deposit(account)?;
    assert!(out <= U256::from(grant.gas_lifetime_budget), "{out} wei left the account");
    let r = refused.unwrap_or_default();
    assert!(r.contains("session: over gas"), "{r}");
    assert_eq!(bx.tokens_of(MERCHANT)?, U256::from(USD), "one payment landed");
    Ok(())
}

/// Revoke, revoke-all, pause (owner ops and relayed signatures), expiry, and a revoke-all by an owner
/// op earlier in the same bundle.
#[test]
fn biconomy_revoked_paused_and_expired_sessions_cannot_pay() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let m = bx.module;
    let account = bx.account;
    let mut grant = bx.grant();
    bx.enable(&grant, 1005)?;
    let id = bx.id(&grant);

    // pause by relayed signature, then resume by owner op
    let msg = SetSessionPaused { sessionId: id, paused: true, nonce: 0 };
    let sig = ops::sign_hash(&bx.owner, ops::control_digest(account, &msg))?;
    let relay = IBiconomySessionModule::setPausedWithSignatureCall {
        account,
        id,
        paused: true,
        nonce: 0,
        ownerSignature: sig.into(),
    };
    bx.chain.must(ADMIN, m, U256::ZERO, relay.abi_encode())?;
    let out = bx.pay_once(&grant, 60)?;
    assert!(refused_with(&out, "session: paused"), "{:?}", out.revert_reason());
    let op =
        bx.control_op(IBiconomySessionModule::setPausedCall { id, paused: false }.abi_encode())?;
    assert!(bx.submit(vec![op])?.success);
    assert!(bx.pay_once(&grant, 61)?.success, "resumed");

    // revoke-all by an owner op earlier in the same bundle as a payment
    let op = bx.control_op(IBiconomySessionModule::revokeAllCall {}.abi_encode())?;
    let nonce = op.nonce + U256::from(1);
    let payment =
        bx.session_op(&grant, false, bx.pay(MERCHANT, USD, 62), GasFields::default(), nonce)?;
    let paid = bx.tokens_of(MERCHANT)?;
    let out = bx.submit(vec![op, payment])?;
    assert!(out.success, "{:?}", out.revert_reason());
    assert_eq!(execution_reverts(&out), vec!["session: revoked (all sessions)".to_owned()]);
    assert_eq!(bx.tokens_of(MERCHANT)?, paid, "the revoked session did not pay");
    assert_eq!(bx.chain.view(m, IBiconomySessionModule::sessionEpochCall { account })?, 1);
    let out = bx.pay_once(&grant, 63)?;
    assert!(refused_with(&out, "session: revoked (all sessions)"), "{:?}", out.revert_reason());

    // a fresh grant under epoch 1; revoked by owner op; another revoked by relayed signature
    grant.epoch = 1;
    bx.enable(&grant, 1006)?;
    let id = bx.id(&grant);
    let op = bx.control_op(IBiconomySessionModule::revokeCall { id }.abi_encode())?;
    assert!(bx.submit(vec![op])?.success);
    let out = bx.pay_once(&grant, 64)?;
    assert!(refused_with(&out, "session: revoked"), "{:?}", out.revert_reason());
    grant.salt = B256::repeat_byte(0xbb);
    bx.enable(&grant, 1007)?;
    let id = bx.id(&grant);
    let sig =
        ops::sign_hash(&bx.owner, ops::control_digest(account, &RevokeSession { sessionId: id }))?;
    let relay =
        IBiconomySessionModule::revokeWithSignatureCall { account, id, ownerSignature: sig.into() };
    bx.chain.must(ADMIN, m, U256::ZERO, relay.abi_encode())?;
    let out = bx.pay_once(&grant, 65)?;
    assert!(refused_with(&out, "session: revoked"), "{:?}", out.revert_reason());

    // expired: the EntryPoint enforces the window the module returns
    grant.salt = B256::repeat_byte(0xcc);
    bx.enable(&grant, 1008)?;
    bx.chain.set_time(grant.valid_until + 1);
    let out = bx.pay_once(&grant, 66)?;
    assert_eq!(out.revert_reason().unwrap_or_default(), "AA22 expired or not due");
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
    assert!(bx.pay_once(&grant, 82)?.success, "a session enabled before keeps paying");

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
    let out = bx.pay_once(&grant, 83)?;
    assert_eq!(out.revert_reason().unwrap_or_default(), REVERTED_NO_REASON);
    Ok(())
}

/// ERC-7562 (unstaked sender): the Biconomy account's validateUserOp frame, including the session
/// module, its call back into the account and the ECDSA module's owner registry, touches only storage
/// associated with the account.
#[test]
fn biconomy_session_ops_pass_the_erc7562_checker() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    bx.chain.evm.inspector.erc7562_sender = Some(bx.account);
    let mut grant = bx.grant();
    grant.max_payments_per_period = 10;
    grant.merchant_period_cap = 3 * USD;
    grant.merchant_root = keccak256(MERCHANT.as_slice());
    let mut kinds = 0;
    for (n, (enable, sponsor)) in
        [(true, false), (false, false), (false, true)].into_iter().enumerate()
    {
        let nonce = bx.nonce(bx.account)?;
        let data = bx.pay(MERCHANT, USD / 2, 70 + n as u64);
        let mut op = ops::unsigned_op(bx.account, nonce, data, GasFields::default());
        if sponsor {
            ops::sponsor(&mut bx.chain, &mut op)?;
        }
        bx.sign_session(&mut op, &grant, enable)?;
        let out = bx.submit(vec![op])?;
        assert!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
        kinds += 1;
    }
    let op = bx.control_op(IBiconomySessionModule::revokeAllCall {}.abi_encode())?;
    assert!(bx.submit(vec![op])?.success);
    kinds += 1;
    let probe = &bx.chain.evm.inspector;
    assert_eq!(probe.frames_checked, kinds, "every op's validateUserOp frame was traced");
    assert!(probe.violations.is_empty(), "ERC-7562 violations: {:#?}", probe.violations);
    Ok(())
}

/// Gas of one-op `handleOps` bundles, sponsored as in `make bench`: a Biconomy owner payment
/// (`executeBatch_y6U([approve, settle])`, ECDSA module) against a Biconomy session payment (our
/// module, the three-call batch), both in steady state (third payment). Reported, not asserted.
#[test]
fn biconomy_gas_owner_vs_session_payment() -> anyhow::Result<()> {
    let mut bx = Bx::new()?;
    let account = bx.account;
    let mut owner_gas = 0;
    for n in 0..3u64 {
        let nonce = bx.nonce(account)?;
        let data = bx.owner_payment(MERCHANT, USD / 100, 100 + n);
        let mut op = ops::unsigned_op(account, nonce, data, GasFields::default());
        ops::sponsor(&mut bx.chain, &mut op)?;
        bx.sign_owner(&mut op)?;
        let out = bx.submit(vec![op])?;
        anyhow::ensure!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
        owner_gas = out.gas_used;
    }
    let mut grant = bx.grant();
    grant.paymaster = bx.chain.addrs.paymaster;
    grant.gas_lifetime_budget = 0;
    grant.gas_period_budget = 0;
    grant.max_gas_cost_per_op = 0;
    grant.merchant_root = keccak256(MERCHANT.as_slice());
    let mut session = Vec::new();
    for n in 0..3u64 {
        let nonce = bx.nonce(account)?;
        let data = bx.pay(MERCHANT, USD / 100, 200 + n);
        let mut op = ops::unsigned_op(account, nonce, data, GasFields::default());
        ops::sponsor(&mut bx.chain, &mut op)?;
        bx.sign_session(&mut op, &grant, n == 0)?;
        let out = bx.submit(vec![op])?;
        anyhow::ensure!(out.success && execution_reverts(&out).is_empty(), "{out:?}");
        session.push(out.gas_used);
    }
    let ratio = session[2] as f64 / owner_gas as f64;
    #[allow(clippy::print_stdout)]
    {
        println!("handleOps gas, one-op bundle, sponsored, Biconomy Smart Account v2:");
        println!("  owner payment (ECDSA module, 2 calls)  {owner_gas}");
        println!(
            "  session first (enable)                 {}  ratio {:.3}",
            session[0],
            session[0] as f64 / owner_gas as f64
        );
        println!(
            "  session steady (our module, 3 calls)   {}  ratio {ratio:.3} (goal <= 1.15)",
            session[2]
        );
    }
    assert!(session[2] > owner_gas, "a session payment does strictly more work");
    Ok(())
}
