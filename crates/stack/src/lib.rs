//! The local aa-native stack on a running [`Devnet`](x402_aa_devnet::Devnet): the paymaster service, our facilitator and
//! the example paid API, plus session-account setup. `x402-aa devnet up`, `x402-aa demo`, the
//! end-to-end tests and the benchmarks all need the same pieces wired the same way; writing them
//! once here keeps them from drifting apart.
//!
//! ```no_run
//! # async fn run(devnet: &x402_aa_devnet::Devnet) -> Result<(), x402_aa_stack::StackError> {
//! use x402_aa_stack::{LocalStack, StackOptions};
//!
//! let merchant = devnet.keys.spare[5].address();
//! let options = StackOptions::new(devnet.keys.spare[6].clone(), merchant, "0.01 USDT");
//! let stack = LocalStack::start(devnet, options).await?;
//! println!("paid API at {}", stack.paid_url());
//! stack.shutdown().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
pub mod info;
mod session;
mod stack;

pub use error::StackError;
pub use info::StackInfo;
pub use session::{
    biconomy_session_account, kernel_session_account, safe_session_account, session_account,
};
pub use stack::{
    EXACT_TOKEN_EIP712_NAME, EXACT_TOKEN_EIP712_VERSION, EXACT_TOKEN_SYMBOL, LocalStack,
    PAID_ROUTE, StackOptions, facilitator_config, fund_devnet_keys, paymaster_config,
};
