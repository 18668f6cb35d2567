//! One test binary: findings of issue 11, gas figures, ERC-7562 tracing, invariant fuzzing.
mod erc7562;
mod findings;
mod fuzz;
mod gas;
mod biconomy;
mod kernel;
mod support;
