//! A throwaway anvil chain with the ERC-4337 v0.6 stack and the project's contracts deployed.
//!
//! Every integration test and the demo start one: [`Devnet::spawn`] launches anvil on a free
//! 127.0.0.1 port and deploys, all at deterministic addresses,
//! - EntryPoint v0.6 and SimpleAccountFactory v0.6 at their canonical mainnet addresses (same
//!   bytecode through the same CREATE2 deployer, no `anvil_setCode`), so hashes, initCode and
//!   bundler expectations match real chains;
//! - a VerifyingPaymaster with a 100 ETH EntryPoint deposit and a stake;
//! - `TestStablecoin`, `SettlementContract` (token allowed) and `SessionKeyAccountFactory`;
//! - `TestEip3009Token`, a USDC look-alike with EIP-3009 authorizations (EIP-712 domain
//!   "Devnet USD Coin", version "2") for x402's `exact` scheme;
//! - `KernelSessionValidator` (session keys for Kernel v2.4 accounts), deployed last;
//! - Kernel v2.4, its factory and ECDSAValidator at their canonical addresses ([`kernel`]).
//! - Safe 1.4.1, Safe4337Module v0.2.0 (canonical addresses) and `SafeSessionModule` (`safe.rs`).
//! - Biconomy Smart Account v2 ([`biconomy`]), in [`Devnet::biconomy`].
//!
//! The chain stops when the [`Devnet`] is dropped.

#![warn(missing_docs)]

pub mod biconomy;
mod deploy;
mod error;
pub mod kernel;
mod outcome;
mod safe;

use std::{path::PathBuf, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
    network::{EthereumWallet, TransactionBuilder},
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, Bytes, U256, aliases::U48, b256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::{Signer, local::PrivateKeySigner},
    sol_types::{SolCall, SolValue},
};
use x402_aa::{ENTRY_POINT_V06, UserOperation};
use x402_aa_contracts::{
    EntryPoint, SimpleAccountFactory, TestEip3009Token, TestStablecoin, VerifyingPaymaster,
};

pub use error::{Error, Result};
pub use outcome::{HandleOpsOutcome, Included};

/// Overrides the anvil binary (default: `node_modules/.bin/anvil`).
pub const ANVIL_ENV: &str = "ANVIL";

/// Anvil's default mnemonic ("test test ... junk") accounts 3..=9: well-known public test keys,
/// so addresses in logs are the ones every anvil user recognises.
const SPARE_KEYS: [B256; 7] = [
    b256!("0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"),
    b256!("0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"),
    b256!("0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"),
    b256!("0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"),
    b256!("0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"),
    b256!("0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"),
    b256!("0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"),
];

/// What anvil gives its own accounts; the spare keys get the same.
const ACCOUNT_BALANCE_ETH: u64 = 10_000;

/// Anvil's default chain id.
pub const DEFAULT_CHAIN_ID: u64 = 31337;

/// Where everything landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// EntryPoint v0.6 at its canonical address.
    pub entry_point: Address,
    /// The canonical SimpleAccountFactory v0.6.
    pub simple_account_factory: Address,
    /// eth-infinitism's VerifyingPaymaster v0.6, deposited and signing with the paymaster key.
    pub verifying_paymaster: Address,
    /// Our `SettlementContract`, with [`Addresses::token`] allowed.
    pub settlement: Address,
    /// `TestStablecoin`: the 6-decimal USDT that aa-native payments move.
    pub token: Address,
    /// Our `SessionKeyAccountFactory`.
    pub session_account_factory: Address,
    /// `TestEip3009Token` (6-decimal `USDC` with `transferWithAuthorization`), for `exact`.
    pub eip3009_token: Address,
    /// `KernelSessionValidator` (session keys on Kernel v2.4 accounts), CREATE2 salt 0 with the
    /// canonical ECDSAValidator as constructor argument; installed per account with
    /// `setExecution(executeBatch.selector, 0, validator, 0, 0, "")`.
    pub kernel_session_validator: Address,
    /// `SafeSessionModule` (session keys on Safe 1.4.1 accounts), CREATE2 salt 0 with the EntryPoint
    /// and the canonical Safe4337Module v0.2.0 as constructor arguments; installed per Safe as an
    /// enabled module and its fallback handler (`x402_aa::accounts::safe::session`).
    pub safe_session_module: Address,
}

