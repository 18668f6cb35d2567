//! Building and signing UserOperations as owner, session key and bundler would, for both the
//! pre-issue-11 account (`Format::V1`, ABI-encoded session signature) and the current one
//! (`Format::V2`, packed grant).

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolCall, SolStruct, SolValue, eip712_domain},
};

use crate::{
    Chain, Error, Result,
    abi::{IAccount, IEntryPoint::UserOperation, ISettlement, IToken, IVerifyingPaymaster, v1, v2},
    chain::{CHAIN_ID, ENTRY_POINT},
};

/// Which session-signature format the account under test speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Before issue 11 (commit e1aeefd): the grant and session signature ABI-encoded.
    V1,
    /// The current account: the 251-byte packed grant and the packed signature layout.
    V2,
}

/// A grant, independent of its wire format.
///
/// Fields are plain Rust integers (`u128` for `uint96`, `u64` for `uint48`, `u32` for `uint24`);
/// a value must fit the contract's width or [`Grant::v1`] / [`Grant::v2`] panic. Field meanings
/// are the contract's `SessionGrant` (`contracts/README.md`).
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The only key whose signature the grant accepts.
    pub session_key: Address,
    /// Start of the grant window (unix s); also the anchor of the periods.
    pub valid_after: u64,
    /// End of the grant window (unix s).
    pub valid_until: u64,
    /// The one token the session may approve and pay.
    pub token: Address,
    /// The one settlement contract the session may call.
    pub settlement: Address,
    /// Most one payment may be (token atomic units).
    pub per_payment_max: u128,
    /// Most paid per period (token atomic units).
    pub period_cap: u128,
    /// Period length in s; 0 = the whole window is one period.
    pub period: u32,
    /// Most paid over the session's life (token atomic units).
    pub lifetime_cap: u128,
    /// Most payments per period; 0 = no count limit. Not in the V1 grant.
    pub max_payments_per_period: u32,
    /// Most paid to one merchant per period; 0 = no sub-budget. Not in the V1 grant.
    pub merchant_period_cap: u128,
    /// Merkle root of the allowed merchants; zero = any merchant.
    pub merchant_root: B256,
    /// The only paymaster a sponsored op may name; zero = any.
    pub paymaster: Address,
    /// Most one self-paid op's prefund may be (wei). V1 carries it as `maxSelfPaidGasCost`.
    pub max_gas_cost_per_op: u128,
    /// Most the self-paid prefunds may add up to per period (wei). Not in the V1 grant.
    pub gas_period_budget: u128,
    /// Same over the session's life (wei); 0 = a paymaster is required (in V1: a zero
    /// `maxSelfPaidGasCost`, same meaning).
    pub gas_lifetime_budget: u128,
    /// Must equal the account's session epoch, or the grant counts as revoked.
    pub epoch: u32,
    /// Makes otherwise equal grants distinct sessions.
    pub salt: B256,
}

impl Grant {
    /// The grant as the pre-issue-11 contract reads it. Fields V1 lacks are dropped; with
    /// `gas_lifetime_budget == 0` its gas cap is 0, V1's "paymaster required", so both formats
    /// refuse self-paid gas for the same grant.
    pub fn v1(&self) -> v1::SessionGrant {
        v1::SessionGrant {
            sessionKey: self.session_key,
            validAfter: alloy::primitives::Uint::from(self.valid_after),
            validUntil: alloy::primitives::Uint::from(self.valid_until),
            token: self.token,
            settlement: self.settlement,
            perPaymentMax: alloy::primitives::Uint::from(self.per_payment_max),
            periodCap: alloy::primitives::Uint::from(self.period_cap),
            period: self.period,
            lifetimeCap: alloy::primitives::Uint::from(self.lifetime_cap),
            merchantRoot: self.merchant_root,
            paymaster: self.paymaster,
            maxSelfPaidGasCost: if self.gas_lifetime_budget == 0 {
                0
            } else {
                self.max_gas_cost_per_op
            },
            epoch: self.epoch,
            salt: self.salt,
        }
    }

