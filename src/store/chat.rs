//! The chat port: a provider's conversations with customers, paged backwards in time, and the
//! message statuses that only move forward.

use super::Written;
use crate::domain::{ChatMessage, ChatSender, ChatStatus, EventRecord, Id, OutboxDraft, Page, PageRequest};
use crate::error::AppResult;
use async_trait::async_trait;

#[async_trait]
pub trait ChatStore: Send + Sync + 'static {
    /// Stores a chat message, logs its event and queues the deliveries it causes. With an
    /// idempotency key already used for a message, stores nothing and answers that message.
    async fn insert_chat_message(
        &self,
        message: &ChatMessage,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<ChatMessage>>;
    async fn chat_message(&self, provider: &Id, id: &Id) -> AppResult<Option<ChatMessage>>;
    /// Moves those of the given messages of one conversation that `sender` wrote forward to
    /// `status` (sent → delivered → read; never back), logging an event for each message that
    /// moved. Answers the moved messages.
    async fn advance_chat_status(
        &self,
        provider: &Id,
        customer: &Id,
        ids: &[Id],
        sender: ChatSender,
        status: ChatStatus,
    ) -> AppResult<Vec<(ChatMessage, EventRecord)>>;
    /// A page of the conversation with one customer. Page 1 holds the latest messages; within a
    /// page, messages run oldest to newest, as a chat window shows them.
    async fn list_chat_messages(&self, provider: &Id, customer: &Id, page: PageRequest)
        -> AppResult<Page<ChatMessage>>;
}
