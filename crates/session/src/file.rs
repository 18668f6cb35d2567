//! The session file: what an agent needs to pay under a session, in one versioned, human-readable JSON
//! document that never holds a private key. The session key lives in a separate key file (mode 0600)
//! or in an environment variable, so the session file can be logged, diffed and shared with a
//! facilitator or auditor.
//!
//! Loading re-derives everything that can be re-derived (session id, merchant root, owner signature,
//! human-readable limits) and refuses the file with a specific [`SessionFileError`] when anything
//! disagrees, so a hand-edited limit can never silently differ from what the chain enforces.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use alloy::{
    primitives::{
        Address, B256, Bytes, U256,
        utils::{format_units, parse_units},
    },
    signers::local::PrivateKeySigner,
};
use serde::{Deserialize, Serialize};
use x402_aa::accounts::AccountKind;
use x402_aa_policy::SessionHost;

use crate::{
    grant::{GrantWindow, SessionGrant, session_id},
    merkle::MerchantTree,
};

/// Current session file format. Readers refuse other versions instead of guessing.
/// Version 2: policy v2 grants (payment count, per-merchant sub-budget, gas budget).
pub const SESSION_FILE_VERSION: u32 = 2;
/// Marks the document type, so a random JSON file is not mistaken for a session.
pub const SESSION_FILE_KIND: &str = "x402-aa-session";
/// Environment variable that may carry the session private key instead of a key file.
pub const SESSION_KEY_ENV: &str = "X402_AA_SESSION_KEY";

/// The token a session pays with, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The ERC-20 contract; must be the grant's `token` (checked on load).
    pub address: Address,
    /// The symbol amounts are written with (`"1.5 USDT"`), compared case-insensitively.
    pub symbol: String,
    /// The token's decimals: how human amounts map to atomic units (6 for USDT).
    pub decimals: u8,
}

impl TokenInfo {
    /// `1500000` with 6 decimals → `"1.5 USDT"`.
    pub fn format(&self, amount: U256) -> String {
        let mut s = format_units(amount, self.decimals).unwrap_or_else(|_| amount.to_string());
        if s.contains('.') {
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.pop();
            }
        }
        format!("{s} {}", self.symbol)
    }

    /// `"1.5 USDT"` or `"1.5"` → base units; the symbol, when given, must be this token's.
    pub fn parse(&self, text: &str) -> Result<U256, SessionFileError> {
        let mut parts = text.split_whitespace();
        let number = parts.next().ok_or_else(|| SessionFileError::BadAmount(text.to_owned()))?;
        if let Some(symbol) = parts.next()
            && !symbol.eq_ignore_ascii_case(&self.symbol)
        {
            return Err(SessionFileError::BadAmount(text.to_owned()));
        }
        let fraction = number.split_once('.').map_or(0, |(_, f)| f.len());
        if parts.next().is_some()
            || number.starts_with('-')
            || fraction > usize::from(self.decimals)
        {
            return Err(SessionFileError::BadAmount(text.to_owned()));
        }
        parse_units(number, self.decimals)
            .map(Into::into)
            .map_err(|_| SessionFileError::BadAmount(text.to_owned()))
    }
}

/// The limits in words, repeated from the grant so a person can read the file; checked on load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HumanLimits {
    /// The grant's `perPaymentMax`, formatted with the token (`"1 USDT"`).
    pub per_payment: String,
    /// The grant's `periodCap`, formatted with the token.
    pub per_period: String,
    /// The grant's `period`, in seconds.
    pub period_seconds: u32,
    /// The grant's `lifetimeCap`, formatted with the token.
    pub lifetime: String,
    /// RFC 3339, UTC.
    pub valid_after: String,
    /// RFC 3339, UTC; the last second a payment may be valid.
    pub valid_until: String,
    /// True when the grant's gas lifetime budget is 0: every session op must be sponsored.
    pub paymaster_required: bool,
    /// Most payments per period; 0 = no limit.
    #[serde(default)]
    pub payments_per_period: u32,
    /// Most paid to any one merchant per period; absent = the per-period cap alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_merchant_per_period: Option<String>,
    /// Self-paid gas budget in wei (per op / per period / lifetime); absent = paymaster required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_budget_wei: Option<[String; 3]>,
}

/// How the account is deployed when its first op still has to create it (counterfactual accounts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDeployment {
    /// The factory whose `createAccount(owner, salt)` goes into the initCode.
    pub factory: Address,
    /// The owner passed to the factory (the key that signed the grant).
    pub owner: Address,
    /// The factory salt.
    pub salt: U256,
}

/// The grant as it travels: the struct the owner signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedGrant {
    /// The grant, field for field as the owner signed it.
    pub grant: GrantJson,
    /// The owner's 65-byte `r ‖ s ‖ v` signature over the session id (no EIP-191 prefix), as an
    /// enable-mode op carries it.
    pub owner_signature: Bytes,
}

