//! Biconomy Smart Account v2 on the devnet: the account implementation, its factory (staked on
//! the EntryPoint, as Biconomy's deploy script does), the ECDSA ownership module, the
//! SessionKeyManager and the stock ERC-20 session validation module; and this project's
//! `BiconomySessionModule` (session keys under our caps, `contracts/src/biconomy/`).
//!
//! Bytecode is the committed `contracts/vendor/biconomy-v2` build of
//! `@biconomy-devx/account-contracts-v2` (see its `PROVENANCE.md`), embedded at compile time
//! ([`vendored`]) so the devnet needs neither the npm sources nor a compiler. Everything goes through the CREATE2
//! deployer with salt 0, so the addresses are fixed. They are not Biconomy's canonical ones:
//! those come from Biconomy's own CREATE3 `Deployer` contract and its salts (the address depends
//! on that deployer's address and the salt, not on the code), which no key of ours controls.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, uint},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    signers::{Signer, local::PrivateKeySigner},
    sol,
    sol_types::{SolCall, SolValue},
};
use x402_aa::{ENTRY_POINT_V06, UserOperation, accounts::biconomy};
use x402_aa_contracts::{Artifact, project_artifact};

use crate::{
    Devnet, Keys, Result,
    deploy::{CREATE2_DEPLOYER, send},
};

sol! {
    /// `SmartAccount` 2.0.0 (the implementation; accounts are proxies delegating to it).
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface BiconomySmartAccount {
        error CallerIsNotAnEntryPoint(address caller);
        error CallerIsNotEntryPoint(address caller);
        error CallerIsNotEntryPointOrSelf(address caller);
        error WrongValidationModule(address module);
        error WrongBatchProvided(uint256 destLength, uint256 valueLength, uint256 funcLength, uint256 operationLength);
        error AlreadyInitialized();

        function VERSION() external view returns (string memory);
        function entryPoint() external view returns (address);
        function getImplementation() external view returns (address _implementation);
        function isModuleEnabled(address module) external view returns (bool);
        function getFallbackHandler() external view returns (address _handler);
        function setupAndEnableModule(address setupContract, bytes memory setupData) external returns (address);
        function enableModule(address module) external;
    }

    /// `SmartAccountFactory` v2.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface BiconomyAccountFactory {
        event AccountCreation(address indexed account, address indexed initialAuthModule, uint256 indexed index);

        function basicImplementation() external view returns (address);
        function minimalHandler() external view returns (address);
        function owner() external view returns (address);
        function accountCreationCode() external pure returns (bytes memory);
        function getAddressForCounterFactualAccount(address moduleSetupContract, bytes calldata moduleSetupData, uint256 index) external view returns (address _account);
        function deployCounterFactualAccount(address moduleSetupContract, bytes calldata moduleSetupData, uint256 index) external returns (address proxy);
        function addStake(address epAddress, uint32 unstakeDelaySec) external payable;
    }

    /// `EcdsaOwnershipRegistryModule` 0.2.0.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface EcdsaOwnershipRegistryModule {
        error NoOwnerRegisteredForSmartAccount(address smartAccount);
        error AlreadyInitedForSmartAccount(address smartAccount);
        error WrongSignatureLength();
        error NotEOA(address account);
        error ZeroAddressNotAllowedAsOwner();

        function NAME() external view returns (string memory);
        function VERSION() external view returns (string memory);
        function getOwner(address smartAccount) external view returns (address);
        function initForSmartAccount(address eoaOwner) external returns (address);
        function isValidSignatureForAddress(bytes32 dataHash, bytes memory moduleSignature, address smartAccount) external view returns (bytes4);
    }

    #[derive(Debug, PartialEq, Eq)]
    struct SessionStorage {
        bytes32 merkleRoot;
    }

    /// `SessionKeyManager` (`SessionKeyManagerModule.sol`): one Merkle root of session leaves per
    /// account, set by the account itself.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface SessionKeyManager {
        function setMerkleRoot(bytes32 _merkleRoot) external;
        function getSessionKeys(address smartAccount) external view returns (SessionStorage memory);
        function validateSessionKey(address smartAccount, uint48 validUntil, uint48 validAfter, address sessionValidationModule, bytes memory sessionKeyData, bytes32[] memory merkleProof) external;
    }

    /// Biconomy's stock `ERC20SessionValidationModule`: per-call `maxAmount` to one recipient, no
    /// cumulative cap.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    interface ERC20SessionValidationModule {
        function EXECUTE_SELECTOR() external view returns (bytes4);
        function EXECUTE_OPTIMIZED_SELECTOR() external view returns (bytes4);
        function validateSessionParams(address destinationContract, uint256 callValue, bytes calldata _funcCallData, bytes calldata _sessionKeyData, bytes calldata) external returns (address);
    }
}

