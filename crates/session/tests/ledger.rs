//! The client-side budget ledger: refusals, periods, expiry, idempotency, reconcile with the chain,
//! crash safety, concurrent reservers (threads and processes) and damaged database files.

// The test bodies shared by a SQLite and a Postgres run (`both!`) are plain functions, which
// clippy's allow-unwrap-in-tests and allow-print-in-tests do not cover.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Barrier,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256, aliases::U48, aliases::U96};
use x402_aa_session::{
    GrantWindow, MerchantTree, SessionGrant,
    ledger::{
        self, ChainSessionStatus, Ledger, LedgerError, LedgerOptions, Limits, OnChainState,
        ReconcileOutcome, ReservationId, ReservationRequest, ReservationState, SettlementRecord,
    },
    policy::{LimitsError, ScopeViolation},
};

const T0: u64 = 1_700_000_000;
const HOUR: u64 = 3_600;

fn sid(n: u8) -> B256 {
    B256::repeat_byte(n)
}

fn merchant(n: u8) -> Address {
    Address::repeat_byte(n)
}

/// Request hash `n`; never zero, which `settle` (and so the policy) refuses.
fn hash(n: u64) -> B256 {
    let mut h = B256::left_padding_from(&n.to_be_bytes());
    h.0[0] = 0x01;
    h
}

fn usd(n: u64) -> U256 {
    U256::from(n)
}

/// 100 per payment, 250 per hour, 600 lifetime, 10 hours from T0, merchants 0xaa and 0xbb.
fn limits() -> Limits {
    Limits {
        per_payment_max: usd(100),
        period_cap: usd(250),
        period_seconds: 3_600,
        lifetime_cap: usd(600),
        max_payments_per_period: 0,
        merchant_period_cap: U256::ZERO,
        valid_after: T0,
        valid_until: T0 + 10 * HOUR,
        merchant_root: B256::ZERO,
        merchants: None,
    }
    .with_merchants(Some(BTreeSet::from([merchant(0xaa), merchant(0xbb)])))
}

fn req(amount: u64, request: u64, now: u64) -> ReservationRequest {
    ReservationRequest {
        merchant: merchant(0xaa),
        amount: usd(amount),
        request_hash: hash(request),
        now,
        expires_at: now + 300,
    }
}

fn settlement(n: u64, block: u64) -> SettlementRecord {
    SettlementRecord {
        tx_hash: hash(1_000 + n),
        user_op_hash: hash(2_000 + n),
        block_number: block,
    }
}

fn ledger_with_session(db: &Db) -> Ledger {
    let ledger = db.open();
    assert!(ledger.register_session(sid(1), &limits()).expect("register"));
    ledger
}

/// Opens a ledger and runs `setup` on it, then waits at `barrier` even when that failed, so one
/// thread's failure fails the test instead of leaving the others waiting forever.
fn open_then_wait(db: &Db, barrier: &Barrier, setup: impl FnOnce(&Ledger)) -> Ledger {
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ledger = db.open();
        setup(&ledger);
        ledger
    }));
    barrier.wait();
    opened.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn reason<T: std::fmt::Debug>(r: Result<T, LedgerError>) -> &'static str {
    r.expect_err("expected a refusal").reason()
}

fn committed_and_pending(ledger: &Ledger, session: B256) -> (U256, U256) {
    ledger.history(session).expect("history").iter().fold((U256::ZERO, U256::ZERO), |(c, p), r| {
        match r.state {
            ReservationState::Committed => (c + r.amount, p),
            ReservationState::Pending => (c, p + r.amount),
            _ => (c, p),
        }
    })
}

// ------------------------------------------------------------------------------------ backends

const POSTGRES_URL_ENV: &str = "X402_AA_TEST_POSTGRES_URL";

/// Where a test's ledger lives. The SQLite runs always happen; the Postgres runs when
/// `X402_AA_TEST_POSTGRES_URL` is set (`make test` starts a server), each in a schema of its own.
#[derive(Debug)]
enum Db {
    Memory,
    /// The directory (deleted on drop) and the file in it.
    File(#[allow(dead_code)] tempfile::TempDir, PathBuf),
    /// The ledger's URL (with its schema on the `search_path`), the server's URL, the schema.
    Postgres {
        url: String,
        server: String,
        schema: String,
    },
}

impl Db {
    fn memory() -> Self {
        Self::Memory
    }

    fn file() -> Self {
        let (dir, path) = temp_db();
        Self::File(dir, path)
    }

    #[allow(clippy::print_stderr)] // the skip notice is the point
    fn postgres() -> Option<Self> {
        let Ok(server) = std::env::var(POSTGRES_URL_ENV) else {
            eprintln!("SKIP: set {POSTGRES_URL_ENV}=postgres://… to run the Postgres ledger tests");
            return None;
        };
        Some(Self::postgres_schema(server))
    }

    fn postgres_schema(server: String) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().subsec_nanos();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let schema = format!("ledger_test_{}_{nanos}_{n}", std::process::id());
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-csearch_path%3D{schema}");
        Self::Postgres { url, server, schema }
    }

    /// A new connection to the same ledger (for `Memory`: a new, empty ledger).
    fn open(&self) -> Ledger {
        match self {
            Self::Memory => Ledger::in_memory().expect("in-memory ledger"),
            Self::File(_, path) => Ledger::open(path).expect("open the ledger file"),
            Self::Postgres { url, .. } => Ledger::connect(url).expect("connect to the ledger"),
        }
    }

    /// What `Ledger::open_location` takes to open this ledger (child processes).
    fn location(&self) -> String {
        match self {
            Self::Memory => unreachable!("an in-memory ledger has no location"),
            Self::File(_, path) => path.to_str().expect("UTF-8 temp path").to_owned(),
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    /// Runs SQL on the Postgres server directly, in the test's schema (to damage or hold things
    /// the ledger's API never would).
    fn postgres_sql(&self, sql: &str) -> anyhow::Result<()> {
        let Self::Postgres { url, .. } = self else { anyhow::bail!("not a Postgres ledger") };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            let io = tokio::spawn(connection);
            client.batch_execute(sql).await?;
            drop(client);
            let _ = io.await;
            Ok(())
        })
    }
}

