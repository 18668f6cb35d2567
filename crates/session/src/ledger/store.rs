//! The SQLite side (schema, migrations, rows), and the exact text encodings of amounts, hashes and
//! addresses that Postgres shares. Amounts are stored as 64-digit lowercase hex (fixed width, so
//! even a text comparison would be exact); all arithmetic happens in Rust on `U256`, inside the
//! write transaction.

use std::collections::BTreeSet;

use alloy::{
    hex,
    primitives::{Address, B256, U256},
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::{
    LedgerError,
    tx::Tx,
    types::{
        Limits, Reservation, ReservationId, ReservationRequest, ReservationState, SettlementRecord,
    },
};

/// Marks a database as ours, so a foreign SQLite file is refused instead of extended.
pub(super) const FORMAT: &str = "x402-aa-session/budget-ledger";
pub(super) const SCHEMA_VERSION: i64 = 2;

/// Migration `i` brings the schema from version `i` to `i + 1`. Each runs inside the same
/// `BEGIN IMMEDIATE` transaction that reads and bumps the version, so concurrent openers apply it once;
/// the statements are idempotent anyway.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    r"
    CREATE TABLE IF NOT EXISTS sessions (
        session_id           TEXT PRIMARY KEY,
        per_payment_max      TEXT NOT NULL,
        period_cap           TEXT NOT NULL,
        period_seconds       INTEGER NOT NULL,
        lifetime_cap         TEXT NOT NULL,
        valid_after          INTEGER NOT NULL,
        valid_until          INTEGER NOT NULL,
        merchants            TEXT,              -- NULL = any; else sorted, comma-separated
        revoked              INTEGER NOT NULL DEFAULT 0,
        chain_block          INTEGER,           -- chain baseline, NULL until the first reconcile
        chain_period_index   INTEGER,
        chain_period_spent   TEXT,
        chain_lifetime_spent TEXT
    ) STRICT;
    CREATE TABLE IF NOT EXISTS reservations (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id     TEXT NOT NULL REFERENCES sessions(session_id),
        merchant       TEXT NOT NULL,
        amount         TEXT NOT NULL,
        request_hash   TEXT NOT NULL,
        period_index   INTEGER NOT NULL,
        state          TEXT NOT NULL
                       CHECK (state IN ('pending', 'committed', 'released', 'expired')),
        created_at     INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        tx_hash        TEXT,
        user_op_hash   TEXT,
        block_number   INTEGER,
        release_reason TEXT
    ) STRICT;
    CREATE INDEX IF NOT EXISTS reservations_by_session ON reservations(session_id, state);
    CREATE INDEX IF NOT EXISTS reservations_by_request ON reservations(request_hash);
    ",
    // 1 -> 2: policy v2 limits (payment count, per-merchant sub-budget); 0 = none, as in a v1 grant.
    r"
    ALTER TABLE sessions ADD COLUMN max_payments_per_period INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN merchant_period_cap TEXT NOT NULL
        DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';
    ",
];

