//! The outbox port on SQLite.

use super::rows::{
    conversion_error, id, millis, optional_id, optional_time_from_millis, parse_value, time_from_millis,
};
use super::sql::{id_values, placeholders, text};
use super::SqliteStore;
use crate::domain::{Cursor, DeliveryStatus, Id, OutboxDraft, OutboxEntry, OutboxTarget, Timestamp};
use crate::error::AppResult;
use crate::store::OutboxCounts;
use crate::store::OutboxStore;
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

/// Queues deliveries under `sequence` (the cursor of the write's first event), inside the write's
/// transaction.
pub(super) fn queue_outbox(transaction: &Connection, drafts: &[OutboxDraft], sequence: Cursor) -> rusqlite::Result<()> {
    for d in drafts {
        let payload =
            serde_json::to_string(&d.payload).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        transaction
            .prepare_cached(
                "INSERT INTO outbox (id, target, event_type, provider_id, customer_id, ordering_key, sequence, payload,
                     status, attempts, next_attempt_at, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            )?
            .execute(params![
                d.id.as_str(),
                d.target.as_str(),
                d.event_type,
                d.provider_id.as_str(),
                d.customer_id.as_ref().map(Id::as_str),
                d.ordering_key,
                sequence as i64,
                payload,
                DeliveryStatus::Pending.as_str(),
                millis(&d.created_at),
                millis(&d.created_at),
            ])?;
    }
    Ok(())
}

