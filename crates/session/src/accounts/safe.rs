//! A Safe 1.4.1 with Safe4337Module v0.2.0 paid from by its owners: each signing owner signs
//! the module's EIP-712 `SafeOp` (every op field but the signature, the validity window and
//! the EntryPoint, in the module's domain) with plain ECDSA; the signature is the window
//! followed by the owners' signatures in ascending owner order.
//!
//! The window bounds how long a signed payment can be submitted: `validUntil = now +
//! validity`, checked by the EntryPoint (`AA22`) and by the facilitator's `/verify`.

use alloy::{
    primitives::{Address, Bytes, aliases::U48},
    providers::DynProvider,
    signers::{SignerSync, local::PrivateKeySigner},
};
use x402_aa::{
    UserOperation,
    accounts::{
        AccountAbi, AccountConfig, AccountKind, SafeAbi,
        safe::{
            OwnerSignature, SafeConfig, SafeConfigError, SafeDeployment, SafeSignatureError,
            Validity, encode_signature,
        },
    },
};

use super::stub_signature;
use crate::signer::{OpDomain, Payment, PaymentAccount, SignerError};

/// How long a signed Safe payment stays valid by default, the paymaster's default too.
pub const DEFAULT_VALIDITY_SECONDS: u64 = 600;

/// A Safe (its owners and threshold) and the owner keys this agent signs with: `threshold` of
/// them sign every op.
#[derive(Debug, Clone)]
pub struct SafeOwnerAccount {
    keys: Vec<PrivateKeySigner>,
    config: SafeConfig,
    sender: Address,
    token: Address,
    settlement: Address,
    validity_seconds: u64,
    abi: SafeAbi,
}

/// Why a set of keys cannot sign for a Safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SafeAccountError {
    /// The Safe's owners and threshold are not a valid Safe setup (see [`SafeConfigError`]).
    #[error(transparent)]
    Config(#[from] SafeConfigError),
    /// A key is not one of the Safe's owners: its signature would not count. Holds its address.
    #[error("key for {0} is not an owner of this Safe")]
    NotAnOwner(Address),
    /// Fewer keys than the threshold: every op would fail the Safe's signature check.
    #[error("{keys} owner keys cannot meet the threshold of {threshold}")]
    TooFewKeys {
        /// How many keys were given.
        keys: usize,
        /// The Safe's threshold.
        threshold: u64,
    },
    /// The same owner's key twice: Safe counts each owner once. Holds its address.
    #[error("key for {0} is given twice")]
    DuplicateKey(Address),
}

impl SafeOwnerAccount {
    /// A Safe of `config` in `deployment`, signed by `keys`: every key an owner, at least
    /// `threshold` of them (the first `threshold` sign).
    pub fn new(
        keys: Vec<PrivateKeySigner>,
        config: SafeConfig,
        deployment: SafeDeployment,
        token: Address,
        settlement: Address,
    ) -> Result<Self, SafeAccountError> {
        config.validate()?;
        for (i, key) in keys.iter().enumerate() {
            let address = key.address();
            if !config.owners.contains(&address) {
                return Err(SafeAccountError::NotAnOwner(address));
            }
            if keys[..i].iter().any(|k| k.address() == address) {
                return Err(SafeAccountError::DuplicateKey(address));
            }
        }
        if (keys.len() as u64) < config.threshold {
            return Err(SafeAccountError::TooFewKeys {
                keys: keys.len(),
                threshold: config.threshold,
            });
        }
        let sender = deployment.account_address(&config)?;
        Ok(Self {
            keys,
            config,
            sender,
            token,
            settlement,
            validity_seconds: DEFAULT_VALIDITY_SECONDS,
            abi: SafeAbi::new(deployment),
        })
    }

    /// A 1-of-1 Safe of `owner` with `salt_nonce`.
    pub fn single_owner(
        owner: PrivateKeySigner,
        deployment: SafeDeployment,
        token: Address,
        settlement: Address,
        salt_nonce: alloy::primitives::U256,
    ) -> Result<Self, SafeAccountError> {
        let config = SafeConfig::single_owner(owner.address(), salt_nonce);
        Self::new(vec![owner], config, deployment, token, settlement)
    }

    /// How long each signed op stays valid (default [`DEFAULT_VALIDITY_SECONDS`]).
    pub fn validity(mut self, seconds: u64) -> Self {
        self.validity_seconds = seconds;
        self
    }

    /// The Safe's owners, threshold and salt nonce, which fix its address.
    pub fn config(&self) -> &SafeConfig {
        &self.config
    }

    fn signing_keys(&self) -> &[PrivateKeySigner] {
        // `new` checked there are at least `threshold` keys; a threshold beyond usize cannot
        // have passed that check.
        let n = usize::try_from(self.config.threshold).unwrap_or(usize::MAX).min(self.keys.len());
        &self.keys[..n]
    }

    fn envelope(
        &self,
        validity: Validity,
        signatures: &[OwnerSignature],
    ) -> Result<Bytes, SignerError> {
        encode_signature(validity, signatures)
            .map_err(|e: SafeSignatureError| SignerError::Sign(alloy::signers::Error::other(e)))
    }
}

impl PaymentAccount for SafeOwnerAccount {
    /// The op's validity window, fixed before the op is built so the placeholder has it.
    type Prepared = Validity;

    fn kind(&self) -> AccountKind {
        AccountKind::Safe
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
        let config = AccountConfig {
            factory: self.abi.deployment.proxy_factory,
            owners: self.config.owners.clone(),
            threshold: self.config.threshold,
            salt: self.config.salt_nonce,
        };
        Ok(Some(self.abi.init_code(&config)?))
    }

