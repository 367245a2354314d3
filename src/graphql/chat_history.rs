//! The GraphQL view of part of a conversation: the spec's page fields, plus `hasMore`, which a
//! client reading by keyset (`before`/`after` a message id) needs to know when to stop. Its own
//! type rather than the generic page, since only the conversation is read by keyset.

use super::objects::ChatMessageObject;
use crate::service::chat::ChatHistory;
use async_graphql::SimpleObject;

/// Part of a conversation, oldest to newest: a page by number, or the messages next to a message
/// (`before`/`after`), with the size of the whole conversation.
#[derive(SimpleObject)]
#[graphql(name = "ChatMessagePage")]
pub struct ChatMessagePageObject {
    pub items: Vec<ChatMessageObject>,
    /// Messages in the whole conversation.
    pub total: u64,
    /// The page number asked for (1 when reading by `before` or `after`).
    pub page: u32,
    pub page_size: u32,
    /// Whether the conversation goes on in the direction read: older messages before the first
    /// item (by page number or `before`: pass that item's id as the next `before`), or newer ones
    /// after the last (`after`: pass that item's id as the next `after`).
    pub has_more: bool,
}

impl From<ChatHistory> for ChatMessagePageObject {
    fn from(history: ChatHistory) -> ChatMessagePageObject {
        ChatMessagePageObject {
            items: history.items.into_iter().map(ChatMessageObject).collect(),
            total: history.total,
            page: history.request.page(),
            page_size: history.request.page_size(),
            has_more: history.has_more,
        }
    }
}
