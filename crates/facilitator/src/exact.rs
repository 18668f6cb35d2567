//! x402-rs' EIP-3009 `exact` scheme, answered the way the x402 v2 spec and the official
//! TypeScript facilitator answer.
//!
//! x402-rs 2.0.2 returns every `exact` refusal through its `Err` path, which its HTTP layer turns
//! into HTTP 400/412/500 with its own reason names (`invalid_format`, `unexpected_error` for a
//! reverted simulation such as a reused authorization), the detail under a non-standard
//! `invalidReasonDetails`, and empty `payer`/`network`. [`ExactFacilitator`] sits between x402-rs'
//! registry and its `exact` handler and answers every verdict through the `Ok` path instead:
//!
//! - a refusal is `{isValid: false, invalidReason, invalidMessage, payer}` /
//!   `{success: false, errorReason, errorMessage, transaction, network, payer}`, answered with
//!   HTTP 200 as the official facilitator does; `payer` and `network` come from the request
//!   whenever it names them;
//! - a reused or cancelled authorization (`authorizationState(from, nonce)`, part of EIP-3009)
//!   is named `invalid_exact_evm_nonce_already_used`: `/settle` reads it before x402-rs sends
//!   anything, `/verify` when x402-rs refuses (its simulation of the transfer already refuses a
//!   used nonce, so a valid payment costs no extra read);
//! - a fault of the facilitator itself (node unreachable) is `unexpected_verify_error` /
//!   `unexpected_settle_error`, which the server answers with HTTP 500.
//!
//! Reason strings: the spec's §9 list where it names the case, otherwise the official
//! TypeScript `exact` facilitator's (`@x402/evm`, `exact/facilitator/errors.ts`), so clients of
//! either see the same strings; see [`reason_of`].

use std::sync::Arc;

use alloy::primitives::{Address, B256};
use serde_json::{Value, json};
use x402_aa_contracts::TestEip3009Token;
use x402_types::{
    proto::{self, PaymentVerificationError},
    scheme::{X402SchemeFacilitator, X402SchemeFacilitatorError},
};

use crate::scheme::ExactProvider;

/// Spec §9: the authorization's `validAfter` is in the future.
pub const VALID_AFTER: &str = "invalid_exact_evm_payload_authorization_valid_after";
/// Spec §9: the authorization's `validBefore` has passed.
pub const VALID_BEFORE: &str = "invalid_exact_evm_payload_authorization_valid_before";
/// Spec §9: the authorized value is not the required amount.
pub const VALUE_MISMATCH: &str = "invalid_exact_evm_payload_authorization_value_mismatch";
/// Spec §9: the signature does not recover to `from`.
pub const SIGNATURE: &str = "invalid_exact_evm_payload_signature";
/// Spec §9: `to` is not the requirements' `payTo`.
pub const RECIPIENT_MISMATCH: &str = "invalid_exact_evm_payload_recipient_mismatch";
/// Official facilitator: the authorization's nonce is already used (or cancelled).
pub const NONCE_ALREADY_USED: &str = "invalid_exact_evm_nonce_already_used";
/// Official facilitator: simulating `transferWithAuthorization` reverted for another reason.
pub const SIMULATION_FAILED: &str = "invalid_exact_evm_transaction_simulation_failed";
/// Spec §9.
pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
/// x402 v2: the payload's network is not one this facilitator serves for `exact`.
pub const INVALID_NETWORK: &str = "invalid_network";
/// x402 v2: the payload does not decode as an `exact` EVM payload.
pub const INVALID_PAYLOAD: &str = "invalid_payload";
/// x402 v2: the requirements do not decode or name no EIP-3009 token.
pub const INVALID_PAYMENT_REQUIREMENTS: &str = "invalid_payment_requirements";
/// x402 v2: the payload's scheme is not `exact`.
pub const UNSUPPORTED_SCHEME: &str = "unsupported_scheme";
/// x402 v2: a protocol version this facilitator does not speak.
pub const INVALID_X402_VERSION: &str = "invalid_x402_version";
/// Spec §9: the settlement transaction was mined but reverted.
pub const INVALID_TRANSACTION_STATE: &str = "invalid_transaction_state";
/// Spec §9: a fault of the facilitator while verifying (HTTP 500).
pub const UNEXPECTED_VERIFY_ERROR: &str = "unexpected_verify_error";
/// Spec §9: a fault of the facilitator while settling (HTTP 500).
pub const UNEXPECTED_SETTLE_ERROR: &str = "unexpected_settle_error";
/// x402-rs: Permit2 needs an allowance first (the official server answers it with 412).
pub const PERMIT2_ALLOWANCE_REQUIRED: &str = "permit2_allowance_required";

