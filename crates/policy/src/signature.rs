//! The session form of `UserOperation.signature`: packed, read by the account at fixed offsets
//! (`SessionPolicy.sol`; layout in `contracts/README.md`, "Session signature").
//!
//! | bytes | field |
//! |---|---|
//! | 0 | mode: 1 enable (carries the owner's grant signature), 2 use |
//! | 1–251 | the grant, `abi.encodePacked` of its fields (the contract's `encodeGrant`) |
//! | 252–255 | claimed period index (`uint32`) |
//! | 256–320 | the session key's signature `r ‖ s ‖ v` |
//! | 321–385 | enable mode only: the owner's signature over the session id |
//! | rest | the merchant Merkle proof, 32-byte words |

use alloy::{
    primitives::{
        Address, B256, Bytes, U256,
        aliases::{U24, U48, U96},
        keccak256,
    },
    sol_types::SolValue,
};

use crate::grant::SessionGrant;

/// Bytes of a packed grant.
pub const GRANT_LEN: usize = 251;
/// Bytes of an ECDSA signature `r ‖ s ‖ v`.
pub const ECDSA_LEN: usize = 65;
const PERIOD_AT: usize = 1 + GRANT_LEN;
const SESSION_SIG_AT: usize = PERIOD_AT + 4;
/// Length of a use-mode signature without a proof.
pub const USE_LEN: usize = SESSION_SIG_AT + ECDSA_LEN;
/// Length of an enable-mode signature without a proof.
pub const ENABLE_LEN: usize = USE_LEN + ECDSA_LEN;

/// First byte of a session signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SessionMode {
    /// The op carries the owner's grant signature and enables the session (lazy enable).
    Enable = 1,
    /// The session was enabled by an earlier op.
    Use = 2,
}

/// A decoded session signature.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSignature {
    /// The grant the session runs under; its EIP-712 digest is the session id.
    pub grant: SessionGrant,
    /// The owner's signature over the session id; only sent in enable mode.
    pub owner_signature: Bytes,
    /// The period the op claims.
    pub period_index: u32,
    /// Merkle proof of the merchant against the grant's `merchantRoot`; empty when the grant
    /// allows any merchant or lists only one.
    pub merchant_proof: Vec<B256>,
    /// The session key's signature over [`session_digest`].
    pub session_signature: Bytes,
}

/// Why bytes are not a session signature (decoding) or cannot become one (encoding); the
/// account refuses the same bytes with [`SessionSignatureError::revert_string`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionSignatureError {
    /// No bytes at all.
    #[error("empty signature")]
    Empty,
    /// The first byte is neither 1 (enable) nor 2 (use).
    #[error("unknown session signature mode {0}")]
    UnknownMode(u8),
    /// The length is not the mode's fixed part plus whole 32-byte proof words.
    #[error("a {mode:?} session signature is {expected} + 32·k bytes, not {len}")]
    Length {
        /// The mode the first byte names.
        mode: SessionMode,
        /// The signature's length in bytes.
        len: usize,
        /// The mode's length without a proof ([`USE_LEN`] or [`ENABLE_LEN`]).
        expected: usize,
    },
    /// Encoding only: the named signature is not 65 bytes.
    #[error("{0} must be a 65-byte ECDSA signature")]
    NotEcdsa(&'static str),
}

impl SessionSignatureError {
    /// The contract's revert string for this defect.
    pub const fn revert_string(&self) -> &'static str {
        match self {
            Self::UnknownMode(_) => "session: unknown signature mode",
            _ => "session: malformed signature",
        }
    }
}

/// Encoding of session signatures.
pub trait SessionSignatureCodec: Sized {
    /// The bytes that go into `UserOperation.signature`.
    fn encode(&self, mode: SessionMode) -> Result<Bytes, SessionSignatureError>;
    /// Reads `UserOperation.signature` bytes back, checking the mode and the length only (not
    /// the signatures themselves).
    fn decode(signature: &[u8]) -> Result<(SessionMode, Self), SessionSignatureError>;
}

/// What the session key signs (EIP-191 personal-sign over these 32 bytes): the userOpHash bound to
/// the session and the claimed period, so neither can be swapped by whoever relays the op.
pub fn session_digest(user_op_hash: B256, session_id: B256, period_index: u32) -> B256 {
    keccak256((user_op_hash, session_id, U256::from(period_index)).abi_encode())
}

/// The packed grant, equal to the contract's `encodeGrant(grant)`.
pub fn encode_grant(grant: &SessionGrant) -> Vec<u8> {
    grant.abi_encode_packed()
}

/// The inverse of [`encode_grant`] on exactly [`GRANT_LEN`] bytes.
pub fn decode_grant(bytes: &[u8; GRANT_LEN]) -> SessionGrant {
    let mut at = 0;
    let mut take = |n: usize| {
        let out = &bytes[at..at + n];
        at += n;
        out
    };
    let address = |b: &[u8]| Address::from_slice(b);
    let u96 = |b: &[u8]| U96::from_be_slice(b);
    SessionGrant {
        sessionKey: address(take(20)),
        validAfter: U48::from_be_slice(take(6)),
        validUntil: U48::from_be_slice(take(6)),
        token: address(take(20)),
        settlement: address(take(20)),
        perPaymentMax: u96(take(12)),
        periodCap: u96(take(12)),
        period: u32::from_be_bytes(take(4).try_into().unwrap_or_default()),
        lifetimeCap: u96(take(12)),
        maxPaymentsPerPeriod: U24::from_be_slice(take(3)),
        merchantPeriodCap: u96(take(12)),
        merchantRoot: B256::from_slice(take(32)),
        paymaster: address(take(20)),
        maxGasCostPerOp: u96(take(12)),
        gasPeriodBudget: u96(take(12)),
        gasLifetimeBudget: u96(take(12)),
        epoch: u32::from_be_bytes(take(4).try_into().unwrap_or_default()),
        salt: B256::from_slice(take(32)),
    }
}

