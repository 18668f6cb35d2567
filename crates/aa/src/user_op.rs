//! The v0.6 `UserOperation` as bundlers speak it over JSON-RPC, and its hash.

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    sol_types::{SolCall, SolValue},
};
use serde::{Deserialize, Serialize};

use crate::{abi, entry_point};

/// ERC-4337 v0.6 user operation in the shape `eth_sendUserOperation` takes it.
///
/// A plain struct rather than the `sol!` type so the JSON wire format is pinned here (camelCase,
/// 0x-hex quantities) independently of how alloy chooses to serialise its generated types.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserOperation {
    /// The smart account that executes the op and pays for it (unless a paymaster does).
    pub sender: Address,
    /// Key (upper 192 bits) and sequence (lower 64 bits); see [`crate::nonce`].
    #[serde(with = "quantity")]
    pub nonce: U256,
    /// Factory address followed by its calldata when the account does not exist yet; empty
    /// otherwise.
    #[serde(with = "hex_bytes")]
    pub init_code: Bytes,
    /// What the EntryPoint calls the account with; for a payment, see [`crate::call_data`].
    #[serde(with = "hex_bytes")]
    pub call_data: Bytes,
    /// Gas limit of the execution call.
    #[serde(with = "quantity")]
    pub call_gas_limit: U256,
    /// Gas limit of validation (deployment, `validateUserOp`, paymaster validation and
    /// `postOp`).
    #[serde(with = "quantity")]
    pub verification_gas_limit: U256,
    /// Gas paid to the bundler for calldata and overhead no frame measures.
    #[serde(with = "quantity")]
    pub pre_verification_gas: U256,
    /// EIP-1559 fee cap, in wei per gas.
    #[serde(with = "quantity")]
    pub max_fee_per_gas: U256,
    /// EIP-1559 priority fee cap, in wei per gas.
    #[serde(with = "quantity")]
    pub max_priority_fee_per_gas: U256,
    /// Paymaster address followed by its data; empty when the account pays its own gas.
    #[serde(with = "hex_bytes")]
    pub paymaster_and_data: Bytes,
    /// What the account's `validateUserOp` checks, in the account kind's format (SimpleAccount:
    /// the owner's ECDSA signature of the userOpHash); the one field the hash does not cover.
    #[serde(with = "hex_bytes")]
    pub signature: Bytes,
}

impl UserOperation {
    /// `keccak256(abi.encode(keccak256(pack(op)), entryPoint, chainId))`, the value the account
    /// signs and the EntryPoint reports in `UserOperationEvent`.
    pub fn hash(&self, entry_point: Address, chain_id: u64) -> B256 {
        user_op_hash(self, entry_point, chain_id)
    }

    /// The paymaster named by the first 20 bytes of `paymasterAndData`, if any.
    pub fn paymaster(&self) -> Option<Address> {
        self.paymaster_and_data.get(..20).map(Address::from_slice)
    }

    /// The factory named by the first 20 bytes of `initCode`, if the op deploys its sender.
    pub fn factory(&self) -> Option<Address> {
        self.init_code.get(..20).map(Address::from_slice)
    }
}

/// See [`UserOperation::hash`]. Mirrors `UserOperationLib.hash` + `EntryPoint.getUserOpHash`.
pub fn user_op_hash(op: &UserOperation, entry_point: Address, chain_id: u64) -> B256 {
    keccak256((keccak256(pack(op)), entry_point, U256::from(chain_id)).abi_encode())
}

/// `UserOperationLib.pack` (v0.6): every field except the signature, with the three dynamic
/// byte fields replaced by their hashes so the packed form has a fixed length.
pub fn pack(op: &UserOperation) -> Vec<u8> {
    (
        op.sender,
        op.nonce,
        keccak256(&op.init_code),
        keccak256(&op.call_data),
        op.call_gas_limit,
        op.verification_gas_limit,
        op.pre_verification_gas,
        op.max_fee_per_gas,
        op.max_priority_fee_per_gas,
        keccak256(&op.paymaster_and_data),
    )
        .abi_encode()
}

