//! One configured network and every chain read the aa-native checks make on it.

use std::{future::IntoFuture, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::{
        Filter, TransactionRequest,
        state::{StateOverride, StateOverridesBuilder},
    },
    sol_types::{SolCall, SolEvent, SolInterface, decode_revert_reason},
    transports::{RpcError, TransportErrorKind},
};
use x402_aa::{
    DecodedPayment, UserOperation,
    accounts::{
        AccountAbi, AccountCallDataError, AccountConfig, AccountConfigError, AccountKind,
        BiconomyAbi, KernelAbi, PaymentCall, SafeAbi, SignerRole, biconomy,
        safe::{SafeDeployment, session::SafeSessionAbi},
    },
};
use x402_aa_contracts::{
    EntryPoint::{self, EntryPointErrors, UserOperationEvent, UserOperationRevertReason},
    KernelSessionValidator, SessionKeyAccount, SessionKeyAccountFactory, SettlementContract,
    TestStablecoin, VERIFY_PROBE_ADDRESS, VERIFY_PROBE_RUNTIME, VerifyProbe, probe_bundle_call,
    probe_call,
};
use x402_aa_policy::{SessionHost, SessionUsage, read_usage_in};

use crate::config::{AccountsConfig, BiconomyAccounts, KernelAccounts, SafeAccounts};

/// A chain read failed or took too long; the facilitator answers `internal_error`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("chain rpc {what}: {message}")]
pub struct ChainError {
    /// The read that failed.
    pub what: &'static str,
    /// The node's or the timeout's message.
    pub message: String,
}

/// The chain head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Block number.
    pub number: u64,
    /// Block timestamp: the chain time validity windows are judged against.
    pub timestamp: u64,
}

/// What `EntryPoint.simulateValidation` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// `ValidationResult`: validation passed, subject to the signature flag and time window
    /// (`valid_until` 0 already widened to "forever" by the EntryPoint).
    Passed {
        /// The account (or paymaster) returned `SIG_VALIDATION_FAILED`.
        sig_failed: bool,
        /// First valid second.
        valid_after: u64,
        /// Last valid second.
        valid_until: u64,
    },
    /// `FailedOp(0, reason)`: the EntryPoint's `AAxx` verdict.
    FailedOp(String),
    /// Any other revert (or none, which `simulateValidation` never does).
    Other(String),
}

/// What `EntryPoint.simulateHandleOp(op, settlement, isSettled(requestHash))` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Execution {
    /// After the op ran, `isSettled(requestHash)` was true: the payment goes through.
    Settles,
    /// The op ran but the requestHash is still unsettled: its execution reverted.
    Reverts,
    /// `FailedOp(0, reason)`: the EntryPoint refused the op in validation.
    FailedOp(String),
    /// Any other revert.
    Other(String),
}

/// What the `VerifyProbe` said: `isSettled(requestHash)`, `handleOps([op])` in an `eth_call`, then
/// `isSettled(requestHash)` again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The requestHash was recorded before the op ran: someone settled it first.
    AlreadySettled,
    /// The op would land and its settle would record the requestHash; the block it ran in.
    Settles(Head),
    /// `handleOps` ran the op but the payment was not recorded: its execution reverted.
    DoesNotSettle,
    /// `handleOps` refused the op (`FailedOp`: signature, time range, paymaster, the account's
    /// session checks) or the call failed otherwise.
    Refused(String),
}

/// How an op that reached the chain ended, read back from the EntryPoint's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    /// The `handleOps` transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// `UserOperationEvent.success`: whether the op's execution succeeded.
    pub success: bool,
    /// `UserOperationRevertReason`'s decoded message, when execution reverted.
    pub revert_reason: Option<String>,
    /// The SettlementContract's `ReceiptLog` for the payment's requestHash, if emitted.
    pub receipt_log: Option<SettlementContract::ReceiptLog>,
}

