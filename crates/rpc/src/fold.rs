//! Independent `eth_call`s of one batch answered by one `eth_call`.
//!
//! A node spends more on each `eth_call` it is sent (on anvil: a task, a state snapshot, an EVM
//! set up; about 60 µs) than on a cheap view itself. A payment's reads are mostly such views (the
//! EntryPoint nonce, the session's usage), so where a batch holds several plain calls at the same
//! block, the client sends one call to `CallFold` (contracts/src/CallFold.sol) instead, placed by a
//! state override at an unused address, which makes each of them in its own frame (its writes
//! undone before the next) and returns each outcome. Each caller gets the answer its own call would
//! have got: the return data, or the revert data with the node's usual error code and message.
//!
//! Only calls that mean the same inside the fold are folded: a target and input, nothing else (a
//! `from`, gas, value or override of their own would not carry over), except an override that
//! places the fold's own code, which every fold carries (a call to the fold itself, such as the
//! chain's clock in [`crate::ChainClock`]). The callee sees the fold as
//! `msg.sender` where a call alone has none, which views do not look at. A call whose frame failed
//! without revert data (out of gas, say) is asked of the node on its own, as is every call of a
//! fold the node refused; a node that refuses [`REFUSALS_TO_STOP`] in a row (it takes no state
//! overrides) gets no more.

use std::collections::{HashMap, HashSet};

use alloy::{
    primitives::{Address, Bytes, hex},
    rpc::{
        json_rpc::{ErrorPayload, Id, Request, ResponsePayload, SerializedRequest},
        types::state::{AccountOverride, StateOverride},
    },
    sol_types::{Revert, SolCall, SolError},
};
use serde_json::{Value, value::RawValue};
use x402_aa_contracts::{CALL_FOLD_ADDRESS, CALL_FOLD_RUNTIME, CallFold};

/// The most calls in one fold: each runs with what the calls before it left of the node's
/// `eth_call` gas cap, so a fold of many simulations would starve its last ones.
const MAX_FOLDED: usize = 16;

/// Refused folds in a row after which a client stops folding.
pub(crate) const REFUSALS_TO_STOP: usize = 3;

/// The JSON-RPC error code nodes give a reverted `eth_call`.
const REVERTED: i64 = 3;

/// One `eth_call` that stands for the calls at `members` (indexes into the batch).
pub(crate) struct Fold {
    pub(crate) request: SerializedRequest,
    pub(crate) members: Vec<usize>,
}

/// Folds of the foldable calls in `batch` (two or more at the same block), with ids none of
/// `taken` (the batch's ids) is.
pub(crate) fn plan<'a>(
    batch: impl IntoIterator<Item = &'a SerializedRequest>,
    taken: &HashSet<&Id>,
) -> Vec<Fold> {
    // Keyed by the block's JSON text (a `Value` does not hash).
    let mut by_block: HashMap<String, (Value, Vec<(usize, CallFold::Call)>)> = HashMap::new();
    for (index, request) in batch.into_iter().enumerate() {
        if let Some((block, call)) = foldable(request) {
            by_block
                .entry(block.to_string())
                .or_insert_with(|| (block, Vec::new()))
                .1
                .push((index, call));
        }
    }
    let mut folds = Vec::new();
    let mut next_id = 0u64;
    for (block, calls) in by_block.into_values() {
        for chunk in calls.chunks(MAX_FOLDED).filter(|chunk| chunk.len() > 1) {
            let id = loop {
                let id = Id::String(format!("fold-{next_id}"));
                next_id += 1;
                if !taken.contains(&id) {
                    break id;
                }
            };
            let input =
                CallFold::foldCall { calls: chunk.iter().map(|(_, c)| c.clone()).collect() };
            let params = serde_json::json!([
                { "to": CALL_FOLD_ADDRESS, "input": Bytes::from(input.abi_encode()) },
                block,
                fold_code_override(),
            ]);
            let Ok(request) = Request::new("eth_call", id, params).serialize() else { continue };
            folds.push(Fold { request, members: chunk.iter().map(|(i, _)| *i).collect() });
        }
    }
    folds
}

/// The state override every fold carries: the fold's runtime code at its address.
pub(crate) fn fold_code_override() -> StateOverride {
    let mut overrides = StateOverride::default();
    overrides.insert(CALL_FOLD_ADDRESS, AccountOverride::default().with_code(CALL_FOLD_RUNTIME));
    overrides
}