impl Drop for Db {
    /// Drops the test's schema, so a server of one's own does not fill up with test data.
    fn drop(&mut self) {
        let Self::Postgres { server, schema, .. } = self else { return };
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async {
            let Ok((client, connection)) =
                tokio_postgres::connect(server, tokio_postgres::NoTls).await
            else {
                return;
            };
            let io = tokio::spawn(connection);
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
            drop(client);
            let _ = io.await;
        });
    }
}

/// `both!(name, memory)` runs the test `fn name(db: &Db)` twice, as `name::sqlite` (on
/// `Db::memory()`, or `Db::file()`) and as `name::postgres`.
macro_rules! both {
    ($name:ident, $sqlite:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Db::$sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(db) = super::Db::postgres() {
                    super::$name(&db);
                }
            }
        }
    };
}

// ------------------------------------------------------------------------------------ refusals

both!(every_refusal_has_its_reason, memory);
fn every_refusal_has_its_reason(db: &Db) {
    let ledger = ledger_with_session(db);
    let now = T0 + 10;

    assert_eq!(reason(ledger.reserve(sid(1), &req(0, 1, now))), "invalid_request");
    let mut r = req(10, 1, now);
    r.expires_at = now;
    assert_eq!(reason(ledger.reserve(sid(1), &r)), "invalid_request");

    assert_eq!(reason(ledger.reserve(sid(9), &req(10, 1, now))), "unknown_session");
    assert_eq!(reason(ledger.reserve(sid(1), &req(10, 1, T0 - 1))), "session_not_yet_valid");
    assert_eq!(reason(ledger.reserve(sid(1), &req(10, 1, T0 + 10 * HOUR + 1))), "session_expired");
    let mut r = req(10, 1, now);
    r.merchant = merchant(0xcc);
    assert_eq!(reason(ledger.reserve(sid(1), &r)), "merchant_not_allowed");
    assert_eq!(reason(ledger.reserve(sid(1), &req(101, 1, now))), "per_payment_max_exceeded");

    let a = ledger.reserve(sid(1), &req(100, 1, now)).unwrap();
    let b = ledger.reserve(sid(1), &req(100, 2, now)).unwrap();
    match ledger.reserve(sid(1), &req(60, 3, now)) {
        Err(
            e @ LedgerError::Scope(ScopeViolation::PeriodCapExceeded {
                remaining,
                period_index: 0,
                ..
            }),
        ) => {
            assert_eq!(remaining, usd(50));
            assert_eq!(e.reason(), "spend_cap_exceeded");
            assert!(e.is_refusal());
        }
        other => panic!("expected spend_cap_exceeded, got {other:?}"),
    }
    // Same request hash again, with budget left: duplicate.
    match ledger.reserve(sid(1), &req(10, 1, now)) {
        Err(e @ LedgerError::DuplicateRequest { state: ReservationState::Pending, .. }) => {
            assert_eq!(e.reason(), "duplicate_request");
        }
        other => panic!("expected duplicate_request, got {other:?}"),
    }

    // Lifetime: 200 committed in period 0, 250 in period 1, 100 pending in period 2 → 50 left of 600.
    ledger.commit(a.id, &settlement(1, 10)).unwrap();
    ledger.commit(b.id, &settlement(2, 10)).unwrap();
    for (i, amount) in [100, 100, 50].into_iter().enumerate() {
        let r = ledger.reserve(sid(1), &req(amount, 10 + i as u64, T0 + HOUR)).unwrap();
        ledger.commit(r.id, &settlement(10 + i as u64, 20)).unwrap();
    }
    ledger.reserve(sid(1), &req(100, 20, T0 + 2 * HOUR)).unwrap();
    match ledger.reserve(sid(1), &req(60, 21, T0 + 2 * HOUR + 1)) {
        Err(e @ LedgerError::Scope(ScopeViolation::LifetimeCapExceeded { remaining, .. })) => {
            assert_eq!(remaining, usd(50));
            assert_eq!(e.reason(), "lifetime_cap_exceeded");
        }
        other => panic!("expected lifetime_cap_exceeded, got {other:?}"),
    }

    ledger.mark_revoked(sid(1)).unwrap();
    ledger.mark_revoked(sid(1)).unwrap(); // idempotent
    assert_eq!(reason(ledger.reserve(sid(1), &req(1, 30, T0 + 2 * HOUR))), "session_revoked");
    assert_eq!(reason(ledger.mark_revoked(sid(7))), "unknown_session");
}

both!(checks_run_in_the_contracts_order, memory);
fn checks_run_in_the_contracts_order(db: &Db) {
    let ledger = ledger_with_session(db);
    // Expired AND wrong merchant AND over per-payment max: the merchant, as on chain, where
    // `validateUserOp` refuses the merchant before the EntryPoint looks at the time window.
    let mut r = req(1_000, 1, T0 + 11 * HOUR);
    r.merchant = merchant(0xcc);
    assert_eq!(reason(ledger.reserve(sid(1), &r)), "merchant_not_allowed");
    // Expired AND over per-payment max: the amount, for the same reason.
    let mut late = req(1_000, 1, T0 + 11 * HOUR);
    late.expires_at = T0 + 12 * HOUR;
    assert_eq!(reason(ledger.reserve(sid(1), &late)), "per_payment_max_exceeded");
    // Only expired: the window.
    let mut late = req(1, 1, T0 + 11 * HOUR);
    late.expires_at = T0 + 12 * HOUR;
    assert_eq!(reason(ledger.reserve(sid(1), &late)), "session_expired");
    // Wrong merchant AND over per-payment max: merchant first.
    r.now = T0;
    r.expires_at = T0 + 60;
    assert_eq!(reason(ledger.reserve(sid(1), &r)), "merchant_not_allowed");
    // Over the per-payment max AND over the period cap: per-payment first.
    ledger.reserve(sid(1), &req(100, 2, T0)).unwrap();
    ledger.reserve(sid(1), &req(100, 3, T0)).unwrap();
    assert_eq!(reason(ledger.reserve(sid(1), &req(101, 4, T0))), "per_payment_max_exceeded");
    // Over the period cap AND a duplicate: the cap (the settlement contract's check comes last).
    assert_eq!(reason(ledger.reserve(sid(1), &req(100, 2, T0))), "spend_cap_exceeded");
    // Revoked beats everything but an unknown session.
    ledger.mark_revoked(sid(1)).unwrap();
    assert_eq!(reason(ledger.reserve(sid(1), &r)), "session_revoked");
}

