//! A deployed SessionKeyAccount with a funded balance, an owner, a session key and a merchant, plus a
//! builder for session payment ops. Every knob a scope test turns is a field of [`Pay`].

use alloy::{
    network::TransactionBuilder,
    primitives::{
        Address, B256, Bytes, U256,
        aliases::{U48, U96, U192},
        keccak256,
    },
    rpc::types::TransactionRequest,
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{SolCall, SolEvent},
};
use x402_aa::{UserOperation, encode_nonce, encode_payment_batch};
use x402_aa_contracts::{SessionKeyAccount, SessionKeyAccountFactory, SettlementContract};
use x402_aa_devnet::{Devnet, HandleOpsOutcome, Included};
use x402_aa_session::{
    GrantWindow, MerchantTree, SessionGrant, SessionMode, SessionSignature, SessionSignatureCodec,
    session_digest, session_id,
};

/// One dollar in TestStablecoin units (6 decimals).
pub(crate) const USD: u64 = 1_000_000;
pub(crate) const DAY: u32 = 86_400;

pub(crate) struct Fx {
    pub(crate) devnet: Devnet,
    pub(crate) owner: PrivateKeySigner,
    pub(crate) session_key: PrivateKeySigner,
    pub(crate) account: Address,
    pub(crate) merchant: Address,
    pub(crate) stranger: Address,
    pub(crate) start: u64,
}

/// Everything about one session payment op; defaults are a valid 1 USD payment to `fx.merchant`.
#[derive(Clone)]
pub(crate) struct Pay {
    pub(crate) grant: SessionGrant,
    pub(crate) mode: SessionMode,
    pub(crate) merchant: Address,
    pub(crate) amount: U256,
    pub(crate) request_hash: B256,
    /// `None` = the period containing the current block time.
    pub(crate) period_index: Option<u32>,
    /// Replaces the payment callData (method-scope tests).
    pub(crate) call_data: Option<Bytes>,
    /// Sponsor through the devnet's VerifyingPaymaster.
    pub(crate) paymaster: bool,
    /// Replaces the proof the fixture would compute (counterparty tests).
    pub(crate) merchant_proof: Option<Vec<B256>>,
    /// Replaces the owner's grant signature (replay tests).
    pub(crate) owner_signature: Option<Bytes>,
    /// Signs with this key instead of the session key.
    pub(crate) signer: Option<PrivateKeySigner>,
    /// Rewrites the session signature once made (malleability tests).
    pub(crate) session_signature_edit: Option<fn([u8; 65]) -> [u8; 65]>,
    pub(crate) sender: Option<Address>,
    pub(crate) nonce_key: u64,
    /// Merchants of the allowlist the grant was built from (for proofs).
    pub(crate) allowlist: Vec<Address>,
    /// Replaces the whole signature (format tests).
    pub(crate) raw_signature: Option<Bytes>,
    /// The token the op's `settle` names, when `call_data` pays another one (the grant's otherwise).
    pub(crate) token: Option<Address>,
}

