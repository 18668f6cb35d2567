//! What the owner does from the page: grant (preview first, then sign), pause, resume, revoke,
//! revoke all. Every action is checked against the chain before anything is signed or sent, and
//! simulated before it is sent, so bad input leaves nothing half-done.

use std::time::Duration;

use alloy::{
    dyn_abi::{Resolver, TypedData},
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, Signature, TxHash, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use x402_aa_contracts::{SessionKeyAccount, SessionKeyAccountFactory};
use x402_aa_session::{
    SessionFile, SessionGrant, account_domain,
    file::{AccountDeployment, GrantJson, save_session_key},
    grant::{
        RevokeAllSessions, RevokeSession, SetSessionPaused, pause_digest, revoke_all_digest,
        revoke_digest, session_id,
    },
    owner::{self, SessionStatus},
    scopes::{Amount, GasBudget, Scopes, every},
};

use crate::{
    ConsoleError,
    chain::Console,
    store::StoredGrant,
    words::{parse_duration, scope_words, spend_sentence},
};

/// The grant form as the page sends it: every field as typed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GrantForm {
    spend_cap: String,
    period: String,
    #[serde(default)]
    per_payment: String,
    #[serde(default)]
    lifetime: String,
    /// Addresses separated by commas, spaces or lines; empty = any merchant.
    #[serde(default)]
    merchants: String,
    #[serde(default)]
    max_payments: String,
    #[serde(default)]
    per_merchant_cap: String,
    /// `PER_OP,PER_PERIOD,LIFETIME` in wei; empty = a paymaster sponsors every op.
    #[serde(default)]
    gas_budget: String,
    valid_for: String,
    /// The address of a key the agent generated; empty = the console generates one.
    #[serde(default)]
    session_key: String,
    justification: String,
}

/// A grant built from the form, shown to the owner, waiting for the signature.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    grant: SessionGrant,
    account: Address,
    owner: Address,
    merchants: Vec<Address>,
    key: Option<PrivateKeySigner>,
    justification: String,
    now: u64,
}

