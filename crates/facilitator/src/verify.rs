//! aa-native `/verify`, step by step (nero402-spec §8.2 plus the chain checks NERO leaves open).
//!
//! 1. the body is a v2 `{x402Version: 2, paymentPayload, paymentRequirements}` → `invalid_envelope`
//! 2. `payload.userOp` and `payload.settlementCallSpec` decode → `invalid_inner_payload`
//! 3. `accepted` equals the merchant's requirements → `network_mismatch`, `amount_mismatch`,
//!    `asset_mismatch`, `payTo_mismatch`, `requirements_mismatch`
//! 4. `callData` is the account kind's ([`Network::account_kind`]) encoding of approve + one
//!    `settle` (SimpleAccount's `executeBatch`, Kernel's `executeBatch`, Safe's MultiSend
//!    through the 4337 module, Biconomy's `executeBatch_y6U`) → `calldata_decode_failed`
//! 5. the decoded `settle` equals `settlementCallSpec` → `spec_mismatch`, and the spec pays what
//!    the requirements ask → `payTo_mismatch`, `asset_mismatch`, `amount_mismatch`
//! 6. network, EntryPoint, settlement contract and token are the ones configured here →
//!    `requirements_mismatch`, `invalid_payment_requirements`
//! 7. the requestHash is not settled: registry, then `isSettled` on chain → `replay`, `in_flight`
//! 8. SessionKeyAccount session ops (by the kind's own routing of its signature): the
//!    off-chain mirror of the account's checks with the owner read from the chain (or from
//!    `initCode`), then the stored budget → the session reasons (`session_expired`,
//!    `session_revoked`, `spend_cap_exceeded`, …)
//! 9. `EntryPoint.simulateValidation` → `simulation_failed` (FailedOp, with its `AAxx` code),
//!    `invalid_signature`, `user_op_out_of_time_range`
//! 10. `EntryPoint.simulateHandleOp` with `isSettled(requestHash)` as target: the execution really
//!     pays → `insufficient_funds`, `execution_reverted`
//!
//! Steps 1–6 need nothing but the request and the config ([`parse`], [`check_static`]); 7–10
//! read the chain ([`check_chain`]). A valid payment is accepted on a single `eth_call` of
//! `handleOps` through the `VerifyProbe` (state override, no funded key, same in bundler and
//! direct mode); 7–10 above run in order only to name why a payment is refused.

use alloy::{
    primitives::{Address, B256, Bytes},
    sol_types::SolCall,
};
use serde_json::Value;
use x402_aa::{
    DecodedPayment, UserOperation,
    abi::createAccountCall,
    accounts::{AccountKind, SignerRole, biconomy, kernel, safe},
    x402::{AaNativeEnvelope, AaNativeRequirements, PayloadError, decode_payment_payload},
};
use x402_aa_policy::{
    Rule, ScopeViolation, SessionHost, SessionMode, SessionOpSignature, check_session_payment,
    method_violation,
};

use crate::{
    chain::{ChainError, Execution, Head, Network, Probe, Validation},
    reason::Rejection,
    store::{Status, Store},
};

/// A request that passed steps 1–2.
#[derive(Debug, Clone)]
pub struct Request {
    /// The decoded payment payload.
    pub envelope: AaNativeEnvelope,
    /// The resource server's requirements it was checked against.
    pub required: AaNativeRequirements,
}

impl Request {
    /// The signed UserOperation that pays.
    pub fn op(&self) -> &UserOperation {
        &self.envelope.payload.payload.user_op
    }

    /// The requestHash `settle` records: the registry's key.
    pub fn request_hash(&self) -> B256 {
        self.envelope.payload.payload.settlement_call_spec.request_hash
    }

    /// The paying account (the op's sender).
    pub fn payer(&self) -> Address {
        self.envelope.payer()
    }
}

/// What the chain checks established.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    /// The op's hash under this network's EntryPoint and chain id.
    pub user_op_hash: B256,
    /// The block the checks ran against.
    pub head: Head,
}

impl From<ChainError> for Rejection {
    fn from(e: ChainError) -> Self {
        Rejection::Internal(e.to_string())
    }
}

impl From<crate::store::StoreError> for Rejection {
    fn from(e: crate::store::StoreError) -> Self {
        Rejection::Internal(format!("registry: {e}"))
    }
}

