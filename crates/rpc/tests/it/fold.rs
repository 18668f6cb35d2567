//! Plain `eth_call`s issued together, folded into one `eth_call` (`CallFold` by state override):
//! against real anvil and the real EntryPoint, each caller gets what its call alone gets, the node
//! is sent one call, and a write made by one call is not seen by the next. A node that takes no
//! state overrides gets the calls as they are. The chain's clock ([`ChainClock`]) folds in with
//! the reads beside it, and falls back to reading blocks where the node takes no overrides.

use std::sync::{Arc, Mutex};

use alloy::{
    primitives::{Address, Bytes, U256, aliases::U192},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    sol,
    sol_types::SolCall,
    transports::{TransportResult, http::reqwest::Url},
};
use axum::{Json, Router, extract::State, routing::post};
use serde_json::{Value, json};
use x402_aa_contracts::{CALL_FOLD_ADDRESS, EntryPoint};
use x402_aa_devnet::Devnet;
use x402_aa_rpc::{ChainClock, DEFAULT_TIMEOUT, coalescing_provider};

sol! {
    interface Erc20 {
        function balanceOf(address owner) external view returns (uint256);
    }
    interface Account {
        function execute(address dest, uint256 value, bytes calldata func) external;
    }
}

/// Every JSON-RPC request body a node was sent, in order.
type Seen = Arc<Mutex<Vec<Value>>>;

/// A proxy in front of `upstream` that records what it forwards.
async fn recording_proxy(upstream: &str) -> (Seen, Url) {
    proxy(upstream, false).await
}

/// A proxy in front of `upstream` that records what it is sent; with `refuse_overrides`, it
/// answers every `eth_call` that carries state overrides as a node without them does, and
/// forwards the rest.
async fn proxy(upstream: &str, refuse_overrides: bool) -> (Seen, Url) {
    #[derive(Clone)]
    struct Proxy {
        upstream: String,
        client: reqwest::Client,
        seen: Seen,
        refuse_overrides: bool,
    }
    impl Proxy {
        async fn answer(&self, request: Value) -> Value {
            let overridden = request["method"] == "eth_call"
                && request["params"].as_array().map(Vec::len) == Some(3);
            if self.refuse_overrides && overridden {
                return json!({"jsonrpc": "2.0", "id": request["id"],
                    "error": {"code": -32602, "message": "state overrides are not supported"}});
            }
            let answer = self.client.post(&self.upstream).json(&request).send().await;
            match answer {
                Ok(answer) => answer.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        }
    }
    async fn forward(State(proxy): State<Proxy>, Json(body): Json<Value>) -> Json<Value> {
        proxy.seen.lock().unwrap_or_else(|e| e.into_inner()).push(body.clone());
        Json(match body {
            Value::Array(requests) => {
                let mut answers = Vec::new();
                for request in requests {
                    answers.push(proxy.answer(request).await);
                }
                Value::Array(answers)
            }
            single => proxy.answer(single).await,
        })
    }
    let seen = Seen::default();
    let proxy = Proxy {
        upstream: upstream.to_owned(),
        client: reqwest::Client::new(),
        seen: seen.clone(),
        refuse_overrides,
    };
    serve(Router::new().route("/", post(forward)).with_state(proxy))
        .await
        .map(|url| (seen, url))
        .unwrap_or_else(|e| panic!("proxy: {e}"))
}

async fn serve(app: Router) -> anyhow::Result<Url> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?).parse()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// The `eth_call`s among what the node was sent (inside batches too).
fn eth_calls(seen: &Seen) -> Vec<Value> {
    sent(seen, "eth_call")
}

/// The requests for `method` among what the node was sent (inside batches too).
fn sent(seen: &Seen, method: &str) -> Vec<Value> {
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.iter()
        .flat_map(|body| match body {
            Value::Array(requests) => requests.clone(),
            single => vec![single.clone()],
        })
        .filter(|request| request["method"] == method)
        .collect()
}

fn call(to: Address, input: impl SolCall) -> TransactionRequest {
    TransactionRequest::default().to(to).input(Bytes::from(input.abi_encode()).into())
}

/// What a caller can tell apart in an answer: the return data, or the error's code, message and
/// revert data.
fn seen_as(answer: TransportResult<Bytes>) -> Result<Bytes, (i64, String, Option<String>)> {
    answer.map_err(|e| {
        let payload = e.as_error_resp().unwrap_or_else(|| panic!("not a node error: {e}"));
        (
            payload.code,
            payload.message.to_string(),
            payload.data.as_ref().map(|d| d.get().to_owned()),
        )
    })
}

