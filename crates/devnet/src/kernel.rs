//! ZeroDev Kernel v2.4 on the devnet: the implementation, KernelFactory and ECDSAValidator at
//! their canonical addresses, set up the way ZeroDev's own scripts set them up on real chains.
//!
//! The creation code is vendored data (`contracts/vendor/kernel-v2.4/*.initcode.hex`, see
//! `PROVENANCE.md` there): the exact bytes ZeroDev sends to the CREATE2 deployer with salt 0 in
//! `script/deterministic/*.s.sol`. It is compiled into this crate with `include_str!`, so a
//! devnet needs no Kernel checkout, compiler or artifact file at run time.
//!
//! Setup mirrors `script/DeployDeterministic.s.sol` (factory, ECDSAValidator, Kernel 2.4, then
//! `factory.setImplementation(kernel, true)`) and `script/StakeToFactory.s.sol` (0.1 ETH stake,
//! one-day unstake delay, so bundlers accept the factory touching its own storage under
//! ERC-7562). The factory's owner is baked into its constructor arguments as ZeroDev's deployer
//! key, so the owner-only calls are sent from that address impersonated on anvil; the same
//! address also sends the CREATE2 transactions, as in ZeroDev's broadcasts, which leaves the
//! nonces of the devnet's own keys untouched.

use std::time::Duration;

use alloy::{
    contract::SolCallBuilder,
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, address, b256, uint},
    providers::{DynProvider, Provider, ext::AnvilApi},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::{Signer, local::PrivateKeySigner},
    sol_types::SolCall,
};
use x402_aa::{
    UserOperation,
    accounts::kernel::{
        ECDSA_VALIDATOR, IKernelFactory, KERNEL_FACTORY, KERNEL_V24_IMPLEMENTATION,
        initialize_data, owner_signature,
    },
};
use x402_aa_contracts::ArtifactError;

use crate::{Devnet, Error, Result, deploy::CREATE2_DEPLOYER};

/// ZeroDev's deployer (`DEPLOYER` in `script/DeployDeterministic.s.sol`), the owner the
/// vendored KernelFactory creation code passes to its constructor.
pub const KERNEL_FACTORY_OWNER: Address = address!("0x9775137314fE595c943712B0b336327dfa80aE8A");

/// `StakeToFactory.s.sol`: tops the factory's stake up to 0.1 ETH with a one-day delay.
pub const KERNEL_FACTORY_STAKE: U256 = uint!(100_000_000_000_000_000_U256);
/// The factory stake's unstake delay, in seconds (one day, as `StakeToFactory.s.sol` sets it).
pub const KERNEL_FACTORY_UNSTAKE_DELAY: u32 = 86_400;

/// ZeroDev's deterministic deployments all use salt 0.
pub const KERNEL_SALT: B256 = B256::ZERO;

/// Where Kernel v2.4 lives; the same on every chain ZeroDev deployed to, and here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelAddresses {
    /// The Kernel v2.4 implementation every account's proxy delegates to.
    pub implementation: Address,
    /// `KernelFactory`: the initCode's factory.
    pub factory: Address,
    /// `ECDSAValidator`: the default validator that makes a signature the owner's.
    pub ecdsa_validator: Address,
}

impl KernelAddresses {
    /// ZeroDev's deterministic deployment, reproduced on the devnet.
    pub const CANONICAL: Self = Self {
        implementation: KERNEL_V24_IMPLEMENTATION,
        factory: KERNEL_FACTORY,
        ecdsa_validator: ECDSA_VALIDATOR,
    };
}

/// One vendored creation code and where it must land.
#[derive(Debug, Clone, Copy)]
pub struct VendoredContract {
    /// The contract's name, as `PROVENANCE.md` and errors name it.
    pub name: &'static str,
    /// The canonical address; deployment fails if the code does not land there.
    pub address: Address,
    /// keccak256 of the creation code, as recorded in `PROVENANCE.md`.
    pub init_code_hash: B256,
    file: &'static str,
    hex: &'static str,
}