/// The Biconomy v2 contracts as deployed on a devnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BiconomyAddresses {
    /// `SmartAccount` implementation bound to the canonical EntryPoint v0.6.
    pub implementation: Address,
    /// `SmartAccountFactory`, owned by the deployer key and staked on the EntryPoint.
    pub factory: Address,
    /// The factory's `minimalHandler` (`DefaultCallbackHandler`), every account's fallback handler.
    pub default_handler: Address,
    /// `EcdsaOwnershipRegistryModule`: the validation module that makes a signature the owner's.
    pub ecdsa_module: Address,
    /// Biconomy's stock `SessionKeyManager` (deployed for comparison; our sessions do not use it).
    pub session_key_manager: Address,
    /// Biconomy's stock ERC-20 session validation module (no per-period cap, hence our own).
    pub erc20_session_module: Address,
    /// This project's `BiconomySessionModule` (session keys on Biconomy accounts), CREATE2 salt 0
    /// with [`Self::ecdsa_module`] as constructor argument; installed per account by an owner op
    /// `setupAndEnableModule(module, initForSmartAccount())`.
    pub session_module: Address,
}

impl BiconomyAddresses {
    /// What `x402_aa::accounts::biconomy` needs to derive initCode and account addresses.
    pub fn deployment(&self) -> biconomy::Deployment {
        biconomy::Deployment::vendored(self.factory, self.implementation, self.ecdsa_module)
    }
}

/// One of the committed Biconomy v2 artifacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiconomyContract {
    /// The account implementation (`SmartAccount.json`).
    SmartAccount,
    /// The proxy factory (`SmartAccountFactory.json`).
    SmartAccountFactory,
    /// The owner's ECDSA validation module.
    EcdsaOwnershipRegistryModule,
    /// Biconomy's session key manager.
    SessionKeyManager,
    /// Biconomy's ERC-20 session validation module.
    Erc20SessionValidationModule,
}

impl BiconomyContract {
    /// Every vendored artifact, in deployment order.
    pub const ALL: [Self; 5] = [
        Self::SmartAccount,
        Self::SmartAccountFactory,
        Self::EcdsaOwnershipRegistryModule,
        Self::SessionKeyManager,
        Self::Erc20SessionValidationModule,
    ];

    /// The contract's Solidity name (and its artifact's file stem).
    pub fn name(self) -> &'static str {
        match self {
            Self::SmartAccount => "SmartAccount",
            Self::SmartAccountFactory => "SmartAccountFactory",
            Self::EcdsaOwnershipRegistryModule => "EcdsaOwnershipRegistryModule",
            Self::SessionKeyManager => "SessionKeyManager",
            Self::Erc20SessionValidationModule => "ERC20SessionValidationModule",
        }
    }

    /// The artifact, embedded at compile time from `contracts/vendor/biconomy-v2`.
    pub fn artifact(self) -> Artifact {
        macro_rules! parts {
            ($c:ident) => {
                (
                    vendored::$c::abi::contract(),
                    &vendored::$c::BYTECODE,
                    &vendored::$c::DEPLOYED_BYTECODE,
                )
            };
        }
        let (abi, bytecode, deployed_bytecode) = match self {
            Self::SmartAccount => parts!(SmartAccount),
            Self::SmartAccountFactory => parts!(SmartAccountFactory),
            Self::EcdsaOwnershipRegistryModule => parts!(EcdsaOwnershipRegistryModule),
            Self::SessionKeyManager => parts!(SessionKeyManager),
            Self::Erc20SessionValidationModule => parts!(ERC20SessionValidationModule),
        };
        Artifact {
            name: self.name().to_owned(),
            path: format!("{VENDOR_DIR}/{}.json", self.name()).into(),
            abi,
            bytecode: bytecode.clone(),
            deployed_bytecode: deployed_bytecode.clone(),
        }
    }
}

/// Where the committed artifacts live, relative to the workspace root.
const VENDOR_DIR: &str = "contracts/vendor/biconomy-v2";

