//! Safe 1.4.1 and Safe4337Module v0.2.0 at their canonical addresses, deployed the way Safe
//! deployed them, so Safe addresses, initCode and SafeOp hashes on the devnet are the mainnet ones.
//!
//! - The **Safe singleton factory** (`0x914d…43d7`) is created by replaying its presigned
//!   deployment transaction for this chain id from `@safe-global/safe-singleton-factory`, after
//!   funding its one-time signer exactly as a new chain's operator would. No `anvil_setCode`.
//! - **Safe 1.4.1** (singleton, SafeProxyFactory, MultiSend, MultiSendCallOnly,
//!   CompatibilityFallbackHandler): npm `@safe-global/safe-contracts@1.4.1` creation code through
//!   that factory with salt 0, which is how `@safe-global/safe-deployments` lists them.
//! - **Safe4337Module v0.2.0 + AddModulesLib**: the artifacts in
//!   `contracts/vendor/safe4337-v0.2.0/` through the deterministic-deployment proxy (`0x4e59…`)
//!   with salt 0, as hardhat-deploy did for the release (see that folder's PROVENANCE.md).
//!
//! Every address is asserted, so a changed artifact fails the devnet start instead of silently
//! deploying a non-canonical Safe.

use std::path::Path;

use alloy::{
    consensus::{Transaction, TxEnvelope},
    eips::{BlockNumberOrTag, Decodable2718},
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, hex},
    providers::{DynProvider, Provider, ext::AnvilApi},
    rpc::types::TransactionRequest,
    sol_types::SolValue,
};
use x402_aa::accounts::safe::{
    ADD_MODULES_LIB_V020, COMPATIBILITY_FALLBACK_HANDLER_V141, MULTI_SEND_CALL_ONLY_V141,
    MULTI_SEND_V141, SAFE_4337_MODULE_V020, SAFE_PROXY_FACTORY_V141, SAFE_SINGLETON_FACTORY,
    SAFE_SINGLETON_V141, SafeDeployment,
};
use x402_aa_contracts::{
    Artifact, ArtifactError, node_modules_dir, npm_artifact, project_artifact,
};

use crate::{Error, Keys, Result, deploy::CREATE2_DEPLOYER};

/// Relative to the directory `npm_artifact` reads (`node_modules/@account-abstraction/contracts/
/// artifacts`), see [`creation_code`].
const SAFE_CONTRACTS: &str = "../../../@safe-global/safe-contracts/build/artifacts/contracts";
/// Relative to the directory `project_artifact` reads (`contracts/artifacts`).
const VENDOR_4337: &str = "../vendor/safe4337-v0.2.0";
const SINGLETON_FACTORY: &str = "@safe-global/safe-singleton-factory/artifacts";

/// Above the Safe singleton's ~5M-gas deployment, below anvil's 30M block.
const DEPLOY_GAS: u64 = 10_000_000;
const MAX_FEE: u128 = 10_000_000_000;

/// A contract's creation code and where it must land.
struct Planned {
    name: &'static str,
    init_code: Vec<u8>,
    expected: Address,
}

