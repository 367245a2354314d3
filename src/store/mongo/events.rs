//! The events port on MongoDB.

use super::documents::{date, optional_id, Fields, ReadResult};
use super::MongoStore;
use super::{collect, read};
use crate::domain::{Cursor as EventCursor, EventKind, EventRecord, Id, Timestamp};
use crate::error::AppResult;
use crate::store::EventStore;
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::ClientSession;

impl MongoStore {
    /// Waits for this process's other event-logging writes of the provider to finish.
    pub(super) async fn queue_event_write(&self, provider: &Id) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        provider.hash(&mut hasher);
        self.event_writers[(hasher.finish() % self.event_writers.len() as u64) as usize].lock().await
    }

    /// Logs events under the provider's next cursors, inside the caller's transaction.
    pub(super) async fn log_events(
        &self,
        session: &mut ClientSession,
        write_id: &str,
        mut events: Vec<EventRecord>,
    ) -> mongodb::error::Result<Vec<EventRecord>> {
        let Some(provider) = events.first().map(|event| event.provider_id.clone()) else { return Ok(events) };
        let counter = self
            .event_counters
            .find_one_and_update(doc! { "_id": provider.as_str() }, doc! { "$inc": { "cursor": events.len() as i64 } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .session(&mut *session)
            .await?;
        let last = counter.and_then(|c| c.get_i64("cursor").ok()).unwrap_or(events.len() as i64) as u64;
        let first = last + 1 - events.len() as u64;
        for (event, cursor) in events.iter_mut().zip(first..) {
            event.cursor = cursor;
        }
        let documents: Vec<Document> = events.iter().map(|event| event_document(event, write_id)).collect();
        self.events.insert_many(documents).session(&mut *session).await?;
        Ok(events)
    }

    /// What an earlier attempt of a write logged (its commit went through; its answer was lost).
    pub(super) async fn logged_events(
        &self,
        provider: &Id,
        write_id: &str,
    ) -> mongodb::error::Result<Vec<EventRecord>> {
        let query = doc! { "providerId": provider.as_str(), "writeId": write_id };
        let documents = collect(self.events.find(query).sort(doc! { "cursor": 1 }).await?).await?;
        documents.iter().map(event_from).collect::<ReadResult<_>>().map_err(mongodb::error::Error::custom)
    }
}

/// An event about to be logged; the log gives it its cursor.
pub(super) fn event(provider: &Id, kind: EventKind, subject: &Id, customer: Option<&Id>, at: Timestamp) -> EventRecord {
    EventRecord {
        provider_id: provider.clone(),
        cursor: 0,
        kind,
        subject_id: subject.clone(),
        customer_id: customer.cloned(),
        at,
    }
}

#[async_trait]
impl EventStore for MongoStore {
    async fn events_after(&self, provider: &Id, after: EventCursor, limit: u32) -> AppResult<Vec<EventRecord>> {
        let query = events_after_query(provider, after);
        let documents = self
            .op(async { collect(self.events.find(query).sort(cursor_order()).limit(i64::from(limit)).await?).await })
            .await?;
        read(&documents, event_from)
    }

    async fn latest_cursor(&self, provider: &Id) -> AppResult<EventCursor> {
        let counter = self.op(self.event_counters.find_one(doc! { "_id": provider.as_str() })).await?;
        Ok(counter.and_then(|c| c.get_i64("cursor").ok()).map_or(0, |cursor| cursor as EventCursor))
    }
}

/// An entry of the event log. `writeId` names the write that logged it (the new ticket's, the
/// notification's or the message's id), so a retried write can find what its first attempt logged.
pub(super) fn event_document(event: &EventRecord, write_id: &str) -> Document {
    doc! {
        "providerId": event.provider_id.as_str(),
        "cursor": event.cursor as i64,
        "kind": event.kind.as_str(),
        "subjectId": event.subject_id.as_str(),
        "customerId": optional_id(&event.customer_id),
        "at": date(&event.at),
        "writeId": write_id,
    }
}

pub(super) fn event_from(doc: &Document) -> ReadResult<EventRecord> {
    let fields = Fields::new(doc, "event");
    let cursor = match doc.get("cursor") {
        Some(Bson::Int64(cursor)) if *cursor > 0 => *cursor as EventCursor,
        Some(Bson::Int32(cursor)) if *cursor > 0 => *cursor as EventCursor,
        other => return Err(fields.fail("cursor", format!("expected a positive integer, found {other:?}"))),
    };
    let kind = fields.text("kind")?;
    Ok(EventRecord {
        provider_id: Id::from_stored(fields.text("providerId")?),
        cursor,
        kind: EventKind::parse(&kind).ok_or_else(|| fields.fail("kind", format!("unknown value {kind:?}")))?,
        subject_id: Id::from_stored(fields.text("subjectId")?),
        customer_id: fields.optional_text("customerId")?.map(Id::from_stored),
        at: fields.time("at")?,
    })
}

/// A provider's events after a cursor; their order is [`cursor_order`].
pub(super) fn events_after_query(provider: &Id, after: EventCursor) -> Document {
    doc! { "providerId": provider.as_str(), "cursor": { "$gt": after as i64 } }
}

pub(super) fn cursor_order() -> Document {
    doc! { "cursor": 1 }
}
