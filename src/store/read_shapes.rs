//! What the query-plan checks of both adapters share (`sqlite::query_plans`,
//! `mongo::query_shapes`): what kind of read a statement is, which decides what its plan may
//! contain, and the filters of every shape a list port accepts (each subset of its optional fields,
//! with representative values), so that both adapters are checked on the same shapes.

use crate::domain::{Id, NotificationType, ReadStatus, SlaStatus, TicketStatus, TicketType};
use crate::store::{CustomerFilter, NotificationFilter, SlaFilter, TicketFilter};

/// What a read is, which decides what its plan may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadShape {
    /// A page of a list, in the list's order: served by an index in that order, never sorted.
    List,
    /// Rows found by key (a detail, a batch by ids, a page's ticket histories).
    Lookup,
    /// A count over a provider's rows.
    Count,
}

/// Every subset of `n` optional fields, as bit sets.
pub(crate) fn subsets(n: u32) -> impl Iterator<Item = u32> {
    0..(1 << n)
}

pub(crate) fn has(set: u32, field: u32) -> bool {
    set & (1 << field) != 0
}

/// The names of the fields set.
pub(crate) fn fields(set: u32, names: &[&'static str]) -> Vec<&'static str> {
    names.iter().enumerate().filter(|(i, _)| has(set, *i as u32)).map(|(_, name)| *name).collect()
}

pub(crate) fn customer_filter(set: u32) -> CustomerFilter {
    let now = crate::domain::now();
    CustomerFilter {
        expiry_after: has(set, 0).then_some(now),
        expiry_until: has(set, 1).then_some(now),
        keyword: has(set, 2).then(|| "商贸".to_owned()),
    }
}

pub(crate) fn ticket_filter(set: u32) -> TicketFilter {
    TicketFilter {
        customer_id: has(set, 0).then(|| Id::from_stored("c-plan".to_owned())),
        status: has(set, 1).then_some(TicketStatus::ALL[0]),
        ticket_type: has(set, 2).then_some(TicketType::ALL[0]),
        sla: None,
    }
}

/// The ticket list filtered by each SLA status, alone and with every other filter; named by the
/// filter fields set and the status.
pub(crate) fn sla_ticket_filters() -> Vec<(Vec<&'static str>, TicketFilter)> {
    let mut filters = Vec::new();
    for status in SlaStatus::ALL {
        let sla = Some(SlaFilter { status: *status, now: crate::domain::now() });
        filters.push((vec!["sla", status.as_str()], TicketFilter { sla, ..TicketFilter::default() }));
        let all = TicketFilter { sla, ..ticket_filter(0b111) };
        filters.push((vec!["customer_id", "status", "ticket_type", "sla", status.as_str()], all));
    }
    filters
}

pub(crate) fn notification_filter(set: u32) -> NotificationFilter {
    NotificationFilter {
        notification_type: has(set, 0).then_some(NotificationType::ALL[0]),
        read_status: has(set, 1).then_some(ReadStatus::Unread),
    }
}
