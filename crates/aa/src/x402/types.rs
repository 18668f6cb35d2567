//! The aa-native pieces of the x402 v2 messages: requirements' `extra`, the payload, the receipt.

use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use x402_types::{chain::ChainId, proto::v2};

use super::{NAMESPACE, PayloadError, SCHEME};
use crate::{ENTRY_POINT_V06, RequestHashInput, SettleCall, UserOperation};

/// `extra` of an aa-native `PaymentRequirements`.
///
/// NERO's examples carry no `extra` and configure the settlement contract out of band; putting it
/// here lets one client pay merchants on several networks without a per-network table, and old
/// clients ignore it. The EntryPoint defaults to v0.6, the only one the scheme is defined on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AaNativeExtra {
    /// The contract the payment's `settle` must call (and the approve's spender).
    #[serde(serialize_with = "checksummed")]
    pub settlement_contract: Address,
    /// The EntryPoint the op is for; v0.6's canonical address when absent on the wire.
    #[serde(default = "default_entry_point", serialize_with = "checksummed")]
    pub entry_point: Address,
}

/// Same spelling as `payTo` and `asset` in [`AaNativeRequirements::to_wire`].
fn checksummed<S: serde::Serializer>(address: &Address, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&address.to_checksum(None))
}

fn default_entry_point() -> Address {
    ENTRY_POINT_V06
}

/// `payload` of an aa-native `PaymentPayload`: the signed op and what the payer claims its
/// callData does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AaNativePayload {
    /// The signed UserOperation whose callData pays.
    pub user_op: UserOperation,
    /// What the payer declares the callData settles; checked against the callData.
    pub settlement_call_spec: SettlementCallSpec,
    /// What the payer hashed into `requestHash` besides `payTo` and the chain, so that the resource
    /// server can check the payment was made for *this* request (method and resource) and not for
    /// another resource of the same merchant at the same price. Absent from payers that predate it
    /// (NERO's payload has no such field); verifiers check it whenever it is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestBinding>,
}

/// The request-side inputs of a `requestHash` ([`crate::request_hash`]), as the payer used them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestBinding {
    /// The paid request's HTTP method, as hashed (any case).
    pub method: String,
    /// The resource as hashed: the 402's `resource.url`, or the request URL when it named none.
    pub endpoint: String,
    /// Unix seconds the payer stamped the request with.
    pub timestamp: u64,
    /// The bucket width the payer hashed `timestamp` with.
    pub bucket_seconds: u64,
    /// The payer's per-request randomness.
    pub client_nonce: B256,
}

impl RequestBinding {
    /// The whole hash input, with the merchant and chain the payment is for.
    pub fn input(&self, merchant: Address, chain_id: u64) -> RequestHashInput {
        RequestHashInput::new(
            merchant,
            chain_id,
            self.method.clone(),
            self.endpoint.clone(),
            self.timestamp,
            self.client_nonce,
        )
        .with_bucket_seconds(self.bucket_seconds)
    }

    /// From the input the payer hashed.
    pub fn from_input(input: &RequestHashInput) -> Self {
        Self {
            method: input.method.clone(),
            endpoint: input.endpoint.clone(),
            timestamp: input.timestamp,
            bucket_seconds: input.bucket_seconds,
            client_nonce: input.client_nonce,
        }
    }
}

/// The `settle(merchant, token, amount, requestHash)` arguments the payer says `userOp.callData`
/// resolves to; the verifier decodes the callData and demands equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementCallSpec {
    /// Who is paid; must be the requirements' `payTo`.
    pub merchant: Address,
    /// The ERC-20 paid in; must be the requirements' `asset`.
    pub token: Address,
    /// Atomic units, a decimal string on the wire as in NERO's example (`"1000"`).
    #[serde(with = "decimal_u256")]
    pub amount: U256,
    /// The request binding ([`crate::request_hash`]); never zero.
    pub request_hash: B256,
}

/// An aa-native `PaymentPayload`, on x402-types' v2 envelope.
///
/// `accepted` is the merchant's `accepts[]` entry as raw JSON, echoed back exactly as offered
/// (x402-rs' own clients do the same): servers match it by equality, and re-serialising it
/// through a typed struct could change address case or turn an absent `extra` into `null`, which
/// upstream's schema refuses. [`AaNativeRequirements::parse_json`] gives the typed view.
pub type AaNativePaymentPayload = v2::PaymentPayload<serde_json::Value, AaNativePayload>;