#[test]
fn reasons_are_stable_strings() {
    let all = [
        LedgerError::AmountOverflow.reason(),
        LedgerError::Limits(LimitsError::Invalid("x")).reason(),
        LedgerError::Corrupt { detail: "x".into() }.reason(),
        LedgerError::NotALedger { detail: "x".into() }.reason(),
        LedgerError::UnsupportedSchema { found: 9, supported: 1 }.reason(),
    ];
    assert_eq!(
        all,
        [
            "amount_overflow",
            "invalid_limits",
            "ledger_corrupt",
            "not_a_ledger",
            "ledger_schema_unsupported"
        ]
    );
}

// ------------------------------------------------------------------------------------ limits

fn grant(merchant_root: B256) -> SessionGrant {
    SessionGrant {
        validAfter: U48::from(T0),
        validUntil: U48::from(T0 + 10 * HOUR),
        perPaymentMax: U96::from(100),
        periodCap: U96::from(250),
        period: 3_600,
        lifetimeCap: U96::from(600),
        merchantRoot: merchant_root,
        ..SessionGrant::default()
    }
}

#[test]
fn limits_from_a_grant_check_the_merchant_list_against_the_root() {
    let list = [merchant(0xbb), merchant(0xaa)];
    let root = MerchantTree::new(list).unwrap().root();
    assert_eq!(Limits::from_grant(&grant(root), &list).unwrap(), limits());

    let e = Limits::from_grant(&grant(root), &[merchant(0xaa)]).unwrap_err();
    assert_eq!(e.reason(), "merchant_root_mismatch");
    assert_eq!(
        Limits::from_grant(&grant(root), &[]).unwrap_err().reason(),
        "merchant_list_required"
    );

    // Zero root: any merchant, unless the SDK narrows it.
    assert_eq!(Limits::from_grant(&grant(B256::ZERO), &[]).unwrap().merchants, None);
    let narrowed = Limits::from_grant(&grant(B256::ZERO), &[merchant(1)]).unwrap();
    assert!(
        narrowed.allows_merchant(merchant(1), None) && !narrowed.allows_merchant(merchant(2), None)
    );

    let mut bad = grant(B256::ZERO);
    bad.validUntil = U48::from(T0 - 1);
    assert_eq!(Limits::from_grant(&bad, &[]).unwrap_err().reason(), "invalid_limits");
}

#[test]
fn period_arithmetic_is_the_grants() {
    for period in [0u32, 1, 7, 3_600] {
        let mut g = grant(B256::ZERO);
        g.period = period;
        let limits = Limits::from_grant(&g, &[]).unwrap();
        for now in [
            T0 - 1,
            T0,
            T0 + 1,
            T0 + 6,
            T0 + 7,
            T0 + 3_599,
            T0 + 3_600,
            T0 + 10 * HOUR,
            T0 + 10 * HOUR + 1,
        ] {
            assert_eq!(
                limits.period_index_at(now),
                g.period_index_at(now),
                "period {period} now {now}"
            );
        }
        for k in [0u32, 1, 9, 10, 11] {
            assert_eq!(limits.period_window(k), g.period_window(k));
        }
    }
}

both!(registering_is_idempotent_and_limits_are_fixed, memory);
fn registering_is_idempotent_and_limits_are_fixed(db: &Db) {
    let ledger = ledger_with_session(db);
    assert!(!ledger.register_session(sid(1), &limits()).unwrap());
    let mut other = limits();
    other.period_cap = usd(251);
    assert_eq!(reason(ledger.register_session(sid(1), &other)), "limits_mismatch");
    other.merchants = Some(BTreeSet::new());
    assert_eq!(reason(ledger.register_session(sid(2), &other)), "invalid_limits");
    assert_eq!(ledger.limits(sid(1)).unwrap(), limits());
}

// ------------------------------------------------------------------------------------ periods, expiry

both!(a_new_period_frees_the_period_cap_but_not_the_lifetime_cap, memory);
fn a_new_period_frees_the_period_cap_but_not_the_lifetime_cap(db: &Db) {
    let ledger = ledger_with_session(db);
    let a = ledger.reserve(sid(1), &req(100, 1, T0)).unwrap();
    let b = ledger.reserve(sid(1), &req(100, 2, T0 + 100)).unwrap();
    ledger.commit(a.id, &settlement(1, 10)).unwrap();
    ledger.commit(b.id, &settlement(2, 11)).unwrap();
    assert_eq!(reason(ledger.reserve(sid(1), &req(100, 3, T0 + HOUR - 1))), "spend_cap_exceeded");

    let next = ledger.reserve(sid(1), &req(100, 3, T0 + HOUR)).unwrap();
    assert_eq!((a.period_index, next.period_index), (0, 1));
    let left = ledger.remaining(sid(1), T0 + HOUR).unwrap();
    assert_eq!(left.period_index, 1);
    assert_eq!(left.period_remaining, usd(150));
    assert_eq!(left.lifetime_remaining, usd(300));
    assert_eq!(left.reserved_in_flight, usd(100));
    assert_eq!(left.spendable_now, usd(100));
    assert!(!left.revoked);
}

both!(lapsed_reservations_release_their_budget, memory);
fn lapsed_reservations_release_their_budget(db: &Db) {
    let ledger = ledger_with_session(db);
    let now = T0 + 10;
    let a = ledger.reserve(sid(1), &req(100, 1, now)).unwrap();
    let b = ledger.reserve(sid(1), &req(100, 2, now)).unwrap();
    assert_eq!(a.expires_at, now + 300);
    assert_eq!(reason(ledger.reserve(sid(1), &req(100, 3, now + 299))), "spend_cap_exceeded");
    // At expires_at the reservations no longer count; reserve expires them in its transaction.
    let c = ledger.reserve(sid(1), &req(100, 3, now + 300)).unwrap();
    let states: Vec<_> = ledger.history(sid(1)).unwrap().iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [ReservationState::Expired, ReservationState::Expired, ReservationState::Pending]
    );
    // The request hash of a lapsed reservation may be reserved again.
    ledger.reserve(sid(1), &req(100, 1, now + 301)).unwrap();

    assert_eq!(ledger.expire(now + 300 + 299).unwrap(), 0);
    assert_eq!(ledger.expire(now + 300 + 300).unwrap(), 1);
    assert_eq!(ledger.reservation(c.id).unwrap().state, ReservationState::Expired);
    assert_eq!(ledger.reservation(b.id).unwrap().state, ReservationState::Expired);
}

