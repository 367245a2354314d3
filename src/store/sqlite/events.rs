//! The events port on SQLite.

use super::rows::{id, optional_id, parse_time, parse_value, time_text};
use super::SqliteStore;
use crate::domain::{Cursor, EventKind, EventRecord, Id, Timestamp};
use crate::error::AppResult;
use crate::store::EventStore;
use async_trait::async_trait;
use rusqlite::{params, Connection, Row};

/// Appends an event to the provider's log under the next cursor. Runs inside the write
/// transaction, whose lock keeps a provider's cursors gapless and in commit order.
pub(super) fn log_event(
    transaction: &Connection,
    provider: &Id,
    kind: EventKind,
    subject: &Id,
    customer: Option<&Id>,
    at: Timestamp,
) -> rusqlite::Result<EventRecord> {
    let cursor: i64 = transaction
        .prepare_cached("SELECT COALESCE(MAX(cursor), 0) + 1 FROM events WHERE provider_id = ?")?
        .query_row([provider.as_str()], |row| row.get(0))?;
    transaction
        .prepare_cached(
            "INSERT INTO events (provider_id, cursor, kind, subject_id, customer_id, at) VALUES (?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            provider.as_str(),
            cursor,
            kind.as_str(),
            subject.as_str(),
            customer.map(Id::as_str),
            time_text(&at)
        ])?;
    Ok(EventRecord {
        provider_id: provider.clone(),
        cursor: cursor as Cursor,
        kind,
        subject_id: subject.clone(),
        customer_id: customer.cloned(),
        at,
    })
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn events_after(&self, provider: &Id, after: Cursor, limit: u32) -> AppResult<Vec<EventRecord>> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached(&events_after_sql())?
                .query_map(params![provider.as_str(), after as i64, limit], event_from_row)?
                .collect()
        })
        .await
    }

    async fn latest_cursor(&self, provider: &Id) -> AppResult<Cursor> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached(LATEST_CURSOR_SQL)?
                .query_row([provider.as_str()], |row| row.get::<_, i64>(0))
                .map(|cursor| cursor as Cursor)
        })
        .await
    }
}

/// The parameters are the provider, the cursor to read after and the limit.
pub(super) fn events_after_sql() -> String {
    format!("SELECT {EVENT_COLUMNS} FROM events WHERE provider_id = ? AND cursor > ? ORDER BY cursor LIMIT ?")
}

/// The parameter is the provider.
pub(super) const LATEST_CURSOR_SQL: &str = "SELECT COALESCE(MAX(cursor), 0) FROM events WHERE provider_id = ?";

pub(super) const EVENT_COLUMNS: &str = "provider_id, cursor, kind, subject_id, customer_id, at";

pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        provider_id: id(row, 0)?,
        cursor: row.get::<_, i64>(1)? as Cursor,
        kind: parse_value(row, 2, EventKind::parse)?,
        subject_id: id(row, 3)?,
        customer_id: optional_id(row, 4)?,
        at: parse_time(row, 5)?,
    })
}
