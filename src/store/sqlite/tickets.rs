//! The tickets port on SQLite.

use super::events::log_event;
use super::idempotency::{claim_change_key, claim_key, key_is_used};
use super::notifications::notification_event;
use super::outbox::queue_outbox;
use super::rows::{id, parse_optional_time, parse_time, parse_value, time_text};
use super::search::{index_reply, index_ticket};
use super::sql::{id_values, placeholders, text, Conditions, ListQuery};
use super::ticket_sla::{owed_alerts_sql, push_sla_condition, sla_from_row, ticket_anywhere_sql, write_sla, SLA_ORDER};
use super::SqliteStore;
use crate::domain::{
    EscalationStatus, EventKind, EventRecord, HistoryEntry, Id, Notification, OutboxDraft, Page, PageRequest, Ticket,
    TicketStatus, TicketType, Timestamp,
};
use crate::error::{AppError, AppResult};
use crate::store::TicketStore;
use crate::store::{replayed_subject, KeyedWrite, TicketChange, TicketFilter, Written};
use async_trait::async_trait;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use std::collections::HashMap;

/// Reads the history of the given tickets, oldest first, grouped by ticket.
pub(super) fn histories(
    connection: &Connection,
    ticket_ids: &[Id],
) -> rusqlite::Result<HashMap<String, Vec<HistoryEntry>>> {
    let mut by_ticket: HashMap<String, Vec<HistoryEntry>> = HashMap::new();
    if ticket_ids.is_empty() {
        return Ok(by_ticket);
    }
    let mut statement = connection.prepare(&histories_sql(ticket_ids.len()))?;
    let mut rows = statement.query(params_from_iter(id_values(ticket_ids)))?;
    while let Some(row) = rows.next()? {
        let ticket_id: String = row.get(0)?;
        by_ticket.entry(ticket_id).or_default().push(history_from_row(row, 1)?);
    }
    Ok(by_ticket)
}

pub(super) fn with_histories(connection: &Connection, mut tickets: Vec<Ticket>) -> rusqlite::Result<Vec<Ticket>> {
    let ids: Vec<Id> = tickets.iter().map(|t| t.id.clone()).collect();
    let mut histories = histories(connection, &ids)?;
    for ticket in &mut tickets {
        ticket.history = histories.remove(ticket.id.as_str()).unwrap_or_default();
    }
    Ok(tickets)
}

pub(super) fn insert_history(
    transaction: &rusqlite::Transaction<'_>,
    ticket: &Id,
    entry: &HistoryEntry,
) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO ticket_history (id, ticket_id, operator_id, operator_name, action, content, timestamp)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            entry.id.as_str(),
            ticket.as_str(),
            entry.operator_id,
            entry.operator_name,
            entry.action,
            entry.content,
            time_text(&entry.timestamp),
        ])?;
    Ok(())
}

