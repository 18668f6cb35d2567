//! The session grant: what an owner allows a session key to pay, signed once as EIP-712 typed data.

/// The grant itself: the `sol!` mirror of `SessionGrant` in `contracts/src/SessionKeyAccount.sol`, defined
/// once with the other contract bindings. Its EIP-712 type string is derived from the field names.
pub use x402_aa_contracts::SessionGrant;

use alloy::{
    dyn_abi::Eip712Domain,
    primitives::{Address, B256},
    sol,
    sol_types::{SolStruct, eip712_domain},
};

sol! {
    /// Owner-signed, relayable revocation of one session.
    #[derive(Debug, PartialEq, Eq)]
    struct RevokeSession {
        bytes32 sessionId;
    }

    /// Owner-signed, relayable revocation of every session granted in `epoch`.
    #[derive(Debug, PartialEq, Eq)]
    struct RevokeAllSessions {
        uint32 epoch;
    }

    /// Owner-signed, relayable pause (or resume) of one session; `nonce` makes it single use.
    #[derive(Debug, PartialEq, Eq)]
    struct SetSessionPaused {
        bytes32 sessionId;
        bool paused;
        uint32 nonce;
    }
}

/// Name and version of the account's EIP-712 domain; chain id and account address complete it, so a
/// grant signed for one account or chain is worthless on any other.
pub const DOMAIN_NAME: &str = "X402SessionAccount";
/// Version of the account's EIP-712 domain (see [`DOMAIN_NAME`]).
pub const DOMAIN_VERSION: &str = "1";

/// The EIP-712 domain of one account on one chain.
pub fn account_domain(chain_id: u64, account: Address) -> Eip712Domain {
    eip712_domain! {
        name: DOMAIN_NAME,
        version: DOMAIN_VERSION,
        chain_id: chain_id,
        verifying_contract: account,
    }
}

/// The session id: the EIP-712 digest the owner signs, equal to the contract's `sessionId(grant)`.
pub fn session_id(grant: &SessionGrant, chain_id: u64, account: Address) -> B256 {
    grant.eip712_signing_hash(&account_domain(chain_id, account))
}

/// Digest the owner signs for `revokeWithSignature(id, sig)`.
pub fn revoke_digest(session: B256, chain_id: u64, account: Address) -> B256 {
    RevokeSession { sessionId: session }.eip712_signing_hash(&account_domain(chain_id, account))
}

/// Digest the owner signs for `revokeAllWithSignature(epoch, sig)`.
pub fn revoke_all_digest(epoch: u32, chain_id: u64, account: Address) -> B256 {
    RevokeAllSessions { epoch }.eip712_signing_hash(&account_domain(chain_id, account))
}

/// Digest the owner signs for `setPausedWithSignature(id, paused, nonce, sig)`.
pub fn pause_digest(
    session: B256,
    paused: bool,
    nonce: u32,
    chain_id: u64,
    account: Address,
) -> B256 {
    SetSessionPaused { sessionId: session, paused, nonce }
        .eip712_signing_hash(&account_domain(chain_id, account))
}

/// The window `[valid_after, valid_until]` (inclusive, unix seconds) in which a payment claiming
/// `period_index` can be included, exactly as the contract returns it to the EntryPoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodWindow {
    /// First second the payment can be included (chain time).
    pub valid_after: u64,
    /// Last second the payment can be included (chain time).
    pub valid_until: u64,
}

/// Time arithmetic of a grant, shared by the SDK (which period to claim) and the facilitator.
pub trait GrantWindow {
    /// `validAfter`: the first second of the grant window, unix seconds (chain time).
    fn valid_after_secs(&self) -> u64;
    /// `validUntil`: the last second of the grant window (inclusive), unix seconds (chain time).
    fn valid_until_secs(&self) -> u64;
    /// The period containing `now`, or `None` outside the grant window. Periods are fixed windows of
    /// `period` seconds anchored at `validAfter`; `period == 0` makes the whole grant one period.
    fn period_index_at(&self, now: u64) -> Option<u32>;
    /// Mirrors `_periodWindow` in the contract; `None` where the contract reverts.
    fn period_window(&self, period_index: u32) -> Option<PeriodWindow>;
}

impl GrantWindow for SessionGrant {
    fn valid_after_secs(&self) -> u64 {
        self.validAfter.to::<u64>()
    }

    fn valid_until_secs(&self) -> u64 {
        self.validUntil.to::<u64>()
    }

    fn period_index_at(&self, now: u64) -> Option<u32> {
        if now < self.valid_after_secs() || now > self.valid_until_secs() {
            return None;
        }
        if self.period == 0 {
            return Some(0);
        }
        u32::try_from((now - self.valid_after_secs()) / u64::from(self.period)).ok()
    }

    fn period_window(&self, period_index: u32) -> Option<PeriodWindow> {
        let (after, until) = (self.valid_after_secs(), self.valid_until_secs());
        if self.period == 0 {
            return (period_index == 0)
                .then_some(PeriodWindow { valid_after: after, valid_until: until });
        }
        let offset = u64::from(period_index).checked_mul(u64::from(self.period))?;
        let start = after.checked_add(offset)?;
        if start > until {
            return None;
        }
        let end = start + u64::from(self.period) - 1;
        let valid_until = end.min(until);
        (valid_until != 0).then_some(PeriodWindow { valid_after: start, valid_until })
    }
}

/// `v` as the contract's `uint96`, or `None` when it does not fit (the grant's amount fields).
pub fn to_u96(v: alloy::primitives::U256) -> Option<alloy::primitives::aliases::U96> {
    u128::try_from(v).ok().and_then(|n| alloy::primitives::aliases::U96::try_from(n).ok())
}
