//! Errors: [`Error`] for configuring and running the service, [`SponsorError`] for what a
//! JSON-RPC caller is told, [`PolicyViolation`] for why an op is not sponsored.

use std::fmt;

use alloy::primitives::{Address, Selector, U256};

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// JSON-RPC error codes this service answers with.
///
/// The -325xx codes are the ERC-4337 (EIP-7769) ones bundlers use, so a client that already
/// classifies bundler errors (`x402_aa_rpc::BundlerErrorCode`) treats the paymaster's the same
/// way: only [`THROTTLED`](code::THROTTLED) is worth retrying.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a JSON-RPC 2.0 request (or an empty or oversized batch, or a body over
    /// the size limit).
    pub const INVALID_REQUEST: i64 = -32600;
    /// Any method but `pm_sponsor_userop`.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Malformed params, an EntryPoint this paymaster does not serve, or a sponsorship type
    /// other than 0.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The node or the signer failed; the op itself may be fine.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Missing or unknown API key. In the JSON-RPC "server error" range, clear of every
    /// ERC-4337 code, so no client mistakes it for a verdict on the op.
    pub const UNAUTHORIZED: i64 = -32001;
    /// The sponsorship policy refused the op (EIP-7769 "rejected by paymaster").
    pub const PAYMASTER_REJECTED: i64 = -32501;
    /// Per-sender rate limit hit (EIP-7769 "throttled"; NERO uses it the same way).
    pub const THROTTLED: i64 = -32504;
}

/// Why the service could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Refused at start: with no key, anyone could drain the deposit.
    #[error("no API keys configured; an open paymaster would sponsor anyone")]
    NoApiKeys,
    /// An empty key would match a request that sends none.
    #[error("an empty API key is configured")]
    EmptyApiKey,
    /// The policy contradicts itself (the text says which rule).
    #[error("invalid sponsor policy: {0}")]
    InvalidPolicy(&'static str),
    /// The node URL does not parse.
    #[error("invalid node RPC URL: {0}")]
    InvalidRpcUrl(#[source] url::ParseError),
    /// Binding or serving the socket failed.
    #[error("could not listen or serve: {0}")]
    Io(#[from] std::io::Error),
    /// The node did not answer a start-up check.
    #[error("node RPC failed: {0}")]
    Node(#[from] alloy::transports::TransportError),
    /// Reading the paymaster contract's configuration failed.
    #[error("paymaster contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// The node serves another chain than configured: approvals would be for the wrong chain.
    #[error("chain id is {actual}, configured {configured}")]
    ChainIdMismatch {
        /// From the configuration.
        configured: u64,
        /// From the node.
        actual: u64,
    },
    /// The contract would reject every approval this service signs.
    #[error(
        "paymaster {paymaster} verifies signatures of {on_chain}, but the configured signer is {configured}"
    )]
    SignerMismatch {
        /// The VerifyingPaymaster.
        paymaster: Address,
        /// The configured signer's address.
        configured: Address,
        /// The contract's `verifyingSigner`.
        on_chain: Address,
    },
    /// The contract serves another EntryPoint than the one ops are checked against.
    #[error("paymaster {paymaster} is bound to EntryPoint {on_chain}, configured {configured}")]
    EntryPointMismatch {
        /// The VerifyingPaymaster.
        paymaster: Address,
        /// The configured EntryPoint.
        configured: Address,
        /// The contract's `entryPoint()`.
        on_chain: Address,
    },
    /// The server task panicked or was cancelled.
    #[error("the server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// Stable machine-readable form, for logs and the CLI.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoApiKeys => "no_api_keys",
            Self::EmptyApiKey => "empty_api_key",
            Self::InvalidPolicy(_) => "invalid_policy",
            Self::InvalidRpcUrl(_) => "invalid_rpc_url",
            Self::Io(_) => "io_error",
            Self::Node(_) => "node_error",
            Self::Contract(_) => "contract_error",
            Self::ChainIdMismatch { .. } => "chain_id_mismatch",
            Self::SignerMismatch { .. } => "signer_mismatch",
            Self::EntryPointMismatch { .. } => "entry_point_mismatch",
            Self::Task(_) => "task_failed",
        }
    }
}

