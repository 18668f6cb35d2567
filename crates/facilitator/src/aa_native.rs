//! The aa-native scheme on one network: `/verify`, the idempotent `/settle`, and recovery.
//!
//! `/settle` of a payment, in order:
//! 1. the stateless checks of `/verify` (steps 1–6), so garbage never reaches the registry;
//! 2. duplicates of a settlement this instance is already running wait for its outcome and
//!    answer the same (keyed by requestHash and userOpHash);
//! 3. the registry: a settled or finally failed row for the same op answers with its recorded
//!    response; a row `in_flight` elsewhere answers `in_flight`; a submitted failure whose op
//!    may have landed is first resolved from the chain;
//! 4. claim the requestHash `in_flight` (atomic; the loser answers as in 3);
//! 5. re-verify against the chain (replay, session scope, simulation); a `replay` because this
//!    very op already landed through someone else's bundle is answered as its settlement;
//! 6. mark the row submitted, submit (bundler or direct), wait within the bound;
//! 7. record `settled` / `failed` (`user_op_failed` + revert reason, `bundler_error`,
//!    `receipt_timeout`) with the response, and answer it.
//!
//! The work after step 2 runs in its own task, so a client hanging up cannot abandon a claim
//! half-way.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use alloy::primitives::{Address, B256};
use serde_json::{Value, json};
use tokio::sync::watch;
use x402_aa::x402::{SettlementResponse, network};
use x402_aa_policy::Rule;

use crate::{
    chain::{Landed, Network},
    reason::Rejection,
    store::{Claim, ClaimOutcome, Finish, Record, Status, Store, now_ms},
    submit::{Submitted, Submitter},
    verify::{self, Request},
};

/// aa-native on one network.
#[derive(Debug)]
pub struct AaNative {
    net: Network,
    store: Arc<dyn Store>,
    submitter: Submitter,
    receipt_timeout: Duration,
    instance_id: String,
    /// Settlements this instance is running, by (requestHash, userOpHash).
    running: Mutex<HashMap<(B256, B256), Outcome>>,
}

/// Where duplicates of a running settlement wait for its answer.
type Outcome = watch::Receiver<Option<SettlementResponse>>;

/// What a recovery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Rows examined.
    pub examined: usize,
    /// Rows whose op was found on chain and recorded (settled or failed).
    pub resolved: usize,
    /// `in_flight` rows with no trace on chain, recorded as failed and left claimable.
    pub released: usize,
}