impl Fx {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let devnet = Devnet::spawn().await?;
        // A funded key the devnet's wallet can sign with, so the owner can send revocations itself.
        let owner = devnet.keys.spare[0].clone();
        let session_key = PrivateKeySigner::random();
        let account = deploy_account(&devnet, owner.address(), U256::ZERO).await?;
        devnet.mint(account, U256::from(1_000 * USD)).await?;
        let merchant = devnet.keys.spare[1].address();
        let stranger = devnet.keys.spare[2].address();
        let start = devnet.block_timestamp().await?;
        Ok(Self { devnet, owner, session_key, account, merchant, stranger, start })
    }

    /// 10 USDT/day, max 1 USDT per payment, 100 USDT lifetime, `merchant` only, 24 h, paymaster required.
    pub(crate) fn grant(&self) -> SessionGrant {
        let a = self.devnet.addresses;
        SessionGrant {
            sessionKey: self.session_key.address(),
            validAfter: U48::from(self.start - 60),
            validUntil: U48::from(self.start + u64::from(DAY) * 7),
            token: a.token,
            settlement: a.settlement,
            perPaymentMax: U96::from(USD),
            periodCap: U96::from(10 * USD),
            period: DAY,
            lifetimeCap: U96::from(100 * USD),
            merchantRoot: MerchantTree::new([self.merchant]).map(|t| t.root()).unwrap_or_default(),
            paymaster: a.verifying_paymaster,
            epoch: 0,
            salt: fresh(),
            ..SessionGrant::default()
        }
    }

    pub(crate) fn pay(&self, grant: &SessionGrant) -> Pay {
        Pay {
            grant: grant.clone(),
            mode: SessionMode::Enable,
            merchant: self.merchant,
            amount: U256::from(USD),
            request_hash: fresh(),
            period_index: None,
            call_data: None,
            paymaster: true,
            merchant_proof: None,
            owner_signature: None,
            signer: None,
            session_signature_edit: None,
            sender: None,
            nonce_key: 0,
            allowlist: vec![self.merchant],
            raw_signature: None,
            token: None,
        }
    }

    pub(crate) fn session_id(&self, grant: &SessionGrant) -> B256 {
        session_id(grant, self.devnet.chain_id(), self.account)
    }

    pub(crate) fn sign_grant_for(
        &self,
        grant: &SessionGrant,
        chain_id: u64,
        account: Address,
    ) -> Bytes {
        let id = session_id(grant, chain_id, account);
        self.owner.sign_hash_sync(&id).expect("sign").as_bytes().into()
    }

    /// Builds and signs the op described by `p`.
    pub(crate) async fn op(&self, p: &Pay) -> anyhow::Result<(UserOperation, B256)> {
        let a = self.devnet.addresses;
        let sender = p.sender.unwrap_or(self.account);
        let chain_id = self.devnet.chain_id();
        let now = self.devnet.block_timestamp().await?;
        let period_index = p.period_index.or_else(|| p.grant.period_index_at(now)).unwrap_or(0);
        let nonce_seq = self.devnet.entry_point_nonce(sender, U192::from(p.nonce_key)).await?;
        let mut op = UserOperation {
            sender,
            nonce: encode_nonce(U192::from(p.nonce_key), 0) + nonce_seq,
            init_code: Bytes::new(),
            call_data: p.call_data.clone().unwrap_or_else(|| {
                encode_payment_batch(a.token, a.settlement, p.merchant, p.amount, p.request_hash)
            }),
            call_gas_limit: U256::from(300_000),
            verification_gas_limit: U256::from(400_000),
            pre_verification_gas: U256::from(60_000),
            max_fee_per_gas: U256::from(3_000_000_000u64),
            max_priority_fee_per_gas: U256::from(1_000_000_000u64),
            paymaster_and_data: Bytes::new(),
            signature: Bytes::new(),
        };
        let proof = match &p.merchant_proof {
            Some(proof) => proof.clone(),
            None => MerchantTree::new(p.allowlist.iter().copied())
                .and_then(|t| t.proof(p.merchant))
                .unwrap_or_default(),
        };
        let owner_signature = match (&p.owner_signature, p.mode) {
            (Some(sig), _) => sig.clone(),
            (None, SessionMode::Enable) => self.sign_grant_for(&p.grant, chain_id, sender),
            (None, SessionMode::Use) => Bytes::new(),
        };
        let mut sig = SessionSignature {
            grant: p.grant.clone(),
            owner_signature,
            period_index,
            merchant_proof: proof,
            session_signature: Bytes::from(vec![0u8; 65]),
        };
        // The paymaster hash covers the signature's length, so size it before asking for sponsorship.
        op.signature = match &p.raw_signature {
            Some(raw) => raw.clone(),
            None => sig.encode(p.mode)?,
        };
        if p.paymaster {
            op.paymaster_and_data = self.devnet.paymaster_and_data(&op, now + 3600, 0).await?;
        }
        let hash = self.devnet.user_op_hash(&op);
        let id = session_id(&p.grant, chain_id, sender);
        let signer = p.signer.as_ref().unwrap_or(&self.session_key);
        let session_signature =
            signer.sign_message_sync(session_digest(hash, id, period_index).as_slice())?.as_bytes();
        let edit = p.session_signature_edit.unwrap_or(std::convert::identity);
        sig.session_signature = edit(session_signature).to_vec().into();
        op.signature = match &p.raw_signature {
            Some(raw) => raw.clone(),
            None => sig.encode(p.mode)?,
        };
        Ok((op, hash))
    }

    pub(crate) async fn submit(&self, p: &Pay) -> anyhow::Result<(HandleOpsOutcome, B256)> {
        let (op, hash) = self.op(p).await?;
        Ok((self.devnet.handle_ops(&[op], self.devnet.keys.bundler.address()).await?, hash))
    }

    /// Submits and requires the op to be included and to have settled.
    pub(crate) async fn pay_ok(&self, p: &Pay) -> anyhow::Result<Included> {
        let (outcome, hash) = self.submit(p).await?;
        if let Some((_, reason)) = outcome.failed_op() {
            anyhow::bail!("refused: {reason}");
        }
        let included = outcome.into_included()?;
        let event = included.event(hash).ok_or_else(|| anyhow::anyhow!("no UserOperationEvent"))?;
        anyhow::ensure!(
            event.success,
            "execution reverted: {:?}",
            included.revert_reason_strings()
        );
        Ok(included)
    }

    /// Submits and requires the EntryPoint to refuse the op with exactly `reason`.
    pub(crate) async fn refused(&self, p: &Pay, reason: &str) -> anyhow::Result<()> {
        let (outcome, _) = self.submit(p).await?;
        match outcome.failed_op() {
            Some((_, got)) => anyhow::ensure!(got == reason, "expected {reason:?}, got {got:?}"),
            None => anyhow::bail!("expected refusal {reason:?}, but the op was included"),
        }
        Ok(())
    }

    /// `(status, periodIndex, periodSpent, lifetimeSpent)` from the account's own view.
    pub(crate) async fn state(&self, grant: &SessionGrant) -> anyhow::Result<(u8, u32, u64, u64)> {
        let s = SessionKeyAccount::new(self.account, self.devnet.provider())
            .sessionState(self.session_id(grant))
            .call()
            .await?;
        Ok((s.status, s.periodIndex, s.periodSpent.to::<u64>(), s.lifetimeSpent.to::<u64>()))
    }

    /// Sends a call to the account from the owner's EOA.
    pub(crate) async fn owner_call(&self, input: impl SolCall) -> anyhow::Result<()> {
        let tx = TransactionRequest::default()
            .with_from(self.owner.address())
            .with_to(self.account)
            .with_input(input.abi_encode());
        self.devnet.send("owner call", tx).await?;
        Ok(())
    }
}