/// Reasons that mean the facilitator failed, not the payment: answered with HTTP 500.
pub fn is_facilitator_fault(reason: &str) -> bool {
    reason == UNEXPECTED_VERIFY_ERROR || reason == UNEXPECTED_SETTLE_ERROR
}

/// x402-rs' `exact` handler with spec-shaped answers (module docs).
pub struct ExactFacilitator {
    inner: Box<dyn X402SchemeFacilitator>,
    provider: Arc<ExactProvider>,
}

impl std::fmt::Debug for ExactFacilitator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactFacilitator").field("provider", &self.provider).finish_non_exhaustive()
    }
}

impl ExactFacilitator {
    /// Wraps x402-rs' `exact` facilitator for `provider`'s chain, mapping its errors to the reasons above.
    pub fn new(inner: Box<dyn X402SchemeFacilitator>, provider: Arc<ExactProvider>) -> Self {
        Self { inner, provider }
    }

    /// The refusal for an authorization whose nonce the token already consumed, if it has.
    /// A failed read is no verdict: x402-rs' own checks still run.
    async fn used_nonce(&self, parts: &Parts) -> Option<String> {
        let (from, nonce, asset) = (parts.payer?, parts.nonce?, parts.asset?);
        let token = TestEip3009Token::new(asset, self.provider.inner_provider());
        match token.authorizationState(from, nonce).call().await {
            Ok(true) => {
                Some(format!("authorization nonce {nonce} of {from} is already used or cancelled"))
            }
            _ => None,
        }
    }
}

#[async_trait::async_trait]
impl X402SchemeFacilitator for ExactFacilitator {
    async fn verify(
        &self,
        request: &proto::VerifyRequest,
    ) -> Result<proto::VerifyResponse, X402SchemeFacilitatorError> {
        let parts = Parts::of(request.as_str());
        // x402-rs simulates `transferWithAuthorization`, which a used nonce reverts, so a valid
        // answer needs no nonce read; a refusal reads it, and a used nonce names the refusal
        // whatever else x402-rs found (as when it was read first, before every verify).
        let refusal = match self.inner.verify(request).await {
            Ok(mut answer) => {
                parts.fill_payer(&mut answer.0);
                if answer.0["isValid"] == true {
                    return Ok(answer);
                }
                answer
            }
            Err(e) => {
                let (reason, message) = reason_of(&e, false);
                proto::VerifyResponse(parts.invalid(reason, &message))
            }
        };
        if let Some(message) = self.used_nonce(&parts).await {
            return Ok(proto::VerifyResponse(parts.invalid(NONCE_ALREADY_USED, &message)));
        }
        Ok(refusal)
    }

    async fn settle(
        &self,
        request: &proto::SettleRequest,
    ) -> Result<proto::SettleResponse, X402SchemeFacilitatorError> {
        let parts = Parts::of(request.as_str());
        if let Some(message) = self.used_nonce(&parts).await {
            return Ok(proto::SettleResponse(parts.failed(NONCE_ALREADY_USED, &message, None)));
        }
        match self.inner.settle(request).await {
            Ok(mut answer) => {
                parts.fill_payer(&mut answer.0);
                Ok(answer)
            }
            Err(e) => {
                let (reason, message) = reason_of(&e, true);
                let tx = reverted_transaction(&e);
                Ok(proto::SettleResponse(parts.failed(reason, &message, tx)))
            }
        }
    }

