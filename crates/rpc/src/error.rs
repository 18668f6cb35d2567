//! Errors of the bundler and paymaster clients, and the EIP-7769 codes bundlers answer with.

use std::time::Duration;

use alloy::primitives::B256;
use x402_aa::x402::Reason;

/// The crate's result type.
pub type Result<T, E = RpcError> = std::result::Result<T, E>;

/// Why a bundler or paymaster call failed.
///
/// The split that matters to callers is [`RpcError::is_retriable`]: the transport and the
/// service's load are worth retrying, a JSON-RPC verdict on the UserOp is not (the same op would
/// be rejected again, and resubmitting it only burns rate limit).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The configured endpoint is not a URL; fix the configuration, retrying cannot help.
    #[error("invalid RPC URL {url:?}: {source}")]
    InvalidUrl {
        /// Scheme, host and port only: the path and query may carry an API key.
        url: String,
        /// Why the URL did not parse.
        #[source]
        source: url::ParseError,
    },
    /// reqwest could not build its HTTP client (TLS backend or system configuration); an
    /// environment fault, not retriable.
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The request parameters did not serialize to JSON; a bug in the caller's values, not the
    /// service.
    #[error("could not encode the {method} request: {source}")]
    Encode {
        /// The JSON-RPC method being called.
        method: &'static str,
        /// The serializer's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The HTTP exchange failed (connect, TLS, reset); retried by the client's [`RetryPolicy`].
    ///
    /// [`RetryPolicy`]: crate::RetryPolicy
    #[error("{method}: transport error: {source}")]
    Transport {
        /// The JSON-RPC method being called.
        method: &'static str,
        /// The underlying error, with the URL stripped so no API key leaks into logs.
        #[source]
        source: reqwest::Error,
    },
    /// One attempt got no answer within the per-attempt timeout; retriable.
    #[error("{method}: no answer within {after:?}")]
    Timeout {
        /// The JSON-RPC method being called.
        method: &'static str,
        /// The per-attempt timeout that elapsed.
        after: Duration,
    },
    /// A non-2xx HTTP status without a JSON-RPC error object; retriable for 408, 429 and 5xx.
    #[error("{method}: HTTP {status}: {body}")]
    Http {
        /// The JSON-RPC method being called.
        method: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The first 512 characters of the response body.
        body: String,
    },
    /// The service answered with a JSON-RPC error: usually a verdict on the op (see
    /// [`RpcError::bundler_code`]); only -32504 (throttled) is retried.
    #[error("{method}: JSON-RPC error {code}: {message}")]
    JsonRpc {
        /// The JSON-RPC method being called.
        method: &'static str,
        /// The JSON-RPC error code; EIP-7769 codes map to [`BundlerErrorCode`].
        code: i64,
        /// The error message; for -32500 it quotes the EntryPoint's `AAxx` reason.
        message: String,
        /// The error's `data` member, if present and not null.
        data: Option<serde_json::Value>,
    },
    /// The answer was not a JSON-RPC response for this request, or its `result` did not have
    /// the expected shape; points at an incompatible service, not a transient fault.
    #[error("{method}: malformed response: {detail}")]
    MalformedResponse {
        /// The JSON-RPC method being called.
        method: &'static str,
        /// What was wrong with the answer.
        detail: String,
    },
    /// [`wait_for_receipt`](crate::BundlerClient::wait_for_receipt) gave up; the op may still be
    /// included, so look the hash up again before resubmitting or treating it as failed.
    #[error("no receipt for userOp {user_op_hash} within {waited:?}; it may still be included")]
    ReceiptTimeout {
        /// The op that was waited for.
        user_op_hash: B256,
        /// How long the client polled.
        waited: Duration,
    },
}

impl RpcError {
    /// The NERO reason a facilitator reports for this failure.
    pub fn reason(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Typed form of [`RpcError::reason`].
    pub fn kind(&self) -> Reason {
        match self {
            Self::InvalidUrl { .. } | Self::Client(_) | Self::Encode { .. } => {
                Reason::InternalError
            }
            Self::Transport { .. }
            | Self::Timeout { .. }
            | Self::Http { .. }
            | Self::JsonRpc { .. }
            | Self::MalformedResponse { .. } => Reason::BundlerError,
            Self::ReceiptTimeout { .. } => Reason::ReceiptTimeout,
        }
    }

    /// Whether sending the same request again may succeed: transport failures, timeouts, HTTP
    /// 408/429/5xx without a JSON-RPC verdict, and the EIP-7769 "throttled" code.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::JsonRpc { code, .. } => {
                BundlerErrorCode::from_code(*code).is_some_and(|c| c == BundlerErrorCode::Throttled)
            }
            _ => false,
        }
    }

    /// The EIP-7769 meaning of a JSON-RPC error code, if it has one.
    pub fn bundler_code(&self) -> Option<BundlerErrorCode> {
        match self {
            Self::JsonRpc { code, .. } => BundlerErrorCode::from_code(*code),
            _ => None,
        }
    }

    /// Whether the bundler judged the UserOp itself invalid (as opposed to being unavailable).
    pub fn is_rejection(&self) -> bool {
        self.bundler_code().is_some_and(BundlerErrorCode::is_rejection)
    }

    /// The EntryPoint's `AAxx` code quoted in a -32500 message ("AA23 reverted: …"), which
    /// says which validation step failed.
    pub fn entry_point_code(&self) -> Option<&str> {
        let Self::JsonRpc { message, .. } = self else { return None };
        let bytes = message.as_bytes();
        (0..bytes.len().saturating_sub(3)).find_map(|i| {
            let candidate = message.get(i..i + 4)?;
            let b = candidate.as_bytes();
            let boundary = |j: Option<&u8>| j.is_none_or(|c| !c.is_ascii_alphanumeric());
            let is_code = b[0] == b'A'
                && b[1] == b'A'
                && b[2].is_ascii_digit()
                && b[3].is_ascii_digit()
                && boundary(i.checked_sub(1).and_then(|p| bytes.get(p)))
                && boundary(bytes.get(i + 4));
            is_code.then_some(candidate)
        })
    }
}