/// A decoded `PAYMENT-SIGNATURE`: the wire envelope plus the typed view of its `accepted`.
#[derive(Debug, Clone)]
pub struct AaNativeEnvelope {
    /// The envelope as received, `accepted` still raw JSON.
    pub payload: AaNativePaymentPayload,
    /// `accepted`, parsed.
    pub accepted: AaNativeRequirements,
}

impl AaNativeEnvelope {
    /// The paying account (the op's sender).
    pub fn payer(&self) -> Address {
        self.payload.payload.user_op.sender
    }

    /// The chain the payer accepted to pay on.
    pub fn chain_id(&self) -> u64 {
        self.accepted.chain_id
    }
}

/// Typed view of an aa-native `PaymentRequirements`.
///
/// Not a wire type: the wire form is x402-types' [`v2::PaymentRequirements`], produced by
/// [`AaNativeRequirements::to_wire`] and read by [`AaNativeRequirements::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AaNativeRequirements {
    /// EIP-155 chain id (the wire's `network` is `eip155:<chain_id>`).
    pub chain_id: u64,
    /// Atomic units of `asset`.
    pub amount: U256,
    /// The merchant; becomes `settle`'s `merchant`.
    pub pay_to: Address,
    /// The ERC-20 token; becomes `settle`'s `token`.
    pub asset: Address,
    /// Most seconds the merchant waits for settlement.
    pub max_timeout_seconds: u64,
    /// Settlement contract and EntryPoint, when the merchant names them.
    pub extra: Option<AaNativeExtra>,
}

impl AaNativeRequirements {
    /// Reads one `accepts[]` entry (or a payload's `accepted`), refusing anything that is not
    /// aa-native on an `eip155` network.
    pub fn parse(wire: &v2::PaymentRequirements) -> Result<Self, PayloadError> {
        if wire.scheme != SCHEME {
            return Err(PayloadError::UnsupportedScheme { scheme: wire.scheme.clone() });
        }
        let chain_id = parse_network(&wire.network)?;
        let amount = parse_decimal_u256(&wire.amount).ok_or_else(|| {
            PayloadError::InvalidRequirementsField { field: "amount", value: wire.amount.clone() }
        })?;
        let address = |field, value: &str| {
            parse_address(value).ok_or_else(|| PayloadError::InvalidRequirementsField {
                field,
                value: value.to_owned(),
            })
        };
        let pay_to = address("payTo", &wire.pay_to)?;
        let asset = address("asset", &wire.asset)?;
        let extra = match &wire.extra {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(map)) if map.is_empty() => None,
            Some(value) => Some(AaNativeExtra::deserialize(value).map_err(|e| {
                PayloadError::InvalidRequirementsField { field: "extra", value: e.to_string() }
            })?),
        };
        Ok(Self {
            chain_id,
            amount,
            pay_to,
            asset,
            max_timeout_seconds: wire.max_timeout_seconds,
            extra,
        })
    }

    /// [`AaNativeRequirements::parse`] of an entry still in JSON form.
    pub fn parse_json(wire: &serde_json::Value) -> Result<Self, PayloadError> {
        let wire = v2::PaymentRequirements::deserialize(wire).map_err(PayloadError::Json)?;
        Self::parse(&wire)
    }

    /// The entry a merchant puts in `PaymentRequired.accepts`.
    pub fn to_wire(&self) -> v2::PaymentRequirements {
        v2::PaymentRequirements {
            scheme: SCHEME.to_owned(),
            network: network(self.chain_id),
            amount: self.amount.to_string(),
            pay_to: self.pay_to.to_checksum(None),
            max_timeout_seconds: self.max_timeout_seconds,
            asset: self.asset.to_checksum(None),
            // `{}` rather than null when absent: upstream's schema takes an optional object and
            // refuses null. `AaNativeExtra` is two addresses, so serialising it cannot fail.
            extra: Some(
                self.extra
                    .and_then(|extra| serde_json::to_value(extra).ok())
                    .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new())),
            ),
        }
    }

    /// The `settle` call that pays these requirements under `request_hash`.
    pub fn settle_call(&self, request_hash: B256) -> SettleCall {
        SettleCall { merchant: self.pay_to, token: self.asset, amount: self.amount, request_hash }
    }

    /// Every aa-native entry of a 402 that parses, with its verbatim JSON for `accepted`.
    /// Entries of other schemes, or that do not parse, are skipped: a 402 may offer several ways
    /// to pay.
    pub fn select(
        required: &v2::PaymentRequired<serde_json::Value>,
    ) -> Vec<(serde_json::Value, Self)> {
        required
            .accepts
            .iter()
            .filter_map(|wire| Self::parse_json(wire).ok().map(|typed| (wire.clone(), typed)))
            .collect()
    }
}

