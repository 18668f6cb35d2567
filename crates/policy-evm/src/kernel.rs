//! Kernel v2.4 on the in-process chain, deployed as the devnet deploys it: ZeroDev's vendored creation
//! code (`contracts/vendor/kernel-v2.4`, see PROVENANCE.md there) through the CREATE2 deployer with
//! salt 0, so the implementation, KernelFactory and ECDSAValidator land at their canonical addresses,
//! then our `KernelSessionValidator` (CREATE2, salt 0, constructor argument the ECDSAValidator).
//! Plus the op shapes a Kernel account speaks: the 4-byte signature mode, `executeBatch(Call[])` for
//! owner payments and the 164-byte `executeSessionPayment` for session payments.

use alloy::{
    primitives::{Address, B256, Bytes, U256, address},
    sol_types::{SolCall, SolValue},
};

use crate::{
    Chain, Error, Result,
    abi::{
        ISettlement, IToken,
        kernel::{Call, IKernel, IKernelFactory, IKernelSessionValidator},
    },
    artifacts::{ProjectArtifacts, workspace_root},
};

/// Kernel v2.4's implementation at its canonical address (CREATE2 deployer, salt 0).
pub const KERNEL_IMPLEMENTATION: Address = address!("d3082872F8B06073A021b4602e022d5A070d7cfC");
/// ZeroDev's `KernelFactory` at its canonical address.
pub const KERNEL_FACTORY: Address = address!("5de4839a76cf55d0c90e2061ef4386d962E15ae3");
/// ZeroDev's `ECDSAValidator` at its canonical address: the owner's (sudo) validator.
pub const ECDSA_VALIDATOR: Address = address!("d9AB5096a832b9ce79914329DAEE236f8Eea0390");
/// ZeroDev's deployer, the factory owner baked into the vendored creation code.
pub const KERNEL_FACTORY_OWNER: Address = address!("9775137314fE595c943712B0b336327dfa80aE8A");

/// Kernel's signature mode for the default (sudo) validator: owner ops.
pub const MODE_SUDO: [u8; 4] = [0, 0, 0, 0];
/// Kernel's signature mode for the validator registered for the callData's selector: session
/// ops, routed to the session validator by [`SESSION_PAYMENT_SELECTOR`].
pub const MODE_PLUGIN: [u8; 4] = [0, 0, 0, 1];

/// Where the Kernel stack landed.
#[derive(Debug, Clone, Copy)]
pub struct KernelStack {
    /// Always [`KERNEL_IMPLEMENTATION`].
    pub implementation: Address,
    /// Always [`KERNEL_FACTORY`].
    pub factory: Address,
    /// Always [`ECDSA_VALIDATOR`].
    pub ecdsa_validator: Address,
    /// Our `KernelSessionValidator`; its address follows from the project artifact's bytecode.
    pub session_validator: Address,
}

/// A vendored creation code (`contracts/vendor/kernel-v2.4/<name>`), constructor arguments included.
pub fn vendored(name: &str) -> Result<Bytes> {
    let path = workspace_root().join("contracts/vendor/kernel-v2.4").join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Setup(format!("{}: {e}", path.display())))?;
    let hex = text.trim().strip_prefix("0x").unwrap_or(text.trim());
    Ok(alloy::hex::decode(hex)?.into())
}

