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
//! `from`, gas, value or override of their own would not carry over). The callee sees the fold as
//! `msg.sender` where a call alone has none, which views do not look at. A call whose frame failed
//! without revert data (out of gas, say) is asked of the node on its own, as is every call of a
//! fold the node refused; a node that refuses [`REFUSALS_TO_STOP`] in a row (it takes no state
//! overrides) gets no more.

use std::collections::{HashMap, HashSet};

use alloy::{
    primitives::{Address, Bytes, address, bytes, hex},
    rpc::json_rpc::{ErrorPayload, Id, Request, Response, ResponsePayload, SerializedRequest},
    sol,
    sol_types::{Revert, SolCall, SolError},
};
use serde_json::{Value, value::RawValue};

sol! {
    /// The project's `contracts/src/CallFold.sol`.
    interface CallFold {
        struct Call { address target; bytes data; }
        struct Outcome { bool success; bytes returnData; }
        function fold(Call[] calldata calls) external returns (Outcome[] memory outcomes);
    }
}

/// Where the fold's code is overridden in: no precompile, no known deployment.
pub const CALL_FOLD_ADDRESS: Address = address!("0x00000000000000000000000000000000ca11f01d");

/// The compiled runtime code of `CallFold` (pinned so a binary needs no checkout; a test keeps it
/// equal to contracts/artifacts/CallFold.json).
pub const CALL_FOLD_RUNTIME: Bytes = bytes!(
    "6080604052600436101561001257600080fd5b60003560e01c806323ae1d5a1461011f57639adf9f131461003257600080fd5b3461011a5760407ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc36011261011a5760043573ffffffffffffffffffffffffffffffffffffffff8116810361011a576024359067ffffffffffffffff821161011a573660238301121561011a5781600401359067ffffffffffffffff821161011a57366024838501011161011a57602460008094848295604051948593018337810182815203925af16101086101166100e961059e565b60405192839160208301951515865260408084015260608301906104b3565b03601f1981018352826104d8565b5190fd5b600080fd5b3461011a5760207ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc36011261011a5760043567ffffffffffffffff811161011a573660238201121561011a57806004013567ffffffffffffffff811161011a576024820191602436918360051b01011161011a5761019c816104fb565b916101aa60405193846104d8565b818352601f196101b9836104fb565b0160005b81811061042957505060005b82811061026757836040518091602082016020835281518091526040830190602060408260051b8601019301916000905b82821061020957505050500390f35b91936020610257827fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc060019597998495030186526040838a51805115158452015191818582015201906104b3565b96019201920185949391926101fa565b610272818484610513565b3573ffffffffffffffffffffffffffffffffffffffff811680910361011a5761029c828585610513565b6020810135907fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe18136030182121561011a57019081359167ffffffffffffffff831161011a5760200190823603821361011a578261035e608460009594601f19601f889760405196879460208601997f9adf9f13000000000000000000000000000000000000000000000000000000008b526024870152604060448701528160648701528686013788858286010152011681010301601f1981018352826104d8565b519082305af15061036d61059e565b9081516040811015610385575b5060019150016101c9565b8201916040816020850194031261011a5760208101519081151580920361011a5760408101519067ffffffffffffffff821161011a57019280603f8501121561011a576020840151936103d785610582565b916103e560405193846104d8565b8583526040828701011161011a57600194610407916040602085019101610490565b61041183886105ce565b5190602061041f858a6105ce565b510152528561037a565b60405190604082019180831067ffffffffffffffff8411176104615760209260405260008152606083820152828288010152016101bd565b7f4e487b7100000000000000000000000000000000000000000000000000000000600052604160045260246000fd5b60005b8381106104a35750506000910152565b8181015183820152602001610493565b90601f19601f6020936104d181518092818752878088019101610490565b0116010190565b90601f601f19910116810190811067ffffffffffffffff82111761046157604052565b67ffffffffffffffff81116104615760051b60200190565b91908110156105535760051b810135907fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffc18136030182121561011a570190565b7f4e487b7100000000000000000000000000000000000000000000000000000000600052603260045260246000fd5b67ffffffffffffffff811161046157601f01601f191660200190565b3d156105c9573d906105af82610582565b916105bd60405193846104d8565b82523d6000602084013e565b606090565b80518210156105535760209160051b01019056fea164736f6c634300081c000a"
);

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

/// What a fold's answer gave each member: its answer, or `None` to ask the node for it alone.
pub(crate) type Unfolded = Vec<Option<Response>>;

/// Folds of the foldable calls in `batch` (two or more at the same block), with ids none of the
/// batch's requests uses.
pub(crate) fn plan<'a>(batch: impl IntoIterator<Item = &'a SerializedRequest>) -> Vec<Fold> {
    let mut ids = HashSet::new();
    let mut by_block: HashMap<String, Vec<(usize, CallFold::Call)>> = HashMap::new();
    for (index, request) in batch.into_iter().enumerate() {
        ids.insert(request.id().clone());
        if let Some((block, call)) = foldable(request) {
            by_block.entry(block).or_default().push((index, call));
        }
    }
    let mut folds = Vec::new();
    let mut next_id = 0u64;
    for (block, calls) in by_block {
        for chunk in calls.chunks(MAX_FOLDED).filter(|chunk| chunk.len() > 1) {
            let id = loop {
                let id = Id::String(format!("fold-{next_id}"));
                next_id += 1;
                if !ids.contains(&id) {
                    break id;
                }
            };
            let input =
                CallFold::foldCall { calls: chunk.iter().map(|(_, c)| c.clone()).collect() };
            let params = serde_json::json!([
                { "to": CALL_FOLD_ADDRESS, "input": Bytes::from(input.abi_encode()) },
                serde_json::from_str::<Value>(&block).unwrap_or_else(|_| "latest".into()),
                { CALL_FOLD_ADDRESS.to_string(): { "code": CALL_FOLD_RUNTIME } },
            ]);
            let Ok(request) = Request::new("eth_call", id, params).serialize() else { continue };
            folds.push(Fold { request, members: chunk.iter().map(|(i, _)| *i).collect() });
        }
    }
    folds
}

/// The block (as JSON) and the call, for an `eth_call` of a target and input only.
fn foldable(request: &SerializedRequest) -> Option<(String, CallFold::Call)> {
    if request.method() != "eth_call" {
        return None;
    }
    let params: Vec<Value> = serde_json::from_str(request.params()?.get()).ok()?;
    let (tx, block) = match params.as_slice() {
        [tx] => (tx, "\"latest\"".to_owned()),
        [tx, block] if block.is_string() || block.is_number() => (tx, block.to_string()),
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

/// Each member's answer from the fold's `response`, or `None` where the node refused the fold or
/// answered something that is not its outcomes.
pub(crate) fn unfold(fold: &Fold, response: &Response, batch_ids: &[&Id]) -> Option<Unfolded> {
    let ResponsePayload::Success(raw) = &response.payload else { return None };
    let output: Bytes = serde_json::from_str(raw.get()).ok()?;
    let outcomes = CallFold::foldCall::abi_decode_returns(&output).ok()?;
    if outcomes.len() != fold.members.len() {
        return None;
    }
    let unfolded = fold
        .members
        .iter()
        .zip(outcomes)
        .map(|(&member, outcome)| {
            let payload = answer(outcome)?;
            Some(Response { id: batch_ids[member].clone(), payload })
        })
        .collect();
    Some(unfolded)
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
