//! An in-process chain: revm over an in-memory database holding the canonical EntryPoint v0.6 stack
//! (deployed through the CREATE2 deployer, exactly as on a real chain) and our contracts.
//!
//! Transactions run with a zero base fee and zero gas price, so the bundler's own balance never
//! moves and every native-value change of an account is the EntryPoint's doing.

use alloy::{
    primitives::{Address, B256, Bytes, Log, TxKind, U256, address, b256, keccak256},
    sol_types::{SolCall, SolValue},
};
use revm::{
    Context, ExecuteCommitEvm, ExecuteEvm, InspectCommitEvm, MainBuilder, MainContext,
    context::{BlockEnv, CfgEnv, Journal, TxEnv, result::ExecutionResult},
    database::{CacheDB, EmptyDB},
    handler::MainnetEvm,
    primitives::hardfork::SpecId,
    state::{AccountInfo, Bytecode},
};

use crate::{
    Error, Result,
    abi::{IEntryPoint, IFactory, ISettlement, IToken, IVerifyingPaymaster},
    artifacts::{Artifacts, ProjectArtifacts},
    probe::Probe,
};

/// The chain's whole state: in memory over an empty database, so [`Chain::snapshot`] is a clone
/// and nothing is read from disk or network.
pub type Db = CacheDB<EmptyDB>;
type Ctx = Context<BlockEnv, TxEnv, CfgEnv, Db, Journal<Db>, ()>;

/// The CREATE2 deployer (Arachnid's "deterministic deployment proxy") every EVM chain has at this
/// address; its runtime code is fixed.
pub const CREATE2_DEPLOYER: Address = address!("4e59b44847b379578588920ca78fbf26c0b4956c");
const CREATE2_DEPLOYER_CODE: &str = "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe03601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3";
/// EntryPoint v0.6's canonical address; [`Chain::deploy`] fails unless the npm bytecode lands
/// here through [`CREATE2_DEPLOYER`] with salt 0, as on every real chain.
pub const ENTRY_POINT: Address = address!("5FF137D4b0FDCD49DcA30c7CF57E578a026d2789");
/// The canonical v0.6 SimpleAccountFactory (constructor argument [`ENTRY_POINT`], salt 0).
pub const SIMPLE_ACCOUNT_FACTORY: Address = address!("9406Cc6185a346906296840746125a0E44976454");
/// anvil's chain id, so grant and userOpHash digests equal the devnet's for the same inputs.
pub const CHAIN_ID: u64 = 31_337;
/// Who deploys and administers the test contracts (token owner, settlement owner).
pub const ADMIN: Address = address!("00000000000000000000000000000000000a0001");
/// Starting block time: a round number so periods are easy to read in a printed sequence.
pub const GENESIS_TIME: u64 = 1_700_000_000;

/// Addresses of the deployed stack.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// Always [`ENTRY_POINT`].
    pub entry_point: Address,
    /// Always [`SIMPLE_ACCOUNT_FACTORY`].
    pub simple_account_factory: Address,
    /// Our `SessionKeyAccountFactory`, from the project artifacts.
    pub session_account_factory: Address,
    /// `TestStablecoin` (6 decimals, [`ADMIN`] mints), already allowed by the settlement.
    pub token: Address,
    /// `SettlementContract`, owned by [`ADMIN`].
    pub settlement: Address,
    /// The npm `VerifyingPaymaster`, signing key [`Chain::paymaster_signer`], with a deposit of
    /// 10^24 wei in the EntryPoint.
    pub paymaster: Address,
}

/// One transaction's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Whether the top-level call succeeded. `handleOps` succeeds even when an op's execution
    /// reverts: look for `UserOperationEvent.success` in [`Outcome::logs`].
    pub success: bool,
    /// Gas the whole transaction used, intrinsic gas included (what the gas tables report).
    pub gas_used: u64,
    /// Return data on success, revert data on a revert, `halt: <reason>` as text on a halt.
    pub output: Bytes,
    /// The transaction's logs (for `handleOps`: `UserOperationEvent`,
    /// `UserOperationRevertReason`, the token's and settlement's events).
    pub logs: Vec<Log>,
}

impl Outcome {
    /// The revert reason: `FailedOp(i, reason)` from the EntryPoint, `Error(string)`, or hex.
    pub fn revert_reason(&self) -> Option<String> {
        if self.success {
            return None;
        }
        if let Ok(e) = IEntryPoint::FailedOp::abi_decode(&self.output) {
            return Some(e.reason);
        }
        if let Ok(s) = alloy::sol_types::Revert::abi_decode(&self.output) {
            return Some(s.reason);
        }
        Some(format!("0x{}", alloy::hex::encode(&self.output)))
    }
}