impl AaNative {
    /// The aa-native scheme on `net`, recording in `store` and submitting through `submitter`.
    pub fn new(
        net: Network,
        store: Arc<dyn Store>,
        submitter: Submitter,
        receipt_timeout: Duration,
        instance_id: String,
    ) -> Self {
        Self {
            net,
            store,
            submitter,
            receipt_timeout,
            instance_id,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The network this instance serves.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Its EIP-155 chain id.
    pub fn chain_id(&self) -> u64 {
        self.net.chain_id
    }

    /// The facilitator's own address on this network, when it bundles.
    pub fn signer(&self) -> Option<Address> {
        self.submitter.signer()
    }

    /// `extra` advertised in `/supported`, as merchants put it in their requirements.
    pub fn supported_extra(&self) -> Value {
        json!({
            "settlementContract": self.net.settlement.to_checksum(None),
            "entryPoint": self.net.entry_point.to_checksum(None),
        })
    }

    /// `/verify`: `{isValid: true, payer}` or `{isValid: false, invalidReason, invalidMessage,
    /// payer?, details?}`.
    pub async fn verify(&self, raw: &str) -> Value {
        let req = match verify::parse(raw) {
            Ok(req) => req,
            Err(r) => return invalid(&r, None),
        };
        let payer = req.payer();
        let outcome = async {
            let kind = self.net.account_kind(req.op()).await?;
            let decoded = verify::check_static_for(&self.net, &req, kind).await?;
            verify::check_chain(&self.net, &*self.store, &req, &decoded, true).await
        };
        match outcome.await {
            Ok(_) => json!({ "isValid": true, "payer": payer.to_checksum(None) }),
            Err(r) => invalid(&r, Some(payer)),
        }
    }

    /// `/settle`: the x402 `SettlementResponse`. Never panics on input; every failure is a
    /// `success: false` answer with a stable `errorReason`.
    pub async fn settle(self: &Arc<Self>, raw: &str) -> SettlementResponse {
        let req = match verify::parse(raw) {
            Ok(req) => req,
            Err(r) => return self.failure(&r, None),
        };
        let payer = req.payer();
        let decoded = match self.net.account_kind(req.op()).await {
            Ok(kind) => verify::check_static_for(&self.net, &req, kind).await,
            Err(e) => Err(e.into()),
        };
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(r) => return self.failure(&r, Some(payer)),
        };
        let user_op_hash = req.op().hash(self.net.entry_point, self.net.chain_id);
        let key = (req.request_hash(), user_op_hash);

        let leader = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            match running.get(&key) {
                Some(rx) => Err(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    running.insert(key, rx);
                    Ok(tx)
                }
            }
        };
        match leader {
            Ok(tx) => {
                let this = self.clone();
                let task = tokio::spawn(async move {
                    let _running = Running { aa: &this, key };
                    let response = this.settle_exclusively(&req, &decoded, user_op_hash).await;
                    let _ = tx.send(Some(response.clone()));
                    response
                });
                task.await.unwrap_or_else(|e| {
                    self.failure(&Rejection::Internal(format!("settlement task: {e}")), Some(payer))
                })
            }
            Err(mut rx) => {
                // Wait as long as the leader may: its checks, submission and receipt bound.
                let bound = self.receipt_timeout + self.net.rpc_timeout() * 6;
                match tokio::time::timeout(bound, rx.wait_for(Option::is_some)).await {
                    Ok(Ok(answer)) => answer
                        .clone()
                        .unwrap_or_else(|| self.failure(&Rejection::InFlight, Some(payer))),
                    Ok(Err(_)) => self.failure(
                        &Rejection::Internal("the settlement this request joined failed".into()),
                        Some(payer),
                    ),
                    Err(_) => self.failure(&Rejection::InFlight, Some(payer)),
                }
            }
        }
    }

    /// Steps 3–7, run by the one task that settles `key` in this instance.
    async fn settle_exclusively(
        &self,
        req: &Request,
        decoded: &x402_aa::DecodedPayment,
        user_op_hash: B256,
    ) -> SettlementResponse {
        let (chain_id, request_hash, payer) = (self.net.chain_id, req.request_hash(), req.payer());
        match self.store.get(chain_id, request_hash).await {
            Err(e) => return self.failure(&e.into(), Some(payer)),
            Ok(Some(row)) => {
                if let Some(answer) = self.answer_existing(row, user_op_hash, payer).await {
                    return answer;
                }
            }
            Ok(None) => {}
        }

        // Where to look for the op if its answer is lost: any block already seen will do.
        let from_block = match self.net.block_lower_bound().await {
            Ok(number) => number,
            Err(e) => return self.failure(&e.into(), Some(payer)),
        };
        let claim = Claim {
            chain_id,
            request_hash,
            user_op_hash,
            payer,
            from_block,
            owner: self.instance_id.clone(),
            now_ms: now_ms(),
        };
        match self.store.claim(&claim).await {
            Err(e) => return self.failure(&e.into(), Some(payer)),
            Ok(ClaimOutcome::Existing(row)) => {
                return match self.answer_existing(*row, user_op_hash, payer).await {
                    Some(answer) => answer,
                    None => self.failure(&Rejection::InFlight, Some(payer)),
                };
            }
            Ok(ClaimOutcome::Claimed) => {}
        }

        // The direct submitter runs the whole bundle through the probe before sending, which
        // establishes what probing this op alone here would: skip the extra run of the EVM.
        let probed_with_bundle = self.submitter.probes_before_sending(&self.net);
        if !probed_with_bundle
            && let Err(r) = verify::check_chain(&self.net, &*self.store, req, decoded, false).await
        {
            return self.refuse(req, user_op_hash, r).await;
        }
        if let Err(e) =
            self.store.mark_submitted(chain_id, request_hash, user_op_hash, now_ms()).await
        {
            return self
                .record_failure(request_hash, user_op_hash, payer, &e.into(), false, None)
                .await;
        }
        let submit = || {
            self.submitter.submit(
                &self.net,
                req.op().clone(),
                user_op_hash,
                request_hash,
                claim.from_block,
                self.receipt_timeout,
            )
        };
        let mut submitted = submit().await;
        let refused_unchecked = match &submitted {
            Submitted::WouldNotSettle => true,
            Submitted::FailedOp { .. } => probed_with_bundle,
            _ => false,
        };
        if refused_unchecked {
            // The bundle's run refused it before anything was sent: say why in the words
            // `/verify` would use, from the op checked alone.
            if let Err(r) = verify::check_chain(&self.net, &*self.store, req, decoded, false).await
            {
                return self.refuse(req, user_op_hash, r).await;
            }
            // Alone it pays: another op of that bundle took what it needed (its requestHash, a
            // shared balance). Nothing was sent; the next bundle decides.
            if submitted == Submitted::WouldNotSettle {
                submitted = submit().await;
            }
        }
        self.record_submitted(request_hash, user_op_hash, payer, submitted).await
    }

