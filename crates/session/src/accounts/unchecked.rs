//! A session account with the SDK's own scope checks taken out, as a hostile agent's modified
//! code would run it: it signs whatever payment it is asked for (over a cap, to any merchant,
//! outside the window), so demonstrations and tests can show the facilitator and the chain
//! refusing what the SDK would never have signed. Behind the `unchecked` feature: an agent
//! program has no use for it, and the on-chain account refuses its out-of-scope payments anyway.

use alloy::{
    primitives::{Address, Bytes},
    providers::DynProvider,
};
use x402_aa::{
    UserOperation,
    accounts::{AccountAbi, AccountKind},
};

use crate::{
    GrantWindow, SessionMode,
    signer::{OpDomain, Payment, PaymentAccount, SessionAccount, SessionPrepared, SignerError},
};

/// [`SessionAccount`] signing without [`PaymentAccount::check`]'s scope checks. It always signs
/// in use mode (the account deployed and the session enabled), period index from the grant's
/// window at the payment's time, the merchant's allowlist proof where the file has one.
#[derive(Debug)]
pub struct UncheckedSessionAccount(pub SessionAccount);

impl PaymentAccount for UncheckedSessionAccount {
    type Prepared = SessionPrepared;

    fn kind(&self) -> AccountKind {
        self.0.kind()
    }

    fn abi(&self) -> &dyn AccountAbi {
        self.0.abi()
    }

    fn sender(&self) -> Address {
        self.0.sender()
    }

    fn token(&self) -> Address {
        self.0.token()
    }

    fn settlement(&self) -> Address {
        self.0.settlement()
    }

    fn init_code(&self) -> Result<Option<Bytes>, SignerError> {
        self.0.init_code()
    }

    fn check(&self, _: &Payment) -> Result<(), SignerError> {
        Ok(())
    }

    async fn prepare(
        &self,
        _: &DynProvider,
        payment: &Payment,
        _: bool,
    ) -> Result<Self::Prepared, SignerError> {
        let grant = self.0.grant();
        let merchant_proof = self.0.file.merchant_proof(payment.merchant);
        Ok(SessionPrepared {
            mode: SessionMode::Use,
            period_index: grant.period_index_at(payment.now).unwrap_or_default(),
            merchant_proof,
            gas: Default::default(),
        })
    }

    fn placeholder_signature(&self, prepared: &Self::Prepared) -> Bytes {
        self.0.placeholder_signature(prepared)
    }

    fn sign(
        &self,
        op: &UserOperation,
        domain: OpDomain,
        prepared: &Self::Prepared,
    ) -> Result<Bytes, SignerError> {
        self.0.sign(op, domain, prepared)
    }
}
