//! Sponsored ops that the real EntryPoint accepts.

use alloy::{primitives::U256, providers::Provider};
use serde_json::json;
use x402_aa::ENTRY_POINT_V06;
use x402_aa_paymaster::SponsorPolicy;
use x402_aa_rpc::SponsorContext;

use crate::common::{API_KEY, USD, funded_account, payment_op, post_raw, start, valid_until};

#[tokio::test]
async fn sponsored_payment_is_included() -> anyhow::Result<()> {
    let env = start(SponsorPolicy::default()).await?;
    let devnet = &env.devnet;
    let owner = devnet.keys.spare[0].clone();
    let merchant = devnet.keys.spare[1].address();
    let account = funded_account(devnet, &owner).await?;
    let bundler = devnet.keys.bundler.address();

    for nonce in 0..2u64 {
        let mut op = payment_op(devnet, account, nonce, &format!("request {nonce}"));
        let sponsored = env
            .client
            .sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, SponsorContext::free())
            .await?;
        // Echoed, except the verification limit, raised to the policy's floor.
        assert_eq!(sponsored.verification_gas_limit, Some(U256::from(150_000)));
        assert_eq!(sponsored.call_gas_limit, Some(op.call_gas_limit));
        assert_eq!(sponsored.pre_verification_gas, Some(op.pre_verification_gas));
        assert_eq!(sponsored.max_fee_per_gas, Some(op.max_fee_per_gas));
        assert_eq!(sponsored.max_priority_fee_per_gas, Some(op.max_priority_fee_per_gas));
        let pnd = &sponsored.paymaster_and_data;
        assert_eq!(pnd.len(), 20 + 64 + 65);
        assert_eq!(&pnd[..20], devnet.addresses.verifying_paymaster.as_slice());
        let now = devnet.block_timestamp().await?;
        assert!((now + 590..=now + 700).contains(&valid_until(pnd)), "{now} {}", valid_until(pnd));

        sponsored.apply_to(&mut op);
        let hash = devnet.sign_as_owner(&mut op, &owner).await?;
        let included = devnet.handle_ops(&[op], bundler).await?.into_included()?;
        let event = included.event(hash).expect("UserOperationEvent");
        assert!(event.success, "reverted: {:?}", included.revert_reasons);
        assert_eq!(event.paymaster, devnet.addresses.verifying_paymaster);
        assert_eq!(event.nonce, U256::from(nonce));
    }
    assert_eq!(devnet.token_balance(merchant).await?, U256::from(2 * USD));
    // The account held no ETH and paid none: the paymaster's deposit covered the gas.
    assert_eq!(devnet.provider().get_balance(account).await?, U256::ZERO);
    Ok(())
}

/// The first op of an undeployed account deploys it through initCode; a generous
/// verificationGasLimit is echoed unchanged.
#[tokio::test]
async fn first_op_deploys_the_account() -> anyhow::Result<()> {
    let env = start(SponsorPolicy::default()).await?;
    let devnet = &env.devnet;
    let owner = devnet.keys.spare[2].clone();
    let account = devnet.simple_account_address(owner.address(), U256::ZERO).await?;
    devnet.mint(account, U256::from(10 * USD)).await?;

    let mut op = payment_op(devnet, account, 0, "deploying");
    op.init_code = devnet.simple_account_init_code(owner.address(), U256::ZERO);
    op.verification_gas_limit = U256::from(1_000_000);
    let sponsored =
        env.client.sponsor_user_op(&op, ENTRY_POINT_V06, API_KEY, SponsorContext::free()).await?;
    assert_eq!(sponsored.verification_gas_limit, Some(U256::from(1_000_000)));
    sponsored.apply_to(&mut op);
    let hash = devnet.sign_as_owner(&mut op, &owner).await?;
    let included =
        devnet.handle_ops(&[op], devnet.keys.bundler.address()).await?.into_included()?;
    assert!(included.event(hash).expect("event").success);
    assert_eq!(included.deployed.len(), 1);
    Ok(())
}

/// Only the `X-API-Key` header carries the key; the `apiKey` param is empty. Also: a decimal
/// string, a number and a missing context all mean type 0.
#[tokio::test]
async fn api_key_in_header_only() -> anyhow::Result<()> {
    let env = start(crate::common::unsimulated()).await?;
    let op = payment_op(&env.devnet, env.devnet.keys.spare[0].address(), 0, "h");
    for (key_param, context) in [
        (json!(""), json!({"type": "0"})),
        (json!(null), json!({"type": 0})),
        (json!(""), json!(null)),
    ] {
        let body = json!({
            "jsonrpc": "2.0", "id": 7, "method": "pm_sponsor_userop",
            "params": [op, key_param, ENTRY_POINT_V06, context],
        });
        let (status, reply) = post_raw(&env.handle.url(), body.to_string(), Some(API_KEY)).await?;
        assert_eq!(status, 200);
        assert_eq!(reply["id"], 7);
        let pnd = reply["result"]["paymasterAndData"].as_str().expect("result");
        assert_eq!(pnd.len(), 2 + 2 * (20 + 64 + 65));
        assert_eq!(reply["result"]["verificationGasLimit"], "0x249f0");
        assert_eq!(reply["result"]["callGasLimit"], "0x493e0");
    }
    Ok(())
}

#[tokio::test]
async fn informational_methods() -> anyhow::Result<()> {
    let env = start(SponsorPolicy::default()).await?;
    let url = env.handle.url();
    let ep = ENTRY_POINT_V06;
    let calls = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "pm_entrypoints", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "pm_supported_tokens", "params": [{}, API_KEY, ep]},
        {"jsonrpc": "2.0", "id": 4, "method": "pm_supported_tokens", "params": [{}, "nope", ep]},
    ]);
    let (status, reply) = post_raw(&url, calls.to_string(), None).await?;
    assert_eq!(status, 200);
    assert_eq!(reply[0]["result"], "0x7a69");
    assert_eq!(reply[1]["result"], json!([ep]));
    assert_eq!(reply[2]["result"]["freeGas"], true);
    assert_eq!(reply[2]["result"]["tokens"], json!([]));
    assert_eq!(reply[3]["id"], 4);
    assert_eq!(reply[3]["error"]["code"], -32001);
    Ok(())
}