/// Deploys everything (skipping the factory if the chain already has it) and returns the
/// canonical [`SafeDeployment`] once every address holds code.
pub(crate) async fn deploy_safe(
    provider: &DynProvider,
    keys: &Keys,
    chain_id: u64,
) -> Result<SafeDeployment> {
    // Load every file before sending anything, so a missing one fails fast and clearly.
    let factory_tx = singleton_factory_tx(chain_id)?;
    let via_factory = [
        ("Safe", "Safe.sol/Safe", SAFE_SINGLETON_V141),
        (
            "SafeProxyFactory",
            "proxies/SafeProxyFactory.sol/SafeProxyFactory",
            SAFE_PROXY_FACTORY_V141,
        ),
        ("MultiSend", "libraries/MultiSend.sol/MultiSend", MULTI_SEND_V141),
        (
            "MultiSendCallOnly",
            "libraries/MultiSendCallOnly.sol/MultiSendCallOnly",
            MULTI_SEND_CALL_ONLY_V141,
        ),
        (
            "CompatibilityFallbackHandler",
            "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler",
            COMPATIBILITY_FALLBACK_HANDLER_V141,
        ),
    ]
    .into_iter()
    .map(|(name, file, expected)| {
        let init_code = creation_code(npm_artifact(&format!("{SAFE_CONTRACTS}/{file}")))?;
        Ok(Planned { name, init_code, expected })
    })
    .collect::<Result<Vec<_>>>()?;
    let mut module = creation_code(project_artifact(&format!("{VENDOR_4337}/Safe4337Module")))?;
    module.extend(x402_aa::ENTRY_POINT_V06.abi_encode());
    let via_create2_proxy = [
        Planned {
            name: "AddModulesLib",
            init_code: creation_code(project_artifact(&format!("{VENDOR_4337}/AddModulesLib")))?,
            expected: ADD_MODULES_LIB_V020,
        },
        Planned { name: "Safe4337Module", init_code: module, expected: SAFE_4337_MODULE_V020 },
    ];

    if provider.get_code_at(SAFE_SINGLETON_FACTORY).await?.is_empty() {
        deploy_singleton_factory(provider, &factory_tx).await?;
    }

    let from = keys.deployer.address();
    let mut nonce = provider.get_transaction_count(from).await?;
    let jobs = via_factory
        .iter()
        .map(|p| (SAFE_SINGLETON_FACTORY, p))
        .chain(via_create2_proxy.iter().map(|p| (CREATE2_DEPLOYER, p)));
    for (deployer, planned) in jobs {
        let actual = deployer.create2_from_code(B256::ZERO, &planned.init_code);
        if actual != planned.expected {
            return Err(Error::WrongAddress {
                name: planned.name,
                expected: planned.expected,
                actual,
            });
        }
        let mut input = B256::ZERO.to_vec();
        input.extend_from_slice(&planned.init_code);
        let tx = TransactionRequest::default()
            .with_from(from)
            .with_to(deployer)
            .with_input(input)
            .with_nonce(nonce)
            .with_gas_limit(DEPLOY_GAS)
            .with_max_fee_per_gas(MAX_FEE)
            .with_max_priority_fee_per_gas(0);
        nonce += 1;
        // Both deployers revert when CREATE2 fails, so a successful receipt means the code is
        // at the address computed above.
        crate::deploy::send(provider, &format!("CREATE2 {}", planned.name), tx).await?;
    }
    // The presigned factory transaction pays its chain's gas price (100 gwei for 31337) and is
    // the only recent transaction with a tip, so alloy's fee estimator (median non-zero tip of
    // the last 10 blocks) would suggest ~100 gwei to every wallet transaction that follows, and
    // `eth_gasPrice` follows the last block's tip: ops would then ask ~200 gwei, above a
    // paymaster's fee cap. Empty blocks push it out of that window.
    provider.anvil_mine(Some(FEE_HISTORY_BLOCKS), None).await?;
    Ok(SafeDeployment::CANONICAL)
}

/// `SafeSessionModule` (ours, `contracts/artifacts`) through the deterministic-deployment proxy with
/// salt 0 and `(EntryPoint v0.6, Safe4337Module v0.2.0)` as constructor arguments, like the Kernel
/// session validator: the same address on every devnet, and only the constructor's two addresses
/// (both canonical) decide it. Call after [`deploy_safe`] so the deployer's nonces stay in order.
pub(crate) async fn deploy_session_module(provider: &DynProvider, keys: &Keys) -> Result<Address> {
    let mut init_code = creation_code(project_artifact("SafeSessionModule"))?;
    init_code.extend((x402_aa::ENTRY_POINT_V06, SAFE_4337_MODULE_V020).abi_encode_params());
    let address = session_module_address(&init_code);
    if !provider.get_code_at(address).await?.is_empty() {
        return Ok(address);
    }
    let mut input = B256::ZERO.to_vec();
    input.extend_from_slice(&init_code);
    let tx = TransactionRequest::default()
        .with_from(keys.deployer.address())
        .with_to(CREATE2_DEPLOYER)
        .with_input(input)
        .with_gas_limit(DEPLOY_GAS)
        .with_max_fee_per_gas(MAX_FEE)
        .with_max_priority_fee_per_gas(0);
    crate::deploy::send(provider, "CREATE2 SafeSessionModule", tx).await?;
    Ok(address)
}

fn session_module_address(init_code: &[u8]) -> Address {
    CREATE2_DEPLOYER.create2_from_code(B256::ZERO, init_code)
}

/// How many blocks alloy's EIP-1559 estimator reads (`EIP1559_FEE_ESTIMATION_PAST_BLOCKS`).
const FEE_HISTORY_BLOCKS: u64 = 10;

/// The presigned factory deployment for `chain_id`, decoded so its sender and gas cost come
/// from the signed transaction itself rather than from the JSON beside it.
struct FactoryTx {
    raw: Bytes,
    signer: Address,
    gas_price: u128,
    cost: U256,
}

