//! One test binary: findings of issue 11, gas figures, ERC-7562 tracing, invariant fuzzing.
mod biconomy;
mod erc7562;
mod findings;
mod fuzz;
mod gas;
mod kernel;
mod safe;
mod support;