both!(a_reservation_lapses_when_its_period_ends, memory);
fn a_reservation_lapses_when_its_period_ends(db: &Db) {
    let ledger = ledger_with_session(db);
    let mut r = req(100, 1, T0 + HOUR - 10);
    r.expires_at = T0 + 5 * HOUR;
    let a = ledger.reserve(sid(1), &r).unwrap();
    assert_eq!((a.period_index, a.expires_at), (0, T0 + HOUR));
    // The lifetime budget it held is free as soon as period 0 is over.
    assert_eq!(ledger.remaining(sid(1), T0 + HOUR).unwrap().lifetime_remaining, usd(600));
    assert_eq!(ledger.remaining(sid(1), T0 + HOUR - 1).unwrap().lifetime_remaining, usd(500));
}

// ------------------------------------------------------------------------------------ commit, release

both!(commit_is_idempotent_and_never_double_counted, memory);
fn commit_is_idempotent_and_never_double_counted(db: &Db) {
    let ledger = ledger_with_session(db);
    let a = ledger.reserve(sid(1), &req(100, 1, T0)).unwrap();
    let c1 = ledger.commit(a.id, &settlement(1, 10)).unwrap();
    let c2 = ledger.commit(a.id, &settlement(1, 10)).unwrap();
    assert_eq!(c1, c2);
    assert_eq!(c1.state, ReservationState::Committed);
    assert_eq!(c1.settlement, Some(settlement(1, 10)));
    assert_eq!(ledger.remaining(sid(1), T0).unwrap().period_remaining, usd(150));
    assert_eq!(reason(ledger.commit(a.id, &settlement(2, 10))), "settlement_mismatch");
    assert_eq!(reason(ledger.release(a.id, "oops")), "already_committed");
    // A committed request hash stays taken forever.
    assert_eq!(reason(ledger.reserve(sid(1), &req(10, 1, T0 + 400))), "duplicate_request");
}

both!(release_is_idempotent_and_frees_the_budget, memory);
fn release_is_idempotent_and_frees_the_budget(db: &Db) {
    let ledger = ledger_with_session(db);
    let a = ledger.reserve(sid(1), &req(100, 1, T0)).unwrap();
    ledger.reserve(sid(1), &req(100, 2, T0)).unwrap();
    let r1 = ledger.release(a.id, "facilitator refused").unwrap();
    let r2 = ledger.release(a.id, "again").unwrap();
    assert_eq!(r1, r2);
    assert_eq!(r1.state, ReservationState::Released);
    assert_eq!(r1.release_reason.as_deref(), Some("facilitator refused"));
    ledger.reserve(sid(1), &req(100, 3, T0)).unwrap();

    let missing = ReservationId::new(99);
    assert_eq!(reason(ledger.release(missing, "x")), "unknown_reservation");
    assert_eq!(reason(ledger.commit(missing, &settlement(9, 1))), "unknown_reservation");
}

both!(a_late_receipt_counts_even_after_expiry_or_release, memory);
fn a_late_receipt_counts_even_after_expiry_or_release(db: &Db) {
    let ledger = ledger_with_session(db);
    let a = ledger.reserve(sid(1), &req(100, 1, T0)).unwrap();
    let b = ledger.reserve(sid(1), &req(100, 2, T0)).unwrap();
    ledger.release(b.id, "timed out at the facilitator").unwrap();
    assert_eq!(ledger.expire(T0 + 300).unwrap(), 1);
    assert_eq!(ledger.remaining(sid(1), T0 + 300).unwrap().period_remaining, usd(250));
    // Both landed after all.
    assert_eq!(ledger.commit(a.id, &settlement(1, 10)).unwrap().state, ReservationState::Committed);
    assert_eq!(ledger.commit(b.id, &settlement(2, 10)).unwrap().state, ReservationState::Committed);
    assert_eq!(ledger.remaining(sid(1), T0 + 300).unwrap().period_remaining, usd(50));
}

// ------------------------------------------------------------------------------------ reconcile

fn chain(block: u64, period_index: u32, period_spent: u64, lifetime_spent: u64) -> OnChainState {
    OnChainState {
        block_number: block,
        status: ChainSessionStatus::Enabled,
        period_index,
        period_spent: usd(period_spent),
        lifetime_spent: usd(lifetime_spent),
    }
}

