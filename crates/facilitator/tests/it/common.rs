//! A devnet with the paymaster service, payers that sign real payloads with the SDK's
//! `PaymentSigner`, and a facilitator served in-process on 127.0.0.1:0.

use std::{path::PathBuf, time::Duration};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use serde_json::{Value, json};
use tempfile::TempDir;
use x402_aa::{
    ENTRY_POINT_V06,
    x402::{AaNativeExtra, AaNativeRequirements},
};
use x402_aa_contracts::SessionKeyAccountFactory;
use x402_aa_devnet::Devnet;
use x402_aa_facilitator::{
    ChainConfig, Config, FacilitatorHandle, FacilitatorService, KeySource, SubmissionConfig,
    config::BiconomyAccounts,
};
use x402_aa_paymaster::{PaymasterConfig, PaymasterHandle, PaymasterService, SponsorPolicy};
use x402_aa_rpc::PaymasterClient;
use x402_aa_session::{
    Scopes, SessionFile, TokenInfo,
    accounts::UncheckedSessionAccount,
    file::AccountDeployment,
    owner::sign_grant,
    per_day,
    signer::{OwnerAccount, PaidRequest, PaymentSigner, SessionAccount, SignedPayment},
};
use x402_chain_eip155::v2_eip155_exact::client::V2Eip155ExactClient;
use x402_types::{
    proto::{OriginalJson, PaymentRequired, v2},
    scheme::client::X402SchemeClient,
    util::Base64Bytes,
};

/// One dollar in TestStablecoin units (6 decimals).
pub(crate) const USD: u64 = 1_000_000;
pub(crate) const API_KEY: &str = "facilitator-tests";

pub(crate) struct Env {
    pub(crate) devnet: Devnet,
    /// The devnet paymaster service with its default policy: it simulates every op before
    /// signing, so it refuses payments that cannot settle.
    pub(crate) paymaster: PaymasterHandle,
    /// The same VerifyingPaymaster and signer with simulation off, for the payloads the tests
    /// build to be refused: what the facilitator and the chain refuse on their own is the point
    /// of those tests, not the sponsor's judgement.
    pub(crate) lenient_paymaster: PaymasterHandle,
    pub(crate) merchant: Address,
    /// Funded key the facilitator bundles with in direct mode.
    pub(crate) facilitator_key: PrivateKeySigner,
    pub(crate) dir: TempDir,
}

/// A payer and the signer that makes its payloads.
pub(crate) enum Payer {
    /// The signer, the account owner's key (for revocations), and the same session signing
    /// without the SDK's scope checks (a hostile agent's view: payments only the facilitator and
    /// the chain refuse).
    Session(
        Box<PaymentSigner<SessionAccount>>,
        PrivateKeySigner,
        Box<PaymentSigner<UncheckedSessionAccount>>,
    ),
    Owner(Box<PaymentSigner<OwnerAccount>>),
}

/// How [`Env::session_payer`] sets a session up.
#[derive(Debug, Clone)]
pub(crate) struct SessionOpts {
    /// Deploy the account first; otherwise the first payment deploys it through initCode.
    pub(crate) deployed: bool,
    /// Per-day cap, e.g. "10 USDT".
    pub(crate) cap: &'static str,
    /// Merchants the session file lists beyond the grant's allowlist: the SDK then signs
    /// payments to them that the account (and the facilitator) must refuse.
    pub(crate) file_extra_merchants: Vec<Address>,
    /// Token units minted to the account.
    pub(crate) balance: u64,
}

impl Default for SessionOpts {
    fn default() -> Self {
        Self {
            deployed: true,
            cap: "10 USDT",
            file_extra_merchants: Vec::new(),
            balance: 100 * USD,
        }
    }
}

impl Payer {
    pub(crate) async fn pay(&self, accepted: &Value, n: u64) -> anyhow::Result<SignedPayment> {
        let request =
            PaidRequest { method: "GET".into(), url: format!("http://127.0.0.1:9/paid/{n}") };
        Ok(match self {
            Self::Session(s, ..) => s.pay(accepted, &request).await?,
            Self::Owner(s) => s.pay(accepted, &request).await?,
        })
    }

