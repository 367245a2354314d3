//! The audit port on MongoDB.

use super::documents::{audit_document, audit_from};
use super::read;
use super::MongoStore;
use crate::domain::{AuditEntry, Id, Page, PageRequest};
use crate::error::AppResult;
use crate::store::AuditStore;
use async_trait::async_trait;
use mongodb::bson::doc;

#[async_trait]
impl AuditStore for MongoStore {
    async fn insert_audit_entry(&self, entry: &AuditEntry) -> AppResult<()> {
        self.op(self.audit_log.insert_one(audit_document(entry))).await.map(drop)
    }

    async fn list_audit_entries(&self, provider: &Id, page: PageRequest) -> AppResult<Page<AuditEntry>> {
        let query = doc! { "serviceProviderId": provider.as_str() };
        let (documents, total) = self.op(self.page(&self.audit_log, query, doc! { "at": -1, "id": -1 }, page)).await?;
        Ok(Page { items: read(&documents, audit_from)?, total, request: page })
    }
}
