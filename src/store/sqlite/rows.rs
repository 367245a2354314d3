//! Mapping between SQLite rows and domain types. What is stored is read back exactly; a value
//! outside its value set means the file was edited by hand and is reported, not guessed at.

use crate::domain::{
    format_time, AuditEntry, ChatMessage, ChatSender, ChatStatus, Cursor, Customer, CustomerStatus, DeliveryStatus,
    EscalationStatus, EventKind, EventRecord, HistoryEntry, Id, Notification, NotificationType, OutboxDraft,
    OutboxEntry, OutboxTarget, ProviderStatus, ReadStatus, ServiceProvider, Ticket, TicketStatus, TicketType,
    Timestamp, UsageMetrics,
};
use rusqlite::types::Type;
use rusqlite::Row;

pub const PROVIDER_COLUMNS: &str =
    "id, username, name, contact_person, phone, email, region, status, created_at, updated_at";

pub const CUSTOMER_COLUMNS: &str = "id, service_provider_id, service_provider_name, name, contact_person, phone, \
     email, region, software_version, port_count, purchase_date, expiry_date, status, login_frequency, \
     feature_usage, data_input, training_completion, usage_updated_at, last_active_time, created_at, updated_at, \
     (SELECT COUNT(*) FROM tickets t WHERE t.customer_id = customers.id AND t.status <> 'resolved') AS unresolved_issues";

pub const TICKET_COLUMNS: &str = "id, service_provider_id, customer_id, customer_name, title, content, type, status, \
     escalation_status, escalation_reason, escalated_at, assignee_id, assignee_name, resolution, resolved_at, \
     created_at, updated_at, version";

pub const HISTORY_COLUMNS: &str = "id, operator_id, operator_name, action, content, timestamp";

pub const NOTIFICATION_COLUMNS: &str = "id, service_provider_id, type, title, content, related_customer_id, \
     related_customer_name, related_ticket_id, read_status, created_at, read_at";

pub const EVENT_COLUMNS: &str = "provider_id, cursor, kind, subject_id, customer_id, at";

pub const CHAT_COLUMNS: &str = "id, service_provider_id, service_provider_name, customer_id, customer_name, \
     sender_type, content, timestamp, status";

pub const AUDIT_COLUMNS: &str = "id, at, service_provider_id, username, operation, target_id, ip, result, request_id";
pub const OUTBOX_COLUMNS: &str = "id, target, event_type, provider_id, customer_id, ordering_key, sequence, payload, \
     status, attempts, next_attempt_at, last_error, created_at, delivered_at, dead_at";

pub fn time_text(time: &Timestamp) -> String {
    format_time(time)
}

/// A time as the outbox and the leases keep it: Unix milliseconds.
pub fn millis(time: &Timestamp) -> i64 {
    time.timestamp_millis()
}

fn time_from_millis(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let value: i64 = row.get(index)?;
    chrono::DateTime::from_timestamp_millis(value).ok_or_else(|| conversion_error(index, format!("bad time {value}")))
}

fn optional_time_from_millis(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(_) => time_from_millis(row, index).map(Some),
    }
}

fn conversion_error(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

pub fn parse_time(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let text: String = row.get(index)?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| conversion_error(index, format!("bad time {text:?}: {e}")))
}

fn parse_optional_time(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(_) => parse_time(row, index).map(Some),
    }
}

fn parse_value<T>(row: &Row<'_>, index: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).ok_or_else(|| conversion_error(index, format!("unexpected value {text:?}")))
}

fn id(row: &Row<'_>, index: usize) -> rusqlite::Result<Id> {
    row.get(index).map(Id::from_stored)
}

