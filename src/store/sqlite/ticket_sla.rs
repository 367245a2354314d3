//! A ticket's service-level timers on SQLite: the columns added to `tickets` (to databases made
//! before them, too), the marks kept beside them for filtering by status
//! ([`crate::domain::SlaMarks`]), and the breach job's read.
//!
//! The timers are written by a second statement in the transaction that inserts or changes the
//! ticket, so the ticket statements stay as they were; the marks are derived from the ticket each
//! time, never edited on their own.

use super::rows::{parse_optional_time, time_text};
use super::sql::{text, Conditions};
use crate::domain::{SlaStatus, Ticket, TicketSla};
use crate::store::SlaFilter;
use rusqlite::{params, Connection, Row};

/// The columns, in the order [`sla_from_row`] reads them, and their types.
const COLUMNS: [(&str, &str); 8] = [
    ("first_response_due_at", "TEXT"),
    ("resolution_due_at", "TEXT"),
    ("first_responded_at", "TEXT"),
    ("first_response_alerted", "INTEGER NOT NULL DEFAULT 0"),
    ("resolution_alerted", "INTEGER NOT NULL DEFAULT 0"),
    ("sla_risk_at", "TEXT"),
    ("sla_breach_at", "TEXT"),
    ("sla_alert_at", "TEXT"),
];

/// Adds the timers' columns to a `tickets` table made before them, and their indexes: the list
/// filtered by status, in breach order, and the breach job's look for alerts owed.
pub(super) fn install(connection: &Connection) -> rusqlite::Result<()> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('tickets')")?;
    let present = statement.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    for (column, kind) in COLUMNS {
        if !present.iter().any(|c| c == column) {
            connection.execute_batch(&format!("ALTER TABLE tickets ADD COLUMN {column} {kind}"))?;
        }
    }
    connection.execute_batch(
        "CREATE INDEX IF NOT EXISTS tickets_by_provider_sla_breach ON tickets (service_provider_id, sla_breach_at, id);
         CREATE INDEX IF NOT EXISTS tickets_by_sla_alert ON tickets (sla_alert_at, id) WHERE sla_alert_at IS NOT NULL;",
    )
}

/// Writes the ticket's timers and marks, in the transaction that stored the ticket.
pub(super) fn write_sla(transaction: &Connection, ticket: &Ticket) -> rusqlite::Result<()> {
    let (sla, marks) = (&ticket.sla, ticket.sla_marks());
    transaction
        .prepare_cached(
            "UPDATE tickets SET first_response_due_at = ?, resolution_due_at = ?, first_responded_at = ?,
                 first_response_alerted = ?, resolution_alerted = ?, sla_risk_at = ?, sla_breach_at = ?,
                 sla_alert_at = ?
             WHERE id = ?",
        )?
        .execute(params![
            sla.first_response_due_at.as_ref().map(time_text),
            sla.resolution_due_at.as_ref().map(time_text),
            sla.first_responded_at.as_ref().map(time_text),
            sla.first_response_alerted,
            sla.resolution_alerted,
            marks.risk_at.as_ref().map(time_text),
            marks.breach_at.as_ref().map(time_text),
            marks.alert_at.as_ref().map(time_text),
            ticket.id.as_str(),
        ])?;
    Ok(())
}

/// Reads the timers, whose columns end [`super::tickets::TICKET_COLUMNS`] from `first` on.
pub(super) fn sla_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<TicketSla> {
    Ok(TicketSla {
        first_response_due_at: parse_optional_time(row, first)?,
        resolution_due_at: parse_optional_time(row, first + 1)?,
        first_responded_at: parse_optional_time(row, first + 2)?,
        first_response_alerted: row.get(first + 3)?,
        resolution_alerted: row.get(first + 4)?,
    })
}

/// Narrows a ticket list to one status at the filter's "now", by one comparison on the breach
/// mark (see [`crate::domain::Ticket::sla_marks`]); the list then runs in breach order, which
/// the mark's index gives.
pub(super) fn push_sla_condition(conditions: &mut Conditions, filter: &SlaFilter) {
    let now = text(&time_text(&filter.now));
    match filter.status {
        SlaStatus::Breached => conditions.push("sla_breach_at <= ?", [now]),
        SlaStatus::AtRisk => conditions.push("sla_breach_at > ? AND sla_risk_at <= ?", [now.clone(), now]),
        SlaStatus::OnTrack => conditions.push("sla_breach_at > ? AND sla_risk_at > ?", [now.clone(), now]),
        SlaStatus::Met => conditions.push("sla_breach_at IS NULL AND resolution_due_at IS NOT NULL", []),
    }
}

/// The order of a list filtered by status: most overdue first.
pub(super) const SLA_ORDER: &str = "sla_breach_at, id";

/// One ticket of any provider; the parameter is its id.
pub(super) fn ticket_anywhere_sql() -> String {
    format!("SELECT {} FROM tickets WHERE id = ?", super::tickets::TICKET_COLUMNS)
}

/// Tickets of any provider whose alert is owed at a time (the first parameter), oldest owed
/// first, a batch (the second) at a time.
pub(super) fn owed_alerts_sql() -> String {
    format!(
        "SELECT {} FROM tickets WHERE sla_alert_at IS NOT NULL AND sla_alert_at <= ? ORDER BY sla_alert_at, id LIMIT ?",
        super::tickets::TICKET_COLUMNS
    )
}