    async fn supported(&self) -> Result<proto::SupportedResponse, X402SchemeFacilitatorError> {
        self.inner.supported().await
    }
}

/// What an `exact` request names, read leniently: a malformed request still gets its payer
/// and network echoed where they can be read.
#[derive(Debug, Default)]
struct Parts {
    payer: Option<Address>,
    network: Option<String>,
    nonce: Option<B256>,
    asset: Option<Address>,
}

impl Parts {
    fn of(raw: &str) -> Self {
        let Ok(body) = serde_json::from_str::<Value>(raw) else { return Self::default() };
        let payload = &body["paymentPayload"];
        let authorization = &payload["payload"]["authorization"];
        let permit2 = &payload["payload"]["permit2Authorization"];
        let read = |v: &Value| v.as_str().and_then(|s| s.parse::<Address>().ok());
        let network = [&payload["accepted"]["network"], &body["paymentRequirements"]["network"]]
            .into_iter()
            .find_map(|v| v.as_str().map(str::to_owned));
        Self {
            payer: read(&authorization["from"]).or_else(|| read(&permit2["from"])),
            network,
            nonce: authorization["nonce"].as_str().and_then(|s| s.parse().ok()),
            asset: read(&payload["accepted"]["asset"]),
        }
    }

    fn payer(&self) -> Value {
        self.payer.map_or(Value::Null, |p| Value::String(p.to_checksum(None)))
    }

    fn invalid(&self, reason: &str, message: &str) -> Value {
        let mut body =
            json!({ "isValid": false, "invalidReason": reason, "invalidMessage": message });
        if self.payer.is_some() {
            body["payer"] = self.payer();
        }
        body
    }

    fn failed(&self, reason: &str, message: &str, transaction: Option<B256>) -> Value {
        let mut body = json!({
            "success": false,
            "errorReason": reason,
            "errorMessage": message,
            "transaction": transaction.map(|t| t.to_string()).unwrap_or_default(),
            "network": self.network.clone().unwrap_or_default(),
        });
        if self.payer.is_some() {
            body["payer"] = self.payer();
        }
        body
    }

    /// x402-rs writes `payer` in lower case: the checksummed form, as aa-native answers.
    fn fill_payer(&self, answer: &mut Value) {
        if let (Some(object), Some(_)) = (answer.as_object_mut(), self.payer) {
            object.insert("payer".into(), self.payer());
        }
    }
}

/// The wire reason and message for an x402-rs `exact` error (module docs: which list).
pub fn reason_of(error: &X402SchemeFacilitatorError, settle: bool) -> (&'static str, String) {
    use PaymentVerificationError as P;
    let message = error.to_string();
    let reason = match error {
        X402SchemeFacilitatorError::PaymentVerification(e) => match e {
            P::InvalidFormat(_) => INVALID_PAYLOAD,
            P::InvalidPaymentAmount => VALUE_MISMATCH,
            P::Early => VALID_AFTER,
            P::Expired => VALID_BEFORE,
            P::ChainIdMismatch | P::UnsupportedChain => INVALID_NETWORK,
            P::RecipientMismatch => RECIPIENT_MISMATCH,
            P::AssetMismatch | P::AcceptedRequirementsMismatch => INVALID_PAYMENT_REQUIREMENTS,
            P::InsufficientFunds => INSUFFICIENT_FUNDS,
            P::InsufficientAllowance => PERMIT2_ALLOWANCE_REQUIRED,
            P::InvalidSignature(_) => SIGNATURE,
            P::TransactionSimulation(m) => simulation_reason(m),
            P::UnsupportedScheme => UNSUPPORTED_SCHEME,
        },
        X402SchemeFacilitatorError::OnchainFailure(m) => {
            if reverted_transaction(error).is_some() {
                INVALID_TRANSACTION_STATE
            } else if m.contains("revert") {
                // x402-rs simulates EOA authorizations with a plain `eth_call`, whose revert
                // reaches us as a transport error carrying the revert data.
                simulation_reason(m)
            } else if settle {
                UNEXPECTED_SETTLE_ERROR
            } else {
                UNEXPECTED_VERIFY_ERROR
            }
        }
    };
    (reason, message)
}