#[async_trait]
impl TicketStore for SqliteStore {
    async fn insert_ticket(
        &self,
        ticket: &Ticket,
        notification: &Notification,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<Ticket>> {
        let (provider, key) = (ticket.service_provider_id.clone(), idempotency_key.cloned());
        let (stored, notification, outbox) = (ticket.clone(), notification.clone(), outbox.to_vec());
        let ticket = stored.clone();
        let outcome = self
            .write(move |t| {
                let provider = &ticket.service_provider_id;
                let claim = claim_key(t, provider, key.as_ref(), EventKind::Ticket, &ticket.id, ticket.created_at)?;
                if let Some(replayed) = claim {
                    return Ok(replayed);
                }
                t.prepare_cached(
                    "INSERT INTO tickets (id, service_provider_id, customer_id, customer_name, title, content, type,
                     status, escalation_status, escalation_reason, escalated_at, assignee_id, assignee_name,
                     resolution, resolved_at, created_at, updated_at, version)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    ticket.id.as_str(),
                    ticket.service_provider_id.as_str(),
                    ticket.customer_id.as_str(),
                    ticket.customer_name,
                    ticket.title,
                    ticket.content,
                    ticket.ticket_type.as_str(),
                    ticket.status.as_str(),
                    ticket.escalation_status.as_str(),
                    ticket.escalation_reason,
                    ticket.escalated_at.as_ref().map(time_text),
                    ticket.assignee_id,
                    ticket.assignee_name,
                    ticket.resolution,
                    ticket.resolved_at.as_ref().map(time_text),
                    time_text(&ticket.created_at),
                    time_text(&ticket.updated_at),
                    ticket.version as i64,
                ])?;
                write_sla(t, &ticket)?;
                for entry in &ticket.history {
                    insert_history(t, &ticket.id, entry)?;
                    index_reply(t, entry.id.as_str())?;
                }
                index_ticket(t, ticket.id.as_str())?;
                let ticket_event = log_event(
                    t,
                    provider,
                    EventKind::Ticket,
                    &ticket.id,
                    Some(&ticket.customer_id),
                    ticket.created_at,
                )?;
                queue_outbox(t, &outbox, ticket_event.cursor)?;
                Ok(KeyedWrite::Created(vec![ticket_event, notification_event(t, &notification)?]))
            })
            .await?;
        match outcome {
            KeyedWrite::Created(events) => Ok(Written::Created(stored, events)),
            KeyedWrite::Replayed { kind, subject } => {
                let subject = replayed_subject(&kind, subject, EventKind::Ticket)?;
                let first = self.ticket(&provider, &subject).await?;
                first
                    .map(Written::Replayed)
                    .ok_or_else(|| AppError::internal("an idempotency key names a missing ticket"))
            }
        }
    }

    async fn list_tickets(&self, provider: &Id, filter: &TicketFilter, page: PageRequest) -> AppResult<Page<Ticket>> {
        let list = ticket_list(provider, filter);
        let (items, total) = self
            .read(move |c| {
                let (tickets, total) = list.page(c, page, ticket_from_row)?;
                Ok((with_histories(c, tickets)?, total))
            })
            .await?;
        Ok(Page { items, total, request: page })
    }

    async fn ticket(&self, provider: &Id, id: &Id) -> AppResult<Option<Ticket>> {
        let (provider, id) = (provider.clone(), id.clone());
        self.read(move |c| {
            let ticket = c
                .prepare_cached(&ticket_sql())?
                .query_row([provider.as_str(), id.as_str()], ticket_from_row)
                .optional()?;
            match ticket {
                Some(ticket) => Ok(with_histories(c, vec![ticket])?.pop()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn apply_ticket_change(&self, change: &TicketChange) -> AppResult<Option<Vec<EventRecord>>> {
        let change = change.clone();
        self.write(move |t| {
            let ticket = &change.ticket;
            if let Some((key, _)) = &change.claim {
                if key_is_used(t, &ticket.service_provider_id, key)? {
                    return Ok(None);
                }
            }
            let updated = t
                .prepare_cached(
                    "UPDATE tickets SET status = ?, escalation_status = ?, escalation_reason = ?, escalated_at = ?,
                         assignee_id = ?, assignee_name = ?, resolution = ?, resolved_at = ?, updated_at = ?,
                         version = version + 1
                     WHERE id = ? AND service_provider_id = ? AND version = ?",
                )?
                .execute(params![
                    ticket.status.as_str(),
                    ticket.escalation_status.as_str(),
                    ticket.escalation_reason,
                    ticket.escalated_at.as_ref().map(time_text),
                    ticket.assignee_id,
                    ticket.assignee_name,
                    ticket.resolution,
                    ticket.resolved_at.as_ref().map(time_text),
                    time_text(&ticket.updated_at),
                    ticket.id.as_str(),
                    ticket.service_provider_id.as_str(),
                    ticket.version as i64,
                ])?;
            if updated == 0 {
                return Ok(None);
            }
            write_sla(t, ticket)?;
            if let Some((key, claim)) = &change.claim {
                claim_change_key(t, &ticket.service_provider_id, key, claim, ticket.updated_at)?;
            }
            for entry in &change.appended_history {
                insert_history(t, &ticket.id, entry)?;
                index_reply(t, entry.id.as_str())?;
            }
            index_ticket(t, ticket.id.as_str())?;
            let provider = &ticket.service_provider_id;
            let ticket_event =
                log_event(t, provider, EventKind::Ticket, &ticket.id, Some(&ticket.customer_id), ticket.updated_at)?;
            queue_outbox(t, &change.outbox, ticket_event.cursor)?;
            Ok(Some(vec![ticket_event, notification_event(t, &change.notification)?]))
        })
        .await
    }

    async fn ticket_anywhere(&self, id: &Id) -> AppResult<Option<Ticket>> {
        let id = id.clone();
        self.read(move |c| {
            let ticket =
                c.prepare_cached(&ticket_anywhere_sql())?.query_row([id.as_str()], ticket_from_row).optional()?;
            match ticket {
                Some(ticket) => Ok(with_histories(c, vec![ticket])?.pop()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn tickets_owed_sla_alerts(&self, at: Timestamp, limit: u32) -> AppResult<Vec<Ticket>> {
        self.read(move |c| {
            let mut statement = c.prepare_cached(&owed_alerts_sql())?;
            let rows = statement.query_map(params![time_text(&at), i64::from(limit)], ticket_from_row)?;
            rows.collect()
        })
        .await
    }
}

/// The history of `count` tickets, oldest first; the parameters are the ticket ids.
pub(super) fn histories_sql(count: usize) -> String {
    format!(
        "SELECT ticket_id, {HISTORY_COLUMNS} FROM ticket_history WHERE ticket_id IN ({}) ORDER BY rowid",
        placeholders(count)
    )
}

/// A provider's tickets that `filter` selects, most recently updated first.
pub(super) fn ticket_list(provider: &Id, filter: &TicketFilter) -> ListQuery {
    let mut conditions = Conditions::of_provider(provider);
    // Filtered by SLA status, the list runs in breach order on the breach mark's index; the other
    // filters are then checked row by row (`+` keeps SQLite from picking their indexes instead).
    let by_sla = filter.sla.is_some();
    if let Some(customer) = &filter.customer_id {
        conditions.push(if by_sla { "+customer_id = ?" } else { "customer_id = ?" }, [text(customer.as_str())]);
    }
    if let Some(status) = filter.status {
        conditions.push(if by_sla { "+status = ?" } else { "status = ?" }, [text(status.as_str())]);
    }
    if let Some(ticket_type) = filter.ticket_type {
        conditions.push(if by_sla { "+type = ?" } else { "type = ?" }, [text(ticket_type.as_str())]);
    }
    if let Some(sla) = &filter.sla {
        push_sla_condition(&mut conditions, sla);
    }
    let order = if by_sla { SLA_ORDER } else { "updated_at DESC, id" };
    ListQuery { table: "tickets", columns: TICKET_COLUMNS, order, conditions }
}

/// One ticket of a provider; the parameters are the provider and the ticket id.
pub(super) fn ticket_sql() -> String {
    format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE service_provider_id = ? AND id = ?")
}

pub(super) const TICKET_COLUMNS: &str =
    "id, service_provider_id, customer_id, customer_name, title, content, type, status, \
     escalation_status, escalation_reason, escalated_at, assignee_id, assignee_name, resolution, resolved_at, \
     created_at, updated_at, version, \
     first_response_due_at, resolution_due_at, first_responded_at, first_response_alerted, resolution_alerted";

pub(super) const HISTORY_COLUMNS: &str = "id, operator_id, operator_name, action, content, timestamp";

pub(super) fn ticket_from_row(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        id: id(row, 0)?,
        service_provider_id: id(row, 1)?,
        customer_id: id(row, 2)?,
        customer_name: row.get(3)?,
        title: row.get(4)?,
        content: row.get(5)?,
        ticket_type: parse_value(row, 6, TicketType::parse)?,
        status: parse_value(row, 7, TicketStatus::parse)?,
        escalation_status: parse_value(row, 8, EscalationStatus::parse)?,
        escalation_reason: row.get(9)?,
        escalated_at: parse_optional_time(row, 10)?,
        assignee_id: row.get(11)?,
        assignee_name: row.get(12)?,
        resolution: row.get(13)?,
        resolved_at: parse_optional_time(row, 14)?,
        created_at: parse_time(row, 15)?,
        updated_at: parse_time(row, 16)?,
        version: row.get::<_, i64>(17)?.max(0) as u64,
        history: Vec::new(),
        sla: sla_from_row(row, 18)?,
    })
}

/// Reads a history entry whose columns ([`HISTORY_COLUMNS`]) start at `first`.
pub(super) fn history_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: id(row, first)?,
        operator_id: row.get(first + 1)?,
        operator_name: row.get(first + 2)?,
        action: row.get(first + 3)?,
        content: row.get(first + 4)?,
        timestamp: parse_time(row, first + 5)?,
    })
}