/// One network the facilitator serves.
#[derive(Debug, Clone)]
pub struct Network {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The EntryPoint (v0.6) ops are checked against and submitted to.
    pub entry_point: Address,
    /// The SettlementContract payments must call.
    pub settlement: Address,
    /// The SessionKeyAccountFactory, whose accounts' session ops the off-chain mirror checks.
    pub session_factory: Option<Address>,
    /// Tokens accepted as `asset`; empty accepts any.
    pub allowed_tokens: Vec<Address>,
    /// How far back (blocks) recovery searches for an op's events when a row lacks its start.
    pub log_lookback_blocks: u64,
    provider: DynProvider,
    rpc_timeout: Duration,
    /// The account implementation behind `session_factory`'s proxies, read once.
    session_implementation: std::sync::Arc<tokio::sync::OnceCell<Address>>,
    /// Account kinds of deployed senders already resolved: an account's implementation only
    /// changes by an owner upgrade, which makes the old verdict the stricter one at worst.
    kinds: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Address, AccountKind>>>,
    /// The highest block number this network has seen in a read (0: none yet). An op sent after
    /// that read lands in that block or a later one.
    seen_block: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Whether the node has answered a probe: it takes `eth_call` state overrides, so whole
    /// bundles can be probed before sending (`VerifyProbe.probeBundle`).
    probes_answered: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Where the third-party kinds live here, and their ABIs for those deployments.
    accounts: std::sync::Arc<KnownAccounts>,
}

/// [`AccountsConfig`] with each kind's [`AccountAbi`] built from it once.
#[derive(Debug)]
struct KnownAccounts {
    kernel: Option<KernelAccounts>,
    safe: Option<SafeAccounts>,
    biconomy: Option<BiconomyAccounts>,
    kernel_abi: KernelAbi,
    safe_abi: SafeHostAbi,
    biconomy_abi: BiconomyAbi,
}

/// Safes as this network sees them: owner ops through Safe4337Module ([`SafeAbi`]) and, when a
/// `SafeSessionModule` is configured, session ops in its `executeSessionPayment` shape. The
/// module routes an op by its callData selector, so this decodes by the selector too: the session
/// shape when the callData has its selector, the owner shapes otherwise.
#[derive(Debug, Clone, Copy)]
struct SafeHostAbi {
    account: SafeAbi,
    session: Option<SafeSessionAbi>,
}

impl SafeHostAbi {
    fn session_op(&self, call_data: &[u8]) -> Option<&SafeSessionAbi> {
        use x402_aa::accounts::session_payment::SESSION_PAYMENT_SELECTOR;
        self.session.as_ref().filter(|_| call_data.starts_with(&SESSION_PAYMENT_SELECTOR))
    }
}

impl AccountAbi for SafeHostAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::Safe
    }

    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError> {
        self.account.init_code(config)
    }

    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError> {
        self.account.counterfactual_address(config)
    }

    fn encode_payment(&self, p: &PaymentCall) -> Bytes {
        self.account.encode_payment(p)
    }

    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        match self.session_op(call_data) {
            Some(session) => session.decode_payment(call_data),
            None => self.account.decode_payment(call_data),
        }
    }

    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        match self.session_op(call_data) {
            Some(session) => session.call_targets(call_data),
            None => self.account.call_targets(call_data),
        }
    }

    /// With the module configured, a session signature (mode byte, the policy's lengths) is a
    /// session key's, as the module reads it; without it every signer is an owner.
    fn signer_role(&self, signature: &[u8]) -> SignerRole {
        match &self.session {
            Some(session) => session.signer_role(signature),
            None => SignerRole::Owner,
        }
    }
}

impl KnownAccounts {
    fn from_config(c: &AccountsConfig) -> std::sync::Arc<Self> {
        let kernel_abi = c
            .kernel
            .map(|k| KernelAbi {
                implementation: k.implementation,
                session_validator: k.session_validator,
            })
            .unwrap_or(KernelAbi::CANONICAL);
        let mut safe = SafeDeployment::CANONICAL;
        if let Some(s) = &c.safe {
            safe.proxy_factory = s.proxy_factory;
            safe.multi_send = s.multi_send;
            safe.multi_send_call_only = s.multi_send_call_only;
            if let Some(singleton) = s.singletons.first() {
                safe.singleton = *singleton;
            }
        }
        let mut biconomy = biconomy::Deployment::CANONICAL;
        if let Some(b) = c.biconomy {
            biconomy.factory = b.factory;
            biconomy.implementation = b.implementation;
            biconomy.ecdsa_module = b.ecdsa_module;
        }
        std::sync::Arc::new(Self {
            kernel: c.kernel,
            safe: c.safe.clone(),
            biconomy: c.biconomy,
            kernel_abi,
            safe_abi: SafeHostAbi {
                account: SafeAbi::new(safe),
                session: c
                    .safe
                    .as_ref()
                    .and_then(|s| s.session_module)
                    .map(|module| SafeSessionAbi::new(safe, module)),
            },
            biconomy_abi: match c.biconomy.and_then(|b| b.session_module) {
                Some(module) => BiconomyAbi::new(biconomy).with_session_module(module),
                None => BiconomyAbi::new(biconomy),
            },
        })
    }
}

