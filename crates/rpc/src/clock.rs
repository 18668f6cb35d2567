//! The chain's time, read where it costs the node least.
//!
//! A payment is judged at the latest block's timestamp (its validity window, its budget period),
//! so the agent and the paymaster read it for every payment, beside the payment's other reads.
//! Read as a block, it is a request of its own for the node, which serialises the whole block
//! (every transaction hash in it) for one number. Read as `CallFold.clock()` in an `eth_call` at
//! `latest`, it folds into the `eth_call` of the reads beside it ([`crate::coalescing_provider`]):
//! no request of its own, and taken at the same state as those reads.

use std::sync::atomic::{AtomicBool, Ordering};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::U256,
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol_types::SolCall,
    transports::{TransportErrorKind, TransportResult},
};
use x402_aa_contracts::{CALL_FOLD_ADDRESS, CallFold};

use crate::fold::fold_code_override;

/// Reads the latest block's timestamp (see the module docs). A node that refuses the call (it
/// takes no state overrides) or answers it with something that is not a time is asked for the
/// latest block instead, from then on: one wasted request per client, not per payment.
#[derive(Debug, Default)]
pub struct ChainClock {
    blocks_only: AtomicBool,
}

impl ChainClock {
    /// The latest block's timestamp.
    pub async fn now(&self, provider: &DynProvider) -> TransportResult<u64> {
        if !self.blocks_only.load(Ordering::Relaxed) {
            match provider.call(clock_call()).overrides(fold_code_override()).latest().await {
                Ok(output) => match time_in(&output) {
                    Some(time) => return Ok(time),
                    None => self.stop_calling("the clock call answered no time"),
                },
                // An answer, not a lost request: the node will not run the call.
                Err(e) if e.as_error_resp().is_some() => self.stop_calling(&e.to_string()),
                Err(e) => return Err(e),
            }
        }
        let block = provider.get_block_by_number(BlockNumberOrTag::Latest).await?;
        let block = block.ok_or_else(|| TransportErrorKind::custom_str("no latest block"))?;
        Ok(block.header.timestamp)
    }

    fn stop_calling(&self, why: &str) {
        tracing::debug!(target: "x402_aa_rpc", why, "reading the chain's time from blocks");
        self.blocks_only.store(true, Ordering::Relaxed);
    }
}

/// `clock()` at the fold's address; [`ChainClock::now`] sends it with the fold's code as its
/// override, so alone it means what it means in a fold.
fn clock_call() -> TransactionRequest {
    TransactionRequest::default()
        .to(CALL_FOLD_ADDRESS)
        .input(CallFold::clockCall {}.abi_encode().into())
}

/// The time in a `clock()` answer: one word that fits a `u64`, nothing else.
fn time_in(output: &[u8]) -> Option<u64> {
    let word: [u8; 32] = output.try_into().ok()?;
    u64::try_from(U256::from_be_bytes(word)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_word_that_fits_is_a_time() {
        let word = |v: U256| v.to_be_bytes::<32>();
        assert_eq!(time_in(&word(U256::from(1_780_000_000u64))), Some(1_780_000_000));
        assert_eq!(time_in(&[]), None, "no code at the address: empty output");
        assert_eq!(time_in(&word(U256::from(u64::MAX) + U256::from(1))), None);
        assert_eq!(time_in(&[0u8; 64]), None);
    }
}
