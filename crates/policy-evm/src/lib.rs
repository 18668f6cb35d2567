//! The session policy on an in-process EVM: the real EntryPoint v0.6 bytecode and our contracts on
//! revm, an op builder that plays bundler, owner and (hostile) session key, an ERC-7562 validation
//! tracer and the invariant fuzzer's model. Tests live in `tests/`.

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
    #[error("setup: {0}")]
    Setup(String),
    #[error("evm: {0}")]
    Evm(String),
    #[error("reverted: {0}")]
    Reverted(String),
    #[error("decode: {0}")]
    Decode(String),
    #[error("signing: {0}")]
    Sign(String),
    #[error("hex: {0}")]
    Hex(#[from] alloy::hex::FromHexError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