/// Funded keys (anvil's default mnemonic), each with one job so tests never race on a nonce.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Deploys and owns the project contracts and the paymaster; mints the token.
    pub deployer: PrivateKeySigner,
    /// Sends `handleOps` and receives the gas refunds (the beneficiary).
    pub bundler: PrivateKeySigner,
    /// The VerifyingPaymaster's off-chain `verifyingSigner`.
    pub paymaster_signer: PrivateKeySigner,
    /// Free for tests: account owners, merchants, attackers (anvil's default accounts 3..=9,
    /// funded with 10 000 ETH each).
    pub spare: Vec<PrivateKeySigner>,
}

/// Options for [`Devnet::builder`].
#[derive(Debug, Clone)]
pub struct DevnetBuilder {
    chain_id: u64,
    block_time: Option<f64>,
    anvil: Option<PathBuf>,
}

impl Default for DevnetBuilder {
    fn default() -> Self {
        Self { chain_id: DEFAULT_CHAIN_ID, block_time: None, anvil: None }
    }
}

impl DevnetBuilder {
    /// Another chain id than 31337 (grants and userOpHashes are bound to it).
    pub fn chain_id(mut self, chain_id: u64) -> Self {
        self.chain_id = chain_id;
        self
    }

    /// Mine on an interval instead of on every transaction (automine, the default). Sends then
    /// wait for the next block, so only use this to test timing behaviour.
    pub fn block_time(mut self, seconds: f64) -> Self {
        self.block_time = Some(seconds);
        self
    }

    /// Use this anvil binary instead of `$ANVIL` or `node_modules/.bin/anvil`.
    pub fn anvil_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.anvil = Some(path.into());
        self
    }

    /// Starts anvil and deploys everything.
    pub async fn spawn(self) -> Result<Devnet> {
        Devnet::spawn_with(self).await
    }
}

/// A running anvil with everything deployed. Dropping it kills anvil.
#[derive(Debug)]
pub struct Devnet {
    /// Where our contracts and the canonical ERC-4337 ones landed.
    pub addresses: Addresses,
    /// Biconomy Smart Account v2 and our Biconomy session module.
    pub biconomy: biconomy::BiconomyAddresses,
    /// Safe 1.4.1 + Safe4337Module v0.2.0, at their canonical addresses (`safe.rs`).
    pub safe: x402_aa::accounts::safe::SafeDeployment,
    /// The anvil keys, by role.
    pub keys: Keys,
    provider: DynProvider,
    chain_id: u64,
    rpc_url: String,
    /// Dropped with the devnet, which tells the hang watchdog (if any) to stand down.
    _watchdog: Option<Watchdog>,
    // Last so the provider is gone before the node is killed.
    _anvil: AnvilInstance,
}

/// Environment variable naming the most seconds a devnet may live before the process is
/// stopped as hung. `make test` sets it: a test waiting forever (say, for a receipt behind a
/// nonce gap) would otherwise hold CI until its overall timeout and name nothing.
pub const WATCHDOG_ENV: &str = "X402_AA_DEVNET_MAX_SECS";

/// Held by a devnet that [`WATCHDOG_ENV`] watches; dropping it stands the watchdog down.
#[derive(Debug)]
struct Watchdog {
    _alive: std::sync::mpsc::Sender<()>,
}

/// Starts the watchdog when [`WATCHDOG_ENV`] asks for one: a thread that, if the devnet
/// outlives the limit, names the test thread that spawned it, kills this process's children
/// (every devnet's anvil: exiting skips their `Drop`, and orphans would hold CI's pipes open)
/// and exits.
fn watchdog() -> Option<Watchdog> {
    let limit: u64 = std::env::var(WATCHDOG_ENV).ok()?.parse().ok()?;
    let (alive, dropped) = std::sync::mpsc::channel::<()>();
    let owner = std::thread::current().name().unwrap_or("<unnamed>").to_owned();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            dropped.recv_timeout(Duration::from_secs(limit))
        {
            // Straight to the stream: the test harness captures `eprintln!` of the test's
            // threads, and that buffer is lost when the process exits.
            let message = format!(
                "devnet watchdog: the devnet of `{owner}` is still alive after {limit} s \
                 ({WATCHDOG_ENV}); the test hangs, stopping the process\n"
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
            kill_children();
            std::process::exit(101);
        }
    });
    Some(Watchdog { _alive: alive })
}

/// SIGKILLs every child of this process (found in `/proc`), through the shell's `kill`.
fn kill_children() {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    let children: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after its last ')'.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid == me).then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect();
    if !children.is_empty() {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("kill -9 {}", children.join(" ")))
            .status();
    }
}

