//! The inbox port: a provider's conversations, each a summary row kept by the chat writes
//! themselves, and the provider's totals over them.
//!
//! The summaries and totals change only in the transaction of the change they sum up: a message
//! stored ([`ChatStore::insert_chat_message`](super::ChatStore::insert_chat_message)), statuses
//! moved to read ([`ChatStore::advance_chat_status`](super::ChatStore::advance_chat_status)), a
//! conversation marked read or unread (here), each applying the rules of
//! [`crate::domain::conversation`]. So a page of the inbox reads its rows by an index and its
//! total from the kept totals: it costs the same at 10 and at 100,000 conversations.

use crate::domain::{
    ChatMessage, Conversation, ConversationFilter, ConversationKey, EventRecord, Id, InboxTotals, OutboxDraft, Page,
    PageRequest,
};
use crate::error::AppResult;
use async_trait::async_trait;
use std::sync::Arc;

/// Builds, from the messages a conversation read moved to READ, the delivery the read queues in
/// its own transaction (`None`: nothing). Called only when some messages moved; the delivery's
/// sequence is the cursor of the read's first event.
pub type ReadNotice = Arc<dyn Fn(&[ChatMessage]) -> Option<OutboxDraft> + Send + Sync>;

/// What marking a conversation read or unread changed.
#[derive(Debug, Clone)]
pub struct MarkedConversation {
    pub conversation: Conversation,
    /// The customer's messages that moved to READ (marking read only).
    pub read: Vec<ChatMessage>,
    /// The events logged: a `chat_status` event for each message read; an `inbox` event when
    /// only the mark moved. None when nothing changed.
    pub events: Vec<EventRecord>,
}

#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// A page of the provider's inbox: `All` and `Unread` by last message, newest first;
    /// `Waiting` by `waiting_since`, oldest first; ties by customer id. With `after`, the page
    /// starts just after that key (the page's number then only sets its size). The total is the
    /// whole list's.
    async fn conversations(
        &self,
        provider: &Id,
        filter: ConversationFilter,
        after: Option<&ConversationKey>,
        page: PageRequest,
    ) -> AppResult<Page<Conversation>>;
    async fn conversation(&self, provider: &Id, customer: &Id) -> AppResult<Option<Conversation>>;
    async fn inbox_totals(&self, provider: &Id) -> AppResult<InboxTotals>;
    /// Moves every message of the customer not yet read to READ, clears the unread mark, logs the
    /// events, and queues what `notice` builds from the messages read, all in one transaction.
    /// `None` when the customer has no conversation with the provider.
    async fn mark_conversation_read(
        &self,
        provider: &Id,
        customer: &Id,
        notice: ReadNotice,
    ) -> AppResult<Option<MarkedConversation>>;
    /// Marks the conversation unread for the provider (its unread count at least 1), logging an
    /// `inbox` event if that moved it. `None` when there is no conversation.
    async fn mark_conversation_unread(&self, provider: &Id, customer: &Id) -> AppResult<Option<MarkedConversation>>;
}
