//! The provider's inbox: who wrote, who waits and for how long (the conversations), reading a
//! conversation or marking it unread again, and the badges the mini-program's tabs show, live.
//!
//! A page of the inbox is two store calls whatever the number of conversations: the summaries
//! with their kept total, then their customers (masked as in every list). The badges are two:
//! the notifications' unread count and the inbox's totals. The badges stream follows the event
//! log like every subscription (so it resumes with `after`), and pushes the numbers as they are
//! when an event that may move them arrives, only when they moved: a client reconnecting gets
//! the numbers of now, not a replay of every step it missed.

use super::customers::CustomerService;
use super::realtime::{EventFilter, Payload, Realtime};
use super::{provider_customer, Session};
use crate::domain::{
    ChatMessage, Conversation, ConversationFilter, ConversationKey, Cursor, Customer, EventKind, EventRecord, Id, Page,
    PageRequest,
};
use crate::error::{AppError, AppResult};
use crate::store::{ConversationStore, CustomerStore, NotificationStore, ReadNotice, SharedStore};
use futures_util::{Stream, StreamExt};
use std::sync::Arc;

/// Which page of the inbox to read: by number, or the page after a conversation's `cursor`.
#[derive(Debug, Clone)]
pub struct InboxQuery {
    pub filter: ConversationFilter,
    pub page: PageRequest,
    pub after: Option<String>,
}

/// A conversation with its customer, as the inbox shows it.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub conversation: Conversation,
    /// Masked as in the customer list.
    pub customer: Customer,
    /// Where the list this entry was read in goes on after it (the next page's `after`).
    pub cursor: String,
}

/// A page of the inbox.
#[derive(Debug, Clone)]
pub struct InboxPage {
    pub items: Vec<InboxEntry>,
    /// Conversations in the whole list.
    pub total: u64,
    pub request: PageRequest,
    /// Whether the list goes on after this page.
    pub has_more: bool,
}

/// The numbers on the mini-program's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Badges {
    pub unread_notifications: u64,
    /// The sum of the conversations' unread counts.
    pub unread_chat_messages: u64,
    pub waiting_conversations: u64,
}

/// The badges after an event of the log moved them.
#[derive(Debug, Clone)]
pub struct BadgesUpdate {
    pub cursor: Cursor,
    pub badges: Badges,
}

/// How many events at hand one reading of the badges covers at most.
const REPLAY_BATCH: usize = 256;

#[derive(Clone)]
pub struct InboxService {
    conversations: Arc<dyn ConversationStore>,
    customers: Arc<dyn CustomerStore>,
    notifications: Arc<dyn NotificationStore>,
    related: CustomerService,
    realtime: Arc<Realtime>,
    /// Tells the PC customer-service system what the provider read (`chat.read`).
    read_sync: Option<super::read_sync::ReadSync>,
}

impl InboxService {
    pub fn new(store: &SharedStore, related: CustomerService, realtime: Arc<Realtime>) -> InboxService {
        InboxService {
            conversations: store.clone(),
            customers: store.clone(),
            notifications: store.clone(),
            related,
            realtime,
            read_sync: None,
        }
    }

    /// This service telling the PC customer-service system what the provider reads.
    pub fn with_read_sync(self, read_sync: super::read_sync::ReadSync) -> InboxService {
        InboxService { read_sync: Some(read_sync), ..self }
    }

