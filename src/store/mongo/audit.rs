//! The audit port on MongoDB.

use super::documents::{date, optional_id, optional_text, Fields, ReadResult};
use super::read;
use super::MongoStore;
use crate::domain::{AuditEntry, Id, Page, PageRequest};
use crate::error::AppResult;
use crate::store::AuditStore;
use async_trait::async_trait;
use mongodb::bson::{doc, Document};

#[async_trait]
impl AuditStore for MongoStore {
    async fn insert_audit_entry(&self, entry: &AuditEntry) -> AppResult<()> {
        self.op(self.audit_log.insert_one(audit_document(entry))).await.map(drop)
    }

    async fn list_audit_entries(&self, provider: &Id, page: PageRequest) -> AppResult<Page<AuditEntry>> {
        let query = doc! { "serviceProviderId": provider.as_str() };
        let (documents, total) = self.op(self.page(&self.audit_log, query, audit_order(), page)).await?;
        Ok(Page { items: read(&documents, audit_from)?, total, request: page })
    }
}

pub(super) fn audit_document(entry: &AuditEntry) -> Document {
    doc! {
        "id": entry.id.as_str(),
        "at": date(&entry.at),
        "serviceProviderId": optional_id(&entry.provider_id),
        "username": optional_text(&entry.username),
        "operation": entry.operation.as_str(),
        "targetId": optional_text(&entry.target_id),
        "ip": optional_text(&entry.ip),
        "result": entry.result.as_str(),
        "requestId": optional_text(&entry.request_id),
    }
}

pub(super) fn audit_from(doc: &Document) -> ReadResult<AuditEntry> {
    let fields = Fields::new(doc, "audit entry");
    Ok(AuditEntry {
        id: Id::from_stored(fields.text("id")?),
        at: fields.time("at")?,
        provider_id: fields.optional_text("serviceProviderId")?.map(Id::from_stored),
        username: fields.optional_text("username")?,
        operation: fields.text("operation")?,
        target_id: fields.optional_text("targetId")?,
        ip: fields.optional_text("ip")?,
        result: fields.text("result")?,
        request_id: fields.optional_text("requestId")?,
    })
}

/// Newest first.
pub(super) fn audit_order() -> Document {
    doc! { "at": -1, "id": -1 }
}