/// ERC-4337 bundler JSON-RPC error codes (EIP-7769 / the former ERC-4337 RPC section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BundlerErrorCode {
    /// -32602: invalid UserOperation struct or fields.
    InvalidFields,
    /// -32500: rejected by `simulateValidation` (account or factory); the message carries the
    /// EntryPoint's `AAxx` reason.
    SimulateValidation,
    /// -32501: rejected by the paymaster's validation.
    Paymaster,
    /// -32502: banned opcode or storage access during validation (ERC-7562).
    OpcodeRule,
    /// -32503: outside the validAfter/validUntil window.
    OutOfTimeRange,
    /// -32504: paymaster/aggregator throttled or banned; NERO also uses it for its per-sender
    /// rate limits. The only code worth retrying.
    Throttled,
    /// -32505: stake or unstake delay too low.
    StakeTooLow,
    /// -32506: unsupported aggregator.
    UnsupportedAggregator,
    /// -32507: signature check failed.
    Signature,
    /// -32508: paymaster deposit too low.
    PaymasterBalance,
    /// -32521: execution reverted (during gas estimation).
    ExecutionReverted,
}

impl BundlerErrorCode {
    /// The variant for a JSON-RPC error code, or `None` for codes outside EIP-7769.
    pub const fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            -32602 => Self::InvalidFields,
            -32500 => Self::SimulateValidation,
            -32501 => Self::Paymaster,
            -32502 => Self::OpcodeRule,
            -32503 => Self::OutOfTimeRange,
            -32504 => Self::Throttled,
            -32505 => Self::StakeTooLow,
            -32506 => Self::UnsupportedAggregator,
            -32507 => Self::Signature,
            -32508 => Self::PaymasterBalance,
            -32521 => Self::ExecutionReverted,
            _ => return None,
        })
    }

    /// The numeric JSON-RPC error code.
    pub const fn code(self) -> i64 {
        match self {
            Self::InvalidFields => -32602,
            Self::SimulateValidation => -32500,
            Self::Paymaster => -32501,
            Self::OpcodeRule => -32502,
            Self::OutOfTimeRange => -32503,
            Self::Throttled => -32504,
            Self::StakeTooLow => -32505,
            Self::UnsupportedAggregator => -32506,
            Self::Signature => -32507,
            Self::PaymasterBalance => -32508,
            Self::ExecutionReverted => -32521,
        }
    }

    /// Everything but throttling is a verdict on the op (or its paymaster), not on load.
    pub const fn is_rejection(self) -> bool {
        !matches!(self, Self::Throttled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: i64, message: &str) -> RpcError {
        RpcError::JsonRpc { method: "m", code, message: message.into(), data: None }
    }

    #[test]
    fn codes_round_trip_and_classify() {
        for code in
            [-32602, -32500, -32501, -32502, -32503, -32504, -32505, -32506, -32507, -32508, -32521]
        {
            let c = BundlerErrorCode::from_code(code).unwrap();
            assert_eq!(c.code(), code);
            assert_eq!(rpc(code, "").is_retriable(), code == -32504);
            assert_eq!(rpc(code, "").is_rejection(), code != -32504);
            assert_eq!(rpc(code, "").reason(), "bundler_error");
        }
        assert_eq!(BundlerErrorCode::from_code(-32000), None);
        assert!(!rpc(-32000, "").is_retriable());
    }

    #[test]
    fn entry_point_code_is_found() {
        assert_eq!(rpc(-32500, "AA23 reverted: x").entry_point_code(), Some("AA23"));
        assert_eq!(
            rpc(-32500, "validation: AA10 sender already constructed").entry_point_code(),
            Some("AA10")
        );
        assert_eq!(
            rpc(-32500, "FAILED_OP(0, \"AA21 didn't pay prefund\")").entry_point_code(),
            Some("AA21")
        );
        assert_eq!(rpc(-32500, "BAA23 AA2").entry_point_code(), None);
        assert_eq!(rpc(-32500, "AA234").entry_point_code(), None);
        assert_eq!(rpc(-32500, "").entry_point_code(), None);
        assert_eq!(rpc(-32500, "é AA33 ü").entry_point_code(), Some("AA33"));
    }
}