/// `initCode` that deploys a SimpleAccount-style account in the op's validation phase:
/// `factory ‖ createAccount(owner, salt)`.
pub fn factory_init_code(factory: Address, owner: Address, salt: U256) -> Bytes {
    let mut code = factory.to_vec();
    code.extend(abi::createAccountCall { owner, salt }.abi_encode());
    code.into()
}

impl From<entry_point::UserOperation> for UserOperation {
    fn from(op: entry_point::UserOperation) -> Self {
        Self {
            sender: op.sender,
            nonce: op.nonce,
            init_code: op.initCode,
            call_data: op.callData,
            call_gas_limit: op.callGasLimit,
            verification_gas_limit: op.verificationGasLimit,
            pre_verification_gas: op.preVerificationGas,
            max_fee_per_gas: op.maxFeePerGas,
            max_priority_fee_per_gas: op.maxPriorityFeePerGas,
            paymaster_and_data: op.paymasterAndData,
            signature: op.signature,
        }
    }
}

impl From<UserOperation> for entry_point::UserOperation {
    fn from(op: UserOperation) -> Self {
        Self {
            sender: op.sender,
            nonce: op.nonce,
            initCode: op.init_code,
            callData: op.call_data,
            callGasLimit: op.call_gas_limit,
            verificationGasLimit: op.verification_gas_limit,
            preVerificationGas: op.pre_verification_gas,
            maxFeePerGas: op.max_fee_per_gas,
            maxPriorityFeePerGas: op.max_priority_fee_per_gas,
            paymasterAndData: op.paymaster_and_data,
            signature: op.signature,
        }
    }
}

impl From<&UserOperation> for entry_point::UserOperation {
    fn from(op: &UserOperation) -> Self {
        op.clone().into()
    }
}

/// JSON-RPC quantities: `0x`-prefixed hex, minimal on output. Decimal strings and JSON numbers
/// are refused because `"10"` is ambiguous between bundlers that disagree on radix.
mod quantity {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{value:#x}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| D::Error::custom(format!("quantity {s:?} lacks the 0x prefix")))?;
        if digits.is_empty() {
            return Err(D::Error::custom("quantity \"0x\" has no digits"));
        }
        U256::from_str_radix(digits, 16)
            .map_err(|e| D::Error::custom(format!("quantity {s:?} is not a uint256: {e}")))
    }
}