impl VendoredContract {
    /// The creation code (constructor arguments included, as ZeroDev appended them).
    pub fn init_code(&self) -> Result<Bytes, ArtifactError> {
        let invalid = |msg: String| ArtifactError::Read {
            path: self.file.into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, msg),
        };
        let text = self.hex.trim();
        let hex = text.strip_prefix("0x").ok_or_else(|| invalid("missing 0x prefix".into()))?;
        let code = alloy::hex::decode(hex).map_err(|e| invalid(e.to_string()))?;
        if code.is_empty() {
            return Err(ArtifactError::EmptyBytecode { path: self.file.into() });
        }
        Ok(code.into())
    }
}

/// The three deployments in the order `DeployDeterministic.s.sol` makes them.
pub const KERNEL_VENDORED: [VendoredContract; 3] = [
    VendoredContract {
        name: "KernelFactory",
        address: KERNEL_FACTORY,
        init_code_hash: b256!("0x57eb7ac54cd30716fe681d0b42d813476e01b1dc8cab7ee468d81a826d7da1b6"),
        file: "contracts/vendor/kernel-v2.4/KernelFactory.initcode.hex",
        hex: include_str!("../../../contracts/vendor/kernel-v2.4/KernelFactory.initcode.hex"),
    },
    VendoredContract {
        name: "ECDSAValidator",
        address: ECDSA_VALIDATOR,
        init_code_hash: b256!("0xabed7851bfd0ddd89d4a03c9d5b4e58447673e02e6c3264e567e0ec84fadc65e"),
        file: "contracts/vendor/kernel-v2.4/ECDSAValidator.initcode.hex",
        hex: include_str!("../../../contracts/vendor/kernel-v2.4/ECDSAValidator.initcode.hex"),
    },
    VendoredContract {
        name: "Kernel v2.4",
        address: KERNEL_V24_IMPLEMENTATION,
        init_code_hash: b256!("0x4bf5317cf4e76c4f66a56aaff6aa9b930e03db559c17d9eacba6f0f562d81803"),
        file: "contracts/vendor/kernel-v2.4/Kernel.initcode.hex",
        hex: include_str!("../../../contracts/vendor/kernel-v2.4/Kernel.initcode.hex"),
    },
];

/// Above Kernel's deployment (~2.6M gas) and below anvil's 30M block.
const DEPLOY_GAS: u64 = 8_000_000;
const CALL_GAS: u64 = 200_000;
/// Anvil starts at a 1 gwei base fee and only lowers it; 10 gwei always clears.
const MAX_FEE: u128 = 10_000_000_000;
/// Gas for the five transactions plus the stake, with room to spare.
const OWNER_FUNDING: U256 = uint!(1_000_000_000_000_000_000_U256);

/// Deploys and sets up Kernel v2.4. Call after the EntryPoint exists (the factory stakes on it).
pub(crate) async fn deploy(provider: &DynProvider) -> Result<KernelAddresses> {
    // Decode and place every creation code before sending anything.
    let mut txs = Vec::with_capacity(KERNEL_VENDORED.len() + 2);
    for contract in &KERNEL_VENDORED {
        let init_code = contract.init_code()?;
        let landed = CREATE2_DEPLOYER.create2_from_code(KERNEL_SALT, &init_code);
        if landed != contract.address {
            return Err(Error::WrongAddress {
                name: contract.name,
                expected: contract.address,
                actual: landed,
            });
        }
        let mut input = KERNEL_SALT.to_vec();
        input.extend_from_slice(&init_code);
        let tx = TransactionRequest::default()
            .with_to(CREATE2_DEPLOYER)
            .with_input(input)
            .with_gas_limit(DEPLOY_GAS);
        txs.push((contract.name, tx));
    }
    let set_implementation = IKernelFactory::setImplementationCall {
        _implementation: KERNEL_V24_IMPLEMENTATION,
        _allow: true,
    };
    txs.push((
        "KernelFactory.setImplementation",
        TransactionRequest::default()
            .with_to(KERNEL_FACTORY)
            .with_input(set_implementation.abi_encode())
            .with_gas_limit(CALL_GAS),
    ));
    let add_stake = IKernelFactory::addStakeCall { unstakeDelaySec: KERNEL_FACTORY_UNSTAKE_DELAY };
    txs.push((
        "KernelFactory.addStake",
        TransactionRequest::default()
            .with_to(KERNEL_FACTORY)
            .with_input(add_stake.abi_encode())
            .with_value(KERNEL_FACTORY_STAKE)
            .with_gas_limit(CALL_GAS),
    ));

    let owner = KERNEL_FACTORY_OWNER;
    provider.anvil_set_balance(owner, OWNER_FUNDING + KERNEL_FACTORY_STAKE).await?;
    provider.anvil_impersonate_account(owner).await?;
    let sent = send_all_impersonated(provider, owner, txs).await;
    provider.anvil_stop_impersonating_account(owner).await?;
    sent?;
    Ok(KernelAddresses::CANONICAL)
}

