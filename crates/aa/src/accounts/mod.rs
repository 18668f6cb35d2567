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
//! in the SDK; the facilitator and paymaster need only the new [`AccountKind`] variant in their
//! configuration.

use alloy::primitives::{Address, Bytes, U256};
use serde::{Deserialize, Serialize};

use crate::call_data::{CallDataError, DecodedPayment, SettleCall};

pub mod biconomy;
pub mod kernel;
pub mod safe;
pub mod session_key_account;
pub mod simple_account;

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
}

impl AccountKind {
    /// Every kind.
    pub const ALL: [Self; 2] = [Self::SimpleAccount, Self::SessionKeyAccount];

    /// The kind's protocol-level behaviour.
    pub fn abi(self) -> &'static dyn AccountAbi {
        match self {
            Self::SimpleAccount => &SimpleAccountAbi,
            Self::SessionKeyAccount => &SessionKeyAccountAbi,
        }
    }

    /// The name used in configuration files and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::SimpleAccount => "simple-account",
            Self::SessionKeyAccount => "session-key-account",
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
    pub settlement: Address,
    pub settle: SettleCall,
}

/// What differs between account contracts, on the protocol level.
pub trait AccountAbi: Send + Sync + std::fmt::Debug {
    /// The kind this ABI belongs to.
    fn kind(&self) -> AccountKind;

    /// `factory ‖ <create call>` deploying the account of `owner` (with `salt`) in the op's
    /// validation phase.
    fn init_code(&self, factory: Address, owner: Address, salt: U256) -> Bytes;

    /// The callData that makes the account pay: approve + settle.
    fn encode_payment(&self, payment: &PaymentCall) -> Bytes;

    /// The payment a callData makes, or why it is not one. Accepts exactly the shapes
    /// [`AccountAbi::encode_payment`] produces (canonical ABI, nothing extra).
    fn decode_payment(&self, call_data: &[u8]) -> Result<DecodedPayment, CallDataError>;

    /// The contracts a callData makes the account call (for a paymaster's target allowlist), or
    /// `None` when it is not a call this kind makes.
    fn call_targets(&self, call_data: &[u8]) -> Option<Vec<Address>>;

    /// Who `signature` speaks for, by the account's routing rule.
    fn signer_role(&self, signature: &[u8]) -> SignerRole;
}