/// `SessionGrant` with JSON-friendly field types (amounts as decimal strings).
///
/// The fields are wider than the contract's; converting to [`SessionGrant`] refuses a value that
/// does not fit ([`SessionFileError::GrantFieldOutOfRange`]). Meanings are the contract's
/// `SessionGrant` (`contracts/README.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantJson {
    /// The only key that may sign ops under the grant.
    pub session_key: Address,
    /// Window start (unix s, `uint48`); periods count from here.
    pub valid_after: u64,
    /// Window end (unix s, `uint48`).
    pub valid_until: u64,
    /// The one token the session may pay with.
    pub token: Address,
    /// The one settlement contract the session may call.
    pub settlement: Address,
    /// Most one payment may be (token atomic units, `uint96`).
    pub per_payment_max: U256,
    /// Most paid per period (token atomic units, `uint96`).
    pub period_cap: U256,
    /// Period length in seconds.
    pub period: u32,
    /// Most paid over the session's life (token atomic units, `uint96`).
    pub lifetime_cap: U256,
    /// Most payments per period (`uint24`); 0 = no count limit.
    pub max_payments_per_period: u32,
    /// Most paid to any one merchant per period (`uint96`); 0 = no per-merchant sub-budget.
    pub merchant_period_cap: U256,
    /// Merkle root of the allowed merchants; zero = any merchant.
    pub merchant_root: B256,
    /// The paymaster sponsored ops must use; zero = any.
    pub paymaster: Address,
    /// Most one self-paid op's prefund may be (wei, `uint96`).
    pub max_gas_cost_per_op: U256,
    /// Most the self-paid prefunds may add up to per period (wei, `uint96`).
    pub gas_period_budget: U256,
    /// Same over the session's life (wei, `uint96`); 0 = a paymaster is required.
    pub gas_lifetime_budget: U256,
    /// The account's session epoch the grant was made in; revoke-all bumps the epoch and so
    /// voids it.
    pub epoch: u32,
    /// Makes the grant, and so the session id, unique.
    pub salt: B256,
}

impl From<&SessionGrant> for GrantJson {
    fn from(g: &SessionGrant) -> Self {
        Self {
            session_key: g.sessionKey,
            valid_after: g.validAfter.to(),
            valid_until: g.validUntil.to(),
            token: g.token,
            settlement: g.settlement,
            per_payment_max: U256::from(g.perPaymentMax),
            period_cap: U256::from(g.periodCap),
            period: g.period,
            lifetime_cap: U256::from(g.lifetimeCap),
            max_payments_per_period: g.maxPaymentsPerPeriod.to(),
            merchant_period_cap: U256::from(g.merchantPeriodCap),
            merchant_root: g.merchantRoot,
            paymaster: g.paymaster,
            max_gas_cost_per_op: U256::from(g.maxGasCostPerOp),
            gas_period_budget: U256::from(g.gasPeriodBudget),
            gas_lifetime_budget: U256::from(g.gasLifetimeBudget),
            epoch: g.epoch,
            salt: g.salt,
        }
    }
}

impl TryFrom<&GrantJson> for SessionGrant {
    type Error = SessionFileError;

    fn try_from(g: &GrantJson) -> Result<Self, SessionFileError> {
        let field = |name: &'static str| SessionFileError::GrantFieldOutOfRange(name);
        let u96 = |v: U256, name| crate::grant::to_u96(v).ok_or_else(|| field(name));
        Ok(Self {
            sessionKey: g.session_key,
            validAfter: g.valid_after.try_into().map_err(|_| field("validAfter"))?,
            validUntil: g.valid_until.try_into().map_err(|_| field("validUntil"))?,
            token: g.token,
            settlement: g.settlement,
            perPaymentMax: crate::grant::to_u96(g.per_payment_max)
                .ok_or_else(|| field("perPaymentMax"))?,
            periodCap: crate::grant::to_u96(g.period_cap).ok_or_else(|| field("periodCap"))?,
            period: g.period,
            lifetimeCap: crate::grant::to_u96(g.lifetime_cap)
                .ok_or_else(|| field("lifetimeCap"))?,
            maxPaymentsPerPeriod: g
                .max_payments_per_period
                .try_into()
                .map_err(|_| field("maxPaymentsPerPeriod"))?,
            merchantPeriodCap: u96(g.merchant_period_cap, "merchantPeriodCap")?,
            merchantRoot: g.merchant_root,
            paymaster: g.paymaster,
            maxGasCostPerOp: u96(g.max_gas_cost_per_op, "maxGasCostPerOp")?,
            gasPeriodBudget: u96(g.gas_period_budget, "gasPeriodBudget")?,
            gasLifetimeBudget: u96(g.gas_lifetime_budget, "gasLifetimeBudget")?,
            epoch: g.epoch,
            salt: g.salt,
        })
    }
}

fn session_key_account() -> AccountKind {
    AccountKind::SessionKeyAccount
}

fn is_session_key_account(kind: &AccountKind) -> bool {
    *kind == AccountKind::SessionKeyAccount
}