impl Devnet {
    /// Automining anvil with chain id 31337 and everything deployed.
    pub async fn spawn() -> Result<Self> {
        Self::builder().spawn().await
    }

    /// A devnet with other options ([`DevnetBuilder`]).
    pub fn builder() -> DevnetBuilder {
        DevnetBuilder::default()
    }

    async fn spawn_with(opts: DevnetBuilder) -> Result<Self> {
        let path = match opts.anvil {
            Some(path) => path,
            None => anvil_path()?,
        };
        if !path.is_file() {
            return Err(Error::AnvilNotFound { path });
        }
        let mut anvil = Anvil::at(path).host("127.0.0.1").port(0u16).chain_id(opts.chain_id);
        if let Some(block_time) = opts.block_time {
            anvil = anvil.block_time_f64(block_time);
        }
        let started = std::time::Instant::now();
        // Only the three role keys come from anvil's output: alloy re-derives every printed key
        // once per line it reads, which costs ~70 ms at anvil's default of ten accounts.
        // The last 128 blocks' states stay queryable (reads at a recent block); older ones are
        // dropped instead of kept by the hundred and then written to disk, which costs anvil CPU
        // on every block of a long run.
        let anvil = anvil.args(["--accounts", "3", "--prune-history", "128"]);
        // try_spawn reads anvil's stdout synchronously until it reports its port.
        let anvil = tokio::task::spawn_blocking(move || anvil.try_spawn()).await??;
        let watchdog = watchdog();

        let signers: Vec<PrivateKeySigner> =
            anvil.keys().iter().map(|k| PrivateKeySigner::from(k.clone())).collect();
        let [deployer, bundler, paymaster_signer] = signers.as_slice() else {
            return Err(Error::NotEnoughAccounts(signers.len()));
        };
        let spare = SPARE_KEYS
            .iter()
            .map(PrivateKeySigner::from_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(alloy::signers::Error::from)?;
        let keys = Keys {
            deployer: deployer.clone(),
            bundler: bundler.clone(),
            paymaster_signer: paymaster_signer.clone(),
            spare,
        };

        let mut wallet = EthereumWallet::new(keys.deployer.clone());
        for signer in [&keys.bundler, &keys.paymaster_signer].into_iter().chain(&keys.spare) {
            wallet.register_signer(signer.clone());
        }
        let rpc_url = anvil.endpoint();
        let provider =
            ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url()).erased();

        let balance = U256::from(ACCOUNT_BALANCE_ETH) * U256::from(10).pow(U256::from(18));
        for spare in &keys.spare {
            provider.anvil_set_balance(spare.address(), balance).await?;
        }
        let spawned = started.elapsed();

        let mut addresses = deploy::deploy_all(&provider, &keys).await?;
        kernel::deploy(&provider).await?;
        let biconomy = biconomy::deploy(&provider, &keys).await?;
        let safe = safe::deploy_safe(&provider, &keys, opts.chain_id).await?;
        addresses.safe_session_module = safe::deploy_session_module(&provider, &keys).await?;
        // The Safe singleton factory's presigned deployment pays 100 gwei, and anvil suggests gas
        // prices from recent tips: a few empty blocks bring `eth_gasPrice` back to the base fee, so
        // clients (and paymaster fee caps) see the devnet's real price.
        provider.anvil_mine(Some(5), None).await?;
        tracing::debug!(
            target: "x402_aa::devnet",
            %rpc_url, ?spawned, total = ?started.elapsed(), "devnet ready"
        );
        Ok(Self {
            addresses,
            biconomy,
            safe,
            keys,
            provider,
            chain_id: opts.chain_id,
            rpc_url,
            _watchdog: watchdog,
            _anvil: anvil,
        })
    }

    /// Provider whose wallet holds every funded key; the deployer signs unless `from` says
    /// otherwise.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// anvil's process id (the bench reads the node's CPU time from `/proc`).
    pub fn anvil_pid(&self) -> u32 {
        self._anvil.child().id()
    }

    /// anvil's HTTP endpoint.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The chain id anvil serves.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// `userOpHash` for this chain's EntryPoint.
    pub fn user_op_hash(&self, op: &UserOperation) -> B256 {
        op.hash(ENTRY_POINT_V06, self.chain_id)
    }