impl SessionSignatureCodec for SessionSignature {
    fn encode(&self, mode: SessionMode) -> Result<Bytes, SessionSignatureError> {
        if self.session_signature.len() != ECDSA_LEN {
            return Err(SessionSignatureError::NotEcdsa("session signature"));
        }
        let mut out = Vec::with_capacity(ENABLE_LEN + 32 * self.merchant_proof.len());
        out.push(mode as u8);
        out.extend(encode_grant(&self.grant));
        out.extend(self.period_index.to_be_bytes());
        out.extend_from_slice(&self.session_signature);
        if mode == SessionMode::Enable {
            if self.owner_signature.len() != ECDSA_LEN {
                return Err(SessionSignatureError::NotEcdsa("owner signature"));
            }
            out.extend_from_slice(&self.owner_signature);
        }
        for word in &self.merchant_proof {
            out.extend_from_slice(word.as_slice());
        }
        Ok(out.into())
    }

    fn decode(signature: &[u8]) -> Result<(SessionMode, Self), SessionSignatureError> {
        let (&mode, _) = signature.split_first().ok_or(SessionSignatureError::Empty)?;
        let (mode, expected) = match mode {
            1 => (SessionMode::Enable, ENABLE_LEN),
            2 => (SessionMode::Use, USE_LEN),
            other => return Err(SessionSignatureError::UnknownMode(other)),
        };
        let len = signature.len();
        if len < expected || !(len - expected).is_multiple_of(32) {
            return Err(SessionSignatureError::Length { mode, len, expected });
        }
        let grant_bytes: &[u8; GRANT_LEN] =
            signature[1..PERIOD_AT].try_into().map_err(|_| SessionSignatureError::Empty)?;
        let period = signature[PERIOD_AT..SESSION_SIG_AT].try_into().unwrap_or_default();
        let owner_signature = match mode {
            SessionMode::Enable => Bytes::copy_from_slice(&signature[USE_LEN..ENABLE_LEN]),
            SessionMode::Use => Bytes::new(),
        };
        Ok((
            mode,
            Self {
                grant: decode_grant(grant_bytes),
                owner_signature,
                period_index: u32::from_be_bytes(period),
                merchant_proof: signature[expected..]
                    .chunks_exact(32)
                    .map(B256::from_slice)
                    .collect(),
                session_signature: Bytes::copy_from_slice(&signature[SESSION_SIG_AT..USE_LEN]),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SessionSignature {
        SessionSignature {
            grant: SessionGrant {
                sessionKey: Address::repeat_byte(1),
                validAfter: U48::from(7u64),
                validUntil: U48::from(9u64),
                perPaymentMax: U96::from(1_000_000u64),
                maxPaymentsPerPeriod: U24::from(5u64),
                gasLifetimeBudget: U96::from(3u64),
                epoch: 4,
                salt: B256::repeat_byte(0xee),
                ..Default::default()
            },
            owner_signature: Bytes::from(vec![7u8; 65]),
            period_index: 3,
            merchant_proof: vec![B256::repeat_byte(9), B256::repeat_byte(10)],
            session_signature: Bytes::from(vec![8u8; 65]),
        }
    }

    #[test]
    fn round_trips() {
        let sig = sample();
        let bytes = sig.encode(SessionMode::Enable).unwrap();
        assert_eq!(bytes.len(), ENABLE_LEN + 64);
        assert_eq!(SessionSignature::decode(&bytes).unwrap(), (SessionMode::Enable, sig.clone()));
        let bytes = sig.encode(SessionMode::Use).unwrap();
        assert_eq!(bytes.len(), USE_LEN + 64);
        let use_sig = SessionSignature { owner_signature: Bytes::new(), ..sig };
        assert_eq!(SessionSignature::decode(&bytes).unwrap(), (SessionMode::Use, use_sig));
        assert_eq!(encode_grant(&sample().grant).len(), GRANT_LEN);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert_eq!(SessionSignature::decode(&[]), Err(SessionSignatureError::Empty));
        assert_eq!(
            SessionSignature::decode(&[9u8, 0, 0]),
            Err(SessionSignatureError::UnknownMode(9))
        );
        let good = sample().encode(SessionMode::Use).unwrap();
        for cut in [1, 31, 33] {
            let err = SessionSignature::decode(&good[..good.len() - cut]).unwrap_err();
            assert!(matches!(err, SessionSignatureError::Length { .. }), "{err}");
            assert_eq!(err.revert_string(), "session: malformed signature");
        }
        let mut short = sample();
        short.session_signature = Bytes::from(vec![1u8; 64]);
        assert_eq!(
            short.encode(SessionMode::Use),
            Err(SessionSignatureError::NotEcdsa("session signature"))
        );
    }
}