pub(super) fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, LedgerError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// Creates or upgrades the schema. Refuses a foreign database and a newer schema.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let tx = immediate(conn)?;
    let has_meta: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    let version = if has_meta {
        let format: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| r.get(0))
            .optional()
            .map_err(|e| not_a_ledger(&e))?;
        if format.as_deref() != Some(FORMAT) {
            return Err(LedgerError::NotALedger {
                detail: format!("meta.format is {format:?}, expected {FORMAT:?}"),
            });
        }
        let version: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(|e| not_a_ledger(&e))?;
        version
            .as_deref()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v >= 0)
            .ok_or_else(|| LedgerError::corrupt(format!("bad schema_version {version:?}")))?
    } else {
        let tables: i64 = tx.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )?;
        if tables > 0 {
            return Err(LedgerError::NotALedger {
                detail: format!("{tables} tables but no ledger meta table"),
            });
        }
        tx.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;")?;
        tx.execute("INSERT INTO meta (key, value) VALUES ('format', ?1)", [FORMAT])?;
        0
    };
    if version > SCHEMA_VERSION {
        return Err(LedgerError::UnsupportedSchema { found: version, supported: SCHEMA_VERSION });
    }
    for migration in MIGRATIONS.iter().skip(usize::try_from(version).unwrap_or(usize::MAX)) {
        tx.execute_batch(migration)?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

fn not_a_ledger(err: &rusqlite::Error) -> LedgerError {
    LedgerError::NotALedger { detail: format!("unreadable meta table: {err}") }
}

// ------------------------------------------------------------------------------------------ codecs

pub(super) fn enc_amount(value: U256) -> String {
    hex::encode(value.to_be_bytes::<32>())
}

pub(super) fn dec_amount(text: &str) -> Result<U256, LedgerError> {
    let bad = || LedgerError::corrupt(format!("bad amount {text:?}"));
    if text.len() != 64 {
        return Err(bad());
    }
    let bytes: [u8; 32] = hex::decode_to_array(text).map_err(|_| bad())?;
    Ok(U256::from_be_bytes(bytes))
}

pub(super) fn enc_b256(value: B256) -> String {
    hex::encode_prefixed(value)
}

pub(super) fn dec_b256(text: &str) -> Result<B256, LedgerError> {
    text.parse().map_err(|_| LedgerError::corrupt(format!("bad hash {text:?}")))
}

pub(super) fn enc_address(value: Address) -> String {
    hex::encode_prefixed(value)
}

pub(super) fn dec_address(text: &str) -> Result<Address, LedgerError> {
    text.parse().map_err(|_| LedgerError::corrupt(format!("bad address {text:?}")))
}

/// Unix seconds and block numbers into SQLite's i64.
pub(super) fn enc_u64(value: u64, what: &'static str) -> Result<i64, LedgerError> {
    i64::try_from(value).map_err(|_| LedgerError::InvalidRequest { detail: what })
}

pub(super) fn dec_u64(value: i64, what: &str) -> Result<u64, LedgerError> {
    u64::try_from(value).map_err(|_| LedgerError::corrupt(format!("negative {what} {value}")))
}

pub(super) fn dec_u32(value: i64, what: &str) -> Result<u32, LedgerError> {
    u32::try_from(value).map_err(|_| LedgerError::corrupt(format!("{what} {value} out of range")))
}

pub(super) fn enc_merchants(merchants: Option<&BTreeSet<Address>>) -> Option<String> {
    merchants.map(|set| set.iter().map(|m| enc_address(*m)).collect::<Vec<_>>().join(","))
}

pub(super) fn dec_merchants(text: Option<&str>) -> Result<Option<BTreeSet<Address>>, LedgerError> {
    text.map(|t| t.split(',').map(dec_address).collect()).transpose()
}

// ------------------------------------------------------------------------------------------ rows

/// What the chain said at the last applied reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Baseline {
    pub(super) block: u64,
    pub(super) period_index: u32,
    pub(super) period_spent: U256,
    pub(super) lifetime_spent: U256,
}

#[derive(Debug, Clone)]
pub(super) struct SessionRow {
    pub(super) limits: Limits,
    pub(super) revoked: bool,
    pub(super) baseline: Option<Baseline>,
}

impl SessionRow {
    /// The session as the chain last showed it to the ledger (the reconciled baseline), in the
    /// policy check's terms.
    pub(super) fn chain_usage(&self) -> x402_aa_policy::SessionUsage {
        use x402_aa_policy::{SessionStatus, SessionUsage};
        let status = if self.revoked { SessionStatus::Revoked } else { SessionStatus::Enabled };
        match &self.baseline {
            Some(b) => SessionUsage {
                status,
                period_index: b.period_index,
                period_spent: b.period_spent,
                lifetime_spent: b.lifetime_spent,
                ..SessionUsage::default()
            },
            None => SessionUsage { status, ..SessionUsage::default() },
        }
    }
}

/// A session row as stored, before decoding (the same columns in both backends).
pub(super) struct RawSession {
    pub(super) per_payment_max: String,
    pub(super) period_cap: String,
    pub(super) period_seconds: i64,
    pub(super) lifetime_cap: String,
    pub(super) valid_after: i64,
    pub(super) valid_until: i64,
    pub(super) merchants: Option<String>,
    pub(super) revoked: bool,
    pub(super) chain_block: Option<i64>,
    pub(super) chain_period_index: Option<i64>,
    pub(super) chain_period_spent: Option<String>,
    pub(super) chain_lifetime_spent: Option<String>,
    pub(super) max_payments_per_period: i64,
    pub(super) merchant_period_cap: String,
}

/// The session columns in [`RawSession`]'s order, for both backends' `SELECT`.
pub(super) const SESSION_COLUMNS: &str =
    "per_payment_max, period_cap, period_seconds, lifetime_cap,
    valid_after, valid_until, merchants, revoked,
    chain_block, chain_period_index, chain_period_spent, chain_lifetime_spent,
    max_payments_per_period, merchant_period_cap";

