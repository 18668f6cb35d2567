//! The Postgres side: connection, schema and rows. The columns and their text encodings are
//! SQLite's (`store.rs`), so a row decodes the same way from either database.
//!
//! The ledger's API is synchronous, and callers reach it from plain threads, from tokio's
//! blocking pool and (for quick checks) from inside async tasks. So the connection's I/O runs on
//! a thread of its own (a current-thread tokio runtime driving `tokio_postgres::Connection`), and a
//! ledger call waits for its queries with a minimal executor on the calling thread: the client
//! half of tokio-postgres only exchanges messages with the connection over channels, so waiting
//! for it needs no runtime, and never nests one (which would panic inside async code).

use std::{
    fmt,
    future::Future,
    pin::pin,
    sync::{Arc, Mutex, PoisonError, mpsc},
    task::{Context, Poll, Wake, Waker},
    thread,
    time::Duration,
};

use alloy::primitives::B256;
use tokio_postgres::{
    Client, Config, IsolationLevel, NoTls, Row, Transaction, config::Host, error::SqlState,
    types::FromSql,
};

use super::{
    Access, LedgerError, LedgerOptions,
    store::{
        self, Baseline, RESERVATION_COLUMNS, RawReservation, RawSession, SESSION_COLUMNS,
        SessionRow,
    },
    tx::Tx,
    types::{
        Limits, Reservation, ReservationId, ReservationRequest, ReservationState, SettlementRecord,
    },
};

/// Version of the Postgres schema (its own numbering; the SQLite file has its own).
const SCHEMA_VERSION: i64 = 1;

/// First key of the ledger's advisory locks (`pg_advisory_xact_lock(int, int)`), so they do not
/// collide with another application's locks on the same database.
const LOCK_CLASS: i32 = 0x7840_2aa0;
/// Second key of the migration lock; reservation locks use `LOCK_CLASS + 1` and the request hash.
const MIGRATION_LOCK: i32 = 0;

/// Attempts of one operation that keeps meeting a deadlock or a serialisation failure.
const MAX_ATTEMPTS: u32 = 8;

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS x402_ledger_sessions (
    session_id              TEXT PRIMARY KEY,
    per_payment_max         TEXT NOT NULL,
    period_cap              TEXT NOT NULL,
    period_seconds          BIGINT NOT NULL,
    lifetime_cap            TEXT NOT NULL,
    valid_after             BIGINT NOT NULL,
    valid_until             BIGINT NOT NULL,
    merchants               TEXT,             -- NULL = any; else sorted, comma-separated
    revoked                 BOOLEAN NOT NULL DEFAULT FALSE,
    chain_block             BIGINT,           -- chain baseline, NULL until the first reconcile
    chain_period_index      BIGINT,
    chain_period_spent      TEXT,
    chain_lifetime_spent    TEXT,
    max_payments_per_period BIGINT NOT NULL,
    merchant_period_cap     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS x402_ledger_reservations (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES x402_ledger_sessions (session_id),
    merchant       TEXT NOT NULL,
    amount         TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    period_index   BIGINT NOT NULL,
    state          TEXT NOT NULL
                   CHECK (state IN ('pending', 'committed', 'released', 'expired')),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    tx_hash        TEXT,
    user_op_hash   TEXT,
    block_number   BIGINT,
    release_reason TEXT
);
CREATE INDEX IF NOT EXISTS x402_ledger_reservations_by_session
    ON x402_ledger_reservations (session_id, state);
CREATE INDEX IF NOT EXISTS x402_ledger_reservations_by_request
    ON x402_ledger_reservations (request_hash);
";

/// One Postgres connection (reopened when it drops), used by one operation at a time.
pub(super) struct PgLedger {
    config: Config,
    target: String,
    lock_timeout: Duration,
    client: Mutex<Option<Client>>,
}

impl fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLedger").field("target", &self.target).finish_non_exhaustive()
    }
}

