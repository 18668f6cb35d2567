//! The session form of `UserOperation.signature`: one mode byte, then `abi.encode(SessionSignature)`.
//! A 65-byte signature is an owner signature (SimpleAccount's rule); anything else is a session op.

use alloy::{
    primitives::{B256, Bytes, keccak256},
    sol_types::SolValue,
};

/// The `sol!` mirror of `SessionSignature` in `contracts/src/SessionKeyAccount.sol`.
pub use x402_aa_contracts::SessionSignature;

/// First byte of a session signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SessionMode {
    /// The op carries the owner's grant signature and enables the session (lazy enable).
    Enable = 1,
    /// The session was enabled by an earlier op; `ownerSignature` is empty.
    Use = 2,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionSignatureError {
    #[error("signature is an owner signature (65 bytes), not a session signature")]
    OwnerSignature,
    #[error("empty signature")]
    Empty,
    #[error("unknown session signature mode {0}")]
    UnknownMode(u8),
    #[error("session signature is not valid ABI: {0}")]
    Malformed(String),
}

impl SessionSignatureError {
    /// Stable x402 reason string.
    pub fn reason(&self) -> &'static str {
        "invalid_session_signature"
    }
}

/// Encoding of session signatures; a trait because the struct is defined with the contract bindings.
pub trait SessionSignatureCodec: Sized {
    /// `mode ‖ abi.encode(self)`, the bytes that go into `UserOperation.signature`.
    fn encode(&self, mode: SessionMode) -> Bytes;
    fn decode(signature: &[u8]) -> Result<(SessionMode, Self), SessionSignatureError>;
}

/// What the session key signs (EIP-191 personal-sign over these 32 bytes): the userOpHash bound to
/// the session and the claimed period, so neither can be swapped by whoever relays the op.
pub fn session_digest(user_op_hash: B256, session_id: B256, period_index: u32) -> B256 {
    keccak256((user_op_hash, session_id, period_index).abi_encode())
}

impl SessionSignatureCodec for SessionSignature {
    fn encode(&self, mode: SessionMode) -> Bytes {
        let mut out = vec![mode as u8];
        out.extend_from_slice(&self.abi_encode());
        out.into()
    }

    fn decode(signature: &[u8]) -> Result<(SessionMode, Self), SessionSignatureError> {
        let (&mode, rest) = signature.split_first().ok_or(SessionSignatureError::Empty)?;
        if signature.len() == 65 {
            return Err(SessionSignatureError::OwnerSignature);
        }
        let mode = match mode {
            1 => SessionMode::Enable,
            2 => SessionMode::Use,
            other => return Err(SessionSignatureError::UnknownMode(other)),
        };
        let decoded = <Self as SolValue>::abi_decode(rest)
            .map_err(|e| SessionSignatureError::Malformed(e.to_string()))?;
        Ok((mode, decoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::SessionGrant;
    use alloy::primitives::{Address, U256, aliases::U96};

    fn sample() -> SessionSignature {
        SessionSignature {
            grant: SessionGrant {
                sessionKey: Address::repeat_byte(1),
                perPaymentMax: U96::from(1_000_000u64),
                ..Default::default()
            },
            ownerSignature: Bytes::from(vec![7u8; 65]),
            periodIndex: 3,
            merchantProof: vec![B256::repeat_byte(9)],
            sessionSignature: Bytes::from(vec![8u8; 65]),
        }
    }

    #[test]
    fn round_trips() {
        let sig = sample();
        for mode in [SessionMode::Enable, SessionMode::Use] {
            let bytes = sig.encode(mode);
            assert_eq!(bytes[0], mode as u8);
            assert_eq!(SessionSignature::decode(&bytes).unwrap(), (mode, sig.clone()));
        }
        let _ = U256::ZERO;
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert_eq!(SessionSignature::decode(&[]), Err(SessionSignatureError::Empty));
        assert_eq!(
            SessionSignature::decode(&[1u8; 65]),
            Err(SessionSignatureError::OwnerSignature)
        );
        assert_eq!(
            SessionSignature::decode(&[9u8, 0, 0]),
            Err(SessionSignatureError::UnknownMode(9))
        );
        assert!(matches!(
            SessionSignature::decode(&[1u8, 0, 0]),
            Err(SessionSignatureError::Malformed(_))
        ));
        let mut truncated = sample().encode(SessionMode::Use).to_vec();
        truncated.truncate(truncated.len() - 40);
        assert!(matches!(
            SessionSignature::decode(&truncated),
            Err(SessionSignatureError::Malformed(_))
        ));
    }
}
