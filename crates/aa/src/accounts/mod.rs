//! Account kinds: everything that differs between the ERC-4337 account contracts that can pay
//! aa-native invoices, on the protocol level (no keys, no RPC). One module per kind.
//!
//! An [`AccountKind`] names a contract family; its [`AccountAbi`] knows the counterfactual
//! deployment (initCode), the payment callData (encode for the agent, decode to the one `settle` for
//! the facilitator and the paymaster), and how the account routes a signature (owner or session).
//! Callers pick the kind explicitly, from the op's factory, the account's implementation or a
//! declared kind, never from the shape of a signature. Signing itself (keys) is the SDK's side of
//! the same seam: `x402_aa_session::signer::PaymentAccount`.
//!
//! # Adding a kind
//! See `docs/account-kinds.md`: one module here (the ABI) and one `PaymentAccount` implementation
//! in the SDK (`x402_aa_session::accounts`); the facilitator needs the kind's addresses in its
//! network config and in `Network::account_kind`, the paymaster only the [`AccountKind`] it
//! sponsors.

use alloy::primitives::{Address, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::call_data::{CallDataError, DecodedPayment, SettleCall};

pub mod biconomy;
pub mod kernel;
pub mod safe;
pub mod session_key_account;
pub mod session_payment;
pub mod simple_account;

pub use biconomy::BiconomyAbi;
pub use kernel::{KernelAbi, KernelSessionAbi};
pub use safe::SafeAbi;
pub use session_key_account::SessionKeyAccountAbi;
pub use simple_account::SimpleAccountAbi;

/// The account contract families this workspace can pay from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AccountKind {
    /// eth-infinitism's SimpleAccount v0.6 (and any account with its ABI): owner-signed only.
    #[default]
    SimpleAccount,
    /// This project's `SessionKeyAccount`: SimpleAccount's ABI plus session keys.
    SessionKeyAccount,
    /// ZeroDev Kernel v2.4 with the ECDSAValidator as its default validator.
    Kernel,
    /// Safe 1.4.1 with Safe4337Module v0.2.0 as module and fallback handler.
    Safe,
    /// Biconomy Smart Account v2 with the ECDSA ownership module.
    Biconomy,
}

/// The canonical deployments' ABIs, what [`AccountKind::abi`] hands out.
static KERNEL: KernelAbi = KernelAbi::CANONICAL;
static SAFE: SafeAbi = SafeAbi::CANONICAL;
static BICONOMY: BiconomyAbi = BiconomyAbi::CANONICAL;

impl AccountKind {
    /// Every kind.
    pub const ALL: [Self; 5] =
        [Self::SimpleAccount, Self::SessionKeyAccount, Self::Kernel, Self::Safe, Self::Biconomy];

    /// The kind's protocol-level behaviour, for its canonical deployment. Where a network
    /// deploys a kind elsewhere (Biconomy on the devnet), build the kind's ABI value from that
    /// deployment instead ([`BiconomyAbi::new`], [`SafeAbi::new`], [`KernelAbi`]'s fields).
    pub fn abi(self) -> &'static dyn AccountAbi {
        match self {
            Self::SimpleAccount => &SimpleAccountAbi,
            Self::SessionKeyAccount => &SessionKeyAccountAbi,
            Self::Kernel => &KERNEL,
            Self::Safe => &SAFE,
            Self::Biconomy => &BICONOMY,
        }
    }

    /// The name used in configuration files and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SimpleAccount => "simple-account",
            Self::SessionKeyAccount => "session-key-account",
            Self::Kernel => "kernel",
            Self::Safe => "safe",
            Self::Biconomy => "biconomy",
        }
    }
}

impl std::fmt::Display for AccountKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for AccountKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            format!("unknown account kind {s:?} (one of {})", names.join(", "))
        })
    }
}

/// Who an op's signature speaks for, by the account's own routing rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerRole {
    /// The account's owner (or owners) signed the op.
    Owner,
    /// A session key signed under an owner-signed grant.
    Session,
}