/// The committed artifacts, read by `sol!` at compile time: creation and runtime code plus the
/// JSON ABI (for the drift check of the hand-written interfaces above); nothing is parsed, so
/// nothing can fail, at run time. Paths are relative to this crate's manifest.
#[allow(missing_docs)] // generated from the vendored ABIs, documented in Biconomy's sources
pub mod vendored {
    alloy::sol!(
        #[sol(abi)]
        #[derive(Debug)]
        SmartAccount,
        "../../contracts/vendor/biconomy-v2/SmartAccount.json"
    );
    alloy::sol!(
        #[sol(abi)]
        #[derive(Debug)]
        SmartAccountFactory,
        "../../contracts/vendor/biconomy-v2/SmartAccountFactory.json"
    );
    alloy::sol!(
        #[sol(abi)]
        #[derive(Debug)]
        EcdsaOwnershipRegistryModule,
        "../../contracts/vendor/biconomy-v2/EcdsaOwnershipRegistryModule.json"
    );
    alloy::sol!(
        #[sol(abi)]
        #[derive(Debug)]
        SessionKeyManager,
        "../../contracts/vendor/biconomy-v2/SessionKeyManager.json"
    );
    alloy::sol!(
        #[sol(abi)]
        #[derive(Debug)]
        ERC20SessionValidationModule,
        "../../contracts/vendor/biconomy-v2/ERC20SessionValidationModule.json"
    );
}

/// Factory stake, as Biconomy's deploy script stakes it on testnets (0.1 ETH, one day): a staked
/// factory lets a deploying op touch the account's storage in the ECDSA module (ERC-7562).
const FACTORY_STAKE: U256 = uint!(100_000_000_000_000_000_U256);
const FACTORY_UNSTAKE_DELAY: u32 = 86_400;

/// Deploys every Biconomy contract through the CREATE2 deployer with salt 0 and stakes the
/// factory. Runs after the project's deployments; addresses do not depend on the order.
pub(crate) async fn deploy(provider: &DynProvider, keys: &Keys) -> Result<BiconomyAddresses> {
    let [account, factory, ecdsa, skm, erc20] =
        BiconomyContract::ALL.map(BiconomyContract::artifact);
    let session_module_art = project_artifact("BiconomySessionModule")?;
    let owner = keys.deployer.address();
    let mut tx = Txs { provider, from: owner, nonce: provider.get_transaction_count(owner).await? };

    let implementation = tx.create2(&account, &ENTRY_POINT_V06.abi_encode()).await?;
    let factory = tx.create2(&factory, &(implementation, owner).abi_encode_params()).await?;
    let ecdsa_module = tx.create2(&ecdsa, &[]).await?;
    let session_key_manager = tx.create2(&skm, &[]).await?;
    let erc20_session_module = tx.create2(&erc20, &[]).await?;
    // Ours, so the CREATE2 address follows from the committed artifact and the ECDSA module's address.
    let session_module = tx.create2(&session_module_art, &ecdsa_module.abi_encode()).await?;
    let stake = BiconomyAccountFactory::addStakeCall {
        epAddress: ENTRY_POINT_V06,
        unstakeDelaySec: FACTORY_UNSTAKE_DELAY,
    };
    tx.call("SmartAccountFactory.addStake", factory, stake.abi_encode(), FACTORY_STAKE).await?;

    Ok(BiconomyAddresses {
        implementation,
        factory,
        default_handler: factory.create(1),
        ecdsa_module,
        session_key_manager,
        erc20_session_module,
        session_module,
    })
}

impl Devnet {
    /// `initCode` deploying `owner`'s Biconomy account number `index` with the ECDSA module.
    pub fn biconomy_init_code(&self, owner: Address, index: U256) -> Bytes {
        self.biconomy.deployment().init_code(owner, index)
    }

    /// Counterfactual address of `owner`'s Biconomy account number `index`, from the factory.
    pub async fn biconomy_account_address(&self, owner: Address, index: U256) -> Result<Address> {
        Ok(BiconomyAccountFactory::new(self.biconomy.factory, &self.provider)
            .getAddressForCounterFactualAccount(
                self.biconomy.ecdsa_module,
                biconomy::ecdsa_setup_data(owner),
                index,
            )
            .call()
            .await?)
    }