/// The session file document.
///
/// Deserialising one (as part of any serde document, not only through
/// [`SessionFile::from_json`]) runs [`SessionFile::validate`]: a file whose grant, owner signature or
/// limits do not agree is never a `SessionFile` value. (`remote = "Self"` makes the derives
/// inherent functions, which the trait impls below wrap.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionFile {
    /// [`SESSION_FILE_VERSION`]; a file of another version is refused on load.
    pub version: u32,
    /// [`SESSION_FILE_KIND`].
    pub kind: String,
    /// CAIP-2, e.g. `eip155:689`; must agree with `chain_id`.
    pub network: String,
    /// The chain the grant is signed for (part of its EIP-712 domain).
    pub chain_id: u64,
    /// The account the agent pays from: the op's sender and the grant's EIP-712 verifying
    /// contract.
    pub account: Address,
    /// The account contract the session lives in: `session-key-account` (the session state is
    /// the account's own), `kernel`, `safe` or `biconomy` (the state is in
    /// [`SessionFile::session_validator`]).
    /// Files written before Kernel sessions existed have no field and mean a SessionKeyAccount.
    #[serde(default = "session_key_account", skip_serializing_if = "is_session_key_account")]
    pub account_kind: AccountKind,
    /// The `KernelSessionValidator` a Kernel session is installed with, or the
    /// `BiconomySessionModule` of a Biconomy session, or the `SafeSessionModule` of a Safe
    /// session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_validator: Option<Address>,
    /// The EntryPoint the account uses (v0.6).
    pub entry_point: Address,
    /// Present when the account may not be deployed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<AccountDeployment>,
    /// The grant's settlement contract (checked on load).
    pub settlement: Address,
    /// The grant's token, with the symbol and decimals the limits are written in.
    pub token: TokenInfo,
    /// The grant's EIP-712 digest in the account's domain: the key of the session's state on
    /// chain and in the ledger (re-derived on load).
    pub session_id: B256,
    /// The session key's address only; never the private key.
    pub session_key: Address,
    /// The account owner that signed the grant.
    pub owner: Address,
    /// Allowed merchants; empty means any merchant (`merchantRoot == 0`).
    pub merchants: Vec<Address>,
    /// The limits in words, for a person; must equal what the grant says (checked on load).
    pub limits: HumanLimits,
    /// The grant and the owner's signature: what the chain actually enforces.
    pub signed_grant: SignedGrant,
}

impl Serialize for SessionFile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Self::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for SessionFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = Self::deserialize(deserializer)?;
        check_format(&file.kind, file.version.into())
            .and_then(|()| file.validate())
            .map_err(serde::de::Error::custom)?;
        Ok(file)
    }
}

/// The document kind and version every session file must carry, checked before anything else.
fn check_format(kind: &str, version: u64) -> Result<(), SessionFileError> {
    if kind != SESSION_FILE_KIND {
        return Err(SessionFileError::WrongKind(kind.to_owned()));
    }
    if version != u64::from(SESSION_FILE_VERSION) {
        return Err(SessionFileError::UnsupportedVersion(version.try_into().unwrap_or(u32::MAX)));
    }
    Ok(())
}

/// Why a session file or session key was refused. A file that fails a check is never used: the
/// agent would otherwise sign payments the chain refuses, or under limits nobody granted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionFileError {
    /// The file (or key file) could not be read or its metadata not be queried.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file could not be written (directory, disk, or a stale temporary sibling); the
    /// previous file, if any, is left whole.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not JSON, or JSON without the session file's fields (unknown fields are refused too);
    /// holds serde's message.
    #[error("not a session file: {0}")]
    Json(String),
    /// The `kind` field is not [`SESSION_FILE_KIND`]: some other JSON document was given.
    #[error("session file kind is {0:?}, expected {SESSION_FILE_KIND:?}")]
    WrongKind(String),
    /// Written by another format version; use a build that reads it (or re-grant).
    #[error(
        "session file version {0} is not supported (this build reads version {SESSION_FILE_VERSION})"
    )]
    UnsupportedVersion(u32),
    /// `network` is not `eip155:<chainId>`.
    #[error("network {network:?} does not match chain id {chain_id}")]
    NetworkMismatch {
        /// The file's `network`.
        network: String,
        /// The file's `chainId`.
        chain_id: u64,
    },
    /// A grant value does not fit the contract's field; holds the field's name.
    #[error("grant field {0} is out of range for the contract's type")]
    GrantFieldOutOfRange(&'static str),
    /// The `sessionId` is not the grant's EIP-712 digest for this chain and account: the file was
    /// edited, or made for another account or chain.
    #[error("session id in file {in_file} differs from the grant's {computed}")]
    SessionIdMismatch {
        /// The file's `sessionId`.
        in_file: B256,
        /// The grant's digest.
        computed: B256,
    },
    /// The owner signature is malformed or was not made by `owner` over this grant: the chain
    /// would refuse to enable the session (`session: bad owner signature`).
    #[error("owner signature does not recover to the owner {owner}")]
    BadOwnerSignature {
        /// The file's `owner`.
        owner: Address,
    },
    /// The merchant list does not build the grant's Merkle root, so its proofs would fail.
    #[error("merchant list does not produce the grant's merchant root")]
    MerchantRootMismatch,
    /// A human-readable limit differs from the grant's value: someone edited the words, which
    /// never change what the chain enforces.
    #[error("{field} in the file says {in_file:?} but the grant says {from_grant:?}")]
    LimitMismatch {
        /// Which limit.
        field: &'static str,
        /// What the file says.
        in_file: String,
        /// What the grant says, in the same words.
        from_grant: String,
    },
    /// A copy of a grant field (session key, settlement, token), the merchant list's order, or
    /// the account kind / validator / deployment combination is inconsistent; holds which.
    #[error("{0} in the file differs from the grant")]
    FieldMismatch(&'static str),
    /// Not a token amount of this token ([`TokenInfo::parse`]); holds the text.
    #[error("amount {0:?} is not a valid token amount")]
    BadAmount(String),
    /// Neither a key file nor [`SESSION_KEY_ENV`] was given.
    #[error("no session key: pass a key file or set {SESSION_KEY_ENV}")]
    NoSessionKey,
    /// The key file or variable does not hold a valid 32-byte private key.
    #[error("session key is malformed")]
    BadSessionKey,
    /// The key is valid but not the grant's session key: its signatures would fail on chain.
    #[error("session key {found} is not this session's key {expected}")]
    WrongSessionKey {
        /// The grant's session key.
        expected: Address,
        /// The address of the key given.
        found: Address,
    },
    /// The key file is readable by group or others; refused until it is `chmod 600`.
    #[error("key file {path} is readable by group or others (mode {mode:o}); chmod 600 it")]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl SessionFileError {
    /// `invalid_session_key` for the key's errors, `invalid_session_file` for all others.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoSessionKey
            | Self::BadSessionKey
            | Self::WrongSessionKey { .. }
            | Self::KeyFilePermissions { .. } => "invalid_session_key",
            _ => "invalid_session_file",
        }
    }
}

