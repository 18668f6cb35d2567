//! The session policy on an in-process EVM: the real EntryPoint v0.6 bytecode and our contracts on
//! revm, an op builder that plays bundler, owner and (hostile) session key, an ERC-7562 validation
//! tracer and the invariant fuzzer's model. Tests live in `tests/`.

#![warn(missing_docs)]

pub mod abi;
pub mod artifacts;
pub mod chain;
pub mod kernel;
pub mod ops;
pub mod probe;

pub use chain::{Addresses, Chain, Outcome};

/// Everything that can go wrong while driving the in-process chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building the stack failed: an artifact is missing or unreadable (run `npm ci` /
    /// `npm run compile`), or a contract did not land at its canonical address. Holds the file
    /// or contract and the cause; nothing was tested yet, so fix the checkout, not the test.
    #[error("setup: {0}")]
    Setup(String),
    /// revm refused the transaction before executing it (an invalid transaction, not a revert);
    /// holds revm's error. Points at the harness, not at the contract under test.
    #[error("evm: {0}")]
    Evm(String),
    /// A call that had to succeed ([`Chain::must`], [`Chain::view`]) reverted; holds the decoded
    /// reason ([`Outcome::revert_reason`]). Use [`Chain::send`] where a revert is the expectation.
    #[error("reverted: {0}")]
    Reverted(String),
    /// A view returned data that does not decode as its ABI says: the bindings in [`abi`] and the
    /// deployed contract disagree.
    #[error("decode: {0}")]
    Decode(String),
    /// A local key failed to sign (owner, session key or paymaster signer); holds alloy's error.
    #[error("signing: {0}")]
    Sign(String),
    /// A bytecode hex string (artifact or vendored creation code) is not valid hex.
    #[error("hex: {0}")]
    Hex(#[from] alloy::hex::FromHexError),
}

/// The harness's result: every failure is an [`Error`] naming the stage it happened in.
pub type Result<T, E = Error> = std::result::Result<T, E>;