/// The address a storage word holds, if it holds nothing else (a packed slot, such as a
/// SimpleAccount's `owner` beside its initializer flags, is not an address word).
fn address_word(word: U256) -> Option<Address> {
    let word = B256::from(word);
    (word[..12] == [0u8; 12] && word != B256::ZERO).then(|| Address::from_word(word))
}

/// The ERC-1967 implementation slot: where a proxy account keeps its implementation.
const ERC1967_IMPLEMENTATION_SLOT: B256 =
    alloy::primitives::b256!("0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc");

impl Network {
    /// One network behind `rpc_url`; every read is bounded by `rpc_timeout`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain_id: u64,
        rpc_url: &str,
        entry_point: Address,
        settlement: Address,
        session_factory: Option<Address>,
        allowed_tokens: Vec<Address>,
        rpc_timeout: Duration,
        log_lookback_blocks: u64,
    ) -> Result<Self, url::ParseError> {
        let url: url::Url = rpc_url.parse()?;
        // Concurrent settlements' reads go to the node as batches.
        let provider = x402_aa_rpc::coalescing_provider(url, rpc_timeout);
        Ok(Self {
            chain_id,
            entry_point,
            settlement,
            session_factory,
            allowed_tokens,
            log_lookback_blocks,
            provider,
            rpc_timeout,
            session_implementation: std::sync::Arc::default(),
            kinds: std::sync::Arc::default(),
            seen_block: std::sync::Arc::default(),
            probes_answered: std::sync::Arc::default(),
            accounts: KnownAccounts::from_config(&AccountsConfig::default()),
        })
    }

    /// Recognise the third-party account kinds where `accounts` says they live (the config's
    /// defaults: their canonical deployments).
    pub fn with_accounts(mut self, accounts: &AccountsConfig) -> Self {
        self.accounts = KnownAccounts::from_config(accounts);
        self
    }

    /// The protocol side of `kind` on this network: its decoder, targets and signature routing,
    /// for the deployment configured here.
    pub fn abi(&self, kind: AccountKind) -> &dyn AccountAbi {
        match kind {
            AccountKind::Kernel => &self.accounts.kernel_abi,
            AccountKind::Safe => &self.accounts.safe_abi,
            AccountKind::Biconomy => &self.accounts.biconomy_abi,
            other => other.abi(),
        }
    }

    /// Which account contract sends `op`, chosen explicitly: by the factory its initCode calls
    /// (the session account factory, KernelFactory, SafeProxyFactory, Biconomy's factory), else
    /// by what the deployed account delegates to (the implementation in its ERC-1967 slot for
    /// our account and Kernel, the singleton in slot 0 for Safe, the implementation at the slot
    /// of its own address for Biconomy). An account none of these names is taken as one with
    /// SimpleAccount's ABI, which only its owner signs for (the chain then decides whether it
    /// validates). Never read from the signature.
    pub async fn account_kind(&self, op: &UserOperation) -> Result<AccountKind, ChainError> {
        if let Some(factory) = op.factory() {
            return Ok(self.kind_by_factory(factory));
        }
        let cached = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&op.sender)
            .copied();
        if let Some(kind) = cached {
            return Ok(kind);
        }
        let kind = self.kind_by_code(op.sender).await?;
        self.kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(op.sender, kind);
        Ok(kind)
    }

    fn kind_by_factory(&self, factory: Address) -> AccountKind {
        let known = &self.accounts;
        if self.session_factory == Some(factory) {
            AccountKind::SessionKeyAccount
        } else if known.kernel.is_some_and(|k| k.factory == factory) {
            AccountKind::Kernel
        } else if known.safe.as_ref().is_some_and(|s| s.proxy_factory == factory) {
            AccountKind::Safe
        } else if known.biconomy.is_some_and(|b| b.factory == factory) {
            AccountKind::Biconomy
        } else {
            AccountKind::SimpleAccount
        }
    }

    /// The three slots a proxy account of a known kind keeps its code's address in, read at
    /// once (an account's code only changes by an owner upgrade; the answer is cached).
    async fn kind_by_code(&self, sender: Address) -> Result<AccountKind, ChainError> {
        let slot = |key: U256| {
            self.rpc("eth_getStorageAt", self.provider.get_storage_at(sender, key).into_future())
        };
        let (erc1967, slot0, own) = tokio::try_join!(
            slot(ERC1967_IMPLEMENTATION_SLOT.into()),
            slot(U256::ZERO),
            slot(U256::from_be_slice(sender.as_slice())),
        )?;
        let erc1967 = address_word(erc1967);
        if let Some(implementation) = erc1967 {
            if self.session_implementation().await? == Some(implementation) {
                return Ok(AccountKind::SessionKeyAccount);
            }
            if self.accounts.kernel.is_some_and(|k| k.implementation == implementation) {
                return Ok(AccountKind::Kernel);
            }
        }
        if let (Some(singleton), Some(safe)) = (address_word(slot0), &self.accounts.safe)
            && safe.singletons.contains(&singleton)
        {
            return Ok(AccountKind::Safe);
        }
        if let (Some(implementation), Some(b)) = (address_word(own), self.accounts.biconomy)
            && b.implementation == implementation
        {
            return Ok(AccountKind::Biconomy);
        }
        Ok(AccountKind::SimpleAccount)
    }

    /// The account implementation behind the session factory's proxies, read once.
    async fn session_implementation(&self) -> Result<Option<Address>, ChainError> {
        let Some(session_factory) = self.session_factory else { return Ok(None) };
        let implementation = self
            .session_implementation
            .get_or_try_init(|| async {
                let c = SessionKeyAccountFactory::new(session_factory, &self.provider);
                self.rpc("accountImplementation()", c.accountImplementation().call()).await
            })
            .await?;
        Ok(Some(*implementation))
    }

    /// The node connection, for reads this type does not wrap.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The bound on every RPC.
    pub fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout
    }

    /// Runs one RPC with the per-call bound.
    async fn rpc<T, E: std::fmt::Display>(
        &self,
        what: &'static str,
        fut: impl IntoFuture<Output = Result<T, E>>,
    ) -> Result<T, ChainError> {
        match tokio::time::timeout(self.rpc_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ChainError { what, message: e.to_string() }),
            Err(_) => Err(ChainError {
                what,
                message: format!("no answer within {:?}", self.rpc_timeout),
            }),
        }
    }

    /// `eth_chainId`, to check the configuration at start.
    pub async fn chain_id_on_node(&self) -> Result<u64, ChainError> {
        self.rpc("eth_chainId", self.provider.get_chain_id()).await
    }

    /// The latest block's number and timestamp.
    pub async fn head(&self) -> Result<Head, ChainError> {
        let block = self
            .rpc(
                "eth_getBlockByNumber",
                self.provider.get_block_by_number(BlockNumberOrTag::Latest),
            )
            .await?
            .ok_or_else(|| ChainError {
                what: "eth_getBlockByNumber",
                message: "no block".into(),
            })?;
        self.saw_block(block.header.number);
        Ok(Head { number: block.header.number, timestamp: block.header.timestamp })
    }

    /// A block at or before the one an op sent from now on lands in: the highest block seen so
    /// far (the head when none was). It saves a round trip per settlement where a lower bound
    /// will do: where to start searching for an op about to be sent ([`Self::find_landed`]
    /// clamps it to the head).
    pub async fn block_lower_bound(&self) -> Result<u64, ChainError> {
        match self.seen_block.load(std::sync::atomic::Ordering::Relaxed) {
            0 => Ok(self.head().await?.number),
            seen => Ok(seen),
        }
    }

    fn saw_block(&self, number: u64) {
        self.seen_block.fetch_max(number, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `account` has code (an undeployed payer needs initCode).
    pub async fn is_deployed(&self, account: Address) -> Result<bool, ChainError> {
        Ok(!self.rpc("eth_getCode", self.provider.get_code_at(account)).await?.is_empty())
    }

    /// `owner()` of a SimpleAccount-compatible account.
    pub async fn account_owner(&self, account: Address) -> Result<Address, ChainError> {
        let c = SessionKeyAccount::new(account, &self.provider);
        self.rpc("owner()", c.owner().call()).await
    }

    /// `factory.getAddress(owner, salt)`.
    pub async fn counterfactual_address(
        &self,
        factory: Address,
        owner: Address,
        salt: U256,
    ) -> Result<Address, ChainError> {
        let c = SessionKeyAccountFactory::new(factory, &self.provider);
        self.rpc("getAddress()", c.getAddress(owner, salt).call()).await
    }

    /// `SettlementContract.isSettled(requestHash)`: the chain's word on a replay.
    pub async fn is_settled(&self, request_hash: B256) -> Result<bool, ChainError> {
        let c = SettlementContract::new(self.settlement, &self.provider);
        self.rpc("isSettled()", c.isSettled(request_hash).call()).await
    }

    /// The account's counters for a session (and for the merchant the op pays); all zero for an
    /// account not deployed yet.
    pub async fn stored_session(
        &self,
        host: SessionHost,
        account: Address,
        session_id: B256,
        merchant: Address,
        deployed: bool,
    ) -> Result<SessionUsage, ChainError> {
        let read = read_usage_in(&self.provider, host, account, session_id, merchant, deployed);
        self.rpc("sessionState()", read).await
    }

    /// The KernelSessionValidator this network's Kernel session payments go through, if any.
    pub fn kernel_session_validator(&self) -> Option<Address> {
        self.accounts.kernel_abi.session_validator
    }

    /// The `SafeSessionModule` this network knows, if any.
    pub fn safe_session_module(&self) -> Option<Address> {
        self.accounts.safe_abi.session.map(|s| s.module)
    }

    /// The `BiconomySessionModule` this network knows, if any.
    pub fn biconomy_session_module(&self) -> Option<Address> {
        self.accounts.biconomy_abi.session_module
    }

    /// The owner whose signature enables a grant in a session module (the Kernel validator, the
    /// Safe module): its `ownerOf(account)`. Both modules share that view.
    pub async fn session_module_owner(
        &self,
        validator: Address,
        account: Address,
    ) -> Result<Address, ChainError> {
        let c = KernelSessionValidator::new(validator, &self.provider);
        self.rpc("ownerOf()", c.ownerOf(account).call()).await
    }

    /// [`Self::session_module_owner`] of a module that may decline to name one (the Safe module,
    /// for a Safe that is not 1-of-1): its revert reason is `Ok(Err(reason))`.
    pub async fn session_module_owner_or_refusal(
        &self,
        module: Address,
        account: Address,
    ) -> Result<Result<Address, String>, ChainError> {
        let read = x402_aa_policy::session_module_owner(&self.provider, module, account);
        self.rpc("ownerOf()", read).await
    }

    /// ERC-20 `balanceOf`.
    pub async fn token_balance(&self, token: Address, owner: Address) -> Result<U256, ChainError> {
        let c = TestStablecoin::new(token, &self.provider);
        self.rpc("balanceOf()", c.balanceOf(owner).call()).await
    }

    /// `EntryPoint.simulateValidation(op)` through `eth_call`; it always reverts, with
    /// `ValidationResult` on success.
    pub async fn simulate_validation(&self, op: &UserOperation) -> Result<Validation, ChainError> {
        let call = EntryPoint::simulateValidationCall { userOp: op.into() };
        let tx =
            TransactionRequest::default().with_to(self.entry_point).with_input(call.abi_encode());
        let revert = match self.entry_point_call("simulateValidation", tx).await? {
            Ok(_) => {
                return Ok(Validation::Other(
                    "simulateValidation returned instead of reverting".into(),
                ));
            }
            Err(revert) => revert,
        };
        Ok(match revert {
            EntryPointRevert::Decoded(e) => match *e {
                EntryPointErrors::ValidationResult(r) => Validation::Passed {
                    sig_failed: r.returnInfo.sigFailed,
                    valid_after: r.returnInfo.validAfter.to::<u64>(),
                    valid_until: r.returnInfo.validUntil.to::<u64>(),
                },
                EntryPointErrors::FailedOp(f) => Validation::FailedOp(f.reason),
                other => Validation::Other(format!("{other:?}")),
            },
            other => Validation::Other(other.describe()),
        })
    }

    /// `EntryPoint.simulateHandleOp(op, settlement, isSettled(requestHash))`: runs validation
    /// and execution in an `eth_call`, then asks the settlement contract whether the payment
    /// landed — which is exactly "would this op's execution succeed".
    pub async fn simulate_execution(
        &self,
        op: &UserOperation,
        request_hash: B256,
    ) -> Result<Execution, ChainError> {
        let target_call =
            SettlementContract::isSettledCall { requestHash: request_hash }.abi_encode();
        let call = EntryPoint::simulateHandleOpCall {
            op: op.into(),
            target: self.settlement,
            targetCallData: target_call.into(),
        };
        let tx =
            TransactionRequest::default().with_to(self.entry_point).with_input(call.abi_encode());
        let revert = match self.entry_point_call("simulateHandleOp", tx).await? {
            Ok(_) => {
                return Ok(Execution::Other(
                    "simulateHandleOp returned instead of reverting".into(),
                ));
            }
            Err(revert) => revert,
        };
        Ok(match revert {
            EntryPointRevert::Decoded(e) => match *e {
                EntryPointErrors::ExecutionResult(r) => {
                    let settled = r.targetSuccess
                        && SettlementContract::isSettledCall::abi_decode_returns(&r.targetResult)
                            .unwrap_or(false);
                    if settled { Execution::Settles } else { Execution::Reverts }
                }
                EntryPointErrors::FailedOp(f) => Execution::FailedOp(f.reason),
                other => Execution::Other(format!("{other:?}")),
            },
            other => Execution::Other(other.describe()),
        })
    }

    /// One `eth_call` answering "would this op land and pay?": the `VerifyProbe` runtime code is
    /// placed at an unused address by a state override and runs the op through the real
    /// `handleOps` (as a bundle would: validation, paymaster, execution), then reads
    /// `isSettled(requestHash)` and the block it ran in. Needs a node with `eth_call` state
    /// overrides (geth, reth, erigon, anvil all have them); no key, no gas.
    pub async fn probe(&self, op: &UserOperation, request_hash: B256) -> Result<Probe, ChainError> {
        const WHAT: &str = "VerifyProbe.probe";
        let input = probe_call(self.entry_point, op.into(), self.settlement, request_hash);
        match self.call_probe(WHAT, TransactionRequest::default().with_input(input)).await? {
            Ok(out) => {
                let r = VerifyProbe::probeCall::abi_decode_returns(&out)
                    .map_err(|e| ChainError { what: WHAT, message: e.to_string() })?;
                self.probes_answered.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(if r.settledBefore {
                    Probe::AlreadySettled
                } else if r.settled {
                    self.saw_block(r.blockNumber.saturating_to());
                    Probe::Settles(Head {
                        number: r.blockNumber.saturating_to(),
                        timestamp: r.timestamp.saturating_to(),
                    })
                } else {
                    Probe::DoesNotSettle
                })
            }
            // An error answer without revert data is the node refusing the call itself (no
            // state overrides: "too many arguments"), not the op: the probe is unavailable.
            Err(EntryPointRevert::Undecoded { message, data: None }) => {
                Err(ChainError { what: WHAT, message })
            }
            Err(revert) => Ok(Probe::Refused(revert.describe())),
        }
    }

    /// `tx` to the `VerifyProbe` code, placed at [`VERIFY_PROBE_ADDRESS`] by a state override.
    /// A refusal of the call itself (an error answer without revert data: no state overrides,
    /// say after a failover to an older node) clears [`Network::probes_answered`], so nothing
    /// relies on probes until one is answered again.
    async fn call_probe(
        &self,
        what: &'static str,
        tx: TransactionRequest,
    ) -> Result<Result<Bytes, EntryPointRevert>, ChainError> {
        let overrides = StateOverridesBuilder::default()
            .with_code(VERIFY_PROBE_ADDRESS, VERIFY_PROBE_RUNTIME)
            .build();
        let answer =
            self.reverting_call(what, tx.with_to(VERIFY_PROBE_ADDRESS), Some(overrides)).await?;
        if matches!(answer, Err(EntryPointRevert::Undecoded { data: None, .. })) {
            self.probes_answered.store(false, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(answer)
    }

    /// Whether a probe has been answered on this network (the node takes state overrides), so
    /// whole bundles can be probed before sending too (`VerifyProbe.probeBundle`).
    pub fn probes_answered(&self) -> bool {
        self.probes_answered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The pre-send check of a whole bundle in one `eth_call`: `ops` run through `handleOps`
    /// from `beneficiary`, in order, as the bundle transaction will run them, and per op whether
    /// its settle recorded its requestHash in that run. `Ok(Err(revert))` is the EntryPoint's
    /// refusal (`FailedOp(index, reason)` for a refused op).
    pub(crate) async fn probe_bundle(
        &self,
        ops: Vec<UserOperation>,
        request_hashes: Vec<B256>,
        beneficiary: Address,
        gas: u64,
    ) -> Result<Result<Vec<bool>, EntryPointRevert>, ChainError> {
        const WHAT: &str = "VerifyProbe.probeBundle";
        let ops = ops.iter().map(Into::into).collect();
        let input =
            probe_bundle_call(self.entry_point, ops, self.settlement, request_hashes, beneficiary);
        let tx = TransactionRequest::default()
            .with_from(beneficiary)
            .with_input(input)
            .with_gas_limit(gas);
        Ok(match self.call_probe(WHAT, tx).await? {
            Ok(out) => Ok(VerifyProbe::probeBundleCall::abi_decode_returns(&out)
                .map_err(|e| ChainError { what: WHAT, message: e.to_string() })?),
            Err(revert) => Err(revert),
        })
    }

    /// `eth_call` to the EntryPoint: `Ok(Ok(output))`, `Ok(Err(revert))`, or a transport error.
    pub(crate) async fn entry_point_call(
        &self,
        what: &'static str,
        tx: TransactionRequest,
    ) -> Result<Result<Bytes, EntryPointRevert>, ChainError> {
        self.reverting_call(what, tx, None).await
    }

    /// `eth_call` whose reverts are the EntryPoint's (its own, or bubbled up by the probe).
    ///
    /// At the latest block, as every contract read here is: alloy's `provider.call` asks for
    /// `pending`, which a node answers by first running its pool's transactions on a block of
    /// its own making (anvil does, for every call), so a verdict would hang on whatever the pool
    /// held at that instant, and cost the node a block's work per call.
    async fn reverting_call(
        &self,
        what: &'static str,
        tx: TransactionRequest,
        overrides: Option<StateOverride>,
    ) -> Result<Result<Bytes, EntryPointRevert>, ChainError> {
        let call = async {
            Ok::<_, std::convert::Infallible>(
                self.provider.call(tx).latest().overrides_opt(overrides).await,
            )
        };
        match self.rpc(what, call).await? {
            Ok(out) => Ok(Ok(out)),
            Err(e) => EntryPointRevert::from_rpc(what, e).map(Err),
        }
    }

    /// Where an op with `user_op_hash` landed, from the EntryPoint's `UserOperationEvent`,
    /// searching from `from_block` (or the configured look-back) to the head.
    pub async fn find_landed(
        &self,
        user_op_hash: B256,
        request_hash: B256,
        from_block: Option<u64>,
    ) -> Result<Option<Landed>, ChainError> {
        let head = self.head().await?.number;
        let from =
            from_block.unwrap_or_else(|| head.saturating_sub(self.log_lookback_blocks)).min(head);
        let filter = Filter::new()
            .address(self.entry_point)
            .event_signature(UserOperationEvent::SIGNATURE_HASH)
            .topic1(user_op_hash)
            .from_block(from)
            .to_block(head);
        let logs = self.rpc("eth_getLogs", self.provider.get_logs(&filter)).await?;
        let Some(log) = logs.first() else { return Ok(None) };
        let Ok(event) = UserOperationEvent::decode_log(&log.inner) else { return Ok(None) };
        let (Some(tx_hash), Some(block_number)) = (log.transaction_hash, log.block_number) else {
            return Ok(None);
        };
        let receipt = self
            .rpc("eth_getTransactionReceipt", self.provider.get_transaction_receipt(tx_hash))
            .await?;
        let logs: Vec<alloy::primitives::Log> = receipt
            .map(|r| r.inner.logs().iter().map(|l| l.inner.clone()).collect())
            .unwrap_or_default();
        Ok(Some(Landed {
            tx_hash,
            block_number,
            success: event.data.success,
            revert_reason: revert_reason_in(&logs, self.entry_point, user_op_hash),
            receipt_log: receipt_log_in(&logs, self.settlement, request_hash),
        }))
    }
}

/// A revert from an EntryPoint `eth_call`.
#[derive(Debug)]
pub(crate) enum EntryPointRevert {
    Decoded(Box<EntryPointErrors>),
    Undecoded { message: String, data: Option<Bytes> },
}

impl EntryPointRevert {
    /// A revert answer becomes `Ok(revert)`; anything else (no node, bad answer) is an error.
    fn from_rpc(what: &'static str, e: RpcError<TransportErrorKind>) -> Result<Self, ChainError> {
        let Some(payload) = e.as_error_resp() else {
            return Err(ChainError { what, message: e.to_string() });
        };
        Ok(match payload.as_decoded_interface_error::<EntryPointErrors>() {
            Some(decoded) => Self::Decoded(Box::new(decoded)),
            None => Self::Undecoded {
                message: payload.message.to_string(),
                data: payload.as_revert_data(),
            },
        })
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Decoded(e) => format!("{e:?}"),
            Self::Undecoded { message, data } => match data {
                Some(data) => format!("{message} ({})", describe_revert(data)),
                None => message.clone(),
            },
        }
    }
}

/// Revert data in words: `Error(string)`, `Panic`, a SettlementContract or token error, or hex.
pub fn describe_revert(data: &[u8]) -> String {
    if let Some(reason) = decode_revert_reason(data) {
        return reason;
    }
    if let Ok(e) = SettlementContract::SettlementContractErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    if let Ok(e) = TestStablecoin::TestStablecoinErrors::abi_decode(data) {
        return format!("{e:?}");
    }
    alloy::primitives::hex::encode_prefixed(data)
}

/// The EntryPoint's `UserOperationRevertReason` for an op among a transaction's logs.
pub(crate) fn revert_reason_in(
    logs: &[alloy::primitives::Log],
    entry_point: Address,
    user_op_hash: B256,
) -> Option<String> {
    logs.iter()
        .filter(|l| l.address == entry_point)
        .filter_map(|l| UserOperationRevertReason::decode_log(l).ok())
        .find(|l| l.data.userOpHash == user_op_hash)
        .map(|l| describe_revert(&l.data.revertReason))
}

/// The SettlementContract's `ReceiptLog` for `request_hash` among a transaction's logs.
pub(crate) fn receipt_log_in(
    logs: &[alloy::primitives::Log],
    settlement: Address,
    request_hash: B256,
) -> Option<SettlementContract::ReceiptLog> {
    logs.iter()
        .filter(|l| l.address == settlement)
        .filter_map(|l| SettlementContract::ReceiptLog::decode_log(l).ok())
        .map(|l| l.data)
        .find(|l| l.requestHash == request_hash)
}

/// A bundler's log (`eth_getUserOperationReceipt`) in alloy's form.
pub(crate) fn bundler_log(log: &x402_aa_rpc::Log) -> Option<alloy::primitives::Log> {
    alloy::primitives::Log::new(log.address, log.topics.clone(), log.data.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_words_hold_nothing_else() {
        let a = alloy::primitives::address!("0x41675C099F32341bf84BFc5382aF534df5C7461a");
        assert_eq!(address_word(U256::from_be_slice(a.into_word().as_slice())), Some(a));
        assert_eq!(address_word(U256::ZERO), None);
        // SimpleAccount's slot 0: owner beside Initializable's flags, not an address word.
        let packed = (U256::from_be_slice(a.as_slice()) << 16) | U256::from(1);
        assert_eq!(address_word(packed), None);
    }
}
