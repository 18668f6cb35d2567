//! A ZeroDev Kernel v2.4 account paid from by its owner: the ECDSAValidator is the account's
//! default ("sudo") validator, so the owner signs the userOpHash as a SimpleAccount owner does
//! (EIP-191) and the signature goes out behind Kernel's 4-byte sudo mode.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::DynProvider,
    signers::{SignerSync, local::PrivateKeySigner},
};
use x402_aa::{
    UserOperation,
    accounts::{
        AccountAbi, AccountConfig, AccountKind, KernelAbi,
        kernel::{KERNEL_FACTORY, account_address_with, initialize_data, owner_signature},
    },
};

use super::stub_signature;
use crate::signer::{OpDomain, Payment, PaymentAccount, SignerError};

/// The owner's Kernel account number `index` (canonical factory and implementation unless
/// [`KernelOwnerAccount::with_deployment`] says otherwise).
#[derive(Debug, Clone)]
pub struct KernelOwnerAccount {
    owner: PrivateKeySigner,
    sender: Address,
    token: Address,
    settlement: Address,
    factory: Address,
    index: U256,
    abi: KernelAbi,
}

impl KernelOwnerAccount {
    /// The account the canonical KernelFactory creates for `owner` at `index` with ECDSAValidator
    /// as sudo validator (counterfactual until its first op deploys it).
    pub fn new(owner: PrivateKeySigner, token: Address, settlement: Address, index: U256) -> Self {
        Self::with_deployment(owner, token, settlement, index, KERNEL_FACTORY, KernelAbi::CANONICAL)
    }

    /// An account of another KernelFactory / implementation pair; the address follows from the
    /// factory, the owner and the index.
    pub fn with_deployment(
        owner: PrivateKeySigner,
        token: Address,
        settlement: Address,
        index: U256,
        factory: Address,
        abi: KernelAbi,
    ) -> Self {
        let sender = account_address_with(factory, &initialize_data(owner.address()), index);
        Self { owner, sender, token, settlement, factory, index, abi }
    }

    /// The owner's address: what ECDSAValidator stores for the account and checks.
    pub fn owner(&self) -> Address {
        self.owner.address()
    }
}

impl PaymentAccount for KernelOwnerAccount {
    type Prepared = ();

    fn kind(&self) -> AccountKind {
        AccountKind::Kernel
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
        let config = AccountConfig::single_owner(self.factory, self.owner.address(), self.index);
        Ok(Some(self.abi.init_code(&config)?))
    }

    fn check(&self, _payment: &Payment) -> Result<(), SignerError> {
        Ok(())
    }

    async fn prepare(&self, _: &DynProvider, _: &Payment, _: bool) -> Result<(), SignerError> {
        Ok(())
    }

    fn placeholder_signature(&self, _: &()) -> Bytes {
        owner_signature(&stub_signature())
    }

    fn sign(&self, op: &UserOperation, domain: OpDomain, _: &()) -> Result<Bytes, SignerError> {
        let user_op_hash = op.hash(domain.entry_point, domain.chain_id);
        Ok(owner_signature(&self.owner.sign_message_sync(user_op_hash.as_slice())?))
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{address, keccak256};
    use x402_aa::accounts::kernel::verify_owner_signature;

    use super::*;

    #[test]
    fn signs_what_the_ecdsa_validator_accepts() {
        let owner = PrivateKeySigner::random();
        let account =
            KernelOwnerAccount::new(owner.clone(), Address::ZERO, Address::ZERO, U256::ZERO);
        assert_eq!(
            account.sender(),
            x402_aa::accounts::kernel::account_address(owner.address(), U256::ZERO)
        );
        let op = UserOperation { sender: account.sender(), ..UserOperation::default() };
        let domain = OpDomain {
            entry_point: address!("0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"),
            chain_id: 31337,
        };
        let sig = account.sign(&op, domain, &()).unwrap();
        assert_eq!(sig.len(), account.placeholder_signature(&()).len());
        verify_owner_signature(owner.address(), op.hash(domain.entry_point, 31337), &sig).unwrap();
        assert!(verify_owner_signature(owner.address(), keccak256("other"), &sig).is_err());
        let init = account.init_code().unwrap().unwrap();
        assert_eq!(init, x402_aa::accounts::kernel::init_code(owner.address(), U256::ZERO));
    }
}
