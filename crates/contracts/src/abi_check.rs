//! Drift check between hand-written bindings and the compiled ABI they stand for.

use alloy::primitives::{B256, Selector};

use crate::Artifact;

/// The project artifact `name` once its runtime code is checked to be `pinned` (test helper for
/// the never-deployed contracts whose code a crate pins rather than reads at run time); `None`
/// for a crate built outside the checkout, which has no artifacts to compare with.
#[cfg(test)]
pub(crate) fn pinned_runtime_or_skip(
    name: &str,
    pinned: &alloy::primitives::Bytes,
) -> Option<Artifact> {
    use crate::ArtifactError;
    let artifact = match crate::project_artifact(name) {
        Ok(artifact) => artifact,
        Err(ArtifactError::Missing { .. } | ArtifactError::DirNotFound { .. }) => return None,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        &artifact.deployed_bytecode, pinned,
        "contracts/artifacts/{name}.json changed: re-pin its runtime code"
    );
    Some(artifact)
}

/// Panics (test helper) if a binding declares a function, event or error the artifact lacks;
/// a mismatch means a Solidity signature was mistyped or the contract changed.
#[cfg(test)]
pub(crate) fn assert_subset_of_artifact(
    artifact: &Artifact,
    calls: &[[u8; 4]],
    events: &[[u8; 32]],
    errors: &[[u8; 4]],
) {
    let missing = missing_from_artifact(artifact, calls, events, errors);
    assert!(missing.is_empty(), "{}: bindings not in artifact ABI: {missing:?}", artifact.name);
}

/// Every declared selector that the artifact's ABI does not contain, described for a message.
pub fn missing_from_artifact(
    artifact: &Artifact,
    calls: &[[u8; 4]],
    events: &[[u8; 32]],
    errors: &[[u8; 4]],
) -> Vec<String> {
    let abi = &artifact.abi;
    let mut missing = Vec::new();
    for sel in calls.iter().map(|s| Selector::from(*s)) {
        if !abi.functions().any(|f| f.selector() == sel) {
            missing.push(format!("function {sel}"));
        }
    }
    for topic in events.iter().map(|t| B256::from(*t)) {
        if !abi.events().any(|e| e.selector() == topic) {
            missing.push(format!("event {topic}"));
        }
    }
    for sel in errors.iter().map(|s| Selector::from(*s)) {
        if !abi.errors().any(|e| e.selector() == sel) {
            missing.push(format!("error {sel}"));
        }
    }
    missing
}
