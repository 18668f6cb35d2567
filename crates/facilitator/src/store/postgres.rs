//! The shared registry for several facilitator instances: the same table and the same atomic
//! claim (`INSERT … ON CONFLICT … DO UPDATE … WHERE`) as SQLite, on Postgres.

use alloy::primitives::B256;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Row};

use super::{
    Claim, ClaimOutcome, Finish, Record, SCHEMA, Status, Store, StoreError, hex32, parse_address,
    parse_b256, to_i64, to_u64,
};

/// A registry in one Postgres database. TLS is not built in: reach the database over a private
/// network or a local proxy.
pub struct PostgresStore {
    url: String,
    client: Mutex<Client>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL carries the password.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects and creates the schema if missing; instances sharing the URL share one registry.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = connect(url).await?;
        client.batch_execute(SCHEMA).await?;
        Ok(Self { url: url.to_owned(), client: Mutex::new(client) })
    }

    /// The live client, reconnecting once if the connection dropped (database restart).
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, StoreError> {
        let mut guard = self.client.lock().await;
        if guard.is_closed() {
            *guard = connect(&self.url).await?;
        }
        Ok(guard)
    }
}

async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(target: "x402_aa::facilitator", %error, "postgres connection ended");
        }
    });
    Ok(client)
}

const COLUMNS: &str = "chain_id, request_hash, user_op_hash, payer, status, reason, message, \
    retryable, submitted, from_block, tx_hash, block_number, response, owner, created_at, updated_at";

fn record(row: &Row) -> Result<Record, StoreError> {
    let status: String = row.try_get(4)?;
    let tx_hash: Option<String> = row.try_get(10)?;
    let block_number: Option<i64> = row.try_get(11)?;
    Ok(Record {
        chain_id: to_u64(row.try_get(0)?),
        request_hash: parse_b256(&row.try_get::<_, String>(1)?)?,
        user_op_hash: parse_b256(&row.try_get::<_, String>(2)?)?,
        payer: parse_address(&row.try_get::<_, String>(3)?)?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("bad status {status:?}")))?,
        reason: row.try_get(5)?,
        message: row.try_get(6)?,
        retryable: row.try_get(7)?,
        submitted: row.try_get(8)?,
        from_block: to_u64(row.try_get(9)?),
        tx_hash: tx_hash.as_deref().map(parse_b256).transpose()?,
        block_number: block_number.map(to_u64),
        response: row.try_get(12)?,
        owner: row.try_get(13)?,
        created_at: row.try_get(14)?,
        updated_at: row.try_get(15)?,
    })
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn claim(&self, c: &Claim) -> Result<ClaimOutcome, StoreError> {
        let client = self.client().await?;
        let request_hash = hex32(&c.request_hash);
        let claimed = client
            .query_opt(
                CLAIM_SQL,
                &[
                    &to_i64(c.chain_id),
                    &request_hash,
                    &hex32(&c.user_op_hash),
                    &format!("{:#x}", c.payer),
                    &to_i64(c.from_block),
                    &c.owner,
                    &c.now_ms,
                ],
            )
            .await?;
        if claimed.is_some() {
            return Ok(ClaimOutcome::Claimed);
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM aa_settlements WHERE chain_id = $1 AND request_hash = $2"
        );
        let row = client.query_opt(&sql, &[&to_i64(c.chain_id), &request_hash]).await?;
        row.as_ref()
            .map(record)
            .transpose()?
            .map(|r| ClaimOutcome::Existing(Box::new(r)))
            .ok_or_else(|| StoreError::Corrupt("claimed row vanished".into()))
    }

    async fn mark_submitted(
        &self,
        chain_id: u64,
        request_hash: B256,
        user_op_hash: B256,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE aa_settlements SET submitted = TRUE, updated_at = $4 \
                 WHERE chain_id = $1 AND request_hash = $2 AND user_op_hash = $3 \
                 AND status = 'in_flight'",
                &[&to_i64(chain_id), &hex32(&request_hash), &hex32(&user_op_hash), &now_ms],
            )
            .await?;
        Ok(())
    }

    async fn finish(
        &self,
        chain_id: u64,
        request_hash: B256,
        user_op_hash: B256,
        f: &Finish,
    ) -> Result<bool, StoreError> {
        let changed = self
            .client()
            .await?
            .execute(
                FINISH_SQL,
                &[
                    &to_i64(chain_id),
                    &hex32(&request_hash),
                    &hex32(&user_op_hash),
                    &f.status.as_str(),
                    &f.reason,
                    &f.message,
                    &f.retryable,
                    &f.submitted,
                    &f.tx_hash.as_ref().map(hex32),
                    &f.block_number.map(to_i64),
                    &f.response,
                    &f.now_ms,
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn get(&self, chain_id: u64, request_hash: B256) -> Result<Option<Record>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM aa_settlements WHERE chain_id = $1 AND request_hash = $2"
        );
        let row = self
            .client()
            .await?
            .query_opt(&sql, &[&to_i64(chain_id), &hex32(&request_hash)])
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn unresolved(
        &self,
        chain_id: u64,
        owner: &str,
        stale_before_ms: i64,
    ) -> Result<Vec<Record>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM aa_settlements WHERE {UNRESOLVED_WHERE}");
        let rows = self
            .client()
            .await?
            .query(&sql, &[&to_i64(chain_id), &owner, &stale_before_ms])
            .await?;
        rows.iter().map(record).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }
}

const CLAIM_SQL: &str = "
INSERT INTO aa_settlements (chain_id, request_hash, user_op_hash, payer, status, retryable,
    submitted, from_block, owner, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'in_flight', FALSE, FALSE, $5, $6, $7, $7)
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
    AND (aa_settlements.retryable OR aa_settlements.user_op_hash <> excluded.user_op_hash)
RETURNING request_hash";

const FINISH_SQL: &str = "
UPDATE aa_settlements SET status = $4, reason = $5, message = $6, retryable = $7, submitted = $8,
    tx_hash = $9, block_number = $10, response = $11, updated_at = $12
WHERE chain_id = $1 AND request_hash = $2 AND user_op_hash = $3 AND status <> 'settled'";

const UNRESOLVED_WHERE: &str = "chain_id = $1 AND (
    (status = 'in_flight' AND (owner = $2 OR updated_at < $3))
    OR (status = 'failed' AND submitted AND retryable))
ORDER BY updated_at DESC LIMIT 256";
