//! Getting a verified op onto the chain: through a bundler, or by bundling it ourselves.
//!
//! Both paths answer with a [`Submitted`]: the op [`Landed`] (read back from the chain), was
//! refused before it could land, or may still land (no receipt within the bound).

use std::{
    collections::{HashSet, VecDeque},
    time::Duration,
};

use alloy::{
    eips::eip1559::Eip1559Estimation,
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::{SolCall, SolEvent},
};
use tokio::sync::{mpsc, oneshot};
use x402_aa::UserOperation;
use x402_aa_contracts::EntryPoint::{self, EntryPointErrors, UserOperationEvent};
/// What the halted facilitator writes to stderr (the line its crash tests wait for).
pub use x402_aa_fault::HALT_MESSAGE;
use x402_aa_fault::HaltPoints;
use x402_aa_rpc::{BundlerClient, RpcError};

use crate::chain::{
    ChainError, EntryPointRevert, Landed, Network, bundler_log, receipt_log_in, revert_reason_in,
};
use crate::nonce::KeySender;

/// How a submission ended, as far as the facilitator can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Included on chain; `Landed` says whether the op succeeded.
    Landed(Landed),
    /// Refused (or unreachable) before inclusion. `maybe_sent`: the request may have reached
    /// the bundler or node anyway, so the op's fate must still be read from the chain.
    Refused {
        /// What refused it.
        message: String,
        /// The request may have been accepted despite the error.
        maybe_sent: bool,
    },
    /// The EntryPoint refused this op in validation (`FailedOp`, found by simulating the bundle
    /// before sending): `reason` is the EntryPoint's, `AAxx` code first. Nothing was sent.
    FailedOp {
        /// The EntryPoint's reason, `AAxx` first.
        reason: String,
    },
    /// The bundle probe ran the op: it validates, but its payment would not be recorded (its
    /// execution reverts, or its requestHash was settled before). Nothing was sent; the caller
    /// finds out why by checking the op alone.
    WouldNotSettle,
    /// Sent, but no receipt within the bound; it may still land.
    Pending {
        /// What bound ran out.
        message: String,
    },
}

/// The configured submission path of one network.
#[derive(Debug, Clone)]
pub enum Submitter {
    /// Through an ERC-4337 bundler's `eth_sendUserOperation`, polling for the receipt.
    Bundler {
        /// The bundler's JSON-RPC client.
        client: BundlerClient,
        /// How often to ask for the op's receipt.
        poll_interval: Duration,
    },
    /// The facilitator bundles itself: `handleOps` from its own key, batched.
    Direct(Batcher),
}

impl Submitter {
    /// Submits `op` and waits up to `wait` for it to land.
    pub async fn submit(
        &self,
        net: &Network,
        op: UserOperation,
        user_op_hash: B256,
        request_hash: B256,
        from_block: u64,
        wait: Duration,
    ) -> Submitted {
        match self {
            Self::Bundler { client, poll_interval } => {
                let job = BundlerJob { net, client, op, user_op_hash, request_hash, from_block };
                job.run(wait, *poll_interval).await
            }
            Self::Direct(batcher) => batcher.submit(op, user_op_hash, request_hash).await,
        }
    }

    /// Whether a submission runs the op's payment through the bundle probe before anything is
    /// sent (direct bundling on a node that answers probes), so the caller need not probe the op
    /// alone first.
    pub fn probes_before_sending(&self, net: &Network) -> bool {
        matches!(self, Self::Direct(_)) && net.probes_answered()
    }

    /// The facilitator's own address when it bundles (x402 `signers`).
    pub fn signer(&self) -> Option<Address> {
        match self {
            Self::Bundler { .. } => None,
            Self::Direct(b) => Some(b.beneficiary),
        }
    }
}

struct BundlerJob<'a> {
    net: &'a Network,
    client: &'a BundlerClient,
    op: UserOperation,
    user_op_hash: B256,
    request_hash: B256,
    from_block: u64,
}