use alloy::sol_types::SolError;

/// The in-process chain with the stack deployed ([`Chain::deploy`]): send transactions, read views,
/// move the clock, and inspect or rewrite state the way a test needs.
pub struct Chain {
    /// The revm instance; its inspector is the [`Probe`], inactive until a test configures it.
    pub evm: MainnetEvm<Ctx, Probe>,
    /// Where the stack landed.
    pub addrs: Addresses,
    /// Signer of the VerifyingPaymaster.
    pub paymaster_signer: alloy::signers::local::PrivateKeySigner,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl Chain {
    /// Deploys the EntryPoint v0.6 and SimpleAccountFactory at their canonical addresses through the
    /// CREATE2 deployer, the VerifyingPaymaster (funded), and our token, settlement contract and
    /// account factory from `project` artifacts.
    pub fn deploy(project: &ProjectArtifacts) -> Result<Self> {
        let npm = Artifacts::npm()?;
        let mut db = Db::new(EmptyDB::default());
        db.insert_account_info(
            CREATE2_DEPLOYER,
            AccountInfo::default().with_code(Bytecode::new_raw(Bytes::from(alloy::hex::decode(
                CREATE2_DEPLOYER_CODE,
            )?))),
        );
        db.insert_account_info(
            ADMIN,
            AccountInfo::default().with_balance(U256::from(10u128.pow(30))),
        );
        let ctx = Context::mainnet().with_db(db).modify_cfg_chained(|c: &mut CfgEnv| {
            c.set_spec_and_mainnet_gas_params(SpecId::PRAGUE);
            c.chain_id = CHAIN_ID;
            c.disable_nonce_check = true;
            c.limit_contract_code_size = Some(usize::MAX);
        });
        let ctx = ctx.modify_block_chained(|b: &mut BlockEnv| {
            b.timestamp = U256::from(GENESIS_TIME);
            b.number = U256::from(1);
            b.basefee = 0;
            b.gas_limit = 1_000_000_000;
        });
        let evm = ctx.build_mainnet_with_inspector(Probe::default());
        let paymaster_signer = alloy::signers::local::PrivateKeySigner::from_bytes(&b256!(
            "00000000000000000000000000000000000000000000000000000000000a0002"
        ))
        .map_err(|e| Error::Setup(e.to_string()))?;
        let mut chain = Self {
            evm,
            addrs: Addresses {
                entry_point: ENTRY_POINT,
                simple_account_factory: SIMPLE_ACCOUNT_FACTORY,
                session_account_factory: Address::ZERO,
                token: Address::ZERO,
                settlement: Address::ZERO,
                paymaster: Address::ZERO,
            },
            paymaster_signer,
        };

        let ep = chain.create2(B256::ZERO, npm.bytecode("EntryPoint")?)?;
        if ep != ENTRY_POINT {
            return Err(Error::Setup(format!("EntryPoint landed at {ep}")));
        }
        let mut init = npm.bytecode("SimpleAccountFactory")?.to_vec();
        init.extend(ENTRY_POINT.abi_encode());
        let f = chain.create2(B256::ZERO, init.into())?;
        if f != SIMPLE_ACCOUNT_FACTORY {
            return Err(Error::Setup(format!("SimpleAccountFactory landed at {f}")));
        }
        let mut init = npm.bytecode("VerifyingPaymaster")?.to_vec();
        init.extend((ENTRY_POINT, chain.paymaster_signer.address()).abi_encode_params());
        chain.addrs.paymaster = chain.create(init.into())?;
        let mut init = project.bytecode("TestStablecoin")?.to_vec();
        init.extend(ADMIN.abi_encode());
        chain.addrs.token = chain.create(init.into())?;
        let mut init = project.bytecode("SettlementContract")?.to_vec();
        init.extend(ADMIN.abi_encode());
        chain.addrs.settlement = chain.create(init.into())?;
        let mut init = project.bytecode("SessionKeyAccountFactory")?.to_vec();
        init.extend(ENTRY_POINT.abi_encode());
        chain.addrs.session_account_factory = chain.create(init.into())?;

        let a = chain.addrs;
        chain.must(
            ADMIN,
            a.settlement,
            U256::ZERO,
            ISettlement::setTokenAllowedCall { token: a.token, allowed: true }.abi_encode(),
        )?;
        chain.must(
            ADMIN,
            a.paymaster,
            U256::from(10u128.pow(24)),
            IVerifyingPaymaster::depositCall {}.abi_encode(),
        )?;
        Ok(chain)
    }

    pub(crate) fn create2(&mut self, salt: B256, init: Bytes) -> Result<Address> {
        let mut data = salt.to_vec();
        data.extend_from_slice(&init);
        let out = self.send(ADMIN, CREATE2_DEPLOYER, U256::ZERO, data, 30_000_000)?;
        if !out.success || out.output.len() != 20 {
            return Err(Error::Setup(format!("CREATE2 deploy failed: {:?}", out.revert_reason())));
        }
        Ok(Address::from_slice(&out.output))
    }

    pub(crate) fn create(&mut self, init: Bytes) -> Result<Address> {
        let nonce = self.nonce(ADMIN);
        let tx = self.tx(ADMIN, TxKind::Create, U256::ZERO, init, 30_000_000);
        let res = self.evm.transact_commit(tx).map_err(|e| Error::Evm(format!("{e:?}")))?;
        self.bump_nonce(ADMIN, nonce);
        match res {
            ExecutionResult::Success { .. } => Ok(ADMIN.create(nonce)),
            other => Err(Error::Setup(format!("CREATE failed: {other:?}"))),
        }
    }

    fn nonce(&mut self, who: Address) -> u64 {
        self.evm
            .ctx
            .journaled_state
            .database
            .cache
            .accounts
            .get(&who)
            .and_then(|a| a.info())
            .map_or(0, |i| i.nonce)
    }

    fn bump_nonce(&mut self, who: Address, was: u64) {
        // nonce checks are off, but CREATE addresses follow the nonce: keep it moving as a chain would
        if let Some(acc) = self.evm.ctx.journaled_state.database.cache.accounts.get_mut(&who) {
            acc.info.nonce = was + 1;
        }
    }

    fn tx(
        &self,
        from: Address,
        to: TxKind,
        value: U256,
        data: impl Into<Bytes>,
        gas: u64,
    ) -> TxEnv {
        TxEnv {
            caller: from,
            kind: to,
            value,
            data: data.into(),
            gas_limit: gas,
            gas_price: 0,
            chain_id: Some(CHAIN_ID),
            ..Default::default()
        }
    }

    /// Sends and commits a transaction.
    pub fn send(
        &mut self,
        from: Address,
        to: Address,
        value: U256,
        data: impl Into<Bytes>,
        gas: u64,
    ) -> Result<Outcome> {
        let tx = self.tx(from, TxKind::Call(to), value, data, gas);
        let res = if self.evm.inspector.active() {
            self.evm.inspect_tx_commit(tx)
        } else {
            self.evm.transact_commit(tx)
        }
        .map_err(|e| Error::Evm(format!("{e:?}")))?;
        Ok(outcome(res))
    }

    /// Like [`Chain::send`], failing unless the transaction succeeds.
    pub fn must(
        &mut self,
        from: Address,
        to: Address,
        value: U256,
        data: impl Into<Bytes>,
    ) -> Result<Outcome> {
        let out = self.send(from, to, value, data, 10_000_000)?;
        if !out.success {
            return Err(Error::Reverted(out.revert_reason().unwrap_or_default()));
        }
        Ok(out)
    }

    /// Runs a call without committing anything (an `eth_call`).
    pub fn call(&mut self, to: Address, data: impl Into<Bytes>) -> Result<Outcome> {
        let tx = self.tx(ADMIN, TxKind::Call(to), U256::ZERO, data, 30_000_000);
        let res = self.evm.transact(tx).map_err(|e| Error::Evm(format!("{e:?}")))?;
        Ok(outcome(res.result))
    }

    /// Calls a view and decodes its return value.
    pub fn view<C: SolCall>(&mut self, to: Address, call: C) -> Result<C::Return> {
        let out = self.call(to, call.abi_encode())?;
        if !out.success {
            return Err(Error::Reverted(out.revert_reason().unwrap_or_default()));
        }
        C::abi_decode_returns(&out.output).map_err(|e| Error::Decode(e.to_string()))
    }

    /// `handleOps(ops, beneficiary)` sent by `bundler`.
    pub fn handle_ops(
        &mut self,
        ops: Vec<IEntryPoint::UserOperation>,
        beneficiary: Address,
        bundler: Address,
    ) -> Result<Outcome> {
        let data = IEntryPoint::handleOpsCall { ops, beneficiary }.abi_encode();
        self.send(bundler, ENTRY_POINT, U256::ZERO, data, 30_000_000)
    }

    /// The block timestamp (unix s) the next transaction sees.
    pub fn time(&self) -> u64 {
        self.evm.ctx.block.timestamp.to()
    }

    /// Moves the clock to `t` (unix s, any direction) and advances the block number by one, so
    /// the next transaction runs in a new block.
    pub fn set_time(&mut self, t: u64) {
        self.evm.ctx.block.timestamp = U256::from(t);
        self.evm.ctx.block.number += U256::from(1);
    }

    /// Native balance of `who` in wei (0 for an account never touched).
    pub fn balance(&mut self, who: Address) -> U256 {
        self.evm
            .ctx
            .journaled_state
            .database
            .cache
            .accounts
            .get(&who)
            .and_then(|a| a.info())
            .map_or(U256::ZERO, |i| i.balance)
    }

    /// Sets the native balance of `who` (wei), e.g. to let an account pay its own prefund.
    pub fn set_balance(&mut self, who: Address, balance: U256) {
        let db = &mut self.evm.ctx.journaled_state.database;
        let mut info = db.cache.accounts.get(&who).and_then(|a| a.info()).unwrap_or_default();
        info.balance = balance;
        db.insert_account_info(who, info);
    }

    /// The EntryPoint deposit of `who`.
    pub fn deposit(&mut self, who: Address) -> Result<U256> {
        self.view(ENTRY_POINT, IEntryPoint::balanceOfCall { account: who })
    }

    /// `who`'s balance of the test token ([`Addresses::token`]), in atomic units (6 decimals).
    pub fn token_balance(&mut self, who: Address) -> Result<U256> {
        let token = self.addrs.token;
        self.view(token, IToken::balanceOfCall { account: who })
    }

    /// Mints `amount` atomic units of the test token to `to`, as [`ADMIN`] (the token's owner).
    pub fn mint(&mut self, to: Address, amount: U256) -> Result<()> {
        let token = self.addrs.token;
        self.must(ADMIN, token, U256::ZERO, IToken::mintCall { to, amount }.abi_encode())?;
        Ok(())
    }

    /// A session-key account for `owner` through our factory (deployed now, not counterfactually).
    pub fn create_session_account(&mut self, owner: Address, salt: U256) -> Result<Address> {
        let f = self.addrs.session_account_factory;
        self.must(ADMIN, f, U256::ZERO, IFactory::createAccountCall { owner, salt }.abi_encode())?;
        self.view(f, IFactory::getAddressCall { owner, salt })
    }

    /// A canonical SimpleAccount v0.6 for `owner`.
    pub fn create_simple_account(&mut self, owner: Address, salt: U256) -> Result<Address> {
        let f = SIMPLE_ACCOUNT_FACTORY;
        self.must(ADMIN, f, U256::ZERO, IFactory::createAccountCall { owner, salt }.abi_encode())?;
        self.view(f, IFactory::getAddressCall { owner, salt })
    }

    /// The whole state, to run many sequences from one deployment.
    pub fn snapshot(&self) -> Db {
        self.evm.ctx.journaled_state.database.clone()
    }

    /// Puts back a [`Chain::snapshot`] and sets the clock to `time` (unix s); the block number
    /// is left as it is.
    pub fn restore(&mut self, db: Db, time: u64) {
        self.evm.ctx.journaled_state.database = db;
        self.evm.ctx.block.timestamp = U256::from(time);
    }

    /// Places runtime code at an address (test doubles only; the stack itself is deployed for real).
    pub fn set_code(&mut self, at: Address, code: Bytes) {
        let db = &mut self.evm.ctx.journaled_state.database;
        let info = db.cache.accounts.get(&at).and_then(|a| a.info()).unwrap_or_default();
        db.insert_account_info(at, info.with_code(Bytecode::new_raw(code)));
    }

    /// Raw storage word of `who` at `slot`, from the cache only (0 when never written), to read a
    /// contract's packed state without a view.
    pub fn storage(&mut self, who: Address, slot: U256) -> U256 {
        self.evm
            .ctx
            .journaled_state
            .database
            .cache
            .accounts
            .get(&who)
            .and_then(|a| a.storage.get(&slot).copied())
            .unwrap_or_default()
    }
}

fn outcome(res: ExecutionResult) -> Outcome {
    let gas_used = res.tx_gas_used();
    match res {
        ExecutionResult::Success { logs, output, .. } => {
            Outcome { success: true, gas_used, output: output.into_data(), logs }
        }
        ExecutionResult::Revert { output, logs, .. } => {
            Outcome { success: false, gas_used, output, logs }
        }
        ExecutionResult::Halt { logs, reason, .. } => Outcome {
            success: false,
            gas_used,
            output: Bytes::from(format!("halt: {reason:?}").into_bytes()),
            logs,
        },
    }
}

/// `keccak256` helper re-exported for tests.
pub fn hash(data: &[u8]) -> B256 {
    keccak256(data)
}