both!(reconcile_takes_the_chain_as_baseline_without_double_counting, memory);
fn reconcile_takes_the_chain_as_baseline_without_double_counting(db: &Db) {
    let ledger = ledger_with_session(db);
    let now = T0 + HOUR + 10; // period 1
    let a = ledger.reserve(sid(1), &req(50, 1, now)).unwrap();
    ledger.commit(a.id, &settlement(1, 100)).unwrap();
    let b = ledger.reserve(sid(1), &req(30, 2, now)).unwrap(); // in flight
    let c = ledger.reserve(sid(1), &req(20, 3, now)).unwrap();
    ledger.commit(c.id, &settlement(3, 105)).unwrap(); // landed after the snapshot below

    // At block 102 the chain has our 50 plus 40 paid by another client of the session in period 1,
    // and 200 in period 0 that this ledger never saw.
    let report = ledger.reconcile(sid(1), &chain(102, 1, 90, 290)).unwrap();
    assert_eq!(report.outcome, ReconcileOutcome::Applied);
    assert_eq!(
        (report.covered_commits, report.commits_after_baseline, report.pending_kept),
        (1, 1, 1)
    );
    assert_eq!(report.local_ahead_by, U256::ZERO);
    assert!(!report.revoked);

    let left = ledger.remaining(sid(1), now).unwrap();
    // period: 90 (chain, includes a) + 20 (c, after the baseline) + 30 (b pending) = 140
    assert_eq!(left.period_remaining, usd(250 - 140));
    // lifetime: 290 + 20 + 30 = 340
    assert_eq!(left.lifetime_remaining, usd(600 - 340));
    assert_eq!(left.reserved_in_flight, usd(30));

    // Reconciling again with the same snapshot changes nothing; an older one is ignored.
    ledger.reconcile(sid(1), &chain(102, 1, 90, 290)).unwrap();
    let stale = ledger.reconcile(sid(1), &chain(90, 1, 0, 0)).unwrap();
    assert_eq!(stale.outcome, ReconcileOutcome::Stale { baseline_block: 102 });
    assert_eq!(ledger.remaining(sid(1), now).unwrap(), left);

    // b lands at block 106; a snapshot at 110 contains b and c: still counted once each.
    ledger.commit(b.id, &settlement(2, 106)).unwrap();
    let report = ledger.reconcile(sid(1), &chain(110, 1, 140, 340)).unwrap();
    assert_eq!(
        (report.covered_commits, report.commits_after_baseline, report.pending_kept),
        (3, 0, 0)
    );
    let after = ledger.remaining(sid(1), now).unwrap();
    assert_eq!((after.period_remaining, after.lifetime_remaining), (usd(110), usd(260)));
    assert_eq!(after.reserved_in_flight, U256::ZERO);

    // In period 2 the chain's period figure no longer applies; the lifetime one does.
    let later = ledger.remaining(sid(1), T0 + 2 * HOUR).unwrap();
    assert_eq!((later.period_remaining, later.lifetime_remaining), (usd(250), usd(260)));
}

both!(reconcile_never_lowers_below_local_receipts_and_reports_it, memory);
fn reconcile_never_lowers_below_local_receipts_and_reports_it(db: &Db) {
    let ledger = ledger_with_session(db);
    let a = ledger.reserve(sid(1), &req(100, 1, T0)).unwrap();
    ledger.commit(a.id, &settlement(1, 10)).unwrap();
    // A snapshot from block 20 that does not show the payment included at block 10 (reorg?).
    let report = ledger.reconcile(sid(1), &chain(20, 0, 0, 0)).unwrap();
    assert_eq!(report.local_ahead_by, usd(100));
    assert_eq!(ledger.remaining(sid(1), T0).unwrap().period_remaining, usd(150));
}

both!(reconcile_marks_revocation_and_a_chain_ahead_in_time, memory);
fn reconcile_marks_revocation_and_a_chain_ahead_in_time(db: &Db) {
    let ledger = ledger_with_session(db);
    // The chain already charges period 3 while our clock says period 2.
    ledger.reconcile(sid(1), &chain(5, 3, 10, 10)).unwrap();
    let e = ledger.reserve(sid(1), &req(10, 1, T0 + 2 * HOUR)).unwrap_err();
    assert!(matches!(
        e,
        LedgerError::Scope(ScopeViolation::PeriodAlreadyOver { claimed: 2, stored: 3 })
    ));
    assert_eq!(e.reason(), "period_already_over");
    ledger.reserve(sid(1), &req(10, 1, T0 + 3 * HOUR)).unwrap();

    let mut revoked = chain(6, 3, 10, 10);
    revoked.status = ChainSessionStatus::Revoked;
    assert!(ledger.reconcile(sid(1), &revoked).unwrap().revoked);
    assert_eq!(reason(ledger.reserve(sid(1), &req(10, 2, T0 + 3 * HOUR))), "session_revoked");
    let left = ledger.remaining(sid(1), T0 + 3 * HOUR).unwrap();
    assert!(left.revoked);
    assert_eq!(left.spendable_now, U256::ZERO);
    // Revocation is final: a later "enabled" snapshot does not revive the session.
    assert!(ledger.reconcile(sid(1), &chain(7, 3, 10, 10)).unwrap().revoked);
}

both!(reconcile_rejects_impossible_chain_states, memory);
fn reconcile_rejects_impossible_chain_states(db: &Db) {
    let ledger = ledger_with_session(db);
    assert_eq!(reason(ledger.reconcile(sid(1), &chain(1, 0, 20, 10))), "invalid_chain_state");
    let mut never = chain(1, 0, 0, 5);
    never.status = ChainSessionStatus::NotEnabled;
    assert_eq!(reason(ledger.reconcile(sid(1), &never)), "invalid_chain_state");
    assert_eq!(ChainSessionStatus::try_from(3u8).unwrap_err().reason(), "invalid_chain_state");
    assert_eq!(ChainSessionStatus::try_from(2u8).unwrap(), ChainSessionStatus::Revoked);
    assert_eq!(reason(ledger.reconcile(sid(2), &chain(1, 0, 0, 0))), "unknown_session");
}

// ------------------------------------------------------------------------------------ files, crashes

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.sqlite");
    (dir, path)
}

both!(state_survives_closing_and_reopening_the_file, file);
fn state_survives_closing_and_reopening_the_file(db: &Db) {
    let before = {
        let ledger = db.open();
        ledger.register_session(sid(1), &limits()).unwrap();
        let a = ledger.reserve(sid(1), &req(100, 1, T0)).unwrap();
        ledger.commit(a.id, &settlement(1, 10)).unwrap();
        let b = ledger.reserve(sid(1), &req(50, 2, T0)).unwrap();
        ledger.release(b.id, "never sent").unwrap();
        ledger.reserve(sid(1), &req(70, 3, T0)).unwrap();
        ledger.reconcile(sid(1), &chain(12, 0, 100, 100)).unwrap();
        ledger.history(sid(1)).unwrap()
        // dropped here without any shutdown call
    };
    let ledger = db.open();
    assert_eq!(ledger.history(sid(1)).unwrap(), before);
    let left = ledger.remaining(sid(1), T0).unwrap();
    assert_eq!((left.period_remaining, left.reserved_in_flight), (usd(80), usd(70)));
    assert!(!ledger.register_session(sid(1), &limits()).unwrap());
}