/// RFC 3339 in UTC for a unix timestamp, without pulling in a date crate.
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for all u64 days we can meet.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

impl HumanLimits {
    /// The words for `grant`'s limits in `token`; the one source of them, so the check on load
    /// compares like with like.
    pub fn from_grant(grant: &SessionGrant, token: &TokenInfo) -> Self {
        Self {
            per_payment: token.format(U256::from(grant.perPaymentMax)),
            per_period: token.format(U256::from(grant.periodCap)),
            period_seconds: grant.period,
            lifetime: token.format(U256::from(grant.lifetimeCap)),
            valid_after: rfc3339(grant.valid_after_secs()),
            valid_until: rfc3339(grant.valid_until_secs()),
            paymaster_required: grant.gasLifetimeBudget.is_zero(),
            payments_per_period: grant.maxPaymentsPerPeriod.to(),
            per_merchant_per_period: (!grant.merchantPeriodCap.is_zero())
                .then(|| token.format(U256::from(grant.merchantPeriodCap))),
            gas_budget_wei: (!grant.gasLifetimeBudget.is_zero()).then(|| {
                [grant.maxGasCostPerOp, grant.gasPeriodBudget, grant.gasLifetimeBudget]
                    .map(|w| w.to_string())
            }),
        }
    }
}