/// A JSON-RPC error answer. `Display` is the wire `message`; [`SponsorError::reason`] goes in
/// `data.reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SponsorError {
    /// The body is not JSON (the parser's message).
    #[error("parse error: {0}")]
    Parse(String),
    /// JSON, but not a JSON-RPC 2.0 request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Refused before parsing, so an oversized body costs no memory.
    #[error("invalid request: body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The size limit, in bytes.
        limit: usize,
    },
    /// The method named in the request.
    #[error("method not found: {0}")]
    MethodNotFound(String),
    /// The params do not decode (which one and why).
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The op is for an EntryPoint this paymaster does not serve.
    #[error("invalid params: entry point {got} is not supported; this paymaster serves {expected}")]
    WrongEntryPoint {
        /// The configured EntryPoint.
        expected: Address,
        /// The one the request named.
        got: Address,
    },
    /// Only free gas (type 0) is offered; the type the request asked for.
    #[error("invalid params: sponsorship type {0} is not supported; only type 0 (free gas) is")]
    UnsupportedSponsorType(String),
    /// No `apikey` parameter and no `X-API-Key` header.
    #[error("unauthorized: missing API key")]
    MissingApiKey,
    /// A key that is not configured.
    #[error("unauthorized: unknown API key")]
    UnknownApiKey,
    /// The policy refused the op; the violation names the rule.
    #[error("paymaster rejected: {0}")]
    Rejected(#[from] PolicyViolation),
    /// The sender's per-minute rate limit is spent; the one refusal worth retrying.
    #[error(
        "throttled: sender {sender} exceeded {limit} sponsored operations per minute; retry in {retry_after_secs} s"
    )]
    Throttled {
        /// The op's sender.
        sender: Address,
        /// Sponsored ops allowed per sender per minute.
        limit: u32,
        /// When the window frees a slot.
        retry_after_secs: u64,
    },
    /// Carries what failed, never the node's URL or a key; the details go to the log.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl SponsorError {
    /// The JSON-RPC error code; see [`code`].
    pub fn code(&self) -> i64 {
        match self {
            Self::Parse(_) => code::PARSE_ERROR,
            Self::InvalidRequest(_) | Self::BodyTooLarge { .. } => code::INVALID_REQUEST,
            Self::MethodNotFound(_) => code::METHOD_NOT_FOUND,
            Self::InvalidParams(_)
            | Self::WrongEntryPoint { .. }
            | Self::UnsupportedSponsorType(_) => code::INVALID_PARAMS,
            Self::MissingApiKey | Self::UnknownApiKey => code::UNAUTHORIZED,
            Self::Rejected(_) => code::PAYMASTER_REJECTED,
            Self::Throttled { .. } => code::THROTTLED,
            Self::Internal(_) => code::INTERNAL_ERROR,
        }
    }

    /// Stable machine-readable reason, sent as `error.data.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Parse(_) => "parse_error",
            Self::InvalidRequest(_) => "invalid_request",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::MethodNotFound(_) => "method_not_found",
            Self::InvalidParams(_) => "invalid_params",
            Self::WrongEntryPoint { .. } => "unsupported_entry_point",
            Self::UnsupportedSponsorType(_) => "unsupported_sponsor_type",
            Self::MissingApiKey => "missing_api_key",
            Self::UnknownApiKey => "unknown_api_key",
            Self::Rejected(v) => v.reason(),
            Self::Throttled { .. } => "throttled",
            Self::Internal(_) => "internal_error",
        }
    }
}

