//! Session-key account against the real EntryPoint v0.6 on anvil: one test binary, modules per topic.

mod fixture;

mod biconomy;
mod budget;
mod client;
mod golden;
mod mirror;
mod owner;
mod reasons;
mod revocation;
mod safe;
mod scopes;
mod signer;