fn optional_id(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Id>> {
    row.get::<_, Option<String>>(index).map(|v| v.map(Id::from_stored))
}

fn percent(row: &Row<'_>, index: usize) -> rusqlite::Result<u8> {
    row.get::<_, i64>(index).map(|v| v.clamp(0, 100) as u8)
}

pub fn provider_from_row(row: &Row<'_>) -> rusqlite::Result<ServiceProvider> {
    Ok(ServiceProvider {
        id: id(row, 0)?,
        username: row.get(1)?,
        name: row.get(2)?,
        contact_person: row.get(3)?,
        phone: row.get(4)?,
        email: row.get(5)?,
        region: row.get(6)?,
        status: parse_value(row, 7, ProviderStatus::parse)?,
        created_at: parse_time(row, 8)?,
        updated_at: parse_time(row, 9)?,
    })
}

pub fn customer_from_row(row: &Row<'_>) -> rusqlite::Result<Customer> {
    Ok(Customer {
        id: id(row, 0)?,
        service_provider_id: id(row, 1)?,
        service_provider_name: row.get(2)?,
        name: row.get(3)?,
        contact_person: row.get(4)?,
        phone: row.get(5)?,
        email: row.get(6)?,
        region: row.get(7)?,
        software_version: row.get(8)?,
        port_count: row.get(9)?,
        purchase_date: parse_time(row, 10)?,
        expiry_date: parse_time(row, 11)?,
        stored_status: parse_value(row, 12, CustomerStatus::parse)?,
        usage: UsageMetrics {
            login_frequency: percent(row, 13)?,
            feature_usage: percent(row, 14)?,
            data_input: percent(row, 15)?,
            training_completion: percent(row, 16)?,
        },
        usage_updated_at: parse_time(row, 17)?,
        last_active_time: parse_time(row, 18)?,
        created_at: parse_time(row, 19)?,
        updated_at: parse_time(row, 20)?,
        unresolved_issues: row.get(21)?,
    })
}

pub fn ticket_from_row(row: &Row<'_>) -> rusqlite::Result<Ticket> {
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
    })
}

/// Reads a history entry whose columns ([`HISTORY_COLUMNS`]) start at `first`.
pub fn history_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: id(row, first)?,
        operator_id: row.get(first + 1)?,
        operator_name: row.get(first + 2)?,
        action: row.get(first + 3)?,
        content: row.get(first + 4)?,
        timestamp: parse_time(row, first + 5)?,
    })
}

pub fn notification_from_row(row: &Row<'_>) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: id(row, 0)?,
        service_provider_id: id(row, 1)?,
        notification_type: parse_value(row, 2, NotificationType::parse)?,
        title: row.get(3)?,
        content: row.get(4)?,
        related_customer_id: optional_id(row, 5)?,
        related_customer_name: row.get(6)?,
        related_ticket_id: optional_id(row, 7)?,
        read_status: parse_value(row, 8, ReadStatus::parse)?,
        created_at: parse_time(row, 9)?,
        read_at: parse_optional_time(row, 10)?,
    })
}

pub fn chat_from_row(row: &Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        id: id(row, 0)?,
        service_provider_id: id(row, 1)?,
        service_provider_name: row.get(2)?,
        customer_id: id(row, 3)?,
        customer_name: row.get(4)?,
        sender_type: parse_value(row, 5, ChatSender::parse)?,
        content: row.get(6)?,
        timestamp: parse_time(row, 7)?,
        status: parse_value(row, 8, ChatStatus::parse)?,
    })
}

pub fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        provider_id: id(row, 0)?,
        cursor: row.get::<_, i64>(1)? as Cursor,
        kind: parse_value(row, 2, EventKind::parse)?,
        subject_id: id(row, 3)?,
        customer_id: optional_id(row, 4)?,
        at: parse_time(row, 5)?,
    })
}

pub fn outbox_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let payload: String = row.get(7)?;
    Ok(OutboxEntry {
        draft: OutboxDraft {
            id: id(row, 0)?,
            target: parse_value(row, 1, OutboxTarget::parse)?,
            event_type: row.get(2)?,
            provider_id: id(row, 3)?,
            customer_id: optional_id(row, 4)?,
            ordering_key: row.get(5)?,
            payload: serde_json::from_str(&payload).map_err(|e| conversion_error(7, format!("bad payload: {e}")))?,
            created_at: time_from_millis(row, 12)?,
        },
        sequence: row.get::<_, i64>(6)?.max(0) as Cursor,
        status: parse_value(row, 8, DeliveryStatus::parse)?,
        attempts: row.get::<_, i64>(9)?.clamp(0, i64::from(u32::MAX)) as u32,
        next_attempt_at: time_from_millis(row, 10)?,
        last_error: row.get(11)?,
        delivered_at: optional_time_from_millis(row, 13)?,
        dead_at: optional_time_from_millis(row, 14)?,
    })
}

pub fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: id(row, 0)?,
        at: parse_time(row, 1)?,
        provider_id: optional_id(row, 2)?,
        username: row.get(3)?,
        operation: row.get(4)?,
        target_id: row.get(5)?,
        ip: row.get(6)?,
        result: row.get(7)?,
        request_id: row.get(8)?,
    })
}
