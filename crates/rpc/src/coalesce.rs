//! A node client whose concurrent requests travel as JSON-RPC batches.
//!
//! Each HTTP request costs the node (and us) a connection turn, routing, parsing and a task, and
//! on anvil that overhead is larger than a cheap `eth_call` itself. A payment's reads are mostly
//! independent (the EntryPoint nonce, the gas price, the session's usage), and a busy facilitator
//! or paymaster reads for many payments at once. This transport sends whatever its callers issue
//! in the same turn of the runtime as one batch, and when `max_in_flight` requests are already on
//! the wire, it queues the next ones and sends them together when a slot frees. Nothing waits on
//! a timer: an idle client sends at once.
//!
//! Every caller still gets its own answer: responses are matched to requests by id, and where a
//! node refuses or mangles a batch (some providers take none, or cap its size), the requests are
//! resent one by one, so errors are the node's own, never a batch-wide one.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    task,
    time::Duration,
};

use alloy::{
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::{
        client::RpcClient,
        json_rpc::{Id, RequestPacket, Response, ResponsePacket, SerializedRequest},
    },
    transports::{
        TransportError, TransportErrorKind, TransportFut,
        http::{Http, reqwest},
        utils::guess_local_url,
    },
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tower::Service;

use crate::fold;

/// Requests on the wire at once before new ones queue (and so batch): enough to keep a remote
/// node's latency hidden, few enough that a loaded service sends batches, not a request storm.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// The most requests in one batch. Public providers cap batches (commonly 100 to 1000); the
/// larger part is sent as further batches.
pub const DEFAULT_MAX_BATCH: usize = 50;

type Reply = oneshot::Sender<Result<Response, TransportError>>;

/// The HTTP transport that batches concurrent requests (see the module docs). Build a client
/// with [`coalescing_provider`]: one transport must serve one [`RpcClient`], whose ids are unique.
#[derive(Clone)]
pub struct CoalescingHttp {
    inner: Arc<Inner>,
}

struct Inner {
    http: Http<reqwest::Client>,
    queue: Mutex<Vec<(SerializedRequest, Reply)>>,
    in_flight: Arc<Semaphore>,
    max_batch: usize,
    /// Folds the node refused in a row ([`crate::fold`]): at [`fold::REFUSALS_TO_STOP`], plain
    /// `eth_call`s go as they are from then on (the node takes no state overrides).
    fold_refusals: AtomicUsize,
}

impl fmt::Debug for CoalescingHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalescingHttp")
            .field("url", &self.inner.http.url())
            .field("max_batch", &self.inner.max_batch)
            .finish_non_exhaustive()
    }
}

impl CoalescingHttp {
    /// A transport to `url` whose HTTP requests give up after `timeout`: a stalled node must not
    /// hold the in-flight slots, and with them every later request, for ever.
    pub fn new(url: reqwest::Url, timeout: Duration) -> Self {
        Self::with_limits(url, timeout, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_BATCH)
    }

    /// [`Self::new`] with other limits; `max_in_flight` and `max_batch` are at least 1.
    pub fn with_limits(
        url: reqwest::Url,
        timeout: Duration,
        max_in_flight: usize,
        max_batch: usize,
    ) -> Self {
        let client = bounded_http_client(timeout);
        Self {
            inner: Arc::new(Inner {
                http: Http::with_client(client, url),
                queue: Mutex::new(Vec::new()),
                in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
                max_batch: max_batch.max(1),
                fold_refusals: AtomicUsize::new(0),
            }),
        }
    }
}

/// An HTTP client whose requests give up after `timeout`, for a provider whose callers may not
/// all bound what they wait for: a stalled node must not hold a request for ever.
pub fn bounded_http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap_or_default()
}

/// A provider for `url` over [`CoalescingHttp`] with the default limits.
pub fn coalescing_provider(url: reqwest::Url, timeout: Duration) -> DynProvider {
    let local = guess_local_url(url.as_str());
    let transport = CoalescingHttp::new(url, timeout);
    ProviderBuilder::new().connect_client(RpcClient::new(transport, local)).erased()
}

