//! Live chat with customers (spec 3.5): the conversation, the provider's replies (synced to the PC
//! customer-service system, spec 5.2.6 step 9), and escalation of a conversation the provider
//! cannot settle into a ticket.
//!
//! The conversation is read by page number (the spec's `page`) or by keyset (`before`/`after` a
//! message id): the rule choosing between them is here, the reading in the store's
//! [`ChatStore::chat_window`]. A cursor only ever names a message of the conversation asked for;
//! any other id is refused the same way whether it exists elsewhere or not.

use super::canned_replies::{CannedReplyService, Compose};
use super::outbound::Outbound;
use super::realtime::{Payload, Realtime};
use super::tickets::{NewTicket, TicketService};
use super::{acting_provider, provider_customer, Session};
use crate::domain::{
    new_id, now, ChatMessage, ChatSender, ChatStatus, EventKind, EventRecord, Id, Page, PageRequest, Text, TextLimit,
    Ticket, TicketType,
};
use crate::error::{AppError, AppResult};
use crate::store::{AttachmentStore, ChatCursor, ChatStore, CustomerStore, ProviderStore, SharedStore, Written};
use std::sync::Arc;

/// How many messages one acknowledgement may name.
pub const MAX_ACKNOWLEDGED: usize = 100;

/// The title every ticket escalated from a chat carries (spec 3.5.3).
pub const ESCALATED_CHAT_TITLE: &str = "聊天升级工单";

/// Which part of a conversation to read: a page by number, or with `before` or `after` a message
/// id, the `page_size` messages next to that message (then the page must be 1).
#[derive(Debug, Clone)]
pub struct ChatQuery {
    pub page: PageRequest,
    pub before: Option<Id>,
    pub after: Option<Id>,
}

impl ChatQuery {
    pub fn page(page: PageRequest) -> ChatQuery {
        ChatQuery { page, before: None, after: None }
    }
}

/// Part of a conversation, oldest to newest.
#[derive(Debug, Clone)]
pub struct ChatHistory {
    pub items: Vec<ChatMessage>,
    /// Messages in the whole conversation.
    pub total: u64,
    pub request: PageRequest,
    /// Whether the conversation goes on in the direction read: older messages before the first
    /// item (a page, or `before`), newer ones after the last (`after`).
    pub has_more: bool,
}

#[derive(Clone)]
pub struct ChatService {
    chat: Arc<dyn ChatStore>,
    customers: Arc<dyn CustomerStore>,
    providers: Arc<dyn ProviderStore>,
    canned_replies: CannedReplyService,
    tickets: TicketService,
    realtime: Arc<Realtime>,
    outbound: Arc<Outbound>,
    attachments: Arc<dyn AttachmentStore>,
    /// Signs the attachments' URLs in the webhooks, once configured.
    attachment_urls: Option<super::attachments::AttachmentService>,
}

impl ChatService {
    pub fn new(
        store: &SharedStore,
        canned_replies: CannedReplyService,
        tickets: TicketService,
        realtime: Arc<Realtime>,
        outbound: Arc<Outbound>,
    ) -> ChatService {
        ChatService {
            chat: store.clone(),
            customers: store.clone(),
            providers: store.clone(),
            canned_replies,
            tickets,
            realtime,
            outbound,
            attachments: store.clone(),
            attachment_urls: None,
        }
    }

    /// The chat, with what signs the attachments' URLs in the webhooks.
    pub fn with_attachment_urls(mut self, urls: super::attachments::AttachmentService) -> ChatService {
        self.attachment_urls = Some(urls);
        self
    }

    /// Part of the conversation with a customer, oldest to newest: by page number, page 1 holding
    /// the latest messages; or the `page_size` messages just before or just after a message of
    /// this conversation (`before` and `after` exclude each other and any page but the first).
    pub async fn messages(&self, session: &Session, customer: &Id, query: ChatQuery) -> AppResult<ChatHistory> {
        let ChatQuery { page, before, after } = query;
        let cursor = match (before, after) {
            (Some(_), Some(_)) => return Err(AppError::bad_input("after", "before 和 after 不能同时指定")),
            (Some(id), None) => Some(("before", ChatCursor::Before(id))),
            (None, Some(id)) => Some(("after", ChatCursor::After(id))),
            (None, None) => None,
        };
        if cursor.is_some() && page.page() != 1 {
            return Err(AppError::bad_input("page", "按 before 或 after 读取时不能再指定页码（page 只能为1）"));
        }
        provider_customer(self.customers.as_ref(), session, customer).await?;
        let provider = &session.provider_id;
        let Some((field, cursor)) = cursor else {
            let Page { items, total, request } = self.chat.list_chat_messages(provider, customer, page).await?;
            let has_more = request.offset() + (items.len() as u64) < total;
            return Ok(ChatHistory { items, total, request, has_more });
        };
        let window = self.chat.chat_window(provider, customer, &cursor, page.page_size()).await?;
        let window =
            window.ok_or_else(|| AppError::bad_input(field, format!("{field} 指定的消息不在与该客户的会话中")))?;
        Ok(ChatHistory { items: window.items, total: window.total, request: page, has_more: window.has_more })
    }