impl SessionFile {
    /// Assembles a file from a signed grant; `merchants` is the list the grant's root was built from.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain_id: u64,
        account: Address,
        entry_point: Address,
        deployment: Option<AccountDeployment>,
        token: TokenInfo,
        owner: Address,
        merchants: Vec<Address>,
        grant: &SessionGrant,
        owner_signature: Bytes,
    ) -> Self {
        let mut merchants = merchants;
        merchants.sort();
        merchants.dedup();
        Self {
            version: SESSION_FILE_VERSION,
            kind: SESSION_FILE_KIND.to_owned(),
            network: format!("eip155:{chain_id}"),
            chain_id,
            account,
            account_kind: AccountKind::SessionKeyAccount,
            session_validator: None,
            entry_point,
            deployment,
            settlement: grant.settlement,
            limits: HumanLimits::from_grant(grant, &token),
            token,
            session_id: session_id(grant, chain_id, account),
            session_key: grant.sessionKey,
            owner,
            merchants,
            signed_grant: SignedGrant { grant: grant.into(), owner_signature },
        }
    }

    /// The same session hosted by a Kernel account's `KernelSessionValidator` at `validator`
    /// (the grant's EIP-712 domain is the Kernel account, as for a SessionKeyAccount).
    pub fn in_kernel(mut self, validator: Address) -> Self {
        self.account_kind = AccountKind::Kernel;
        self.session_validator = Some(validator);
        self.deployment = None;
        self
    }

    /// The same session hosted by a Biconomy account's `BiconomySessionModule` at `module` (the
    /// grant's EIP-712 domain is the Biconomy account).
    pub fn in_biconomy(mut self, module: Address) -> Self {
        self.account_kind = AccountKind::Biconomy;
        self.session_validator = Some(module);
        self.deployment = None;
        self
    }

    /// The same session hosted by a Safe's `SafeSessionModule` at `module` (enabled as a module
    /// and set as the Safe's fallback handler; the grant's EIP-712 domain is the Safe).
    pub fn in_safe(mut self, module: Address) -> Self {
        self.account_kind = AccountKind::Safe;
        self.session_validator = Some(module);
        self.deployment = None;
        self
    }

    /// Where the session's state lives on chain.
    pub fn host(&self) -> SessionHost {
        match (self.account_kind, self.session_validator) {
            (AccountKind::Kernel, Some(validator)) => SessionHost::KernelValidator(validator),
            (AccountKind::Biconomy, Some(module)) => SessionHost::BiconomyModule(module),
            (AccountKind::Safe, Some(module)) => SessionHost::SafeModule(module),
            _ => SessionHost::Account,
        }
    }

    /// The grant as the contract sees it.
    pub fn grant(&self) -> Result<SessionGrant, SessionFileError> {
        SessionGrant::try_from(&self.signed_grant.grant)
    }

    /// Merkle tree of the allowlist, `None` for any-merchant sessions.
    pub fn merchant_tree(&self) -> Option<MerchantTree> {
        MerchantTree::new(self.merchants.iter().copied())
    }

    /// The allowlist proof for `merchant` (empty for any-merchant sessions, or a merchant the
    /// list does not hold: the account then refuses the payment).
    pub fn merchant_proof(&self, merchant: Address) -> Vec<B256> {
        self.merchant_tree().and_then(|tree| tree.proof(merchant)).unwrap_or_default()
    }

    /// Whether the grant lets this session pay `merchant` (always, for any-merchant sessions).
    pub fn allows_merchant(&self, merchant: Address) -> bool {
        self.merchants.is_empty() || self.merchants.binary_search(&merchant).is_ok()
    }

    /// Parses and checks every derived field. The only way to get a `SessionFile` from bytes.
    pub fn from_json(json: &str) -> Result<Self, SessionFileError> {
        // Read version and kind first, so a future format says "unsupported version" rather than
        // failing on a field it added.
        let raw: serde_json::Value =
            serde_json::from_str(json).map_err(|e| SessionFileError::Json(e.to_string()))?;
        check_format(
            raw.get("kind").and_then(|k| k.as_str()).unwrap_or_default(),
            raw.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0),
        )?;
        // The inherent (unchecked) deserialiser, then the checks with their typed errors.
        let file = Self::deserialize(raw).map_err(|e| SessionFileError::Json(e.to_string()))?;
        file.validate()?;
        Ok(file)
    }

    /// Pretty-printed JSON, the form [`SessionFile::save`] writes.
    pub fn to_json(&self) -> String {
        // Serialising plain data into a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads and checks the file at `path` ([`SessionFile::from_json`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SessionFileError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|source| SessionFileError::Read { path: path.to_owned(), source })?;
        Self::from_json(&json)
    }

    /// Writes the file atomically (temporary sibling, then rename): a crash leaves the old file or
    /// the new one, never half of one. The file holds no secret, so its mode is the default.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SessionFileError> {
        let path = path.as_ref();
        write_atomically(path, self.to_json().as_bytes(), None)
    }

    /// Everything a reader could get wrong, re-derived from the signed grant.
    pub fn validate(&self) -> Result<(), SessionFileError> {
        if self.network != format!("eip155:{}", self.chain_id) {
            return Err(SessionFileError::NetworkMismatch {
                network: self.network.clone(),
                chain_id: self.chain_id,
            });
        }
        match (self.account_kind, self.session_validator) {
            (AccountKind::SessionKeyAccount, None) => {}
            (AccountKind::Kernel, Some(_)) if self.deployment.is_none() => {}
            (AccountKind::Biconomy, Some(_)) if self.deployment.is_none() => {}
            (AccountKind::Safe, Some(_)) if self.deployment.is_none() => {}
            _ => {
                return Err(SessionFileError::FieldMismatch(
                    "accountKind (session-key-account without sessionValidator, or kernel/safe/biconomy with one and no deployment)",
                ));
            }
        }
        let grant = self.grant()?;
        let computed = session_id(&grant, self.chain_id, self.account);
        if computed != self.session_id {
            return Err(SessionFileError::SessionIdMismatch { in_file: self.session_id, computed });
        }
        // By the contract's rules: a signature alloy reads but the account refuses (a high s,
        // v of 0/1) would fail the first payment on chain.
        if !x402_aa_policy::signed_by(&computed, &self.signed_grant.owner_signature, self.owner) {
            return Err(SessionFileError::BadOwnerSignature { owner: self.owner });
        }
        if grant.sessionKey != self.session_key {
            return Err(SessionFileError::FieldMismatch("sessionKey"));
        }
        if grant.settlement != self.settlement {
            return Err(SessionFileError::FieldMismatch("settlement"));
        }
        if grant.token != self.token.address {
            return Err(SessionFileError::FieldMismatch("token.address"));
        }
        let sorted: BTreeSet<Address> = self.merchants.iter().copied().collect();
        if sorted.len() != self.merchants.len() || !self.merchants.is_sorted() {
            return Err(SessionFileError::FieldMismatch(
                "merchants (must be sorted, no duplicates)",
            ));
        }
        let root = self.merchant_tree().map(|t| t.root()).unwrap_or_default();
        if root != grant.merchantRoot {
            return Err(SessionFileError::MerchantRootMismatch);
        }
        let expected = HumanLimits::from_grant(&grant, &self.token);
        let pairs = [
            ("limits.perPayment", &self.limits.per_payment, &expected.per_payment),
            ("limits.perPeriod", &self.limits.per_period, &expected.per_period),
            ("limits.lifetime", &self.limits.lifetime, &expected.lifetime),
            ("limits.validAfter", &self.limits.valid_after, &expected.valid_after),
            ("limits.validUntil", &self.limits.valid_until, &expected.valid_until),
        ];
        for (field, in_file, from_grant) in pairs {
            if in_file != from_grant {
                return Err(SessionFileError::LimitMismatch {
                    field,
                    in_file: in_file.clone(),
                    from_grant: from_grant.clone(),
                });
            }
        }
        if self.limits.period_seconds != expected.period_seconds
            || self.limits.paymaster_required != expected.paymaster_required
        {
            return Err(SessionFileError::LimitMismatch {
                field: "limits.periodSeconds/paymasterRequired",
                in_file: format!(
                    "{}/{}",
                    self.limits.period_seconds, self.limits.paymaster_required
                ),
                from_grant: format!("{}/{}", expected.period_seconds, expected.paymaster_required),
            });
        }
        if self.limits != expected {
            return Err(SessionFileError::LimitMismatch {
                field: "limits (payments per period, per-merchant cap or gas budget)",
                in_file: format!("{:?}", self.limits),
                from_grant: format!("{expected:?}"),
            });
        }
        Ok(())
    }
}

