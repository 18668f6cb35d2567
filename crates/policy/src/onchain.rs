//! The session's usage as the account stores it, read in one concurrent round of `eth_call`s: the
//! figures every layer checks a payment against ([`crate::SessionUsage`]).

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
};
use x402_aa_contracts::SessionKeyAccount;

use crate::check::{GasUsage, PeriodSpend, SessionStatus, SessionUsage};

/// Reads `sessionState`, `sessionGasState`, `sessionEpoch` and, for `merchant`,
/// `sessionMerchantState` of `account`. An account without code stores nothing: all zero.
pub async fn read_usage<P: Provider>(
    provider: &P,
    account: Address,
    session_id: B256,
    merchant: Address,
    deployed: bool,
) -> Result<SessionUsage, alloy::contract::Error> {
    if !deployed {
        return Ok(SessionUsage::default());
    }
    let c = SessionKeyAccount::new(account, provider);
    let (state, gas, epoch, merchant) = tokio::try_join!(
        async { c.sessionState(session_id).call().await },
        async { c.sessionGasState(session_id).call().await },
        async { c.sessionEpoch().call().await },
        async { c.sessionMerchantState(session_id, merchant).call().await },
    )?;
    Ok(SessionUsage {
        status: SessionStatus::from_chain(state.status),
        paused: state.paused,
        account_epoch: epoch,
        period_index: state.periodIndex,
        period_spent: U256::from(state.periodSpent),
        lifetime_spent: U256::from(state.lifetimeSpent),
        payments_in_period: state.paymentsInPeriod.to::<u32>(),
        merchant: PeriodSpend {
            period_index: merchant.periodIndex,
            spent: U256::from(merchant.spent),
        },
        gas: GasUsage {
            period: PeriodSpend {
                period_index: gas.gasPeriodIndex,
                spent: U256::from(gas.gasPeriodSpent),
            },
            lifetime_spent: U256::from(gas.gasLifetimeSpent),
        },
    })
}