    /// SimpleAccount's (and SessionKeyAccount's owner path's) rule: the owner's EIP-191
    /// signature over the userOpHash. Sets `op.signature` and returns the hash.
    pub async fn sign_as_owner(
        &self,
        op: &mut UserOperation,
        owner: &PrivateKeySigner,
    ) -> Result<B256> {
        let hash = self.user_op_hash(op);
        op.signature = owner.sign_message(hash.as_slice()).await?.as_bytes().into();
        Ok(hash)
    }

    /// Sends a transaction and waits for its receipt in one round trip
    /// (`eth_sendTransactionSync`), failing if it reverted.
    pub async fn send(&self, what: &str, tx: TransactionRequest) -> Result<TransactionReceipt> {
        deploy::send(&self.provider, what, tx).await
    }

    /// Mints `TestStablecoin` (6 decimals) to `to`.
    pub async fn mint(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        let call = TestStablecoin::mintCall { to, amount };
        let tx = TransactionRequest::default()
            .with_from(self.keys.deployer.address())
            .with_to(self.addresses.token)
            .with_input(call.abi_encode());
        self.send("TestStablecoin.mint", tx).await
    }

    /// `TestStablecoin.balanceOf`.
    pub async fn token_balance(&self, owner: Address) -> Result<U256> {
        Ok(TestStablecoin::new(self.addresses.token, &self.provider)
            .balanceOf(owner)
            .call()
            .await?)
    }

    /// Mints `TestEip3009Token` (6 decimals) to `to`.
    pub async fn mint_eip3009(&self, to: Address, amount: U256) -> Result<TransactionReceipt> {
        let call = TestEip3009Token::mintCall { to, amount };
        let tx = TransactionRequest::default()
            .with_from(self.keys.deployer.address())
            .with_to(self.addresses.eip3009_token)
            .with_input(call.abi_encode());
        self.send("TestEip3009Token.mint", tx).await
    }

    /// `TestEip3009Token.balanceOf`.
    pub async fn eip3009_balance(&self, owner: Address) -> Result<U256> {
        Ok(TestEip3009Token::new(self.addresses.eip3009_token, &self.provider)
            .balanceOf(owner)
            .call()
            .await?)
    }

    /// `paymasterAndData` for the devnet's VerifyingPaymaster v0.6:
    /// `paymaster ‖ abi.encode(uint48 validUntil, uint48 validAfter) ‖ signature`, where the
    /// signature is the paymaster signer's EIP-191 signature over
    /// `VerifyingPaymaster.getHash(op, validUntil, validAfter)`.
    ///
    /// The hash covers the op's raw calldata up to `paymasterAndData`, including the offset of
    /// `signature`, which depends on `paymasterAndData`'s length; so the view is queried with a
    /// zero signature of the final length in place. It also covers the paymaster's per-sender
    /// nonce, so sign ops of one sender in bundle order and only after earlier ones landed.
    pub async fn paymaster_and_data(
        &self,
        op: &UserOperation,
        valid_until: u64,
        valid_after: u64,
    ) -> Result<Bytes> {
        let until =
            U48::try_from(valid_until).map_err(|_| Error::TimestampOutOfRange(valid_until))?;
        let after =
            U48::try_from(valid_after).map_err(|_| Error::TimestampOutOfRange(valid_after))?;
        let mut pnd = self.addresses.verifying_paymaster.to_vec();
        pnd.extend((until, after).abi_encode());
        let sig_start = pnd.len();
        pnd.extend([0u8; 65]);

        let mut probe = op.clone();
        probe.paymaster_and_data = pnd.clone().into();
        let hash = VerifyingPaymaster::new(self.addresses.verifying_paymaster, &self.provider)
            .getHash(probe.into(), until, after)
            .call()
            .await?;
        let sig = self.keys.paymaster_signer.sign_message(hash.as_slice()).await?;
        pnd[sig_start..].copy_from_slice(&sig.as_bytes());
        Ok(pnd.into())
    }

