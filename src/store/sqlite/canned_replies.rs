//! The canned replies port on SQLite, with its row conversion: the table's unique index on
//! `(service_provider_id, short_code)` refuses a provider's second reply with a short code, and the
//! statement's unique-constraint failure becomes a Conflict (the writer rolls back only that
//! change's savepoint, so nothing else in its group is lost).

use super::rows::{parse_time, time_text};
use super::sql::{Conditions, ListQuery};
use super::SqliteStore;
use crate::domain::{CannedReply, Id, Page, PageRequest};
use crate::error::AppResult;
use crate::store::canned_replies::short_code_taken;
use crate::store::CannedReplyStore;
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

const CANNED_REPLY_COLUMNS: &str =
    "id, service_provider_id, short_code, title, content, created_at, updated_at, version";

/// A provider's canned replies, by short code (the unique index's order).
pub(super) fn canned_reply_list(provider: &Id) -> ListQuery {
    let conditions = Conditions::of_provider(provider);
    ListQuery { table: "canned_replies", columns: CANNED_REPLY_COLUMNS, order: "short_code", conditions }
}

/// One canned reply of a provider; the parameters are the provider and the reply id.
pub(super) fn canned_reply_sql() -> String {
    format!("SELECT {CANNED_REPLY_COLUMNS} FROM canned_replies WHERE service_provider_id = ? AND id = ?")
}

/// The parameter is the provider.
pub(super) const CANNED_REPLY_COUNT_SQL: &str = "SELECT COUNT(*) FROM canned_replies WHERE service_provider_id = ?";

fn canned_reply_from_row(row: &Row<'_>) -> rusqlite::Result<CannedReply> {
    Ok(CannedReply {
        id: Id::from_stored(row.get(0)?),
        service_provider_id: Id::from_stored(row.get(1)?),
        short_code: row.get(2)?,
        title: row.get(3)?,
        content: row.get(4)?,
        created_at: parse_time(row, 5)?,
        updated_at: parse_time(row, 6)?,
        version: row.get::<_, i64>(7)?.max(0) as u64,
    })
}

/// Whether a statement failed on a UNIQUE index (the short code's; ids are new for every insert).
fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// A write that a taken short code refuses: `None` then, for the caller to answer a Conflict.
fn unless_short_code_taken<T>(result: rusqlite::Result<T>) -> rusqlite::Result<Option<T>> {
    match result {
        Err(error) if is_unique_violation(&error) => Ok(None),
        other => other.map(Some),
    }
}

#[async_trait]
impl CannedReplyStore for SqliteStore {
    async fn insert_canned_reply(&self, reply: &CannedReply) -> AppResult<()> {
        let r = reply.clone();
        let inserted = self
            .write(move |t| {
                let insert = t
                    .prepare_cached(&format!(
                        "INSERT INTO canned_replies ({CANNED_REPLY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    ))?
                    .execute(params![
                        r.id.as_str(),
                        r.service_provider_id.as_str(),
                        r.short_code,
                        r.title,
                        r.content,
                        time_text(&r.created_at),
                        time_text(&r.updated_at),
                        r.version as i64,
                    ]);
                unless_short_code_taken(insert)
            })
            .await?;
        inserted.map(drop).ok_or_else(short_code_taken)
    }

    async fn canned_replies(&self, provider: &Id, page: PageRequest) -> AppResult<Page<CannedReply>> {
        let list = canned_reply_list(provider);
        let (items, total) = self.read(move |c| list.page(c, page, canned_reply_from_row)).await?;
        Ok(Page { items, total, request: page })
    }

    async fn canned_reply(&self, provider: &Id, id: &Id) -> AppResult<Option<CannedReply>> {
        let (provider, id) = (provider.clone(), id.clone());
        self.read(move |c| {
            c.prepare_cached(&canned_reply_sql())?
                .query_row([provider.as_str(), id.as_str()], canned_reply_from_row)
                .optional()
        })
        .await
    }

    async fn update_canned_reply(&self, reply: &CannedReply) -> AppResult<Option<CannedReply>> {
        let r = reply.clone();
        let updated = self
            .write(move |t| {
                let update = t
                    .prepare_cached(&format!(
                        "UPDATE canned_replies SET short_code = ?, title = ?, content = ?, updated_at = ?,
                             version = version + 1
                         WHERE id = ? AND service_provider_id = ? AND version = ?
                         RETURNING {CANNED_REPLY_COLUMNS}"
                    ))?
                    .query_row(
                        params![
                            r.short_code,
                            r.title,
                            r.content,
                            time_text(&r.updated_at),
                            r.id.as_str(),
                            r.service_provider_id.as_str(),
                            r.version as i64,
                        ],
                        canned_reply_from_row,
                    )
                    .optional();
                unless_short_code_taken(update)
            })
            .await?;
        updated.ok_or_else(short_code_taken)
    }

    async fn delete_canned_reply(&self, provider: &Id, id: &Id) -> AppResult<bool> {
        let (provider, id) = (provider.clone(), id.clone());
        self.write(move |t| {
            t.prepare_cached("DELETE FROM canned_replies WHERE service_provider_id = ? AND id = ?")?
                .execute([provider.as_str(), id.as_str()])
        })
        .await
        .map(|deleted| deleted > 0)
    }

    async fn count_canned_replies(&self, provider: &Id) -> AppResult<u64> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached(CANNED_REPLY_COUNT_SQL)?.query_row([provider.as_str()], |r| r.get::<_, i64>(0))
        })
        .await
        .map(|n| n.max(0) as u64)
    }
}
