//! The client-side budget ledger: the agent reserves budget **before** it signs a payment, so it never
//! signs one the account contract would refuse for its scopes, and two concurrent payments that
//! together exceed a cap never both get signed.
//!
//! # Flow
//! 1. [`Ledger::register_session`] with the session's [`Limits`] (from the
//!    [`SessionGrant`](crate::SessionGrant) and its
//!    merchant list), then [`Ledger::reconcile`] with the account's `sessionState(id)` read at a block.
//! 2. Per payment: [`Ledger::reserve`] → sign the UserOp claiming [`Reservation::period_index`] → on
//!    inclusion [`Ledger::commit`] with the receipt's [`SettlementRecord`]; if the op will certainly
//!    not land (never sent, rejected before submission) [`Ledger::release`]. A reservation neither
//!    committed nor released lapses at its `expires_at`, which the ledger caps at the end of its
//!    period (the EntryPoint cannot include the op after that).
//!
//! # Checks, in order (the account contract's order, then the settlement contract's)
//! `invalid_request`, `unknown_session`, `session_revoked`, `session_not_yet_valid` /
//! `session_expired`, `merchant_not_allowed`, `per_payment_max_exceeded`, `period_already_over`,
//! `spend_cap_exceeded`, `lifetime_cap_exceeded`, `duplicate_request`. Period index =
//! `floor((now − valid_after) / period)` as in the contract ([`Limits::period_index_at`]).
//!
//! # Backends: SQLite (embedded, the default) or Postgres (shared across machines)
//! The bookkeeping and the one policy check are written once (this module, over the `Tx` trait);
//! the backends only store rows. [`Ledger::open_location`] picks one: a `postgres://` or
//! `postgresql://` URL connects to Postgres, anything else is an SQLite file path.
//!
//! # Atomicity, concurrency, crashes
//! - **SQLite**: one file (WAL journal, `synchronous = FULL`, busy timeout); any number of
//!   [`Ledger`]s in any number of processes on one machine may open it. Every operation is one
//!   `BEGIN IMMEDIATE` transaction: it takes the write lock first, then lazily expires lapsed
//!   reservations, reads, checks in Rust and writes, so checks and the insert of a reservation are
//!   one atomic step across processes.
//! - **Postgres** ([`Ledger::connect`]): replicas on different machines share one budget. Every
//!   write is one `READ COMMITTED` transaction that first locks the session's row
//!   (`SELECT … FOR UPDATE`), so the operations of one session serialise across processes while
//!   sessions proceed in parallel; a reservation also takes a transaction-scoped advisory lock on
//!   its request hash (the duplicate check spans sessions). Reads run in one `REPEATABLE READ`
//!   snapshot. A deadlock or serialisation failure is retried; a lock held longer than the busy
//!   timeout ([`LedgerOptions`]) is [`LedgerError::PostgresBusy`] (`ledger_busy`). Tables live in
//!   the first schema of the connection's `search_path` (created if missing; choose one with
//!   `?options=-csearch_path%3Dname` in the URL), prefixed `x402_ledger_`.
//!
//! A crash at any point leaves either the whole operation or none of it. Amounts are `U256`, stored
//! as fixed-width hex text; no floating point anywhere.
//!
//! # Reconcile rule: the chain is the truth for committed spending
//! [`Ledger::reconcile`] stores the chain snapshot `(block B, period P, period_spent, lifetime_spent)`
//! as the session's **baseline** (a snapshot from an earlier block than the stored one is ignored).
//! A local commit carries the block that included it; it is **covered** by the baseline when its
//! block ≤ B (and its period ≤ P): the chain figures already contain it. Then, for the current
//! period `k`:
//!
//! ```text
//! committed(k)     = max(baseline.period_spent if P == k else 0, covered commits in k) + commits after B in k
//! committed(life)  = max(baseline.lifetime_spent,               covered commits)      + commits after B
//! reserved         = pending reservations with expires_at > now   (of period k / of every period)
//! refuse when committed + reserved + amount > cap
//! ```
//!
//! - A payment is counted once: either inside the chain figure (covered) or on top of it (after B).
//! - Committed spending never falls below the chain's (spending by another client of the same
//!   session is picked up), nor below the receipts the ledger holds (`max`; a chain figure lower than
//!   the covered receipts — reorg, snapshot from another block — is reported in
//!   [`ReconcileReport::local_ahead_by`]).
//! - Pending reservations are kept: an in-flight payment may land after the snapshot. One that
//!   landed before it but whose commit was lost (crash between inclusion and commit) is counted twice
//!   — the safe side — until it is committed (then covered by its block) or expires. After a restart,
//!   look up pending reservations by request hash (`isSettled` on the settlement contract) and commit
//!   or release them.
//! - A chain `status` of revoked marks the session revoked (final). A revoke-all (epoch bump) is not
//!   visible in `sessionState`; call [`Ledger::mark_revoked`] for it.
//!
//! A receipt is a fact: [`Ledger::commit`] also succeeds on an expired or released reservation (the
//! payment landed after all) and counts it again.
//!
//! The ledger is synchronous; from async code call it through [`blocking`], which runs it on
//! tokio's blocking pool. A `Ledger` is `Send + Sync` (one connection behind a mutex); use one per
//! thread for parallel access.