fn singleton_factory_tx(chain_id: u64) -> Result<FactoryTx> {
    let path = node_modules_dir()?
        .join(SINGLETON_FACTORY)
        .join(chain_id.to_string())
        .join("deployment.json");
    let text = read(
        &path,
        " (the Safe singleton factory has no presigned deployment for this chain id, or `npm ci` has not run)",
    )?;
    let parse_error = || ArtifactError::Missing {
        path: path.clone(),
        hint: " (no `transaction` hex string in the factory deployment file)",
    };
    let raw: Bytes = json_hex_field(&text, "transaction").ok_or_else(parse_error)?;
    let envelope = TxEnvelope::decode_2718(&mut raw.as_ref()).map_err(|_| parse_error())?;
    let TxEnvelope::Legacy(signed) = &envelope else { return Err(parse_error().into()) };
    let signer = signed
        .signature()
        .recover_address_from_prehash(&signed.signature_hash())
        .map_err(|_| parse_error())?;
    let gas_price = envelope.max_fee_per_gas();
    let cost = U256::from(envelope.gas_limit()) * U256::from(gas_price);
    Ok(FactoryTx { raw, signer, gas_price, cost })
}

async fn deploy_singleton_factory(provider: &DynProvider, tx: &FactoryTx) -> Result<()> {
    // The signer's only transaction: funded with exactly its gas, as a chain operator would.
    provider.anvil_set_balance(tx.signer, tx.cost).await?;
    // Some chains' presigned transactions pay less than anvil's 1 gwei starting base fee (Base:
    // 0.2 gwei); lower the base fee to what the chain would charge rather than re-signing.
    let latest = provider.get_block_by_number(BlockNumberOrTag::Latest).await?;
    let base_fee = latest.and_then(|b| b.header.base_fee_per_gas).unwrap_or_default();
    if u128::from(base_fee) > tx.gas_price {
        provider.anvil_set_next_block_base_fee_per_gas(tx.gas_price).await?;
    }
    let receipt = provider.send_raw_transaction_sync(&tx.raw).await?;
    if !receipt.status() || receipt.contract_address != Some(SAFE_SINGLETON_FACTORY) {
        return Err(Error::Reverted {
            what: format!(
                "Safe singleton factory deployment (landed at {:?})",
                receipt.contract_address
            ),
            tx_hash: receipt.transaction_hash,
        });
    }
    Ok(())
}

/// Creation code from an artifact loaded by `x402_aa_contracts`' own loader (hardhat format,
/// typed errors). Its `npm_artifact` / `project_artifact` take a name relative to their
/// directories, which is how the Safe npm package and the vendored module are reached: that
/// loader is the one artifact parser this crate has, and reusing it keeps one format definition.
fn creation_code(artifact: std::result::Result<Artifact, ArtifactError>) -> Result<Vec<u8>> {
    Ok(artifact?.bytecode.to_vec())
}

fn read(path: &Path, hint: &'static str) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ArtifactError::Missing { path: path.to_path_buf(), hint }.into())
        }
        Err(source) => Err(ArtifactError::Read { path: path.to_path_buf(), source }.into()),
    }
}

/// `"key": "0x…"` from a flat JSON object. The factory's deployment file is five scalar fields;
/// this crate has no JSON parser dependency, and the value is checked by decoding the signed
/// transaction anyway.
fn json_hex_field(text: &str, key: &str) -> Option<Bytes> {
    let after_key = text.split_once(&format!("\"{key}\""))?.1;
    let value = after_key.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let (value, _) = value.split_once('"')?;
    hex::decode(value).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_hex_field_reads_flat_objects() {
        let text =
            "{\n\t\"gasPrice\": 1,\n\t\"transaction\": \"0xf8a7\",\n\t\"address\": \"0x91\"\n}";
        assert_eq!(json_hex_field(text, "transaction"), Some(Bytes::from(vec![0xf8, 0xa7])));
        assert_eq!(json_hex_field(text, "missing"), None);
        assert_eq!(json_hex_field("{\"transaction\": 5}", "transaction"), None);
    }

    /// The presigned transaction for anvil's default chain id deploys the factory at its
    /// canonical address: nonce 0 of its signer.
    #[test]
    fn factory_tx_for_anvil_is_the_canonical_one() {
        let tx = singleton_factory_tx(crate::DEFAULT_CHAIN_ID).unwrap();
        assert_eq!(tx.signer.create(0), SAFE_SINGLETON_FACTORY);
        assert!(tx.cost > U256::ZERO);
        let err = singleton_factory_tx(424_242_424_242).err().unwrap();
        assert!(matches!(err, Error::Artifact(ArtifactError::Missing { .. })), "{err}");
    }
}
