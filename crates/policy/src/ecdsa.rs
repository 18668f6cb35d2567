//! ECDSA signature recovery by the chain's rules.
//!
//! The contracts check every ECDSA signature of the session scheme (the owner's grant signature,
//! the session key's op signature) with OpenZeppelin's `ECDSA.tryRecover`: 65 bytes `r ‖ s ‖ v`,
//! `v` exactly 27 or 28, `s` in the lower half of the curve order (EIP-2), then the `ecrecover`
//! precompile. alloy's `Signature` is laxer on purpose (it reads `v` as 0/1 or EIP-155 and
//! normalises a high `s` to the same signer), so an off-chain check built on it would accept
//! signatures the chain refuses. [`recover_signer`] applies the contract's rules instead, and
//! recovers with libsecp256k1, the library behind revm's `ecrecover`.
//!
//! The paying path signs with libsecp256k1 too ([`sign_digest`], [`sign_message`]): the session
//! key and the paymaster each sign once per payment, and libsecp256k1 makes the same RFC 6979
//! signature as alloy's k256 signer in about a third of the time, which `make bench`'s
//! settlement throughput shows.

use alloy::{
    primitives::{Address, B256, U256, eip191_hash_message, uint},
    signers::{k256::elliptic_curve::zeroize::Zeroize, local::PrivateKeySigner},
};
use secp256k1::{
    Message, SECP256K1, SecretKey,
    ecdsa::{RecoverableSignature, RecoveryId},
};

/// The secp256k1 group order n.
pub const ORDER: U256 =
    uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);

/// Half the secp256k1 group order: the largest `s` EIP-2 (and OpenZeppelin's `ECDSA`) accepts.
pub const HALF_ORDER: U256 =
    uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

/// Why a signature recovers to no signer under the chain's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EcdsaError {
    /// Not the 65-byte `r ‖ s ‖ v` form (`ECDSA.tryRecover` refuses other lengths).
    #[error("an ECDSA signature is 65 bytes (r ‖ s ‖ v), got {0}")]
    Length(usize),
    /// `v` other than 27 or 28 (`ecrecover` recovers nothing for 0/1 or EIP-155 values).
    #[error("v must be 27 or 28, got {0}")]
    V(u8),
    /// `s` in the upper half of the order: the malleable twin of a valid signature, which
    /// OpenZeppelin's `ECDSA` refuses (`ECDSAInvalidSignatureS`).
    #[error("s is in the upper half of the curve order (a malleable signature)")]
    HighS,
    /// `r` or `s` zero or not below the order, or `r` not the x of a curve point.
    #[error("the signature recovers to no public key")]
    NoSigner,
}

/// The address whose key signed `digest` with `signature`, exactly when the account contracts'
/// `ECDSA.tryRecover` would recover it.
pub fn recover_signer(digest: &B256, signature: &[u8]) -> Result<Address, EcdsaError> {
    let signature: &[u8; 65] =
        signature.try_into().map_err(|_| EcdsaError::Length(signature.len()))?;
    let recovery_id = match signature[64] {
        27 => RecoveryId::Zero,
        28 => RecoveryId::One,
        v => return Err(EcdsaError::V(v)),
    };
    if U256::from_be_slice(&signature[32..64]) > HALF_ORDER {
        return Err(EcdsaError::HighS);
    }
    let recoverable = RecoverableSignature::from_compact(&signature[..64], recovery_id)
        .map_err(|_| EcdsaError::NoSigner)?;
    let key = SECP256K1
        .recover_ecdsa(Message::from_digest(digest.0), &recoverable)
        .map_err(|_| EcdsaError::NoSigner)?;
    Ok(Address::from_raw_public_key(&key.serialize_uncompressed()[1..]))
}

/// Whether `signature` is `signer`'s over `digest` by the contracts' rules (never for the zero
/// address, as `SessionPolicy` has it).
pub fn signed_by(digest: &B256, signature: &[u8], signer: Address) -> bool {
    !signer.is_zero() && recover_signer(digest, signature) == Ok(signer)
}

/// `key`'s signature of `digest` in the form the contracts accept: `r ‖ s ‖ v`, `s` low, `v` 27
/// or 28. Bit for bit what `PrivateKeySigner::sign_hash_sync` returns (both use RFC 6979 nonces).
pub fn sign_digest(key: &PrivateKeySigner, digest: &B256) -> [u8; 65] {
    // The copies of the secret made here are wiped before returning, as k256's own key is on
    // drop. A `PrivateKeySigner` holds a valid scalar by construction, so libsecp256k1 takes it.
    let mut scalar = key.credential().to_bytes();
    let mut secret = SecretKey::from_byte_array(scalar.into())
        .expect("a PrivateKeySigner's scalar is a valid secret key");
    scalar.zeroize();
    let signed = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(digest.0), &secret);
    secret.non_secure_erase();
    let (recovery_id, compact) = signed.serialize_compact();
    let mut signature = [0u8; 65];
    signature[..64].copy_from_slice(&compact);
    signature[64] = 27 + u8::from(recovery_id == RecoveryId::One);
    signature
}