#[test]
fn an_unfinished_transaction_leaves_nothing_behind() {
    let (_dir, path) = temp_db();
    let ledger = Ledger::open(&path).unwrap();
    ledger.register_session(sid(1), &limits()).unwrap();
    ledger.reserve(sid(1), &req(100, 1, T0)).unwrap();
    {
        // A writer that dies between its statements: the raw connection goes away mid-transaction.
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(
            "BEGIN IMMEDIATE;
             UPDATE reservations SET state = 'released';
             INSERT INTO reservations (session_id, merchant, amount, request_hash, period_index,
                                       state, created_at, expires_at)
             SELECT session_id, merchant, amount, request_hash, period_index, 'committed',
                    created_at, expires_at FROM reservations;",
        )
        .unwrap();
    }
    drop(ledger);
    let ledger = Ledger::open(&path).unwrap();
    let history = ledger.history(sid(1)).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, ReservationState::Pending);
}

both!(a_process_killed_mid_write_leaves_a_consistent_ledger, file);
fn a_process_killed_mid_write_leaves_a_consistent_ledger(db: &Db) {
    let ledger = db.open();
    let mut roomy = limits();
    roomy.lifetime_cap = usd(1_000_000);
    roomy.period_cap = usd(1_000_000);
    ledger.register_session(sid(1), &roomy).unwrap();

    let mut child = spawn_child("crash", db);
    let started = Instant::now();
    while ledger.history(sid(1)).unwrap().len() < 40 {
        assert!(started.elapsed() < Duration::from_secs(60), "child made no progress");
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no rollback by the child
    child.wait().unwrap();
    drop(ledger);

    if let Db::File(_, path) = db {
        let raw = rusqlite::Connection::open(path).unwrap();
        let check: String = raw.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    let ledger = db.open();
    let history = ledger.history(sid(1)).unwrap();
    // Every row decoded (no partial writes), commits carry their receipt, and the pairs the child
    // writes (reserve then commit) are complete up to at most the one in flight.
    let committed = history.iter().filter(|r| r.state == ReservationState::Committed).count();
    let pending = history.iter().filter(|r| r.state == ReservationState::Pending).count();
    assert_eq!(committed + pending, history.len());
    assert!(pending <= 1, "{pending} pending after the crash");
    let (c, p) = committed_and_pending(&ledger, sid(1));
    assert_eq!(c + p, usd(history.len() as u64));
    let left = ledger.remaining(sid(1), T0).unwrap();
    assert_eq!(left.lifetime_remaining, usd(1_000_000) - c - p);
    ledger.reserve(sid(1), &req(1, u64::MAX, T0)).unwrap();
}

// ------------------------------------------------------------------------------------ concurrency

both!(concurrent_reservers_on_one_file_never_exceed_the_cap, file);
fn concurrent_reservers_on_one_file_never_exceed_the_cap(db: &Db) {
    const THREADS: usize = 16;
    let barrier = Barrier::new(THREADS);
    let started = Instant::now();
    // Every thread opens its own connection at the same moment (the first one creates the file).
    let results: Vec<Result<(), &'static str>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || {
                    let ledger = open_then_wait(db, barrier, |l| {
                        l.register_session(sid(1), &limits()).unwrap();
                    });
                    // 16 × 40 = 640 requested against a period cap of 250: 6 fit.
                    ledger
                        .reserve(sid(1), &req(40, i as u64, T0))
                        .map(|_| ())
                        .map_err(|e| e.reason())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 6, "{results:?}");
    assert!(results.iter().all(|r| matches!(r, Ok(()) | Err("spend_cap_exceeded"))), "{results:?}");

    let ledger = db.open();
    let (_, pending) = committed_and_pending(&ledger, sid(1));
    assert_eq!(pending, usd(240));
    assert_eq!(ledger.remaining(sid(1), T0).unwrap().period_remaining, usd(10));
    eprintln!("16 threads reserved in {elapsed:?}");
}

both!(concurrent_reserve_commit_release_keep_every_snapshot_within_the_cap, file);
fn concurrent_reserve_commit_release_keep_every_snapshot_within_the_cap(db: &Db) {
    const THREADS: usize = 8;
    const ROUNDS: u64 = 25;
    db.open().register_session(sid(1), &limits()).unwrap();
    let barrier = Barrier::new(THREADS);
    let granted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let ledger = open_then_wait(db, barrier, |_| {});
                    let mut granted = 0;
                    for i in 0..ROUNDS {
                        let n = t * 1_000 + i;
                        match ledger.reserve(sid(1), &req(30, n, T0)) {
                            Ok(r) if i % 3 == 0 => {
                                ledger.release(r.id, "not sent").unwrap();
                                granted += 1;
                            }
                            Ok(r) => {
                                ledger.commit(r.id, &settlement(n, 1 + n)).unwrap();
                                granted += 1;
                            }
                            Err(e) => assert_eq!(e.reason(), "spend_cap_exceeded"),
                        }
                        // Every snapshot of the books, taken while the others write, fits the caps.
                        let (committed, pending) = committed_and_pending(&ledger, sid(1));
                        assert!(committed + pending <= usd(250), "{committed} + {pending}");
                    }
                    granted
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let ledger = db.open();
    let history = ledger.history(sid(1)).unwrap();
    assert_eq!(history.len(), granted);
    let (committed, pending) = committed_and_pending(&ledger, sid(1));
    assert_eq!(pending, U256::ZERO);
    assert!(committed <= usd(240), "at most 8 commits of 30 fit in 250: {committed}");
    // Whatever room is left is really there.
    let fits = committed <= usd(220);
    assert_eq!(ledger.reserve(sid(1), &req(30, 999_999, T0)).is_ok(), fits);
}

both!(concurrent_processes_on_one_file_never_exceed_the_cap, file);
fn concurrent_processes_on_one_file_never_exceed_the_cap(db: &Db) {
    const PROCESSES: usize = 4;
    let ledger = db.open();
    ledger.register_session(sid(1), &limits()).unwrap();
    drop(ledger);
    // Each child tries 12 reservations of 10 (480 in all) against the period cap of 250.
    let children: Vec<Child> = (0..PROCESSES).map(|_| spawn_child("race", db)).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child saw an unexpected error");
    }
    let ledger = db.open();
    let history = ledger.history(sid(1)).unwrap();
    assert_eq!(history.len(), 25);
    let (_, pending) = committed_and_pending(&ledger, sid(1));
    assert_eq!(pending, usd(250));
}

