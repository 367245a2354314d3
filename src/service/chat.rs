//! Live chat with customers (spec 3.5): the conversation, the provider's replies (synced to the PC
//! customer-service system, spec 5.2.6 step 9), and escalation of a conversation the provider
//! cannot settle into a ticket.

use super::outbound::Outbound;
use super::realtime::{Payload, Realtime};
use super::tickets::{NewTicket, TicketService};
use super::{acting_provider, provider_customer, Session};
use crate::domain::{
    new_id, now, ChatMessage, ChatSender, ChatStatus, EventKind, EventRecord, Id, Page, PageRequest, Text, TextLimit,
    Ticket, TicketType,
};
use crate::error::{AppError, AppResult};
use crate::store::{ChatStore, CustomerStore, ProviderStore, SharedStore, Written};
use std::sync::Arc;

/// How many messages one acknowledgement may name.
pub const MAX_ACKNOWLEDGED: usize = 100;

/// The title every ticket escalated from a chat carries (spec 3.5.3).
pub const ESCALATED_CHAT_TITLE: &str = "聊天升级工单";

#[derive(Clone)]
pub struct ChatService {
    chat: Arc<dyn ChatStore>,
    customers: Arc<dyn CustomerStore>,
    providers: Arc<dyn ProviderStore>,
    tickets: TicketService,
    realtime: Arc<Realtime>,
    outbound: Arc<Outbound>,
}

impl ChatService {
    pub fn new(
        store: &SharedStore,
        tickets: TicketService,
        realtime: Arc<Realtime>,
        outbound: Arc<Outbound>,
    ) -> ChatService {
        ChatService {
            chat: store.clone(),
            customers: store.clone(),
            providers: store.clone(),
            tickets,
            realtime,
            outbound,
        }
    }

    /// A page of the conversation with a customer: page 1 holds the latest messages, each page
    /// runs oldest to newest.
    pub async fn messages(&self, session: &Session, customer: &Id, page: PageRequest) -> AppResult<Page<ChatMessage>> {
        provider_customer(self.customers.as_ref(), session, customer).await?;
        self.chat.list_chat_messages(&session.provider_id, customer, page).await
    }

    /// Sends the provider's message to a customer. A retry with the same idempotency key answers
    /// the first message and sends nothing new.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn send(
        &self,
        session: &Session,
        customer: &Id,
        content: Text,
        idempotency_key: Option<Id>,
    ) -> AppResult<ChatMessage> {
        let customer = provider_customer(self.customers.as_ref(), session, customer).await?;
        let provider = acting_provider(self.providers.as_ref(), session).await?;
        let message = ChatMessage {
            id: new_id("cm"),
            service_provider_id: provider.id,
            service_provider_name: provider.name,
            customer_id: customer.id,
            customer_name: customer.name,
            sender_type: ChatSender::ServiceProvider,
            content: content.into_string(),
            timestamp: now(),
            status: ChatStatus::Sent,
        };
        let outbox = self.outbound.chat_reply(&message);
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