    /// A page of the provider's conversations: all or the unread by last message, newest first;
    /// the waiting by how long they have waited, longest first.
    pub async fn conversations(&self, session: &Session, query: InboxQuery) -> AppResult<InboxPage> {
        let InboxQuery { filter, page, after } = query;
        let after = match after.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(_) if page.page() != 1 => {
                return Err(AppError::bad_input("page", "按 after 读取时不能再指定页码（page 只能为1）"))
            }
            Some(text) => Some(
                ConversationKey::decode(text)
                    .ok_or_else(|| AppError::bad_input("after", "after 应为上一页会话的 cursor"))?,
            ),
        };
        let provider = &session.provider_id;
        let Page { items, total, request } =
            self.conversations.conversations(provider, filter, after.as_ref(), page).await?;
        let before = if after.is_some() { None } else { Some(request.offset()) };
        let has_more = match before {
            Some(offset) => offset + (items.len() as u64) < total,
            // A page after a key cannot know its place in the total; a full page may have more.
            None => items.len() as u64 == u64::from(request.page_size()),
        };
        let items = self.with_customers(provider, items, filter).await?;
        Ok(InboxPage { items, total, request, has_more })
    }

    /// The conversation with one customer; NOT_FOUND if the customer never wrote or was written to.
    pub async fn conversation(&self, session: &Session, customer: &Id) -> AppResult<InboxEntry> {
        provider_customer(self.customers.as_ref(), session, customer).await?;
        let found = self.conversations.conversation(&session.provider_id, customer).await?;
        let conversation = found.ok_or(AppError::NotFound("会话"))?;
        self.entry(session, conversation).await
    }

    /// Marks every message of the customer read (each one's status event goes out as an
    /// acknowledgement's does) and clears the unread mark.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn mark_read(&self, session: &Session, customer: &Id) -> AppResult<InboxEntry> {
        provider_customer(self.customers.as_ref(), session, customer).await?;
        let notice: ReadNotice = match &self.read_sync {
            Some(sync) => sync.notice(&session.provider_id, customer),
            None => Arc::new(|_| None),
        };
        let marked = self.conversations.mark_conversation_read(&session.provider_id, customer, notice).await?;
        let marked = marked.ok_or(AppError::NotFound("会话"))?;
        let read = marked.read;
        if let Some(sync) = &self.read_sync {
            sync.queued(read.len());
        }
        let known = move |record: &EventRecord| -> Option<Payload> {
            let message: &ChatMessage = read.iter().find(|m| m.id == record.subject_id)?;
            (record.kind == EventKind::ChatStatus).then(|| Payload::ChatStatus(message.clone()))
        };
        self.realtime.publish_known(marked.events, known).await;
        self.entry(session, marked.conversation).await
    }

    /// Brings the conversation back as unread for the provider.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn mark_unread(&self, session: &Session, customer: &Id) -> AppResult<InboxEntry> {
        provider_customer(self.customers.as_ref(), session, customer).await?;
        let marked = self.conversations.mark_conversation_unread(&session.provider_id, customer).await?;
        let marked = marked.ok_or(AppError::NotFound("会话"))?;
        self.realtime.publish(marked.events).await;
        self.entry(session, marked.conversation).await
    }

    /// The numbers of the provider's tabs, now.
    pub async fn badges(&self, session: &Session) -> AppResult<Badges> {
        let provider = &session.provider_id;
        let (unread_notifications, totals) =
            tokio::try_join!(self.notifications.unread_count(provider), self.conversations.inbox_totals(provider))?;
        Ok(Badges {
            unread_notifications,
            unread_chat_messages: totals.unread_messages,
            waiting_conversations: totals.waiting_conversations,
        })
    }

    /// The badges whenever an event moves them: the events after `after` (if given) first, as one
    /// push of the numbers of now, then each change live. A client reads the `badges` query once
    /// when it starts, then follows this.
    pub async fn follow_badges(
        &self,
        session: &Session,
        after: Option<Cursor>,
    ) -> AppResult<impl Stream<Item = AppResult<BadgesUpdate>> + use<>> {
        let events = self.realtime.follow(session, EventFilter::Badges, after).await?;
        let (inbox, session) = (self.clone(), session.clone());
        let mut shown: Option<Badges> = None;
        // Events already at hand (a replay, a burst) are taken together: one reading of the
        // numbers, under the last one's cursor.
        let updates = events
            .ready_chunks(REPLAY_BATCH)
            .then(move |events| {
                let (inbox, session) = (inbox.clone(), session.clone());
                async move {
                    let events = events.into_iter().collect::<AppResult<Vec<_>>>()?;
                    let cursor = events.last().map_or(0, |event| event.record.cursor);
                    Ok(BadgesUpdate { cursor, badges: inbox.badges(&session).await? })
                }
            })
            .filter(move |update: &AppResult<BadgesUpdate>| {
                let moved = match update {
                    Ok(update) => shown.replace(update.badges) != Some(update.badges),
                    Err(_) => true,
                };
                std::future::ready(moved)
            });
        Ok(updates)
    }

    async fn entry(&self, session: &Session, conversation: Conversation) -> AppResult<InboxEntry> {
        let mut entries =
            self.with_customers(&session.provider_id, vec![conversation], ConversationFilter::All).await?;
        entries.pop().ok_or(AppError::NotFound("客户"))
    }

    /// The conversations with their customers, read in one call; a conversation whose customer is
    /// gone is left out.
    async fn with_customers(
        &self,
        provider: &Id,
        conversations: Vec<Conversation>,
        filter: ConversationFilter,
    ) -> AppResult<Vec<InboxEntry>> {
        let ids: Vec<Id> = conversations.iter().map(|c| c.customer_id.clone()).collect();
        let customers = self.related.related(provider, &ids).await?;
        Ok(conversations
            .into_iter()
            .filter_map(|conversation| {
                let customer = customers.iter().find(|c| c.id == conversation.customer_id)?.clone();
                let cursor = ConversationKey::of(&conversation, filter).encode();
                Some(InboxEntry { conversation, customer, cursor })
            })
            .collect())
    }
}
