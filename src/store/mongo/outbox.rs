//! The outbox port on MongoDB.

use super::documents::{date, optional_id, Fields, ReadResult};
use super::failures::bad_document;
use super::MongoStore;
use super::{collect, ids_bson, read};
use crate::domain::{Cursor, DeliveryStatus, EventRecord, Id, OutboxDraft, OutboxEntry, OutboxTarget, Timestamp};
use crate::error::AppResult;
use crate::store::OutboxCounts;
use crate::store::OutboxStore;
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::ClientSession;

impl MongoStore {
    /// Queues deliveries under `sequence` (the cursor of the write's first event), inside the
    /// caller's transaction.
    pub(super) async fn queue_outbox(
        &self,
        session: &mut ClientSession,
        drafts: &[OutboxDraft],
        events: &[EventRecord],
    ) -> mongodb::error::Result<()> {
        let (Some(first), false) = (events.first(), drafts.is_empty()) else { return Ok(()) };
        let documents: Vec<Document> = drafts.iter().map(|d| outbox_document(d, first.cursor)).collect();
        self.outbox.insert_many(documents).session(&mut *session).await.map(drop)
    }
}

#[async_trait]
impl OutboxStore for MongoStore {
    async fn queue_expiring_delivery(&self, draft: &OutboxDraft, expires_at: Timestamp) -> AppResult<()> {
        let mut document = outbox_document(draft, draft.created_at.timestamp_millis().max(0) as Cursor);
        document.insert("expiresAt", date(&expires_at));
        self.op(self.outbox.insert_one(document)).await.map(drop)
    }

