//! One test per finding 1–5 of issue 11, on the real EntryPoint v0.6 in revm. Each failed against the
//! account before the issue; to see that, run them against the old artifacts:
//!
//! ```sh
//! mkdir -p /tmp/old && for f in SessionKeyAccountFactory SessionKeyAccount SettlementContract TestStablecoin; do
//!   git show e1aeefd:contracts/artifacts/$f.json > /tmp/old/$f.json; done
//! X402_POLICY_ARTIFACTS=/tmp/old cargo test -p x402-aa-policy-evm --test it findings
//! ```

use alloy::primitives::{Address, U256, address};
use x402_aa_policy_evm::{
    abi::ISessionAccount,
    ops::{Format, GasFields},
};

use crate::support::*;

/// Finding 1: ops certain to revert in execution (zero amount; not the last validated op of the
/// sender) with a huge preVerificationGas and priority fee = max fee used to move the account's ETH
/// to the bundler's beneficiary without limit. Now the session's gas budget caps it.
#[test]
fn finding1_native_value_out_is_bounded_by_the_gas_budget() -> anyhow::Result<()> {
    let mut fx = Fx::new()?;
    let gas = GasFields {
        call_gas: 100_000,
        verification_gas: 300_000,
        pre_verification_gas: 1_000_000,
        max_fee: 10_000_000_000,
        max_priority_fee: 10_000_000_000,
    };
    let per_op = gas.prefund().to::<u128>();
    let mut grant = fx.sponsored_grant();
    grant.max_gas_cost_per_op = per_op;
    grant.gas_period_budget = 3 * per_op;
    grant.gas_lifetime_budget = 3 * per_op;
    let before = fx.native()?;
    let beneficiary_before = fx.chain.balance(BUNDLER);

    let mut enabled = false;
    for i in 0..24u64 {
        let nonce = fx.nonce(fx.account)?;
        // a zero-amount payment: settle reverts with ZeroAmount
        let zero = fx.pay(MERCHANT, 0, 1_000 + i);
        let op = fx.session_op(&grant, !enabled, zero, gas, nonce)?;
        if fx.submit(vec![op])?.success {
            enabled = true;
        }
        // two payments of one sender in one bundle: the first is not the last validated
        let nonce = fx.nonce(fx.account)?;
        let a = fx.pay(MERCHANT, USD, 2_000 + i);
        let b = fx.pay(MERCHANT, USD, 3_000 + i);
        let first = fx.session_op(&grant, !enabled, a, gas, nonce)?;
        let second = fx.session_op(&grant, false, b, gas, nonce + U256::from(1))?;
        if fx.submit(vec![first, second])?.success {
            enabled = true;
        }
    }
    let out = before - fx.native()?;
    let gained = fx.chain.balance(BUNDLER) - beneficiary_before;
    assert!(
        out <= U256::from(grant.gas_lifetime_budget),
        "native value out {out} wei > gas budget {} wei (beneficiary gained {gained})",
        grant.gas_lifetime_budget
    );
    Ok(())
}

/// Finding 2: a zero-amount payment passed validation (and reverted in execution, paid by the
/// account's gas). Now it is refused in validation, with a reason.
#[test]
fn finding2_zero_amount_is_refused_in_validation() -> anyhow::Result<()> {
    let mut fx = Fx::new()?;
    let grant = fx.sponsored_grant();
    let nonce = fx.nonce(fx.account)?;
    let mut op =
        fx.session_op(&grant, true, fx.pay(MERCHANT, 0, 1), GasFields::default(), nonce)?;
    x402_aa_policy_evm::ops::sponsor(&mut fx.chain, &mut op)?;
    let op = resign(&mut fx, &grant, op, true)?;
    let out = fx.submit(vec![op])?;
    assert!(refused_with(&out, "session: zero amount"), "{:?}", out.revert_reason());
    Ok(())
}

