//! The tickets port on MongoDB. A ticket's history is kept apart from it, in `ticketHistory`
//! ([`super::ticket_history`]), written in the same transaction as the ticket's change.

use super::documents::{date, optional_date, optional_text, Fields, ReadResult};
use super::events::event;
use super::failures::{bad_document, is_duplicate_key};
use super::notifications::{notification_document, notification_event};
use super::read;
use super::search::{appended_reply_grams, ticket_search};
use super::ticket_history::{embedded_history, with_history};
use super::ticket_sla::{owed_alerts_order, owed_alerts_query, push_sla_query, sla_from, sla_order, sla_state};
use super::MongoStore;
use crate::domain::{
    EscalationStatus, EventKind, EventRecord, Id, Notification, OutboxDraft, Page, PageRequest, Ticket, TicketStatus,
    TicketType, Timestamp,
};
use crate::error::{AppError, AppResult};
use crate::store::TicketStore;
use crate::store::{replayed_subject, KeyedWrite, TicketChange, TicketFilter, Written};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use std::future::IntoFuture;

#[async_trait]
impl TicketStore for MongoStore {
    async fn insert_ticket(
        &self,
        ticket: &Ticket,
        notification: &Notification,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<Ticket>> {
        let (provider, id, key) = (&ticket.service_provider_id, &ticket.id, idempotency_key);
        let write_id = notification.id.as_str();
        let drafts = vec![
            event(provider, EventKind::Ticket, id, Some(&ticket.customer_id), ticket.created_at),
            notification_event(notification),
        ];
        let (ticket_doc, notification_doc) = (ticket_document(ticket), notification_document(notification));
        let _queued = self.queue_event_write(provider).await;
        let outcome = self
            .op(async {
                let written = in_transaction!(self, |session| {
                    let claim =
                        self.claim_key(&mut session, provider, key, EventKind::Ticket, id, &ticket.created_at).await?;
                    if let Some(replayed) = claim {
                        return Ok(replayed);
                    }
                    self.tickets.insert_one(&ticket_doc).session(&mut session).await?;
                    self.append_history(&mut session, provider, id, ticket.version, &ticket.history).await?;
                    self.notifications.insert_one(&notification_doc).session(&mut session).await?;
                    let events = self.log_events(&mut session, write_id, drafts.clone()).await?;
                    self.queue_outbox(&mut session, outbox, &events).await?;
                    Ok(KeyedWrite::Created(events))
                })
                .await;
                match written {
                    // The ticket's id is new for this call, so a ticket with it means that an earlier
                    // attempt of this very call committed, ticket, notification and events together,
                    // and only its answer was lost: done, not doubled. Otherwise a concurrent
                    // request with the same key came first.
                    Err(error) if is_duplicate_key(&error) => {
                        if self.tickets.find_one(doc! { "id": id.as_str() }).await?.is_some() {
                            return Ok(KeyedWrite::Created(self.logged_events(provider, write_id).await?));
                        }
                        self.key_taken(provider, key).await?.ok_or(error)
                    }
                    other => other,
                }
            })
            .await?;
        match outcome {
            KeyedWrite::Created(events) => Ok(Written::Created(ticket.clone(), events)),
            KeyedWrite::Replayed { kind, subject } => {
                let subject = replayed_subject(&kind, subject, EventKind::Ticket)?;
                let first = self.ticket(provider, &subject).await?;
                first
                    .map(Written::Replayed)
                    .ok_or_else(|| AppError::internal("an idempotency key names a missing ticket"))
            }
        }
    }

    async fn list_tickets(&self, provider: &Id, filter: &TicketFilter, page: PageRequest) -> AppResult<Page<Ticket>> {
        let (query, order) = (ticket_query(provider, filter), ticket_order_of(filter));
        // One port call: the page, then the histories of the tickets on it.
        let (documents, total, mut histories) = self
            .op(async {
                let (documents, total) = self.page(&self.tickets, query, order, page).await?;
                let ids = read(&documents, |d| Fields::new(d, "ticket").id("id")).unwrap_or_default();
                Ok((documents, total, self.histories(&ids).await?))
            })
            .await?;
        let tickets = read(&documents, ticket_from)?;
        let items = tickets
            .into_iter()
            .map(|ticket| {
                let entries = histories.remove(ticket.id.as_str()).unwrap_or_default();
                with_history(ticket, &entries).map_err(bad_document)
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(Page { items, total, request: page })
    }

    async fn ticket(&self, provider: &Id, id: &Id) -> AppResult<Option<Ticket>> {
        // The ticket and its history are read concurrently; the history counts only if the
        // provider's ticket is found.
        let find = self.tickets.find_one(doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() });
        let ids = [id.clone()];
        let (found, mut histories) =
            self.op(async { tokio::try_join!(find.into_future(), self.histories(&ids)) }).await?;
        let Some(found) = found else { return Ok(None) };
        let entries = histories.remove(id.as_str()).unwrap_or_default();
        ticket_from(&found).and_then(|ticket| with_history(ticket, &entries)).map(Some).map_err(bad_document)
    }

    async fn apply_ticket_change(&self, change: &TicketChange) -> AppResult<Option<Vec<EventRecord>>> {
        let ticket = &change.ticket;
        let filter = doc! {
            "id": ticket.id.as_str(),
            "serviceProviderId": ticket.service_provider_id.as_str(),
            "version": ticket.version as i64,
        };
        let mut update = doc! {
            "$set": ticket_state(ticket),
            "$inc": { "version": 1_i64 },
        };
        update.extend(appended_reply_grams(&change.appended_history).unwrap_or_default());
        let notification = notification_document(&change.notification);
        let first_entry = change.appended_history.first().map(|entry| entry.id.clone());
        let provider = &ticket.service_provider_id;
        let write_id = change.notification.id.as_str();
        let drafts = vec![
            event(provider, EventKind::Ticket, &ticket.id, Some(&ticket.customer_id), ticket.updated_at),
            notification_event(&change.notification),
        ];
        let _queued = self.queue_event_write(provider).await;
        self.op(async {
            let applied = in_transaction!(self, |session| {
                if let Some((key, _)) = &change.claim {
                    if self.key_is_used(&mut session, provider, key).await? {
                        return Ok(None);
                    }
                }
                let updated = self.tickets.update_one(filter.clone(), update.clone()).session(&mut session).await?;
                if updated.matched_count == 0 {
                    // Either another change came first (nothing is written, the caller starts over),
                    // or an earlier attempt of this very change committed and only its answer was
                    // lost. The history entries' ids are new for this change, so finding one tells
                    // which; without this check the caller would apply the change a second time.
                    let Some(first) = &first_entry else { return Ok(None) };
                    let applied = self.history_entry_exists(&mut session, first).await?;
                    return Ok(applied.then(Vec::new));
                }
                if let Some((key, claim)) = &change.claim {
                    self.claim_change_key(&mut session, provider, key, claim, &ticket.updated_at).await?;
                }
                let version = ticket.version + 1;
                self.append_history(&mut session, provider, &ticket.id, version, &change.appended_history).await?;
                self.notifications.insert_one(&notification).session(&mut session).await?;
                let events = self.log_events(&mut session, write_id, drafts.clone()).await?;
                self.queue_outbox(&mut session, &change.outbox, &events).await?;
                Ok(Some(events))
            })
            .await;
            let applied = match applied {
                // A concurrent change claimed the same key first: this one applied nothing.
                Err(error) if change.claim.is_some() && is_duplicate_key(&error) => None,
                other => other?,
            };
            match applied {
                // Applied by an earlier attempt: what it logged.
                Some(events) if events.is_empty() => Ok(Some(self.logged_events(provider, write_id).await?)),
                other => Ok(other),
            }
        })
        .await
    }

    async fn ticket_anywhere(&self, id: &Id) -> AppResult<Option<Ticket>> {
        let find = self.tickets.find_one(doc! { "id": id.as_str() });
        let ids = [id.clone()];
        let (found, mut histories) =
            self.op(async { tokio::try_join!(find.into_future(), self.histories(&ids)) }).await?;
        let Some(found) = found else { return Ok(None) };
        let entries = histories.remove(id.as_str()).unwrap_or_default();
        ticket_from(&found).and_then(|ticket| with_history(ticket, &entries)).map(Some).map_err(bad_document)
    }

    async fn tickets_owed_sla_alerts(&self, at: Timestamp, limit: u32) -> AppResult<Vec<Ticket>> {
        let find = self.tickets.find(owed_alerts_query(&at)).sort(owed_alerts_order()).limit(i64::from(limit));
        let documents = self.op(async { super::collect(find.await?).await }).await?;
        read(&documents, ticket_from)
    }
}

/// The fields a ticket change may set (everything but the identity, the content and the history).
pub(super) fn ticket_state(t: &Ticket) -> Document {
    let mut state = doc! {
        "status": t.status.as_str(),
        "escalationStatus": t.escalation_status.as_str(),
        "escalationReason": optional_text(&t.escalation_reason),
        "escalatedAt": optional_date(&t.escalated_at),
        "assigneeId": optional_text(&t.assignee_id),
        "assigneeName": optional_text(&t.assignee_name),
        "resolution": optional_text(&t.resolution),
        "resolvedAt": optional_date(&t.resolved_at),
        "updatedAt": date(&t.updated_at),
    };
    state.extend(sla_state(t));
    state
}

/// The ticket without its history, which is stored entry by entry in `ticketHistory`.
pub(super) fn ticket_document(t: &Ticket) -> Document {
    let mut document = doc! {
        "id": t.id.as_str(),
        "serviceProviderId": t.service_provider_id.as_str(),
        "customerId": t.customer_id.as_str(),
        "customerName": &t.customer_name,
        "title": &t.title,
        "content": &t.content,
        "type": t.ticket_type.as_str(),
        "createdAt": date(&t.created_at),
        "version": t.version as i64,
        "search": ticket_search(t),
    };
    document.extend(ticket_state(t));
    document
}

/// The ticket of a document, with only the history embedded in it by earlier versions (see
/// [`super::ticket_history`]); [`with_history`] adds the stored entries.
pub(super) fn ticket_from(doc: &Document) -> ReadResult<Ticket> {
    let f = Fields::new(doc, "ticket");
    let history = embedded_history(doc)?;
    Ok(Ticket {
        id: f.id("id")?,
        service_provider_id: f.id("serviceProviderId")?,
        customer_id: f.id("customerId")?,
        customer_name: f.text("customerName")?,
        title: f.text("title")?,
        content: f.text("content")?,
        ticket_type: f.value("type", TicketType::parse)?,
        status: f.value("status", TicketStatus::parse)?,
        escalation_status: f.value("escalationStatus", EscalationStatus::parse)?,
        escalation_reason: f.optional_text("escalationReason")?,
        escalated_at: f.optional_time("escalatedAt")?,
        assignee_id: f.optional_text("assigneeId")?,
        assignee_name: f.optional_text("assigneeName")?,
        resolution: f.optional_text("resolution")?,
        resolved_at: f.optional_time("resolvedAt")?,
        created_at: f.time("createdAt")?,
        updated_at: f.time("updatedAt")?,
        history,
        version: f.number("version")?.max(0) as u64,
        sla: sla_from(doc)?,
    })
}

/// The ticket list's filter; its order is [`ticket_order`].
pub(super) fn ticket_query(provider: &Id, filter: &TicketFilter) -> Document {
    let mut query = doc! { "serviceProviderId": provider.as_str() };
    if let Some(customer) = &filter.customer_id {
        query.insert("customerId", customer.as_str());
    }
    if let Some(status) = filter.status {
        query.insert("status", status.as_str());
    }
    if let Some(ticket_type) = filter.ticket_type {
        query.insert("type", ticket_type.as_str());
    }
    if let Some(sla) = &filter.sla {
        push_sla_query(&mut query, sla);
    }
    query
}

/// The list's order: [`ticket_order`], or most overdue first when filtered by SLA status.
pub(super) fn ticket_order_of(filter: &TicketFilter) -> Document {
    if filter.sla.is_some() {
        sla_order()
    } else {
        ticket_order()
    }
}

/// Most recently updated first.
pub(super) fn ticket_order() -> Document {
    doc! { "updatedAt": -1, "id": 1 }
}

#[cfg(test)]
mod tests {
    use super::super::ticket_history::history_document;
    use super::*;
    use crate::domain::HistoryEntry;
    use chrono::TimeZone;

    #[test]
    fn a_ticket_survives_the_round_trip_and_its_history_joins_any_embedded_by_earlier_versions() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 29, 10, 0, 0).unwrap();
        let ticket = Ticket {
            id: Id::parse("t001").unwrap(),
            service_provider_id: Id::parse("sp001").unwrap(),
            customer_id: Id::parse("c001").unwrap(),
            customer_name: "客户".into(),
            title: "标题".into(),
            content: "内容".into(),
            ticket_type: TicketType::SystemIssue,
            status: TicketStatus::Resolved,
            escalation_status: EscalationStatus::Normal,
            escalation_reason: None,
            escalated_at: None,
            assignee_id: Some("cs001".into()),
            assignee_name: None,
            resolution: Some("已处理".into()),
            resolved_at: Some(at),
            created_at: at,
            updated_at: at,
            history: vec![HistoryEntry {
                id: Id::parse("h001").unwrap(),
                operator_id: "sp001".into(),
                operator_name: "张三".into(),
                action: "create".into(),
                content: "创建".into(),
                timestamp: at,
            }],
            version: 3,
            sla: Default::default(),
        };
        let mut stored = ticket_document(&ticket);
        assert!(stored.get("processingHistory").is_none(), "the history is stored apart");
        let entry = history_document(&ticket.history[0]);
        let back = with_history(ticket_from(&stored).unwrap(), std::slice::from_ref(&entry)).unwrap();
        assert_eq!(back.history, ticket.history);
        stored.insert("processingHistory", vec![entry.clone()]);
        let legacy = with_history(ticket_from(&stored).unwrap(), &[entry]).unwrap();
        assert_eq!(legacy.history.len(), 2, "the embedded entries first, then the stored ones");
        assert_eq!(back.resolved_at, Some(at));
        assert_eq!(back.resolution.as_deref(), Some("已处理"));
        assert_eq!(back.assignee_name, None);
        assert_eq!(back.version, 3);
        assert_eq!(back.status, TicketStatus::Resolved);
    }
}