impl SettlementCallSpec {
    /// Builds the spec of a `settle` call.
    pub fn from_settle(call: &SettleCall) -> Self {
        Self {
            merchant: call.merchant,
            token: call.token,
            amount: call.amount,
            request_hash: call.request_hash,
        }
    }

    /// The `settle` call the spec describes.
    pub fn to_settle(&self) -> SettleCall {
        SettleCall {
            merchant: self.merchant,
            token: self.token,
            amount: self.amount,
            request_hash: self.request_hash,
        }
    }
}

/// Body of the `PAYMENT-RESPONSE` header (upstream x402 v2 `SettleResponse`).
///
/// Defined here rather than reusing x402-types' `v2::SettleResponse`, whose 2.0.2 serialiser
/// writes a failure's reason as `error_reason` (snake case) and omits `transaction`, neither of
/// which the upstream schema accepts. Reading accepts that spelling too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementResponse {
    /// Whether the payment settled.
    pub success: bool,
    /// On failure, the machine-readable reason (`errorReason`; see [`Reason`](super::Reason)).
    #[serde(default, alias = "error_reason", skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// On failure, a human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The paying account; a string because failed answers from other facilitators send `""`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Hash of the transaction that carried the bundle (not the userOpHash); empty on failure.
    #[serde(default)]
    pub transaction: String,
    /// CAIP-2 network of the settlement (`eip155:<chainId>`).
    pub network: ChainId,
    /// The amount settled, in atomic units, when the facilitator reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Extension answers (e.g. `payment-identifier`), passed through as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
}

impl SettlementResponse {
    /// A settled payment: `transaction` is the bundle transaction's hash.
    pub fn success(chain_id: u64, payer: Address, transaction: B256) -> Self {
        Self {
            success: true,
            error_reason: None,
            error_message: None,
            payer: Some(payer.to_checksum(None)),
            transaction: transaction.to_string(),
            network: network(chain_id),
            amount: None,
            extensions: None,
        }
    }

    /// A failed settlement with its reason; no transaction.
    pub fn failure(
        chain_id: u64,
        reason: super::Reason,
        message: Option<String>,
        payer: Option<Address>,
    ) -> Self {
        Self {
            success: false,
            error_reason: Some(reason.as_str().to_owned()),
            error_message: message,
            payer: payer.map(|p| p.to_checksum(None)),
            transaction: String::new(),
            network: network(chain_id),
            amount: None,
            extensions: None,
        }
    }
}

/// CAIP-2 id of an EVM chain: `eip155:<chainId>`.
pub fn network(chain_id: u64) -> ChainId {
    ChainId::new(NAMESPACE, chain_id.to_string())
}

/// The EIP-155 chain id of a CAIP-2 `eip155:<decimal>` network (no sign, no leading zeros).
pub fn parse_network(network: &ChainId) -> Result<u64, PayloadError> {
    let reference = &network.reference;
    let canonical = network.namespace == NAMESPACE
        && !reference.is_empty()
        && reference.bytes().all(|b| b.is_ascii_digit())
        && (reference == "0" || !reference.starts_with('0'));
    let invalid = || PayloadError::InvalidNetwork { network: network.to_string() };
    if !canonical {
        return Err(invalid());
    }
    reference.parse().map_err(|_| invalid())
}

/// Strict decimal `uint256`: ASCII digits only, at least one. Leading zeros are tolerated
/// because amounts are compared by value, never as strings.
pub(crate) fn parse_decimal_u256(s: &str) -> Option<U256> {
    if s.is_empty() || s.len() > 100 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    U256::from_str_radix(s, 10).ok()
}

/// `0x` + 40 hex digits; the checksum is not enforced because x402 senders disagree on case.
fn parse_address(s: &str) -> Option<Address> {
    let digits = s.strip_prefix("0x")?;
    if digits.len() != 40 {
        return None;
    }
    digits.parse().ok()
}

mod decimal_u256 {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(value: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_decimal_u256(&s)
            .ok_or_else(|| D::Error::custom(format!("amount {s:?} is not a decimal uint256")))
    }
}
