//! The retention port on MongoDB. `delete_many` takes no limit, so a batch is chosen first (the
//! `_id`s of at most `batch` due documents, through an index on the time field) and then deleted by
//! `_id`; no transaction is involved, and each call's work is bounded by the batch.
//!
//! The token collections also have TTL indexes on `expiresAt`, which make the server delete expired
//! tokens by itself (about once a minute); for them the job is a backstop that also reports counts.

use super::documents::date;
use super::{collect, MongoStore};
use crate::domain::Timestamp;
use crate::error::AppResult;
use crate::store::{Retained, RetentionStore};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson};

#[async_trait]
impl RetentionStore for MongoStore {
    async fn prune(&self, table: Retained, before: Timestamp, batch: u32) -> AppResult<u64> {
        // Unlike SQLite, cursors are counted in `eventCounters`, not from the newest event, so the
        // event log can be emptied without a cursor ever being handed out twice.
        let (collection, field) = match table {
            Retained::Events => (&self.events, "at"),
            Retained::IdempotencyKeys => (&self.idempotency_keys, "createdAt"),
            Retained::RevokedAccessTokens => (&self.revoked_tokens, "expiresAt"),
            Retained::RefreshTokens => (&self.refresh_tokens, "expiresAt"),
            Retained::TokenFamilies => (&self.token_families, "expiresAt"),
        };
        let due = doc! { field: { "$lt": date(&before) } };
        self.op(async {
            let found = collection.find(due).projection(doc! { "_id": 1 }).limit(i64::from(batch)).await?;
            let ids: Vec<Bson> = collect(found).await?.into_iter().filter_map(|d| d.get("_id").cloned()).collect();
            if ids.is_empty() {
                return Ok(0);
            }
            collection.delete_many(doc! { "_id": { "$in": ids } }).await.map(|deleted| deleted.deleted_count)
        })
        .await
    }
}
