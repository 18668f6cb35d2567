//! The stateless part of a facilitator's aa-native `/verify` (nero402-spec §8.2 steps 3–5 and
//! the accepted-vs-requirements check). Replay (step 6) needs the registry and lives with it.

use super::{
    AaNativeEnvelope, AaNativePayload, AaNativeRequirements, PayloadError, RequestBinding,
    SettlementCallSpec,
};
use crate::{DecodedPayment, accounts::AccountAbi};

impl AaNativeEnvelope {
    /// Every stateless check against the merchant's own requirements, in the order their NERO
    /// codes are listed; returns the decoded callData for the caller's replay check and submit.
    pub fn verify_against(
        &self,
        required: &AaNativeRequirements,
        account: &dyn AccountAbi,
    ) -> Result<DecodedPayment, PayloadError> {
        check_accepted(&self.accepted, required)?;
        let payload = &self.payload.payload;
        let decoded = payload.check_call_data(account)?;
        if let Some(extra) = &required.extra
            && decoded.settlement != extra.settlement_contract
        {
            return Err(PayloadError::RequirementsMismatch { field: "extra.settlementContract" });
        }
        payload.settlement_call_spec.check_against(required)?;
        payload.check_request_binding(required.chain_id)?;
        Ok(decoded)
    }
}

/// The payer's `accepted` must be the merchant's requirement, field for field.
pub fn check_accepted(
    accepted: &AaNativeRequirements,
    required: &AaNativeRequirements,
) -> Result<(), PayloadError> {
    if accepted.chain_id != required.chain_id {
        return Err(PayloadError::NetworkMismatch {
            expected: required.chain_id,
            actual: accepted.chain_id,
        });
    }
    if accepted.amount != required.amount {
        return Err(PayloadError::AmountMismatch {
            expected: required.amount,
            actual: accepted.amount,
        });
    }
    if accepted.asset != required.asset {
        return Err(PayloadError::AssetMismatch {
            expected: required.asset,
            actual: accepted.asset,
        });
    }
    if accepted.pay_to != required.pay_to {
        return Err(PayloadError::PayToMismatch {
            expected: required.pay_to,
            actual: accepted.pay_to,
        });
    }
    if accepted.max_timeout_seconds != required.max_timeout_seconds {
        return Err(PayloadError::RequirementsMismatch { field: "maxTimeoutSeconds" });
    }
    if accepted.extra != required.extra {
        return Err(PayloadError::RequirementsMismatch { field: "extra" });
    }
    Ok(())
}

impl AaNativePayload {
    /// Steps 3–4: the callData is a payment shape and its `settle` is exactly the spec.
    pub fn check_call_data(
        &self,
        account: &dyn AccountAbi,
    ) -> Result<DecodedPayment, PayloadError> {
        let decoded = account.decode_payment(&self.user_op.call_data)?;
        let (spec, call) = (&self.settlement_call_spec, &decoded.settle);
        let field = if call.merchant != spec.merchant {
            Some("merchant")
        } else if call.token != spec.token {
            Some("token")
        } else if call.amount != spec.amount {
            Some("amount")
        } else if call.request_hash != spec.request_hash {
            Some("requestHash")
        } else {
            None
        };
        match field {
            Some(field) => Err(PayloadError::SpecMismatch { field }),
            None => Ok(decoded),
        }
    }

    /// When the payer disclosed its request binding, it must be what `requestHash` was made of
    /// (with the spec's merchant and `chain_id`). Returns the binding, if any, for a resource
    /// server to compare with the request it serves.
    pub fn check_request_binding(
        &self,
        chain_id: u64,
    ) -> Result<Option<&RequestBinding>, PayloadError> {
        let Some(binding) = &self.request else { return Ok(None) };
        let spec = &self.settlement_call_spec;
        match binding.input(spec.merchant, chain_id).hash() {
            Ok(hash) if hash == spec.request_hash => Ok(Some(binding)),
            Ok(hash) => Err(PayloadError::RequestBindingMismatch(format!(
                "it hashes to {hash}, the payment's requestHash is {}",
                spec.request_hash
            ))),
            Err(e) => Err(PayloadError::RequestBindingMismatch(e.to_string())),
        }
    }
}

impl SettlementCallSpec {
    /// Step 5: the spec pays what the merchant asked (merchant = payTo, token = asset, amount).
    pub fn check_against(&self, required: &AaNativeRequirements) -> Result<(), PayloadError> {
        if self.merchant != required.pay_to {
            return Err(PayloadError::PayToMismatch {
                expected: required.pay_to,
                actual: self.merchant,
            });
        }
        if self.token != required.asset {
            return Err(PayloadError::AssetMismatch {
                expected: required.asset,
                actual: self.token,
            });
        }
        if self.amount != required.amount {
            return Err(PayloadError::AmountMismatch {
                expected: required.amount,
                actual: self.amount,
            });
        }
        Ok(())
    }
}
