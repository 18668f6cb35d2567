//! eth-infinitism's SimpleAccount v0.6: `createAccount(owner, salt)` on its factory,
//! `execute`/`executeBatch`, the owner's EIP-191 signature over the userOpHash.

use alloy::{
    primitives::{Address, Bytes},
    sol_types::SolCall,
};

use super::{
    AccountAbi, AccountCallDataError, AccountConfig, AccountConfigError, AccountKind, PaymentCall,
    SignerRole,
};
use crate::{
    abi::{executeBatchCall, executeCall},
    call_data::{DecodedPayment, decode_payment, encode_payment_batch},
    user_op::factory_init_code,
};

/// SimpleAccount's ABI (also the owner path of every account that copies it).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimpleAccountAbi;

impl AccountAbi for SimpleAccountAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::SimpleAccount
    }

    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError> {
        let owner = config.sole_owner(self.kind())?;
        Ok(factory_init_code(config.factory, owner, config.salt))
    }

    /// The factory's proxy creation code is not pinned here; its `getAddress(owner, salt)` is
    /// the one answer.
    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError> {
        config.sole_owner(self.kind())?;
        Ok(None)
    }

    fn encode_payment(&self, p: &PaymentCall) -> Bytes {
        encode_payment_batch(
            p.settle.token,
            p.settlement,
            p.settle.merchant,
            p.settle.amount,
            p.settle.request_hash,
        )
    }

    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        Ok(decode_payment(call_data)?)
    }

    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        simple_call_targets(call_data)
    }

    fn signer_role(&self, _signature: &[u8]) -> SignerRole {
        SignerRole::Owner
    }
}

/// `execute`'s `dest`, or every `executeBatch` destination; empty callData calls nothing.
pub(super) fn simple_call_targets(call_data: &[u8]) -> Option<Vec<Address>> {
    if call_data.is_empty() {
        return Some(Vec::new());
    }
    match call_data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok())? {
        executeCall::SELECTOR => executeCall::abi_decode(call_data).ok().map(|c| vec![c.dest]),
        executeBatchCall::SELECTOR => executeBatchCall::abi_decode(call_data).ok().map(|c| c.dest),
        _ => None,
    }
}