impl PgLedger {
    pub(super) fn connect(url: &str, options: &LedgerOptions) -> Result<Self, LedgerError> {
        let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
            LedgerError::CannotConnect { target: "(unparsable URL)".into(), source: e.into() }
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("x402-aa-ledger");
        }
        let ledger = Self {
            target: describe(&config),
            config,
            lock_timeout: options.busy_timeout,
            client: Mutex::new(None),
        };
        let mut client = ledger.open_client()?;
        migrate(&mut client)?;
        *ledger.client.lock().unwrap_or_else(PoisonError::into_inner) = Some(client);
        Ok(ledger)
    }

    /// Connects: the connection's I/O on a thread of its own, which ends when the client is
    /// dropped (or the server goes away).
    fn open_client(&self) -> Result<Client, LedgerError> {
        let cannot = |source: Box<dyn std::error::Error + Send + Sync>| {
            LedgerError::CannotConnect { target: self.target.clone(), source }
        };
        type Connected = Result<Client, Box<dyn std::error::Error + Send + Sync>>;
        let (sender, receiver) = mpsc::sync_channel::<Connected>(1);
        let config = self.config.clone();
        thread::Builder::new()
            .name("x402-ledger-postgres".into())
            .spawn(move || {
                let runtime =
                    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = sender.send(Err(Box::new(e) as Box<_>));
                            return;
                        }
                    };
                runtime.block_on(async move {
                    match config.connect(NoTls).await {
                        Ok((client, connection)) => {
                            if sender.send(Ok(client)).is_ok() {
                                // Ends with an error when the server goes away; the next call
                                // then finds the client closed and reconnects.
                                let _ = connection.await;
                            }
                        }
                        Err(e) => {
                            let _ = sender.send(Err(Box::new(e) as Box<_>));
                        }
                    }
                });
            })
            .map_err(|e| cannot(Box::new(e)))?;
        let client = receiver
            .recv()
            .map_err(|_| cannot("the connection thread ended without an answer".into()))?
            .map_err(cannot)?;
        // The busy timeout: how long a statement waits for a lock (the session's row) before
        // failing with lock_not_available, reported as `ledger_busy`.
        let millis = self.lock_timeout.as_millis().max(1);
        block_on(client.batch_execute(&format!("SET lock_timeout = {millis}")))
            .map_err(|e| cannot(Box::new(e)))?;
        Ok(client)
    }

    /// Runs `body` in one transaction (see `Ledger::transact`), again after a deadlock, a
    /// serialisation failure, or a concurrent insert of the same session.
    pub(super) fn transact<T>(
        &self,
        access: Access,
        keep: impl Fn(&Result<T, LedgerError>) -> bool,
        mut body: impl FnMut(&dyn Tx) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut guard = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.as_ref().is_some_and(Client::is_closed) {
            *guard = None;
        }
        let client = match guard.take() {
            Some(client) => client,
            None => self.open_client()?,
        };
        let client = guard.insert(client);
        let mut attempt = 1;
        loop {
            match run_once(client, access, &keep, &mut body) {
                Err(e) if attempt < MAX_ATTEMPTS && retryable(&e) => {
                    thread::sleep(Duration::from_millis(2 << attempt));
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }
}

fn run_once<T>(
    client: &mut Client,
    access: Access,
    keep: &impl Fn(&Result<T, LedgerError>) -> bool,
    body: &mut impl FnMut(&dyn Tx) -> Result<T, LedgerError>,
) -> Result<T, LedgerError> {
    let builder = match access {
        // Read committed: every statement after the session's row lock sees what the previous
        // holders of the lock committed.
        Access::Write => client.build_transaction().isolation_level(IsolationLevel::ReadCommitted),
        Access::Read => client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true),
    };
    let tx = block_on(builder.start())?;
    let outcome = body(&PgTx { tx: &tx });
    if keep(&outcome) {
        block_on(tx.commit())?;
    }
    // Otherwise dropping `tx` rolls it back.
    outcome
}

/// A deadlock or serialisation failure aborts one of the transactions involved, which may simply
/// run again; so may a session insert that lost the race to another process's insert (the rerun
/// finds the row and compares the limits).
fn retryable(err: &LedgerError) -> bool {
    let code = match err {
        LedgerError::PostgresBusy(e) | LedgerError::Postgres(e) => e.code(),
        _ => None,
    };
    code.is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::UNIQUE_VIOLATION
    })
}

