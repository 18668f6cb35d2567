//! EntryPoint v0.6 two-dimensional nonces: `key (uint192) << 64 | sequence (uint64)`.
//!
//! Independent keys let one account run several ordered op streams in parallel (e.g. one per
//! session key) without one stream's pending op blocking another's.

use alloy::primitives::{U256, aliases::U192};

/// The nonce the EntryPoint expects for sequence `seq` of stream `key`.
pub fn encode_nonce(key: U192, seq: u64) -> U256 {
    (U256::from(key) << 64) | U256::from(seq)
}

/// The stream a nonce belongs to (its upper 192 bits); what `EntryPoint.getNonce` takes as `key`.
pub fn nonce_key(nonce: U256) -> U192 {
    U192::from(nonce >> 64)
}

/// The position within its stream (the lower 64 bits).
pub fn nonce_sequence(nonce: U256) -> u64 {
    nonce.as_limbs()[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for (key, seq) in
            [(U192::ZERO, 0), (U192::from(1), 0), (U192::from(0xabcdef), 42), (U192::MAX, u64::MAX)]
        {
            let nonce = encode_nonce(key, seq);
            assert_eq!(nonce_key(nonce), key);
            assert_eq!(nonce_sequence(nonce), seq);
        }
    }

    #[test]
    fn layout() {
        assert_eq!(encode_nonce(U192::from(1), 2), (U256::from(1) << 64) + U256::from(2));
        assert_eq!(encode_nonce(U192::MAX, u64::MAX), U256::MAX);
        assert_eq!(encode_nonce(U192::ZERO, 5), U256::from(5));
    }
}