/// One payment, in the terms every account kind encodes: approve the settlement contract for
/// `settle.amount` of `settle.token`, then call `settlement.settle(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCall {
    /// The settlement contract: the approve's spender and the target of `settle`.
    pub settlement: Address,
    /// The `settle(merchant, token, amount, requestHash)` arguments.
    pub settle: SettleCall,
}

/// What a counterfactual account is deployed with: the factory its initCode calls, its owners
/// and how many of them must sign, and the salt (SimpleAccount's `salt`, Kernel's and
/// Biconomy's `index`, Safe's `saltNonce`). Every kind but Safe takes exactly one owner and a
/// threshold of one; the rest of a kind's deployment (implementation, validator, modules) is
/// part of its [`AccountAbi`] value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountConfig {
    /// The factory the initCode calls.
    pub factory: Address,
    /// The owner keys; exactly one for every kind but Safe.
    pub owners: Vec<Address>,
    /// How many owners must sign; 1 for every kind but Safe.
    pub threshold: u64,
    /// The deployment salt (the kind's `salt`, `index` or `saltNonce`).
    pub salt: U256,
}

impl AccountConfig {
    /// One owner, threshold one.
    pub fn single_owner(factory: Address, owner: Address, salt: U256) -> Self {
        Self { factory, owners: vec![owner], threshold: 1, salt }
    }

    /// The one owner of a single-owner kind, or why this config has another shape.
    pub fn sole_owner(&self, kind: AccountKind) -> Result<Address, AccountConfigError> {
        match self.owners.as_slice() {
            [owner] if self.threshold == 1 => Ok(*owner),
            _ => Err(AccountConfigError::NotSingleOwner {
                kind,
                owners: self.owners.len(),
                threshold: self.threshold,
            }),
        }
    }
}

/// Why an [`AccountConfig`] cannot deploy an account of a kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountConfigError {
    /// A single-owner kind was given several owners or a threshold other than 1.
    #[error(
        "{kind} accounts have exactly one owner and threshold 1; this config has {owners} owners and threshold {threshold}"
    )]
    NotSingleOwner {
        /// The kind asked for.
        kind: AccountKind,
        /// How many owners the config has.
        owners: usize,
        /// The config's threshold.
        threshold: u64,
    },
    /// The owners and threshold are not a Safe setup (see [`safe::SafeConfigError`]).
    #[error("safe: {0}")]
    Safe(#[from] safe::SafeConfigError),
}