/// The session private key file: `{"sessionPrivateKey": "0x…"}`, mode 0600.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyFileJson {
    session_private_key: B256,
}

/// Writes a new session key file with mode 0600 (created with that mode, never widened later).
pub fn save_session_key(
    path: impl AsRef<Path>,
    key: &PrivateKeySigner,
) -> Result<(), SessionFileError> {
    let json = KeyFileJson { session_private_key: key.to_bytes() };
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    write_atomically(path.as_ref(), text.as_bytes(), Some(0o600))
}

/// Loads the session key from `path` if given, else from [`SESSION_KEY_ENV`]; checks it is the
/// session's key and that a key file is not readable by others.
pub fn load_session_key(
    path: Option<&Path>,
    session: &SessionFile,
) -> Result<PrivateKeySigner, SessionFileError> {
    let key = match path {
        Some(path) => {
            check_private(path)?;
            let text = std::fs::read_to_string(path)
                .map_err(|source| SessionFileError::Read { path: path.to_owned(), source })?;
            let json: KeyFileJson =
                serde_json::from_str(&text).map_err(|_| SessionFileError::BadSessionKey)?;
            PrivateKeySigner::from_bytes(&json.session_private_key)
                .map_err(|_| SessionFileError::BadSessionKey)?
        }
        None => {
            let text =
                std::env::var(SESSION_KEY_ENV).map_err(|_| SessionFileError::NoSessionKey)?;
            text.trim().parse::<PrivateKeySigner>().map_err(|_| SessionFileError::BadSessionKey)?
        }
    };
    if key.address() != session.session_key {
        return Err(SessionFileError::WrongSessionKey {
            expected: session.session_key,
            found: key.address(),
        });
    }
    Ok(key)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SessionFileError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|source| SessionFileError::Read { path: path.to_owned(), source })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SessionFileError::KeyFilePermissions { path: path.to_owned(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), SessionFileError> {
    Ok(())
}

/// Write to a temporary sibling and rename, so a crash never leaves a half-written file.
fn write_atomically(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), SessionFileError> {
    use std::io::Write;
    let err = |source| SessionFileError::Write { path: path.to_owned(), source };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(err)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::{Scopes, per_day};
    use alloy::signers::SignerSync;
    use serde_json::json;

    struct Case {
        owner: PrivateKeySigner,
        session: PrivateKeySigner,
        file: SessionFile,
    }

    fn case() -> Case {
        let owner = PrivateKeySigner::random();
        let session = PrivateKeySigner::random();
        let token =
            TokenInfo { address: Address::repeat_byte(0x70), symbol: "USDT".into(), decimals: 6 };
        let merchants = vec![Address::repeat_byte(0x22), Address::repeat_byte(0x11)];
        let grant = Scopes::new()
            .spend_cap("10 USDT".parse().unwrap(), per_day())
            .per_payment_max("1.5 USDT".parse().unwrap())
            .merchants(merchants.clone())
            .to_grant(
                session.address(),
                &token,
                Address::repeat_byte(0x5e),
                1_764_000_000,
                0,
                B256::repeat_byte(1),
            )
            .unwrap();
        let account = Address::repeat_byte(0xac);
        let id = session_id(&grant, 689, account);
        let sig: Bytes = owner.sign_hash_sync(&id).unwrap().as_bytes().into();
        let file = SessionFile::new(
            689,
            account,
            x402_aa_contracts_entry_point(),
            Some(AccountDeployment {
                factory: Address::repeat_byte(0xfa),
                owner: owner.address(),
                salt: U256::ZERO,
            }),
            token,
            owner.address(),
            merchants,
            &grant,
            sig,
        );
        Case { owner, session, file }
    }

    fn x402_aa_contracts_entry_point() -> Address {
        alloy::primitives::address!("0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789")
    }

    /// Applies `edit` to the JSON and expects loading to fail with a matching error.
    fn refuse(
        edit: impl FnOnce(&mut serde_json::Value),
        check: impl FnOnce(&SessionFileError) -> bool,
    ) {
        let c = case();
        let mut json: serde_json::Value = serde_json::from_str(&c.file.to_json()).unwrap();
        edit(&mut json);
        let err = SessionFile::from_json(&json.to_string()).unwrap_err();
        assert!(check(&err), "unexpected error: {err}");
        assert_eq!(err.reason(), "invalid_session_file");
    }

    #[test]
    fn round_trip_is_readable_and_exact() {
        let c = case();
        let json = c.file.to_json();
        assert!(json.contains("\"perPayment\": \"1.5 USDT\""), "{json}");
        assert!(json.contains("\"perPeriod\": \"10 USDT\""));
        assert!(json.contains("\"validUntil\": \"2025-11-25T16:00:00Z\""), "{json}");
        assert!(!json.to_lowercase().contains("private"), "no private key in the session file");
        let loaded = SessionFile::from_json(&json).unwrap();
        assert_eq!(loaded, c.file);
        assert_eq!(loaded.grant().unwrap().sessionKey, c.session.address());
        assert!(loaded.allows_merchant(Address::repeat_byte(0x11)));
        assert!(!loaded.allows_merchant(Address::repeat_byte(0x33)));
        let _ = c.owner;
    }

    /// A session file inside another serde document (an operator's config of many users) gets
    /// the same checks as `from_json`: no unchecked way in.
    #[test]
    fn a_file_inside_another_document_is_checked_too() {
        #[derive(Deserialize)]
        struct Operator {
            users: Vec<SessionFile>,
        }
        let c = case();
        let good = serde_json::to_value(&c.file).unwrap();
        let read: Operator = serde_json::from_value(json!({ "users": [good.clone()] })).unwrap();
        assert_eq!(read.users, vec![c.file.clone()]);
        for (field, value) in [
            ("sessionKey", json!(Address::repeat_byte(0x99))),
            ("owner", json!(Address::repeat_byte(0x98))),
            ("version", json!(1)),
            ("kind", json!("wallet")),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            let err = serde_json::from_value::<Operator>(json!({ "users": [bad] })).err();
            assert!(err.is_some(), "a file with another {field} was read unchecked");
        }
    }

    #[test]
    fn every_inconsistency_is_refused_with_its_reason() {
        refuse(
            |j| j["version"] = 1.into(),
            |e| matches!(e, SessionFileError::UnsupportedVersion(1)),
        );
        refuse(|j| j["kind"] = "wallet".into(), |e| matches!(e, SessionFileError::WrongKind(_)));
        refuse(
            |j| j["network"] = "eip155:1".into(),
            |e| matches!(e, SessionFileError::NetworkMismatch { .. }),
        );
        refuse(
            |j| j["chainId"] = 1.into(),
            |e| matches!(e, SessionFileError::NetworkMismatch { .. }),
        );
        refuse(
            |j| j["account"] = json_addr(0xbb),
            |e| matches!(e, SessionFileError::SessionIdMismatch { .. }),
        );
        refuse(
            |j| j["signedGrant"]["grant"]["periodCap"] = "0x1312d00".into(),
            |e| matches!(e, SessionFileError::SessionIdMismatch { .. }),
        );
        refuse(
            |j| j["sessionId"] = json_b256(7),
            |e| matches!(e, SessionFileError::SessionIdMismatch { .. }),
        );
        refuse(
            |j| j["owner"] = json_addr(0x99),
            |e| matches!(e, SessionFileError::BadOwnerSignature { .. }),
        );
        refuse(
            |j| j["signedGrant"]["ownerSignature"] = "0x1234".into(),
            |e| matches!(e, SessionFileError::BadOwnerSignature { .. }),
        );
        refuse(
            |j| j["sessionKey"] = json_addr(0x99),
            |e| matches!(e, SessionFileError::FieldMismatch("sessionKey")),
        );
        refuse(
            |j| j["settlement"] = json_addr(0x99),
            |e| matches!(e, SessionFileError::FieldMismatch("settlement")),
        );
        refuse(
            |j| j["token"]["address"] = json_addr(0x99),
            |e| matches!(e, SessionFileError::FieldMismatch("token.address")),
        );
        refuse(
            |j| j["merchants"] = serde_json::json!([]),
            |e| matches!(e, SessionFileError::MerchantRootMismatch),
        );
        refuse(
            |j| j["merchants"].as_array_mut().unwrap().reverse(),
            |e| matches!(e, SessionFileError::FieldMismatch(_)),
        );
        refuse(
            |j| j["limits"]["perPeriod"] = "1000 USDT".into(),
            |e| matches!(e, SessionFileError::LimitMismatch { field: "limits.perPeriod", .. }),
        );
        refuse(
            |j| j["limits"]["validUntil"] = "2099-01-01T00:00:00Z".into(),
            |e| matches!(e, SessionFileError::LimitMismatch { field: "limits.validUntil", .. }),
        );
        refuse(
            |j| j["token"]["decimals"] = 18.into(),
            |e| matches!(e, SessionFileError::LimitMismatch { .. }),
        );
        refuse(
            |j| j["limits"]["periodSeconds"] = 1.into(),
            |e| matches!(e, SessionFileError::LimitMismatch { .. }),
        );
        refuse(
            |j| j["signedGrant"]["grant"]["perPaymentMax"] = format!("{:#x}", U256::MAX).into(),
            |e| matches!(e, SessionFileError::GrantFieldOutOfRange("perPaymentMax")),
        );
        refuse(|j| j["extra"] = 1.into(), |e| matches!(e, SessionFileError::Json(_)));
        refuse(
            |j| j.as_object_mut().unwrap().remove("limits").map(drop).unwrap(),
            |e| matches!(e, SessionFileError::Json(_)),
        );
        for bad in ["", "{", "[]", "null", "{\"kind\":\"x402-aa-session\"}"] {
            assert!(SessionFile::from_json(bad).is_err(), "{bad:?}");
        }
    }

    fn json_addr(b: u8) -> serde_json::Value {
        Address::repeat_byte(b).to_string().into()
    }

    fn json_b256(b: u8) -> serde_json::Value {
        B256::repeat_byte(b).to_string().into()
    }

    /// A Biconomy session names its module; the signer then builds the module's payment shape.
    #[test]
    fn biconomy_session_files_name_their_module() {
        use crate::signer::PaymentAccount;
        let c = case();
        let module = Address::repeat_byte(0x3d);
        let file = c.file.clone().in_biconomy(module);
        assert_eq!(file.host(), SessionHost::BiconomyModule(module));
        let json = file.to_json();
        let loaded = SessionFile::from_json(&json).unwrap();
        assert_eq!(loaded, file);
        // with a deployment (a counterfactual account) it is refused: the owner installs the
        // module in an account that exists
        let mut with_deployment = file.clone();
        with_deployment.deployment = c.file.deployment;
        assert!(matches!(
            SessionFile::from_json(&with_deployment.to_json()),
            Err(SessionFileError::FieldMismatch(_))
        ));
        let account = crate::signer::SessionAccount::new(file.clone(), c.session.clone()).unwrap();
        assert_eq!(account.kind(), AccountKind::Biconomy);
        let settle = x402_aa::SettleCall {
            merchant: Address::repeat_byte(0x11),
            token: file.token.address,
            amount: U256::from(1_000_000),
            request_hash: B256::repeat_byte(9),
        };
        let call = x402_aa::accounts::PaymentCall { settlement: file.settlement, settle };
        assert_eq!(
            account.abi().encode_payment(&call),
            x402_aa::accounts::biconomy::encode_session_payment(module, file.settlement, &settle)
        );
    }

    /// A Safe session names its module; the signer then builds `executeSessionPayment` and signs
    /// with the plain session signature (no envelope: the module is reached through the Safe's
    /// fallback handler, routed by the callData).
    #[test]
    fn safe_session_files_name_their_module() {
        use crate::signer::{PaymentAccount, SessionPrepared};
        let c = case();
        let module = Address::repeat_byte(0x5a);
        let file = c.file.clone().in_safe(module);
        assert_eq!(file.host(), SessionHost::SafeModule(module));
        let loaded = SessionFile::from_json(&file.to_json()).unwrap();
        assert_eq!(loaded, file);
        let mut with_deployment = file.clone();
        with_deployment.deployment = c.file.deployment;
        assert!(matches!(
            SessionFile::from_json(&with_deployment.to_json()),
            Err(SessionFileError::FieldMismatch(_))
        ));
        let account = crate::signer::SessionAccount::new(file.clone(), c.session.clone()).unwrap();
        assert_eq!(account.kind(), AccountKind::Safe);
        let settle = x402_aa::SettleCall {
            merchant: Address::repeat_byte(0x11),
            token: file.token.address,
            amount: U256::from(1_000_000),
            request_hash: B256::repeat_byte(9),
        };
        let call = x402_aa::accounts::PaymentCall { settlement: file.settlement, settle };
        let data = account.abi().encode_payment(&call);
        assert_eq!(
            data,
            x402_aa::accounts::safe::session::encode_session_payment(file.settlement, &settle)
        );
        assert_eq!(data.len(), x402_aa::accounts::safe::session::SESSION_PAYMENT_LEN);
        assert_eq!(account.init_code().unwrap(), None, "the Safe exists before the grant");
        let prepared = SessionPrepared {
            mode: crate::signature::SessionMode::Use,
            period_index: 0,
            merchant_proof: Vec::new(),
            gas: Default::default(),
        };
        let placeholder = account.placeholder_signature(&prepared);
        assert_eq!(placeholder.len(), 321, "mode, grant, period, session signature");
        assert_eq!(placeholder[0], 2);
        assert_eq!(account.abi().signer_role(&placeholder), x402_aa::accounts::SignerRole::Session);
    }

    #[test]
    fn files_round_trip_and_the_key_file_is_private() {
        let c = case();
        let dir = std::env::temp_dir().join(format!("x402-aa-session-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let session_path = dir.join("session.json");
        let key_path = dir.join("session.key");
        let _ = std::fs::remove_file(&session_path);
        let _ = std::fs::remove_file(&key_path);
        c.file.save(&session_path).unwrap();
        assert_eq!(SessionFile::load(&session_path).unwrap(), c.file);
        save_session_key(&key_path, &c.session).unwrap();
        assert_eq!(
            load_session_key(Some(&key_path), &c.file).unwrap().address(),
            c.session.address()
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_session_key(Some(&key_path), &c.file).unwrap_err();
            assert!(matches!(err, SessionFileError::KeyFilePermissions { .. }), "{err}");
            assert_eq!(err.reason(), "invalid_session_key");
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        // Someone else's key is refused even when the file is fine.
        let other = dir.join("other.key");
        let _ = std::fs::remove_file(&other);
        save_session_key(&other, &PrivateKeySigner::random()).unwrap();
        assert!(matches!(
            load_session_key(Some(&other), &c.file),
            Err(SessionFileError::WrongSessionKey { .. })
        ));
        std::fs::write(&other, "not json").unwrap();
        assert!(matches!(
            load_session_key(Some(&other), &c.file),
            Err(SessionFileError::BadSessionKey)
        ));
        assert!(matches!(
            load_session_key(Some(&dir.join("missing.key")), &c.file),
            Err(SessionFileError::Read { .. })
        ));
        assert!(matches!(
            SessionFile::load(dir.join("missing.json")),
            Err(SessionFileError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
