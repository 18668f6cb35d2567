//! The session's usage as the account stores it, read in one concurrent round of `eth_call`s: the
//! figures every layer checks a payment against ([`crate::SessionUsage`]); and the owner a
//! session module names for a grant's in-op enable.

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, U256},
    providers::Provider,
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
    // Four calls issued together: over a coalescing client (`x402_aa_rpc::coalescing_provider`,
    // what the SDK and the facilitator read through) they reach the node as one batch.
    if let Some(module) = host.module() {
        let c = KernelSessionViews::new(module, provider);
        let (state, gas, epoch, merchant) = tokio::try_join!(
            async { c.sessionState(account, session_id).block(at).call().await },
            async { c.sessionGasState(account, session_id).block(at).call().await },
            async { c.sessionEpoch(account).block(at).call().await },
            async { c.sessionMerchantState(account, session_id, merchant).block(at).call().await },
        )?;
        return Ok(usage_of!(state, gas, epoch, merchant));
    }
    let c = SessionKeyAccount::new(account, provider);
    let (state, gas, epoch, merchant) = tokio::try_join!(
        async { c.sessionState(session_id).block(at).call().await },
        async { c.sessionGasState(session_id).block(at).call().await },
        async { c.sessionEpoch().block(at).call().await },
        async { c.sessionMerchantState(session_id, merchant).block(at).call().await },
    )?;
    Ok(usage_of!(state, gas, epoch, merchant))
}

/// The owner whose signature enables a grant in-op, as a session module names it
/// (`ownerOf(account)`, shared by the Kernel validator, the Safe module and the Biconomy module),
/// or the module's revert reason where it declines to name one: the Safe module names the owner
/// of a 1-of-1 Safe only, any other Safe enables grants with a Safe transaction.
pub async fn session_module_owner<P: Provider>(
    provider: &P,
    module: Address,
    account: Address,
) -> Result<Result<Address, String>, alloy::contract::Error> {
    match x402_aa_contracts::KernelSessionValidator::new(module, provider)
        .ownerOf(account)
        .call()
        .await
    {
        Ok(owner) => Ok(Ok(owner)),
        Err(e) => match e.as_revert_data() {
            Some(data) => Ok(Err(alloy::sol_types::decode_revert_reason(&data)
                .unwrap_or_else(|| format!("ownerOf reverted with {data}")))),
            None => Err(e),
        },
    }
}