    /// The grant as the current contract's EIP-712 `SessionGrant`. Panics when a value does not
    /// fit its on-chain width.
    pub fn v2(&self) -> v2::SessionGrant {
        use alloy::primitives::Uint;
        v2::SessionGrant {
            sessionKey: self.session_key,
            validAfter: Uint::from(self.valid_after),
            validUntil: Uint::from(self.valid_until),
            token: self.token,
            settlement: self.settlement,
            perPaymentMax: Uint::from(self.per_payment_max),
            periodCap: Uint::from(self.period_cap),
            period: self.period,
            lifetimeCap: Uint::from(self.lifetime_cap),
            maxPaymentsPerPeriod: Uint::from(self.max_payments_per_period),
            merchantPeriodCap: Uint::from(self.merchant_period_cap),
            merchantRoot: self.merchant_root,
            paymaster: self.paymaster,
            maxGasCostPerOp: Uint::from(self.max_gas_cost_per_op),
            gasPeriodBudget: Uint::from(self.gas_period_budget),
            gasLifetimeBudget: Uint::from(self.gas_lifetime_budget),
            epoch: self.epoch,
            salt: self.salt,
        }
    }

    /// The session id: the EIP-712 digest the owner signs.
    pub fn id(&self, format: Format, account: Address) -> B256 {
        let domain = domain(account);
        match format {
            Format::V1 => self.v1().eip712_signing_hash(&domain),
            Format::V2 => self.v2().eip712_signing_hash(&domain),
        }
    }

    /// The 251-byte packed grant of a V2 session signature.
    pub fn packed(&self) -> Vec<u8> {
        let g = self.v2();
        let mut out = Vec::with_capacity(251);
        out.extend_from_slice(g.sessionKey.as_slice());
        out.extend_from_slice(&self.valid_after.to_be_bytes()[2..]);
        out.extend_from_slice(&self.valid_until.to_be_bytes()[2..]);
        out.extend_from_slice(g.token.as_slice());
        out.extend_from_slice(g.settlement.as_slice());
        out.extend_from_slice(&self.per_payment_max.to_be_bytes()[4..]);
        out.extend_from_slice(&self.period_cap.to_be_bytes()[4..]);
        out.extend_from_slice(&self.period.to_be_bytes());
        out.extend_from_slice(&self.lifetime_cap.to_be_bytes()[4..]);
        out.extend_from_slice(&self.max_payments_per_period.to_be_bytes()[1..]);
        out.extend_from_slice(&self.merchant_period_cap.to_be_bytes()[4..]);
        out.extend_from_slice(self.merchant_root.as_slice());
        out.extend_from_slice(g.paymaster.as_slice());
        out.extend_from_slice(&self.max_gas_cost_per_op.to_be_bytes()[4..]);
        out.extend_from_slice(&self.gas_period_budget.to_be_bytes()[4..]);
        out.extend_from_slice(&self.gas_lifetime_budget.to_be_bytes()[4..]);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(self.salt.as_slice());
        out
    }
}

/// The account's EIP-712 domain `("X402SessionAccount", "1", 31337, account)`: grants and owner
/// controls signed for one account (or chain) are worthless on another.
pub fn domain(account: Address) -> Eip712Domain {
    eip712_domain! {
        name: "X402SessionAccount",
        version: "1",
        chain_id: CHAIN_ID,
        verifying_contract: account,
    }
}

/// EntryPoint v0.6 `getUserOpHash`, computed locally (checked against the contract in the tests).
pub fn user_op_hash(op: &UserOperation) -> B256 {
    let packed = (
        op.sender,
        op.nonce,
        keccak256(&op.initCode),
        keccak256(&op.callData),
        op.callGasLimit,
        op.verificationGasLimit,
        op.preVerificationGas,
        op.maxFeePerGas,
        op.maxPriorityFeePerGas,
        keccak256(&op.paymasterAndData),
    )
        .abi_encode_params();
    keccak256((keccak256(packed), ENTRY_POINT, U256::from(CHAIN_ID)).abi_encode_params())
}