mod budget;
mod error;
mod postgres;
mod store;
mod tx;
mod types;

use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use alloy::primitives::{B256, U256};
use rusqlite::{Connection, OpenFlags};

pub use error::LedgerError;
pub use types::{
    ChainSessionStatus, LedgerOptions, Limits, OnChainState, ReconcileOutcome, ReconcileReport,
    Remaining, Reservation, ReservationId, ReservationRequest, ReservationState, SettlementRecord,
};

use budget::{period_activity, tally};
use store::{Baseline, SessionRow};
use tx::Tx;
use x402_aa_policy::{Attempt, PeriodSpend, SessionUsage, check_time, claim_period, period_window};

/// Whether `location` names a Postgres ledger (a `postgres://` or `postgresql://` URL) rather than
/// an SQLite file.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Runs one ledger call on tokio's blocking pool. SQLite blocks on the disk and, under contention,
/// on another connection's write lock for up to the busy timeout (Postgres: on the network and the
/// session's row lock); on a runtime worker that would stall every other task scheduled there.
pub async fn blocking<T: Send + 'static>(
    ledger: &Arc<Ledger>,
    call: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    let ledger = Arc::clone(ledger);
    on_blocking_pool(move || call(&ledger)).await
}

/// [`Ledger::connect`] on tokio's blocking pool (it waits for the network and the schema check).
pub async fn connect_blocking(url: String) -> Result<Ledger, LedgerError> {
    on_blocking_pool(move || Ledger::connect(&url)).await
}

async fn on_blocking_pool<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    match tokio::task::spawn_blocking(call).await {
        Ok(result) => result,
        // A panic in the ledger surfaces exactly as it would from a direct call.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Cancelled before it started (the runtime is shutting down): the call never ran.
        Err(_) => Err(LedgerError::from(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("ledger call cancelled: the async runtime is shutting down".into()),
        ))),
    }
}

/// The budget ledger over one SQLite database or one Postgres database.
#[derive(Debug)]
pub struct Ledger {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite(Mutex<Connection>),
    // Boxed: the connection settings are several times the size of an SQLite handle.
    Postgres(Box<postgres::PgLedger>),
}

/// What a transaction may do: `Write` serialises with the session's other writers first; `Read`
/// sees one consistent snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Write,
    Read,
}