/// A simulation revert by what the token says: EIP-3009 tokens revert with the errors of
/// `TestEip3009Token` (custom errors) or FiatToken's strings.
fn simulation_reason(message: &str) -> &'static str {
    use alloy::sol_types::SolError;
    let lower = message.to_ascii_lowercase();
    let has = |selector: [u8; 4]| lower.contains(&alloy::hex::encode(selector));
    if has(TestEip3009Token::AuthorizationUsedOrCanceled::SELECTOR)
        || lower.contains("authorization is used")
    {
        NONCE_ALREADY_USED
    } else if has(TestEip3009Token::InvalidSignature::SELECTOR)
        || lower.contains("invalid signature")
    {
        SIGNATURE
    } else if has(TestEip3009Token::AuthorizationExpired::SELECTOR)
        || lower.contains("authorization is expired")
    {
        VALID_BEFORE
    } else if has(TestEip3009Token::AuthorizationNotYetValid::SELECTOR)
        || lower.contains("authorization is not yet valid")
    {
        VALID_AFTER
    } else if lower.contains("transfer amount exceeds balance") {
        INSUFFICIENT_FUNDS
    } else {
        SIMULATION_FAILED
    }
}

/// x402-rs reports a mined-but-reverted settlement as `Transaction 0x… reverted`.
fn reverted_transaction(error: &X402SchemeFacilitatorError) -> Option<B256> {
    let X402SchemeFacilitatorError::OnchainFailure(message) = error else { return None };
    let rest = message.split("Transaction ").nth(1)?;
    let (hash, tail) = rest.split_once(' ')?;
    tail.starts_with("reverted").then(|| hash.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_follow_the_spec() {
        let v = |e: PaymentVerificationError| reason_of(&e.into(), false).0;
        assert_eq!(v(PaymentVerificationError::Expired), VALID_BEFORE);
        assert_eq!(v(PaymentVerificationError::Early), VALID_AFTER);
        assert_eq!(v(PaymentVerificationError::InvalidPaymentAmount), VALUE_MISMATCH);
        assert_eq!(v(PaymentVerificationError::InvalidFormat("x".into())), INVALID_PAYLOAD);
        let onchain = |m: &str, settle| {
            reason_of(&X402SchemeFacilitatorError::OnchainFailure(m.into()), settle).0
        };
        let hash = B256::repeat_byte(7);
        assert_eq!(
            onchain(&format!("Transaction {hash} reverted"), true),
            INVALID_TRANSACTION_STATE
        );
        let used = alloy::hex::encode(
            <TestEip3009Token::AuthorizationUsedOrCanceled as alloy::sol_types::SolError>::SELECTOR,
        );
        let revert =
            format!("server returned an error response: execution reverted, data: \"0x{used}00\"");
        assert_eq!(onchain(&revert, false), NONCE_ALREADY_USED);
        assert_eq!(onchain("connection refused", false), UNEXPECTED_VERIFY_ERROR);
        assert_eq!(onchain("connection refused", true), UNEXPECTED_SETTLE_ERROR);
        let e = X402SchemeFacilitatorError::OnchainFailure(format!("Transaction {hash} reverted"));
        assert_eq!(reverted_transaction(&e), Some(hash));
    }

    #[test]
    fn parts_are_read_from_malformed_requests() {
        let from = Address::repeat_byte(0xab);
        let raw = json!({
            "paymentPayload": {
                "accepted": { "network": "eip155:31337" },
                "payload": { "authorization": { "from": from.to_string() } }
            }
        })
        .to_string();
        let parts = Parts::of(&raw);
        assert_eq!(parts.payer, Some(from));
        let failed = parts.failed(INVALID_PAYLOAD, "m", None);
        assert_eq!(failed["network"], "eip155:31337");
        assert_eq!(failed["payer"], from.to_checksum(None));
        assert_eq!(failed["transaction"], "");
        assert!(Parts::of("not json").invalid(INVALID_PAYLOAD, "m").get("payer").is_none());
    }
}