fn sig65(sig: alloy::primitives::Signature) -> [u8; 65] {
    sig.as_bytes()
}

/// A raw 65-byte `r ‖ s ‖ v` signature over `hash` itself (no EIP-191 prefix): how the owner
/// signs a session id in an enable-mode op.
pub fn sign_hash(key: &PrivateKeySigner, hash: B256) -> Result<Vec<u8>> {
    Ok(sig65(key.sign_hash_sync(&hash).map_err(|e| Error::Sign(e.to_string()))?).to_vec())
}

/// EIP-191 personal-sign of a 32-byte hash.
pub fn personal_sign(key: &PrivateKeySigner, hash: B256) -> Result<Vec<u8>> {
    Ok(sig65(key.sign_message_sync(hash.as_slice()).map_err(|e| Error::Sign(e.to_string()))?)
        .to_vec())
}

/// A payment's callData: `executeBatch([token, settlement], [approve, settle])`.
pub fn batch_payment(
    token: Address,
    settlement: Address,
    merchant: Address,
    amount: U256,
    request_hash: B256,
) -> Bytes {
    IAccount::executeBatchCall {
        dest: vec![token, settlement],
        func: vec![
            IToken::approveCall { spender: settlement, value: amount }.abi_encode().into(),
            ISettlement::settleCall { merchant, token, amount, requestHash: request_hash }
                .abi_encode()
                .into(),
        ],
    }
    .abi_encode()
    .into()
}

/// Gas fields of an op, as the bundler (or an adversary) picks them.
///
/// The default is 200k call, 300k verification and 50k pre-verification gas at 1 gwei, a prefund
/// of 550 000 gwei ([`GasFields::prefund`]).
#[derive(Debug, Clone, Copy)]
pub struct GasFields {
    /// `callGasLimit`.
    pub call_gas: u64,
    /// `verificationGasLimit`.
    pub verification_gas: u64,
    /// `preVerificationGas`.
    pub pre_verification_gas: u64,
    /// `maxFeePerGas` (wei).
    pub max_fee: u128,
    /// `maxPriorityFeePerGas` (wei).
    pub max_priority_fee: u128,
}

impl Default for GasFields {
    fn default() -> Self {
        Self {
            call_gas: 200_000,
            verification_gas: 300_000,
            pre_verification_gas: 50_000,
            max_fee: 1_000_000_000,
            max_priority_fee: 1_000_000_000,
        }
    }
}

impl GasFields {
    /// The most the EntryPoint can take from a self-paying sender for the op (v0.6 prefund).
    pub fn prefund(&self) -> U256 {
        U256::from(
            self.call_gas as u128
                + self.verification_gas as u128
                + self.pre_verification_gas as u128,
        ) * U256::from(self.max_fee)
    }
}

/// An op with no initCode (the account must exist), no paymaster and an empty signature, ready
/// for [`sponsor`] and then [`sign_owner`] or [`sign_session`].
pub fn unsigned_op(
    sender: Address,
    nonce: U256,
    call_data: Bytes,
    gas: GasFields,
) -> UserOperation {
    UserOperation {
        sender,
        nonce,
        initCode: Bytes::new(),
        callData: call_data,
        callGasLimit: U256::from(gas.call_gas),
        verificationGasLimit: U256::from(gas.verification_gas),
        preVerificationGas: U256::from(gas.pre_verification_gas),
        maxFeePerGas: U256::from(gas.max_fee),
        maxPriorityFeePerGas: U256::from(gas.max_priority_fee),
        paymasterAndData: Bytes::new(),
        signature: Bytes::new(),
    }
}