impl Ledger {
    /// Opens (creating if needed) the ledger file at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        Self::open_with(path, &LedgerOptions::default())
    }

    /// [`Ledger::open`] with `options` (e.g. a longer busy timeout for many processes on one file).
    pub fn open_with(path: impl AsRef<Path>, options: &LedgerOptions) -> Result<Self, LedgerError> {
        let path = path.as_ref();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|source| LedgerError::CannotOpen { path: path.to_path_buf(), source })?;
        Self::init(conn, options, true)
    }

    /// A private, non-persistent ledger (tests, one-shot tools).
    pub fn in_memory() -> Result<Self, LedgerError> {
        Self::init(Connection::open_in_memory()?, &LedgerOptions::default(), false)
    }

    /// Connects to the Postgres ledger at `url` (`postgres://user:password@host:port/dbname`,
    /// libpq's URL form; no TLS), creating its tables if needed. Blocks until connected: from async
    /// code, call it on the blocking pool.
    pub fn connect(url: &str) -> Result<Self, LedgerError> {
        Self::connect_with(url, &LedgerOptions::default())
    }

    /// [`Ledger::connect`] with `options` (the busy timeout bounds the wait for a session's row
    /// lock).
    pub fn connect_with(url: &str, options: &LedgerOptions) -> Result<Self, LedgerError> {
        Ok(Self {
            backend: Backend::Postgres(Box::new(postgres::PgLedger::connect(url, options)?)),
        })
    }

    /// [`Ledger::connect`] for a `postgres://` or `postgresql://` URL ([`is_postgres_url`]),
    /// [`Ledger::open`] for anything else (an SQLite file path).
    pub fn open_location(location: &str) -> Result<Self, LedgerError> {
        if is_postgres_url(location) { Self::connect(location) } else { Self::open(location) }
    }

    fn init(mut conn: Connection, options: &LedgerOptions, wal: bool) -> Result<Self, LedgerError> {
        conn.busy_timeout(options.busy_timeout)?;
        if wal {
            // Persistent in the file; the first opener switches it. Correctness does not depend on
            // it (BEGIN IMMEDIATE serialises writers in any journal mode), so a file system that
            // refuses WAL only costs reader concurrency. The switch upgrades a shared lock to an
            // exclusive one, where SQLite answers "busy" at once instead of calling the busy
            // handler: replicas opening a fresh file together retry it within the busy timeout.
            let deadline = std::time::Instant::now() + options.busy_timeout;
            loop {
                match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                    Ok(_mode) => break,
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::DatabaseBusy
                            && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        store::migrate(&mut conn)?;
        Ok(Self { backend: Backend::Sqlite(Mutex::new(conn)) })
    }

    /// Runs `body` in one transaction and commits it when `keep` says so (else rolls it back).
    /// Postgres may run `body` again after a deadlock or serialisation failure.
    fn transact<T>(
        &self,
        access: Access,
        keep: impl Fn(&Result<T, LedgerError>) -> bool,
        body: impl FnMut(&dyn Tx) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut body = body;
                let mut conn = sqlite_conn(conn);
                let tx = match access {
                    Access::Write => store::immediate(&mut conn)?,
                    Access::Read => conn.transaction()?,
                };
                let outcome = body(&*tx);
                if keep(&outcome) {
                    tx.commit()?;
                }
                outcome
            }
            Backend::Postgres(pg) => pg.transact(access, keep, body),
        }
    }

    /// Registers a session's limits. Idempotent: `Ok(true)` when newly registered, `Ok(false)` when
    /// already registered with equal limits; different limits for a known id are refused
    /// (`limits_mismatch`): a grant's id fixes its limits.
    pub fn register_session(&self, session_id: B256, limits: &Limits) -> Result<bool, LedgerError> {
        limits.validate()?;
        self.transact(Access::Write, Result::is_ok, |tx| {
            tx.lock_session(session_id)?;
            match tx.load_session(session_id)? {
                Some(row) if row.limits == *limits => Ok(false),
                Some(_) => Err(LedgerError::LimitsMismatch { session_id }),
                None => tx.insert_session(session_id, limits).map(|()| true),
            }
        })
    }

    /// Marks a session revoked: every later reservation is refused (`session_revoked`). Final and
    /// idempotent. Pending reservations stay as they are (they may still have landed before).
    pub fn mark_revoked(&self, session_id: B256) -> Result<(), LedgerError> {
        self.transact(Access::Write, Result::is_ok, |tx| {
            tx.lock_session(session_id)?;
            session(tx, session_id)?;
            tx.set_revoked(session_id)
        })
    }

    /// Reserves `request.amount` for one payment, or refuses it (module docs: checks in order). On
    /// success the caller may sign a payment of exactly that amount to that merchant for that request
    /// hash, claiming the returned period index.
    pub fn reserve(
        &self,
        session_id: B256,
        request: &ReservationRequest,
    ) -> Result<Reservation, LedgerError> {
        if request.amount.is_zero() {
            return Err(LedgerError::InvalidRequest { detail: "amount is zero" });
        }
        if request.expires_at <= request.now {
            return Err(LedgerError::InvalidRequest { detail: "expires_at is not after now" });
        }
        let now = store::enc_u64(request.now, "now out of range")?;
        // Also kept on a refusal: keeps the lazy expiry done before the checks.
        let keep = |outcome: &Result<Reservation, LedgerError>| {
            outcome.as_ref().map_or_else(LedgerError::is_refusal, |_| true)
        };
        self.transact(Access::Write, keep, |tx| reserve_in(tx, session_id, request, now))
    }

    /// Whether [`Ledger::reserve`] would accept a payment of `amount` to `merchant` at `now`, by the
    /// same policy check, without reserving anything (to choose between offers).
    pub fn check(
        &self,
        session_id: B256,
        merchant: alloy::primitives::Address,
        amount: U256,
        now: u64,
    ) -> Result<(), LedgerError> {
        let at = store::enc_u64(now, "now out of range")?;
        // Any non-zero requestHash: an offer has no request yet.
        let request = B256::with_last_byte(1);
        // A write transaction, because the lazy expiry writes (and is rolled back, not kept). In
        // SQLite a deferred transaction upgrading from read to write fails at once with
        // SQLITE_BUSY when another process wrote since its snapshot, without waiting the busy
        // timeout.
        self.transact(
            Access::Write,
            |_| false,
            |tx| check_in(tx, session_id, merchant, amount, request, now, at).map(|_| ()),
        )
    }

    /// Records that the reserved payment landed. Idempotent for the same settlement; a different
    /// settlement for a committed reservation is refused (`settlement_mismatch`). Also accepted for
    /// an expired or released reservation: the receipt proves the payment was made.
    pub fn commit(
        &self,
        id: ReservationId,
        settlement: &SettlementRecord,
    ) -> Result<Reservation, LedgerError> {
        store::enc_u64(settlement.block_number, "block number out of range")?;
        self.transact(Access::Write, Result::is_ok, |tx| {
            tx.lock_session_of(id)?;
            let current = reservation(tx, id)?;
            if current.state == ReservationState::Committed {
                return if current.settlement.as_ref() == Some(settlement) {
                    Ok(current)
                } else {
                    Err(LedgerError::SettlementMismatch { id })
                };
            }
            tx.set_committed(id, settlement)?;
            reservation(tx, id)
        })
    }

    /// Gives a reservation up: the signed payment will not land. Idempotent on released and expired
    /// reservations (returned unchanged); a committed one is refused (`already_committed`).
    pub fn release(&self, id: ReservationId, reason: &str) -> Result<Reservation, LedgerError> {
        self.transact(Access::Write, Result::is_ok, |tx| {
            tx.lock_session_of(id)?;
            let current = reservation(tx, id)?;
            match current.state {
                ReservationState::Committed => Err(LedgerError::AlreadyCommitted { id }),
                ReservationState::Pending => {
                    tx.set_released(id, reason)?;
                    reservation(tx, id)
                }
                _ => Ok(current),
            }
        })
    }

    /// Marks every pending reservation with `expires_at <= now` expired; returns how many. Optional:
    /// `reserve` does the same for its session, and budgets never count lapsed reservations.
    pub fn expire(&self, now: u64) -> Result<usize, LedgerError> {
        let now = store::enc_u64(now, "now out of range")?;
        self.transact(Access::Write, Result::is_ok, |tx| tx.expire_pending(None, now))
    }

    /// Takes the account's `sessionState(id)` read at `chain.block_number` as the session's baseline
    /// (module docs: reconcile rule). Pending reservations are kept.
    pub fn reconcile(
        &self,
        session_id: B256,
        chain: &OnChainState,
    ) -> Result<ReconcileReport, LedgerError> {
        if chain.period_spent > chain.lifetime_spent {
            return Err(LedgerError::InvalidChainState {
                detail: "period_spent exceeds lifetime_spent".into(),
            });
        }
        if chain.status == ChainSessionStatus::NotEnabled && !chain.lifetime_spent.is_zero() {
            return Err(LedgerError::InvalidChainState {
                detail: "a session never enabled has spending".into(),
            });
        }
        store::enc_u64(chain.block_number, "block number out of range")?;
        self.transact(Access::Write, Result::is_ok, |tx| reconcile_in(tx, session_id, chain))
    }

    /// What is left in the current period and lifetime at `now`. Errors like `reserve` for an unknown
    /// session or a time outside the grant window; a revoked session reports `spendable_now = 0`.
    pub fn remaining(&self, session_id: B256, now: u64) -> Result<Remaining, LedgerError> {
        // One consistent snapshot for both reads.
        let (row, period_index, usage) = self.transact(
            Access::Read,
            |_| false,
            |tx| {
                let row = session(tx, session_id)?;
                let period_index = claim_period(&row.limits, now);
                check_time(period_window(&row.limits, period_index)?, now)?;
                let chain = row.chain_usage();
                PeriodSpend { period_index: chain.period_index, spent: chain.period_spent }
                    .in_period(period_index)?;
                let rows = tx.session_reservations(session_id, true)?;
                let usage = tally(&rows, row.baseline.as_ref(), period_index, now)?;
                Ok((row, period_index, usage))
            },
        )?;
        let limits = &row.limits;
        let period_remaining = limits.period_cap.saturating_sub(usage.period_used()?);
        let lifetime_remaining = limits.lifetime_cap.saturating_sub(usage.lifetime_used()?);
        let spendable_now = if row.revoked {
            U256::ZERO
        } else {
            period_remaining.min(lifetime_remaining).min(limits.per_payment_max)
        };
        Ok(Remaining {
            period_index,
            period_remaining,
            lifetime_remaining,
            reserved_in_flight: usage.lifetime_reserved,
            pending_count: usage.pending_count,
            spendable_now,
            revoked: row.revoked,
        })
    }

    /// Every reservation of the session, oldest first, in its stored state (a pending one past its
    /// `expires_at` shows as pending until the next write expires it).
    pub fn history(&self, session_id: B256) -> Result<Vec<Reservation>, LedgerError> {
        self.transact(
            Access::Read,
            |_| false,
            |tx| {
                session(tx, session_id)?;
                tx.session_reservations(session_id, false)
            },
        )
    }

    /// One reservation in its stored state, e.g. to resume a payment after a restart;
    /// [`LedgerError::UnknownReservation`] when the id is not in this ledger.
    pub fn reservation(&self, id: ReservationId) -> Result<Reservation, LedgerError> {
        self.transact(Access::Read, |_| false, |tx| reservation(tx, id))
    }

    /// The registered limits of a session.
    pub fn limits(&self, session_id: B256) -> Result<Limits, LedgerError> {
        self.transact(Access::Read, |_| false, |tx| Ok(session(tx, session_id)?.limits))
    }
}