pub(crate) async fn deploy_account(
    devnet: &Devnet,
    owner: Address,
    salt: U256,
) -> anyhow::Result<Address> {
    let factory = devnet.addresses.session_account_factory;
    let account = SessionKeyAccountFactory::new(factory, devnet.provider())
        .getAddress(owner, salt)
        .call()
        .await?;
    let tx = TransactionRequest::default()
        .with_from(devnet.keys.deployer.address())
        .with_to(factory)
        .with_input(SessionKeyAccountFactory::createAccountCall { owner, salt }.abi_encode());
    devnet.send("createAccount", tx).await?;
    Ok(account)
}

pub(crate) fn receipt_logs(fx: &Fx, included: &Included) -> Vec<SettlementContract::ReceiptLog> {
    included
        .receipt
        .inner
        .logs()
        .iter()
        .filter(|l| l.address() == fx.devnet.addresses.settlement)
        .filter_map(|l| SettlementContract::ReceiptLog::decode_log(&l.inner).ok())
        .map(|l| l.data)
        .collect()
}

pub(crate) fn request(n: u64) -> B256 {
    keccak256(n.to_be_bytes())
}

/// A value no other call in this process returns: salts and request hashes must never repeat.
pub(crate) fn fresh() -> B256 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    keccak256([b"x402-aa-session test ".as_slice(), &n.to_be_bytes()].concat())
}

/// The same key's other signature of the same digest, which the contracts refuse.
pub(crate) fn malleated(signature: [u8; 65]) -> [u8; 65] {
    x402_aa_session::policy::malleable_twin(&signature)
}

/// The signature with `v` as 0/1 instead of 27/28: the same signer to alloy, none to `ecrecover`.
pub(crate) fn zero_based_v(signature: [u8; 65]) -> [u8; 65] {
    let mut out = signature;
    out[64] -= 27;
    out
}