    /// A session payment signed without the SDK's scope checks (over a cap, say), which the
    /// facilitator and the account must refuse.
    pub(crate) async fn pay_unchecked(
        &self,
        accepted: &Value,
        n: u64,
    ) -> anyhow::Result<SignedPayment> {
        let request =
            PaidRequest { method: "GET".into(), url: format!("http://127.0.0.1:9/paid/{n}") };
        match self {
            Self::Session(.., rogue) => Ok(rogue.pay(accepted, &request).await?),
            Self::Owner(_) => anyhow::bail!("an owner payer has no session scope to skip"),
        }
    }

    pub(crate) fn sender(&self) -> Address {
        match self {
            Self::Session(s, ..) => s.account().file.account,
            Self::Owner(s) => s.account().sender,
        }
    }
}

impl Env {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let devnet = Devnet::spawn().await?;
        let config = PaymasterConfig::new(
            devnet.rpc_url(),
            devnet.chain_id(),
            devnet.addresses.verifying_paymaster,
            devnet.keys.paymaster_signer.clone(),
            vec![API_KEY.to_owned()],
        );
        let lenient = config
            .clone()
            .with_policy(SponsorPolicy { simulate: false, ..SponsorPolicy::default() });
        let localhost: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        let paymaster = PaymasterService::new(config)?.bind(localhost).await?;
        let lenient_paymaster = PaymasterService::new(lenient)?.bind(localhost).await?;
        let merchant = PrivateKeySigner::random().address();
        let facilitator_key = PrivateKeySigner::random();
        devnet.fund(facilitator_key.address(), U256::from(10u64.pow(19))).await?;
        Ok(Self {
            devnet,
            paymaster,
            lenient_paymaster,
            merchant,
            facilitator_key,
            dir: tempfile::tempdir()?,
        })
    }

    pub(crate) fn registry_path(&self) -> PathBuf {
        self.dir.path().join("registry.sqlite3")
    }

    /// [`Self::config`] with every chain's node reached through `node` (a faulty proxy).
    pub(crate) fn config_through(&self, node: &str) -> Config {
        let mut config = self.config();
        for chain in config.chains.values_mut() {
            chain.rpc_url = node.to_owned();
        }
        config
    }

    /// Direct submission from `facilitator_key`, a SQLite registry in the temp dir, no
    /// background recovery (tests run it explicitly).
    pub(crate) fn config(&self) -> Config {
        let a = self.devnet.addresses;
        let mut chain = ChainConfig::with_direct(
            self.devnet.rpc_url(),
            a.settlement,
            KeySource::literal(&self.facilitator_key),
        );
        chain.session_account_factory = Some(a.session_account_factory);
        // The devnet's Biconomy build is not at Biconomy's canonical addresses (Kernel and
        // Safe are).
        if let Some(kernel) = chain.accounts.kernel.as_mut() {
            kernel.session_validator = Some(a.kernel_session_validator);
        }
        if let Some(safe) = chain.accounts.safe.as_mut() {
            safe.session_module = Some(a.safe_session_module);
        }
        let b = self.devnet.biconomy;
        chain.accounts.biconomy = Some(BiconomyAccounts {
            factory: b.factory,
            implementation: b.implementation,
            ecdsa_module: b.ecdsa_module,
            session_module: Some(b.session_module),
        });
        chain.allowed_tokens = vec![a.token];
        chain.rpc_timeout_ms = 5_000;
        let mut config = Config::single(self.devnet.chain_id(), chain);
        config.bind = ([127, 0, 0, 1], 0).into();
        config.registry_url = format!("sqlite:{}", self.registry_path().display());
        config.receipt_timeout_ms = 10_000;
        config.recovery_interval_ms = 0;
        config
    }

    pub(crate) fn with_bundler(&self, url: &str) -> Config {
        let mut config = self.config();
        for chain in config.chains.values_mut() {
            chain.submission = SubmissionConfig::Bundler {
                url: url.to_owned(),
                poll_interval_ms: 50,
                request_timeout_ms: 2_000,
            };
        }
        config
    }

    pub(crate) async fn service(&self, config: Config) -> anyhow::Result<FacilitatorService> {
        Ok(FacilitatorService::with_env(config, |_| None).await?)
    }

    pub(crate) async fn start(&self, config: Config) -> anyhow::Result<Facilitator> {
        let service = self.service(config).await?;
        let handle = service.serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?).await?;
        Ok(Facilitator { url: handle.url(), handle: Some(handle), http: reqwest::Client::new() })
    }

    /// The merchant's `accepts[]` entry for `amount` units.
    pub(crate) fn accepted(&self, amount: u64) -> Value {
        self.accepted_for(self.merchant, amount)
    }

    /// An `accepts[]` entry paying `pay_to`.
    pub(crate) fn accepted_for(&self, pay_to: Address, amount: u64) -> Value {
        let a = self.devnet.addresses;
        let req = AaNativeRequirements {
            chain_id: self.devnet.chain_id(),
            amount: U256::from(amount),
            pay_to,
            asset: a.token,
            max_timeout_seconds: 60,
            extra: Some(AaNativeExtra {
                settlement_contract: a.settlement,
                entry_point: ENTRY_POINT_V06,
            }),
        };
        serde_json::to_value(req.to_wire()).expect("requirements serialise")
    }

    pub(crate) fn token(&self) -> TokenInfo {
        TokenInfo { address: self.devnet.addresses.token, symbol: "USDT".into(), decimals: 6 }
    }

    pub(crate) fn paymaster_client(&self) -> anyhow::Result<PaymasterClient> {
        Ok(PaymasterClient::new(&self.paymaster.url())?)
    }

    /// A client of [`Env::lenient_paymaster`].
    pub(crate) fn lenient_paymaster_client(&self) -> anyhow::Result<PaymasterClient> {
        Ok(PaymasterClient::new(&self.lenient_paymaster.url())?)
    }

    /// A SessionKeyAccount whose session key may pay `self.merchant` up to 1 USDT per payment
    /// and `opts.cap` per day for an hour, gas sponsored by the devnet paymaster (see
    /// [`SessionOpts`]).
    pub(crate) async fn session_payer(&self, opts: SessionOpts) -> anyhow::Result<Payer> {
        let SessionOpts { deployed, cap, file_extra_merchants, balance } = opts;
        let extra_merchants = !file_extra_merchants.is_empty();
        let a = self.devnet.addresses;
        let owner = PrivateKeySigner::random();
        let session_key = PrivateKeySigner::random();
        let salt = U256::ZERO;
        let factory =
            SessionKeyAccountFactory::new(a.session_account_factory, self.devnet.provider());
        let account = factory.getAddress(owner.address(), salt).call().await?;
        if deployed {
            let tx = TransactionRequest::default()
                .with_from(self.devnet.keys.deployer.address())
                .with_to(a.session_account_factory)
                .with_input(
                    SessionKeyAccountFactory::createAccountCall { owner: owner.address(), salt }
                        .abi_encode(),
                );
            self.devnet.send("createAccount", tx).await?;
        }
        if balance > 0 {
            self.devnet.mint(account, U256::from(balance)).await?;
        }

        let scopes = Scopes::new()
            .spend_cap(cap.parse()?, per_day())
            .per_payment_max("1 USDT".parse()?)
            .merchants([self.merchant])
            .valid_for(Duration::from_secs(3600))
            .only_paymaster(a.verifying_paymaster);
        let now = self.devnet.block_timestamp().await?;
        let chain_id = self.devnet.chain_id();
        let grant = scopes.to_grant(
            session_key.address(),
            &self.token(),
            a.settlement,
            now - 1,
            0,
            fresh(),
        )?;
        let (_, sig) = sign_grant(&owner, &grant, chain_id, account)?;
        let deployment = (!deployed).then_some(AccountDeployment {
            factory: a.session_account_factory,
            owner: owner.address(),
            salt,
        });
        let file = SessionFile::new(
            chain_id,
            account,
            ENTRY_POINT_V06,
            deployment,
            self.token(),
            owner.address(),
            scopes.merchant_list().into_iter().chain(file_extra_merchants).collect(),
            &grant,
            sig,
        );
        let account = SessionAccount::new(file, session_key)?;
        let rogue = PaymentSigner::new(
            UncheckedSessionAccount(account.clone()),
            self.devnet.provider().clone(),
        )
        .await?
        .paymaster(self.lenient_paymaster_client()?, API_KEY);
        // The SDK signs payments to the file's extra merchants that the account refuses; the
        // simulating sponsor would refuse them first, and the tests look at the facilitator.
        let sponsor = if extra_merchants {
            self.lenient_paymaster_client()?
        } else {
            self.paymaster_client()?
        };
        let signer = PaymentSigner::new(account, self.devnet.provider().clone())
            .await?
            .paymaster(sponsor, API_KEY);
        Ok(Payer::Session(Box::new(signer), owner, Box::new(rogue)))
    }

    /// A canonical SimpleAccount (not deployed: the payment deploys it) holding `balance`
    /// units, paying with its owner's key, gas sponsored.
    pub(crate) async fn owner_payer(&self, balance: u64) -> anyhow::Result<Payer> {
        self.owner_payer_sponsored_by(balance, self.paymaster_client()?).await
    }

    /// An owner payer holding no tokens, gas from [`Env::lenient_paymaster`] (the simulating
    /// one would refuse its payments): the facilitator's `insufficient_funds` is what the tests
    /// look at.
    pub(crate) async fn broke_owner_payer(&self) -> anyhow::Result<Payer> {
        self.owner_payer_sponsored_by(0, self.lenient_paymaster_client()?).await
    }

    async fn owner_payer_sponsored_by(
        &self,
        balance: u64,
        paymaster: PaymasterClient,
    ) -> anyhow::Result<Payer> {
        let a = self.devnet.addresses;
        let owner = PrivateKeySigner::random();
        let sender = self.devnet.simple_account_address(owner.address(), U256::ZERO).await?;
        if balance > 0 {
            self.devnet.mint(sender, U256::from(balance)).await?;
        }
        let account = OwnerAccount::simple_account(owner, sender, a.token, a.settlement);
        let signer = PaymentSigner::new(account, self.devnet.provider().clone())
            .await?
            .paymaster(paymaster, API_KEY);
        Ok(Payer::Owner(Box::new(signer)))
    }

    pub(crate) async fn merchant_balance(&self) -> anyhow::Result<U256> {
        Ok(self.devnet.token_balance(self.merchant).await?)
    }

    /// x402 v2 `exact` requirements paying `self.merchant` `amount` units of the devnet's
    /// EIP-3009 token (`TestEip3009Token`, EIP-712 domain "Devnet USD Coin" version "2").
    pub(crate) fn exact_requirements(&self, amount: u64) -> Value {
        json!({
            "scheme": "exact",
            "network": format!("eip155:{}", self.devnet.chain_id()),
            "amount": amount.to_string(),
            "payTo": self.merchant.to_checksum(None),
            "asset": self.devnet.addresses.eip3009_token.to_checksum(None),
            "maxTimeoutSeconds": 60,
            "extra": { "name": "Devnet USD Coin", "version": "2" },
        })
    }
}