/// Why callData is not a payment of a given kind: the shared approve/settle rules
/// ([`CallDataError`]) or what only that kind's encoding can get wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountCallDataError {
    /// SimpleAccount's encoding (SimpleAccount, SessionKeyAccount).
    #[error(transparent)]
    Simple(#[from] CallDataError),
    /// Kernel's encoding.
    #[error("kernel: {0}")]
    Kernel(#[from] kernel::KernelCallDataError),
    /// Safe's encoding (through its ERC-4337 module).
    #[error("safe: {0}")]
    Safe(#[from] safe::SafeCallDataError),
    /// Biconomy's encoding.
    #[error("biconomy: {0}")]
    Biconomy(#[from] biconomy::PaymentError),
}

impl AccountCallDataError {
    /// The shared payment-shape rule this error comes down to, if it is one (selectors, ABI,
    /// approve/settle consistency), whichever kind's encoding wrapped it.
    pub fn shape(&self) -> Option<&CallDataError> {
        match self {
            Self::Simple(e)
            | Self::Kernel(kernel::KernelCallDataError::Shape(e))
            | Self::Safe(safe::SafeCallDataError::Payment(e))
            | Self::Biconomy(biconomy::PaymentError::Shape(e)) => Some(e),
            _ => None,
        }
    }
}

/// What differs between account contracts, on the protocol level.
pub trait AccountAbi: Send + Sync + std::fmt::Debug {
    /// The kind this ABI belongs to.
    fn kind(&self) -> AccountKind;

    /// `factory ‖ <create call>` deploying the account `config` describes in the op's
    /// validation phase.
    fn init_code(&self, config: &AccountConfig) -> Result<Bytes, AccountConfigError>;

    /// The address [`AccountAbi::init_code`] deploys to, where it follows from the config alone;
    /// `None` where only the factory's own view knows (SimpleAccount's `getAddress`).
    fn counterfactual_address(
        &self,
        config: &AccountConfig,
    ) -> Result<Option<Address>, AccountConfigError>;

    /// The callData that makes the account pay: approve + settle.
    fn encode_payment(&self, payment: &PaymentCall) -> Bytes;

    /// The payment a callData makes, or why it is not one. Accepts exactly the shapes
    /// [`AccountAbi::encode_payment`] produces (canonical ABI, nothing extra), plus the
    /// single-`settle` shape for accounts whose allowance is already in place.
    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, AccountCallDataError>;

    /// The contracts a callData makes the account call (for a paymaster's target allowlist), or
    /// `None` when it is not a call this kind makes.
    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>>;

    /// Who `signature` speaks for, by the account's routing rule. A signature the account could
    /// not parse at all is answered `Owner`: no off-chain session mirror applies to it, and the
    /// chain refuses it anyway.
    fn signer_role(&self, signature: &[u8]) -> SignerRole;
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{B256, address, b256};

    use super::*;

    const TOKEN: Address = address!("0x1000000000000000000000000000000000000001");
    const SETTLEMENT: Address = address!("0x2000000000000000000000000000000000000002");
    const MERCHANT: Address = address!("0x3000000000000000000000000000000000000003");
    const OWNER: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    const REQUEST: B256 =
        b256!("0x4444444444444444444444444444444444444444444444444444444444444444");

    fn payment() -> PaymentCall {
        PaymentCall {
            settlement: SETTLEMENT,
            settle: SettleCall {
                merchant: MERCHANT,
                token: TOKEN,
                amount: U256::from(1_500_000u64),
                request_hash: REQUEST,
            },
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in AccountKind::ALL {
            assert_eq!(kind.name().parse::<AccountKind>(), Ok(kind));
            assert_eq!(kind.abi().kind(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
        assert!("zerodev".parse::<AccountKind>().unwrap_err().contains("kernel, safe, biconomy"));
    }

    /// Every kind decodes what it encodes to the same payment, with approve, and targets the
    /// token then the settlement contract.
    #[test]
    fn every_kind_round_trips_the_payment() {
        for kind in AccountKind::ALL {
            let abi = kind.abi();
            let data = abi.encode_payment(&payment());
            let decoded = abi.decode_payment(&data).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(decoded.settlement, SETTLEMENT, "{kind}");
            assert_eq!(decoded.settle, payment().settle, "{kind}");
            assert!(decoded.approve.is_some(), "{kind}");
            assert_eq!(abi.call_targets(&data), Some(vec![TOKEN, SETTLEMENT]), "{kind}");
            assert_eq!(abi.call_targets(&[]), Some(vec![]), "{kind}");
        }
    }

    /// A kind never takes another kind's encoding of the same payment: the facilitator resolves
    /// the kind first, and a Kernel op decoded as a SimpleAccount op (or the reverse) is
    /// refused with the kind's own reason rather than misread.
    #[test]
    fn foreign_call_data_is_refused() {
        let distinct = [
            AccountKind::SimpleAccount,
            AccountKind::Kernel,
            AccountKind::Safe,
            AccountKind::Biconomy,
        ];
        for reader in distinct {
            for writer in distinct.into_iter().filter(|w| *w != reader) {
                let data = writer.abi().encode_payment(&payment());
                let err = reader.abi().decode_payment(&data).expect_err("foreign shape");
                let text = err.to_string();
                assert!(text.contains("selector"), "{reader} reading {writer}: {text}");
                assert!(reader.abi().call_targets(&data).is_none(), "{reader} reading {writer}");
            }
        }
        // The shape rule under the kind's wrapper is still reachable for reason mapping.
        let err = AccountKind::Kernel.abi().decode_payment(&[1, 2]).unwrap_err();
        assert!(matches!(err.shape(), Some(CallDataError::MissingSelector { len: 2, .. })));
        assert!(matches!(err, AccountCallDataError::Kernel(_)));
    }

    #[test]
    fn init_code_and_address_per_kind() {
        let one = |factory| AccountConfig::single_owner(factory, OWNER, U256::ZERO);
        let kernel = AccountKind::Kernel.abi();
        assert_eq!(
            kernel.init_code(&one(kernel::KERNEL_FACTORY)).unwrap(),
            kernel::init_code(OWNER, U256::ZERO)
        );
        assert_eq!(
            kernel.counterfactual_address(&one(kernel::KERNEL_FACTORY)).unwrap(),
            Some(kernel::account_address(OWNER, U256::ZERO))
        );
        let d = safe::SafeDeployment::CANONICAL;
        let safe_config = safe::SafeConfig::single_owner(OWNER, U256::ZERO);
        let safe = AccountKind::Safe.abi();
        assert_eq!(
            safe.init_code(&one(d.proxy_factory)).unwrap(),
            d.init_code(&safe_config).unwrap()
        );
        assert_eq!(
            safe.counterfactual_address(&one(d.proxy_factory)).unwrap(),
            Some(d.account_address(&safe_config).unwrap())
        );
        let b = biconomy::Deployment::CANONICAL;
        let biconomy = AccountKind::Biconomy.abi();
        assert_eq!(biconomy.init_code(&one(b.factory)).unwrap(), b.init_code(OWNER, U256::ZERO));
        assert_eq!(
            biconomy.counterfactual_address(&one(b.factory)).unwrap(),
            Some(b.account_address(OWNER, U256::ZERO))
        );
        assert_eq!(
            AccountKind::SimpleAccount.abi().counterfactual_address(&one(OWNER)).unwrap(),
            None
        );

        // Several owners: Safe only, and only a threshold its owners can meet.
        let two = AccountConfig {
            factory: d.proxy_factory,
            owners: vec![OWNER, MERCHANT],
            threshold: 2,
            salt: U256::ZERO,
        };
        assert!(safe.init_code(&two).is_ok());
        for kind in [AccountKind::SimpleAccount, AccountKind::Kernel, AccountKind::Biconomy] {
            assert!(matches!(
                kind.abi().init_code(&two),
                Err(AccountConfigError::NotSingleOwner { owners: 2, threshold: 2, .. })
            ));
        }
        let three = AccountConfig { threshold: 3, ..two };
        assert!(matches!(
            safe.init_code(&three),
            Err(AccountConfigError::Safe(safe::SafeConfigError::ThresholdAboveOwners { .. }))
        ));
    }

    #[test]
    fn signer_roles_follow_each_accounts_routing() {
        let ecdsa = [0x11u8; 65];
        let kernel = AccountKind::Kernel.abi();
        let mut sudo = kernel::MODE_SUDO.to_vec();
        sudo.extend(ecdsa);
        assert_eq!(kernel.signer_role(&sudo), SignerRole::Owner);
        let mut plugin = kernel::MODE_PLUGIN.to_vec();
        plugin.extend(ecdsa);
        assert_eq!(kernel.signer_role(&plugin), SignerRole::Session);

        let b = biconomy::Deployment::CANONICAL;
        let biconomy = AccountKind::Biconomy.abi();
        assert_eq!(
            biconomy.signer_role(&biconomy::encode_signature(&ecdsa, b.ecdsa_module)),
            SignerRole::Owner
        );
        assert_eq!(
            biconomy.signer_role(&biconomy::encode_signature(&ecdsa, SETTLEMENT)),
            SignerRole::Session
        );
        // The devnet's ECDSA module is not the canonical one: the ABI value must carry it.
        let devnet = BiconomyAbi::new(biconomy::Deployment { ecdsa_module: TOKEN, ..b });
        assert_eq!(
            devnet.signer_role(&biconomy::encode_signature(&ecdsa, TOKEN)),
            SignerRole::Owner
        );

        assert_eq!(AccountKind::Safe.abi().signer_role(&[0u8; 77]), SignerRole::Owner);
        assert_eq!(AccountKind::SessionKeyAccount.abi().signer_role(&ecdsa), SignerRole::Owner);
        assert_eq!(AccountKind::SessionKeyAccount.abi().signer_role(&sudo), SignerRole::Session);
    }
}
