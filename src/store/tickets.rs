//! The tickets port: a ticket is created and changed as one unit with its history entries, the
//! notification that announces it, its events and its outbox deliveries; every change is
//! compare-and-set on the ticket's version.

use super::{KeyClaim, Written};
use crate::domain::{
    EventRecord, HistoryEntry, Id, Notification, OutboxDraft, Page, PageRequest, SlaStatus, Ticket, TicketStatus,
    TicketType, Timestamp,
};
use crate::error::AppResult;
use async_trait::async_trait;

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub customer_id: Option<Id>,
    pub status: Option<TicketStatus>,
    pub ticket_type: Option<TicketType>,
    /// Tickets in one service-level status; such a list runs most overdue first.
    pub sla: Option<SlaFilter>,
}

/// Tickets whose service-level status is `status` at `now` (the service's clock).
#[derive(Debug, Clone, Copy)]
pub struct SlaFilter {
    pub status: SlaStatus,
    pub now: Timestamp,
}

/// A change to a ticket, applied as one unit: the ticket's new state, the history entries that
/// record it and the notification that announces it.
#[derive(Debug, Clone)]
pub struct TicketChange {
    /// The ticket as it is to be stored. Its `version` is the version the change was computed from;
    /// the store applies the change only if the stored ticket still has that version.
    pub ticket: Ticket,
    pub appended_history: Vec<HistoryEntry>,
    pub notification: Notification,
    /// Deliveries to other systems that the change causes, queued with it.
    pub outbox: Vec<OutboxDraft>,
    /// The client's idempotency key, claimed with the change (kind and subject as given).
    pub claim: Option<(Id, KeyClaim)>,
}

#[async_trait]
pub trait TicketStore: Send + Sync + 'static {
    /// Stores a new ticket with its history, the notification announcing it and the deliveries it
    /// causes, and logs an event for each of the first two. With an idempotency key already used
    /// for a ticket, stores nothing and answers that ticket.
    async fn insert_ticket(
        &self,
        ticket: &Ticket,
        notification: &Notification,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<Ticket>>;
    /// Tickets of a provider, most recently updated first, each with its history.
    async fn list_tickets(&self, provider: &Id, filter: &TicketFilter, page: PageRequest) -> AppResult<Page<Ticket>>;
    async fn ticket(&self, provider: &Id, id: &Id) -> AppResult<Option<Ticket>>;
    /// Applies a change if the stored version still matches, logging the ticket's and the
    /// notification's events and queuing its deliveries, and claiming its idempotency key; `None`
    /// if another change came first, or if the key was already claimed (nothing is applied: the
    /// caller reads the claim with [`super::IdempotencyStore::key_claim`]).
    async fn apply_ticket_change(&self, change: &TicketChange) -> AppResult<Option<Vec<EventRecord>>>;
    /// Tickets of any provider owed a breach alert at `at` (see [`crate::domain::SlaMarks`]),
    /// longest owed first, at most `limit`, without their history.
    /// A ticket of any provider, with its history: the PC system names tickets by id alone.
    async fn ticket_anywhere(&self, id: &Id) -> AppResult<Option<Ticket>>;
    async fn tickets_owed_sla_alerts(&self, at: Timestamp, limit: u32) -> AppResult<Vec<Ticket>>;
}
