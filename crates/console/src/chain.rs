//! What the page shows, read from the chain: each session's state and counters, each account's
//! balance, and the settlement receipts, attributed to the session whose op paid them.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::Mutex,
};

use alloy::{
    eips::BlockNumberOrTag,
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use serde::{Deserialize, Serialize};
use x402_aa_contracts::{EntryPoint, SessionKeyAccountFactory, SettlementContract, TestStablecoin};
use x402_aa_policy::session_op::SessionOpSignature;
use x402_aa_session::{
    GrantWindow, SessionFile, TokenInfo,
    owner::{self, SessionStatus},
};

use crate::{
    ConsoleConfig, ConsoleError,
    actions::Draft,
    store::{Store, StoredGrant},
    words::{self, Meter},
};

/// Blocks per `eth_getLogs` request: public RPCs refuse wide ranges.
const LOG_CHUNK: u64 = 2_000;

/// The console's state: settings, connections, the grants store, drafts awaiting a signature
/// and the receipts read so far.
#[derive(Debug)]
pub(crate) struct Console {
    pub(crate) config: ConsoleConfig,
    pub(crate) provider: DynProvider,
    pub(crate) chain_id: u64,
    pub(crate) token: TokenInfo,
    pub(crate) store: Mutex<Store>,
    pub(crate) drafts: Mutex<HashMap<B256, Draft>>,
    receipts: tokio::sync::Mutex<ReceiptIndex>,
    /// One owner action at a time: two transactions from one key must not race for a nonce.
    pub(crate) sending: tokio::sync::Mutex<()>,
}

/// Receipts of the watched accounts, read incrementally.
#[derive(Debug, Default)]
struct ReceiptIndex {
    accounts: BTreeSet<Address>,
    next_block: u64,
    receipts: Vec<Receipt>,
}

/// One settled payment, as the chart plots it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Receipt {
    /// Unix seconds of its block.
    pub(crate) time: u64,
    pub(crate) block: u64,
    pub(crate) tx: B256,
    pub(crate) account: Address,
    /// The session whose op paid it; `None` when the transaction is not a `handleOps` the
    /// console can read (or the op was not a session op).
    pub(crate) session: Option<B256>,
    pub(crate) merchant: Address,
    /// In token units, for plotting.
    pub(crate) amount: f64,
    pub(crate) amount_text: String,
}