impl Chain {
    /// Deploys Kernel v2.4, its factory (implementation allowed, as ZeroDev's script does) and
    /// ECDSAValidator at the canonical addresses, and the session validator from `project`.
    pub fn deploy_kernel(&mut self, project: &ProjectArtifacts) -> Result<KernelStack> {
        for (file, expected) in [
            ("KernelFactory.initcode.hex", KERNEL_FACTORY),
            ("ECDSAValidator.initcode.hex", ECDSA_VALIDATOR),
            ("Kernel.initcode.hex", KERNEL_IMPLEMENTATION),
        ] {
            let landed = self.create2(B256::ZERO, vendored(file)?)?;
            if landed != expected {
                return Err(Error::Setup(format!("{file} landed at {landed}, not {expected}")));
            }
        }
        let allow = IKernelFactory::setImplementationCall {
            _implementation: KERNEL_IMPLEMENTATION,
            _allow: true,
        };
        self.must(KERNEL_FACTORY_OWNER, KERNEL_FACTORY, U256::ZERO, allow.abi_encode())?;
        let mut init = project.bytecode("KernelSessionValidator")?.to_vec();
        init.extend(ECDSA_VALIDATOR.abi_encode());
        let session_validator = self.create2(B256::ZERO, init.into())?;
        Ok(KernelStack {
            implementation: KERNEL_IMPLEMENTATION,
            factory: KERNEL_FACTORY,
            ecdsa_validator: ECDSA_VALIDATOR,
            session_validator,
        })
    }

    /// The owner's Kernel account `index` (ECDSAValidator as default validator), deployed now.
    pub fn create_kernel_account(&mut self, owner: Address, index: U256) -> Result<Address> {
        let data = initialize_data(ECDSA_VALIDATOR, owner);
        let create = IKernelFactory::createAccountCall {
            _implementation: KERNEL_IMPLEMENTATION,
            _data: data.clone(),
            _index: index,
        };
        self.must(crate::chain::ADMIN, KERNEL_FACTORY, U256::ZERO, create.abi_encode())?;
        self.view(
            KERNEL_FACTORY,
            IKernelFactory::getAccountAddressCall { _data: data, _index: index },
        )
    }
}

/// `initialize(validator, owner)`: ECDSAValidator reads the owner from the first 20 bytes, packed.
pub fn initialize_data(validator: Address, owner: Address) -> Bytes {
    IKernel::initializeCall { _defaultValidator: validator, _data: owner.to_vec().into() }
        .abi_encode()
        .into()
}

/// `executeBatch(calls)`.
pub fn execute_batch(calls: Vec<Call>) -> Bytes {
    IKernel::executeBatchCall { calls }.abi_encode().into()
}

/// One plain call of `executeBatch`.
pub fn call(to: Address, data: impl Into<Bytes>) -> Call {
    Call { to, value: U256::ZERO, data: data.into() }
}

/// The selector the session validator is installed for, as validator and executor
/// (`executeSessionPayment(address,address,address,uint256,bytes32)`).
pub const SESSION_PAYMENT_SELECTOR: [u8; 4] =
    IKernelSessionValidator::executeSessionPaymentCall::SELECTOR;

/// The session payment's callData: `executeSessionPayment(...)`, 164 bytes, which the account's
/// fallback DELEGATECALLs into the session validator.
pub fn session_payment(
    token: Address,
    settlement: Address,
    merchant: Address,
    amount: U256,
    request_hash: B256,
) -> Bytes {
    IKernelSessionValidator::executeSessionPaymentCall {
        token,
        settlement,
        merchant,
        amount,
        requestHash: request_hash,
    }
    .abi_encode()
    .into()
}

/// An owner payment: `executeBatch([approve, settle])`, as the SDK builds it for Kernel.
pub fn owner_payment(
    token: Address,
    settlement: Address,
    merchant: Address,
    amount: U256,
    request_hash: B256,
) -> Bytes {
    execute_batch(vec![
        call(token, IToken::approveCall { spender: settlement, value: amount }.abi_encode()),
        call(
            settlement,
            ISettlement::settleCall { merchant, token, amount, requestHash: request_hash }
                .abi_encode(),
        ),
    ])
}

/// Kernel's signature: the 4-byte mode, then what the chosen validator reads.
pub fn with_mode(mode: [u8; 4], signature: &[u8]) -> Bytes {
    let mut out = mode.to_vec();
    out.extend_from_slice(signature);
    out.into()
}