/// The block and the call, for an `eth_call` of a target and input only.
fn foldable(request: &SerializedRequest) -> Option<(Value, CallFold::Call)> {
    if request.method() != "eth_call" {
        return None;
    }
    let params: Vec<Value> = serde_json::from_str(request.params()?.get()).ok()?;
    let at_block = |block: &Value| block.is_string() || block.is_number();
    let (tx, block) = match params.as_slice() {
        [tx] => (tx, Value::from("latest")),
        [tx, block] if at_block(block) => (tx, block.clone()),
        // The fold's own code where the fold puts it (a call to the fold itself, such as
        // `clock()`): inside the fold, the override is already in place.
        [tx, block, overrides] if at_block(block) && places_only_the_fold(overrides) => {
            (tx, block.clone())
        }
        _ => return None,
    };
    let tx = tx.as_object()?;
    let (mut target, mut input, mut data) = (None, None, None);
    for (key, value) in tx {
        match key.as_str() {
            "to" => target = Some(value.as_str()?.parse::<Address>().ok()?),
            "input" => input = Some(value.as_str()?.parse::<Bytes>().ok()?),
            "data" => data = Some(value.as_str()?.parse::<Bytes>().ok()?),
            _ => return None,
        }
    }
    let data = match (input, data) {
        (Some(input), Some(data)) if input != data => return None,
        (Some(bytes), _) | (None, Some(bytes)) => bytes,
        (None, None) => Bytes::new(),
    };
    Some((block, CallFold::Call { target: target?, data }))
}

/// Whether `overrides` places the fold's runtime code at its address, and nothing else.
fn places_only_the_fold(overrides: &Value) -> bool {
    /// The one entry of an object that has exactly one.
    fn sole(value: &Value) -> Option<(&String, &Value)> {
        let mut entries = value.as_object()?.iter();
        let entry = entries.next()?;
        entries.next().is_none().then_some(entry)
    }
    let placed = || {
        let (address, account) = sole(overrides)?;
        let (field, code) = sole(account)?;
        Some(
            address.parse::<Address>().ok()? == CALL_FOLD_ADDRESS
                && field == "code"
                && code.as_str()?.parse::<Bytes>().ok()? == CALL_FOLD_RUNTIME,
        )
    };
    placed() == Some(true)
}

/// What the fold's `response` gave each member (in `fold.members`' order): its answer, or `None`
/// to ask the node for it alone. `None` as a whole where the node refused the fold or answered
/// something that is not its outcomes.
pub(crate) fn unfold(
    fold: &Fold,
    response: &ResponsePayload,
) -> Option<Vec<Option<ResponsePayload>>> {
    let ResponsePayload::Success(raw) = response else { return None };
    let output: Bytes = serde_json::from_str(raw.get()).ok()?;
    let outcomes = CallFold::foldCall::abi_decode_returns(&output).ok()?;
    (outcomes.len() == fold.members.len()).then(|| outcomes.into_iter().map(answer).collect())
}

/// What the node would have answered the call alone: its return data, or its revert as the node's
/// error (`execution reverted`, with the reason where the revert data is an `Error(string)`).
fn answer(outcome: CallFold::Outcome) -> Option<ResponsePayload> {
    let hex =
        RawValue::from_string(format!("\"{}\"", hex::encode_prefixed(&outcome.returnData))).ok()?;
    if outcome.success {
        return Some(ResponsePayload::Success(hex));
    }
    if outcome.returnData.is_empty() {
        return None;
    }
    let message = match Revert::abi_decode(&outcome.returnData) {
        Ok(revert) => format!("execution reverted: {}", revert.reason),
        Err(_) => "execution reverted".to_owned(),
    };
    Some(ResponsePayload::Failure(ErrorPayload {
        code: REVERTED,
        message: message.into(),
        data: Some(hex),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A call that carries the fold's own code joins a fold; any other override keeps a call out,
    /// because the fold would run it without that override.
    #[test]
    fn only_the_folds_own_override_folds() {
        let ours = serde_json::to_value(fold_code_override()).expect("serialises");
        assert!(places_only_the_fold(&ours), "{ours}");
        let address = CALL_FOLD_ADDRESS.to_string();
        let lower = json!({ address.to_lowercase(): { "code": CALL_FOLD_RUNTIME } });
        assert!(places_only_the_fold(&lower), "the address in any case");
        let refused = [
            json!({ address.clone(): { "code": "0x00" } }),
            json!({ address.clone(): { "code": CALL_FOLD_RUNTIME, "balance": "0x1" } }),
            json!({ address.clone(): { "code": CALL_FOLD_RUNTIME }, "0x0000000000000000000000000000000000000001": { "balance": "0x1" } }),
            json!({ "0x0000000000000000000000000000000000000001": { "code": CALL_FOLD_RUNTIME } }),
            json!({}),
            json!([]),
        ];
        for overrides in refused {
            assert!(!places_only_the_fold(&overrides), "{overrides}");
        }
    }
}
