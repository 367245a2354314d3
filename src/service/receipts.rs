//! Delivery and read receipts from the PC customer-service system (`POST
//! /integrations/cs/receipts`): the customer's client got or read the provider's chat messages.
//!
//! Each receipt moves the provider's messages it names forward (sent → delivered → read, never
//! back) through the same store call the app's acknowledgements use, which logs a `chat_status`
//! event per message moved, so the provider sees ✓✓ live on `chatMessageStatus`. Messages are
//! named by id alone; ids of no message, or of a customer's message, are answered as `unknown` and
//! skipped. A receipt is idempotent by nature (a message already at the status does not move) and
//! by its `eventId`: the first answer is recorded under it (an idempotency key of the messages'
//! provider) and given again to a duplicate.

use super::realtime::Realtime;
use super::ticket_events::EventOutcome;
use crate::domain::{ChatSender, ChatStatus, Id, Timestamp};
use crate::error::AppResult;
use crate::store::{ChatStore, IdempotencyStore, SharedStore, StoredAnswer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A validated receipt.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub event_id: Id,
    pub message_ids: Vec<Id>,
    /// `Delivered` or `Read`.
    pub status: ChatStatus,
    /// When the customer's client got or read them, as the PC system says (reported, not stored).
    pub at: Timestamp,
    pub fingerprint: String,
}

#[derive(Clone)]
pub struct ReceiptService {
    chat: Arc<dyn ChatStore>,
    keys: Arc<dyn IdempotencyStore>,
    realtime: Arc<Realtime>,
}

impl ReceiptService {
    pub fn new(store: &SharedStore, realtime: Arc<Realtime>) -> ReceiptService {
        ReceiptService { chat: store.clone(), keys: store.clone(), realtime }
    }

    #[tracing::instrument(skip_all, fields(event = %receipt.event_id, messages = receipt.message_ids.len()))]
    pub async fn apply(&self, receipt: Receipt) -> AppResult<EventOutcome> {
        let found = self.chat.chat_messages_anywhere(&receipt.message_ids).await?;
        let providers_messages: Vec<_> =
            found.into_iter().filter(|m| m.sender_type == ChatSender::ServiceProvider).collect();
        let unknown: Vec<&str> = receipt
            .message_ids
            .iter()
            .filter(|id| !providers_messages.iter().any(|m| &m.id == *id))
            .map(Id::as_str)
            .collect();
        let key = Id::scoped("cs", &receipt.event_id);
        let owner = providers_messages.first().map(|m| m.service_provider_id.clone());
        if let Some(provider) = &owner {
            if let Some(StoredAnswer { answer, .. }) = self.keys.stored_answer(provider, &key).await? {
                let data = serde_json::from_str(&answer).unwrap_or(Value::Null);
                return Ok(EventOutcome { data, duplicate: true });
            }
        }
        let mut conversations: BTreeMap<(String, String), Vec<Id>> = BTreeMap::new();
        for message in &providers_messages {
            let conversation = (message.service_provider_id.to_string(), message.customer_id.to_string());
            conversations.entry(conversation).or_default().push(message.id.clone());
        }
        let mut moved = Vec::new();
        for ((provider, customer), ids) in conversations {
            let (provider, customer) = (Id::from_stored(provider), Id::from_stored(customer));
            let advanced = self
                .chat
                .advance_chat_status(&provider, &customer, &ids, ChatSender::ServiceProvider, receipt.status)
                .await?;
            moved.extend(advanced.iter().map(|(message, _)| message.id.to_string()));
            self.realtime.publish(advanced.into_iter().map(|(_, event)| event).collect()).await;
        }
        let data = json!({
            "eventId": receipt.event_id.as_str(),
            "status": receipt.status.as_str(),
            "moved": moved,
            "unknown": unknown,
        });
        let Some(provider) = owner else { return Ok(EventOutcome { data, duplicate: false }) };
        let at = crate::domain::now();
        let stored = self.keys.record_answer(&provider, &key, &receipt.fingerprint, &data.to_string(), at).await?;
        Ok(EventOutcome { data: serde_json::from_str(&stored.answer).unwrap_or(data), duplicate: false })
    }
}
