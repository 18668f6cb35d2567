//! This project's `SessionKeyAccount` (`contracts/src/SessionKeyAccount.sol`): SimpleAccount's
//! factory call, callData and owner signature, plus session-key ops, which the account tells apart
//! from owner ops by the signature's length (exactly 65 bytes is the owner's ECDSA signature).

use alloy::primitives::{Address, Bytes};

use super::{
    AccountAbi, AccountCallDataError, AccountConfig, AccountConfigError, AccountKind, PaymentCall,
    SignerRole, simple_account::SimpleAccountAbi,
};
use crate::call_data::DecodedPayment;

/// The length of an owner signature; every other signature is a session signature
/// (`validateUserOp`'s own routing).
pub const OWNER_SIGNATURE_LEN: usize = 65;

/// SessionKeyAccount's ABI.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionKeyAccountAbi;

impl AccountAbi for SessionKeyAccountAbi {
    fn kind(&self) -> AccountKind {
        AccountKind::SessionKeyAccount
    }

    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError> {
        SimpleAccountAbi.init_code(config)
    }

    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError> {
        SimpleAccountAbi.counterfactual_address(config)
    }

    fn encode_payment(&self, payment: &PaymentCall) -> Bytes {
        SimpleAccountAbi.encode_payment(payment)
    }

    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError> {
        SimpleAccountAbi.decode_payment(call_data)
    }

    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>> {
        SimpleAccountAbi.call_targets(call_data)
    }

    fn signer_role(&self, signature: &[u8]) -> SignerRole {
        if signature.len() == OWNER_SIGNATURE_LEN { SignerRole::Owner } else { SignerRole::Session }
    }
}