    async fn drop_delivery(&self, id: &Id) -> AppResult<()> {
        self.op(self.outbox.delete_one(doc! { "id": id.as_str() })).await.map(drop)
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> AppResult<Vec<OutboxEntry>> {
        let now = date(&now);
        self.op(self.outbox.delete_many(doc! { "expiresAt": { "$lte": now } })).await?;
        let free = doc! { "nextAttemptAt": { "$lte": now }, "$or": [
            { "leaseUntil": Bson::Null },
            { "leaseUntil": { "$lte": now } },
        ] };
        // The first pending delivery of each ordering key, then those of them that are due.
        let pipeline = vec![
            doc! { "$match": { "status": DeliveryStatus::Pending.as_str() } },
            doc! { "$sort": { "orderingKey": 1, "sequence": 1, "id": 1 } },
            doc! { "$group": { "_id": "$orderingKey", "head": { "$first": "$$ROOT" } } },
            doc! { "$replaceRoot": { "newRoot": "$head" } },
            doc! { "$match": free.clone() },
            doc! { "$sort": { "nextAttemptAt": 1, "sequence": 1 } },
            doc! { "$limit": i64::from(limit) },
            doc! { "$project": { "_id": 0, "id": 1 } },
        ];
        let heads = self.op(async { collect(self.outbox.aggregate(pipeline).await?).await }).await?;
        let mut claimed = Vec::with_capacity(heads.len());
        for head in heads {
            let Ok(id) = head.get_str("id") else { continue };
            // Claimed only if still pending, due and free: another process may have got there first.
            let mut filter = free.clone();
            filter.insert("id", id);
            filter.insert("status", DeliveryStatus::Pending.as_str());
            let update = doc! { "$set": { "leaseOwner": owner, "leaseUntil": date(&lease_until) } };
            let found =
                self.op(self.outbox.find_one_and_update(filter, update).return_document(ReturnDocument::After)).await?;
            if let Some(document) = found {
                claimed.push(outbox_from(&document).map_err(bad_document)?);
            }
        }
        Ok(claimed)
    }

    async fn complete_delivery(&self, id: &Id, at: Timestamp) -> AppResult<()> {
        let filter = doc! { "id": id.as_str(), "status": DeliveryStatus::Pending.as_str() };
        let update = doc! {
            "$set": {
                "status": DeliveryStatus::Delivered.as_str(),
                "deliveredAt": date(&at),
                "leaseOwner": Bson::Null,
                "leaseUntil": Bson::Null,
            },
            "$inc": { "attempts": 1_i32 },
        };
        self.op(self.outbox.update_one(filter, update)).await.map(drop)
    }

    async fn fail_delivery(
        &self,
        id: &Id,
        owner: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        at: Timestamp,
    ) -> AppResult<()> {
        let filter = doc! { "id": id.as_str(), "status": DeliveryStatus::Pending.as_str(), "leaseOwner": owner };
        let (status, next, dead_at) = match retry_at {
            Some(retry_at) => (DeliveryStatus::Pending, date(&retry_at), Bson::Null),
            None => (DeliveryStatus::Dead, date(&at), Bson::DateTime(date(&at))),
        };
        let update = doc! {
            "$set": {
                "status": status.as_str(),
                "nextAttemptAt": next,
                "lastError": error,
                "deadAt": dead_at,
                "leaseOwner": Bson::Null,
                "leaseUntil": Bson::Null,
            },
            "$inc": { "attempts": 1_i32 },
        };
        self.op(self.outbox.update_one(filter, update)).await.map(drop)
    }

    async fn dead_letters(&self, limit: u32) -> AppResult<Vec<OutboxEntry>> {
        let query = doc! { "status": DeliveryStatus::Dead.as_str() };
        let sort = doc! { "deadAt": 1, "sequence": 1, "id": 1 };
        let documents =
            self.op(async { collect(self.outbox.find(query).sort(sort).limit(i64::from(limit)).await?).await }).await?;
        read(&documents, outbox_from)
    }

    async fn replay_dead_letters(&self, ids: Option<&[Id]>, at: Timestamp) -> AppResult<u64> {
        let mut filter = doc! { "status": DeliveryStatus::Dead.as_str() };
        if let Some(ids) = ids {
            if ids.is_empty() {
                return Ok(0);
            }
            filter.insert("id", doc! { "$in": ids_bson(ids) });
        }
        let update = doc! { "$set": {
            "status": DeliveryStatus::Pending.as_str(),
            "attempts": 0_i32,
            "nextAttemptAt": date(&at),
            "deadAt": Bson::Null,
            "leaseOwner": Bson::Null,
            "leaseUntil": Bson::Null,
        } };
        self.op(self.outbox.update_many(filter, update)).await.map(|r| r.modified_count)
    }

    async fn outbox_counts(&self) -> AppResult<OutboxCounts> {
        let count = |status: DeliveryStatus| self.outbox.count_documents(doc! { "status": status.as_str() });
        let (pending, delivered, dead) = self
            .op(async {
                tokio::try_join!(
                    count(DeliveryStatus::Pending),
                    count(DeliveryStatus::Delivered),
                    count(DeliveryStatus::Dead)
                )
            })
            .await?;
        Ok(OutboxCounts { pending, delivered, dead })
    }

    async fn prune_outbox(&self, before: Timestamp) -> AppResult<u64> {
        let filter = doc! { "status": DeliveryStatus::Delivered.as_str(), "deliveredAt": { "$lt": date(&before) } };
        self.op(self.outbox.delete_many(filter)).await.map(|r| r.deleted_count)
    }
}

/// A queued delivery. The payload is kept as JSON text, so every attempt sends the same bytes.
pub(super) fn outbox_document(d: &OutboxDraft, sequence: Cursor) -> Document {
    doc! {
        "id": d.id.as_str(),
        "target": d.target.as_str(),
        "eventType": &d.event_type,
        "serviceProviderId": d.provider_id.as_str(),
        "customerId": optional_id(&d.customer_id),
        "orderingKey": &d.ordering_key,
        "sequence": sequence as i64,
        "payload": d.payload.to_string(),
        "status": DeliveryStatus::Pending.as_str(),
        "attempts": 0_i32,
        "nextAttemptAt": date(&d.created_at),
        "leaseOwner": Bson::Null,
        "leaseUntil": Bson::Null,
        "lastError": Bson::Null,
        "createdAt": date(&d.created_at),
        "deliveredAt": Bson::Null,
        "deadAt": Bson::Null,
    }
}

pub(super) fn outbox_from(doc: &Document) -> ReadResult<OutboxEntry> {
    let f = Fields::new(doc, "outbox");
    let payload = f.text("payload")?;
    Ok(OutboxEntry {
        draft: OutboxDraft {
            id: f.id("id")?,
            target: f.value("target", OutboxTarget::parse)?,
            event_type: f.text("eventType")?,
            provider_id: f.id("serviceProviderId")?,
            customer_id: f.optional_id("customerId")?,
            ordering_key: f.text("orderingKey")?,
            payload: serde_json::from_str(&payload).map_err(|e| f.fail("payload", e))?,
            created_at: f.time("createdAt")?,
        },
        sequence: f.number("sequence")?.max(0) as Cursor,
        status: f.value("status", DeliveryStatus::parse)?,
        attempts: f.number("attempts")?.clamp(0, i64::from(u32::MAX)) as u32,
        next_attempt_at: f.time("nextAttemptAt")?,
        last_error: f.optional_text("lastError")?,
        delivered_at: f.optional_time("deliveredAt")?,
        dead_at: f.optional_time("deadAt")?,
        expires_at: f.optional_time("expiresAt")?,
    })
}