/// JSON-RPC data: `0x`-prefixed hex of whole bytes.
mod hex_bytes {
    use alloy::primitives::{Bytes, hex};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_prefixed(value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let digits = s
            .strip_prefix("0x")
            .ok_or_else(|| D::Error::custom(format!("data {s:?} lacks the 0x prefix")))?;
        hex::decode(digits).map(Bytes::from).map_err(|e| D::Error::custom(format!("data: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{address, b256, bytes};

    fn sample() -> UserOperation {
        UserOperation {
            sender: address!("0x1111111111111111111111111111111111111111"),
            nonce: U256::from(7),
            init_code: bytes!("9406cc6185a346906296840746125a0e44976454deadbeef"),
            call_data: bytes!("b61d27f6"),
            call_gas_limit: U256::from(100_000),
            verification_gas_limit: U256::from(200_000),
            pre_verification_gas: U256::from(50_000),
            max_fee_per_gas: U256::from(2_000_000_000u64),
            max_priority_fee_per_gas: U256::from(1_000_000_000u64),
            paymaster_and_data: Bytes::new(),
            signature: bytes!("00"),
        }
    }

    #[test]
    fn json_uses_bundler_wire_format() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "sender": "0x1111111111111111111111111111111111111111",
                "nonce": "0x7",
                "initCode": "0x9406cc6185a346906296840746125a0e44976454deadbeef",
                "callData": "0xb61d27f6",
                "callGasLimit": "0x186a0",
                "verificationGasLimit": "0x30d40",
                "preVerificationGas": "0xc350",
                "maxFeePerGas": "0x77359400",
                "maxPriorityFeePerGas": "0x3b9aca00",
                "paymasterAndData": "0x",
                "signature": "0x00"
            })
        );
        let back: UserOperation = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn json_zero_quantity_is_0x0() {
        let json = serde_json::to_value(UserOperation::default()).unwrap();
        assert_eq!(json["nonce"], "0x0");
        assert_eq!(json["initCode"], "0x");
    }

    #[test]
    fn json_rejects_non_hex_quantities_and_data() {
        let good = serde_json::to_value(sample()).unwrap();
        for (key, bad) in [
            ("nonce", serde_json::json!(7)),
            ("nonce", serde_json::json!("7")),
            ("nonce", serde_json::json!("0x")),
            ("nonce", serde_json::json!("0xzz")),
            ("nonce", serde_json::json!(format!("0x1{}", "0".repeat(64)))),
            ("callData", serde_json::json!("b61d27f6")),
            ("callData", serde_json::json!("0xb61")),
            ("sender", serde_json::json!("0x1234")),
        ] {
            let mut json = good.clone();
            json[key] = bad.clone();
            let err = serde_json::from_value::<UserOperation>(json);
            assert!(err.is_err(), "{key}={bad} should be rejected");
        }
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("signature");
        assert!(serde_json::from_value::<UserOperation>(missing).is_err());
        let mut extra = good;
        extra["factory"] = serde_json::json!("0x");
        assert!(serde_json::from_value::<UserOperation>(extra).is_err(), "v0.7 fields refused");
    }

    #[test]
    fn sol_round_trip() {
        let op = sample();
        let sol: entry_point::UserOperation = op.clone().into();
        assert_eq!(UserOperation::from(sol), op);
    }

    #[test]
    fn hash_ignores_signature_only() {
        let entry_point = crate::ENTRY_POINT_V06;
        let base = sample().hash(entry_point, 31337);
        let mut op = sample();
        op.signature = bytes!("ffff");
        assert_eq!(op.hash(entry_point, 31337), base);
        op.paymaster_and_data = bytes!("01");
        assert_ne!(op.hash(entry_point, 31337), base);
        assert_ne!(sample().hash(entry_point, 1), base);
        assert_ne!(sample().hash(Address::ZERO, 31337), base);
    }

    /// Pins the packing so a refactor cannot silently change it; the devnet tests check the same
    /// formula against the real EntryPoint.
    #[test]
    fn hash_golden() {
        assert_eq!(
            sample().hash(crate::ENTRY_POINT_V06, 31337),
            b256!("0x15af1875d27b81115fb157401389f1df981cf5f801e270fdec58a20e21cae561")
        );
    }

    #[test]
    fn init_code_layout() {
        let factory = crate::SIMPLE_ACCOUNT_FACTORY_V06;
        let owner = address!("0x00000000000000000000000000000000000000aa");
        let code = factory_init_code(factory, owner, U256::from(5));
        assert_eq!(code.len(), 20 + 4 + 64);
        assert_eq!(&code[..20], factory.as_slice());
        assert_eq!(&code[20..24], &[0x5f, 0xbf, 0xb9, 0xcf]); // createAccount(address,uint256)
        assert_eq!(code[24 + 31], 0xaa);
        assert_eq!(code[24 + 63], 5);
    }

    #[test]
    fn paymaster_and_factory_prefixes() {
        let mut op = sample();
        assert_eq!(op.factory(), Some(address!("0x9406Cc6185a346906296840746125a0E44976454")));
        assert_eq!(op.paymaster(), None);
        op.paymaster_and_data = Bytes::from(vec![0x22; 19]);
        assert_eq!(op.paymaster(), None);
        op.paymaster_and_data = Bytes::from(vec![0x22; 40]);
        assert_eq!(op.paymaster(), Some(Address::repeat_byte(0x22)));
    }
}
