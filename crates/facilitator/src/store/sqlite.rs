//! The default registry: one SQLite file (WAL), statements run on tokio's blocking pool.

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use alloy::primitives::B256;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    Claim, ClaimOutcome, Finish, Record, SCHEMA, Status, Store, StoreError, hex32, parse_address,
    parse_b256, to_i64, to_u64,
};

/// A registry in one SQLite database. Every instance sharing the file must run on this host;
/// use Postgres for instances on several hosts.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the registry file at `path`, in WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        // WAL lets a second process (a restarted facilitator, an operator's sqlite3) read while
        // this one writes; the busy timeout covers the short write locks.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::init(conn)
    }

    /// A registry that lives as long as this value: for tests and one-shot runs.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a half-applied statement behind
            // (SQLite statements are atomic), so a poisoned lock is safe to keep using.
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

const COLUMNS: &str = "chain_id, request_hash, user_op_hash, payer, status, reason, message, \
    retryable, submitted, from_block, tx_hash, block_number, response, owner, created_at, updated_at";

fn record(row: &Row<'_>) -> rusqlite::Result<Result<Record, StoreError>> {
    let chain_id: i64 = row.get(0)?;
    let request_hash: String = row.get(1)?;
    let user_op_hash: String = row.get(2)?;
    let payer: String = row.get(3)?;
    let status: String = row.get(4)?;
    let reason: Option<String> = row.get(5)?;
    let message: Option<String> = row.get(6)?;
    let retryable: bool = row.get(7)?;
    let submitted: bool = row.get(8)?;
    let from_block: i64 = row.get(9)?;
    let tx_hash: Option<String> = row.get(10)?;
    let block_number: Option<i64> = row.get(11)?;
    let response: Option<String> = row.get(12)?;
    let owner: String = row.get(13)?;
    let created_at: i64 = row.get(14)?;
    let updated_at: i64 = row.get(15)?;
    let parsed = (|| {
        Ok(Record {
            chain_id: to_u64(chain_id),
            request_hash: parse_b256(&request_hash)?,
            user_op_hash: parse_b256(&user_op_hash)?,
            payer: parse_address(&payer)?,
            status: Status::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("bad status {status:?}")))?,
            reason,
            message,
            retryable,
            submitted,
            from_block: to_u64(from_block),
            tx_hash: tx_hash.as_deref().map(parse_b256).transpose()?,
            block_number: block_number.map(to_u64),
            response,
            owner,
            created_at,
            updated_at,
        })
    })();
    Ok(parsed)
}

