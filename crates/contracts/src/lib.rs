//! Typed bindings and runtime artifact loading for the contracts the project talks to.
//!
//! Two sources: the EntryPoint v0.6 stack from `@account-abstraction/contracts@0.6.0`
//! ([`account_abstraction`]) and the project's own contracts ([`project`]). Bytecode is loaded
//! from artifact files at run time ([`npm_artifact`], [`project_artifact`]) so this crate never
//! needs a Solidity compiler or a fixed checkout layout to build.

#![warn(missing_docs)]

pub mod abi_check;
pub mod account_abstraction;
pub mod artifact;
pub mod call_fold;
pub mod project;
pub mod verify_probe;

pub use account_abstraction::{
    EntryPoint, SimpleAccount, SimpleAccountFactory, UserOperation, VerifyProbe, VerifyingPaymaster,
};
pub use artifact::{
    Artifact, ArtifactError, NODE_MODULES_ENV, PROJECT_ARTIFACTS_ENV, node_modules_dir,
    npm_artifact, project_artifact, project_artifacts_dir,
};
pub use call_fold::{CALL_FOLD_ADDRESS, CALL_FOLD_RUNTIME, CallFold};
pub use project::{
    BiconomySessionModule, KernelSessionValidator, SafeSessionModule, SessionGrant,
    SessionKeyAccount, SessionKeyAccountFactory, SettlementContract, TestEip3009Token,
    TestStablecoin,
};
pub use verify_probe::{VERIFY_PROBE_ADDRESS, VERIFY_PROBE_RUNTIME, probe_bundle_call, probe_call};
