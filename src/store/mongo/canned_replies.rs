//! The canned replies port on MongoDB, with its document conversion: one document per reply in
//! `cannedReplies`; the unique `(serviceProviderId, shortCode)` index refuses a provider's second
//! reply with a short code, and that duplicate-key error becomes a Conflict. Every write is one
//! single-document command, so none needs a transaction.

use super::documents::{date, Fields, ReadResult};
use super::failures::{bad_document, is_duplicate_key};
use super::read;
use super::MongoStore;
use crate::domain::{CannedReply, Id, Page, PageRequest};
use crate::error::AppResult;
use crate::store::canned_replies::short_code_taken;
use crate::store::CannedReplyStore;
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::options::ReturnDocument;

fn canned_reply_document(r: &CannedReply) -> Document {
    doc! {
        "id": r.id.as_str(),
        "serviceProviderId": r.service_provider_id.as_str(),
        "shortCode": &r.short_code,
        "title": &r.title,
        "content": &r.content,
        "createdAt": date(&r.created_at),
        "updatedAt": date(&r.updated_at),
        "version": r.version as i64,
    }
}

fn canned_reply_from(doc: &Document) -> ReadResult<CannedReply> {
    let f = Fields::new(doc, "canned reply");
    Ok(CannedReply {
        id: f.id("id")?,
        service_provider_id: f.id("serviceProviderId")?,
        short_code: f.text("shortCode")?,
        title: f.text("title")?,
        content: f.text("content")?,
        created_at: f.time("createdAt")?,
        updated_at: f.time("updatedAt")?,
        version: f.number("version")?.max(0) as u64,
    })
}

/// A write that a taken short code refuses: `None` then, for the caller to answer a Conflict.
fn unless_short_code_taken<T>(result: mongodb::error::Result<T>) -> mongodb::error::Result<Option<T>> {
    match result {
        Err(error) if is_duplicate_key(&error) => Ok(None),
        other => other.map(Some),
    }
}

#[async_trait]
impl CannedReplyStore for MongoStore {
    async fn insert_canned_reply(&self, reply: &CannedReply) -> AppResult<()> {
        let document = canned_reply_document(reply);
        let inserted =
            self.op(async { unless_short_code_taken(self.canned_replies.insert_one(document).await) }).await?;
        inserted.map(drop).ok_or_else(short_code_taken)
    }

    async fn canned_replies(&self, provider: &Id, page: PageRequest) -> AppResult<Page<CannedReply>> {
        let query = doc! { "serviceProviderId": provider.as_str() };
        let (documents, total) = self.op(self.page(&self.canned_replies, query, canned_reply_order(), page)).await?;
        Ok(Page { items: read(&documents, canned_reply_from)?, total, request: page })
    }

    async fn canned_reply(&self, provider: &Id, id: &Id) -> AppResult<Option<CannedReply>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() };
        let found = self.op(self.canned_replies.find_one(query)).await?;
        found.as_ref().map(canned_reply_from).transpose().map_err(bad_document)
    }

    async fn update_canned_reply(&self, reply: &CannedReply) -> AppResult<Option<CannedReply>> {
        let filter = doc! {
            "serviceProviderId": reply.service_provider_id.as_str(),
            "id": reply.id.as_str(),
            "version": reply.version as i64,
        };
        let update = doc! {
            "$set": {
                "shortCode": &reply.short_code,
                "title": &reply.title,
                "content": &reply.content,
                "updatedAt": date(&reply.updated_at),
            },
            "$inc": { "version": 1_i64 },
        };
        let updated = self
            .op(async {
                let update = self.canned_replies.find_one_and_update(filter, update);
                unless_short_code_taken(update.return_document(ReturnDocument::After).await)
            })
            .await?
            .ok_or_else(short_code_taken)?;
        updated.as_ref().map(canned_reply_from).transpose().map_err(bad_document)
    }

    async fn delete_canned_reply(&self, provider: &Id, id: &Id) -> AppResult<bool> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() };
        self.op(self.canned_replies.delete_one(query)).await.map(|r| r.deleted_count > 0)
    }

    async fn count_canned_replies(&self, provider: &Id) -> AppResult<u64> {
        self.op(self.canned_replies.count_documents(doc! { "serviceProviderId": provider.as_str() })).await
    }
}

/// By short code.
pub(super) fn canned_reply_order() -> Document {
    doc! { "shortCode": 1 }
}
