//! `chat.read` to the PC customer-service system: the provider read a conversation (the inbox's
//! mark-read, `markConversationRead`), so the PC side, which shows the whole conversation, can
//! mark the customer's messages read too. (A client's per-message READ acknowledgements are not
//! sent on: the conversation read is the provider's deliberate act.)
//!
//! The read is written by a store call that queues no deliveries in its transaction, so the delivery is queued right after
//! the read committed, under the cursor of the last status event the read logged: in order with
//! the conversation's other events. A process that dies between the two loses that one `chat.read`;
//! the statuses themselves are stored, and the next read of the conversation says the same again.

use super::outbound::Outbound;
use crate::domain::{ChatMessage, EventKind, EventRecord, Id};
use crate::store::{OutboxStore, SharedStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct ReadSync {
    outbox: Arc<dyn OutboxStore>,
    outbound: Arc<Outbound>,
}

impl ReadSync {
    pub fn new(store: &SharedStore, outbound: Arc<Outbound>) -> ReadSync {
        ReadSync { outbox: store.clone(), outbound }
    }

    /// Queues `chat.read` for the customer's messages the provider just read, if any moved.
    pub async fn provider_read(&self, provider: &Id, customer: &Id, read: &[ChatMessage], events: &[EventRecord]) {
        let sequence = events.iter().filter(|e| e.kind == EventKind::ChatStatus).map(|e| e.cursor).max();
        let (Some(sequence), false) = (sequence, read.is_empty()) else { return };
        let Some(draft) = self.outbound.chat_read(provider, customer, read) else { return };
        match self.outbox.queue_delivery(&draft, sequence).await {
            Ok(()) => self.outbound.queued(1),
            // The read stands; only the notice to the PC system is lost (see the module's note).
            Err(error) => tracing::warn!(%error, "chat.read could not be queued"),
        }
    }
}
