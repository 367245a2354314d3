//! A ticket's service-level timers on MongoDB: fields of the ticket document, with the marks
//! kept beside them for filtering by status ([`crate::domain::SlaMarks`]), rewritten with every
//! change of the ticket; documents written before them have none, and no SLA.

use super::documents::{date, optional_date, Fields, ReadResult};
use crate::domain::{SlaStatus, Ticket, TicketSla, Timestamp};
use crate::store::SlaFilter;
use mongodb::bson::{doc, Bson, Document};

/// The timers and marks as `$set` by every insert and change.
pub(super) fn sla_state(t: &Ticket) -> Document {
    let marks = t.sla_marks();
    doc! {
        "firstResponseDueAt": optional_date(&t.sla.first_response_due_at),
        "resolutionDueAt": optional_date(&t.sla.resolution_due_at),
        "firstRespondedAt": optional_date(&t.sla.first_responded_at),
        "firstResponseAlerted": t.sla.first_response_alerted,
        "resolutionAlerted": t.sla.resolution_alerted,
        "slaRiskAt": optional_date(&marks.risk_at),
        "slaBreachAt": optional_date(&marks.breach_at),
        "slaAlertAt": optional_date(&marks.alert_at),
    }
}

pub(super) fn sla_from(doc: &Document) -> ReadResult<TicketSla> {
    let f = Fields::new(doc, "ticket");
    let flag = |field: &str| match doc.get(field) {
        Some(Bson::Boolean(set)) => *set,
        _ => false,
    };
    Ok(TicketSla {
        first_response_due_at: f.optional_time("firstResponseDueAt")?,
        resolution_due_at: f.optional_time("resolutionDueAt")?,
        first_responded_at: f.optional_time("firstRespondedAt")?,
        first_response_alerted: flag("firstResponseAlerted"),
        resolution_alerted: flag("resolutionAlerted"),
    })
}

/// Narrows the ticket list to one status at the filter's "now", by the breach mark.
pub(super) fn push_sla_query(query: &mut Document, filter: &SlaFilter) {
    let now = date(&filter.now);
    match filter.status {
        SlaStatus::Breached => {
            query.insert("slaBreachAt", doc! { "$lte": now });
        }
        SlaStatus::AtRisk => {
            query.insert("slaBreachAt", doc! { "$gt": now });
            query.insert("slaRiskAt", doc! { "$lte": now });
        }
        SlaStatus::OnTrack => {
            query.insert("slaBreachAt", doc! { "$gt": now });
            query.insert("slaRiskAt", doc! { "$gt": now });
        }
        SlaStatus::Met => {
            query.insert("slaBreachAt", Bson::Null);
            query.insert("resolutionDueAt", doc! { "$ne": Bson::Null });
        }
    }
}

/// A list filtered by status runs most overdue first (index `provider_sla_breach`).
pub(super) fn sla_order() -> Document {
    doc! { "slaBreachAt": 1, "id": 1 }
}

/// Tickets of any provider owed an alert at `at` (index `sla_alert`).
pub(super) fn owed_alerts_query(at: &Timestamp) -> Document {
    doc! { "slaAlertAt": { "$lte": date(at) } }
}

pub(super) fn owed_alerts_order() -> Document {
    doc! { "slaAlertAt": 1, "id": 1 }
}