    /// Records and answers a refusal of `req` found before anything was sent, unless the refusal
    /// is a replay of this very op, landed by someone else.
    async fn refuse(&self, req: &Request, user_op_hash: B256, r: Rejection) -> SettlementResponse {
        let (request_hash, payer) = (req.request_hash(), req.payer());
        if matches!(r, Rejection::Replay(_))
            && let Ok(Some(landed)) = self.net.find_landed(user_op_hash, request_hash, None).await
            && landed.success
        {
            // This very op was bundled by someone else first (anyone who saw the payload can
            // submit it): the payment happened exactly as signed, so it is this payment's
            // settlement, not a replay. Answering `replay` would leave the payer charged and
            // the merchant refusing to serve what it was paid for.
            return self.record_landed(request_hash, user_op_hash, payer, &landed).await;
        }
        self.record_failure(request_hash, user_op_hash, payer, &r, false, None).await
    }

    /// The answer a registry row already gives to a request for `user_op_hash` from `payer`,
    /// or `None` when the caller may claim it.
    async fn answer_existing(
        &self,
        row: Record,
        user_op_hash: B256,
        payer: Address,
    ) -> Option<SettlementResponse> {
        let payer = Some(payer);
        match row.status {
            Status::Settled if row.user_op_hash == user_op_hash => Some(self.recorded(&row)),
            Status::Settled => Some(self.failure(
                &Rejection::Replay(format!(
                    "requestHash {} was settled by another UserOperation",
                    row.request_hash
                )),
                payer,
            )),
            Status::InFlight => Some(self.failure(&Rejection::InFlight, payer)),
            Status::Failed => {
                if row.submitted && row.retryable {
                    // The op may have landed after we gave up on it: the chain decides.
                    if let Ok(Some(landed)) = self
                        .net
                        .find_landed(row.user_op_hash, row.request_hash, Some(row.from_block))
                        .await
                    {
                        let settled = landed.success;
                        let answer = self
                            .record_submitted(
                                row.request_hash,
                                row.user_op_hash,
                                row.payer,
                                Submitted::Landed(landed),
                            )
                            .await;
                        if row.user_op_hash == user_op_hash {
                            return Some(answer);
                        }
                        // Another op's outcome: if it paid, this one is a replay; if it
                        // reverted, the requestHash is still open for this op.
                        return settled.then(|| {
                            self.failure(
                                &Rejection::Replay(format!(
                                    "requestHash {} was settled by another UserOperation",
                                    row.request_hash
                                )),
                                payer,
                            )
                        });
                    }
                }
                (!row.retryable && row.user_op_hash == user_op_hash).then(|| self.recorded(&row))
            }
        }
    }

    /// Records how a submission ended and answers it.
    async fn record_submitted(
        &self,
        request_hash: B256,
        user_op_hash: B256,
        payer: Address,
        submitted: Submitted,
    ) -> SettlementResponse {
        match submitted {
            Submitted::Landed(landed) => {
                self.record_landed(request_hash, user_op_hash, payer, &landed).await
            }
            Submitted::Refused { message, maybe_sent } => {
                let r = Rejection::Bundler(message);
                self.record_failure(request_hash, user_op_hash, payer, &r, maybe_sent, None).await
            }
            Submitted::FailedOp { reason } => {
                let r = failed_op_refusal(reason);
                self.record_failure(request_hash, user_op_hash, payer, &r, false, None).await
            }
            Submitted::WouldNotSettle => {
                let r = Rejection::entry_point_refusal(
                    "the op runs but its settle does not record the payment".to_owned(),
                );
                self.record_failure(request_hash, user_op_hash, payer, &r, false, None).await
            }
            Submitted::Pending { message } => {
                let r = Rejection::ReceiptTimeout(message);
                self.record_failure(request_hash, user_op_hash, payer, &r, true, None).await
            }
        }
    }