fn sqlite_conn(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock unwound through a `Transaction`, which rolled back: the
    // connection is consistent, so the poison carries no information.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn session(tx: &dyn Tx, session_id: B256) -> Result<SessionRow, LedgerError> {
    tx.load_session(session_id)?.ok_or(LedgerError::UnknownSession { session_id })
}

fn reservation(tx: &dyn Tx, id: ReservationId) -> Result<Reservation, LedgerError> {
    tx.load_reservation(id)?.ok_or(LedgerError::UnknownReservation { id })
}

fn reconcile_in(
    tx: &dyn Tx,
    session_id: B256,
    chain: &OnChainState,
) -> Result<ReconcileReport, LedgerError> {
    tx.lock_session(session_id)?;
    let row = session(tx, session_id)?;
    let revoked = row.revoked || chain.status == ChainSessionStatus::Revoked;
    if revoked && !row.revoked {
        tx.set_revoked(session_id)?;
    }
    let (outcome, baseline) = match row.baseline {
        Some(stored) if chain.block_number < stored.block => {
            (ReconcileOutcome::Stale { baseline_block: stored.block }, stored)
        }
        _ => {
            let fresh = Baseline {
                block: chain.block_number,
                period_index: chain.period_index,
                period_spent: chain.period_spent,
                lifetime_spent: chain.lifetime_spent,
            };
            tx.store_baseline(session_id, &fresh)?;
            (ReconcileOutcome::Applied, fresh)
        }
    };
    let rows = tx.session_reservations(session_id, true)?;
    // `now` only filters pending rows by expiry; count every pending row as kept.
    let usage = tally(&rows, Some(&baseline), baseline.period_index, 0)?;
    Ok(ReconcileReport {
        outcome,
        covered_commits: usage.covered_commits,
        commits_after_baseline: usage.commits_after_baseline,
        pending_kept: usage.pending_count,
        local_ahead_by: usage.covered_lifetime.saturating_sub(baseline.lifetime_spent),
        revoked,
    })
}