    fn check(&self, _payment: &Payment) -> Result<(), SignerError> {
        Ok(())
    }

    async fn prepare(
        &self,
        _: &DynProvider,
        payment: &Payment,
        _: bool,
    ) -> Result<Validity, SignerError> {
        let until = payment.now.saturating_add(self.validity_seconds);
        // uint48 seconds last until the year 8.9 million; saturate rather than wrap.
        let valid_until = U48::try_from(until).unwrap_or(U48::MAX);
        Ok(Validity { valid_after: U48::ZERO, valid_until })
    }

    fn placeholder_signature(&self, validity: &Validity) -> Bytes {
        let stub = stub_signature();
        let signatures: Vec<OwnerSignature> = self
            .signing_keys()
            .iter()
            .map(|k| OwnerSignature { owner: k.address(), signature: stub })
            .collect();
        // Distinct owners (checked by `new`): the envelope cannot refuse them.
        self.envelope(*validity, &signatures).unwrap_or_default()
    }

    fn sign(
        &self,
        op: &UserOperation,
        domain: OpDomain,
        validity: &Validity,
    ) -> Result<Bytes, SignerError> {
        let entry_point = self.abi.deployment.entry_point;
        if domain.entry_point != entry_point {
            // The module only answers its own EntryPoint; a SafeOp for another is never valid.
            return Err(SignerError::WrongEntryPoint {
                expected: entry_point,
                got: domain.entry_point,
            });
        }
        let hash = self.abi.deployment.operation_hash(op, *validity, domain.chain_id);
        let signatures = self
            .signing_keys()
            .iter()
            .map(|k| Ok(OwnerSignature { owner: k.address(), signature: k.sign_hash_sync(&hash)? }))
            .collect::<Result<Vec<_>, SignerError>>()?;
        self.envelope(*validity, &signatures)
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{Signature, U256};
    use x402_aa::accounts::safe::{decode_signature, split_ecdsa_signatures};

    use super::*;

    fn keys(n: usize) -> Vec<PrivateKeySigner> {
        (0..n).map(|_| PrivateKeySigner::random()).collect()
    }

    fn payment(now: u64) -> Payment {
        Payment {
            merchant: Address::ZERO,
            token: Address::ZERO,
            settlement: Address::ZERO,
            amount: U256::ZERO,
            request_hash: Default::default(),
            now,
        }
    }

    #[tokio::test]
    async fn two_of_three_signs_with_two_sorted_owners() {
        let owners = keys(3);
        let config = SafeConfig {
            owners: owners.iter().map(|k| k.address()).collect(),
            threshold: 2,
            salt_nonce: U256::ZERO,
        };
        let d = SafeDeployment::CANONICAL;
        let account = SafeOwnerAccount::new(
            vec![owners[2].clone(), owners[0].clone()],
            config.clone(),
            d,
            Address::ZERO,
            Address::ZERO,
        )
        .unwrap();
        assert_eq!(account.sender(), d.account_address(&config).unwrap());
        use alloy::providers::Provider;
        let provider = alloy::providers::ProviderBuilder::new()
            .connect_http("http://127.0.0.1:9".parse().unwrap())
            .erased();
        let validity = account.prepare(&provider, &payment(1_000), true).await.unwrap();
        assert_eq!(validity.valid_until, U48::from(1_600));

        let op = UserOperation { sender: account.sender(), ..UserOperation::default() };
        let domain = OpDomain { entry_point: d.entry_point, chain_id: 31337 };
        let sig = account.sign(&op, domain, &validity).unwrap();
        assert_eq!(sig.len(), account.placeholder_signature(&validity).len());
        let envelope = decode_signature(&sig).unwrap();
        assert_eq!(envelope.validity, validity);
        let hash = d.operation_hash(&op, validity, 31337);
        let signers: Vec<Address> = split_ecdsa_signatures(&envelope.signatures)
            .unwrap()
            .iter()
            .map(|s| {
                Signature::try_from(&s[..]).unwrap().recover_address_from_prehash(&hash).unwrap()
            })
            .collect();
        let mut expected = vec![owners[2].address(), owners[0].address()];
        expected.sort();
        assert_eq!(signers, expected, "Safe wants ascending owners");

        let other = OpDomain { entry_point: Address::ZERO, chain_id: 31337 };
        assert!(matches!(
            account.sign(&op, other, &validity),
            Err(SignerError::WrongEntryPoint { .. })
        ));
    }

    #[test]
    fn keys_must_be_enough_distinct_owners() {
        let owners = keys(3);
        let config = SafeConfig {
            owners: owners.iter().map(|k| k.address()).collect(),
            threshold: 2,
            salt_nonce: U256::ZERO,
        };
        let d = SafeDeployment::CANONICAL;
        let new = |keys: Vec<PrivateKeySigner>| {
            SafeOwnerAccount::new(keys, config.clone(), d, Address::ZERO, Address::ZERO)
        };
        assert!(matches!(
            new(vec![owners[0].clone()]),
            Err(SafeAccountError::TooFewKeys { keys: 1, threshold: 2 })
        ));
        assert!(matches!(
            new(vec![owners[0].clone(), owners[0].clone()]),
            Err(SafeAccountError::DuplicateKey(_))
        ));
        let stranger = PrivateKeySigner::random();
        assert_eq!(
            new(vec![owners[0].clone(), stranger.clone()]).unwrap_err(),
            SafeAccountError::NotAnOwner(stranger.address())
        );
        let bad = SafeConfig { threshold: 0, ..config.clone() };
        assert!(matches!(
            SafeOwnerAccount::new(owners.clone(), bad, d, Address::ZERO, Address::ZERO),
            Err(SafeAccountError::Config(SafeConfigError::ZeroThreshold))
        ));
    }
}