pub(super) fn decode_session(raw: RawSession) -> Result<SessionRow, LedgerError> {
    let limits = Limits {
        per_payment_max: dec_amount(&raw.per_payment_max)?,
        period_cap: dec_amount(&raw.period_cap)?,
        period_seconds: dec_u32(raw.period_seconds, "period_seconds")?,
        lifetime_cap: dec_amount(&raw.lifetime_cap)?,
        max_payments_per_period: dec_u32(raw.max_payments_per_period, "max_payments_per_period")?,
        merchant_period_cap: dec_amount(&raw.merchant_period_cap)?,
        valid_after: dec_u64(raw.valid_after, "valid_after")?,
        valid_until: dec_u64(raw.valid_until, "valid_until")?,
        merchant_root: B256::ZERO,
        merchants: None,
    }
    .with_merchants(dec_merchants(raw.merchants.as_deref())?);
    limits.validate().map_err(|e| LedgerError::corrupt(format!("stored limits: {e}")))?;
    let baseline = match (
        raw.chain_block,
        raw.chain_period_index,
        raw.chain_period_spent,
        raw.chain_lifetime_spent,
    ) {
        (None, None, None, None) => None,
        (Some(block), Some(index), Some(period_spent), Some(lifetime_spent)) => Some(Baseline {
            block: dec_u64(block, "chain_block")?,
            period_index: dec_u32(index, "chain_period_index")?,
            period_spent: dec_amount(&period_spent)?,
            lifetime_spent: dec_amount(&lifetime_spent)?,
        }),
        _ => return Err(LedgerError::corrupt("partial chain baseline")),
    };
    Ok(SessionRow { limits, revoked: raw.revoked, baseline })
}

fn load_session(conn: &Connection, session_id: B256) -> Result<Option<SessionRow>, LedgerError> {
    let raw = conn
        .query_row(
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ?1"),
            [enc_b256(session_id)],
            |r| {
                Ok(RawSession {
                    per_payment_max: r.get(0)?,
                    period_cap: r.get(1)?,
                    period_seconds: r.get(2)?,
                    lifetime_cap: r.get(3)?,
                    valid_after: r.get(4)?,
                    valid_until: r.get(5)?,
                    merchants: r.get(6)?,
                    revoked: r.get::<_, i64>(7)? != 0,
                    chain_block: r.get(8)?,
                    chain_period_index: r.get(9)?,
                    chain_period_spent: r.get(10)?,
                    chain_lifetime_spent: r.get(11)?,
                    max_payments_per_period: r.get(12)?,
                    merchant_period_cap: r.get(13)?,
                })
            },
        )
        .optional()
        .map_err(row_error)?;
    raw.map(decode_session).transpose()
}

fn insert_session(conn: &Connection, session_id: B256, limits: &Limits) -> Result<(), LedgerError> {
    conn.execute(
        "INSERT INTO sessions (session_id, per_payment_max, period_cap, period_seconds,
                               lifetime_cap, valid_after, valid_until, merchants,
                               max_payments_per_period, merchant_period_cap)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            enc_b256(session_id),
            enc_amount(limits.per_payment_max),
            enc_amount(limits.period_cap),
            i64::from(limits.period_seconds),
            enc_amount(limits.lifetime_cap),
            enc_u64(limits.valid_after, "valid_after out of range")?,
            enc_u64(limits.valid_until, "valid_until out of range")?,
            enc_merchants(limits.merchants.as_ref()),
            i64::from(limits.max_payments_per_period),
            enc_amount(limits.merchant_period_cap),
        ],
    )?;
    Ok(())
}

fn store_baseline(
    conn: &Connection,
    session_id: B256,
    baseline: &Baseline,
) -> Result<(), LedgerError> {
    conn.execute(
        "UPDATE sessions SET chain_block = ?2, chain_period_index = ?3, chain_period_spent = ?4,
                             chain_lifetime_spent = ?5
         WHERE session_id = ?1",
        params![
            enc_b256(session_id),
            enc_u64(baseline.block, "block number out of range")?,
            i64::from(baseline.period_index),
            enc_amount(baseline.period_spent),
            enc_amount(baseline.lifetime_spent),
        ],
    )?;
    Ok(())
}

fn set_revoked(conn: &Connection, session_id: B256) -> Result<(), LedgerError> {
    conn.execute("UPDATE sessions SET revoked = 1 WHERE session_id = ?1", [enc_b256(session_id)])?;
    Ok(())
}

pub(super) const RESERVATION_COLUMNS: &str =
    "id, session_id, merchant, amount, request_hash, period_index,
    state, created_at, expires_at, tx_hash, user_op_hash, block_number, release_reason";