/// Steps 1–2: the body as an aa-native request.
pub fn parse(raw: &str) -> Result<Request, Rejection> {
    let body: Value = serde_json::from_str(raw)
        .map_err(|e| Rejection::Envelope(format!("body is not JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(Rejection::Envelope("body is not a JSON object".into()));
    };
    match body.get("x402Version") {
        Some(v) if v.as_u64() == Some(2) => {}
        Some(v) => return Err(Rejection::Envelope(format!("x402Version {v} is not 2"))),
        None => return Err(Rejection::Envelope("x402Version is missing".into())),
    }
    let payload = body
        .get("paymentPayload")
        .ok_or_else(|| Rejection::Envelope("paymentPayload is missing".into()))?;
    let envelope = decode_payment_payload(payload.clone())?;
    let requirements = body
        .get("paymentRequirements")
        .ok_or_else(|| Rejection::Envelope("paymentRequirements is missing".into()))?;
    let required = match AaNativeRequirements::parse_json(requirements) {
        Ok(required) => required,
        // The payer chose aa-native; requirements of another scheme are not what it accepted.
        Err(PayloadError::UnsupportedScheme { .. }) => {
            return Err(PayloadError::RequirementsMismatch { field: "scheme" }.into());
        }
        Err(e) => return Err(Rejection::Requirements(e.to_string())),
    };
    Ok(Request { envelope, required })
}

/// Steps 3–6: everything checkable without the chain, for an op of account `kind`
/// ([`Network::account_kind`]).
pub fn check_static(
    net: &Network,
    req: &Request,
    kind: AccountKind,
) -> Result<DecodedPayment, Rejection> {
    let accepted = req.envelope.accepted.chain_id;
    if accepted != net.chain_id {
        return Err(
            PayloadError::NetworkMismatch { expected: net.chain_id, actual: accepted }.into()
        );
    }
    let decoded = req.envelope.verify_against(&req.required, net.abi(kind))?;
    if let Some(extra) = &req.required.extra
        && extra.entry_point != net.entry_point
    {
        return Err(Rejection::NotServed(format!(
            "requirements name EntryPoint {}, this facilitator submits to {} on eip155:{}",
            extra.entry_point, net.entry_point, net.chain_id
        )));
    }
    if decoded.settlement != net.settlement {
        return Err(Rejection::NotServed(format!(
            "the payment settles through {}, this facilitator settles through {} on eip155:{}",
            decoded.settlement, net.settlement, net.chain_id
        )));
    }
    let token = decoded.settle.token;
    if !net.allowed_tokens.is_empty() && !net.allowed_tokens.contains(&token) {
        return Err(Rejection::AssetNotAllowed(token));
    }
    Ok(decoded)
}

/// Steps 7–10. `registry_replay` is false when the caller itself holds the registry claim
/// (`/settle` re-verifying after claiming).
///
/// A valid payment needs only the registry row and one `eth_call` (the
/// [`Network::probe`]): the op runs through the real `handleOps` — the account's own
/// `validateUserOp` with its session scopes, the paymaster, the time window, the settle — so
/// nothing the chain would refuse passes. Only when the probe says no are the remaining reads
/// (`isSettled`, the session mirror, the EntryPoint's simulations, the balance) made, in the
/// documented order, to name the most specific reason.
pub async fn check_chain(
    net: &Network,
    store: &dyn Store,
    req: &Request,
    decoded: &DecodedPayment,
    registry_replay: bool,
) -> Result<Checked, Rejection> {
    let op = req.op();
    let user_op_hash = op.hash(net.entry_point, net.chain_id);
    let request_hash = req.request_hash();

    let registry = async {
        if registry_replay { check_registry(net, store, request_hash).await } else { Ok(()) }
    };
    let already_settled =
        || Rejection::Replay(format!("requestHash {request_hash} is already settled"));
    // The probe reads `isSettled` before the op runs too: a requestHash someone else settled
    // first (with their own tokens) would look paid by this op.
    let (registry, probe) = tokio::join!(registry, net.probe(op, request_hash));
    registry?;
    let probe_refusal = match probe {
        Ok(Probe::AlreadySettled) => return Err(already_settled()),
        Ok(Probe::Settles(head)) => return Ok(Checked { user_op_hash, head }),
        Ok(Probe::DoesNotSettle) => {
            Some("the op runs but its settle does not record the payment".to_owned())
        }
        // A refused op never reached the probe's first read; a replay is the more specific
        // answer than whatever the replayed op now fails on (its nonce, usually).
        Ok(Probe::Refused(_)) if net.is_settled(request_hash).await? => {
            return Err(already_settled());
        }
        Ok(Probe::Refused(reason)) => Some(reason),
        // A node without `eth_call` state overrides: the EntryPoint's simulations below decide
        // alone, as they did before the probe (slower, same verdicts).
        Err(e) => {
            tracing::debug!(target: "x402_aa::facilitator", error = %e, "probe unavailable");
            None
        }
    };

    let (head, validation, execution) = tokio::join!(
        net.head(),
        net.simulate_validation(op),
        net.simulate_execution(op, request_hash)
    );
    let head = head?;
    let (validation, execution) = (validation?, execution?);
    let in_time = |after: u64, until: u64| head.timestamp >= after && head.timestamp <= until;
    if net.is_settled(request_hash).await? {
        return Err(already_settled());
    }
    let kind = net.account_kind(op).await?;
    // The off-chain session mirror covers the hosts of our policy (SessionKeyAccount, and Kernel,
    // Safe and Biconomy with our module); other session ops are judged by the chain alone.
    if let Some(host) = session_host(net, kind, op) {
        check_session(net, op, host, user_op_hash, head).await?;
    }
    match validation {
        Validation::Passed { sig_failed: true, .. } => return Err(Rejection::InvalidSignature),
        Validation::Passed { valid_after, valid_until, .. } => {
            if !in_time(valid_after, valid_until) {
                return Err(Rejection::OutOfTimeRange {
                    valid_after,
                    valid_until,
                    now: head.timestamp,
                });
            }
        }
        Validation::FailedOp(reason) | Validation::Other(reason) => {
            return Err(Rejection::entry_point_refusal(reason));
        }
    }
    match execution {
        Execution::Settles => match probe_refusal {
            None => Ok(Checked { user_op_hash, head }),
            // Every simulation passes, yet handleOps would not pay: say what it said.
            Some(reason) => Err(Rejection::entry_point_refusal(reason)),
        },
        Execution::Reverts => {
            let (token, amount) = (decoded.settle.token, decoded.settle.amount);
            let balance = net.token_balance(token, op.sender).await?;
            if balance < amount {
                return Err(Rejection::InsufficientFunds { balance, amount });
            }
            Err(Rejection::ExecutionReverted(
                "settle does not complete (allowance, paused contract, token not allowed, \
                 or call gas)"
                    .into(),
            ))
        }
        Execution::FailedOp(reason) | Execution::Other(reason) => {
            Err(Rejection::SimulationFailed { reason })
        }
    }
}

async fn check_registry(
    net: &Network,
    store: &dyn Store,
    request_hash: B256,
) -> Result<(), Rejection> {
    match store.get(net.chain_id, request_hash).await? {
        Some(row) if row.status == Status::Settled => Err(Rejection::Replay(format!(
            "requestHash {request_hash} was settled in transaction {}",
            row.tx_hash.map(|h| h.to_string()).unwrap_or_default()
        ))),
        Some(row) if row.status == Status::InFlight => Err(Rejection::InFlight),
        _ => Ok(()),
    }
}

/// Steps 3–6 for an op of account `kind`, where a session op whose callData is not a payment is
/// named by the session rule it breaks (the account refuses it as out of scope, e.g. `session:
/// approve spender not allowed` → `method_not_allowed`, or an earlier rule such as revocation),
/// so the facilitator, the SDK and the chain give the same reason. Owner ops keep NERO's
/// `calldata_decode_failed`.
pub async fn check_static_for(
    net: &Network,
    req: &Request,
    kind: AccountKind,
) -> Result<DecodedPayment, Rejection> {
    let op = req.op();
    match (check_static(net, req, kind), session_host(net, kind, op)) {
        (Err(Rejection::Payload(PayloadError::CallData(e))), Some(host)) => {
            let head = net.head().await?;
            check_session(net, op, host, op.hash(net.entry_point, net.chain_id), head).await?;
            Err(PayloadError::CallData(e).into())
        }
        (other, _) => other,
    }
}

/// Where the policy of a session op of `kind` runs, if it is one of ours: SessionKeyAccount's
/// own storage, or the Kernel validator, Safe module or Biconomy module this network knows.
fn session_host(net: &Network, kind: AccountKind, op: &UserOperation) -> Option<SessionHost> {
    if net.abi(kind).signer_role(&op.signature) != SignerRole::Session {
        return None;
    }
    match kind {
        AccountKind::SessionKeyAccount => Some(SessionHost::Account),
        AccountKind::Kernel => net.kernel_session_validator().map(SessionHost::KernelValidator),
        // Only ops the envelope hands to our module; another module's are the simulation's.
        AccountKind::Biconomy => net
            .biconomy_session_module()
            .filter(|module| {
                biconomy::decode_signature(&op.signature)
                    .is_ok_and(|m| m.validation_module == *module)
            })
            .map(SessionHost::BiconomyModule),
        AccountKind::Safe => net.safe_session_module().map(SessionHost::SafeModule),
        _ => None,
    }
}

/// Step 8: the host's session checks, off-chain, in the contract's order.
async fn check_session(
    net: &Network,
    op: &UserOperation,
    host: SessionHost,
    user_op_hash: B256,
    head: Head,
) -> Result<(), Rejection> {
    let deployed = net.is_deployed(op.sender).await?;
    let (owner, signature, payment) = match host {
        SessionHost::Account => {
            let owner = if deployed {
                net.account_owner(op.sender).await?
            } else {
                owner_from_init_code(net, op).await?
            };
            let payment = x402_aa::decode_payment(&op.call_data).map_err(|e| method_violation(&e));
            (owner, op.signature.clone(), payment)
        }
        SessionHost::KernelValidator(validator) => {
            // A Kernel account must exist with the validator installed; without code the
            // EntryPoint's own refusal (AA20) is the answer.
            if !deployed {
                return Ok(());
            }
            let owner = net.session_module_owner(validator, op.sender).await?;
            let payment = kernel::decode_session_payment(&op.call_data).map_err(|e| {
                ScopeViolation::MethodNotAllowed(format!(
                    "session: callData must be exactly executeSessionPayment ({e})"
                ))
            });
            (owner, Bytes::copy_from_slice(op.signature.get(4..).unwrap_or_default()), payment)
        }
        SessionHost::SafeModule(module) => {
            if !deployed {
                return Ok(());
            }
            // The module's `ownerOf` reverts for a Safe that is not 1-of-1, whose grants are
            // enabled by `enableSession` and used without an owner signature: read it only for
            // an op that enables its grant in-op.
            let owner = if op.signature.first() == Some(&(SessionMode::Enable as u8)) {
                match net.session_module_owner_or_refusal(module, op.sender).await? {
                    Ok(owner) => owner,
                    // Not a 1-of-1 Safe: the module refuses to enable in-op, with this reason.
                    Err(revert) => {
                        return Err(Rejection::ChainScope { rule: Rule::NotEnabled, revert });
                    }
                }
            } else {
                Address::ZERO
            };
            let payment = safe::session::decode_session_payment(&op.call_data).map_err(|e| {
                ScopeViolation::MethodNotAllowed(format!(
                    "session: callData must be exactly executeSessionPayment ({e})"
                ))
            });
            (owner, op.signature.clone(), payment)
        }
        SessionHost::BiconomyModule(module) => {
            // The module lives in an account that exists; without code, AA20 answers.
            if !deployed {
                return Ok(());
            }
            let owner = net.session_module_owner(module, op.sender).await?;
            let payment =
                biconomy::decode_session_payment(&op.call_data, module).map_err(|e| match e {
                    biconomy::PaymentError::Shape(shape) => method_violation(&shape),
                    other => ScopeViolation::MethodNotAllowed(format!(
                        "session: batch must be exactly approve + settle + charge ({other})"
                    )),
                });
            // `session_host` routed it here because the envelope decodes and names the module.
            let signature = biconomy::decode_signature(&op.signature)
                .map(|m| m.module_signature)
                .unwrap_or_default();
            (owner, signature, payment)
        }
    };
    let decoded = SessionOpSignature::decode_for(&signature, op.sender, net.chain_id)?;
    let merchant = payment.as_ref().map(|p| p.settle.merchant).unwrap_or_default();
    let usage = net.stored_session(host, op.sender, decoded.session_id, merchant, deployed).await?;
    check_session_payment(op, payment, user_op_hash, &decoded, owner, &usage, head.timestamp)?;
    Ok(())
}

/// The owner an undeployed session account will have: `initCode` must call the configured
/// SessionKeyAccountFactory's `createAccount(owner, salt)`, and `getAddress(owner, salt)` must
/// be the sender — otherwise the grant's owner signature proves nothing about this account.
async fn owner_from_init_code(net: &Network, op: &UserOperation) -> Result<Address, Rejection> {
    let Some(factory) = op.factory() else {
        return Err(Rejection::InitCode(format!(
            "sender {} has no code and the op carries no initCode",
            op.sender
        )));
    };
    let Some(expected) = net.session_factory else {
        return Err(Rejection::InitCode(format!(
            "sender {} is not deployed and no session account factory is configured for eip155:{}",
            op.sender, net.chain_id
        )));
    };
    if factory != expected {
        return Err(Rejection::InitCode(format!(
            "initCode deploys through {factory}, not the session account factory {expected}"
        )));
    }
    let call = createAccountCall::abi_decode(op.init_code.get(20..).unwrap_or_default())
        .map_err(|_| Rejection::InitCode("initCode is not createAccount(owner, salt)".into()))?;
    let address = net.counterfactual_address(factory, call.owner, call.salt).await?;
    if address != op.sender {
        return Err(Rejection::InitCode(format!(
            "sender {} is not getAddress(owner, salt) = {address}",
            op.sender
        )));
    }
    Ok(call.owner)
}
