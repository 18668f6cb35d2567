//! Deployment of everything the devnet provides, in a fixed order so addresses never move.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, address, uint},
    providers::{DynProvider, Provider},
    rpc::types::{TransactionReceipt, TransactionRequest},
    sol_types::{SolCall, SolValue},
};
use x402_aa::{ENTRY_POINT_V06, SIMPLE_ACCOUNT_FACTORY_V06, accounts::kernel::ECDSA_VALIDATOR};
use x402_aa_contracts::{
    Artifact, EntryPoint, SettlementContract, VerifyingPaymaster, npm_artifact, project_artifact,
};

use crate::{Addresses, Error, Keys, Result};

/// The deterministic-deployment proxy anvil (like most chains) has at genesis; calldata is
/// `salt ‖ initCode`, and it reverts if the CREATE2 fails.
pub(crate) const CREATE2_DEPLOYER: Address = address!("0x4e59b44847b379578588920ca78fbf26c0b4956c");

/// Canonical deployments use salt 0, and so do ours for simplicity.
const SALT: B256 = B256::ZERO;

/// Paymaster funds: the deposit pays for sponsored ops, the stake makes it an entity bundlers
/// accept under ERC-7562 rules.
const PAYMASTER_DEPOSIT: U256 = uint!(100_000_000_000_000_000_000_U256);
const PAYMASTER_STAKE: U256 = uint!(1_000_000_000_000_000_000_U256);
const PAYMASTER_UNSTAKE_DELAY: u32 = 86_400;

pub(crate) async fn deploy_all(provider: &DynProvider, keys: &Keys) -> Result<Addresses> {
    // Load every artifact before sending anything, so a missing file fails fast and clearly.
    let entry_point_art = npm_artifact("EntryPoint")?;
    let factory_art = npm_artifact("SimpleAccountFactory")?;
    let paymaster_art = npm_artifact("VerifyingPaymaster")?;
    let token_art = project_artifact("TestStablecoin")?;
    let settlement_art = project_artifact("SettlementContract")?;
    let session_factory_art = project_artifact("SessionKeyAccountFactory")?;
    let eip3009_token_art = project_artifact("TestEip3009Token")?;
    let kernel_session_validator_art = project_artifact("KernelSessionValidator")?;

    let owner = keys.deployer.address();
    let mut d = Deployer::new(provider, owner).await?;

    let entry_point = d.create2(&entry_point_art, &[]).await?;
    expect_at("EntryPoint", ENTRY_POINT_V06, entry_point)?;
    let simple_account_factory = d.create2(&factory_art, &entry_point.abi_encode()).await?;
    expect_at("SimpleAccountFactory", SIMPLE_ACCOUNT_FACTORY_V06, simple_account_factory)?;

    // Plain CREATE so that `owner()` is the deployer rather than the CREATE2 proxy: BasePaymaster
    // is Ownable with the deploying `msg.sender` as owner, and addStake/withdrawTo are owner-only.
    let verifying_paymaster = d
        .create(&paymaster_art, &(entry_point, keys.paymaster_signer.address()).abi_encode_params())
        .await?;
    d.call(
        "EntryPoint.depositTo(paymaster)",
        entry_point,
        EntryPoint::depositToCall { account: verifying_paymaster }.abi_encode(),
        PAYMASTER_DEPOSIT,
    )
    .await?;
    d.call(
        "VerifyingPaymaster.addStake",
        verifying_paymaster,
        VerifyingPaymaster::addStakeCall { unstakeDelaySec: PAYMASTER_UNSTAKE_DELAY }.abi_encode(),
        PAYMASTER_STAKE,
    )
    .await?;

    let token = d.create2(&token_art, &owner.abi_encode()).await?;
    let settlement = d.create2(&settlement_art, &owner.abi_encode()).await?;
    d.call(
        "SettlementContract.setTokenAllowed",
        settlement,
        SettlementContract::setTokenAllowedCall { token, allowed: true }.abi_encode(),
        U256::ZERO,
    )
    .await?;
    let session_account_factory =
        d.create2(&session_factory_art, &entry_point.abi_encode()).await?;
    // Last: every earlier deployment keeps its address (and the deployer its nonces).
    let eip3009_token = d.create2(&eip3009_token_art, &owner.abi_encode()).await?;
    // CREATE2 with salt 0 and the canonical ECDSAValidator as its only constructor argument: the same
    // address on every devnet (the ECDSAValidator itself is deployed later, by `kernel::deploy`; the
    // constructor only records its address).
    let kernel_session_validator =
        d.create2(&kernel_session_validator_art, &ECDSA_VALIDATOR.abi_encode()).await?;

    Ok(Addresses {
        entry_point,
        simple_account_factory,
        verifying_paymaster,
        settlement,
        token,
        session_account_factory,
        eip3009_token,
        kernel_session_validator,
        // Its constructor names Safe4337Module, which `safe::deploy_safe` places later;
        // `safe::deploy_session_module` fills this in right after.
        safe_session_module: Address::ZERO,
    })
}

