//! Simulating an op before approving it: `EntryPoint.simulateHandleOp` in an `eth_call`, with the
//! paymaster's approval in place, then `isSettled(requestHash)` on the settlement contract as
//! the simulation's target call.
//!
//! The op is simulated before the account signs it (the paymaster's signature must be in the op
//! the account signs), so both signatures are placeholders: the caller's (an owner-shaped one
//! replaced by a well-formed signature over a fixed message), and that same signature in
//! `paymasterAndData`. Both recover to the wrong address, which
//! accounts and the VerifyingPaymaster report as `SIG_VALIDATION_FAILED`, not as a revert;
//! `simulateHandleOp` goes on to execute the op regardless. So every other validation rule (the
//! session scope, the deposit, the gas limits) and the execution itself run as they will on
//! chain.
//!
//! v0.6 reports no execution outcome (a reverted call only emits an event, invisible to
//! `eth_call`), but a payment has a visible effect: the settlement records its requestHash. The
//! target call reads it after execution, in the same simulated state.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol_types::{SolCall, SolValue},
};
use x402_aa::UserOperation;
use x402_aa_contracts::{
    EntryPoint::{self, EntryPointErrors},
    SettlementContract,
};

use crate::{PolicyViolation, SponsorError};

/// What a simulation needs besides the op.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Simulation<'a> {
    pub(crate) provider: &'a DynProvider,
    pub(crate) entry_point: Address,
    /// A well-formed 65-byte signature by no one who matters, for the signature slots.
    pub(crate) placeholder: &'a Bytes,
}

impl Simulation<'_> {
    /// `Ok` if `op` (with a placeholder approval in `paymasterAndData`) validates and, when it is
    /// a payment to `(settlement, request_hash)`, executes and settles.
    pub(crate) async fn run(
        &self,
        op: &UserOperation,
        payment: Option<(Address, B256)>,
    ) -> Result<(), SponsorError> {
        let mut op = op.clone();
        if op.signature.is_empty() || op.signature.len() == 65 {
            // Owner-shaped (or absent): SimpleAccount's `ECDSA.recover` reverts on a malformed
            // signature (wrong length, the SDK's 0xff… placeholder with its high `s`), where a
            // well-formed one by the wrong key gets SIG_VALIDATION_FAILED and validation goes on.
            op.signature = self.placeholder.clone();
        }
        let (target, target_call) = match payment {
            Some((settlement, request_hash)) => (
                settlement,
                Bytes::from(
                    SettlementContract::isSettledCall { requestHash: request_hash }.abi_encode(),
                ),
            ),
            None => (Address::ZERO, Bytes::new()),
        };
        let call = EntryPoint::simulateHandleOpCall {
            op: (&op).into(),
            target,
            targetCallData: target_call,
        };
        let tx =
            TransactionRequest::default().with_to(self.entry_point).with_input(call.abi_encode());
        // At the latest block, like the `isSettled` read beside it (alloy's `provider.call`
        // would ask for `pending`, a block the node builds from its pool for every call).
        let simulated = async { self.provider.call(tx).latest().await };
        let settled_before = async {
            match payment {
                Some((settlement, request_hash)) => {
                    let read = SettlementContract::new(settlement, self.provider)
                        .isSettled(request_hash)
                        .call()
                        .await;
                    // A target that cannot answer is judged by the simulation's own target call.
                    read.unwrap_or(false)
                }
                None => false,
            }
        };
        let (simulated, settled_before) = tokio::join!(simulated, settled_before);
        let error = match simulated {
            Ok(_) => {
                return Err(SponsorError::Internal("simulateHandleOp returned without a result"));
            }
            Err(error) => error,
        };
        let Some(payload) = error.as_error_resp() else {
            tracing::warn!(target: "x402_aa_paymaster", %error, "simulateHandleOp failed");
            return Err(SponsorError::Internal("simulateHandleOp call failed"));
        };
        let result = match payload.as_decoded_interface_error::<EntryPointErrors>() {
            Some(EntryPointErrors::ExecutionResult(result)) => result,
            Some(EntryPointErrors::FailedOp(failed)) => {
                return Err(PolicyViolation::SimulationFailed(failed.reason).into());
            }
            Some(other) => {
                return Err(PolicyViolation::SimulationFailed(format!("{other:?}")).into());
            }
            // A plain revert string (e.g. "AA95 out of gas") or a revert the node could not decode.
            None => {
                return Err(PolicyViolation::SimulationFailed(payload.message.to_string()).into());
            }
        };
        if payment.is_none() {
            return Ok(());
        }
        if settled_before {
            return Err(PolicyViolation::ExecutionWouldRevert(
                "the requestHash is already settled, so settle reverts".into(),
            )
            .into());
        }
        let settled =
            result.targetSuccess && bool::abi_decode(&result.targetResult).unwrap_or(false);
        if !settled {
            return Err(PolicyViolation::ExecutionWouldRevert(
                "the payment does not settle (the account's call reverts)".into(),
            )
            .into());
        }
        Ok(())
    }
}