impl BundlerJob<'_> {
    async fn run(self, wait: Duration, poll: Duration) -> Submitted {
        let net = self.net;
        match self.client.send_user_operation(&self.op, net.entry_point).await {
            Ok(hash) if hash != self.user_op_hash => tracing::warn!(
                target: "x402_aa::facilitator",
                ours = %self.user_op_hash, bundler = %hash,
                "bundler reports a different userOpHash; following ours"
            ),
            Ok(_) => {}
            Err(e) => {
                // A JSON-RPC or HTTP answer is a verdict: the bundler did not take the op. A
                // transport failure or a timeout may have delivered it all the same.
                let maybe_sent = matches!(e, RpcError::Transport { .. } | RpcError::Timeout { .. });
                return Submitted::Refused { message: e.to_string(), maybe_sent };
            }
        }
        let receipt = self.client.wait_for_receipt(self.user_op_hash, wait, poll).await;
        // The node is the authority on what landed; the bundler's receipt only says when to look.
        let landed =
            self.net.find_landed(self.user_op_hash, self.request_hash, Some(self.from_block)).await;
        match (receipt, landed) {
            (_, Ok(Some(landed))) => Submitted::Landed(landed),
            (Ok(r), _) => {
                let logs: Vec<_> =
                    r.logs.iter().chain(&r.receipt.logs).filter_map(bundler_log).collect();
                Submitted::Landed(Landed {
                    tx_hash: r.receipt.transaction_hash,
                    block_number: r.receipt.block_number,
                    success: r.success,
                    revert_reason: revert_reason_in(&logs, net.entry_point, self.user_op_hash)
                        .or(r.reason),
                    receipt_log: receipt_log_in(&logs, net.settlement, self.request_hash),
                })
            }
            (Err(e), _) => Submitted::Pending { message: e.to_string() },
        }
    }
}

/// Direct mode: a queue in front of one task that bundles ops into `handleOps` transactions
/// sent from the facilitator's key, with the facilitator as beneficiary.
///
/// An op goes out at once when no bundle is in flight; ops that arrive while one is share the
/// next (a positive `max_wait` also lets the first op of an idle task wait for company). A batch
/// holds at most `max_batch` ops, one per sender: SessionKeyAccount executes only the op of a
/// sender that validated last in a bundle (and ERC-7562 mempools allow one op per unstaked
/// sender per bundle), so a second op of the same sender waits for the next batch.
///
/// Before sending, the batch runs once in an `eth_call`: through the `VerifyProbe`'s
/// `probeBundle` once the node has answered a probe (it takes state overrides), which also says
/// per op whether its payment was recorded, so `/settle` need not probe each op on its own
/// first; else as a plain `handleOps`. An op the EntryPoint refuses (`FailedOp(i, reason)`) or
/// whose payment would not be recorded is answered and dropped, the rest run again. Batches go
/// out one at a time, so the key's nonce never races.
#[derive(Debug, Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
    beneficiary: Address,
    /// How long a caller waits for its op's outcome, queueing included.
    answer_within: Duration,
}

#[derive(Debug)]
struct Job {
    op: UserOperation,
    user_op_hash: B256,
    request_hash: B256,
    reply: oneshot::Sender<Submitted>,
}

/// Batching knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most ops in one `handleOps` (one per sender).
    pub max_batch: usize,
    /// How long an idle submitter's first op waits for company; zero sends at once.
    pub max_wait: Duration,
    /// How long to wait for a sent bundle's receipt before answering `Pending`.
    pub receipt_timeout: Duration,
}

impl Batcher {
    /// Starts the batching task, bundling with `sender`'s key (also the beneficiary). The task
    /// ends when the last `Batcher` clone is dropped and its queue is drained.
    pub fn spawn(net: Network, sender: KeySender, config: BatchConfig) -> Self {
        let beneficiary = sender.address;
        let (jobs, rx) = mpsc::channel(1024);
        // A batch ahead of ours may itself take the whole receipt bound.
        let answer_within = config.max_wait + config.receipt_timeout * 2 + net.rpc_timeout() * 4;
        let worker = Worker { net, sender, config, send_sync: Default::default() };
        tokio::spawn(worker.run(rx));
        Self { jobs, beneficiary, answer_within }
    }

