//! The GraphQL view of the inbox: conversations with their customers, and the badges.

use super::objects::CustomerObject;
use super::scalars::DateTime;
use crate::domain::{ChatSender, ConversationFilter};
use crate::service::inbox::{Badges, BadgesUpdate, InboxEntry, InboxPage};
use async_graphql::{Enum, Object, SimpleObject, ID};

/// Which conversations the inbox shows.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ConversationFilter")]
pub enum ConversationFilterObject {
    /// Every conversation, the latest message first.
    All,
    /// Those with messages the provider has not read (or marked unread), the latest first.
    Unread,
    /// Those whose customer waits for a reply, the longest waiting first.
    Waiting,
}

impl From<ConversationFilterObject> for ConversationFilter {
    fn from(filter: ConversationFilterObject) -> ConversationFilter {
        match filter {
            ConversationFilterObject::All => ConversationFilter::All,
            ConversationFilterObject::Unread => ConversationFilter::Unread,
            ConversationFilterObject::Waiting => ConversationFilter::Waiting,
        }
    }
}

/// One conversation of the provider's inbox: a customer with at least one message.
pub struct ConversationObject(pub InboxEntry);

#[Object(name = "Conversation")]
impl ConversationObject {
    async fn customer_id(&self) -> ID {
        ID(self.0.conversation.customer_id.to_string())
    }
    /// The customer, contact details masked as in the customer list.
    async fn customer(&self) -> CustomerObject {
        CustomerObject(self.0.customer.clone())
    }
    async fn last_message(&self) -> LastMessageObject<'_> {
        LastMessageObject(&self.0.conversation.last_message)
    }
    /// The customer's messages the provider has not read; 1 for a conversation marked unread
    /// whose messages are all read.
    async fn unread_count(&self) -> u64 {
        self.0.conversation.unread_count()
    }
    /// Whether the provider marked the conversation unread (`markConversationUnread`).
    async fn marked_unread(&self) -> bool {
        self.0.conversation.marked_unread
    }
    /// When the oldest customer message since the provider's last reply was sent; null when the
    /// provider answered last.
    async fn waiting_since(&self) -> Option<DateTime> {
        self.0.conversation.waiting_since.map(DateTime)
    }
    /// Pass as `after` to read the page after this conversation (in the list it was read in).
    async fn cursor(&self) -> &str {
        &self.0.cursor
    }
}

/// The latest message of a conversation.
pub struct LastMessageObject<'a>(&'a crate::domain::LastMessage);

#[Object(name = "LastMessage")]
impl LastMessageObject<'_> {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn sender_type(&self) -> ChatSender {
        self.0.sender
    }
    /// The content's first 60 characters, with `…` when it goes on.
    async fn preview(&self) -> &str {
        &self.0.preview
    }
    async fn timestamp(&self) -> DateTime {
        DateTime(self.0.at)
    }
}

/// A page of the inbox.
#[derive(SimpleObject)]
#[graphql(name = "ConversationPage")]
pub struct ConversationPageObject {
    pub items: Vec<ConversationObject>,
    /// Conversations in the whole list.
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
    /// Whether the list goes on: pass the last item's `cursor` as `after` for the next page.
    pub has_more: bool,
}

impl From<InboxPage> for ConversationPageObject {
    fn from(page: InboxPage) -> ConversationPageObject {
        ConversationPageObject {
            items: page.items.into_iter().map(ConversationObject).collect(),
            total: page.total,
            page: page.request.page(),
            page_size: page.request.page_size(),
            has_more: page.has_more,
        }
    }
}

/// The numbers of the mini-program's tabs.
#[derive(SimpleObject)]
#[graphql(name = "Badges")]
pub struct BadgesObject {
    pub unread_notifications: u64,
    /// The sum of the conversations' unread counts.
    pub unread_chat_messages: u64,
    /// Conversations whose customer waits for a reply.
    pub waiting_conversations: u64,
}

impl From<Badges> for BadgesObject {
    fn from(badges: Badges) -> BadgesObject {
        BadgesObject {
            unread_notifications: badges.unread_notifications,
            unread_chat_messages: badges.unread_chat_messages,
            waiting_conversations: badges.waiting_conversations,
        }
    }
}

/// The badges, once an event moved them.
#[derive(SimpleObject)]
#[graphql(name = "BadgesEvent")]
pub struct BadgesEventObject {
    /// Pass as `after` when subscribing again to resume after this event.
    pub cursor: String,
    pub badges: BadgesObject,
}

impl From<BadgesUpdate> for BadgesEventObject {
    fn from(update: BadgesUpdate) -> BadgesEventObject {
        BadgesEventObject { cursor: update.cursor.to_string(), badges: update.badges.into() }
    }
}
