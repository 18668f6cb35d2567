//! Integration tests against a real anvil: one binary, one module per concern.

mod biconomy;
mod common;
mod deployment;
mod eip3009;
mod kernel;
mod payment;
mod safe;
mod user_op_hash;