/// `key`'s EIP-191 signature of `message` (`"\x19Ethereum Signed Message:\n" ‖ len ‖ message`
/// hashed), as `PrivateKeySigner::sign_message_sync` makes it: what `toEthSignedMessageHash`
/// checks on chain (the session key's op signature, the VerifyingPaymaster's approval).
pub fn sign_message(key: &PrivateKeySigner, message: &[u8]) -> [u8; 65] {
    sign_digest(key, &eip191_hash_message(message))
}

/// The same key's other signature of the same digest (`s` → n − `s`, parity flipped): `ecrecover`
/// recovers the same signer from it, the contracts refuse it ([`EcdsaError::HighS`] for a
/// canonical `signature`). For tests that every layer refuses it as the chain does.
pub fn malleable_twin(signature: &[u8; 65]) -> [u8; 65] {
    let s = U256::from_be_slice(&signature[32..64]);
    let mut twin = *signature;
    twin[32..64].copy_from_slice(&(ORDER - s).to_be_bytes::<32>());
    twin[64] = if signature[64] == 27 { 28 } else { 27 };
    twin
}

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{U256, keccak256},
        signers::{SignerSync, local::PrivateKeySigner},
    };

    use super::*;

    fn signed() -> (PrivateKeySigner, B256, [u8; 65]) {
        let key = PrivateKeySigner::random();
        let digest = keccak256(b"grant");
        let signature = key.sign_hash_sync(&digest).expect("signs").as_bytes();
        (key, digest, signature)
    }

    #[test]
    fn a_signature_recovers_its_signer_as_alloy_does() {
        for _ in 0..32 {
            let (key, digest, signature) = signed();
            assert_eq!(recover_signer(&digest, &signature), Ok(key.address()));
            assert!(signed_by(&digest, &signature, key.address()));
            let alloy = alloy::primitives::Signature::try_from(&signature[..]).expect("parses");
            assert_eq!(alloy.recover_address_from_prehash(&digest).ok(), Some(key.address()));
        }
    }

    #[test]
    fn signing_makes_alloys_signature_bit_for_bit() {
        for i in 0..32u8 {
            let key = PrivateKeySigner::random();
            let digest = keccak256([i]);
            let ours = sign_digest(&key, &digest);
            assert_eq!(ours, key.sign_hash_sync(&digest).expect("signs").as_bytes());
            assert_eq!(recover_signer(&digest, &ours), Ok(key.address()));
            let message = digest.as_slice();
            assert_eq!(
                sign_message(&key, message),
                key.sign_message_sync(message).expect("signs").as_bytes()
            );
        }
    }

    #[test]
    fn the_malleable_twin_is_refused_though_alloy_accepts_it() {
        let (key, digest, signature) = signed();
        let twin = malleable_twin(&signature);
        let alloy = alloy::primitives::Signature::try_from(&twin[..]).expect("parses");
        assert_eq!(alloy.recover_address_from_prehash(&digest).ok(), Some(key.address()));
        assert_eq!(recover_signer(&digest, &twin), Err(EcdsaError::HighS));
        assert!(!signed_by(&digest, &twin, key.address()));
    }

    #[test]
    fn only_v_27_and_28_recover() {
        let (key, digest, signature) = signed();
        for v in [0u8, 1, 2, 26, 29, 35, 36, 255] {
            let mut other = signature;
            other[64] = v;
            assert_eq!(recover_signer(&digest, &other), Err(EcdsaError::V(v)), "v = {v}");
        }
        let mut zero_one = signature;
        zero_one[64] -= 27;
        let alloy = alloy::primitives::Signature::try_from(&zero_one[..]).expect("parses");
        assert_eq!(alloy.recover_address_from_prehash(&digest).ok(), Some(key.address()));
    }

    #[test]
    fn degenerate_scalars_and_lengths_recover_nobody() {
        let (_, digest, signature) = signed();
        let mut zero_r = signature;
        zero_r[..32].fill(0);
        assert_eq!(recover_signer(&digest, &zero_r), Err(EcdsaError::NoSigner));
        let mut zero_s = signature;
        zero_s[32..64].fill(0);
        assert_eq!(recover_signer(&digest, &zero_s), Err(EcdsaError::NoSigner));
        let mut r_order = signature;
        r_order[..32].copy_from_slice(&ORDER.to_be_bytes::<32>());
        assert_eq!(recover_signer(&digest, &r_order), Err(EcdsaError::NoSigner));
        let mut s_half = signature;
        s_half[32..64].copy_from_slice(&(HALF_ORDER + U256::from(1)).to_be_bytes::<32>());
        assert_eq!(recover_signer(&digest, &s_half), Err(EcdsaError::HighS));
        assert_eq!(recover_signer(&digest, &signature[..64]), Err(EcdsaError::Length(64)));
        assert_eq!(
            recover_signer(&digest, &[signature.as_slice(), &[0]].concat()),
            Err(EcdsaError::Length(66))
        );
        assert!(!signed_by(&digest, &signature, Address::ZERO));
    }
}