/// The answers to `calls` issued together (one turn of the runtime).
async fn issued_together(
    provider: &DynProvider,
    calls: &[TransactionRequest; 5],
) -> [TransportResult<Bytes>; 5] {
    let [a, b, c, d, e] = calls.clone();
    let (a, b, c, d, e) = tokio::join!(
        provider.call(a),
        provider.call(b),
        provider.call(c),
        provider.call(d),
        provider.call(e)
    );
    [a, b, c, d, e]
}

#[tokio::test]
async fn calls_issued_together_are_one_eth_call_and_each_gets_its_own_answer() -> anyhow::Result<()>
{
    let devnet = Devnet::spawn().await?;
    let a = &devnet.addresses;
    let owner = devnet.keys.spare[0].address();
    let account = devnet.create_simple_account(owner, U256::from(1)).await?;
    devnet.mint(owner, U256::from(1_000_000)).await?;
    let (seen, url) = recording_proxy(devnet.rpc_url()).await;
    let folded = coalescing_provider(url, DEFAULT_TIMEOUT);
    let calls = [
        call(a.entry_point, EntryPoint::getNonceCall { sender: account, key: U192::from(3) }),
        call(a.token, Erc20::balanceOfCall { owner }),
        // Reverts with an `Error(string)`: "account: not Owner or EntryPoint".
        call(account, Account::executeCall { dest: owner, value: U256::ZERO, func: Bytes::new() }),
        // Reverts with a custom error (the EntryPoint's SenderAddressResult).
        call(
            a.entry_point,
            EntryPoint::getSenderAddressCall {
                initCode: devnet.simple_account_init_code(owner, U256::from(2)),
            },
        ),
        call(a.entry_point, EntryPoint::balanceOfCall { account: a.verifying_paymaster }),
    ];
    let together = issued_together(&folded, &calls).await;
    // Alone: plain calls, with no `from` (the devnet's own provider would add its deployer's).
    let plain = ProviderBuilder::new().connect_http(devnet.rpc_url().parse()?);
    let sent = eth_calls(&seen);
    assert_eq!(sent.len(), 1, "the node was sent one eth_call for five: {sent:?}");
    assert_eq!(sent[0]["params"][0]["to"], json!(CALL_FOLD_ADDRESS));

    let mut reverted = Vec::new();
    for (i, (tx, answer)) in calls.iter().zip(together).enumerate() {
        let alone = seen_as(plain.call(tx.clone()).await);
        match (seen_as(answer), alone) {
            (Ok(folded), Ok(alone)) => assert_eq!(folded, alone, "call {i}"),
            (Err((code, message, data)), Err((alone_code, alone_message, alone_data))) => {
                assert_eq!((code, &data), (alone_code, &alone_data), "call {i}: {message}");
                // Where the revert gives a reason, the message quotes it as the node's does (anvil
                // also spells out custom errors, whose meaning is in the data).
                if message != "execution reverted" {
                    assert_eq!(message, alone_message, "call {i}");
                }
                reverted.push(message);
            }
            (folded, alone) => panic!("call {i}: folded {folded:?}, alone {alone:?}"),
        }
    }
    assert_eq!(
        reverted,
        ["execution reverted: account: not Owner or EntryPoint", "execution reverted"],
        "the two reverting calls, and only they, got errors"
    );
    Ok(())
}

/// Each folded call runs against the state the batch was sent at: a call that writes (here the
/// EntryPoint nonce of its caller, the fold) leaves nothing for the calls after it, as separate
/// `eth_call`s would not.
#[tokio::test]
async fn a_folded_call_leaves_no_writes_for_the_next() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let entry_point = devnet.addresses.entry_point;
    let (seen, url) = recording_proxy(devnet.rpc_url()).await;
    let folded = coalescing_provider(url, DEFAULT_TIMEOUT);
    let key = U192::from(7);
    let increment = call(entry_point, EntryPoint::incrementNonceCall { key });
    let read = call(entry_point, EntryPoint::getNonceCall { sender: CALL_FOLD_ADDRESS, key });
    let (incremented, nonce) = tokio::join!(folded.call(increment), folded.call(read));
    assert_eq!(eth_calls(&seen).len(), 1, "folded");
    assert_eq!(incremented?, Bytes::new());
    let nonce = EntryPoint::getNonceCall::abi_decode_returns(&nonce?)?;
    assert_eq!(nonce, U256::from(7) << 64, "sequence 0: the increment was undone");
    Ok(())
}