fn get(conn: &Connection, chain_id: u64, request_hash: &str) -> Result<Option<Record>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM aa_settlements WHERE chain_id = ?1 AND request_hash = ?2");
    // Every /verify reads here: keep the parsed statement instead of re-preparing it per call.
    conn.prepare_cached(&sql)?
        .query_row(params![to_i64(chain_id), request_hash], record)
        .optional()?
        .transpose()
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn claim(&self, c: &Claim) -> Result<ClaimOutcome, StoreError> {
        let c = c.clone();
        self.with(move |conn| {
            let request_hash = hex32(&c.request_hash);
            // Statements every settlement runs are parsed once per connection, not per call.
            let changed = conn.prepare_cached(CLAIM_SQL)?.execute(params![
                to_i64(c.chain_id),
                request_hash,
                hex32(&c.user_op_hash),
                format!("{:#x}", c.payer),
                to_i64(c.from_block),
                c.owner,
                c.now_ms,
            ])?;
            if changed == 1 {
                return Ok(ClaimOutcome::Claimed);
            }
            get(conn, c.chain_id, &request_hash)?
                .map(|r| ClaimOutcome::Existing(Box::new(r)))
                .ok_or_else(|| StoreError::Corrupt("claimed row vanished".into()))
        })
        .await
    }

    async fn mark_submitted(
        &self,
        chain_id: u64,
        request_hash: B256,
        user_op_hash: B256,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.prepare_cached(
                "UPDATE aa_settlements SET submitted = TRUE, updated_at = ?4 \
                 WHERE chain_id = ?1 AND request_hash = ?2 AND user_op_hash = ?3 \
                 AND status = 'in_flight'",
            )?
            .execute(params![
                to_i64(chain_id),
                hex32(&request_hash),
                hex32(&user_op_hash),
                now_ms
            ])?;
            Ok(())
        })
        .await
    }

    async fn finish(
        &self,
        chain_id: u64,
        request_hash: B256,
        user_op_hash: B256,
        f: &Finish,
    ) -> Result<bool, StoreError> {
        let f = f.clone();
        self.with(move |conn| {
            let changed = conn.prepare_cached(FINISH_SQL)?.execute(params![
                to_i64(chain_id),
                hex32(&request_hash),
                hex32(&user_op_hash),
                f.status.as_str(),
                f.reason,
                f.message,
                f.retryable,
                f.submitted,
                f.tx_hash.as_ref().map(hex32),
                f.block_number.map(to_i64),
                f.response,
                f.now_ms,
            ])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn get(&self, chain_id: u64, request_hash: B256) -> Result<Option<Record>, StoreError> {
        self.with(move |conn| get(conn, chain_id, &hex32(&request_hash))).await
    }

    async fn unresolved(
        &self,
        chain_id: u64,
        owner: &str,
        stale_before_ms: i64,
    ) -> Result<Vec<Record>, StoreError> {
        let owner = owner.to_owned();
        self.with(move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM aa_settlements WHERE {UNRESOLVED_WHERE}");
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params![to_i64(chain_id), owner, stale_before_ms], record)?;
            rows.map(|r| r.map_err(StoreError::from).and_then(|r| r)).collect()
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }
}

/// Insert `in_flight`, or take over a failure that is retryable or belongs to another op (a
/// reverted op leaves its requestHash open). Re-claiming the same op keeps what is known about
/// its submission, so a resubmission still gets its fate read from the chain.
const CLAIM_SQL: &str = "
INSERT INTO aa_settlements (chain_id, request_hash, user_op_hash, payer, status, retryable,
    submitted, from_block, owner, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, 'in_flight', FALSE, FALSE, ?5, ?6, ?7, ?7)
ON CONFLICT (chain_id, request_hash) DO UPDATE SET
    submitted = CASE WHEN aa_settlements.user_op_hash = excluded.user_op_hash
                     THEN aa_settlements.submitted ELSE FALSE END,
    from_block = CASE WHEN aa_settlements.user_op_hash = excluded.user_op_hash
                      AND aa_settlements.from_block < excluded.from_block
                      THEN aa_settlements.from_block ELSE excluded.from_block END,
    user_op_hash = excluded.user_op_hash, payer = excluded.payer, status = 'in_flight',
    reason = NULL, message = NULL, retryable = FALSE, tx_hash = NULL, block_number = NULL,
    response = NULL, owner = excluded.owner, updated_at = excluded.updated_at
WHERE aa_settlements.status = 'failed'
    AND (aa_settlements.retryable OR aa_settlements.user_op_hash <> excluded.user_op_hash)";

const FINISH_SQL: &str = "
UPDATE aa_settlements SET status = ?4, reason = ?5, message = ?6, retryable = ?7, submitted = ?8,
    tx_hash = ?9, block_number = ?10, response = ?11, updated_at = ?12
WHERE chain_id = ?1 AND request_hash = ?2 AND user_op_hash = ?3 AND status <> 'settled'";

const UNRESOLVED_WHERE: &str = "chain_id = ?1 AND (
    (status = 'in_flight' AND (owner = ?2 OR updated_at < ?3))
    OR (status = 'failed' AND submitted AND retryable))
ORDER BY updated_at DESC LIMIT 256";

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Address;

    fn claim(n: u8, op: u8) -> Claim {
        Claim {
            chain_id: 31337,
            request_hash: B256::repeat_byte(n),
            user_op_hash: B256::repeat_byte(op),
            payer: Address::repeat_byte(9),
            from_block: 10,
            owner: "a".into(),
            now_ms: 1_000,
        }
    }

    fn finish(status: Status, retryable: bool, submitted: bool) -> Finish {
        Finish {
            status,
            reason: (status == Status::Failed).then(|| "bundler_error".into()),
            message: None,
            retryable,
            submitted,
            tx_hash: (status == Status::Settled).then(|| B256::repeat_byte(0xee)),
            block_number: (status == Status::Settled).then_some(12),
            response: Some("{}".into()),
            now_ms: 2_000,
        }
    }

    #[tokio::test]
    async fn claim_finish_reclaim() {
        let store = SqliteStore::in_memory().unwrap();
        let c = claim(1, 2);
        assert_eq!(store.claim(&c).await.unwrap(), ClaimOutcome::Claimed);
        let ClaimOutcome::Existing(row) = store.claim(&c).await.unwrap() else {
            panic!("second claim must see the first")
        };
        assert_eq!(row.status, Status::InFlight);
        assert_eq!(row.owner, "a");
        store.mark_submitted(c.chain_id, c.request_hash, c.user_op_hash, 1_500).await.unwrap();

        // A retryable, submitted failure is open and can be claimed again (same op: submission
        // is remembered; another op: it is not).
        assert!(
            store
                .finish(
                    c.chain_id,
                    c.request_hash,
                    c.user_op_hash,
                    &finish(Status::Failed, true, true)
                )
                .await
                .unwrap()
        );
        assert_eq!(store.unresolved(31337, "b", 0).await.unwrap().len(), 1);
        assert_eq!(store.claim(&c).await.unwrap(), ClaimOutcome::Claimed);
        assert!(store.get(31337, c.request_hash).await.unwrap().unwrap().submitted);
        store
            .finish(
                c.chain_id,
                c.request_hash,
                c.user_op_hash,
                &finish(Status::Failed, true, false),
            )
            .await
            .unwrap();
        let other = claim(1, 3);
        assert_eq!(store.claim(&other).await.unwrap(), ClaimOutcome::Claimed);
        assert!(!store.get(31337, c.request_hash).await.unwrap().unwrap().submitted);

        // Settled is final: no claim, no finish over it.
        store
            .finish(
                c.chain_id,
                c.request_hash,
                other.user_op_hash,
                &finish(Status::Settled, false, true),
            )
            .await
            .unwrap();
        let ClaimOutcome::Existing(row) = store.claim(&other).await.unwrap() else {
            panic!("settled rows are not claimable")
        };
        assert_eq!(row.status, Status::Settled);
        assert_eq!(row.tx_hash, Some(B256::repeat_byte(0xee)));
        assert!(
            !store
                .finish(
                    c.chain_id,
                    c.request_hash,
                    other.user_op_hash,
                    &finish(Status::Failed, true, false)
                )
                .await
                .unwrap()
        );
        assert!(store.unresolved(31337, "a", i64::MAX).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn unresolved_selects_own_and_stale_in_flight_rows() {
        let store = SqliteStore::in_memory().unwrap();
        store.claim(&claim(1, 1)).await.unwrap();
        let mut theirs = claim(2, 2);
        theirs.owner = "b".into();
        store.claim(&theirs).await.unwrap();
        assert_eq!(store.unresolved(31337, "a", 0).await.unwrap().len(), 1);
        assert_eq!(store.unresolved(31337, "a", 1_001).await.unwrap().len(), 2);
        assert_eq!(store.unresolved(1, "a", 1_001).await.unwrap().len(), 0);
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn file_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite3");
        SqliteStore::open(&path).unwrap().claim(&claim(7, 7)).await.unwrap();
        let row = SqliteStore::open(&path).unwrap().get(31337, B256::repeat_byte(7)).await.unwrap();
        assert_eq!(row.map(|r| r.status), Some(Status::InFlight));
    }
}