/// Adds `expires_at` (ephemeral deliveries) to an `outbox` table made before it, and its index.
pub(super) fn add_expiry_column(connection: &Connection) -> rusqlite::Result<()> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('outbox')")?;
    let columns = statement.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    if !columns.iter().any(|c| c == "expires_at") {
        connection.execute_batch("ALTER TABLE outbox ADD COLUMN expires_at INTEGER")?;
    }
    connection
        .execute_batch("CREATE INDEX IF NOT EXISTS outbox_expiring ON outbox (expires_at) WHERE expires_at IS NOT NULL")
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn queue_expiring_delivery(&self, draft: &OutboxDraft, expires_at: Timestamp) -> AppResult<()> {
        let (draft, sequence, expires_at) = (draft.clone(), millis(&draft.created_at), millis(&expires_at));
        self.write(move |t| {
            queue_outbox(t, std::slice::from_ref(&draft), sequence as Cursor)?;
            t.prepare_cached("UPDATE outbox SET expires_at = ? WHERE id = ?")?
                .execute(params![expires_at, draft.id.as_str()])
                .map(drop)
        })
        .await
    }

    async fn drop_delivery(&self, id: &Id) -> AppResult<()> {
        let id = id.clone();
        self.write(move |t| {
            t.prepare_cached("DELETE FROM outbox WHERE id = ?")?.execute(params![id.as_str()]).map(drop)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> AppResult<Vec<OutboxEntry>> {
        let owner = owner.to_owned();
        let (now, lease_until) = (millis(&now), millis(&lease_until));
        self.write(move |t| {
            t.prepare_cached("DELETE FROM outbox WHERE expires_at <= ?")?.execute(params![now])?;
            let pending = DeliveryStatus::Pending.as_str();
            let heads = t
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox o
                     WHERE o.status = ?1 AND o.next_attempt_at <= ?2 AND (o.lease_until IS NULL OR o.lease_until <= ?2)
                       AND NOT EXISTS (
                           SELECT 1 FROM outbox p
                           WHERE p.status = ?1 AND p.ordering_key = o.ordering_key
                             AND (p.sequence < o.sequence OR (p.sequence = o.sequence AND p.id < o.id)))
                     ORDER BY o.next_attempt_at, o.sequence
                     LIMIT ?3"
                ))?
                .query_map(params![pending, now, limit], outbox_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for entry in &heads {
                t.prepare_cached("UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?")?
                    .execute(params![owner, lease_until, entry.draft.id.as_str()])?;
            }
            Ok(heads)
        })
        .await
    }

    async fn complete_delivery(&self, id: &Id, at: Timestamp) -> AppResult<()> {
        let id = id.clone();
        self.write(move |t| {
            t.prepare_cached(
                "UPDATE outbox SET status = ?, delivered_at = ?, attempts = attempts + 1, lease_owner = NULL,
                     lease_until = NULL
                 WHERE id = ? AND status = ?",
            )?
            .execute(params![
                DeliveryStatus::Delivered.as_str(),
                millis(&at),
                id.as_str(),
                DeliveryStatus::Pending.as_str()
            ])
            .map(drop)
        })
        .await
    }

    async fn fail_delivery(
        &self,
        id: &Id,
        owner: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        at: Timestamp,
    ) -> AppResult<()> {
        let (id, owner, error) = (id.clone(), owner.to_owned(), error.to_owned());
        self.write(move |t| {
            let (status, next, dead_at) = match retry_at {
                Some(retry_at) => (DeliveryStatus::Pending, millis(&retry_at), None),
                None => (DeliveryStatus::Dead, millis(&at), Some(millis(&at))),
            };
            t.prepare_cached(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
                     dead_at = ?, lease_owner = NULL, lease_until = NULL
                 WHERE id = ? AND status = ? AND lease_owner = ?",
            )?
            .execute(params![
                status.as_str(),
                next,
                error,
                dead_at,
                id.as_str(),
                DeliveryStatus::Pending.as_str(),
                owner
            ])
            .map(drop)
        })
        .await
    }

    async fn dead_letters(&self, limit: u32) -> AppResult<Vec<OutboxEntry>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = ? ORDER BY dead_at, sequence, id LIMIT ?"
            ))?
            .query_map(params![DeliveryStatus::Dead.as_str(), limit], outbox_from_row)?
            .collect()
        })
        .await
    }

    async fn replay_dead_letters(&self, ids: Option<&[Id]>, at: Timestamp) -> AppResult<u64> {
        if ids.is_some_and(<[Id]>::is_empty) {
            return Ok(0);
        }
        let ids = ids.map(<[Id]>::to_vec);
        self.write(move |t| {
            let mut sql = "UPDATE outbox SET status = ?, attempts = 0, next_attempt_at = ?, dead_at = NULL,
                     lease_owner = NULL, lease_until = NULL
                 WHERE status = ?"
                .to_owned();
            let mut values = vec![
                text(DeliveryStatus::Pending.as_str()),
                Value::Integer(millis(&at)),
                text(DeliveryStatus::Dead.as_str()),
            ];
            if let Some(ids) = &ids {
                sql.push_str(&format!(" AND id IN ({})", placeholders(ids.len())));
                values.extend(id_values(ids));
            }
            t.execute(&sql, params_from_iter(values)).map(|n| n as u64)
        })
        .await
    }

    async fn outbox_counts(&self) -> AppResult<OutboxCounts> {
        self.read(|c| {
            let mut counts = OutboxCounts::default();
            let mut statement = c.prepare_cached("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let n = row.get::<_, i64>(1)?.max(0) as u64;
                match DeliveryStatus::parse(&row.get::<_, String>(0)?) {
                    Some(DeliveryStatus::Pending) => counts.pending = n,
                    Some(DeliveryStatus::Delivered) => counts.delivered = n,
                    Some(DeliveryStatus::Dead) => counts.dead = n,
                    None => {}
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn prune_outbox(&self, before: Timestamp) -> AppResult<u64> {
        self.write(move |t| {
            t.prepare_cached("DELETE FROM outbox WHERE status = ? AND delivered_at < ?")?
                .execute(params![DeliveryStatus::Delivered.as_str(), millis(&before)])
                .map(|n| n as u64)
        })
        .await
    }
}

pub(super) const OUTBOX_COLUMNS: &str =
    "id, target, event_type, provider_id, customer_id, ordering_key, sequence, payload, \
     status, attempts, next_attempt_at, last_error, created_at, delivered_at, dead_at, expires_at";

pub(super) fn outbox_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let payload: String = row.get(7)?;
    Ok(OutboxEntry {
        draft: OutboxDraft {
            id: id(row, 0)?,
            target: parse_value(row, 1, OutboxTarget::parse)?,
            event_type: row.get(2)?,
            provider_id: id(row, 3)?,
            customer_id: optional_id(row, 4)?,
            ordering_key: row.get(5)?,
            payload: serde_json::from_str(&payload).map_err(|e| conversion_error(7, format!("bad payload: {e}")))?,
            created_at: time_from_millis(row, 12)?,
        },
        sequence: row.get::<_, i64>(6)?.max(0) as Cursor,
        status: parse_value(row, 8, DeliveryStatus::parse)?,
        attempts: row.get::<_, i64>(9)?.clamp(0, i64::from(u32::MAX)) as u32,
        next_attempt_at: time_from_millis(row, 10)?,
        last_error: row.get(11)?,
        delivered_at: optional_time_from_millis(row, 13)?,
        dead_at: optional_time_from_millis(row, 14)?,
        expires_at: optional_time_from_millis(row, 15)?,
    })
}
