//! ERC-4337 EntryPoint v0.6 protocol core for x402 session-key payments.
//!
//! Pure data and encoding: no RPC, no signing. The UserOp and callData codecs are checked
//! against the real EntryPoint and SimpleAccount by the `x402-aa-devnet` integration tests; the
//! x402 wire format ([`x402`]) and the [`request_hash`] encoding are pinned by golden vectors.

#![warn(missing_docs)]

use alloy::primitives::{Address, address};

pub mod abi;
pub mod accounts;
pub mod call_data;
pub mod entry_point;
pub mod nonce;
pub mod request_hash;
pub mod user_op;
pub mod x402;

pub use call_data::{
    ApproveCall, CallDataError, CallSite, DecodedPayment, SettleCall, decode_payment,
    encode_approve, encode_execute, encode_execute_batch, encode_payment_batch,
    encode_payment_execute,
};
pub use nonce::{encode_nonce, nonce_key, nonce_sequence};
pub use request_hash::{
    DEFAULT_BUCKET_SECONDS, RequestHashError, RequestHashInput, canonical_endpoint,
    canonical_method,
};
pub use user_op::{UserOperation, factory_init_code, pack, user_op_hash};

/// The canonical EntryPoint v0.6 deployment (same address on every chain via CREATE2 salt 0).
pub const ENTRY_POINT_V06: Address = entry_point::EntryPointVersion::V06.canonical_address();

/// The canonical SimpleAccountFactory v0.6 deployment bound to [`ENTRY_POINT_V06`].
pub const SIMPLE_ACCOUNT_FACTORY_V06: Address =
    address!("0x9406Cc6185a346906296840746125a0E44976454");
