//! What `handleOps` did, decoded.

use alloy::{
    primitives::{B256, U256},
    rpc::types::TransactionReceipt,
    sol_types::{SolEventInterface, decode_revert_reason},
};
use x402_aa_contracts::EntryPoint::{
    self, AccountDeployed, EntryPointEvents, UserOperationEvent, UserOperationRevertReason,
};

use crate::{Error, Result};

/// A bundle either lands (each op then succeeded or reverted in execution) or the EntryPoint
/// refuses it in validation with `FailedOp`, which reverts the whole transaction.
#[derive(Debug, Clone)]
pub enum HandleOpsOutcome {
    /// The bundle was mined.
    Included(Box<Included>),
    /// Found by simulating the bundle first, so no transaction was sent.
    FailedOp(EntryPoint::FailedOp),
}

/// A mined `handleOps` transaction with the EntryPoint's per-op events.
#[derive(Debug, Clone)]
pub struct Included {
    /// The `handleOps` transaction's receipt.
    pub receipt: TransactionReceipt,
    /// One per op, in bundle order.
    pub events: Vec<UserOperationEvent>,
    /// Present for ops whose execution reverted (`success == false`).
    pub revert_reasons: Vec<UserOperationRevertReason>,
    /// Present for ops that deployed their sender through `initCode`.
    pub deployed: Vec<AccountDeployed>,
}

impl HandleOpsOutcome {
    /// The mined bundle, or [`Error::FailedOp`].
    pub fn into_included(self) -> Result<Included> {
        match self {
            Self::Included(included) => Ok(*included),
            Self::FailedOp(f) => Err(Error::FailedOp { op_index: f.opIndex, reason: f.reason }),
        }
    }

    /// The EntryPoint's reason (e.g. `"AA23 reverted: ..."`) if validation refused the bundle.
    pub fn failed_op(&self) -> Option<(U256, &str)> {
        match self {
            Self::FailedOp(f) => Some((f.opIndex, f.reason.as_str())),
            Self::Included(_) => None,
        }
    }
}

impl Included {
    pub(crate) fn from_receipt(receipt: TransactionReceipt) -> Self {
        let mut out =
            Self { receipt, events: Vec::new(), revert_reasons: Vec::new(), deployed: Vec::new() };
        for log in out.receipt.inner.logs() {
            if log.address() != x402_aa::ENTRY_POINT_V06 {
                continue;
            }
            match EntryPointEvents::decode_log(&log.inner).map(|l| l.data) {
                Ok(EntryPointEvents::UserOperationEvent(e)) => out.events.push(e),
                Ok(EntryPointEvents::UserOperationRevertReason(e)) => out.revert_reasons.push(e),
                Ok(EntryPointEvents::AccountDeployed(e)) => out.deployed.push(e),
                _ => {}
            }
        }
        out
    }

    /// The `UserOperationEvent` for one op.
    pub fn event(&self, user_op_hash: B256) -> Option<&UserOperationEvent> {
        self.events.iter().find(|e| e.userOpHash == user_op_hash)
    }

    /// True when every op in the bundle executed successfully.
    pub fn all_succeeded(&self) -> bool {
        !self.events.is_empty() && self.events.iter().all(|e| e.success)
    }

    /// Execution revert reasons, decoded as `Error(string)`/`Panic` where possible, else hex.
    pub fn revert_reason_strings(&self) -> Vec<String> {
        self.revert_reasons
            .iter()
            .map(|r| {
                decode_revert_reason(&r.revertReason).unwrap_or_else(|| r.revertReason.to_string())
            })
            .collect()
    }
}