    /// Where `handleOps` pays the bundle's gas refund: the sending key's address.
    pub fn beneficiary(&self) -> Address {
        self.beneficiary
    }

    async fn submit(&self, op: UserOperation, user_op_hash: B256, request_hash: B256) -> Submitted {
        let (reply, answer) = oneshot::channel();
        let job = Job { op, user_op_hash, request_hash, reply };
        if self.jobs.send(job).await.is_err() {
            return Submitted::Refused {
                message: "the direct-submission task has stopped".into(),
                maybe_sent: false,
            };
        }
        match tokio::time::timeout(self.answer_within, answer).await {
            Ok(Ok(submitted)) => submitted,
            Ok(Err(_)) => Submitted::Pending {
                message: "the direct-submission task stopped while the op was pending".into(),
            },
            // Still queued or in a slow bundle: it may yet be sent, so the chain decides.
            Err(_) => Submitted::Pending {
                message: format!("no bundle outcome within {:?}", self.answer_within),
            },
        }
    }
}

struct Worker {
    net: Network,
    /// Resynced after a send that may not have reached the node's pool, so a refused
    /// transaction leaves no gap for the next to wait behind. Its key is the beneficiary.
    sender: KeySender,
    config: BatchConfig,
    /// Whether the node takes `eth_sendRawTransactionSync` (EIP-7966: send and answer with the
    /// receipt), asked once.
    send_sync: tokio::sync::OnceCell<bool>,
}