/// A node that refuses state overrides: the fold's calls are asked again as they are, every
/// caller gets the node's answer, and after three refusals in a row the client sends no more.
#[tokio::test]
async fn a_node_without_state_overrides_gets_the_calls_as_they_are() -> anyhow::Result<()> {
    async fn node(State(seen): State<Seen>, Json(body): Json<Value>) -> Json<Value> {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(body.clone());
        let answer = |request: &Value| {
            let id = request["id"].clone();
            match request["params"].as_array().map(Vec::len) {
                Some(3) => json!({"jsonrpc": "2.0", "id": id,
                    "error": {"code": -32602, "message": "state overrides are not supported"}}),
                _ => json!({"jsonrpc": "2.0", "id": id, "result": "0x2a"}),
            }
        };
        Json(match body {
            Value::Array(requests) => Value::Array(requests.iter().map(answer).collect()),
            single => answer(&single),
        })
    }
    let seen = Seen::default();
    let url = serve(Router::new().route("/", post(node)).with_state(seen.clone())).await?;
    let provider = coalescing_provider(url, DEFAULT_TIMEOUT);
    let calls: [TransactionRequest; 5] = std::array::from_fn(|i| {
        call(Address::with_last_byte(i as u8 + 1), Erc20::balanceOfCall { owner: Address::ZERO })
    });
    for round in 0..4 {
        for answer in issued_together(&provider, &calls).await {
            assert_eq!(answer?, Bytes::from(vec![0x2a]), "round {round}");
        }
    }
    let folds =
        eth_calls(&seen).iter().filter(|c| c["params"].as_array().map(Vec::len) == Some(3)).count();
    assert_eq!(folds, 3, "three folds tried, none after the third refusal");
    assert_eq!(
        eth_calls(&seen).len(),
        3 * (1 + 5) + 5,
        "three times the fold then each call alone, then the plain batch"
    );
    Ok(())
}

/// The clock read beside a payment's reads costs the node nothing of its own: it travels in their
/// one `eth_call`, no block is read, and it is the latest block's time (here moved a day ahead of
/// the wall clock, as a devnet's can be), not this machine's. Alone, it is one call.
#[tokio::test]
async fn the_clock_folds_into_the_reads_beside_it() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    devnet.increase_time(86_400).await?;
    let (seen, url) = recording_proxy(devnet.rpc_url()).await;
    let provider = coalescing_provider(url, DEFAULT_TIMEOUT);
    let clock = ChainClock::default();
    let owner = devnet.keys.spare[0].address();
    let balance = call(devnet.addresses.token, Erc20::balanceOfCall { owner });
    // At `latest`, as a contract binding's reads are (a bare `provider.call` asks for `pending`).
    let (now, balance) = tokio::join!(clock.now(&provider), provider.call(balance).latest());
    balance?;
    let expected = devnet.block_timestamp().await?;
    assert_eq!(now?, expected);
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    assert!(expected > wall + 80_000, "the chain runs a day ahead: {expected} vs {wall}");
    assert_eq!(eth_calls(&seen).len(), 1, "one eth_call for the read and the clock");
    assert!(sent(&seen, "eth_getBlockByNumber").is_empty(), "no block read");

    assert_eq!(clock.now(&provider).await?, expected, "alone");
    assert_eq!(eth_calls(&seen).len(), 2);
    assert!(sent(&seen, "eth_getBlockByNumber").is_empty());
    Ok(())
}

/// A node without state overrides: the clock reads the latest block instead, and after the first
/// refusal asks no more calls of it.
#[tokio::test]
async fn the_clock_reads_blocks_where_the_node_takes_no_overrides() -> anyhow::Result<()> {
    let devnet = Devnet::spawn().await?;
    let (seen, url) = proxy(devnet.rpc_url(), true).await;
    let provider = coalescing_provider(url, DEFAULT_TIMEOUT);
    let clock = ChainClock::default();
    for round in 0..3 {
        assert_eq!(clock.now(&provider).await?, devnet.block_timestamp().await?, "{round}");
        devnet.increase_time(7).await?;
    }
    assert_eq!(eth_calls(&seen).len(), 1, "one clock call, refused");
    assert_eq!(sent(&seen, "eth_getBlockByNumber").len(), 3);
    Ok(())
}
