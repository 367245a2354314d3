//! The ticket (model 4.3) with its processing history.

use super::{EscalationStatus, Id, TicketSla, TicketStatus, TicketType, Timestamp};

/// What an entry of the processing history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryAction {
    Create,
    Assign,
    Reply,
    Process,
    Resolve,
    Reopen,
    Escalate,
}

impl HistoryAction {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryAction::Create => "create",
            HistoryAction::Assign => "assign",
            HistoryAction::Reply => "reply",
            HistoryAction::Process => "process",
            HistoryAction::Resolve => "resolve",
            HistoryAction::Reopen => "reopen",
            HistoryAction::Escalate => "escalate",
        }
    }
}

/// One entry of a ticket's processing history. `action` is free text in the spec's model; the
/// service only writes [`HistoryAction`] values, but demo and synced data may hold others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: Id,
    pub operator_id: String,
    pub operator_name: String,
    pub action: String,
    pub content: String,
    pub timestamp: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: Id,
    pub service_provider_id: Id,
    pub customer_id: Id,
    pub customer_name: String,
    pub title: String,
    pub content: String,
    pub ticket_type: TicketType,
    pub status: TicketStatus,
    pub escalation_status: EscalationStatus,
    pub escalation_reason: Option<String>,
    pub escalated_at: Option<Timestamp>,
    pub assignee_id: Option<String>,
    pub assignee_name: Option<String>,
    pub resolution: Option<String>,
    pub resolved_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Oldest first.
    pub history: Vec<HistoryEntry>,
    /// The store's revision of this ticket, for compare-and-set updates.
    pub version: u64,
    /// The service-level timers it was created with (see [`super::sla`]).
    pub sla: TicketSla,
}

impl Ticket {
    /// The name of whoever acted on the ticket last, as the ticket lists show it.
    pub fn last_processor(&self) -> Option<&str> {
        self.history.last().map(|entry| entry.operator_name.as_str()).or(self.assignee_name.as_deref())
    }

    /// Open and processing tickets count as the customer's unresolved issues.
    pub fn is_unresolved(&self) -> bool {
        self.status != TicketStatus::Resolved
    }
}