fn resign(
    fx: &mut Fx,
    grant: &x402_aa_policy_evm::ops::Grant,
    mut op: x402_aa_policy_evm::abi::IEntryPoint::UserOperation,
    enable: bool,
) -> anyhow::Result<x402_aa_policy_evm::abi::IEntryPoint::UserOperation> {
    let sig = x402_aa_policy_evm::ops::SessionSig {
        format: fx.format,
        grant,
        enable_with: enable.then_some(&fx.owner),
        session_key: &fx.session_key,
        period_index: fx.period_index(grant),
        merchant_proof: vec![],
        id_override: None,
    };
    x402_aa_policy_evm::ops::sign_session(&mut op, &sig)?;
    Ok(op)
}

/// Finding 3: `revokeAllSessions()` as an owner op earlier in the same bundle did not stop a session
/// payment validated in that bundle.
#[test]
fn finding3_revoke_all_earlier_in_the_bundle_stops_the_payment() -> anyhow::Result<()> {
    let mut fx = Fx::new()?;
    let mut grant = fx.sponsored_grant();
    grant.max_gas_cost_per_op = ETH / 10;
    grant.gas_period_budget = ETH;
    grant.gas_lifetime_budget = ETH;
    let nonce = fx.nonce(fx.account)?;
    let op = fx.session_op(&grant, true, fx.pay(MERCHANT, USD, 1), GasFields::default(), nonce)?;
    assert!(fx.submit(vec![op])?.success, "the enabling payment lands");
    let paid = fx.tokens_of(MERCHANT)?;

    let nonce = fx.nonce(fx.account)?;
    let revoke_all = fx.owner_op_for(
        fx.account,
        call(ISessionAccount::revokeAllSessionsCall {}),
        GasFields::default(),
        nonce,
    )?;
    let pay = fx.session_op(
        &grant,
        false,
        fx.pay(MERCHANT, USD, 2),
        GasFields::default(),
        nonce + U256::from(1),
    )?;
    let _ = fx.submit(vec![revoke_all, pay])?;
    assert_eq!(
        fx.chain.view(fx.account, ISessionAccount::sessionEpochCall {})?,
        1,
        "the revoke-all ran"
    );
    assert_eq!(
        fx.tokens_of(MERCHANT)?,
        paid,
        "a session revoked earlier in the bundle must not pay"
    );
    Ok(())
}

/// Finding 4: session state was keyed by a 16-byte prefix of the session id, so a forged grant whose
/// id shares that prefix with an enabled one passed use mode without the owner's signature. The
/// 2^64 birthday search is stood in for by the probe, which makes the forged grant's id come out
/// with the enabled id's first 16 bytes.
#[test]
fn finding4_a_forged_grant_sharing_an_id_prefix_cannot_pay() -> anyhow::Result<()> {
    let mut fx = Fx::new()?;
    let mut grant = fx.sponsored_grant();
    grant.max_gas_cost_per_op = ETH / 10;
    grant.gas_period_budget = ETH;
    grant.gas_lifetime_budget = ETH;
    let nonce = fx.nonce(fx.account)?;
    let op = fx.session_op(&grant, true, fx.pay(MERCHANT, USD, 1), GasFields::default(), nonce)?;
    assert!(fx.submit(vec![op])?.success, "the genuine grant is enabled");
    let enabled = fx.id(&grant);

    let attacker = key(66);
    let mut forged = grant.clone();
    forged.session_key = attacker.address();
    forged.per_payment_max = 500 * USD;
    forged.period_cap = 500 * USD;
    forged.lifetime_cap = 500 * USD;
    let forged_id = fx.id(&forged);
    let mut collided = forged_id;
    collided.0[..16].copy_from_slice(&enabled.0[..16]);
    fx.chain.evm.inspector.hash_override = Some((forged_id, collided));

    let before = fx.tokens_of(MERCHANT)?;
    let nonce = fx.nonce(fx.account)?;
    let mut op = x402_aa_policy_evm::ops::unsigned_op(
        fx.account,
        nonce,
        fx.pay(MERCHANT, 400 * USD, 2),
        GasFields::default(),
    );
    let sig = x402_aa_policy_evm::ops::SessionSig {
        format: fx.format,
        grant: &forged,
        enable_with: None,
        session_key: &attacker,
        period_index: fx.period_index(&forged),
        merchant_proof: vec![],
        id_override: Some(collided),
    };
    x402_aa_policy_evm::ops::sign_session(&mut op, &sig)?;
    let out = fx.submit(vec![op])?;
    fx.chain.evm.inspector.hash_override = None;
    assert_eq!(fx.tokens_of(MERCHANT)?, before, "the forged grant paid");
    assert!(refused_with(&out, "session: not enabled"), "{:?}", out.revert_reason());
    Ok(())
}

