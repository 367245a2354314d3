//! Ticket changes made in the PC customer-service system (`POST /integrations/cs/ticket-events`),
//! applied through the ticket service like a change made in the app: the same compare-and-set,
//! a history entry under the PC operator's name, the `ticket_update` notification and the
//! `ticketUpdates` event. (A change made in the app sends no WeChat message, so neither does one
//! from the PC system.)
//!
//! | type | allowed when | does |
//! | --- | --- | --- |
//! | `reply` | always (`content` required) | as a reply from the app: processing, a resolved ticket reopened; sets `firstRespondedAt` if unset |
//! | `assign` | not resolved (`assignee` required) | sets `assigneeId`, `assigneeName` |
//! | `resolve` | not resolved | resolved, `content` as the resolution |
//! | `reopen` | resolved | processing, resolution cleared |
//! | `status` | not resolved, and `status` (`open` or `processing`) differs | sets the status |
//!
//! A change the ticket's state does not allow is a CONFLICT (409) with the reason, and nothing
//! changes. Idempotent by `eventId`: the event id is claimed (as an idempotency key in the `cs`
//! namespace of the ticket's provider) in the transaction of the change, and the answer recorded
//! under it; a duplicate gets that answer again. Ordering: an event's history entry is stamped
//! with its `occurredAt`, so the ticket's history holds when each kind of change last happened;
//! an event older than the newest entry of its kind (from the app or the PC system) is recorded
//! under its id, answered `applied: false`, and not applied over the newer change. Event ids live
//! as long as idempotency keys (`IDEMPOTENCY_KEY_RETENTION_HOURS`).

use super::tickets::TicketService;
use super::Session;
use crate::domain::{
    format_time, new_id, HistoryAction, HistoryEntry, Id, OutboxDraft, Ticket, TicketStatus, Timestamp,
};
use crate::error::{AppError, AppResult};
use crate::store::{IdempotencyStore, SharedStore, StoredAnswer, TicketStore};
use serde_json::{json, Value};
use std::sync::Arc;

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketEventKind {
    Reply,
    Assign,
    Resolve,
    Reopen,
    Status,
}

impl TicketEventKind {
    pub fn parse(text: &str) -> Option<TicketEventKind> {
        Some(match text {
            "reply" => TicketEventKind::Reply,
            "assign" => TicketEventKind::Assign,
            "resolve" => TicketEventKind::Resolve,
            "reopen" => TicketEventKind::Reopen,
            "status" => TicketEventKind::Status,
            _ => return None,
        })
    }

    /// The history action an applied event of this kind writes last.
    fn action(self) -> HistoryAction {
        match self {
            TicketEventKind::Reply => HistoryAction::Reply,
            TicketEventKind::Assign => HistoryAction::Assign,
            TicketEventKind::Resolve => HistoryAction::Resolve,
            TicketEventKind::Reopen => HistoryAction::Reopen,
            TicketEventKind::Status => HistoryAction::Process,
        }
    }
}

/// Someone in the PC system: an operator, or an assignee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcPerson {
    pub id: String,
    pub name: String,
}

/// A validated event.
#[derive(Debug, Clone)]
pub struct TicketEvent {
    pub event_id: Id,
    pub ticket_id: Id,
    pub kind: TicketEventKind,
    pub operator: PcPerson,
    pub content: Option<String>,
    pub assignee: Option<PcPerson>,
    /// For `status`: the status to set.
    pub status: Option<TicketStatus>,
    pub occurred_at: Timestamp,
    /// A digest of the request body: a duplicate id with another body is still the first event.
    pub fingerprint: String,
}

/// What became of an event from the PC system (a ticket event, a receipt): the answer's `data`,
/// and whether it was given before (a duplicate event id).
#[derive(Debug, Clone)]
pub struct EventOutcome {
    pub data: Value,
    pub duplicate: bool,
}

#[derive(Clone)]
pub struct TicketEventService {
    tickets: TicketService,
    store: Arc<dyn TicketStore>,
    keys: Arc<dyn IdempotencyStore>,
}

impl TicketEventService {
    pub fn new(store: &SharedStore, tickets: TicketService) -> TicketEventService {
        TicketEventService { tickets, store: store.clone(), keys: store.clone() }
    }

    #[tracing::instrument(skip_all, fields(ticket = %event.ticket_id, event = %event.event_id))]
    pub async fn apply(&self, event: TicketEvent) -> AppResult<EventOutcome> {
        let ticket = self.store.ticket_anywhere(&event.ticket_id).await?.ok_or(AppError::NotFound("工单"))?;
        let provider = ticket.service_provider_id.clone();
        let key = Id::scoped("cs", &event.event_id);
        if let Some(StoredAnswer { answer, .. }) = self.keys.stored_answer(&provider, &key).await? {
            return Ok(EventOutcome { data: serde_json::from_str(&answer).unwrap_or(Value::Null), duplicate: true });
        }
        // The PC system acts on the ticket's provider's behalf; only the provider id is used.
        let session = Session {
            provider_id: provider.clone(),
            token_id: String::new(),
            family_id: String::new(),
            expires_at: event.occurred_at,
        };
        let newest_of_kind = ticket
            .history
            .iter()
            .filter(|entry| entry.action == event.kind.action().as_str())
            .map(|entry| entry.timestamp)
            .max();
        let data = if newest_of_kind.is_some_and(|newest| event.occurred_at < newest) {
            outcome(&event, &ticket, false, Some("该类变更已有更新的记录，此事件已记录但未应用"))
        } else {
            let keyed = Some((key.clone(), event.kind.action()));
            let decided = |t: &Ticket, at| decide(&event, t, at);
            let (changed, _, _) = self.tickets.change(&session, &event.ticket_id, keyed, no_delivery, decided).await?;
            outcome(&event, &changed, true, None)
        };
        let at = self.tickets.clock().now();
        let stored = self.keys.record_answer(&provider, &key, &event.fingerprint, &data.to_string(), at).await?;
        Ok(EventOutcome { data: serde_json::from_str(&stored.answer).unwrap_or(data), duplicate: false })
    }
}

