//! Owner-signed payments from third-party account contracts, each a [`PaymentAccount`] beside
//! [`OwnerAccount`](crate::signer::OwnerAccount) (SimpleAccount): [`kernel`] (ZeroDev Kernel
//! v2.4), [`safe`] (Safe 1.4.1 + Safe4337Module v0.2.0) and [`biconomy`] (Biconomy Smart Account
//! v2). Everything on the protocol level (initCode, callData, signature envelopes) is the kind's
//! module in `x402_aa::accounts`; these types only hold the keys and sign whole ops the way each
//! account's validation wants them.
//!
//! [`PaymentAccount`]: crate::signer::PaymentAccount

use alloy::{hex, primitives::Signature};

pub mod biconomy;
pub mod kernel;
pub mod safe;
#[cfg(feature = "unchecked")]
pub mod unchecked;

pub use biconomy::BiconomyOwnerAccount;
pub use kernel::KernelOwnerAccount;
pub use safe::{SafeAccountError, SafeOwnerAccount};
#[cfg(feature = "unchecked")]
pub use unchecked::UncheckedSessionAccount;

/// A well-formed ECDSA signature no key made (viem's stub: low `s`, `v` 28), as the final-length
/// placeholder while gas is estimated and the paymaster signs. Well-formed matters: all-`0xff`
/// bytes have a high `s`, which OpenZeppelin's `ECDSA.recover` reverts on instead of failing the
/// signature, and a bundler's estimate would stop there.
pub(crate) fn stub_signature() -> Signature {
    const STUB: [u8; 65] = hex!(
        "fffffffffffffffffffffffffffffff0000000000000000000000000000000007aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1c"
    );
    Signature::try_from(&STUB[..]).expect("the stub is 65 bytes with v = 28")
}