    async fn record_landed(
        &self,
        request_hash: B256,
        user_op_hash: B256,
        payer: Address,
        landed: &Landed,
    ) -> SettlementResponse {
        let failure = if !landed.success {
            Some(format!(
                "UserOperation reverted in transaction {}: {}",
                landed.tx_hash,
                landed.revert_reason.as_deref().unwrap_or("no revert reason")
            ))
        } else {
            match &landed.receipt_log {
                None => Some(format!(
                    "transaction {} carries no ReceiptLog for requestHash {request_hash}",
                    landed.tx_hash
                )),
                Some(log) if log.payer != payer => Some(format!(
                    "ReceiptLog for requestHash {request_hash} names payer {}, not {payer}",
                    log.payer
                )),
                Some(_) => None,
            }
        };
        if let Some(message) = failure {
            let r = Rejection::UserOpFailed(message);
            return self
                .record_failure(request_hash, user_op_hash, payer, &r, true, Some(landed))
                .await;
        }
        let response = SettlementResponse::success(self.net.chain_id, payer, landed.tx_hash);
        let finish = Finish {
            status: Status::Settled,
            reason: None,
            message: None,
            retryable: false,
            submitted: true,
            tx_hash: Some(landed.tx_hash),
            block_number: Some(landed.block_number),
            response: serde_json::to_string(&response).ok(),
            now_ms: now_ms(),
        };
        if let Err(e) =
            self.store.finish(self.net.chain_id, request_hash, user_op_hash, &finish).await
        {
            // Settled on chain all the same: answer success; recovery re-reads the chain.
            tracing::error!(
                target: "x402_aa::facilitator",
                %request_hash, error = %e, "settled, but the registry did not record it"
            );
        }
        tracing::info!(
            target: "x402_aa::facilitator",
            chain_id = self.net.chain_id, %request_hash, %user_op_hash, tx = %landed.tx_hash,
            "settled"
        );
        response
    }

    async fn record_failure(
        &self,
        request_hash: B256,
        user_op_hash: B256,
        payer: Address,
        r: &Rejection,
        submitted: bool,
        landed: Option<&Landed>,
    ) -> SettlementResponse {
        let response = self.failure(r, Some(payer));
        let finish = Finish {
            status: Status::Failed,
            reason: Some(r.reason().to_owned()),
            message: Some(r.to_string()),
            retryable: r.is_retryable(),
            submitted,
            tx_hash: landed.map(|l| l.tx_hash),
            block_number: landed.map(|l| l.block_number),
            response: serde_json::to_string(&response).ok(),
            now_ms: now_ms(),
        };
        if let Err(e) =
            self.store.finish(self.net.chain_id, request_hash, user_op_hash, &finish).await
        {
            tracing::error!(
                target: "x402_aa::facilitator",
                %request_hash, error = %e, "could not record a failed settlement"
            );
        }
        tracing::info!(
            target: "x402_aa::facilitator",
            chain_id = self.net.chain_id, %request_hash, reason = r.reason(), message = %r,
            "settlement failed"
        );
        response
    }

    /// The recorded answer of a final row.
    fn recorded(&self, row: &Record) -> SettlementResponse {
        if let Some(response) = row.response.as_deref().and_then(|r| serde_json::from_str(r).ok()) {
            return response;
        }
        match (row.status, row.tx_hash) {
            (Status::Settled, Some(tx)) => SettlementResponse::success(row.chain_id, row.payer, tx),
            _ => SettlementResponse {
                success: false,
                error_reason: row.reason.clone(),
                error_message: row.message.clone(),
                payer: Some(row.payer.to_checksum(None)),
                transaction: String::new(),
                network: network(row.chain_id),
                amount: None,
                extensions: None,
            },
        }
    }

