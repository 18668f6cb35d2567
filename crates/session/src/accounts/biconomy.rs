//! A Biconomy Smart Account v2 paid from by its owner: the ECDSA ownership module validates
//! the op, so the owner signs the userOpHash (EIP-191) and the signature goes out as
//! `abi.encode(signature, ecdsaModule)`, the module the account hands validation to.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::DynProvider,
    signers::{SignerSync, local::PrivateKeySigner},
};
use x402_aa::{
    UserOperation,
    accounts::{
        AccountAbi, AccountConfig, AccountKind, BiconomyAbi,
        biconomy::{Deployment, encode_signature},
    },
};

use super::stub_signature;
use crate::signer::{OpDomain, Payment, PaymentAccount, SignerError};

/// The owner's Biconomy account number `index` of one deployment (the canonical one, or the
/// devnet's vendored build, whose addresses differ).
#[derive(Debug, Clone)]
pub struct BiconomyOwnerAccount {
    owner: PrivateKeySigner,
    sender: Address,
    token: Address,
    settlement: Address,
    index: U256,
    abi: BiconomyAbi,
}

impl BiconomyOwnerAccount {
    /// The account `deployment`'s factory creates for `owner` at `index` (counterfactual until
    /// its first op deploys it); it pays `token` through `settlement`.
    pub fn new(
        owner: PrivateKeySigner,
        deployment: Deployment,
        token: Address,
        settlement: Address,
        index: U256,
    ) -> Self {
        let sender = deployment.account_address(owner.address(), index);
        Self { owner, sender, token, settlement, index, abi: BiconomyAbi::new(deployment) }
    }

    /// The owner's address: the key the ECDSA ownership module checks.
    pub fn owner(&self) -> Address {
        self.owner.address()
    }

    fn envelope(&self, signature: &alloy::primitives::Signature) -> Bytes {
        encode_signature(&signature.as_bytes(), self.abi.deployment.ecdsa_module)
    }
}

impl PaymentAccount for BiconomyOwnerAccount {
    type Prepared = ();

    fn kind(&self) -> AccountKind {
        AccountKind::Biconomy
    }

    fn abi(&self) -> &dyn AccountAbi {
        &self.abi
    }

    fn sender(&self) -> Address {
        self.sender
    }

    fn token(&self) -> Address {
        self.token
    }

    fn settlement(&self) -> Address {
        self.settlement
    }

    fn init_code(&self) -> Result<Option<Bytes>, SignerError> {
        let factory = self.abi.deployment.factory;
        let config = AccountConfig::single_owner(factory, self.owner.address(), self.index);
        Ok(Some(self.abi.init_code(&config)?))
    }

    fn check(&self, _payment: &Payment) -> Result<(), SignerError> {
        Ok(())
    }

    async fn prepare(&self, _: &DynProvider, _: &Payment, _: bool) -> Result<(), SignerError> {
        Ok(())
    }

    fn placeholder_signature(&self, _: &()) -> Bytes {
        self.envelope(&stub_signature())
    }

    fn sign(&self, op: &UserOperation, domain: OpDomain, _: &()) -> Result<Bytes, SignerError> {
        let user_op_hash = op.hash(domain.entry_point, domain.chain_id);
        Ok(self.envelope(&self.owner.sign_message_sync(user_op_hash.as_slice())?))
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Signature;
    use x402_aa::accounts::{
        SignerRole,
        biconomy::{decode_signature, ecdsa_digest},
    };

    use super::*;

    #[test]
    fn signs_for_the_ecdsa_module() {
        let owner = PrivateKeySigner::random();
        let d = Deployment::CANONICAL;
        let account =
            BiconomyOwnerAccount::new(owner.clone(), d, Address::ZERO, Address::ZERO, U256::ZERO);
        assert_eq!(account.sender(), d.account_address(owner.address(), U256::ZERO));
        let op = UserOperation { sender: account.sender(), ..UserOperation::default() };
        let domain = OpDomain { entry_point: x402_aa::ENTRY_POINT_V06, chain_id: 31337 };
        let sig = account.sign(&op, domain, &()).unwrap();
        assert_eq!(sig.len(), account.placeholder_signature(&()).len());
        let envelope = decode_signature(&sig).unwrap();
        assert_eq!(envelope.validation_module, d.ecdsa_module);
        let ecdsa = Signature::try_from(envelope.module_signature.as_ref()).unwrap();
        let digest = ecdsa_digest(op.hash(domain.entry_point, 31337));
        assert_eq!(ecdsa.recover_address_from_prehash(&digest).unwrap(), owner.address());
        assert_eq!(account.abi().signer_role(&sig), SignerRole::Owner);
    }
}