/// Why the policy refuses an op. Order of variants = order of checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// The policy has a sender allow list and the op's sender is not on it.
    #[error("sender {0} is not on the allow list")]
    SenderNotAllowed(Address),
    /// A target allow list is set, but the callData is no call shape of a known account kind.
    #[error(
        "callData targets cannot be determined (selector {selector:?}); only execute and executeBatch are sponsored"
    )]
    UnrecognisedCallData {
        /// The callData's first four bytes, when it has them.
        selector: Option<Selector>,
    },
    /// A call goes to a contract outside the target allow list.
    #[error("call target {0} is not on the allow list")]
    TargetNotAllowed(Address),
    /// Not an aa-native payment of any account kind, and the policy sponsors payments only.
    #[error(
        "callData is not an aa-native payment (approve + settle); only payments are sponsored, because only their execution can be simulated to success"
    )]
    NotAPayment,
    /// The op's gas limits add up to more than one op may use.
    #[error(
        "callGasLimit + verificationGasLimit + preVerificationGas = {total} exceeds the per-op limit {max}"
    )]
    GasTooHigh {
        /// The sum of the op's three gas limits.
        total: U256,
        /// The policy's per-op limit.
        max: u64,
    },
    /// preVerificationGas is paid whatever the op does, so it is capped on its own.
    #[error("preVerificationGas {pre_verification_gas} exceeds the cap {cap}")]
    PreVerificationGasTooHigh {
        /// The op's value.
        pre_verification_gas: U256,
        /// The policy's cap.
        cap: u64,
    },
    /// A fee above the cap would let the bundler (possibly the key holder) take the difference.
    #[error("maxFeePerGas {max_fee_per_gas} exceeds the cap {cap}")]
    FeeTooHigh {
        /// The op's value.
        max_fee_per_gas: U256,
        /// The policy's cap.
        cap: u128,
    },
    /// An op no EntryPoint prices consistently.
    #[error("maxPriorityFeePerGas {priority} exceeds maxFeePerGas {max_fee_per_gas}")]
    PriorityFeeAboveMaxFee {
        /// The op's maxPriorityFeePerGas.
        priority: U256,
        /// The op's maxFeePerGas.
        max_fee_per_gas: U256,
    },
    /// The tip goes to the bundler, so it is capped like the fee.
    #[error("maxPriorityFeePerGas {priority} exceeds the cap {cap}")]
    PriorityFeeTooHigh {
        /// The op's maxPriorityFeePerGas.
        priority: U256,
        /// The policy's cap.
        cap: u128,
    },
    /// `simulateHandleOp` refused the op in validation (`FailedOp`: the EntryPoint's `AAxx`
    /// reason, with the account's revert string where it gave one).
    #[error("simulation: the EntryPoint refuses the op: {0}")]
    SimulationFailed(String),
    /// Validation passes but execution would not pay: the deposit would be charged for nothing.
    #[error("simulation: the op validates but its execution would revert: {0}")]
    ExecutionWouldRevert(String),
    /// A per-account or per-session budget of the period would be exceeded; nothing was charged.
    #[error(
        "{scope} sponsorship limit reached: {used} of {limit} {kind} used this period, this op needs {requested}; the next period starts in {retry_after_secs} s"
    )]
    LimitReached {
        /// Whose budget ran out.
        scope: LimitScope,
        /// Which figure of it.
        kind: LimitKind,
        /// The budget per period.
        limit: U256,
        /// Already sponsored this period.
        used: U256,
        /// What this op would add.
        requested: U256,
        /// When the next period starts.
        retry_after_secs: u64,
    },
}

impl PolicyViolation {
    /// Stable machine-readable reason; an account's own session refusal found by the simulation
    /// answers with that rule's reason, the same one the SDK, the facilitator and the chain give.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SenderNotAllowed(_) => "sender_not_allowed",
            Self::UnrecognisedCallData { .. } => "unrecognised_call_data",
            Self::TargetNotAllowed(_) => "target_not_allowed",
            Self::NotAPayment => "not_a_payment",
            Self::GasTooHigh { .. } => "gas_too_high",
            Self::PreVerificationGasTooHigh { .. } => "pre_verification_gas_too_high",
            Self::FeeTooHigh { .. } => "fee_too_high",
            Self::PriorityFeeAboveMaxFee { .. } => "priority_fee_above_max_fee",
            Self::PriorityFeeTooHigh { .. } => "priority_fee_too_high",
            // The account's own session rule, named as the SDK, the facilitator and the chain name it.
            Self::SimulationFailed(m) => {
                x402_aa_policy::Rule::quoted_in(m).map_or("simulation_failed", |rule| rule.reason())
            }
            Self::ExecutionWouldRevert(_) => "execution_would_revert",
            Self::LimitReached { scope: LimitScope::Account, kind: LimitKind::Ops, .. } => {
                "account_ops_limit"
            }
            Self::LimitReached { scope: LimitScope::Account, kind: LimitKind::Wei, .. } => {
                "account_wei_limit"
            }
            Self::LimitReached { scope: LimitScope::Session, kind: LimitKind::Ops, .. } => {
                "session_ops_limit"
            }
            Self::LimitReached { scope: LimitScope::Session, kind: LimitKind::Wei, .. } => {
                "session_wei_limit"
            }
        }
    }

    /// Seconds until asking again can succeed, for refusals that time lifts.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::LimitReached { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

/// Whose budget a [`PolicyViolation::LimitReached`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// The op's sender.
    Account,
    /// The session the op's signature names.
    Session,
}

/// Which budget a [`PolicyViolation::LimitReached`] ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// Sponsored operations.
    Ops,
    /// Worst-case gas cost, in wei.
    Wei,
}

impl fmt::Display for LimitScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Account => "account",
            Self::Session => "session",
        })
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ops => "ops",
            Self::Wei => "wei",
        })
    }
}