    /// The ECDSA module's rule: the owner's EIP-191 signature over the userOpHash, wrapped as
    /// `abi.encode(signature, ecdsaModule)`. Sets `op.signature` and returns the hash.
    pub async fn sign_as_biconomy_owner(
        &self,
        op: &mut UserOperation,
        owner: &PrivateKeySigner,
    ) -> Result<B256> {
        let hash = self.user_op_hash(op);
        let signature = owner.sign_message(hash.as_slice()).await?;
        op.signature =
            biconomy::encode_signature(&signature.as_bytes(), self.biconomy.ecdsa_module);
        Ok(hash)
    }
}

/// Transactions with nonce, gas and fees set up front (one round trip each), like the main
/// deployment's.
struct Txs<'a> {
    provider: &'a DynProvider,
    from: Address,
    nonce: u64,
}

/// The SmartAccount implementation needs ~2M; the factory (which creates its callback handler)
/// less. Anvil's block is 30M.
const DEPLOY_GAS: u64 = 5_000_000;
const CALL_GAS: u64 = 300_000;
const MAX_FEE: u128 = 10_000_000_000;

impl Txs<'_> {
    async fn send(&mut self, what: &str, tx: TransactionRequest) -> Result<()> {
        let tx = tx
            .with_from(self.from)
            .with_nonce(self.nonce)
            .with_max_fee_per_gas(MAX_FEE)
            .with_max_priority_fee_per_gas(0);
        self.nonce += 1;
        send(self.provider, what, tx).await.map(drop)
    }

    async fn call(&mut self, what: &str, to: Address, input: Vec<u8>, value: U256) -> Result<()> {
        let tx = TransactionRequest::default()
            .with_to(to)
            .with_input(input)
            .with_value(value)
            .with_gas_limit(CALL_GAS);
        self.send(what, tx).await
    }

    async fn create2(&mut self, artifact: &Artifact, constructor_args: &[u8]) -> Result<Address> {
        let init_code = [artifact.bytecode.as_ref(), constructor_args].concat();
        let address = CREATE2_DEPLOYER.create2_from_code(B256::ZERO, &init_code);
        let input = [B256::ZERO.as_slice(), &init_code].concat();
        let tx = TransactionRequest::default()
            .with_to(CREATE2_DEPLOYER)
            .with_input(input)
            .with_gas_limit(DEPLOY_GAS);
        self.send(&format!("CREATE2 Biconomy {}", artifact.name), tx).await?;
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use x402_aa_contracts::abi_check::missing_from_artifact;

    use super::*;

    #[test]
    fn every_artifact_loads() {
        for c in BiconomyContract::ALL {
            let a = c.artifact();
            assert!(!a.deployed_bytecode.is_empty(), "{}", a.name);
            assert!(!a.abi.functions.is_empty(), "{}", a.name);
        }
    }

    #[test]
    fn bindings_match_artifact_abis() {
        let check = |c: BiconomyContract, calls: &[[u8; 4]], events: &[[u8; 32]], errors| {
            let missing = missing_from_artifact(&c.artifact(), calls, events, errors);
            assert!(missing.is_empty(), "{}: {missing:?}", c.name());
        };
        check(
            BiconomyContract::SmartAccount,
            BiconomySmartAccount::BiconomySmartAccountCalls::SELECTORS,
            &[],
            BiconomySmartAccount::BiconomySmartAccountErrors::SELECTORS,
        );
        check(
            BiconomyContract::SmartAccountFactory,
            BiconomyAccountFactory::BiconomyAccountFactoryCalls::SELECTORS,
            BiconomyAccountFactory::BiconomyAccountFactoryEvents::SELECTORS,
            &[],
        );
        check(
            BiconomyContract::EcdsaOwnershipRegistryModule,
            EcdsaOwnershipRegistryModule::EcdsaOwnershipRegistryModuleCalls::SELECTORS,
            &[],
            EcdsaOwnershipRegistryModule::EcdsaOwnershipRegistryModuleErrors::SELECTORS,
        );
        check(
            BiconomyContract::SessionKeyManager,
            SessionKeyManager::SessionKeyManagerCalls::SELECTORS,
            &[],
            &[],
        );
        check(
            BiconomyContract::Erc20SessionValidationModule,
            ERC20SessionValidationModule::ERC20SessionValidationModuleCalls::SELECTORS,
            &[],
            &[],
        );
    }
}
