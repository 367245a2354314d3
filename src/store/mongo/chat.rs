//! The chat port on MongoDB.
//!
//! A conversation's order is (timestamp, `_id`): the time to the second, then the order stored. A
//! keyset window is read in two plain ranges of `conversation_time`, each in index order: the
//! rest of the cursor's own second (same timestamp, `_id` beyond the cursor's), then, if that
//! did not fill the window, the seconds beyond it. Two ranges rather than one `$or` over both, so
//! that every planner (SecantusDB's too) serves each from the index without sorting.

use super::documents::{date, Fields, ReadResult};
use super::events::event;
use super::failures::{bad_document, is_duplicate_key};
use super::search::text_search;
use super::MongoStore;
use super::{collect, read};
use crate::domain::{ChatMessage, ChatSender, ChatStatus, EventKind, EventRecord, Id, OutboxDraft, Page, PageRequest};
use crate::error::{AppError, AppResult};
use crate::store::{replayed_subject, KeyedWrite, Written};
use crate::store::{ChatCursor, ChatStore, ChatWindow};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;

#[async_trait]
impl ChatStore for MongoStore {
    async fn insert_chat_message(
        &self,
        message: &ChatMessage,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<ChatMessage>> {
        let (provider, id, key) = (&message.service_provider_id, &message.id, idempotency_key);
        let document = chat_document(message);
        // Logged, and its key dated, when it arrives, as on SQLite: the message's own time may be a
        // PC system's, days old for a late backlog, and the replay window, the event retention and
        // the key prune count from the log's time.
        let logged_at = crate::domain::now();
        let drafts = vec![event(provider, EventKind::ChatMessage, id, Some(&message.customer_id), logged_at)];
        let _queued = self.queue_event_write(provider).await;
        let outcome = self
            .op(async {
                let written = in_transaction!(self, |session| {
                    let claim =
                        self.claim_key(&mut session, provider, key, EventKind::ChatMessage, id, &logged_at).await?;
                    if let Some(replayed) = claim {
                        return Ok(replayed);
                    }
                    self.chat.insert_one(&document).session(&mut session).await?;
                    self.record_message(&mut session, message).await?;
                    let events = self.log_events(&mut session, id.as_str(), drafts.clone()).await?;
                    self.queue_outbox(&mut session, outbox, &events).await?;
                    Ok(KeyedWrite::Created(events))
                })
                .await;
                match written {
                    // As for a ticket: our own earlier attempt, or a concurrent request's key.
                    Err(error) if is_duplicate_key(&error) => {
                        if self.chat.find_one(doc! { "id": id.as_str() }).await?.is_some() {
                            return Ok(KeyedWrite::Created(self.logged_events(provider, id.as_str()).await?));
                        }
                        self.key_taken(provider, key).await?.ok_or(error)
                    }
                    other => other,
                }
            })
            .await?;
        match outcome {
            KeyedWrite::Created(events) => Ok(Written::Created(message.clone(), events)),
            KeyedWrite::Replayed { kind, subject } => {
                let subject = replayed_subject(&kind, subject, EventKind::ChatMessage)?;
                let first = self.chat_message(provider, &subject).await?;
                first
                    .map(Written::Replayed)
                    .ok_or_else(|| AppError::internal("an idempotency key names a missing message"))
            }
        }
    }

    async fn chat_message(&self, provider: &Id, id: &Id) -> AppResult<Option<ChatMessage>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() };
        let found = self.op(self.chat.find_one(query)).await?;
        found.as_ref().map(chat_from).transpose().map_err(bad_document)
    }

    async fn chat_messages_anywhere(&self, ids: &[Id]) -> AppResult<Vec<ChatMessage>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let find = self.chat.find(chat_messages_anywhere_query(ids));
        let documents = self.op(async { super::collect(find.await?).await }).await?;
        read(&documents, chat_from)
    }

    async fn advance_chat_status(
        &self,
        provider: &Id,
        customer: &Id,
        ids: &[Id],
        sender: ChatSender,
        status: ChatStatus,
    ) -> AppResult<Vec<(ChatMessage, EventRecord)>> {
        // Statuses only move forward: sent < delivered < read.
        let earlier: Vec<&str> = ChatStatus::ALL.iter().take_while(|s| **s != status).map(|s| s.as_str()).collect();
        let at = crate::domain::now();
        let write_id = format!("status:{}:{}", status.as_str(), crate::domain::new_id("w"));
        let _queued = self.queue_event_write(provider).await;
        let moved = self
            .op(in_transaction!(self, |session| {
                let mut moved = Vec::new();
                for id in ids {
                    let query = doc! {
                        "serviceProviderId": provider.as_str(),
                        "customerId": customer.as_str(),
                        "id": id.as_str(),
                        "senderType": sender.as_str(),
                        "status": { "$in": earlier.clone() },
                    };
                    let updated = self
                        .chat
                        .find_one_and_update(query, doc! { "$set": { "status": status.as_str() } })
                        .return_document(ReturnDocument::After)
                        .session(&mut session)
                        .await?;
                    if let Some(document) = updated {
                        moved.push(document);
                    }
                }
                let drafts: Vec<EventRecord> = moved
                    .iter()
                    .map(|document| {
                        let id = Id::from_stored(document.get_str("id").unwrap_or_default().to_owned());
                        event(provider, EventKind::ChatStatus, &id, Some(customer), at)
                    })
                    .collect();
                let events = self.log_events(&mut session, &write_id, drafts).await?;
                if status == ChatStatus::Read && sender == ChatSender::Customer {
                    self.record_read(&mut session, provider, customer, moved.len() as u64).await?;
                }
                Ok((moved, events))
            }))
            .await?;
        let (documents, events) = moved;
        let messages = read(&documents, chat_from)?;
        Ok(messages.into_iter().zip(events).collect())
    }

    async fn list_chat_messages(
        &self,
        provider: &Id,
        customer: &Id,
        page: PageRequest,
    ) -> AppResult<Page<ChatMessage>> {
        let query = conversation_query(provider, customer);
        let (documents, total) = self.op(self.page(&self.chat, query, conversation_order(), page)).await?;
        let mut items = read(&documents, chat_from)?;
        items.reverse();
        Ok(Page { items, total, request: page })
    }

    async fn chat_window(
        &self,
        provider: &Id,
        customer: &Id,
        cursor: &ChatCursor,
        limit: u32,
    ) -> AppResult<Option<ChatWindow>> {
        let older = matches!(cursor, ChatCursor::Before(_));
        let lookup = chat_cursor_query(provider, customer, cursor.message_id());
        let found = self.op(self.chat.find_one(lookup).projection(doc! { "timestamp": 1, "_id": 1 })).await?;
        let Some(found) = found else { return Ok(None) };
        let (Some(timestamp), Some(key)) = (found.get("timestamp"), found.get("_id")) else {
            return Err(bad_document("a chat message without a timestamp or _id".to_owned()));
        };
        let wanted = i64::from(limit) + 1;
        let [same_second, beyond] = chat_window_queries(provider, customer, timestamp, key, older);
        let order = chat_window_order(older);
        let count = self.chat.count_documents(conversation_query(provider, customer));
        let nearest = async { collect(self.chat.find(same_second).sort(order.clone()).limit(wanted).await?).await };
        let (total, mut documents) = self.op(async { tokio::try_join!(count, nearest) }).await?;
        let missing = wanted - documents.len() as i64;
        if missing > 0 {
            let rest =
                self.op(async { collect(self.chat.find(beyond).sort(order).limit(missing).await?).await }).await?;
            documents.extend(rest);
        }
        let has_more = documents.len() > limit as usize;
        documents.truncate(limit as usize);
        let mut items = read(&documents, chat_from)?;
        if older {
            items.reverse();
        }
        Ok(Some(ChatWindow { items, total, has_more }))
    }
}

