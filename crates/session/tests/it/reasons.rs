//! One reason per rule, from every layer: for each session rule the chain can refuse, one op goes
//! through the real EntryPoint (`handleOps`), the facilitator's `/verify`, and (where an agent can be
//! asked to make such a payment at all) the SDK's `PaymentSigner`; all three must name the same
//! [`Rule`], and its x402 reason.
//!
//! The SDK column is empty for ops an agent's SDK never builds (a tampered signature, a callData that
//! is not a payment, a claimed period other than the current one): it refuses nothing there because
//! it produces nothing there; the chain and the facilitator still must agree.

use alloy::{
    primitives::{
        Address, B256, Bytes, U256,
        aliases::{U48, U96},
    },
    signers::{SignerSync, local::PrivateKeySigner},
};
use serde_json::{Value, json};
use x402_aa::{
    ENTRY_POINT_V06, SettleCall, encode_approve, encode_execute, encode_execute_batch,
    x402::{
        AaNativeExtra, AaNativePayload, AaNativeRequirements, SettlementCallSpec, payment_payload,
    },
};
use x402_aa_contracts::SessionKeyAccount;
use x402_aa_facilitator::{ChainConfig, Config, KeySource};
use x402_aa_session::{
    Rule, SessionFile, SessionGrant, SessionMode, TokenInfo,
    signer::{PaidRequest, PaymentSigner, SessionAccount},
};

use x402_aa_paymaster::{PaymasterConfig, PaymasterService};
use x402_aa_rpc::PaymasterClient;

use crate::fixture::{DAY, Fx, Pay, USD, fresh, malleated, zero_based_v};

const API_KEY: &str = "reasons";

/// A running facilitator for the fixture's devnet (direct submission, SQLite registry).
struct Verifier {
    url: String,
    http: reqwest::Client,
    _handle: x402_aa_facilitator::FacilitatorHandle,
    _dir: tempfile::TempDir,
}

impl Verifier {
    async fn start(fx: &Fx) -> anyhow::Result<Self> {
        let a = fx.devnet.addresses;
        let key = PrivateKeySigner::random();
        fx.devnet.fund(key.address(), U256::from(10u64.pow(19))).await?;
        let dir = tempfile::tempdir()?;
        let mut chain =
            ChainConfig::with_direct(fx.devnet.rpc_url(), a.settlement, KeySource::literal(&key));
        chain.session_account_factory = Some(a.session_account_factory);
        let mut config = Config::single(fx.devnet.chain_id(), chain);
        config.registry_url = format!("sqlite:{}", dir.path().join("registry.sqlite3").display());
        config.recovery_interval_ms = 0;
        let service = x402_aa_facilitator::FacilitatorService::with_env(config, |_| None).await?;
        let handle = service.serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?).await?;
        Ok(Self { url: handle.url(), http: reqwest::Client::new(), _handle: handle, _dir: dir })
    }

    /// `/verify`'s `invalidReason` for the op `p` describes (`None` when it says valid).
    async fn reason(&self, fx: &Fx, p: &Pay) -> anyhow::Result<Option<String>> {
        let (op, _) = fx.op(p).await?;
        let token = p.token.unwrap_or(fx.devnet.addresses.token);
        let accepted = accepted(fx, p.merchant, token, p.amount);
        let spec = SettlementCallSpec {
            merchant: p.merchant,
            token,
            amount: p.amount,
            request_hash: p.request_hash,
        };
        let payload = payment_payload(
            accepted.clone(),
            AaNativePayload { user_op: op, settlement_call_spec: spec, request: None },
            None,
        );
        let body = json!({
            "x402Version": 2,
            "paymentPayload": serde_json::to_value(&payload)?,
            "paymentRequirements": accepted,
        });
        let answer: Value =
            self.http.post(format!("{}/verify", self.url)).json(&body).send().await?.json().await?;
        if answer["isValid"] == json!(true) {
            return Ok(None);
        }
        Ok(answer["invalidReason"].as_str().map(str::to_owned))
    }
}