/// Sends the deployment transactions with nonce, gas and fees set up front, so each costs one
/// round trip instead of four (nonce, estimate, fee history, send). Estimating the EntryPoint's
/// 5.3M-gas deployment alone would re-run it several times.
struct Deployer<'a> {
    provider: &'a DynProvider,
    from: Address,
    nonce: u64,
}

/// Above any single deployment here (the EntryPoint needs ~5.3M) and below anvil's 30M block.
const DEPLOY_GAS: u64 = 15_000_000;
const CALL_GAS: u64 = 500_000;
/// Anvil starts at a 1 gwei base fee and only lowers it; 10 gwei always clears.
const MAX_FEE: u128 = 10_000_000_000;

impl<'a> Deployer<'a> {
    async fn new(provider: &'a DynProvider, from: Address) -> Result<Self> {
        let nonce = provider.get_transaction_count(from).await?;
        Ok(Self { provider, from, nonce })
    }

    async fn send(&mut self, what: &str, tx: TransactionRequest) -> Result<TransactionReceipt> {
        let tx = tx
            .with_from(self.from)
            .with_nonce(self.nonce)
            .with_max_fee_per_gas(MAX_FEE)
            .with_max_priority_fee_per_gas(0);
        self.nonce += 1;
        send(self.provider, what, tx).await
    }

    async fn call(&mut self, what: &str, to: Address, input: Vec<u8>, value: U256) -> Result<()> {
        let tx = TransactionRequest::default()
            .with_to(to)
            .with_input(input)
            .with_value(value)
            .with_gas_limit(CALL_GAS);
        self.send(what, tx).await.map(drop)
    }

    async fn create2(&mut self, artifact: &Artifact, constructor_args: &[u8]) -> Result<Address> {
        let init_code = init_code(artifact, constructor_args);
        let address = CREATE2_DEPLOYER.create2_from_code(SALT, &init_code);
        let mut input = SALT.to_vec();
        input.extend_from_slice(&init_code);
        let tx = TransactionRequest::default()
            .with_to(CREATE2_DEPLOYER)
            .with_input(input)
            .with_gas_limit(DEPLOY_GAS);
        self.send(&format!("CREATE2 {}", artifact.name), tx).await?;
        Ok(address)
    }

    async fn create(&mut self, artifact: &Artifact, constructor_args: &[u8]) -> Result<Address> {
        let tx = TransactionRequest::default()
            .with_deploy_code(init_code(artifact, constructor_args))
            .with_gas_limit(DEPLOY_GAS);
        let receipt = self.send(&format!("CREATE {}", artifact.name), tx).await?;
        receipt.contract_address.ok_or_else(|| Error::Reverted {
            what: format!("CREATE {} (no contract address)", artifact.name),
            tx_hash: receipt.transaction_hash,
        })
    }
}

/// Sends and waits for the receipt in one round trip; anvil answers `eth_sendRawTransactionSync`
/// once the transaction is mined, which under automine is immediately.
pub(crate) async fn send(
    provider: &DynProvider,
    what: &str,
    tx: TransactionRequest,
) -> Result<TransactionReceipt> {
    let receipt = provider.send_transaction_sync(tx).await?;
    if !receipt.status() {
        return Err(Error::Reverted { what: what.to_owned(), tx_hash: receipt.transaction_hash });
    }
    Ok(receipt)
}

fn init_code(artifact: &Artifact, constructor_args: &[u8]) -> Bytes {
    let mut code = artifact.bytecode.to_vec();
    code.extend_from_slice(constructor_args);
    code.into()
}

fn expect_at(name: &'static str, expected: Address, actual: Address) -> Result<()> {
    if expected == actual { Ok(()) } else { Err(Error::WrongAddress { name, expected, actual }) }
}