pub(super) fn chat_document(m: &ChatMessage) -> Document {
    doc! {
        "id": m.id.as_str(),
        "serviceProviderId": m.service_provider_id.as_str(),
        "serviceProviderName": &m.service_provider_name,
        "customerId": m.customer_id.as_str(),
        "customerName": &m.customer_name,
        "senderType": m.sender_type.as_str(),
        "content": &m.content,
        "timestamp": date(&m.timestamp),
        "status": m.status.as_str(),
        "search": text_search(&m.content),
    }
}

/// The messages of any provider with these ids (index `id_unique`).
pub(super) fn chat_messages_anywhere_query(ids: &[Id]) -> Document {
    doc! { "id": { "$in": super::ids_bson(ids) } }
}

pub(super) fn chat_from(doc: &Document) -> ReadResult<ChatMessage> {
    let f = Fields::new(doc, "chat message");
    Ok(ChatMessage {
        id: f.id("id")?,
        service_provider_id: f.id("serviceProviderId")?,
        service_provider_name: f.text("serviceProviderName")?,
        customer_id: f.id("customerId")?,
        customer_name: f.text("customerName")?,
        sender_type: f.value("senderType", ChatSender::parse)?,
        content: f.text("content")?,
        timestamp: f.time("timestamp")?,
        status: f.value("status", ChatStatus::parse)?,
    })
}

/// A conversation's messages; their order is [`conversation_order`].
pub(super) fn conversation_query(provider: &Id, customer: &Id) -> Document {
    doc! { "serviceProviderId": provider.as_str(), "customerId": customer.as_str() }
}

/// The cursor message, found only in its own conversation of its own provider.
pub(super) fn chat_cursor_query(provider: &Id, customer: &Id, id: &Id) -> Document {
    doc! { "serviceProviderId": provider.as_str(), "customerId": customer.as_str(), "id": id.as_str() }
}

/// The two ranges of a keyset window next to the cursor message at (`timestamp`, `key`): the rest
/// of its second, then the seconds beyond it; older ones (`older`) or newer ones.
pub(super) fn chat_window_queries(
    provider: &Id,
    customer: &Id,
    timestamp: &Bson,
    key: &Bson,
    older: bool,
) -> [Document; 2] {
    let beyond = if older { "$lt" } else { "$gt" };
    let conversation = conversation_query(provider, customer);
    let mut same_second = conversation.clone();
    same_second.insert("timestamp", timestamp.clone());
    same_second.insert("_id", doc! { beyond: key.clone() });
    let mut later_seconds = conversation;
    later_seconds.insert("timestamp", doc! { beyond: timestamp.clone() });
    [same_second, later_seconds]
}

/// A keyset window's order, nearest the cursor first: [`conversation_order`] before it, its
/// reverse after it.
pub(super) fn chat_window_order(older: bool) -> Document {
    if older {
        conversation_order()
    } else {
        doc! { "timestamp": 1, "_id": 1 }
    }
}

/// Newest first: `_id` (driver-made, increasing) keeps messages of the same second in the order stored.
pub(super) fn conversation_order() -> Document {
    doc! { "timestamp": -1, "_id": -1 }
}
