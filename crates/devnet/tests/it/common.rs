use alloy::primitives::{Address, Bytes, U256};
use x402_aa::UserOperation;

/// Gas fields generous enough for a first op that also deploys its account.
pub(crate) fn op_template(sender: Address) -> UserOperation {
    UserOperation {
        sender,
        nonce: U256::ZERO,
        init_code: Bytes::new(),
        call_data: Bytes::new(),
        call_gas_limit: U256::from(300_000),
        verification_gas_limit: U256::from(1_000_000),
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: U256::from(3_000_000_000u64),
        max_priority_fee_per_gas: U256::from(1_000_000_000u64),
        paymaster_and_data: Bytes::new(),
        signature: Bytes::new(),
    }
}

/// One dollar in TestStablecoin units (6 decimals).
pub(crate) const USD: u64 = 1_000_000;