/// The page's whole model, polled every second.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Overview {
    chain_id: u64,
    rpc_url: String,
    settlement: Address,
    token: TokenInfo,
    now: u64,
    owner: Option<Address>,
    /// `"key"`: the console signs; `"elsewhere"`: it shows what to sign.
    signing: &'static str,
    relayer: bool,
    accounts: Vec<AccountView>,
    receipts: Vec<Receipt>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountView {
    address: Address,
    owner: Option<Address>,
    deployed: bool,
    balance: String,
    sessions: Vec<SessionView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionView {
    id: B256,
    session_key: Address,
    source: PathBuf,
    key_file: Option<PathBuf>,
    justification: Option<String>,
    granted_at: Option<u64>,
    /// `active`, `pending`, `paused`, `revoked` or `expired`.
    state: &'static str,
    state_words: &'static str,
    scopes: Vec<String>,
    meters: Vec<Meter>,
    left_this_period: String,
    left_in_total: String,
    can_pause: bool,
    can_resume: bool,
    can_revoke: bool,
}

impl Console {
    pub(crate) async fn connect(config: ConsoleConfig) -> Result<Self, ConsoleError> {
        let url = config
            .rpc_url
            .parse()
            .map_err(|e| ConsoleError::BadInput(format!("RPC URL {:?}: {e}", config.rpc_url)))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let chain_id = provider.get_chain_id().await.map_err(|e| {
            ConsoleError::Chain(format!("cannot reach the RPC at {}: {e}", config.rpc_url))
        })?;
        if let Some(expected) = config.chain_id
            && expected != chain_id
        {
            return Err(ConsoleError::BadInput(format!(
                "{} is chain {chain_id}, not {expected}",
                config.rpc_url
            )));
        }
        let token = match config.token_info.clone().filter(|t| t.address == config.token) {
            Some(info) => info,
            None => {
                let erc20 = TestStablecoin::new(config.token, &provider);
                let symbol = erc20.symbol().call().await.map_err(|e| {
                    ConsoleError::Chain(format!("token {} has no symbol(): {e}", config.token))
                })?;
                let decimals = erc20.decimals().call().await.map_err(ConsoleError::chain)?;
                TokenInfo { address: config.token, symbol, decimals }
            }
        };
        let store = Store::open(&config.data_dir)?;
        Ok(Self {
            receipts: tokio::sync::Mutex::new(ReceiptIndex {
                next_block: config.from_block,
                ..ReceiptIndex::default()
            }),
            config,
            provider,
            chain_id,
            token,
            store: Mutex::new(store),
            drafts: Mutex::new(HashMap::new()),
            sending: tokio::sync::Mutex::new(()),
        })
    }

    /// A provider whose wallet signs as `key`.
    pub(crate) fn wallet(&self, key: &PrivateKeySigner) -> Result<DynProvider, ConsoleError> {
        let url = self
            .config
            .rpc_url
            .parse()
            .map_err(|e| ConsoleError::BadInput(format!("RPC URL: {e}")))?;
        Ok(ProviderBuilder::new()
            .wallet(EthereumWallet::from(key.clone()))
            .connect_http(url)
            .erased())
    }

    /// Chain time: what the account compares windows with.
    pub(crate) async fn now(&self) -> Result<u64, ConsoleError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(ConsoleError::chain)?
            .ok_or_else(|| ConsoleError::Chain("no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    /// The owner's SessionKeyAccount (factory salt 0), where the console's grants live.
    pub(crate) async fn owner_account(&self) -> Result<Option<Address>, ConsoleError> {
        let (Some(owner), Some(factory)) =
            (self.config.owner_address(), self.config.session_account_factory)
        else {
            return Ok(None);
        };
        let account = SessionKeyAccountFactory::new(factory, &self.provider)
            .getAddress(owner, U256::ZERO)
            .call()
            .await
            .map_err(ConsoleError::chain)?;
        Ok(Some(account))
    }

    /// Every session the console knows, on this chain.
    pub(crate) fn sessions(&self) -> Vec<(SessionFile, Option<StoredGrant>, PathBuf)> {
        let store = self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = store.sessions(self.config.sessions_dir.as_deref());
        all.retain(|(f, _, _)| f.chain_id == self.chain_id);
        all
    }

    pub(crate) fn session(&self, id: B256) -> Result<SessionFile, ConsoleError> {
        self.sessions()
            .into_iter()
            .find(|(f, _, _)| f.session_id == id)
            .map(|(f, _, _)| f)
            .ok_or_else(|| ConsoleError::NotFound(format!("no session {id} in this console")))
    }

    pub(crate) async fn overview(&self) -> Result<Overview, ConsoleError> {
        let now = self.now().await?;
        let sessions = self.sessions();
        let mut by_account: BTreeMap<Address, Vec<_>> = BTreeMap::new();
        if let Some(account) = self.owner_account().await? {
            by_account.entry(account).or_default();
        }
        for s in sessions {
            by_account.entry(s.0.account).or_default().push(s);
        }
        let receipts = self.receipts(by_account.keys().copied().collect()).await?;
        let mut accounts = Vec::new();
        for (address, sessions) in by_account {
            let deployed =
                !self.provider.get_code_at(address).await.map_err(ConsoleError::chain)?.is_empty();
            let balance = TestStablecoin::new(self.token.address, &self.provider)
                .balanceOf(address)
                .call()
                .await
                .map_err(ConsoleError::chain)?;
            let owner = sessions.first().map(|(f, _, _)| f.owner).or(self.config.owner_address());
            let mut views = Vec::new();
            for (file, stored, path) in sessions {
                views.push(self.session_view(&file, stored, path, now).await?);
            }
            accounts.push(AccountView {
                address,
                owner,
                deployed,
                balance: self.token.format(balance),
                sessions: views,
            });
        }
        Ok(Overview {
            chain_id: self.chain_id,
            rpc_url: self.config.rpc_url.clone(),
            settlement: self.config.settlement,
            token: self.token.clone(),
            now,
            owner: self.config.owner_address(),
            signing: if self.config.owner_key.is_some() { "key" } else { "elsewhere" },
            relayer: self.config.relayer_key.is_some(),
            accounts,
            receipts,
        })
    }

    async fn session_view(
        &self,
        file: &SessionFile,
        stored: Option<StoredGrant>,
        source: PathBuf,
        now: u64,
    ) -> Result<SessionView, ConsoleError> {
        let grant = file.grant()?;
        let s = owner::remaining_in(
            &self.provider,
            file.host(),
            self.chain_id,
            file.account,
            &grant,
            now,
        )
        .await?;
        let (state, state_words) = match s.status {
            SessionStatus::Revoked => ("revoked", "revoked"),
            SessionStatus::RevokedAll => ("revoked", "revoked (all sessions)"),
            _ if now > grant.valid_until_secs() => ("expired", "expired"),
            SessionStatus::Paused => ("paused", "paused"),
            _ if now < grant.valid_after_secs() => ("pending", "not valid yet"),
            SessionStatus::Enabled => ("active", "active"),
            SessionStatus::NotEnabled => ("active", "active, not used yet"),
        };
        Ok(SessionView {
            id: file.session_id,
            session_key: file.session_key,
            source,
            key_file: stored.as_ref().and_then(|g| g.key_file.clone()),
            justification: stored.as_ref().map(|g| g.justification.clone()),
            granted_at: stored.as_ref().map(|g| g.granted_at),
            state,
            state_words,
            scopes: words::scope_words(&grant, &file.token, &file.merchants),
            meters: words::meters(&grant, &file.token, &s, now),
            left_this_period: file.token.format(s.period_remaining),
            left_in_total: file.token.format(s.lifetime_remaining),
            can_pause: matches!(state, "active" | "pending"),
            can_resume: state == "paused",
            can_revoke: state != "revoked",
        })
    }

    /// The receipts paid by `accounts`, reading only blocks not read yet; a new account means
    /// reading from the first block again.
    async fn receipts(&self, accounts: BTreeSet<Address>) -> Result<Vec<Receipt>, ConsoleError> {
        let mut index = self.receipts.lock().await;
        if index.accounts != accounts {
            *index = ReceiptIndex {
                accounts: accounts.clone(),
                next_block: self.config.from_block,
                receipts: Vec::new(),
            };
        }
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let latest = self.provider.get_block_number().await.map_err(ConsoleError::chain)?;
        let payers: Vec<B256> = accounts.iter().map(|a| a.into_word()).collect();
        let mut times: HashMap<u64, u64> = HashMap::new();
        let mut txs: HashMap<B256, Vec<(Address, B256, B256)>> = HashMap::new();
        while index.next_block <= latest {
            let to = (index.next_block + LOG_CHUNK - 1).min(latest);
            let filter = Filter::new()
                .address(self.config.settlement)
                .event_signature(SettlementContract::ReceiptLog::SIGNATURE_HASH)
                .topic2(payers.clone())
                .from_block(index.next_block)
                .to_block(to);
            let logs = self.provider.get_logs(&filter).await.map_err(ConsoleError::chain)?;
            for log in logs {
                let (Some(tx), Some(block)) = (log.transaction_hash, log.block_number) else {
                    continue;
                };
                let Ok(event) = SettlementContract::ReceiptLog::decode_log(&log.inner) else {
                    continue;
                };
                let event = event.data;
                let time = match log.block_timestamp {
                    Some(t) => t,
                    None => match times.get(&block) {
                        Some(t) => *t,
                        None => {
                            let t = self
                                .provider
                                .get_block_by_number(block.into())
                                .await
                                .map_err(ConsoleError::chain)?
                                .map_or(0, |b| b.header.timestamp);
                            times.insert(block, t);
                            t
                        }
                    },
                };
                let session = match txs.get(&tx) {
                    Some(ops) => attribute(ops, event.payer, event.requestHash),
                    None => {
                        let ops = self.session_ops(tx).await;
                        let session = attribute(&ops, event.payer, event.requestHash);
                        txs.insert(tx, ops);
                        session
                    }
                };
                index.receipts.push(Receipt {
                    time,
                    block,
                    tx,
                    account: event.payer,
                    session,
                    merchant: event.merchant,
                    amount: token_units(event.amount, self.token.decimals),
                    amount_text: self.token.format(event.amount),
                });
            }
            index.next_block = to + 1;
        }
        Ok(index.receipts.clone())
    }

    /// `(sender, requestHash, session id)` of every session op in `tx`, if it is a `handleOps`.
    async fn session_ops(&self, tx: B256) -> Vec<(Address, B256, B256)> {
        #[derive(Debug, Deserialize)]
        struct RawTx {
            input: Bytes,
        }
        let raw: Option<RawTx> =
            match self.provider.raw_request("eth_getTransactionByHash".into(), (tx,)).await {
                Ok(raw) => raw,
                Err(e) => {
                    tracing::warn!(target: "console", "transaction {tx}: {e}");
                    return Vec::new();
                }
            };
        let Some(Ok(call)) = raw.map(|r| EntryPoint::handleOpsCall::abi_decode(&r.input)) else {
            return Vec::new();
        };
        call.ops
            .into_iter()
            .filter_map(|op| {
                let op = x402_aa::UserOperation::from(op);
                let payment = x402_aa::decode_payment(&op.call_data).ok()?;
                let decoded = SessionOpSignature::decode(&op, self.chain_id).ok()?;
                Some((op.sender, payment.settle.request_hash, decoded.session_id))
            })
            .collect()
    }
}

fn attribute(ops: &[(Address, B256, B256)], payer: Address, request: B256) -> Option<B256> {
    ops.iter().find(|(sender, r, _)| *sender == payer && *r == request).map(|(_, _, id)| *id)
}

/// `amount` base units as a float of whole tokens (the chart's y axis; the text keeps the exact
/// figure).
fn token_units(amount: U256, decimals: u8) -> f64 {
    alloy::primitives::utils::format_units(amount, decimals)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}
