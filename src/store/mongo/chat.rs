//! The chat port on MongoDB.

use super::documents::{date, Fields, ReadResult};
use super::events::event;
use super::failures::{bad_document, is_duplicate_key};
use super::read;
use super::search::text_search;
use super::MongoStore;
use crate::domain::{ChatMessage, ChatSender, ChatStatus, EventKind, EventRecord, Id, OutboxDraft, Page, PageRequest};
use crate::error::{AppError, AppResult};
use crate::store::ChatStore;
use crate::store::{replayed_subject, KeyedWrite, Written};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
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
        let drafts = vec![event(provider, EventKind::ChatMessage, id, Some(&message.customer_id), message.timestamp)];
        let _queued = self.queue_event_write(provider).await;
        let outcome = self
            .op(async {
                let written = in_transaction!(self, |session| {
                    let claim = self
                        .claim_key(&mut session, provider, key, EventKind::ChatMessage, id, &message.timestamp)
                        .await?;
                    if let Some(replayed) = claim {
                        return Ok(replayed);
                    }
                    self.chat.insert_one(&document).session(&mut session).await?;
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

/// Newest first: `_id` (driver-made, increasing) keeps messages of the same second in the order stored.
pub(super) fn conversation_order() -> Document {
    doc! { "timestamp": -1, "_id": -1 }
}