fn reserve_in(
    tx: &dyn Tx,
    session_id: B256,
    request: &ReservationRequest,
    now: i64,
) -> Result<Reservation, LedgerError> {
    let r = request;
    let period_index = check_in(tx, session_id, r.merchant, r.amount, r.request_hash, r.now, now)?;
    tx.lock_request(request.request_hash)?;
    if let Some((existing, state)) = tx.live_reservation_for(request.request_hash)? {
        return Err(LedgerError::DuplicateRequest {
            request_hash: request.request_hash,
            existing,
            state,
        });
    }
    let limits = session(tx, session_id)?.limits;
    // The signed op claims `period_index`; the EntryPoint cannot include it after the period ends.
    let period_end =
        limits.period_window(period_index).map_or(limits.valid_until, |w| w.valid_until);
    let expires_at = request.expires_at.min(period_end.saturating_add(1));
    let id = tx.insert_reservation(session_id, request, period_index, expires_at)?;
    reservation(tx, id)
}

/// The one policy check for a payment of `amount` to `merchant` at `at`, against the chain's
/// figures plus everything committed or reserved; the claimed period on success. Locks the session
/// first (the transaction's caller writes on its result).
#[allow(clippy::too_many_arguments)]
fn check_in(
    tx: &dyn Tx,
    session_id: B256,
    merchant: alloy::primitives::Address,
    amount: U256,
    request_hash: B256,
    at: u64,
    now: i64,
) -> Result<u32, LedgerError> {
    tx.lock_session(session_id)?;
    let row = session(tx, session_id)?;
    let limits = &row.limits;
    let attempt = Attempt::payment(limits, merchant, amount, request_hash, at);
    let period_index = attempt.period_index;

    tx.expire_pending(Some(session_id), now)?;
    let rows = tx.session_reservations(session_id, true)?;
    let tally = tally(&rows, row.baseline.as_ref(), period_index, at)?;
    // The ledger's view of the session for the one policy check: the chain's period where the chain
    // is already past the claimed one, else the claimed period with everything committed or
    // reserved in it.
    let chain = row.chain_usage();
    let usage = if chain.period_index > period_index {
        chain
    } else {
        let (payments_in_period, to_merchant) = period_activity(&rows, period_index, merchant, at)?;
        SessionUsage {
            period_index,
            period_spent: tally.period_used()?,
            lifetime_spent: tally.lifetime_used()?,
            payments_in_period,
            merchant: PeriodSpend { period_index, spent: to_merchant },
            ..chain
        }
    };
    x402_aa_policy::check(limits, &usage, &attempt)?;
    Ok(period_index)
}