both!(a_ledger_can_be_shared_between_threads, memory);
fn a_ledger_can_be_shared_between_threads(db: &Db) {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Ledger>();
    let ledger = ledger_with_session(db);
    std::thread::scope(|s| {
        for i in 0..4 {
            let ledger = &ledger;
            s.spawn(move || ledger.reserve(sid(1), &req(50, i, T0)).unwrap());
        }
    });
    assert_eq!(ledger.remaining(sid(1), T0).unwrap().period_remaining, usd(50));
}

#[test]
fn a_held_write_lock_is_a_typed_busy_error() {
    let (_dir, path) = temp_db();
    let options = LedgerOptions::default().busy_timeout(Duration::from_millis(50));
    let ledger = Ledger::open_with(&path, &options).unwrap();
    ledger.register_session(sid(1), &limits()).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(reason(ledger.reserve(sid(1), &req(10, 1, T0))), "ledger_busy");
    raw.execute_batch("ROLLBACK").unwrap();
    ledger.reserve(sid(1), &req(10, 1, T0)).unwrap();
}

// ------------------------------------------------------------------------------------ damaged files

#[test]
fn a_file_that_is_not_sqlite_is_a_typed_error() {
    let (_dir, path) = temp_db();
    std::fs::write(
        &path,
        b"this is not a database, just some text that is long enough ".repeat(100),
    )
    .unwrap();
    assert_eq!(reason(Ledger::open(&path)), "ledger_corrupt");
}

#[test]
fn a_foreign_or_newer_database_is_refused() {
    let (_dir, path) = temp_db();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE users (id INTEGER)")
        .unwrap();
    assert_eq!(reason(Ledger::open(&path)), "not_a_ledger");

    let (_dir2, path2) = temp_db();
    drop(Ledger::open(&path2).unwrap());
    drop(Ledger::open(&path2).unwrap()); // migrations are idempotent
    let raw = rusqlite::Connection::open(&path2).unwrap();
    let version: String = raw
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, "2");
    raw.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'", []).unwrap();
    drop(raw);
    match Ledger::open(&path2) {
        Err(LedgerError::UnsupportedSchema { found: 3, supported: 2 }) => {}
        other => panic!("expected unsupported schema, got {other:?}"),
    }
}

#[test]
fn a_damaged_row_is_a_typed_error_not_a_panic() {
    let (_dir, path) = temp_db();
    let ledger = Ledger::open(&path).unwrap();
    ledger.register_session(sid(1), &limits()).unwrap();
    let a = ledger.reserve(sid(1), &req(10, 1, T0)).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    for damage in [
        "UPDATE reservations SET amount = 'zz'",
        "UPDATE reservations SET amount = '12'",
        "UPDATE reservations SET merchant = 'nope'",
        "UPDATE reservations SET period_index = -1",
        "UPDATE reservations SET tx_hash = '0x00'",
    ] {
        raw.execute_batch(&format!("BEGIN; {damage}")).unwrap();
        raw.execute_batch("COMMIT").unwrap();
        assert_eq!(reason(ledger.reserve(sid(1), &req(10, 2, T0))), "ledger_corrupt", "{damage}");
        assert_eq!(reason(ledger.remaining(sid(1), T0)), "ledger_corrupt", "{damage}");
        assert_eq!(reason(ledger.reservation(a.id)), "ledger_corrupt", "{damage}");
        // Repair for the next round.
        raw.execute_batch(&format!(
            "UPDATE reservations SET amount = '{:064x}', merchant = '0x{}', period_index = 0,
                                     tx_hash = NULL",
            10,
            "aa".repeat(20)
        ))
        .unwrap();
        ledger.remaining(sid(1), T0).unwrap();
    }
    raw.execute_batch("UPDATE sessions SET period_cap = 'x'").unwrap();
    assert_eq!(reason(ledger.remaining(sid(1), T0)), "ledger_corrupt");
}

#[test]
fn a_truncated_file_is_a_typed_error_not_a_panic() {
    let (_dir, path) = temp_db();
    {
        let ledger = Ledger::open(&path).unwrap();
        ledger.register_session(sid(1), &limits()).unwrap();
        for i in 0..300 {
            let id = ledger.reserve(sid(1), &req(1, i, T0 + i)).unwrap().id;
            ledger.release(id, &"a fairly long reason to fill pages ".repeat(4)).unwrap();
        }
    }
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 4 * 4096, "file too small to truncate meaningfully: {len}");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let outcome = Ledger::open(&path).and_then(|l| l.history(sid(1)).map(|h| h.len()));
    assert_eq!(reason(outcome), "ledger_corrupt");
}

#[test]
fn an_unopenable_path_is_a_typed_error() {
    let (dir, _) = temp_db();
    let path = dir.path().join("missing-dir").join("ledger.sqlite");
    assert_eq!(reason(Ledger::open(path)), "ledger_cannot_open");
}

// ------------------------------------------------------------------------------------ Postgres

#[test]
fn an_unreachable_or_malformed_postgres_url_is_a_typed_error() {
    // Nothing listens on port 1; the password never shows in the error.
    let err = Ledger::connect("postgres://agent:hunter2@127.0.0.1:1/ledger").unwrap_err();
    assert_eq!(err.reason(), "ledger_cannot_open");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    assert_eq!(reason(Ledger::connect("postgres://127.0.0.1:notaport/x")), "ledger_cannot_open");
    assert_eq!(reason(Ledger::open_location("postgresql://127.0.0.1:1/x")), "ledger_cannot_open");
    assert!(ledger::is_postgres_url("postgres://h/db") && !ledger::is_postgres_url("l.sqlite"));
}