/// The `PaymentPayload` JSON x402-rs' own `exact` client (`V2Eip155ExactClient`) signs with
/// `payer` for a 402 whose only `accepts[]` entry is `requirements`: the base64
/// `PAYMENT-SIGNATURE` header it produces, decoded.
pub(crate) async fn exact_payload(
    payer: &PrivateKeySigner,
    requirements: &Value,
) -> anyhow::Result<Value> {
    let required = json!({
        "x402Version": 2,
        "resource": { "url": "http://127.0.0.1:9/paid/exact" },
        "accepts": [requirements],
    });
    // `accepts[]` entries are kept verbatim (RawValue), so parse from text, not from a Value.
    let required: v2::PaymentRequired<OriginalJson> = serde_json::from_str(&required.to_string())?;
    let candidates = V2Eip155ExactClient::new(payer.clone()).accept(&PaymentRequired::V2(required));
    let [candidate] = candidates.as_slice() else {
        anyhow::bail!("x402-rs' exact client offered {} candidates, expected 1", candidates.len());
    };
    let header = candidate.signer.sign_payment().await?;
    let json = Base64Bytes::from(header.as_bytes()).decode()?;
    Ok(serde_json::from_slice(&json)?)
}

/// `{x402Version, paymentPayload, paymentRequirements}` for an `exact` payload.
pub(crate) fn exact_body(payload: &Value, requirements: &Value) -> Value {
    json!({
        "x402Version": 2,
        "paymentPayload": payload,
        "paymentRequirements": requirements,
    })
}

