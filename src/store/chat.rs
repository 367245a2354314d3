//! The chat port: a provider's conversations with customers, paged backwards in time, and the
//! message statuses that only move forward.
//!
//! A conversation is read two ways, in one total order (time, then the order stored): by page
//! number (the spec's `page`, an offset from the latest message) and by keyset, a window of
//! messages strictly before or after one message of the conversation ([`ChatCursor`]). A keyset
//! window starts at its cursor through the conversation's index, so an old window costs what the
//! latest costs, and messages written meanwhile never shift it: scrolling back by the oldest
//! message seen neither repeats nor skips one.

use super::Written;
use crate::domain::{ChatMessage, ChatSender, ChatStatus, EventRecord, Id, OutboxDraft, Page, PageRequest};
use crate::error::AppResult;
use async_trait::async_trait;

/// Where a keyset window of a conversation starts: strictly before (older than) or strictly after
/// (newer than) one of its messages, named by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCursor {
    Before(Id),
    After(Id),
}

impl ChatCursor {
    pub fn message_id(&self) -> &Id {
        match self {
            ChatCursor::Before(id) | ChatCursor::After(id) => id,
        }
    }
}

/// A keyset window of a conversation.
#[derive(Debug, Clone)]
pub struct ChatWindow {
    /// At most the limit asked for, oldest to newest as a chat window shows them: before a
    /// cursor, the latest messages older than it; after a cursor, the earliest newer than it.
    pub items: Vec<ChatMessage>,
    /// Messages in the whole conversation, as a page's `total`.
    pub total: u64,
    /// Whether the conversation goes on past the window, away from the cursor: older messages
    /// before the first item (`Before`), newer after the last (`After`).
    pub has_more: bool,
}

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
    /// The messages with these ids, of whichever provider (the PC system names messages by id
    /// alone; a subscriber's catch-up reads a batch of its provider's at once).
    async fn chat_messages_anywhere(&self, ids: &[Id]) -> AppResult<Vec<ChatMessage>>;
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
    /// At most `limit` messages of the conversation with one customer next to the cursor, in the
    /// order of [`list_chat_messages`](ChatStore::list_chat_messages). `None` when the cursor is
    /// not a message of this conversation of this provider (another customer's, another
    /// provider's, or none at all): nothing is read then.
    async fn chat_window(
        &self,
        provider: &Id,
        customer: &Id,
        cursor: &ChatCursor,
        limit: u32,
    ) -> AppResult<Option<ChatWindow>>;
}