impl Service<RequestPacket> for CoalescingHttp {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut task::Context<'_>) -> task::Poll<Result<(), Self::Error>> {
        task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, packet: RequestPacket) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (single, requests) = match packet {
                RequestPacket::Single(request) => (true, vec![request]),
                RequestPacket::Batch(requests) => (false, requests),
            };
            let mut waiting = Vec::with_capacity(requests.len());
            {
                let mut queue = inner.queue.lock().unwrap_or_else(PoisonError::into_inner);
                for request in requests {
                    let (reply, answer) = oneshot::channel();
                    queue.push((request, reply));
                    waiting.push(answer);
                }
            }
            let Some(first) = waiting.first_mut() else {
                return Ok(ResponsePacket::Batch(Vec::new()));
            };
            // Let the caller's other requests of this turn (a `join!` of reads) join the queue.
            tokio::task::yield_now().await;
            // Whoever holds a slot next sends everything queued; ours may already have gone.
            let mut early = None;
            tokio::select! {
                biased;
                answer = first => early = Some(answer),
                permit = inner.in_flight.clone().acquire_owned() => {
                    let permit = permit.map_err(|_| TransportErrorKind::backend_gone())?;
                    let taken =
                        std::mem::take(&mut *inner.queue.lock().unwrap_or_else(PoisonError::into_inner));
                    if !taken.is_empty() {
                        // Spawned: a caller that stops waiting must not cancel the others' requests.
                        tokio::spawn(send_all(inner.clone(), taken, permit));
                    }
                }
            }
            let mut responses = Vec::with_capacity(waiting.len());
            for (i, answer) in waiting.into_iter().enumerate() {
                let answer = match (i, early.take()) {
                    (0, Some(answer)) => answer,
                    _ => answer.await,
                };
                responses.push(answer.map_err(|_| TransportErrorKind::backend_gone())??);
            }
            Ok(match (single, responses.pop()) {
                (true, Some(response)) => ResponsePacket::Single(response),
                (_, last) => {
                    responses.extend(last);
                    ResponsePacket::Batch(responses)
                }
            })
        })
    }
}

/// Sends `taken` in batches of at most `max_batch`, holding one in-flight slot.
async fn send_all(
    inner: Arc<Inner>,
    mut taken: Vec<(SerializedRequest, Reply)>,
    _slot: OwnedSemaphorePermit,
) {
    while !taken.is_empty() {
        let rest = taken.split_off(taken.len().min(inner.max_batch));
        send_batch(&inner, taken).await;
        taken = rest;
    }
}

async fn send_batch(inner: &Inner, batch: Vec<(SerializedRequest, Reply)>) {
    let http = &inner.http;
    let ids: HashSet<&Id> = batch.iter().map(|(request, _)| request.id()).collect();
    if batch.len() == 1 || ids.len() != batch.len() {
        // Alone, or ids that could not tell the answers apart: one request each.
        return send_each(http, batch).await;
    }
    let folds = if inner.fold_refusals.load(Ordering::Relaxed) < fold::REFUSALS_TO_STOP {
        fold::plan(batch.iter().map(|(request, _)| request), &ids)
    } else {
        Vec::new()
    };
    let folded: HashSet<usize> = folds.iter().flat_map(|f| f.members.iter().copied()).collect();
    let requests = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| !folded.contains(i))
        .map(|(_, (request, _))| request.clone())
        .chain(folds.iter().map(|f| f.request.clone()))
        .collect();
    let mut answered = match http.clone().call(RequestPacket::Batch(requests)).await {
        Ok(ResponsePacket::Batch(responses)) => {
            responses.into_iter().map(|r| (r.id.clone(), r)).collect::<HashMap<_, _>>()
        }
        // The whole batch failed or came back as one answer: the node takes no batches, or not
        // this one. Each request on its own gets the node's own answer.
        _ => HashMap::new(),
    };
    let mut unfolded = HashMap::new();
    for fold in &folds {
        let Some(response) = answered.remove(fold.request.id()) else { continue };
        match fold::unfold(fold, &response.payload) {
            Some(answers) => {
                inner.fold_refusals.store(0, Ordering::Relaxed);
                unfolded
                    .extend(fold.members.iter().zip(answers).filter_map(|(&i, a)| Some((i, a?))));
            }
            None => {
                // Its calls are asked on their own below. One refusal may be the fold's own (out
                // of the node's gas cap); several in a row are the node's.
                let refusals = inner.fold_refusals.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::debug!(
                    target: "x402_aa_rpc", url = %http.url(), ?response, refusals,
                    "the node refused a folded eth_call"
                );
            }
        }
    }
    let mut unanswered = Vec::new();
    for (i, (request, reply)) in batch.into_iter().enumerate() {
        let unfolded =
            unfolded.remove(&i).map(|payload| Response { id: request.id().clone(), payload });
        match unfolded.or_else(|| answered.remove(request.id())) {
            Some(response) => {
                let _ = reply.send(Ok(response));
            }
            None => unanswered.push((request, reply)),
        }
    }
    send_each(http, unanswered).await;
}

async fn send_each(http: &Http<reqwest::Client>, requests: Vec<(SerializedRequest, Reply)>) {
    for (request, reply) in requests {
        let answer = match http.clone().call(RequestPacket::Single(request)).await {
            Ok(ResponsePacket::Single(response)) => Ok(response),
            Ok(ResponsePacket::Batch(_)) => {
                Err(TransportErrorKind::custom_str("the node answered one request with a batch"))
            }
            Err(e) => Err(e),
        };
        let _ = reply.send(answer);
    }
}
