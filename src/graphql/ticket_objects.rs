//! The GraphQL views of a ticket: the ticket, its history, a reply and an escalation.

use super::attachments::AttachmentObject;
use super::objects::{id, load_customer, load_provider_name, CustomerObject};
use super::scalars::DateTime;
use super::ContextExt;
use crate::domain::{EscalationStatus, HistoryEntry, Id, SlaStatus, SlaTarget, Ticket, TicketStatus, TicketType};
use crate::service::tickets::{Escalation, Reply};
use async_graphql::{ComplexObject, Context, Object, SimpleObject, ID};

/// One entry of a ticket's processing history.
#[derive(SimpleObject)]
#[graphql(name = "HistoryEntry", complex)]
pub struct HistoryEntryObject {
    pub id: ID,
    pub operator_id: String,
    pub operator_name: String,
    /// create, assign, reply, process, resolve, reopen or escalate.
    pub action: String,
    pub content: String,
    pub timestamp: DateTime,
}

impl From<&HistoryEntry> for HistoryEntryObject {
    fn from(e: &HistoryEntry) -> Self {
        HistoryEntryObject {
            id: id(&e.id),
            operator_id: e.operator_id.clone(),
            operator_name: e.operator_name.clone(),
            action: e.action.clone(),
            content: e.content.clone(),
            timestamp: e.timestamp.into(),
        }
    }
}

#[ComplexObject]
impl HistoryEntryObject {
    /// The files a reply carries, with signed URLs.
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AttachmentObject>> {
        super::attachments::attachments_of(ctx, &Id::from_stored(self.id.0.clone())).await
    }
}

pub struct TicketObject(pub Ticket);

/// A support ticket of one of the provider's customers.
#[Object(name = "Ticket")]
impl TicketObject {
    /// The files the ticket was created with, with signed URLs (a reply's are on its history entry).
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AttachmentObject>> {
        super::attachments::attachments_of(ctx, &self.0.id).await
    }
    async fn id(&self) -> ID {
        id(&self.0.id)
    }
    async fn customer_id(&self) -> ID {
        id(&self.0.customer_id)
    }
    async fn customer_name(&self) -> &str {
        &self.0.customer_name
    }
    /// The customer, loaded in one batch for a whole page of tickets.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<CustomerObject> {
        load_customer(ctx, &self.0.customer_id).await
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    #[graphql(name = "type")]
    async fn ticket_type(&self) -> TicketType {
        self.0.ticket_type
    }
    async fn status(&self) -> TicketStatus {
        self.0.status
    }
    async fn escalation_status(&self) -> EscalationStatus {
        self.0.escalation_status
    }
    async fn escalation_reason(&self) -> Option<&str> {
        self.0.escalation_reason.as_deref()
    }
    async fn escalated_at(&self) -> Option<DateTime> {
        self.0.escalated_at.map(DateTime)
    }
    async fn service_provider_id(&self) -> ID {
        id(&self.0.service_provider_id)
    }
    async fn service_provider_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        load_provider_name(ctx, &self.0.service_provider_id).await
    }
    async fn assignee_id(&self) -> Option<&str> {
        self.0.assignee_id.as_deref()
    }
    async fn assignee_name(&self) -> Option<&str> {
        self.0.assignee_name.as_deref()
    }
    /// Who acted on the ticket last.
    async fn last_processor(&self) -> Option<&str> {
        self.0.last_processor()
    }
    async fn resolution(&self) -> Option<&str> {
        self.0.resolution.as_deref()
    }
    async fn resolved_at(&self) -> Option<DateTime> {
        self.0.resolved_at.map(DateTime)
    }
    /// When the first response is due (null for tickets made before service-level targets).
    async fn first_response_due_at(&self) -> Option<DateTime> {
        self.0.sla.first_response_due_at.map(DateTime)
    }
    /// When the resolution is due (null for tickets made before service-level targets).
    async fn resolution_due_at(&self) -> Option<DateTime> {
        self.0.sla.resolution_due_at.map(DateTime)
    }
    /// The provider's first reply (or the PC system's, or the resolution, whichever came first).
    async fn first_responded_at(&self) -> Option<DateTime> {
        self.0.sla.first_responded_at.map(DateTime)
    }
    /// Where the ticket stands against its targets now: the worst of the two, MET when both were
    /// met; null without targets.
    async fn sla(&self, ctx: &Context<'_>) -> Option<SlaStatus> {
        self.0.sla_status(ctx.services().clock.now())
    }
    /// Where the first-response target stands now (MET once answered in time); null without it.
    async fn first_response_sla(&self, ctx: &Context<'_>) -> Option<SlaStatus> {
        self.0.target_status(SlaTarget::FirstResponse, ctx.services().clock.now())
    }
    /// Where the resolution target stands now (its clock stops at resolve); null without it.
    async fn resolution_sla(&self, ctx: &Context<'_>) -> Option<SlaStatus> {
        self.0.target_status(SlaTarget::Resolution, ctx.services().clock.now())
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Every action on the ticket, oldest first.
    async fn processing_history(&self) -> Vec<HistoryEntryObject> {
        self.0.history.iter().map(HistoryEntryObject::from).collect()
    }
}

pub struct ReplyObject(pub Reply);

/// A reply added to a ticket.
#[Object(name = "TicketReply")]
impl ReplyObject {
    async fn ticket_id(&self) -> ID {
        id(&self.0.ticket.id)
    }
    /// The id of the history entry that holds the reply.
    async fn reply_id(&self) -> ID {
        id(&self.0.entry.id)
    }
    async fn content(&self) -> &str {
        &self.0.entry.content
    }
    async fn operator_id(&self) -> &str {
        &self.0.entry.operator_id
    }
    async fn operator_name(&self) -> &str {
        &self.0.entry.operator_name
    }
    async fn timestamp(&self) -> DateTime {
        self.0.entry.timestamp.into()
    }
    /// The files the reply carries, with signed URLs.
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AttachmentObject>> {
        super::attachments::attachments_of(ctx, &self.0.entry.id).await
    }
    /// The ticket after the reply.
    async fn ticket(&self) -> TicketObject {
        TicketObject(self.0.ticket.clone())
    }
}

pub struct EscalationObject(pub Escalation);

/// The outcome of escalating a ticket.
#[Object(name = "TicketEscalation")]
impl EscalationObject {
    async fn ticket_id(&self) -> ID {
        id(&self.0.ticket.id)
    }
    async fn escalation_status(&self) -> EscalationStatus {
        self.0.ticket.escalation_status
    }
    async fn reason(&self) -> Option<&str> {
        self.0.ticket.escalation_reason.as_deref()
    }
    async fn escalated_at(&self) -> Option<DateTime> {
        self.0.ticket.escalated_at.map(DateTime)
    }
    /// True when the notification of the PC customer-service system was durably queued: written
    /// to the outbox in the same transaction as the escalation, so it is delivered at least once
    /// (or ends as a dead letter an operator can replay). False when no PC customer-service system
    /// is configured (`CS_WEBHOOK_URL`), since nothing is sent. The provider's own `ticket_update`
    /// notification is stored with every escalation either way.
    async fn notification_sent(&self) -> bool {
        self.0.notification_queued
    }
    /// The ticket after the escalation.
    async fn ticket(&self) -> TicketObject {
        TicketObject(self.0.ticket.clone())
    }
}
