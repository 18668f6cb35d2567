//! The session's usage as the account stores it, read in one batch of `eth_call`s: the
//! figures every layer checks a payment against ([`crate::SessionUsage`]).

use alloy::{
    eips::BlockId,
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use x402_aa_contracts::SessionKeyAccount;

use crate::check::{GasUsage, PeriodSpend, SessionStatus, SessionUsage};

alloy::sol! {
    /// The views of this project's `KernelSessionValidator`, `SafeSessionModule` and
    /// `BiconomySessionModule` (each one deployment for every account, so each view names the
    /// account first; all three declare them identically); the same figures as SessionKeyAccount's.
    #[sol(rpc)]
    interface KernelSessionViews {
        function sessionEpoch(address account) external view returns (uint32);
        function sessionState(address account, bytes32 id) external view returns (uint8 status, bool paused, uint32 periodIndex, uint96 periodSpent, uint96 lifetimeSpent, uint24 paymentsInPeriod);
        function sessionGasState(address account, bytes32 id) external view returns (uint32 gasPeriodIndex, uint96 gasPeriodSpent, uint96 gasLifetimeSpent, uint32 pauseNonce);
        function sessionMerchantState(address account, bytes32 id, address merchant) external view returns (uint32 periodIndex, uint96 spent);
    }
}

/// The same figures from either host's views (their return types differ only in name).
macro_rules! usage_of {
    ($state:ident, $gas:ident, $epoch:ident, $merchant:ident) => {
        SessionUsage {
            status: SessionStatus::from_chain($state.status),
            paused: $state.paused,
            account_epoch: $epoch,
            period_index: $state.periodIndex,
            period_spent: U256::from($state.periodSpent),
            lifetime_spent: U256::from($state.lifetimeSpent),
            payments_in_period: $state.paymentsInPeriod.to::<u32>(),
            merchant: PeriodSpend {
                period_index: $merchant.periodIndex,
                spent: U256::from($merchant.spent),
            },
            gas: GasUsage {
                period: PeriodSpend {
                    period_index: $gas.gasPeriodIndex,
                    spent: U256::from($gas.gasPeriodSpent),
                },
                lifetime_spent: U256::from($gas.gasLifetimeSpent),
            },
        }
    };
}

/// Where a session's state lives: in the account itself (SessionKeyAccount), or in a validator
/// plugin or module serving many accounts (Kernel, Safe, Biconomy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionHost {
    /// The account's own storage, read through its views.
    #[default]
    Account,
    /// This project's `KernelSessionValidator` at this address.
    KernelValidator(Address),
    /// This project's `SafeSessionModule` at this address (a Safe module and fallback handler).
    SafeModule(Address),
    /// This project's `BiconomySessionModule` at this address (Biconomy Smart Account v2); its
    /// views are KernelSessionValidator's.
    BiconomyModule(Address),
}

impl SessionHost {
    /// The shared contract keeping the state of many accounts (whose views name the account
    /// first), or `None` when the account keeps its own.
    pub fn module(self) -> Option<Address> {
        match self {
            Self::Account => None,
            Self::KernelValidator(a) | Self::SafeModule(a) | Self::BiconomyModule(a) => Some(a),
        }
    }
}

/// Reads `sessionState`, `sessionGasState`, `sessionEpoch` and, for `merchant`,
/// `sessionMerchantState` of `account`. An account without code stores nothing: all zero.
pub async fn read_usage<P: Provider>(
    provider: &P,
    account: Address,
    session_id: B256,
    merchant: Address,
    deployed: bool,
) -> Result<SessionUsage, alloy::contract::Error> {
    read_usage_in(provider, SessionHost::Account, account, session_id, merchant, deployed).await
}

/// [`read_usage`] from wherever `host` keeps the session's state.
pub async fn read_usage_in<P: Provider>(
    provider: &P,
    host: SessionHost,
    account: Address,
    session_id: B256,
    merchant: Address,
    deployed: bool,
) -> Result<SessionUsage, alloy::contract::Error> {
    if !deployed {
        return Ok(SessionUsage::default());
    }
    read_usage_at(provider, host, account, session_id, merchant, BlockId::latest()).await
}

/// [`read_usage_in`] of a deployed account, every figure at block `at` (one consistent view).
pub async fn read_usage_at<P: Provider>(
    provider: &P,
    host: SessionHost,
    account: Address,
    session_id: B256,
    merchant: Address,
    at: BlockId,
) -> Result<SessionUsage, alloy::contract::Error> {
    use KernelSessionViews as M;
    use SessionKeyAccount as A;
    let id = session_id;
    if let Some(module) = host.module() {
        let (state, gas, epoch, merchant) = four_calls(
            provider,
            module,
            at,
            M::sessionStateCall { account, id },
            M::sessionGasStateCall { account, id },
            M::sessionEpochCall { account },
            M::sessionMerchantStateCall { account, id, merchant },
        )
        .await?;
        return Ok(usage_of!(state, gas, epoch, merchant));
    }
    let (state, gas, epoch, merchant) = four_calls(
        provider,
        account,
        at,
        A::sessionStateCall { id },
        A::sessionGasStateCall { id },
        A::sessionEpochCall {},
        A::sessionMerchantStateCall { id, merchant },
    )
    .await?;
    Ok(usage_of!(state, gas, epoch, merchant))
}

/// Four `eth_call`s to `to` at `at` in one JSON-RPC batch: every payment reads the usage, and one
/// HTTP request instead of four saves the node (and us) three requests' overhead per payment.
#[allow(clippy::too_many_arguments)]
async fn four_calls<P: Provider, A: SolCall, B: SolCall, C: SolCall, D: SolCall>(
    provider: &P,
    to: Address,
    at: BlockId,
    a: A,
    b: B,
    c: C,
    d: D,
) -> Result<(A::Return, B::Return, C::Return, D::Return), alloy::contract::Error> {
    let call = |input: Vec<u8>| (TransactionRequest::default().with_to(to).with_input(input), at);
    let mut batch = alloy::rpc::client::BatchRequest::new(provider.client());
    let wa = batch.add_call::<_, Bytes>("eth_call", &call(a.abi_encode()))?;
    let wb = batch.add_call::<_, Bytes>("eth_call", &call(b.abi_encode()))?;
    let wc = batch.add_call::<_, Bytes>("eth_call", &call(c.abi_encode()))?;
    let wd = batch.add_call::<_, Bytes>("eth_call", &call(d.abi_encode()))?;
    batch.send().await?;
    let (ra, rb, rc, rd): (Bytes, Bytes, Bytes, Bytes) = tokio::try_join!(wa, wb, wc, wd)?;
    let abi = |e: alloy::sol_types::Error| alloy::contract::Error::AbiError(e.into());
    Ok((
        A::abi_decode_returns(&ra).map_err(abi)?,
        B::abi_decode_returns(&rb).map_err(abi)?,
        C::abi_decode_returns(&rc).map_err(abi)?,
        D::abi_decode_returns(&rd).map_err(abi)?,
    ))
}