impl Worker {
    /// Submits at once when idle; ops that arrive while a bundle is in flight queue up and go
    /// out together in the next one, so batching costs no latency and appears exactly when
    /// load does. A positive `max_wait` additionally lets the first op of an idle submitter
    /// wait for company (fewer, larger bundles where each transaction is expensive).
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        let max_batch = self.config.max_batch.max(1);
        let mut pending: VecDeque<Job> = VecDeque::new();
        let mut open = true;
        loop {
            if pending.is_empty() {
                if !open {
                    return;
                }
                match rx.recv().await {
                    Some(job) => pending.push_back(job),
                    None => return,
                }
            }
            // Whatever queued while the previous bundle was in flight joins without waiting.
            while open {
                match rx.try_recv() {
                    Ok(job) => pending.push_back(job),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                }
            }
            if !self.config.max_wait.is_zero() {
                let deadline = tokio::time::Instant::now() + self.config.max_wait;
                while open && distinct_senders(&pending) < max_batch {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => pending.push_back(job),
                        Ok(None) => open = false,
                        Err(_) => break,
                    }
                }
            }
            let batch = take_batch(&mut pending, max_batch);
            crate::metrics::queue_depth(pending.len() + rx.len());
            self.run_batch(batch).await;
        }
    }

    async fn run_batch(&self, mut jobs: Vec<Job>) {
        // Settlements run in their own tasks, so a closed reply means the task died: skip it.
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            return;
        }
        // The fees are read beside the bundle's probe rather than by the sending provider after
        // it: one round trip less between one block and the next, on the path every queued
        // payment waits on.
        let fees = tokio::time::timeout(
            self.net.rpc_timeout(),
            self.sender.provider.estimate_eip1559_fees(),
        );
        let (probed, fees) = tokio::join!(self.probe_until_sendable(jobs), fees);
        let Some(jobs) = probed else { return };
        match fees {
            Ok(Ok(fees)) => self.send(jobs, Some(fees)).await,
            // An answer without EIP-1559 fees: the sending provider's filler knows the other
            // ways to price the transaction.
            Ok(Err(_)) => self.send(jobs, None).await,
            // A node stalling on the fee read would stall the filler's read inside the send as
            // well, and the bundle, never sent, would be answered as maybe sent (`Pending`). So
            // nothing is sent: every caller learns why, and may try again.
            Err(_) => {
                crate::metrics::bundle(jobs.len(), "refused");
                let message =
                    format!("the node gave no fee estimate within {:?}", self.net.rpc_timeout());
                reply_all(jobs, |_| Submitted::Refused {
                    message: message.clone(),
                    maybe_sent: false,
                });
            }
        }
    }

    /// Probes `jobs` as one bundle, answering and dropping every op the probe refuses, until the
    /// rest would land and pay: those are returned to be sent (`None`: nothing is left, or they
    /// were answered already).
    async fn probe_until_sendable(&self, mut jobs: Vec<Job>) -> Option<Vec<Job>> {
        loop {
            if jobs.is_empty() {
                return None;
            }
            match self.simulate(&jobs).await {
                Simulated::Ok => break,
                Simulated::DoesNotSettle(mut indices) => {
                    indices.sort_unstable();
                    for index in indices.into_iter().rev() {
                        let job = jobs.remove(index);
                        let _ = job.reply.send(Submitted::WouldNotSettle);
                    }
                }
                Simulated::FailedOp { index, reason } if index < jobs.len() => {
                    let job = jobs.remove(index);
                    let _ = job.reply.send(Submitted::FailedOp { reason });
                }
                Simulated::FailedOp { reason, .. } | Simulated::Reverted(reason)
                    if jobs.len() > 1 =>
                {
                    // No op to blame: try each alone so one bad op cannot sink the others.
                    tracing::warn!(target: "x402_aa::facilitator", %reason, "bundle reverted; splitting");
                    for job in jobs {
                        Box::pin(self.run_batch(vec![job])).await;
                    }
                    return None;
                }
                Simulated::FailedOp { reason, .. } | Simulated::Reverted(reason) => {
                    reply_all(jobs, |_| Submitted::Refused {
                        message: format!("handleOps would revert: {reason}"),
                        maybe_sent: false,
                    });
                    return None;
                }
                Simulated::Unavailable(message) => {
                    reply_all(jobs, |_| Submitted::Refused {
                        message: message.clone(),
                        maybe_sent: false,
                    });
                    return None;
                }
            }
        }
        Some(jobs)
    }

    fn handle_ops_tx(&self, jobs: &[Job]) -> TransactionRequest {
        let call = EntryPoint::handleOpsCall {
            ops: jobs.iter().map(|j| (&j.op).into()).collect(),
            beneficiary: self.sender.address,
        };
        TransactionRequest::default()
            .with_from(self.sender.address)
            .with_to(self.net.entry_point)
            .with_input(call.abi_encode())
            .with_gas_limit(bundle_gas_limit(jobs.iter().map(|j| &j.op)))
    }

    /// The batch as a plain `handleOps` `eth_call` from the beneficiary.
    async fn simulate_plain(
        &self,
        jobs: &[Job],
    ) -> Result<Result<(), EntryPointRevert>, ChainError> {
        let tx = self.handle_ops_tx(jobs);
        Ok(self.net.entry_point_call("handleOps", tx).await?.map(|_| ()))
    }

    async fn simulate(&self, jobs: &[Job]) -> Simulated {
        let outcome = if self.net.probes_answered() {
            let ops = jobs.iter().map(|j| j.op.clone()).collect();
            let request_hashes = jobs.iter().map(|j| j.request_hash).collect();
            // The probe's own reads and its copy of the ops on top of the bundle's gas.
            let gas = bundle_gas_limit(jobs.iter().map(|j| &j.op))
                .saturating_add(100_000 + 20_000 * jobs.len() as u64);
            match self.net.probe_bundle(ops, request_hashes, self.sender.address, gas).await {
                Ok(Ok(settles)) if settles.len() == jobs.len() => {
                    let unpaid: Vec<usize> =
                        settles.iter().enumerate().filter(|(_, s)| !**s).map(|(i, _)| i).collect();
                    return if unpaid.is_empty() {
                        Simulated::Ok
                    } else {
                        Simulated::DoesNotSettle(unpaid)
                    };
                }
                Ok(Ok(settles)) => {
                    return Simulated::Reverted(format!(
                        "the bundle probe answered for {} ops, not {}",
                        settles.len(),
                        jobs.len()
                    ));
                }
                // The node refused the call itself (it no longer takes state overrides, say
                // after a failover; the network stopped relying on probes, so `/settle` checks
                // each op alone again): simulate the plain way.
                Ok(Err(EntryPointRevert::Undecoded { data: None, .. })) => {
                    self.simulate_plain(jobs).await
                }
                Ok(Err(revert)) => Ok(Err(revert)),
                Err(e) => Err(e),
            }
        } else {
            self.simulate_plain(jobs).await
        };
        match outcome {
            Err(e) => Simulated::Unavailable(e.to_string()),
            Ok(Ok(())) => Simulated::Ok,
            Ok(Err(EntryPointRevert::Decoded(e))) => match *e {
                EntryPointErrors::FailedOp(f) => {
                    let index = usize::try_from(f.opIndex).unwrap_or(usize::MAX);
                    Simulated::FailedOp { index, reason: f.reason }
                }
                other => Simulated::Reverted(format!("{other:?}")),
            },
            Ok(Err(other)) => Simulated::Reverted(other.describe()),
        }
    }

    async fn send(&self, jobs: Vec<Job>, fees: Option<Eip1559Estimation>) {
        let mut tx = self.handle_ops_tx(&jobs);
        if let Some(fees) = fees {
            tx = tx
                .with_max_fee_per_gas(fees.max_fee_per_gas)
                .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        }
        HALT_POINTS.reached("before_send").await;
        let sent = self.send_for_receipt(tx).await;
        if sent.is_err() {
            self.sender.resync().await;
        }
        let receipt = match sent {
            Ok(receipt) => receipt,
            Err(Unsent::Refused { message, maybe_sent }) => {
                crate::metrics::bundle(jobs.len(), "refused");
                let message = format!("sending handleOps failed: {message}");
                reply_all(jobs, |_| Submitted::Refused { message: message.clone(), maybe_sent });
                return;
            }
            Err(Unsent::NoReceipt { tx_hash }) => {
                crate::metrics::bundle(jobs.len(), "pending");
                let tx = tx_hash
                    .map_or_else(|| "transaction".to_owned(), |h| format!("transaction {h}"));
                let message = format!(
                    "handleOps {tx} has no receipt after {:?}",
                    self.config.receipt_timeout
                );
                reply_all(jobs, |_| Submitted::Pending { message: message.clone() });
                return;
            }
        };
        let tx_hash = receipt.transaction_hash;
        if !receipt.status() {
            crate::metrics::bundle(jobs.len(), "reverted");
            let message = format!("handleOps transaction {tx_hash} reverted");
            reply_all(jobs, |_| Submitted::Refused { message: message.clone(), maybe_sent: false });
            return;
        }
        HALT_POINTS.reached("after_receipt").await;
        crate::metrics::bundle(jobs.len(), "landed");
        let block_number = receipt.block_number.unwrap_or_default();
        let logs: Vec<alloy::primitives::Log> =
            receipt.inner.logs().iter().map(|l| l.inner.clone()).collect();
        let ep = self.net.entry_point;
        reply_all(jobs, |job| {
            let event = logs
                .iter()
                .filter(|l| l.address == ep)
                .filter_map(|l| UserOperationEvent::decode_log(l).ok())
                .find(|e| e.data.userOpHash == job.user_op_hash);
            match event {
                Some(event) => Submitted::Landed(Landed {
                    tx_hash,
                    block_number,
                    success: event.data.success,
                    revert_reason: revert_reason_in(&logs, ep, job.user_op_hash),
                    receipt_log: receipt_log_in(&logs, self.net.settlement, job.request_hash),
                }),
                None => Submitted::Pending {
                    message: format!("handleOps {tx_hash} carries no event for this op"),
                },
            }
        });
    }

    /// Sends the bundle and reads its receipt: in one call where the node answers
    /// `eth_sendRawTransactionSync` (anvil does; no polling, so no gap between the block and our
    /// reading it), else by sending and polling.
    async fn send_for_receipt(
        &self,
        tx: TransactionRequest,
    ) -> Result<alloy::rpc::types::TransactionReceipt, Unsent> {
        if self.node_sends_sync().await {
            let sent = tokio::time::timeout(
                self.config.receipt_timeout,
                self.sender.provider.send_transaction_sync(tx),
            )
            .await;
            return match sent {
                Ok(Ok(receipt)) => {
                    HALT_POINTS.reached("after_send").await;
                    Ok(receipt)
                }
                Ok(Err(e)) => match e.tx_hash_data() {
                    // Accepted, but the node stopped waiting for the block: poll for it.
                    Some(tx_hash) => {
                        HALT_POINTS.reached("after_send").await;
                        self.wait_for_receipt(tx_hash)
                            .await
                            .ok_or(Unsent::NoReceipt { tx_hash: Some(tx_hash) })
                    }
                    None => Err(Unsent::refused(&e)),
                },
                // Whether it was accepted is unknown: the chain (the op's event) decides later.
                Err(_) => Err(Unsent::NoReceipt { tx_hash: None }),
            };
        }
        let sent =
            tokio::time::timeout(self.net.rpc_timeout(), self.sender.provider.send_transaction(tx));
        let tx_hash = match sent.await {
            Ok(Ok(pending)) => *pending.tx_hash(),
            Ok(Err(e)) => return Err(Unsent::refused(&e)),
            // Whether it was accepted is unknown: the chain (the op's event) decides later.
            Err(_) => return Err(Unsent::NoReceipt { tx_hash: None }),
        };
        HALT_POINTS.reached("after_send").await;
        self.wait_for_receipt(tx_hash).await.ok_or(Unsent::NoReceipt { tx_hash: Some(tx_hash) })
    }

    /// Asks the node once whether it has `eth_sendRawTransactionSync`, with bytes no node
    /// accepts as a transaction: asking with a real one would take a nonce from the sender's
    /// cache and leave a gap when the answer is "no such method".
    async fn node_sends_sync(&self) -> bool {
        let ask = || async {
            let answer = self
                .sender
                .provider
                .raw_request::<_, serde_json::Value>(
                    std::borrow::Cow::Borrowed("eth_sendRawTransactionSync"),
                    ("0x",),
                )
                .await;
            match answer {
                Ok(_) => Ok(true),
                Err(e) => match e.as_error_resp() {
                    Some(refusal) if refusal.code == -32601 => {
                        tracing::info!(target: "x402_aa::facilitator", "the node has no eth_sendRawTransactionSync: sending and polling for receipts");
                        Ok(false)
                    }
                    Some(_) => Ok(true),
                    // Unreachable now: send the usual way and ask again next time.
                    None => Err(()),
                },
            }
        };
        self.send_sync.get_or_try_init(ask).await.copied().unwrap_or(false)
    }

    /// Polls for the receipt, fast at first, within the bound.
    ///
    /// The first retry comes after 1 ms: an automining node (a devnet, a rollup sequencer that
    /// answers in milliseconds) has usually mined by then, and the next bundle waits behind this
    /// receipt, so a coarse first sleep would set both the single-payment latency and the
    /// throughput. The delay doubles to 500 ms, so a chain with seconds-long blocks sees about
    /// ten extra cheap reads in its first second.
    async fn wait_for_receipt(
        &self,
        tx_hash: B256,
    ) -> Option<alloy::rpc::types::TransactionReceipt> {
        let deadline = tokio::time::Instant::now() + self.config.receipt_timeout;
        let mut delay = Duration::from_millis(1);
        loop {
            let ask = self.net.provider().get_transaction_receipt(tx_hash);
            if let Ok(Ok(Some(receipt))) = tokio::time::timeout_at(deadline, ask).await {
                return Some(receipt);
            }
            if tokio::time::Instant::now() + delay >= deadline {
                return None;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

/// The facilitator's halt points for its crash tests (see [`x402_aa_fault`]), named by
/// `X402_AA_FACILITATOR_HALT_AT`: before the bundle is sent, after it was sent, after its receipt
/// was read but before any caller (and so the registry) learnt of it.
pub static HALT_POINTS: HaltPoints =
    HaltPoints::new("X402_AA_FACILITATOR_HALT_AT", &["before_send", "after_send", "after_receipt"]);

/// Why a bundle has no receipt to read.
enum Unsent {
    /// The node refused it (`maybe_sent`: or the answer was lost and it may have been accepted).
    Refused { message: String, maybe_sent: bool },
    /// Sent (or maybe sent), but no receipt within the bound; the hash when known.
    NoReceipt { tx_hash: Option<B256> },
}

impl Unsent {
    /// A failed send: an error answer means the node refused the transaction; anything else (a
    /// timeout, a dropped connection) may hide a transaction that was accepted.
    fn refused(e: &alloy::transports::TransportError) -> Self {
        Self::Refused { message: e.to_string(), maybe_sent: e.as_error_resp().is_none() }
    }
}

enum Simulated {
    Ok,
    /// These ops (indices into the batch) validate, but their payments would not be recorded.
    DoesNotSettle(Vec<usize>),
    FailedOp {
        index: usize,
        reason: String,
    },
    Reverted(String),
    Unavailable(String),
}

fn reply_all(jobs: Vec<Job>, mut outcome: impl FnMut(&Job) -> Submitted) {
    for job in jobs {
        let answer = outcome(&job);
        let _ = job.reply.send(answer);
    }
}

fn distinct_senders(jobs: &VecDeque<Job>) -> usize {
    jobs.iter().map(|j| j.op.sender).collect::<HashSet<_>>().len()
}

/// Up to `max` jobs with distinct senders, in arrival order; the rest stay queued.
fn take_batch(pending: &mut VecDeque<Job>, max: usize) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut senders = HashSet::new();
    let mut rest = VecDeque::new();
    for job in pending.drain(..) {
        if batch.len() < max && senders.insert(job.op.sender) {
            batch.push(job);
        } else {
            rest.push_back(job);
        }
    }
    *pending = rest;
    batch
}

/// Enough gas for the EntryPoint to honour every op's limits (verification up to three times
/// with a paymaster: account, paymaster, postOp) plus per-op and per-bundle overhead. Estimating
/// instead is unsafe: a bundle whose inner call runs out of gas still succeeds.
fn bundle_gas_limit<'a>(ops: impl Iterator<Item = &'a UserOperation>) -> u64 {
    let per_op = ops.fold(U256::ZERO, |acc, op| {
        let multiplier = if op.paymaster_and_data.is_empty() { 1 } else { 3 };
        acc.saturating_add(op.call_gas_limit)
            .saturating_add(op.verification_gas_limit.saturating_mul(U256::from(multiplier)))
            .saturating_add(op.pre_verification_gas)
            .saturating_add(U256::from(60_000))
    });
    u64::try_from(per_op.saturating_add(U256::from(100_000))).unwrap_or(u64::MAX).min(25_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(sender: u8) -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            op: UserOperation { sender: Address::repeat_byte(sender), ..Default::default() },
            user_op_hash: B256::ZERO,
            request_hash: B256::ZERO,
            reply,
        }
    }

    #[test]
    fn batches_hold_one_op_per_sender() {
        let mut pending: VecDeque<Job> = [1, 2, 1, 3, 2, 4].into_iter().map(job).collect();
        let batch = take_batch(&mut pending, 8);
        let senders: Vec<u8> = batch.iter().map(|j| j.op.sender[0]).collect();
        assert_eq!(senders, [1, 2, 3, 4]);
        let rest: Vec<u8> = pending.iter().map(|j| j.op.sender[0]).collect();
        assert_eq!(rest, [1, 2]);
        let batch = take_batch(&mut pending, 1);
        assert_eq!(batch.len(), 1);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn gas_limit_is_bounded() {
        let op = UserOperation { call_gas_limit: U256::MAX, ..Default::default() };
        assert_eq!(bundle_gas_limit([&op].into_iter()), 25_000_000);
        let small = UserOperation { call_gas_limit: U256::from(1), ..Default::default() };
        assert_eq!(bundle_gas_limit([&small].into_iter()), 160_001);
    }
}
