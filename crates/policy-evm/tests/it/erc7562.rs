//! ERC-7562 validation rules (unstaked sender) over every kind of op the account validates: owner,
//! enable, use (sponsored and self-paid, with a merchant allowlist and a per-merchant sub-budget),
//! and ops calling the relayed/direct controls. The probe traces the account's `validateUserOp` frame.

use alloy::primitives::{U256, keccak256};
use x402_aa_policy_evm::{
    abi::ISessionAccount,
    ops::{self, Format, GasFields},
};

use crate::support::*;

#[test]
fn every_kind_of_op_passes_the_erc7562_checker() -> anyhow::Result<()> {
    let mut fx = Fx::new()?;
    if fx.format == Format::V1 {
        return Ok(());
    }
    fx.chain.evm.inspector.erc7562_sender = Some(fx.account);
    let gas = GasFields::default();
    let mut grant = fx.sponsored_grant();
    grant.max_gas_cost_per_op = ETH / 10;
    grant.gas_period_budget = ETH;
    grant.gas_lifetime_budget = ETH;
    grant.max_payments_per_period = 10;
    grant.merchant_period_cap = 3 * USD;
    grant.merchant_root = keccak256(MERCHANT.as_slice());
    let id = fx.id(&grant);

    let mut kinds = 0;
    // owner payment, sponsored
    let nonce = fx.nonce(fx.account)?;
    let mut op = ops::unsigned_op(fx.account, nonce, fx.pay(MERCHANT, USD, 1), gas);
    ops::sponsor(&mut fx.chain, &mut op)?;
    ops::sign_owner(&mut op, &fx.owner)?;
    assert!(fx.submit(vec![op])?.success);
    kinds += 1;
    // enable (self-paid), use (self-paid), use (sponsored)
    for (n, (enable, sponsor)) in
        [(true, false), (false, false), (false, true)].into_iter().enumerate()
    {
        let nonce = fx.nonce(fx.account)?;
        let mut op =
            ops::unsigned_op(fx.account, nonce, fx.pay(MERCHANT, USD / 2, 10 + n as u64), gas);
        if sponsor {
            ops::sponsor(&mut fx.chain, &mut op)?;
        }
        let sig = ops::SessionSig {
            format: fx.format,
            grant: &grant,
            enable_with: enable.then_some(&fx.owner),
            session_key: &fx.session_key,
            period_index: fx.period_index(&grant),
            merchant_proof: vec![],
            id_override: None,
        };
        ops::sign_session(&mut op, &sig)?;
        let out = fx.submit(vec![op])?;
        assert!(out.success, "{:?}", out.revert_reason());
        kinds += 1;
    }
    // owner ops whose callData is a control: pause, resume, revoke, revoke all
    for data in [
        call(ISessionAccount::pauseSessionCall { id }),
        call(ISessionAccount::resumeSessionCall { id }),
        call(ISessionAccount::revokeSession_olCall { id }),
        call(ISessionAccount::revokeAllSessionsCall {}),
    ] {
        let nonce = fx.nonce(fx.account)?;
        let mut op = ops::unsigned_op(fx.account, nonce, data, gas);
        ops::sponsor(&mut fx.chain, &mut op)?;
        ops::sign_owner(&mut op, &fx.owner)?;
        assert!(fx.submit(vec![op])?.success);
        kinds += 1;
    }
    let probe = &fx.chain.evm.inspector;
    assert_eq!(probe.frames_checked, kinds, "every op's validateUserOp frame was traced");
    assert!(probe.violations.is_empty(), "ERC-7562 violations: {:#?}", probe.violations);
    let _ = U256::ZERO;
    Ok(())
}

/// The checker itself catches a violation: an account whose validateUserOp reads TIMESTAMP and an
/// unassociated slot of another contract (the token's total supply) before accepting every op.
#[test]
fn the_checker_flags_a_violating_account() -> anyhow::Result<()> {
    let mut fx = Fx::new()?;
    let bad = alloy::primitives::address!("00000000000000000000000000000000000bad01");
    let token = fx.chain.addrs.token;
    // TIMESTAMP POP; STATICCALL token.totalSupply(); return 0 (valid)
    let mut code = vec![0x42, 0x50];
    code.extend([0x63, 0x18, 0x16, 0x0d, 0xdd, 0x60, 0xe0, 0x1b, 0x60, 0x00, 0x52]); // mstore(0, selector << 224)
    code.extend([0x60, 0x20, 0x60, 0x00, 0x60, 0x04, 0x60, 0x00, 0x73]);
    code.extend_from_slice(token.as_slice());
    code.extend([0x5a, 0xfa, 0x50]); // GAS STATICCALL POP
    code.extend([0x60, 0x00, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3]);
    fx.chain.set_code(bad, code.into());
    fx.chain.evm.inspector.erc7562_sender = Some(bad);
    let mut op = ops::unsigned_op(bad, U256::ZERO, Default::default(), GasFields::default());
    ops::sponsor(&mut fx.chain, &mut op)?;
    op.signature = vec![0u8; 65].into();
    let out = fx.submit(vec![op])?;
    assert!(out.success, "{:?}", out.revert_reason());
    let v = &fx.chain.evm.inspector.violations;
    assert!(v.iter().any(|v| v.contains("TIMESTAMP")), "{v:#?}");
    assert!(v.iter().any(|v| v.contains("STO-021")), "{v:#?}");
    Ok(())
}