fn accepted(fx: &Fx, pay_to: Address, asset: Address, amount: U256) -> Value {
    let req = AaNativeRequirements {
        chain_id: fx.devnet.chain_id(),
        amount,
        pay_to,
        asset,
        max_timeout_seconds: 60,
        extra: Some(AaNativeExtra {
            settlement_contract: fx.devnet.addresses.settlement,
            entry_point: ENTRY_POINT_V06,
        }),
    };
    serde_json::to_value(req.to_wire()).expect("requirements serialise")
}

/// The SDK's refusal of a payment of `amount` to `merchant` in `token` under `grant`, with a
/// the devnet paymaster service at `sponsor` (or self-paid gas).
async fn sdk_reason(
    fx: &Fx,
    grant: &SessionGrant,
    merchant: Address,
    token: Address,
    amount: U256,
    sponsor: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let a = fx.devnet.addresses;
    let chain_id = fx.devnet.chain_id();
    let owner_sig: Bytes = fx.sign_grant_for(grant, chain_id, fx.account);
    let usdt = TokenInfo { address: a.token, symbol: "USDT".into(), decimals: 6 };
    let file = SessionFile::new(
        chain_id,
        fx.account,
        ENTRY_POINT_V06,
        None,
        usdt,
        fx.owner.address(),
        vec![fx.merchant],
        grant,
        owner_sig,
    );
    let account = SessionAccount::new(file, fx.session_key.clone())?;
    let mut signer = PaymentSigner::new(account, fx.devnet.provider().clone()).await?;
    if let Some(url) = sponsor {
        signer = signer.paymaster(PaymasterClient::new(url)?, API_KEY);
    }
    let request = PaidRequest { method: "GET".into(), url: "http://127.0.0.1:9/reasons".into() };
    match signer.pay(&accepted(fx, merchant, token, amount), &request).await {
        Ok(_) => Ok(None),
        Err(e) => Ok(Some(e.reason().to_owned())),
    }
}

/// Asserts that the chain refuses `p` for `rule` (with one of its revert strings, or the
/// EntryPoint's own code for the rules it reports itself), and that the facilitator and, when
/// `sdk` is given, the SDK answer the rule's reason.
async fn agree(
    fx: &Fx,
    verifier: &Verifier,
    name: &str,
    p: &Pay,
    rule: Rule,
    sdk: Option<Option<String>>,
) -> anyhow::Result<()> {
    let facilitator = verifier.reason(fx, p).await?;
    let (outcome, _) = fx.submit(p).await?;
    let Some((_, chain)) = outcome.failed_op() else {
        anyhow::bail!("{name}: the EntryPoint included the op; expected {rule:?}");
    };
    match rule {
        Rule::BadSessionSignature => assert_eq!(chain, "AA24 signature error", "{name}"),
        Rule::NotYetValid | Rule::Expired => assert_eq!(chain, "AA22 expired or not due", "{name}"),
        _ => assert_eq!(Rule::from_entry_point(chain), Some(rule), "{name}: chain said {chain:?}"),
    }
    assert_eq!(facilitator.as_deref(), Some(rule.reason()), "{name}: facilitator");
    if let Some(sdk) = sdk {
        assert_eq!(sdk.as_deref(), Some(rule.reason()), "{name}: SDK");
    }
    Ok(())
}