/// What the page shows before signing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DraftView {
    /// The session id: the EIP-712 digest the owner signs.
    draft_id: B256,
    account: Address,
    session_key: Address,
    sentence: String,
    scopes: Vec<String>,
    typed_data: serde_json::Value,
    /// `"key"`: the console signs on confirmation; `"elsewhere"`: paste a signature.
    signing: &'static str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GrantConfirm {
    draft_id: B256,
    /// The owner's signature over the draft id, when signed elsewhere.
    #[serde(default)]
    signature: Option<Bytes>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Granted {
    session_id: B256,
    account: Address,
    session_file: std::path::PathBuf,
    key_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ActionKind {
    Pause,
    Resume,
    Revoke,
    RevokeAll,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActionRequest {
    action: ActionKind,
    #[serde(default)]
    session: Option<B256>,
    #[serde(default)]
    account: Option<Address>,
    #[serde(default)]
    signature: Option<Bytes>,
}

/// What to sign elsewhere, or what to send from the owner's wallet.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignRequest {
    typed_data: serde_json::Value,
    digest: B256,
    /// The owner transaction with the same effect (deploy the account first when `deploy` is set).
    tx: TxView,
    deploy: Option<TxView>,
    relayer: bool,
}

#[derive(Debug, Serialize)]
struct TxView {
    from: Address,
    to: Address,
    data: Bytes,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActionResult {
    done: bool,
    message: String,
    tx: Option<TxHash>,
    sign: Option<SignRequest>,
}

fn field<T>(name: &str, r: Result<T, impl std::fmt::Display>) -> Result<T, ConsoleError> {
    r.map_err(|e| ConsoleError::BadInput(format!("{name}: {e}")))
}

fn optional(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// The EIP-712 document a wallet's `eth_signTypedData_v4` takes for `message` (an `S` written
/// as JSON), under the account's domain: its signing hash is the digest the contract checks.
fn typed_data<S: alloy::sol_types::SolStruct>(
    message: serde_json::Value,
    chain_id: u64,
    account: Address,
) -> TypedData {
    TypedData {
        domain: account_domain(chain_id, account),
        resolver: Resolver::from_struct::<S>(),
        primary_type: S::NAME.to_owned(),
        message,
    }
}

fn typed_json(typed: &TypedData) -> serde_json::Value {
    serde_json::to_value(typed).unwrap_or_default()
}

fn grant_typed_data(grant: &SessionGrant, chain_id: u64, account: Address) -> TypedData {
    let message = serde_json::to_value(GrantJson::from(grant)).unwrap_or_default();
    typed_data::<SessionGrant>(message, chain_id, account)
}

/// The owner's pasted signature of `digest`, in the form the contracts accept.
///
/// Wallets differ in what they hand back for the same key: `v` as 0/1 or 27/28, and an `s` in
/// either half of the order. The contracts take only 27/28 and a low `s` (OpenZeppelin's
/// `ECDSA`), so a signature by the owner is rewritten to that form (the same signer's other
/// encoding) rather than relayed as pasted and refused on chain at the relayer's cost.
fn owner_signature(signature: &Bytes, digest: B256, owner: Address) -> Result<Bytes, ConsoleError> {
    // alloy reads any of a wallet's encodings; its canonical form is what the contracts check.
    let sig = Signature::try_from(signature.as_ref()).map_err(|_| {
        ConsoleError::BadInput("the signature is not a 65-byte r ‖ s ‖ v signature".into())
    })?;
    let canonical = Bytes::from(sig.normalized_s().as_bytes());
    let signer = x402_aa_policy::recover_signer(&digest, &canonical)
        .map_err(|_| ConsoleError::BadInput("the signature recovers to no address".into()))?;
    if signer != owner {
        return Err(ConsoleError::BadInput(format!(
            "the signature is by {signer}, not by the owner {owner}: sign the EIP-712 data shown with the owner key"
        )));
    }
    Ok(canonical)
}

impl GrantForm {
    fn scopes(&self, paymaster: Option<Address>) -> Result<Scopes, ConsoleError> {
        let amount = |name: &str, text: &str| field(name, text.trim().parse::<Amount>());
        let period = parse_duration(&self.period)
            .map_err(|e| ConsoleError::BadInput(format!("period: {e}")))?;
        let valid_for = parse_duration(&self.valid_for)
            .map_err(|e| ConsoleError::BadInput(format!("valid for: {e}")))?;
        let mut scopes = Scopes::new()
            .spend_cap(amount("spend cap", &self.spend_cap)?, every(Duration::from_secs(period)))
            .valid_for(Duration::from_secs(valid_for));
        if let Some(p) = optional(&self.per_payment) {
            scopes = scopes.per_payment_max(amount("per payment", p)?);
        }
        if let Some(l) = optional(&self.lifetime) {
            scopes = scopes.lifetime_cap(amount("in total", l)?);
        }
        let merchants: Vec<Address> = self
            .merchants
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.parse().map_err(|_| {
                    ConsoleError::BadInput(format!("merchants: {m:?} is not an address"))
                })
            })
            .collect::<Result<_, _>>()?;
        if !merchants.is_empty() {
            scopes = scopes.merchants(merchants);
        }
        if let Some(n) = optional(&self.max_payments) {
            scopes = scopes.max_payments_per_period(field("payments per period", n.parse())?);
        }
        if let Some(cap) = optional(&self.per_merchant_cap) {
            scopes = scopes.merchant_period_cap(amount("per merchant", cap)?);
        }
        scopes = match (optional(&self.gas_budget), paymaster) {
            (Some(budget), _) => {
                let wei: Vec<u128> = budget
                    .split(',')
                    .map(|w| w.trim().parse::<u128>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| ConsoleError::BadInput(format!("gas budget: {e}")))?;
                let [per_op, per_period, lifetime] = wei[..] else {
                    return Err(ConsoleError::BadInput(
                        "gas budget: write PER_OP,PER_PERIOD,LIFETIME in wei".into(),
                    ));
                };
                scopes.self_paid_gas(GasBudget { per_op, per_period, lifetime })
            }
            (None, Some(paymaster)) => scopes.only_paymaster(paymaster),
            (None, None) => scopes.require_paymaster(),
        };
        Ok(scopes)
    }
}

impl Console {
    fn owner_for_grants(&self) -> Result<(Address, Address), ConsoleError> {
        let owner = self.config.owner_address().ok_or_else(|| {
            ConsoleError::NotConfigured(
                "no owner: start the console with the owner key (X402_AA_OWNER_KEY or --owner-key-file) or with --owner ADDRESS to sign elsewhere".into(),
            )
        })?;
        let factory = self.config.session_account_factory.ok_or_else(|| {
            ConsoleError::NotConfigured(
                "no SessionKeyAccountFactory configured for this network".into(),
            )
        })?;
        Ok((owner, factory))
    }

    /// Builds the grant the form describes, and nothing else: no signature, no file.
    pub(crate) async fn preview(&self, form: GrantForm) -> Result<DraftView, ConsoleError> {
        let justification = form.justification.trim().to_owned();
        if justification.is_empty() {
            return Err(ConsoleError::BadInput(
                "justification: say why the agent needs this budget (it is stored with the grant)"
                    .into(),
            ));
        }
        if justification.len() > 2_000 {
            return Err(ConsoleError::BadInput("justification: at most 2000 characters".into()));
        }
        let scopes = form.scopes(self.config.paymaster)?;
        let (owner, _) = self.owner_for_grants()?;
        let account = self
            .owner_account()
            .await?
            .ok_or_else(|| ConsoleError::NotConfigured("the owner's account is unknown".into()))?;
        let (key, key_address) = match optional(&form.session_key) {
            Some(text) => (
                None,
                text.parse::<Address>().map_err(|_| {
                    ConsoleError::BadInput(format!("session key: {text:?} is not an address"))
                })?,
            ),
            None => {
                let key = PrivateKeySigner::random();
                let address = key.address();
                (Some(key), address)
            }
        };
        let epoch = owner::session_epoch(&self.provider, account).await?;
        let now = self.now().await?;
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)
            .map_err(|e| ConsoleError::Chain(format!("no randomness for the grant salt: {e}")))?;
        let grant = scopes.to_grant(
            key_address,
            &self.token,
            self.config.settlement,
            now,
            epoch,
            B256::from(salt),
        )?;
        let merchants = scopes.merchant_list();
        let id = session_id(&grant, self.chain_id, account);
        let view = DraftView {
            draft_id: id,
            account,
            session_key: key_address,
            sentence: spend_sentence(&grant, &self.token, &merchants),
            scopes: scope_words(&grant, &self.token, &merchants),
            typed_data: typed_json(&grant_typed_data(&grant, self.chain_id, account)),
            signing: if self.config.owner_key.is_some() { "key" } else { "elsewhere" },
        };
        let draft = Draft { grant, account, owner, merchants, key, justification, now };
        self.drafts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, draft);
        Ok(view)
    }

    /// Signs (or takes the signature of) a previewed grant, then writes its files and records it.
    pub(crate) async fn grant(&self, confirm: GrantConfirm) -> Result<Granted, ConsoleError> {
        let id = confirm.draft_id;
        let draft = self
            .drafts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                ConsoleError::NotFound("no such grant preview; press Preview again".into())
            })?;
        let (_, factory) = self.owner_for_grants()?;
        let signature = match (&confirm.signature, &self.config.owner_key) {
            (Some(signature), _) => owner_signature(signature, id, draft.owner)?,
            (None, Some(key)) => {
                if key.address() != draft.owner {
                    return Err(ConsoleError::Conflict("the owner key changed".into()));
                }
                owner::sign_grant(key, &draft.grant, self.chain_id, draft.account)?.1
            }
            (None, None) => {
                return Err(ConsoleError::BadInput(
                    "paste the owner's signature of the EIP-712 data shown".into(),
                ));
            }
        };
        let file = SessionFile::new(
            self.chain_id,
            draft.account,
            self.config.entry_point,
            Some(AccountDeployment { factory, owner: draft.owner, salt: U256::ZERO }),
            self.token.clone(),
            draft.owner,
            draft.merchants.clone(),
            &draft.grant,
            signature,
        );
        file.validate()?;
        let mut store = self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (session_path, key_path) = (store.session_path(id), store.key_path(id));
        let key_file = match &draft.key {
            Some(key) => {
                save_session_key(&key_path, key)?;
                Some(key_path.clone())
            }
            None => None,
        };
        let recorded = file.save(&session_path).map_err(ConsoleError::from).and_then(|()| {
            store.add(StoredGrant {
                session_id: id,
                justification: draft.justification.clone(),
                granted_at: draft.now,
                session_file: session_path.clone(),
                key_file: key_file.clone(),
            })
        });
        if let Err(e) = recorded {
            // All or nothing: a grant the console does not list leaves no files behind.
            let _ = std::fs::remove_file(&session_path);
            let _ = std::fs::remove_file(&key_path);
            return Err(e);
        }
        drop(store);
        self.drafts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        tracing::info!(target: "console", "granted session {id} on account {}", draft.account);
        Ok(Granted { session_id: id, account: draft.account, session_file: session_path, key_file })
    }

    /// Pause, resume, revoke or revoke all: sent with the owner key, relayed with the owner's
    /// signature, or described for signing elsewhere.
    pub(crate) async fn act(&self, req: ActionRequest) -> Result<ActionResult, ConsoleError> {
        let now = self.now().await?;
        // Who owns the target, the owner call, the relayed call and its digest.
        let (account, owner, call, relayed, typed, digest, done) = match req.action {
            ActionKind::RevokeAll => {
                let account = req
                    .account
                    .ok_or_else(|| ConsoleError::BadInput("revoke all: which account?".into()))?;
                let owner = self.account_owner(account).await?;
                let epoch = owner::session_epoch(&self.provider, account).await?;
                (
                    account,
                    owner,
                    SessionKeyAccount::revokeAllSessionsCall {}.abi_encode(),
                    None,
                    typed_data::<RevokeAllSessions>(
                        json!({ "epoch": epoch }),
                        self.chain_id,
                        account,
                    ),
                    revoke_all_digest(epoch, self.chain_id, account),
                    format!("every session of {account} revoked"),
                )
            }
            kind => {
                let id = req.session.ok_or_else(|| {
                    ConsoleError::BadInput("which session? (no session id given)".into())
                })?;
                let file = self.session(id)?;
                if file.host() != x402_aa_session::policy::SessionHost::Account {
                    // The actions below call SessionKeyAccount's own functions.
                    return Err(ConsoleError::BadInput(format!(
                        "session {id} lives in a {} account: pause, resume and revoke it with \
                         `x402-aa session pause|resume|revoke` (the console acts on \
                         SessionKeyAccount sessions only)",
                        file.account_kind
                    )));
                }
                let grant = file.grant()?;
                let s = owner::remaining(&self.provider, self.chain_id, file.account, &grant, now)
                    .await?;
                let state = match s.status {
                    SessionStatus::Revoked | SessionStatus::RevokedAll => "revoked",
                    SessionStatus::Paused => "paused",
                    _ => "active",
                };
                let refuse = |what: &str| {
                    Err(ConsoleError::Conflict(format!(
                        "session {id} is {state}: nothing to {what}"
                    )))
                };
                let account = file.account;
                match kind {
                    ActionKind::Pause | ActionKind::Resume => {
                        let paused = kind == ActionKind::Pause;
                        if state != if paused { "active" } else { "paused" } {
                            return refuse(if paused { "pause" } else { "resume" });
                        }
                        let call = if paused {
                            SessionKeyAccount::pauseSessionCall { id }.abi_encode()
                        } else {
                            SessionKeyAccount::resumeSessionCall { id }.abi_encode()
                        };
                        let nonce = s.pause_nonce;
                        (
                            account,
                            file.owner,
                            call,
                            Some((id, Some((paused, nonce)))),
                            typed_data::<SetSessionPaused>(
                                json!({ "sessionId": id, "paused": paused, "nonce": nonce }),
                                self.chain_id,
                                account,
                            ),
                            pause_digest(id, paused, nonce, self.chain_id, account),
                            format!("session {id} {}", if paused { "paused" } else { "resumed" }),
                        )
                    }
                    _ => {
                        if state == "revoked" {
                            return refuse("revoke");
                        }
                        (
                            account,
                            file.owner,
                            SessionKeyAccount::revokeSession_olCall { id }.abi_encode(),
                            Some((id, None)),
                            typed_data::<RevokeSession>(
                                json!({ "sessionId": id }),
                                self.chain_id,
                                account,
                            ),
                            revoke_digest(id, self.chain_id, account),
                            format!("session {id} revoked"),
                        )
                    }
                }
            }
        };
        let deployed =
            !self.provider.get_code_at(account).await.map_err(ConsoleError::chain)?.is_empty();
        let deploy = if deployed { None } else { Some(self.deploy_call(account, owner)?) };

        if let Some(key) = &self.config.owner_key
            && req.signature.is_none()
        {
            if key.address() != owner {
                return Err(ConsoleError::Conflict(format!(
                    "{account} belongs to {owner}, not to the console's owner key {}",
                    key.address()
                )));
            }
            let _one = self.sending.lock().await;
            let provider = self.wallet(key)?;
            if let Some((factory, data)) = &deploy {
                send(&provider, key.address(), *factory, data.clone()).await?;
            }
            let tx = send(&provider, key.address(), account, call.into()).await?;
            return Ok(ActionResult { done: true, message: done, tx: Some(tx), sign: None });
        }

        let Some(signature) = req.signature else {
            return Ok(ActionResult {
                done: false,
                message: "sign the EIP-712 data below with the owner key and paste the signature, or send the transaction from the owner's wallet".into(),
                tx: None,
                sign: Some(SignRequest {
                    typed_data: typed_json(&typed),
                    digest,
                    tx: TxView { from: owner, to: account, data: call.into() },
                    deploy: deploy.map(|(to, data)| TxView { from: owner, to, data }),
                    relayer: self.config.relayer_key.is_some(),
                }),
            });
        };
        let signature = owner_signature(&signature, digest, owner)?;
        let relayer = self.config.relayer_key.as_ref().ok_or_else(|| {
            ConsoleError::NotConfigured(
                "no relayer key (X402_AA_RELAYER_KEY) to submit the signature: send the transaction shown from the owner's wallet instead".into(),
            )
        })?;
        let relayed_call = match relayed {
            Some((id, Some((paused, nonce)))) => SessionKeyAccount::setPausedWithSignatureCall {
                id,
                paused,
                nonce,
                ownerSignature: signature,
            }
            .abi_encode(),
            Some((id, None)) => {
                SessionKeyAccount::revokeWithSignatureCall { id, ownerSignature: signature }
                    .abi_encode()
            }
            None => {
                let epoch = owner::session_epoch(&self.provider, account).await?;
                SessionKeyAccount::revokeAllWithSignatureCall { epoch, ownerSignature: signature }
                    .abi_encode()
            }
        };
        let _one = self.sending.lock().await;
        let provider = self.wallet(relayer)?;
        if let Some((factory, data)) = &deploy {
            // The factory deploys for anyone: the relayer may pay for it.
            send(&provider, relayer.address(), *factory, data.clone()).await?;
        }
        let tx = send(&provider, relayer.address(), account, relayed_call.into()).await?;
        Ok(ActionResult { done: true, message: done, tx: Some(tx), sign: None })
    }

    async fn account_owner(&self, account: Address) -> Result<Address, ConsoleError> {
        if let Some(file) = self.sessions().into_iter().find(|(f, _, _)| f.account == account) {
            return Ok(file.0.owner);
        }
        if self.owner_account().await? == Some(account) {
            return self.config.owner_address().ok_or_else(|| {
                ConsoleError::NotConfigured("the account's owner is unknown".into())
            });
        }
        Err(ConsoleError::NotFound(format!("account {account} is not one this console shows")))
    }

    /// `createAccount(owner, 0)` on the factory, for an account its first payment has not
    /// deployed yet: a pause or revocation must land in real storage.
    fn deploy_call(
        &self,
        account: Address,
        owner: Address,
    ) -> Result<(Address, Bytes), ConsoleError> {
        let deployment = self
            .sessions()
            .into_iter()
            .find_map(|(f, _, _)| f.deployment.filter(|_| f.account == account));
        let (factory, salt) = match (deployment, self.config.session_account_factory) {
            (Some(d), _) => (d.factory, d.salt),
            (None, Some(factory)) => (factory, U256::ZERO),
            (None, None) => {
                return Err(ConsoleError::Conflict(format!(
                    "account {account} is not deployed and no factory is known to deploy it"
                )));
            }
        };
        let call = SessionKeyAccountFactory::createAccountCall { owner, salt };
        Ok((factory, call.abi_encode().into()))
    }
}

