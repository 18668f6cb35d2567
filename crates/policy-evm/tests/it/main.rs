//! One test binary: findings of issue 11, gas figures, ERC-7562 tracing, invariant fuzzing, and the
//! adversarial properties every session host shares (`hosts`) next to each host's own cases.
mod biconomy;
mod erc7562;
mod findings;
mod fuzz;
mod gas;
mod hosts;
mod kernel;
mod safe;
mod support;