/// Signs as the owner (SimpleAccount's rule: EIP-191 over the userOpHash).
pub fn sign_owner(op: &mut UserOperation, owner: &PrivateKeySigner) -> Result<()> {
    op.signature = personal_sign(owner, user_op_hash(op))?.into();
    Ok(())
}

/// How a session op is signed.
#[derive(Debug, Clone)]
pub struct SessionSig<'a> {
    /// The layout the account under test parses.
    pub format: Format,
    /// The grant carried in the signature (and whose id is signed unless overridden).
    pub grant: &'a Grant,
    /// `Some(owner)` for an enable-mode op (carries the owner's grant signature).
    pub enable_with: Option<&'a PrivateKeySigner>,
    /// Signs the op; a key other than the grant's gives `AA24 signature error`.
    pub session_key: &'a PrivateKeySigner,
    /// The period the op claims (periods since `valid_after`); the contract checks it against the
    /// grant window and its stored period, never against the clock.
    pub period_index: u32,
    /// Merkle proof of the merchant against `merchant_root`; empty when the root is zero or the
    /// tree has one leaf.
    pub merchant_proof: Vec<B256>,
    /// Sign as if the session id were this (the finding-4 forgery); `None` = the grant's real id.
    pub id_override: Option<B256>,
}

/// Fills `op.signature` with a session signature.
pub fn sign_session(op: &mut UserOperation, s: &SessionSig<'_>) -> Result<()> {
    let real_id = s.grant.id(s.format, op.sender);
    let id = s.id_override.unwrap_or(real_id);
    let hash = user_op_hash(op);
    let digest = keccak256((hash, id, U256::from(s.period_index)).abi_encode_params());
    let session_sig = personal_sign(s.session_key, digest)?;
    let owner_sig = match s.enable_with {
        Some(owner) => sign_hash(owner, real_id)?,
        None => Vec::new(),
    };
    let mode: u8 = if s.enable_with.is_some() { 1 } else { 2 };
    let mut out = vec![mode];
    match s.format {
        Format::V1 => {
            let sig = v1::SessionSignature {
                grant: s.grant.v1(),
                ownerSignature: owner_sig.into(),
                periodIndex: s.period_index,
                merchantProof: s.merchant_proof.clone(),
                sessionSignature: session_sig.into(),
            };
            out.extend(sig.abi_encode());
        }
        Format::V2 => {
            out.extend(s.grant.packed());
            out.extend(s.period_index.to_be_bytes());
            out.extend(session_sig);
            out.extend(owner_sig);
            for p in &s.merchant_proof {
                out.extend_from_slice(p.as_slice());
            }
        }
    }
    op.signature = out.into();
    Ok(())
}

/// Sponsors `op` through the VerifyingPaymaster (before the account signs: the userOpHash covers
/// paymasterAndData).
pub fn sponsor(chain: &mut Chain, op: &mut UserOperation) -> Result<()> {
    let (valid_until, valid_after) = (
        alloy::primitives::Uint::<48, 1>::from(0u64),
        alloy::primitives::Uint::<48, 1>::from(0u64),
    );
    let pm = chain.addrs.paymaster;
    let mut data = pm.to_vec();
    data.extend((valid_until, valid_after).abi_encode_params());
    // getHash hashes the op's raw calldata head, whose offsets depend on paymasterAndData's final length
    let mut placeholder = data.clone();
    placeholder.extend([0u8; 65]);
    op.paymasterAndData = placeholder.into();
    let hash = chain.view(
        pm,
        IVerifyingPaymaster::getHashCall {
            userOp: op.clone(),
            validUntil: valid_until,
            validAfter: valid_after,
        },
    )?;
    data.extend(personal_sign(&chain.paymaster_signer, hash)?);
    op.paymasterAndData = data.into();
    Ok(())
}

/// EIP-712 digest of an owner control message in the account's domain.
pub fn control_digest<T: SolStruct>(account: Address, msg: &T) -> B256 {
    msg.eip712_signing_hash(&domain(account))
}