/// Sends an owner (or relayer) transaction the way the SDK's owner controls do: estimated first,
/// so a refused one spends no nonce of the key's cached sequence, and with a bounded receipt
/// wait ([`owner::transact`]).
async fn send(
    provider: &DynProvider,
    from: Address,
    to: Address,
    data: Bytes,
) -> Result<TxHash, ConsoleError> {
    let tx = TransactionRequest::default().with_from(from).with_to(to).with_input(data);
    Ok(owner::transact(provider, tx).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x402_aa_session::{TokenInfo, per_day};

    /// What the page shows to sign elsewhere hashes to exactly the digest the contract checks.
    #[test]
    fn typed_data_shown_hashes_to_the_contracts_digests() {
        let (chain_id, account) = (31_337, Address::repeat_byte(0xac));
        let token =
            TokenInfo { address: Address::repeat_byte(0x70), symbol: "USDT".into(), decimals: 6 };
        let grant = Scopes::new()
            .spend_cap("10 USDT".parse().unwrap(), per_day())
            .merchants([Address::repeat_byte(0x11)])
            .max_payments_per_period(5)
            .to_grant(
                Address::repeat_byte(1),
                &token,
                Address::repeat_byte(2),
                1_000,
                3,
                B256::repeat_byte(9),
            )
            .unwrap();
        let shown = grant_typed_data(&grant, chain_id, account);
        assert_eq!(shown.eip712_signing_hash().unwrap(), session_id(&grant, chain_id, account));
        let id = B256::repeat_byte(0x5e);
        let pause = typed_data::<SetSessionPaused>(
            json!({ "sessionId": id, "paused": true, "nonce": 4 }),
            chain_id,
            account,
        );
        assert_eq!(
            pause.eip712_signing_hash().unwrap(),
            pause_digest(id, true, 4, chain_id, account)
        );
        let revoke = typed_data::<RevokeSession>(json!({ "sessionId": id }), chain_id, account);
        assert_eq!(revoke.eip712_signing_hash().unwrap(), revoke_digest(id, chain_id, account));
        let all = typed_data::<RevokeAllSessions>(json!({ "epoch": 2 }), chain_id, account);
        assert_eq!(all.eip712_signing_hash().unwrap(), revoke_all_digest(2, chain_id, account));
    }
}
