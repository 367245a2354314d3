//! The audit port on SQLite.

use super::rows::{audit_from_row, time_text, AUDIT_COLUMNS};
use super::sql::Conditions;
use super::SqliteStore;
use crate::domain::{AuditEntry, Id, Page, PageRequest};
use crate::error::AppResult;
use crate::store::AuditStore;
use async_trait::async_trait;
use rusqlite::params;

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
        let conditions = Conditions::of_provider(provider);
        let (items, total) = self
            .read(move |c| conditions.page(c, "audit_log", AUDIT_COLUMNS, "at DESC, id DESC", page, audit_from_row))
            .await?;
        Ok(Page { items, total, request: page })
    }
}