    fn failure(&self, r: &Rejection, payer: Option<Address>) -> SettlementResponse {
        SettlementResponse {
            success: false,
            error_reason: Some(r.reason().to_owned()),
            error_message: Some(r.to_string()),
            payer: payer.map(|p| p.to_checksum(None)),
            transaction: String::new(),
            network: network(self.net.chain_id),
            amount: None,
            extensions: None,
        }
    }

    /// Resolves rows whose fate is open: this instance's `in_flight` rows (a crash or restart
    /// left them), anyone's `in_flight` rows older than `stale_after`, and submitted failures
    /// whose op may since have landed. The chain decides: the op's `UserOperationEvent` (found
    /// by userOpHash) records it settled or failed. An `in_flight` row without one is recorded
    /// `receipt_timeout` (if it was submitted) or `internal_error` (if the crash came first), both
    /// claimable again, so nothing stays `in_flight` and nothing settles twice.
    pub async fn recover(&self, stale_after: Duration) -> Result<Recovery, Rejection> {
        let stale_ms = i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX);
        let rows = self
            .store
            .unresolved(self.net.chain_id, &self.instance_id, now_ms().saturating_sub(stale_ms))
            .await?;
        let mut report = Recovery::default();
        for row in rows {
            let busy = self
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&(row.request_hash, row.user_op_hash));
            if busy {
                continue;
            }
            report.examined += 1;
            let landed = match self
                .net
                .find_landed(row.user_op_hash, row.request_hash, Some(row.from_block))
                .await
            {
                Ok(landed) => landed,
                Err(e) => {
                    tracing::warn!(
                        target: "x402_aa::facilitator",
                        request_hash = %row.request_hash, error = %e, "recovery: chain lookup failed"
                    );
                    continue;
                }
            };
            if let Some(landed) = landed {
                self.record_submitted(
                    row.request_hash,
                    row.user_op_hash,
                    row.payer,
                    Submitted::Landed(landed),
                )
                .await;
                report.resolved += 1;
                continue;
            }
            if row.status != Status::InFlight {
                continue;
            }
            let Ok(settled) = self.net.is_settled(row.request_hash).await else { continue };
            let r = if settled {
                Rejection::Replay(format!(
                    "requestHash {} was settled by another UserOperation",
                    row.request_hash
                ))
            } else if row.submitted {
                Rejection::ReceiptTimeout(format!(
                    "recovered after a restart: UserOperation {} is not on chain yet; it may still land",
                    row.user_op_hash
                ))
            } else {
                Rejection::Internal("interrupted before submission; safe to retry".into())
            };
            self.record_failure(
                row.request_hash,
                row.user_op_hash,
                row.payer,
                &r,
                row.submitted,
                None,
            )
            .await;
            report.released += 1;
        }
        if report.examined > 0 {
            tracing::info!(
                target: "x402_aa::facilitator",
                chain_id = self.net.chain_id, ?report, "recovered open settlements"
            );
        }
        Ok(report)
    }
}

/// Removes a running settlement's entry however its task ends.
struct Running<'a> {
    aa: &'a AaNative,
    key: (B256, B256),
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.aa.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
    }
}

/// A `/verify` refusal as JSON.
fn invalid(r: &Rejection, payer: Option<Address>) -> Value {
    let mut body = json!({
        "isValid": false,
        "invalidReason": r.reason(),
        "invalidMessage": r.to_string(),
    });
    if let Some(payer) = payer {
        body["payer"] = Value::String(payer.to_checksum(None));
    }
    if let Some(details) = r.details() {
        body["details"] = details;
    }
    body
}

/// The EntryPoint refused the op while the bundle was simulated. An account's session revert
/// that `/verify` could not predict (several replicas' ops racing for the last of a cap) answers
/// the rule's own reason (`spend_cap_exceeded`), as `/verify` and the SDK name it; any other
/// refusal stays `bundler_error`.
fn failed_op_refusal(reason: String) -> Rejection {
    match Rule::from_entry_point(&reason) {
        Some(rule) => Rejection::ChainScope { rule, revert: reason },
        None => Rejection::Bundler(format!("EntryPoint refused the op: FailedOp({reason})")),
    }
}