fn no_delivery(_: &Ticket) -> Vec<OutboxDraft> {
    Vec::new()
}

fn outcome(event: &TicketEvent, ticket: &Ticket, applied: bool, reason: Option<&str>) -> Value {
    json!({
        "eventId": event.event_id.as_str(),
        "ticketId": ticket.id.as_str(),
        "applied": applied,
        "reason": reason,
        "status": ticket.status.as_str(),
        "assigneeId": ticket.assignee_id,
        "assigneeName": ticket.assignee_name,
        "updatedAt": format_time(&ticket.updated_at),
    })
}

type Decision = (Ticket, Vec<HistoryEntry>, &'static str, String);

/// The change an event makes to `ticket`, or why it cannot.
fn decide(event: &TicketEvent, ticket: &Ticket, at: Timestamp) -> AppResult<Decision> {
    // Stamped when it happened in the PC system (never later than now), which orders the kinds.
    let stamp = event.occurred_at.min(at);
    let operator = &event.operator;
    let entry = |action: HistoryAction, content: String| HistoryEntry {
        id: new_id("h"),
        operator_id: operator.id.clone(),
        operator_name: operator.name.clone(),
        action: action.as_str().to_owned(),
        content,
        timestamp: stamp,
    };
    let resolved = ticket.status == TicketStatus::Resolved;
    let mut next = ticket.clone();
    let mut appended = Vec::new();
    let message = match event.kind {
        TicketEventKind::Reply => {
            let content = event.content.clone().ok_or_else(|| AppError::bad_input("content", "回复内容不能为空"))?;
            if resolved {
                appended.push(entry(HistoryAction::Reopen, "工单已重新打开".to_owned()));
                next.resolved_at = None;
                next.resolution = None;
            }
            next.status = TicketStatus::Processing;
            next.sla.first_responded_at.get_or_insert(at);
            appended.push(entry(HistoryAction::Reply, content));
            if resolved {
                format!("已由客服{}回复并重新打开", operator.name)
            } else {
                format!("客服{}已回复", operator.name)
            }
        }
        TicketEventKind::Assign => {
            let assignee = event.assignee.clone().ok_or_else(|| AppError::bad_input("assignee", "缺少分配对象"))?;
            if resolved {
                return Err(AppError::Conflict("已解决的工单不能分配，请先重新打开".to_owned()));
            }
            next.assignee_id = Some(assignee.id.clone());
            next.assignee_name = Some(assignee.name.clone());
            appended.push(entry(HistoryAction::Assign, format!("工单已分配给{}", assignee.name)));
            format!("已分配给{}", assignee.name)
        }
        TicketEventKind::Resolve => {
            if resolved {
                return Err(AppError::Conflict("工单已是已解决状态，无需重复标记".to_owned()));
            }
            next.status = TicketStatus::Resolved;
            next.resolved_at = Some(at);
            next.resolution = event.content.clone();
            next.sla.first_responded_at.get_or_insert(at);
            appended.push(entry(
                HistoryAction::Resolve,
                event.content.clone().unwrap_or_else(|| "工单已标记为已解决".to_owned()),
            ));
            "状态已更新为已解决".to_owned()
        }
        TicketEventKind::Reopen => {
            if !resolved {
                return Err(AppError::Conflict("工单尚未解决，无需重新打开".to_owned()));
            }
            next.status = TicketStatus::Processing;
            next.resolved_at = None;
            next.resolution = None;
            appended.push(entry(
                HistoryAction::Reopen,
                event.content.clone().unwrap_or_else(|| "工单已重新打开".to_owned()),
            ));
            "已重新打开，状态已更新为处理中".to_owned()
        }
        TicketEventKind::Status => {
            let status = event.status.ok_or_else(|| AppError::bad_input("status", "status应为open或processing"))?;
            if resolved {
                return Err(AppError::Conflict("已解决的工单请用reopen事件重新打开".to_owned()));
            }
            if status == ticket.status {
                return Err(AppError::Conflict(format!("工单已是{}状态", status_name(status))));
            }
            next.status = status;
            appended.push(entry(HistoryAction::Process, format!("状态已更新为{}", status_name(status))));
            format!("状态已更新为{}", status_name(status))
        }
    };
    Ok((next, appended, "工单状态更新", message))
}

fn status_name(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Open => "待处理",
        TicketStatus::Processing => "处理中",
        TicketStatus::Resolved => "已解决",
    }
}