/// `postgres://user@host:port/dbname`, without the password, for error messages.
fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// Creates or checks the schema, under an advisory lock so concurrent openers create it once.
fn migrate(client: &mut Client) -> Result<(), LedgerError> {
    let tx = block_on(client.transaction())?;
    block_on(tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &MIGRATION_LOCK]))?;
    let current: Option<String> = col(&block_on(tx.query_one("SELECT current_schema()", &[]))?, 0)?;
    if current.is_none() {
        // The URL's search_path names a schema that does not exist yet: create it.
        let path: String =
            col(&block_on(tx.query_one("SELECT current_setting('search_path')", &[]))?, 0)?;
        let name = first_schema(&path).ok_or_else(|| LedgerError::NotALedger {
            detail: format!("search_path {path:?} names no schema to keep the ledger in"),
        })?;
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        block_on(tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}")))?;
    }
    let has_meta: bool = col(
        &block_on(tx.query_one("SELECT to_regclass('x402_ledger_meta') IS NOT NULL", &[]))?,
        0,
    )?;
    if has_meta {
        let meta = |key: &'static str| -> Result<Option<String>, LedgerError> {
            block_on(tx.query_opt("SELECT value FROM x402_ledger_meta WHERE key = $1", &[&key]))?
                .map(|row| col(&row, 0))
                .transpose()
        };
        let format = meta("format")?;
        if format.as_deref() != Some(store::FORMAT) {
            return Err(LedgerError::NotALedger {
                detail: format!(
                    "x402_ledger_meta.format is {format:?}, expected {:?}",
                    store::FORMAT
                ),
            });
        }
        let version = meta("schema_version")?;
        let version = version
            .as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v >= 1)
            .ok_or_else(|| LedgerError::corrupt(format!("bad schema_version {version:?}")))?;
        if version > SCHEMA_VERSION {
            return Err(LedgerError::UnsupportedSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
    } else {
        block_on(tx.batch_execute(
            "CREATE TABLE x402_ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ))?;
        block_on(tx.batch_execute(SCHEMA))?;
        let version = SCHEMA_VERSION.to_string();
        block_on(tx.execute(
            "INSERT INTO x402_ledger_meta (key, value) VALUES ('format', $1), ('schema_version', $2)",
            &[&store::FORMAT, &version],
        ))?;
    }
    block_on(tx.commit())?;
    Ok(())
}

/// The first schema a `search_path` setting names (`"$user"` skipped).
fn first_schema(search_path: &str) -> Option<String> {
    search_path
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "\"$user\"" && *s != "$user")
        .map(|s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => s.to_lowercase(),
        })
        .next()
}

/// A column of the wrong type (someone altered the table) is corruption, not a programming error.
fn col<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, LedgerError> {
    row.try_get(index).map_err(|e| LedgerError::corrupt(format!("column {index}: {e}")))
}

fn raw_session(row: &Row) -> Result<RawSession, LedgerError> {
    Ok(RawSession {
        per_payment_max: col(row, 0)?,
        period_cap: col(row, 1)?,
        period_seconds: col(row, 2)?,
        lifetime_cap: col(row, 3)?,
        valid_after: col(row, 4)?,
        valid_until: col(row, 5)?,
        merchants: col(row, 6)?,
        revoked: col(row, 7)?,
        chain_block: col(row, 8)?,
        chain_period_index: col(row, 9)?,
        chain_period_spent: col(row, 10)?,
        chain_lifetime_spent: col(row, 11)?,
        max_payments_per_period: col(row, 12)?,
        merchant_period_cap: col(row, 13)?,
    })
}

fn raw_reservation(row: &Row) -> Result<RawReservation, LedgerError> {
    Ok((
        col(row, 0)?,
        col(row, 1)?,
        col(row, 2)?,
        col(row, 3)?,
        col(row, 4)?,
        col(row, 5)?,
        col(row, 6)?,
        col(row, 7)?,
        col(row, 8)?,
        col(row, 9)?,
        col(row, 10)?,
        col(row, 11)?,
        col(row, 12)?,
    ))
}

fn reservation_row(row: &Row) -> Result<Reservation, LedgerError> {
    store::decode_reservation(raw_reservation(row)?)
}

struct PgTx<'t, 'c> {
    tx: &'t Transaction<'c>,
}

