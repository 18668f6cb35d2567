//! Bindings for the `@account-abstraction/contracts@0.6.0` deployment the devnet uses.
//!
//! Declared once in the protocol crate ([`x402_aa::entry_point`]) so every binding shares its one
//! `UserOperation`; re-exported here beside the project's own contracts.
//! `tests::bindings_match_npm_abis` checks every selector against the npm ABI.

pub use x402_aa::entry_point::{
    AggregatorStakeInfo, DepositInfo, EntryPoint, ReturnInfo, SimpleAccount, SimpleAccountFactory,
    StakeInfo, UserOperation, VerifyProbe, VerifyingPaymaster,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{abi_check::assert_subset_of_artifact, npm_artifact};

    #[test]
    fn bindings_match_npm_abis() {
        assert_subset_of_artifact(
            &npm_artifact("EntryPoint").unwrap(),
            EntryPoint::EntryPointCalls::SELECTORS,
            EntryPoint::EntryPointEvents::SELECTORS,
            EntryPoint::EntryPointErrors::SELECTORS,
        );
        assert_subset_of_artifact(
            &npm_artifact("SimpleAccountFactory").unwrap(),
            SimpleAccountFactory::SimpleAccountFactoryCalls::SELECTORS,
            &[],
            &[],
        );
        assert_subset_of_artifact(
            &npm_artifact("SimpleAccount").unwrap(),
            SimpleAccount::SimpleAccountCalls::SELECTORS,
            SimpleAccount::SimpleAccountEvents::SELECTORS,
            &[],
        );
        assert_subset_of_artifact(
            &npm_artifact("VerifyingPaymaster").unwrap(),
            VerifyingPaymaster::VerifyingPaymasterCalls::SELECTORS,
            VerifyingPaymaster::VerifyingPaymasterEvents::SELECTORS,
            &[],
        );
    }
}