#[tokio::test]
async fn every_layer_names_the_same_rule() -> anyhow::Result<()> {
    let fx = Fx::new().await?;
    let verifier = Verifier::start(&fx).await?;
    let a = fx.devnet.addresses;
    let config = PaymasterConfig::new(
        fx.devnet.rpc_url(),
        fx.devnet.chain_id(),
        a.verifying_paymaster,
        fx.devnet.keys.paymaster_signer.clone(),
        vec![API_KEY.to_owned()],
    );
    let paymaster = PaymasterService::new(config)?.bind(([127, 0, 0, 1], 0).into()).await?;
    let pm_url = paymaster.url();
    let sponsored = Some(pm_url.as_str());
    let usd = U256::from(USD);
    let mut covered = Vec::new();
    macro_rules! case {
        ($name:expr, $p:expr, $rule:expr, $sdk:expr) => {{
            agree(&fx, &verifier, $name, &$p, $rule, $sdk).await?;
            covered.push($rule);
        }};
    }

    // 0. Format.
    let mut p = fx.pay(&fx.grant());
    p.raw_signature = Some(Bytes::from(vec![9u8; 400]));
    case!("unknown mode", p, Rule::MalformedSignature, None);

    // 1. Status.
    let revoked = fx.grant();
    fx.owner_call(SessionKeyAccount::revokeSession_olCall { id: fx.session_id(&revoked) }).await?;
    let sdk = sdk_reason(&fx, &revoked, fx.merchant, a.token, usd, sponsored).await?;
    case!("revoked", fx.pay(&revoked), Rule::Revoked, Some(sdk));

    let paused = fx.grant();
    fx.pay_ok(&fx.pay(&paused)).await?;
    fx.owner_call(SessionKeyAccount::pauseSessionCall { id: fx.session_id(&paused) }).await?;
    let sdk = sdk_reason(&fx, &paused, fx.merchant, a.token, usd, sponsored).await?;
    let mut p = fx.pay(&paused);
    p.mode = SessionMode::Use;
    case!("paused", p, Rule::Paused, Some(sdk));

    let mut other_epoch = fx.grant();
    other_epoch.epoch = 1;
    let sdk = sdk_reason(&fx, &other_epoch, fx.merchant, a.token, usd, sponsored).await?;
    case!("other epoch", fx.pay(&other_epoch), Rule::RevokedAll, Some(sdk));

    let mut p = fx.pay(&fx.grant());
    p.mode = SessionMode::Use;
    case!("use before enable", p, Rule::NotEnabled, None);

    let mut p = fx.pay(&fx.grant());
    let stranger = PrivateKeySigner::random();
    p.owner_signature = Some(stranger.sign_hash_sync(&B256::repeat_byte(1))?.as_bytes().into());
    case!("grant not signed by the owner", p, Rule::BadOwnerSignature, None);

    let grant_of_high_s = fx.grant();
    let mut p = fx.pay(&grant_of_high_s);
    let owner_signed: [u8; 65] = fx
        .sign_grant_for(&grant_of_high_s, fx.devnet.chain_id(), fx.account)
        .as_ref()
        .try_into()?;
    p.owner_signature = Some(malleated(owner_signed).to_vec().into());
    case!("owner's grant signature with a high s", p, Rule::BadOwnerSignature, None);

    let mut zero_cap = fx.grant();
    zero_cap.lifetimeCap = U96::ZERO;
    case!("grant cap is zero", fx.pay(&zero_cap), Rule::MalformedGrant, None);

    // 3. Gas.
    let mut pinned = fx.grant();
    pinned.paymaster = fx.stranger;
    let sdk = sdk_reason(&fx, &pinned, fx.merchant, a.token, usd, sponsored).await?;
    case!("paymaster not allowed", fx.pay(&pinned), Rule::PaymasterNotAllowed, Some(sdk));

    fx.devnet.fund(fx.account, U256::from(10u64.pow(18))).await?;
    let sponsored_only = fx.grant();
    let sdk = sdk_reason(&fx, &sponsored_only, fx.merchant, a.token, usd, None).await?;
    let mut p = fx.pay(&sponsored_only);
    p.paymaster = false;
    case!("paymaster required", p, Rule::PaymasterRequired, Some(sdk));

    let mut tiny_gas = fx.grant();
    tiny_gas.maxGasCostPerOp = U96::from(1u64);
    tiny_gas.gasPeriodBudget = U96::from(10u64.pow(17));
    tiny_gas.gasLifetimeBudget = U96::from(10u64.pow(17));
    let sdk = sdk_reason(&fx, &tiny_gas, fx.merchant, a.token, usd, None).await?;
    let mut p = fx.pay(&tiny_gas);
    p.paymaster = false;
    case!("gas over per-op cap", p, Rule::GasCostOverCap, Some(sdk));

    let mut small_budget = fx.grant();
    small_budget.maxGasCostPerOp = U96::from(10u64.pow(16));
    small_budget.gasPeriodBudget = U96::from(1u64);
    small_budget.gasLifetimeBudget = U96::from(10u64.pow(17));
    let sdk = sdk_reason(&fx, &small_budget, fx.merchant, a.token, usd, None).await?;
    let mut p = fx.pay(&small_budget);
    p.paymaster = false;
    case!("gas over period budget", p, Rule::OverGasPeriodBudget, Some(sdk));

    small_budget.gasPeriodBudget = U96::from(10u64.pow(17));
    small_budget.gasLifetimeBudget = U96::from(1u64);
    small_budget.salt = fresh();
    let sdk = sdk_reason(&fx, &small_budget, fx.merchant, a.token, usd, None).await?;
    let mut p = fx.pay(&small_budget);
    p.paymaster = false;
    case!("gas over lifetime budget", p, Rule::OverGasLifetimeBudget, Some(sdk));

    // 4. Method and token.
    let grant = fx.grant();
    let settle =
        SettleCall { merchant: fx.merchant, token: a.token, amount: usd, request_hash: fresh() };
    let mut p = fx.pay(&grant);
    p.request_hash = settle.request_hash;
    p.call_data = Some(encode_execute_batch(
        vec![a.token, a.settlement],
        vec![encode_approve(fx.stranger, usd), settle.abi_encode()],
    ));
    case!("approve spender", p, Rule::MethodNotAllowed, None);
    let mut p = fx.pay(&grant);
    p.call_data = Some(encode_execute(fx.stranger, usd, Bytes::new()));
    case!("value transfer", p, Rule::MethodNotAllowed, None);

    let usdc = a.eip3009_token;
    let other = SettleCall { token: usdc, request_hash: fresh(), ..settle };
    let mut p = fx.pay(&grant);
    p.token = Some(usdc);
    p.request_hash = other.request_hash;
    p.call_data = Some(encode_execute_batch(
        vec![usdc, a.settlement],
        vec![encode_approve(a.settlement, usd), other.abi_encode()],
    ));
    let sdk = sdk_reason(&fx, &grant, fx.merchant, usdc, usd, sponsored).await?;
    case!("another token", p, Rule::TokenNotAllowed, Some(sdk));

    // 5. Certain to revert.
    let mut p = fx.pay(&grant);
    p.amount = U256::ZERO;
    let sdk = sdk_reason(&fx, &grant, fx.merchant, a.token, U256::ZERO, sponsored).await?;
    case!("zero amount", p, Rule::InvalidPayment, Some(sdk));

    // 6. Counterparty.
    let mut p = fx.pay(&grant);
    p.merchant = fx.stranger;
    let sdk = sdk_reason(&fx, &grant, fx.stranger, a.token, usd, sponsored).await?;
    case!("merchant not allowed", p, Rule::MerchantNotAllowed, Some(sdk));

    // 7. Amounts and counts.
    let mut p = fx.pay(&grant);
    p.amount = usd + U256::ONE;
    let sdk = sdk_reason(&fx, &grant, fx.merchant, a.token, usd + U256::ONE, sponsored).await?;
    case!("over per-payment max", p, Rule::OverPerPaymentMax, Some(sdk));

    let mut one_per_day = fx.grant();
    one_per_day.periodCap = U96::from(USD);
    fx.pay_ok(&fx.pay(&one_per_day)).await?;
    let sdk = sdk_reason(&fx, &one_per_day, fx.merchant, a.token, usd, sponsored).await?;
    let mut p = fx.pay(&one_per_day);
    p.mode = SessionMode::Use;
    case!("over period cap", p, Rule::OverPeriodCap, Some(sdk));

    let mut one_in_life = fx.grant();
    one_in_life.lifetimeCap = U96::from(USD);
    fx.pay_ok(&fx.pay(&one_in_life)).await?;
    let sdk = sdk_reason(&fx, &one_in_life, fx.merchant, a.token, usd, sponsored).await?;
    let mut p = fx.pay(&one_in_life);
    p.mode = SessionMode::Use;
    case!("over lifetime cap", p, Rule::OverLifetimeCap, Some(sdk));

    let mut one_payment = fx.grant();
    one_payment.maxPaymentsPerPeriod = alloy::primitives::aliases::U24::from(1u64);
    fx.pay_ok(&fx.pay(&one_payment)).await?;
    let sdk = sdk_reason(&fx, &one_payment, fx.merchant, a.token, usd, sponsored).await?;
    let mut p = fx.pay(&one_payment);
    p.mode = SessionMode::Use;
    case!("over payment count", p, Rule::OverPaymentCount, Some(sdk));

    let mut per_merchant = fx.grant();
    per_merchant.merchantPeriodCap = U96::from(USD + USD / 2);
    fx.pay_ok(&fx.pay(&per_merchant)).await?;
    let sdk = sdk_reason(&fx, &per_merchant, fx.merchant, a.token, usd, sponsored).await?;
    let mut p = fx.pay(&per_merchant);
    p.mode = SessionMode::Use;
    case!("over merchant period cap", p, Rule::OverMerchantPeriodCap, Some(sdk));

    // 8. Time window, then the EntryPoint's own checks.
    let mut p = fx.pay(&grant);
    p.period_index = Some(10_000);
    case!("period outside the grant window", p, Rule::PeriodOutsideWindow, None);

    let mut p = fx.pay(&grant);
    p.signer = Some(PrivateKeySigner::random());
    case!("signed by another key", p, Rule::BadSessionSignature, None);

    // Signatures alloy reads as the session key's but the contract's ECDSA refuses.
    let mut p = fx.pay(&grant);
    p.session_signature_edit = Some(malleated);
    case!("session signature with a high s", p, Rule::BadSessionSignature, None);
    let mut p = fx.pay(&grant);
    p.session_signature_edit = Some(zero_based_v);
    case!("session signature with v = 0/1", p, Rule::BadSessionSignature, None);

    let mut later = fx.grant();
    later.validAfter = U48::from(fx.start + 7_200);
    let sdk = sdk_reason(&fx, &later, fx.merchant, a.token, usd, sponsored).await?;
    let mut p = fx.pay(&later);
    p.period_index = Some(0);
    case!("not yet valid", p, Rule::NotYetValid, Some(sdk));

    // A period already over needs the chain to have moved on: pay in period 1, then claim period 0.
    let mut hourly = fx.grant();
    hourly.period = 3_600;
    fx.devnet.increase_time(3_600).await?;
    fx.pay_ok(&fx.pay(&hourly)).await?;
    let mut p = fx.pay(&hourly);
    p.mode = SessionMode::Use;
    p.period_index = Some(0);
    case!("period already over", p, Rule::PeriodAlreadyOver, None);

    // Expired last: time only moves forward.
    let short = fx.grant();
    fx.devnet.increase_time(u64::from(DAY) * 8).await?;
    let sdk = sdk_reason(&fx, &short, fx.merchant, a.token, usd, sponsored).await?;
    let mut p = fx.pay(&short);
    p.period_index = Some(7);
    case!("expired", p, Rule::Expired, Some(sdk));

    let missing: Vec<Rule> = Rule::ALL.into_iter().filter(|r| !covered.contains(r)).collect();
    assert!(missing.is_empty(), "rules without a case: {missing:?}");
    Ok(())
}