/// `{x402Version, paymentPayload, paymentRequirements}`.
pub(crate) fn body(payment: &SignedPayment, requirements: &Value) -> Value {
    json!({
        "x402Version": 2,
        "paymentPayload": serde_json::to_value(&payment.payload).expect("payload serialises"),
        "paymentRequirements": requirements,
    })
}

/// A facilitator served in-process, and a client for it.
pub(crate) struct Facilitator {
    pub(crate) url: String,
    pub(crate) handle: Option<FacilitatorHandle>,
    pub(crate) http: reqwest::Client,
}

impl Facilitator {
    pub(crate) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self.http.post(format!("{}{path}", self.url)).json(body).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    pub(crate) async fn verify(&self, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.post("/verify", body).await
    }

    pub(crate) async fn settle(&self, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.post("/settle", body).await
    }

    /// Any body, any content type; the status, headers and JSON answer.
    pub(crate) async fn raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, reqwest::header::HeaderMap, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, headers, json))
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await?;
        }
        Ok(())
    }
}

/// 32 bytes no other call returns (salts, request hashes).
pub(crate) fn fresh() -> B256 {
    alloy::primitives::keccak256(PrivateKeySigner::random().to_bytes())
}

/// A JSON-RPC proxy to `upstream` standing for a node with faults of its own: it answers a call
/// itself wherever `intercept` gives an answer, and forwards the rest. Returns its URL.
pub(crate) async fn rpc_proxy(
    upstream: String,
    intercept: impl Fn(&Value) -> Option<Value> + Clone + Send + Sync + 'static,
) -> anyhow::Result<String> {
    faulty_proxy(upstream, move |call| intercept(call).map(Fault::Answer)).await
}

/// What a faulty node does with one call instead of answering it as its upstream would.
pub(crate) enum Fault {
    /// Answers this.
    Answer(Value),
    /// Forwards the call after this long (a stalled read): a client with a shorter bound gives
    /// up first.
    Stall(Duration),
}

/// [`rpc_proxy`] whose node may also stall a call.
pub(crate) async fn faulty_proxy(
    upstream: String,
    fault: impl Fn(&Value) -> Option<Fault> + Clone + Send + Sync + 'static,
) -> anyhow::Result<String> {
    use axum::{Json, Router, routing::post};
    let http = reqwest::Client::new();
    let app = Router::new().route(
        "/",
        post(move |Json(call): Json<Value>| async move {
            match fault(&call) {
                Some(Fault::Answer(answer)) => return Json(answer),
                Some(Fault::Stall(delay)) => tokio::time::sleep(delay).await,
                None => {}
            }
            let answer =
                async { http.post(&upstream).json(&call).send().await?.json::<Value>().await };
            Json(answer.await.unwrap_or_else(|e| {
                json!({ "jsonrpc": "2.0", "id": call["id"], "error": { "code": -32000, "message": e.to_string() } })
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