/// Sends every transaction with explicit nonces (one round trip each), then waits for the
/// receipts: under automine they exist at once, under interval mining they all land in the
/// next block.
async fn send_all_impersonated(
    provider: &DynProvider,
    from: Address,
    txs: Vec<(&'static str, TransactionRequest)>,
) -> Result<()> {
    let mut nonce = provider.get_transaction_count(from).await?;
    let mut pending = Vec::with_capacity(txs.len());
    for (what, tx) in txs {
        let tx = tx
            .with_from(from)
            .with_nonce(nonce)
            .with_max_fee_per_gas(MAX_FEE)
            .with_max_priority_fee_per_gas(0);
        nonce += 1;
        pending.push((what, provider.anvil_send_impersonated_transaction(tx).await?));
    }
    for (what, hash) in pending {
        let receipt = wait_for_receipt(provider, hash).await?;
        if !receipt.status() {
            return Err(Error::Reverted { what: what.to_owned(), tx_hash: hash });
        }
    }
    Ok(())
}

async fn wait_for_receipt(provider: &DynProvider, hash: B256) -> Result<TransactionReceipt> {
    loop {
        if let Some(receipt) = provider.get_transaction_receipt(hash).await? {
            return Ok(receipt);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Devnet {
    /// Kernel v2.4's addresses (canonical; asserted when the devnet deployed them).
    pub fn kernel(&self) -> KernelAddresses {
        KernelAddresses::CANONICAL
    }

    /// `initCode` deploying the owner's Kernel v2.4 account `index` (ECDSAValidator as default
    /// validator) through the canonical factory in an op's validation phase.
    pub fn kernel_init_code(&self, owner: Address, index: U256) -> Bytes {
        x402_aa::accounts::kernel::init_code(owner, index)
    }

    /// The factory's own answer for the owner's account address (`getAccountAddress`).
    pub async fn kernel_account_address(&self, owner: Address, index: U256) -> Result<Address> {
        let call =
            IKernelFactory::getAccountAddressCall { _data: initialize_data(owner), _index: index };
        Ok(SolCallBuilder::new_sol(self.provider(), &KERNEL_FACTORY, &call).call().await?)
    }

    /// Kernel's owner path: mode `0x00000000` ‖ the owner's EIP-191 signature over the
    /// userOpHash, which ECDSAValidator checks. Sets `op.signature` and returns the hash.
    pub async fn sign_as_kernel_owner(
        &self,
        op: &mut UserOperation,
        owner: &PrivateKeySigner,
    ) -> Result<B256> {
        let hash = self.user_op_hash(op);
        op.signature = owner_signature(&owner.sign_message(hash.as_slice()).await?);
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::keccak256;

    use super::*;

    /// The vendored bytes are the ones that land at the canonical addresses and match the
    /// hashes written in PROVENANCE.md.
    #[test]
    fn vendored_code_lands_at_canonical_addresses() {
        for c in &KERNEL_VENDORED {
            let code = c.init_code().unwrap();
            assert_eq!(keccak256(&code), c.init_code_hash, "{}", c.name);
            assert_eq!(CREATE2_DEPLOYER.create2_from_code(KERNEL_SALT, &code), c.address);
        }
        // The constructor arguments name EntryPoint v0.6 (Kernel, factory) and the owner.
        let kernel = KERNEL_VENDORED[2].init_code().unwrap();
        assert_eq!(&kernel[kernel.len() - 20..], x402_aa::ENTRY_POINT_V06.as_slice());
        let factory = KERNEL_VENDORED[0].init_code().unwrap();
        assert_eq!(&factory[factory.len() - 20..], x402_aa::ENTRY_POINT_V06.as_slice());
        assert_eq!(
            &factory[factory.len() - 52..factory.len() - 32],
            KERNEL_FACTORY_OWNER.as_slice()
        );
    }
}
