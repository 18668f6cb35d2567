//! Account kinds: what differs between the ERC-4337 account contracts that can pay aa-native
//! invoices (counterfactual address and initCode, the payment callData, the signature envelope).
//! One module per kind.

pub mod safe;