    /// Sends the provider's message to a customer: the text given, or one of the provider's canned
    /// replies with its placeholders filled for this customer. A retry with the same idempotency
    /// key answers the first message and sends nothing new.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn send(
        &self,
        session: &Session,
        customer: &Id,
        content: Compose,
        idempotency_key: Option<Id>,
    ) -> AppResult<ChatMessage> {
        self.send_with_attachments(session, customer, Some(content), &[], idempotency_key).await
    }

    /// [`Self::send`] with attachments (see [`super::attachments::usable`]); `content` may be
    /// `None` (an empty text) when there is at least one.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn send_with_attachments(
        &self,
        session: &Session,
        customer: &Id,
        content: Option<Compose>,
        attachment_ids: &[Id],
        idempotency_key: Option<Id>,
    ) -> AppResult<ChatMessage> {
        let customer = provider_customer(self.customers.as_ref(), session, customer).await?;
        let provider = acting_provider(self.providers.as_ref(), session).await?;
        let attachments =
            super::attachments::usable(self.attachments.as_ref(), &session.provider_id, attachment_ids).await?;
        let content = match content {
            Some(content) => self
                .canned_replies
                .compose(session, content, &customer, &provider, TextLimit::CHAT_CONTENT)
                .await?
                .into_string(),
            None if !attachments.is_empty() => String::new(),
            None => return Err(AppError::bad_input("content", "消息内容不能为空")),
        };
        let message = ChatMessage {
            id: new_id("cm"),
            service_provider_id: provider.id,
            service_provider_name: provider.name,
            customer_id: customer.id,
            customer_name: customer.name,
            sender_type: ChatSender::ServiceProvider,
            content,
            timestamp: now(),
            status: ChatStatus::Sent,
        };
        // Recorded before the message, so a message never names an attachment the orphan job
        // may still delete; a message that then fails leaves only an unread record.
        let ids: Vec<Id> = attachments.iter().map(|a| a.id.clone()).collect();
        self.attachments.attach_to(&message.service_provider_id, &message.id, &ids).await?;
        let mut outbox = self.outbound.chat_reply(&message);
        if let Some(urls) = &self.attachment_urls {
            outbox = urls.on_deliveries(outbox, &attachments);
        }
        match self.chat.insert_chat_message(&message, idempotency_key.as_ref(), &outbox).await? {
            Written::Created(message, events) => {
                self.outbound.queued(outbox.len());
                let sent = |record: &EventRecord| {
                    (record.kind == EventKind::ChatMessage && record.subject_id == message.id)
                        .then(|| Payload::ChatMessage(message.clone()))
                };
                self.realtime.publish_known(events, sent).await;
                Ok(message)
            }
            Written::Replayed(first) => Ok(first),
        }
    }

    /// The provider's client acknowledges the customer's messages: delivered to the phone, or read
    /// there. Statuses only move forward; answers the messages whose status moved.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn acknowledge(
        &self,
        session: &Session,
        customer: &Id,
        ids: &[Id],
        status: ChatStatus,
    ) -> AppResult<Vec<ChatMessage>> {
        if status == ChatStatus::Sent {
            return Err(AppError::bad_input("status", "只能确认为已送达（DELIVERED）或已读（READ）"));
        }
        if ids.is_empty() || ids.len() > MAX_ACKNOWLEDGED {
            return Err(AppError::bad_input("messageIds", format!("消息ID数量必须在1到{MAX_ACKNOWLEDGED}之间")));
        }
        provider_customer(self.customers.as_ref(), session, customer).await?;
        let moved =
            self.chat.advance_chat_status(&session.provider_id, customer, ids, ChatSender::Customer, status).await?;
        let (messages, events) = moved.into_iter().unzip();
        self.realtime.publish(events).await;
        Ok(messages)
    }

    /// Turns the conversation into an escalated `issue_escalation` ticket titled
    /// [`ESCALATED_CHAT_TITLE`], holding the summary and the reason. A retry with the same
    /// idempotency key answers the first ticket, and the PC system hears of it once.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn escalate(
        &self,
        session: &Session,
        customer: &Id,
        content: Text,
        reason: Text,
        idempotency_key: Option<Id>,
    ) -> AppResult<Ticket> {
        let title = Text::parse(ESCALATED_CHAT_TITLE, TextLimit::TICKET_TITLE)
            .map_err(|_| AppError::internal("the escalated chat title fits the title limit"))?;
        let new = NewTicket {
            customer_id: customer.clone(),
            title,
            content,
            ticket_type: TicketType::IssueEscalation,
            escalation_reason: Some(reason),
            idempotency_key,
        };
        self.tickets.create(session, new).await
    }
}
