//! The audit port on SQLite.

use super::rows::{id, optional_id, parse_time, time_text};
use super::sql::{Conditions, ListQuery};
use super::SqliteStore;
use crate::domain::{AuditEntry, Id, Page, PageRequest};
use crate::error::AppResult;
use crate::store::AuditStore;
use async_trait::async_trait;
use rusqlite::{params, Row};

#[async_trait]
impl AuditStore for SqliteStore {
    async fn insert_audit_entry(&self, entry: &AuditEntry) -> AppResult<()> {
        let e = entry.clone();
        self.write(move |t| {
            t.prepare_cached(&format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"))?
                .execute(params![
                    e.id.as_str(),
                    time_text(&e.at),
                    e.provider_id.as_ref().map(Id::as_str),
                    e.username,
                    e.operation,
                    e.target_id,
                    e.ip,
                    e.result,
                    e.request_id
                ])
                .map(drop)
        })
        .await
    }

    async fn list_audit_entries(&self, provider: &Id, page: PageRequest) -> AppResult<Page<AuditEntry>> {
        let list = audit_list(provider);
        let (items, total) = self.read(move |c| list.page(c, page, audit_from_row)).await?;
        Ok(Page { items, total, request: page })
    }
}

/// A provider's audit entries, newest first.
pub(super) fn audit_list(provider: &Id) -> ListQuery {
    let conditions = Conditions::of_provider(provider);
    ListQuery { table: "audit_log", columns: AUDIT_COLUMNS, order: "at DESC, id DESC", conditions }
}

pub(super) const AUDIT_COLUMNS: &str =
    "id, at, service_provider_id, username, operation, target_id, ip, result, request_id";

pub(super) fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: id(row, 0)?,
        at: parse_time(row, 1)?,
        provider_id: optional_id(row, 2)?,
        username: row.get(3)?,
        operation: row.get(4)?,
        target_id: row.get(5)?,
        ip: row.get(6)?,
        result: row.get(7)?,
        request_id: row.get(8)?,
    })
}