/// Finding 5: some refusals carried no reason (`AA23 reverted (or OOG)`): empty or undecodable
/// signatures, an unknown mode, malformed settle arguments in the diagnostic path.
#[test]
fn finding5_every_session_refusal_is_named() -> anyhow::Result<()> {
    let mut fx = Fx::new()?;
    let mut grant = fx.sponsored_grant();
    // self-paid, so the callData cases reach the method check instead of "paymaster required"
    grant.max_gas_cost_per_op = ETH / 10;
    grant.gas_period_budget = ETH;
    grant.gas_lifetime_budget = ETH;
    let a = fx.chain.addrs;
    let nonce = fx.nonce(fx.account)?;
    let good =
        fx.session_op(&grant, true, fx.pay(MERCHANT, USD, 1), GasFields::default(), nonce)?;

    let mut cases: Vec<(&str, x402_aa_policy_evm::abi::IEntryPoint::UserOperation)> = Vec::new();
    let mut op = good.clone();
    op.signature = Default::default();
    cases.push(("empty signature", op));
    let mut op = good.clone();
    op.signature = vec![2u8].into();
    cases.push(("mode byte only", op));
    let mut op = good.clone();
    op.signature = vec![7u8; 300].into();
    cases.push(("unknown mode", op));
    let mut op = good.clone();
    let mut sig = op.signature.to_vec();
    sig.truncate(200);
    op.signature = sig.into();
    cases.push(("truncated (undecodable) signature", op));

    // settle's merchant word with dirty high bits: not an address
    let mut data = fx.pay(MERCHANT, USD, 2).to_vec();
    data[424..436].copy_from_slice(&[0xff; 12]);
    let op = fx.session_op(&grant, true, data.into(), GasFields::default(), nonce)?;
    cases.push(("malformed settle arguments", op));
    // approve's spender word dirty
    let mut data = fx.pay(MERCHANT, USD, 3).to_vec();
    data[296..308].copy_from_slice(&[0xff; 12]);
    let op = fx.session_op(&grant, true, data.into(), GasFields::default(), nonce)?;
    cases.push(("malformed approve arguments", op));
    // a batch whose bytes[] offsets point outside the callData
    let mut data = fx.pay(MERCHANT, USD, 4).to_vec();
    data[36 + 31] = 0xf0;
    data[36 + 30] = 0xff;
    let op = fx.session_op(&grant, true, data.into(), GasFields::default(), nonce)?;
    cases.push(("batch offsets out of range", op));
    let _ = (a, Address::ZERO);

    let mut unnamed = Vec::new();
    for (what, op) in cases {
        let out = fx.submit(vec![op])?;
        let reason = out.revert_reason().unwrap_or_default();
        if out.success || !reason.starts_with("AA23 reverted: session: ") {
            unnamed.push(format!("{what}: {reason}"));
        }
    }
    assert!(unnamed.is_empty(), "refusals without a `session: …` reason: {unnamed:#?}");
    let _ = (Format::V2, address!("0000000000000000000000000000000000000001"));
    Ok(())
}
