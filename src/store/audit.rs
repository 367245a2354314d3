//! The audit port: who did what, per provider, newest first.

use crate::domain::{AuditEntry, Id, Page, PageRequest};
use crate::error::AppResult;
use async_trait::async_trait;

#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn insert_audit_entry(&self, entry: &AuditEntry) -> AppResult<()>;
    /// The provider's audit entries, newest first.
    async fn list_audit_entries(&self, provider: &Id, page: PageRequest) -> AppResult<Page<AuditEntry>>;
}
