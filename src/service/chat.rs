//! Live chat with customers (spec 3.5): the conversation, the provider's replies, and escalation
//! of a conversation the provider cannot settle into a ticket.

use super::tickets::{NewTicket, TicketService};
use super::{acting_provider, Session};
use crate::domain::{
    new_id, now, ChatMessage, ChatSender, ChatStatus, Customer, Id, Page, PageRequest, Text, TextLimit, Ticket,
    TicketType,
};
use crate::error::{AppError, AppResult};
use crate::store::SharedStore;

/// The title every ticket escalated from a chat carries (spec 3.5.3).
pub const ESCALATED_CHAT_TITLE: &str = "聊天升级工单";

#[derive(Clone)]
pub struct ChatService {
    store: SharedStore,
    tickets: TicketService,
}

impl ChatService {
    pub fn new(store: SharedStore, tickets: TicketService) -> ChatService {
        ChatService { store, tickets }
    }

    /// A page of the conversation with a customer: page 1 holds the latest messages, each page
    /// runs oldest to newest.
    pub async fn messages(&self, session: &Session, customer: &Id, page: PageRequest) -> AppResult<Page<ChatMessage>> {
        self.customer(session, customer).await?;
        self.store.list_chat_messages(&session.provider_id, customer, page).await
    }

    /// Sends the provider's message to a customer.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn send(&self, session: &Session, customer: &Id, content: Text) -> AppResult<ChatMessage> {
        let customer = self.customer(session, customer).await?;
        let provider = acting_provider(&self.store, session).await?;
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
        self.store.insert_chat_message(&message).await?;
        Ok(message)
    }

    /// Turns the conversation into an escalated `issue_escalation` ticket titled
    /// [`ESCALATED_CHAT_TITLE`], holding the summary and the reason.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %customer))]
    pub async fn escalate(&self, session: &Session, customer: &Id, content: Text, reason: Text) -> AppResult<Ticket> {
        let title = Text::parse(ESCALATED_CHAT_TITLE, TextLimit::TICKET_TITLE)
            .map_err(|_| AppError::internal("the escalated chat title fits the title limit"))?;
        let new = NewTicket {
            customer_id: customer.clone(),
            title,
            content,
            ticket_type: TicketType::IssueEscalation,
            escalation_reason: Some(reason),
        };
        self.tickets.create(session, new).await
    }

    async fn customer(&self, session: &Session, id: &Id) -> AppResult<Customer> {
        self.store
            .customers_by_ids(&session.provider_id, std::slice::from_ref(id))
            .await?
            .pop()
            .ok_or(AppError::NotFound("客户"))
    }
}