/// A reservation row as stored, in [`RESERVATION_COLUMNS`]' order (both backends).
pub(super) type RawReservation = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn raw_reservation(r: &Row<'_>) -> rusqlite::Result<RawReservation> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

pub(super) fn decode_reservation(raw: RawReservation) -> Result<Reservation, LedgerError> {
    let (
        id,
        session,
        merchant,
        amount,
        request,
        period,
        state,
        created,
        expires,
        tx,
        op,
        block,
        why,
    ) = raw;
    let settlement = match (tx, op, block) {
        (None, None, None) => None,
        (Some(tx), Some(op), Some(block)) => Some(SettlementRecord {
            tx_hash: dec_b256(&tx)?,
            user_op_hash: dec_b256(&op)?,
            block_number: dec_u64(block, "block_number")?,
        }),
        _ => return Err(LedgerError::corrupt(format!("reservation {id}: partial settlement"))),
    };
    let state = ReservationState::parse(&state)
        .ok_or_else(|| LedgerError::corrupt(format!("reservation {id}: bad state {state:?}")))?;
    if (state == ReservationState::Committed) != settlement.is_some() {
        return Err(LedgerError::corrupt(format!(
            "reservation {id}: settlement does not match state"
        )));
    }
    Ok(Reservation {
        id: ReservationId(id),
        session_id: dec_b256(&session)?,
        merchant: dec_address(&merchant)?,
        amount: dec_amount(&amount)?,
        request_hash: dec_b256(&request)?,
        period_index: dec_u32(period, "period_index")?,
        state,
        created_at: dec_u64(created, "created_at")?,
        expires_at: dec_u64(expires, "expires_at")?,
        settlement,
        release_reason: why,
    })
}

fn load_reservation(
    conn: &Connection,
    id: ReservationId,
) -> Result<Option<Reservation>, LedgerError> {
    let sql = format!("SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = ?1");
    let raw = conn.query_row(&sql, [id.0], raw_reservation).optional().map_err(row_error)?;
    raw.map(decode_reservation).transpose()
}

/// Reservations of one session, oldest first; `live_only` keeps pending and committed ones (the ones
/// that can count against the caps).
fn session_reservations(
    conn: &Connection,
    session_id: B256,
    live_only: bool,
) -> Result<Vec<Reservation>, LedgerError> {
    let filter = if live_only { "AND state IN ('pending', 'committed')" } else { "" };
    let sql = format!(
        "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE session_id = ?1 {filter} ORDER BY id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([enc_b256(session_id)], raw_reservation)?;
    rows.map(|raw| decode_reservation(raw.map_err(row_error)?)).collect()
}

/// A live (pending or committed) reservation for `request_hash`, any session.
fn live_reservation_for(
    conn: &Connection,
    request_hash: B256,
) -> Result<Option<(ReservationId, ReservationState)>, LedgerError> {
    let raw: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, state FROM reservations
             WHERE request_hash = ?1 AND state IN ('pending', 'committed') ORDER BY id LIMIT 1",
            [enc_b256(request_hash)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(row_error)?;
    raw.map(|(id, state)| {
        ReservationState::parse(&state)
            .map(|s| (ReservationId(id), s))
            .ok_or_else(|| LedgerError::corrupt(format!("reservation {id}: bad state {state:?}")))
    })
    .transpose()
}

/// Marks pending reservations with `expires_at <= now` as expired; `None` = every session.
fn expire_pending(
    conn: &Connection,
    session_id: Option<B256>,
    now: i64,
) -> Result<usize, LedgerError> {
    Ok(match session_id {
        Some(id) => conn.execute(
            "UPDATE reservations SET state = 'expired'
             WHERE session_id = ?1 AND state = 'pending' AND expires_at <= ?2",
            params![enc_b256(id), now],
        )?,
        None => conn.execute(
            "UPDATE reservations SET state = 'expired' WHERE state = 'pending' AND expires_at <= ?1",
            [now],
        )?,
    })
}

fn insert_reservation(
    conn: &Connection,
    session_id: B256,
    request: &ReservationRequest,
    period_index: u32,
    expires_at: u64,
) -> Result<ReservationId, LedgerError> {
    conn.execute(
        "INSERT INTO reservations (session_id, merchant, amount, request_hash, period_index, state,
                                   created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
        params![
            enc_b256(session_id),
            enc_address(request.merchant),
            enc_amount(request.amount),
            enc_b256(request.request_hash),
            i64::from(period_index),
            enc_u64(request.now, "now out of range")?,
            enc_u64(expires_at, "expires_at out of range")?,
        ],
    )?;
    Ok(ReservationId(conn.last_insert_rowid()))
}

fn set_committed(
    conn: &Connection,
    id: ReservationId,
    settlement: &SettlementRecord,
) -> Result<(), LedgerError> {
    conn.execute(
        "UPDATE reservations SET state = 'committed', tx_hash = ?2, user_op_hash = ?3,
                                 block_number = ?4
         WHERE id = ?1",
        params![
            id.0,
            enc_b256(settlement.tx_hash),
            enc_b256(settlement.user_op_hash),
            enc_u64(settlement.block_number, "block number out of range")?,
        ],
    )?;
    Ok(())
}

fn set_released(conn: &Connection, id: ReservationId, reason: &str) -> Result<(), LedgerError> {
    conn.execute(
        "UPDATE reservations SET state = 'released', release_reason = ?2 WHERE id = ?1",
        params![id.0, reason],
    )?;
    Ok(())
}

/// A column of the wrong type (someone edited the file) is corruption, not a programming error.
fn row_error(err: rusqlite::Error) -> LedgerError {
    match err {
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            LedgerError::corrupt(err.to_string())
        }
        other => other.into(),
    }
}

/// SQLite: every operation runs in a `BEGIN IMMEDIATE` transaction, which already holds the
/// database's write lock, so the locks are no-ops.
impl Tx for Connection {
    fn lock_session(&self, _session_id: B256) -> Result<(), LedgerError> {
        Ok(())
    }

    fn lock_session_of(&self, _id: ReservationId) -> Result<(), LedgerError> {
        Ok(())
    }

    fn lock_request(&self, _request_hash: B256) -> Result<(), LedgerError> {
        Ok(())
    }

    fn load_session(&self, session_id: B256) -> Result<Option<SessionRow>, LedgerError> {
        load_session(self, session_id)
    }

    fn insert_session(&self, session_id: B256, limits: &Limits) -> Result<(), LedgerError> {
        insert_session(self, session_id, limits)
    }

    fn store_baseline(&self, session_id: B256, baseline: &Baseline) -> Result<(), LedgerError> {
        store_baseline(self, session_id, baseline)
    }

    fn set_revoked(&self, session_id: B256) -> Result<(), LedgerError> {
        set_revoked(self, session_id)
    }

    fn load_reservation(&self, id: ReservationId) -> Result<Option<Reservation>, LedgerError> {
        load_reservation(self, id)
    }

    fn session_reservations(
        &self,
        session_id: B256,
        live_only: bool,
    ) -> Result<Vec<Reservation>, LedgerError> {
        session_reservations(self, session_id, live_only)
    }

    fn live_reservation_for(
        &self,
        request_hash: B256,
    ) -> Result<Option<(ReservationId, ReservationState)>, LedgerError> {
        live_reservation_for(self, request_hash)
    }

    fn expire_pending(&self, session_id: Option<B256>, now: i64) -> Result<usize, LedgerError> {
        expire_pending(self, session_id, now)
    }

    fn insert_reservation(
        &self,
        session_id: B256,
        request: &ReservationRequest,
        period_index: u32,
        expires_at: u64,
    ) -> Result<ReservationId, LedgerError> {
        insert_reservation(self, session_id, request, period_index, expires_at)
    }

    fn set_committed(
        &self,
        id: ReservationId,
        settlement: &SettlementRecord,
    ) -> Result<(), LedgerError> {
        set_committed(self, id, settlement)
    }

    fn set_released(&self, id: ReservationId, reason: &str) -> Result<(), LedgerError> {
        set_released(self, id, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_at_fixed_width() {
        for v in [U256::ZERO, U256::from(1), U256::from(u128::MAX), U256::MAX] {
            let text = enc_amount(v);
            assert_eq!(text.len(), 64);
            assert_eq!(dec_amount(&text).unwrap(), v);
        }
        // Text order is numeric order.
        assert!(enc_amount(U256::from(9)) < enc_amount(U256::from(10)));
        for bad in ["", "12", &"g".repeat(64), &"0".repeat(65)] {
            assert_eq!(dec_amount(bad).unwrap_err().reason(), "ledger_corrupt");
        }
    }

    #[test]
    fn hashes_and_addresses_round_trip() {
        let h = B256::repeat_byte(0xab);
        assert_eq!(dec_b256(&enc_b256(h)).unwrap(), h);
        let a = Address::repeat_byte(0xcd);
        assert_eq!(enc_address(a), format!("0x{}", "cd".repeat(20)));
        assert_eq!(dec_address(&enc_address(a)).unwrap(), a);
        assert!(dec_b256("0x12").is_err() && dec_address("nope").is_err());
        let set = BTreeSet::from([a, Address::ZERO]);
        assert_eq!(dec_merchants(enc_merchants(Some(&set)).as_deref()).unwrap(), Some(set));
        assert_eq!(dec_merchants(None).unwrap(), None);
    }
}