    /// Submits `ops` to `EntryPoint.handleOps` from the bundler key.
    ///
    /// Simulates first with `eth_call`: a validation failure reverts the whole bundle with
    /// `FailedOp`, returned as [`HandleOpsOutcome::FailedOp`] without sending anything.
    pub async fn handle_ops(
        &self,
        ops: &[UserOperation],
        beneficiary: Address,
    ) -> Result<HandleOpsOutcome> {
        let call =
            EntryPoint::handleOpsCall { ops: ops.iter().map(Into::into).collect(), beneficiary };
        let tx = TransactionRequest::default()
            .with_from(self.keys.bundler.address())
            .with_to(ENTRY_POINT_V06)
            .with_input(call.abi_encode())
            .with_gas_limit(bundle_gas_limit(ops));

        if let Err(err) = self.provider.call(tx.clone()).await {
            let Some(payload) = err.as_error_resp() else { return Err(err.into()) };
            return match payload.as_decoded_interface_error::<EntryPoint::EntryPointErrors>() {
                Some(EntryPoint::EntryPointErrors::FailedOp(failed)) => {
                    Ok(HandleOpsOutcome::FailedOp(failed))
                }
                _ => Err(Error::HandleOpsReverted {
                    message: payload.message.to_string(),
                    revert_data: payload.as_revert_data(),
                }),
            };
        }
        let receipt = self.send("EntryPoint.handleOps", tx).await?;
        Ok(HandleOpsOutcome::Included(Box::new(Included::from_receipt(receipt))))
    }

    /// `EntryPoint.getNonce(sender, key)`.
    pub async fn entry_point_nonce(
        &self,
        sender: Address,
        key: alloy::primitives::aliases::U192,
    ) -> Result<U256> {
        Ok(EntryPoint::new(ENTRY_POINT_V06, &self.provider).getNonce(sender, key).call().await?)
    }

    /// Moves the chain clock forward and mines a block so the new time is observable.
    pub async fn increase_time(&self, seconds: u64) -> Result<()> {
        self.provider.anvil_increase_time(seconds).await?;
        self.provider.evm_mine(None).await?;
        Ok(())
    }

    /// Timestamp of the latest block.
    pub async fn block_timestamp(&self) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await?
            .ok_or(Error::NoLatestBlock)?;
        Ok(block.header.timestamp)
    }

    /// Counterfactual SimpleAccount address for `(owner, salt)` from the canonical factory.
    pub async fn simple_account_address(&self, owner: Address, salt: U256) -> Result<Address> {
        Ok(SimpleAccountFactory::new(self.addresses.simple_account_factory, &self.provider)
            .getAddress(owner, salt)
            .call()
            .await?)
    }

    /// Deploys the SimpleAccount for `(owner, salt)` directly (not through an op).
    pub async fn create_simple_account(&self, owner: Address, salt: U256) -> Result<Address> {
        let account = self.simple_account_address(owner, salt).await?;
        let tx = TransactionRequest::default()
            .with_from(self.keys.deployer.address())
            .with_to(self.addresses.simple_account_factory)
            .with_input(SimpleAccountFactory::createAccountCall { owner, salt }.abi_encode());
        self.send("SimpleAccountFactory.createAccount", tx).await?;
        Ok(account)
    }

    /// `initCode` deploying the SimpleAccount for `(owner, salt)` in an op's validation phase.
    pub fn simple_account_init_code(&self, owner: Address, salt: U256) -> Bytes {
        x402_aa::factory_init_code(self.addresses.simple_account_factory, owner, salt)
    }

    /// Sends `value` wei from the deployer.
    pub async fn fund(&self, to: Address, value: U256) -> Result<TransactionReceipt> {
        let tx = TransactionRequest::default()
            .with_from(self.keys.deployer.address())
            .with_to(to)
            .with_value(value);
        self.send("fund", tx).await
    }
}

/// Enough gas for the EntryPoint to honour every op's limits: each op may use its verification
/// limit up to three times (account, paymaster validation, postOp) plus its call limit, and the
/// EntryPoint needs some overhead per op and per bundle. Estimating instead is unsafe: a bundle
/// whose inner call runs out of gas still succeeds, so `eth_estimateGas` can undershoot.
fn bundle_gas_limit(ops: &[UserOperation]) -> u64 {
    let per_op = ops.iter().fold(U256::ZERO, |acc, op| {
        // Three verification limits even without a paymaster: innerHandleOp demands gasleft() ≥
        // callGas + verificationGas + 5000 *after* validation spent up to one verificationGas.
        acc + op.call_gas_limit
            + op.verification_gas_limit * U256::from(3)
            + op.pre_verification_gas
            + U256::from(60_000)
    });
    // Anvil's default block gas limit is 30M; staying under it keeps a bad op from making the
    // whole bundle unsendable.
    u64::try_from(per_op + U256::from(100_000)).unwrap_or(u64::MAX).min(29_000_000)
}

/// `$ANVIL`, else `node_modules/.bin/anvil` found the same way as the npm artifacts.
fn anvil_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(ANVIL_ENV) {
        return Ok(PathBuf::from(path));
    }
    Ok(x402_aa_contracts::node_modules_dir()?.join(".bin").join("anvil"))
}