impl Tx for PgTx<'_, '_> {
    fn lock_session(&self, session_id: B256) -> Result<(), LedgerError> {
        block_on(self.tx.execute(
            "SELECT 1 FROM x402_ledger_sessions WHERE session_id = $1 FOR UPDATE",
            &[&store::enc_b256(session_id)],
        ))?;
        Ok(())
    }

    fn lock_session_of(&self, id: ReservationId) -> Result<(), LedgerError> {
        block_on(self.tx.execute(
            "SELECT 1 FROM x402_ledger_sessions s
             JOIN x402_ledger_reservations r ON r.session_id = s.session_id
             WHERE r.id = $1 FOR UPDATE OF s",
            &[&id.0],
        ))?;
        Ok(())
    }

    fn lock_request(&self, request_hash: B256) -> Result<(), LedgerError> {
        // A hash collision only makes two unrelated reservations wait for each other.
        block_on(self.tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&(LOCK_CLASS + 1), &store::enc_b256(request_hash)],
        ))?;
        Ok(())
    }

    fn load_session(&self, session_id: B256) -> Result<Option<SessionRow>, LedgerError> {
        let sql =
            format!("SELECT {SESSION_COLUMNS} FROM x402_ledger_sessions WHERE session_id = $1");
        let row = block_on(self.tx.query_opt(&sql, &[&store::enc_b256(session_id)]))?;
        row.map(|row| store::decode_session(raw_session(&row)?)).transpose()
    }

    fn insert_session(&self, session_id: B256, limits: &Limits) -> Result<(), LedgerError> {
        block_on(self.tx.execute(
            "INSERT INTO x402_ledger_sessions (session_id, per_payment_max, period_cap,
                 period_seconds, lifetime_cap, valid_after, valid_until, merchants,
                 max_payments_per_period, merchant_period_cap)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &store::enc_b256(session_id),
                &store::enc_amount(limits.per_payment_max),
                &store::enc_amount(limits.period_cap),
                &i64::from(limits.period_seconds),
                &store::enc_amount(limits.lifetime_cap),
                &store::enc_u64(limits.valid_after, "valid_after out of range")?,
                &store::enc_u64(limits.valid_until, "valid_until out of range")?,
                &store::enc_merchants(limits.merchants.as_ref()),
                &i64::from(limits.max_payments_per_period),
                &store::enc_amount(limits.merchant_period_cap),
            ],
        ))?;
        Ok(())
    }

    fn store_baseline(&self, session_id: B256, baseline: &Baseline) -> Result<(), LedgerError> {
        block_on(self.tx.execute(
            "UPDATE x402_ledger_sessions SET chain_block = $2, chain_period_index = $3,
                 chain_period_spent = $4, chain_lifetime_spent = $5
             WHERE session_id = $1",
            &[
                &store::enc_b256(session_id),
                &store::enc_u64(baseline.block, "block number out of range")?,
                &i64::from(baseline.period_index),
                &store::enc_amount(baseline.period_spent),
                &store::enc_amount(baseline.lifetime_spent),
            ],
        ))?;
        Ok(())
    }

    fn set_revoked(&self, session_id: B256) -> Result<(), LedgerError> {
        block_on(self.tx.execute(
            "UPDATE x402_ledger_sessions SET revoked = TRUE WHERE session_id = $1",
            &[&store::enc_b256(session_id)],
        ))?;
        Ok(())
    }

    fn load_reservation(&self, id: ReservationId) -> Result<Option<Reservation>, LedgerError> {
        let sql =
            format!("SELECT {RESERVATION_COLUMNS} FROM x402_ledger_reservations WHERE id = $1");
        let row = block_on(self.tx.query_opt(&sql, &[&id.0]))?;
        row.as_ref().map(reservation_row).transpose()
    }

    fn session_reservations(
        &self,
        session_id: B256,
        live_only: bool,
    ) -> Result<Vec<Reservation>, LedgerError> {
        let filter = if live_only { "AND state IN ('pending', 'committed')" } else { "" };
        let sql = format!(
            "SELECT {RESERVATION_COLUMNS} FROM x402_ledger_reservations
             WHERE session_id = $1 {filter} ORDER BY id"
        );
        let rows = block_on(self.tx.query(&sql, &[&store::enc_b256(session_id)]))?;
        rows.iter().map(reservation_row).collect()
    }

    fn live_reservation_for(
        &self,
        request_hash: B256,
    ) -> Result<Option<(ReservationId, ReservationState)>, LedgerError> {
        let row = block_on(self.tx.query_opt(
            "SELECT id, state FROM x402_ledger_reservations
             WHERE request_hash = $1 AND state IN ('pending', 'committed') ORDER BY id LIMIT 1",
            &[&store::enc_b256(request_hash)],
        ))?;
        let Some(row) = row else { return Ok(None) };
        let (id, state): (i64, String) = (col(&row, 0)?, col(&row, 1)?);
        ReservationState::parse(&state)
            .map(|s| Some((ReservationId(id), s)))
            .ok_or_else(|| LedgerError::corrupt(format!("reservation {id}: bad state {state:?}")))
    }

    fn expire_pending(&self, session_id: Option<B256>, now: i64) -> Result<usize, LedgerError> {
        let n = match session_id {
            Some(id) => block_on(self.tx.execute(
                "UPDATE x402_ledger_reservations SET state = 'expired'
                 WHERE session_id = $1 AND state = 'pending' AND expires_at <= $2",
                &[&store::enc_b256(id), &now],
            ))?,
            None => block_on(self.tx.execute(
                "UPDATE x402_ledger_reservations SET state = 'expired'
                 WHERE state = 'pending' AND expires_at <= $1",
                &[&now],
            ))?,
        };
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn insert_reservation(
        &self,
        session_id: B256,
        request: &ReservationRequest,
        period_index: u32,
        expires_at: u64,
    ) -> Result<ReservationId, LedgerError> {
        let row = block_on(self.tx.query_one(
            "INSERT INTO x402_ledger_reservations (session_id, merchant, amount, request_hash,
                 period_index, state, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)
             RETURNING id",
            &[
                &store::enc_b256(session_id),
                &store::enc_address(request.merchant),
                &store::enc_amount(request.amount),
                &store::enc_b256(request.request_hash),
                &i64::from(period_index),
                &store::enc_u64(request.now, "now out of range")?,
                &store::enc_u64(expires_at, "expires_at out of range")?,
            ],
        ))?;
        Ok(ReservationId(col(&row, 0)?))
    }

    fn set_committed(
        &self,
        id: ReservationId,
        settlement: &SettlementRecord,
    ) -> Result<(), LedgerError> {
        block_on(self.tx.execute(
            "UPDATE x402_ledger_reservations SET state = 'committed', tx_hash = $2,
                 user_op_hash = $3, block_number = $4
             WHERE id = $1",
            &[
                &id.0,
                &store::enc_b256(settlement.tx_hash),
                &store::enc_b256(settlement.user_op_hash),
                &store::enc_u64(settlement.block_number, "block number out of range")?,
            ],
        ))?;
        Ok(())
    }

    fn set_released(&self, id: ReservationId, reason: &str) -> Result<(), LedgerError> {
        block_on(self.tx.execute(
            "UPDATE x402_ledger_reservations SET state = 'released', release_reason = $2
             WHERE id = $1",
            &[&id.0, &reason],
        ))?;
        Ok(())
    }
}

/// Waits for `future` on the calling thread (module docs: why not a tokio runtime).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake-up that came before the park makes it return at once; a spurious one only
        // polls again.
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_schema_of_a_search_path() {
        assert_eq!(first_schema("ledger_a").as_deref(), Some("ledger_a"));
        assert_eq!(first_schema("\"$user\", public").as_deref(), Some("public"));
        assert_eq!(first_schema(" Mixed , public").as_deref(), Some("mixed"));
        assert_eq!(first_schema("\"Quo\"\"ted\", x").as_deref(), Some("Quo\"ted"));
        assert_eq!(first_schema("\"$user\""), None);
        assert_eq!(first_schema(""), None);
    }

    #[test]
    fn errors_name_the_server_but_not_the_password() {
        let config: Config = "postgres://agent:s3cret@db.example:6543/budget".parse().unwrap();
        let text = describe(&config);
        assert_eq!(text, "postgres://agent@db.example:6543/budget");
    }
}