#[test]
fn a_held_session_lock_is_a_typed_busy_error_on_postgres() {
    let Some(db) = Db::postgres() else { return };
    let options = LedgerOptions::default().busy_timeout(Duration::from_millis(100));
    let Db::Postgres { url, .. } = &db else { unreachable!() };
    let ledger = Ledger::connect_with(url, &options).unwrap();
    ledger.register_session(sid(1), &limits()).unwrap();
    // Another connection holds the session's row lock (a replica stuck mid-reservation).
    let (locked, release) = (Barrier::new(2), Barrier::new(2));
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            runtime.unwrap().block_on(async {
                let (mut client, connection) =
                    tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                let io = tokio::spawn(connection);
                let tx = client.transaction().await.unwrap();
                tx.batch_execute("SELECT 1 FROM x402_ledger_sessions FOR UPDATE").await.unwrap();
                locked.wait();
                release.wait();
                tx.rollback().await.unwrap();
                drop(client);
                let _ = io.await;
            });
        });
        locked.wait();
        let started = Instant::now();
        assert_eq!(reason(ledger.reserve(sid(1), &req(10, 1, T0))), "ledger_busy");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        release.wait();
    });
    ledger.reserve(sid(1), &req(10, 1, T0)).unwrap();
}

#[test]
fn a_foreign_or_newer_postgres_schema_is_refused() {
    let Some(db) = Db::postgres() else { return };
    let Db::Postgres { schema, .. } = &db else { unreachable!() };
    db.postgres_sql(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.x402_ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO {schema}.x402_ledger_meta VALUES ('format', 'someone-else')"
    ))
    .unwrap();
    assert_eq!(reason(Ledger::connect(&db.location())), "not_a_ledger");

    let Some(db) = Db::postgres() else { return };
    drop(db.open());
    drop(db.open()); // the schema check is idempotent
    db.postgres_sql("UPDATE x402_ledger_meta SET value = '2' WHERE key = 'schema_version'")
        .unwrap();
    match Ledger::connect(&db.location()) {
        Err(LedgerError::UnsupportedSchema { found: 2, supported: 1 }) => {}
        other => panic!("expected unsupported schema, got {other:?}"),
    }
}

#[test]
fn a_damaged_postgres_row_is_a_typed_error_not_a_panic() {
    let Some(db) = Db::postgres() else { return };
    let ledger = db.open();
    ledger.register_session(sid(1), &limits()).unwrap();
    let a = ledger.reserve(sid(1), &req(10, 1, T0)).unwrap();
    for damage in [
        "UPDATE x402_ledger_reservations SET amount = 'zz'",
        "UPDATE x402_ledger_reservations SET merchant = 'nope'",
        "UPDATE x402_ledger_reservations SET period_index = -1",
        "UPDATE x402_ledger_reservations SET tx_hash = '0x00'",
        "ALTER TABLE x402_ledger_reservations ALTER COLUMN period_index TYPE TEXT",
    ] {
        db.postgres_sql(damage).unwrap();
        assert_eq!(reason(ledger.reserve(sid(1), &req(10, 2, T0))), "ledger_corrupt", "{damage}");
        assert_eq!(reason(ledger.remaining(sid(1), T0)), "ledger_corrupt", "{damage}");
        assert_eq!(reason(ledger.reservation(a.id)), "ledger_corrupt", "{damage}");
        db.postgres_sql(&format!(
            "ALTER TABLE x402_ledger_reservations ALTER COLUMN period_index TYPE BIGINT
                 USING period_index::BIGINT;
             UPDATE x402_ledger_reservations SET amount = '{:064x}', merchant = '0x{}',
                 period_index = 0, tx_hash = NULL",
            10,
            "aa".repeat(20)
        ))
        .unwrap();
        ledger.remaining(sid(1), T0).unwrap();
    }
}

/// Replicas on several machines: sessions of one ledger proceed independently, and one session's
/// reservations from many connections never pass its cap.
#[test]
fn postgres_sessions_are_serialised_apart() {
    const THREADS: u64 = 16;
    let Some(db) = Db::postgres() else { return };
    db.open().register_session(sid(1), &limits()).unwrap();
    db.open().register_session(sid(2), &limits()).unwrap();
    let barrier = Barrier::new(THREADS as usize);
    let granted: Vec<(u64, u8, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (db, barrier) = (&db, &barrier);
                s.spawn(move || {
                    let ledger = open_then_wait(db, barrier, |_| {});
                    let session = 1 + (i % 2) as u8;
                    let outcome = ledger.reserve(sid(session), &req(40, 100 + i, T0));
                    if let Err(e) = &outcome {
                        assert_eq!(e.reason(), "spend_cap_exceeded");
                    }
                    (i, session, outcome.is_ok())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for session in [1, 2] {
        // Eight tries of 40 per session against a cap of 250: six fit, in each session.
        let ok = granted.iter().filter(|(_, s, ok)| *s == session && *ok).count();
        assert_eq!(ok, 6, "session {session}: {granted:?}");
    }
    // A request hash reserved in one session cannot be reserved again, even in another. (Which
    // threads won the race varies, so take one that did.)
    let (won, ..) = granted.iter().find(|(_, s, ok)| *s == 1 && *ok).expect("six won");
    let ledger = db.open();
    assert_eq!(reason(ledger.reserve(sid(2), &req(1, 100 + won, T0))), "duplicate_request");
}

// ------------------------------------------------------------------------------------ child processes

const CHILD_MODE: &str = "X402_LEDGER_TEST_CHILD";
const CHILD_DB: &str = "X402_LEDGER_TEST_DB";

fn spawn_child(mode: &str, db: &Db) -> Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args(["child_process_entry", "--exact", "--test-threads=1", "--quiet"])
        .env(CHILD_MODE, mode)
        .env(CHILD_DB, db.location())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child")
}

/// Not a test on its own: does the child's work when started by [`spawn_child`], and nothing otherwise.
#[test]
fn child_process_entry() {
    let (Ok(mode), Ok(db)) = (std::env::var(CHILD_MODE), std::env::var(CHILD_DB)) else { return };
    let ledger = Ledger::open_location(&db).unwrap();
    let pid = u64::from(std::process::id()) << 32;
    match mode.as_str() {
        "race" => {
            for i in 0..12 {
                match ledger.reserve(sid(1), &req(10, pid + i, T0)) {
                    Ok(_) | Err(LedgerError::Scope(ScopeViolation::PeriodCapExceeded { .. })) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
            }
        }
        "crash" => {
            // Reserve and commit until killed.
            for i in 0.. {
                let r = ledger.reserve(sid(1), &req(1, pid + i, T0)).unwrap();
                ledger.commit(r.id, &settlement(i, 1 + i)).unwrap();
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}
