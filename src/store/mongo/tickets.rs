//! The tickets port on MongoDB.

use super::documents::{date, optional_date, optional_text, Fields, ReadResult};
use super::events::event;
use super::failures::{bad_document, is_duplicate_key};
use super::notifications::{notification_document, notification_event};
use super::read;
use super::MongoStore;
use crate::domain::{
    EscalationStatus, EventKind, EventRecord, HistoryEntry, Id, Notification, OutboxDraft, Page, PageRequest, Ticket,
    TicketStatus, TicketType,
};
use crate::error::{AppError, AppResult};
use crate::store::TicketStore;
use crate::store::{replayed_subject, KeyedWrite, TicketChange, TicketFilter, Written};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};

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
        let (documents, total) =
            self.op(self.page(&self.tickets, query, doc! { "updatedAt": -1, "id": 1 }, page)).await?;
        Ok(Page { items: read(&documents, ticket_from)?, total, request: page })
    }

    async fn ticket(&self, provider: &Id, id: &Id) -> AppResult<Option<Ticket>> {
        let found =
            self.op(self.tickets.find_one(doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() })).await?;
        found.as_ref().map(ticket_from).transpose().map_err(bad_document)
    }

    async fn apply_ticket_change(&self, change: &TicketChange) -> AppResult<Option<Vec<EventRecord>>> {
        let ticket = &change.ticket;
        let filter = doc! {
            "id": ticket.id.as_str(),
            "serviceProviderId": ticket.service_provider_id.as_str(),
            "version": ticket.version as i64,
        };
        let update = doc! {
            "$set": ticket_state(ticket),
            "$inc": { "version": 1_i64 },
            "$push": { "processingHistory": {
                "$each": change.appended_history.iter().map(history_document).collect::<Vec<_>>(),
            } },
        };
        let notification = notification_document(&change.notification);
        let ticket_id = ticket.id.to_string();
        let first_entry = change.appended_history.first().map(|entry| entry.id.to_string());
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
                    let applied = doc! { "id": &ticket_id, "processingHistory.id": first };
                    let found = self.tickets.count_documents(applied).session(&mut session).await?;
                    return Ok((found > 0).then(Vec::new));
                }
                if let Some((key, claim)) = &change.claim {
                    self.claim_change_key(&mut session, provider, key, claim, &ticket.updated_at).await?;
                }
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
}

pub(super) fn history_document(entry: &HistoryEntry) -> Document {
    doc! {
        "id": entry.id.as_str(),
        "operatorId": &entry.operator_id,
        "operatorName": &entry.operator_name,
        "action": &entry.action,
        "content": &entry.content,
        "timestamp": date(&entry.timestamp),
    }
}

/// The fields a ticket change may set (everything but the identity, the content and the history).
pub(super) fn ticket_state(t: &Ticket) -> Document {
    doc! {
        "status": t.status.as_str(),
        "escalationStatus": t.escalation_status.as_str(),
        "escalationReason": optional_text(&t.escalation_reason),
        "escalatedAt": optional_date(&t.escalated_at),
        "assigneeId": optional_text(&t.assignee_id),
        "assigneeName": optional_text(&t.assignee_name),
        "resolution": optional_text(&t.resolution),
        "resolvedAt": optional_date(&t.resolved_at),
        "updatedAt": date(&t.updated_at),
    }
}

/// The whole ticket, its processing history embedded as the spec's model has it.
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
        "processingHistory": t.history.iter().map(history_document).collect::<Vec<_>>(),
    };
    document.extend(ticket_state(t));
    document
}

fn history_from(doc: &Document) -> ReadResult<HistoryEntry> {
    let f = Fields::new(doc, "processingHistory entry");
    Ok(HistoryEntry {
        id: f.id("id")?,
        operator_id: f.text("operatorId")?,
        operator_name: f.text("operatorName")?,
        action: f.text("action")?,
        content: f.text("content")?,
        timestamp: f.time("timestamp")?,
    })
}

pub(super) fn ticket_from(doc: &Document) -> ReadResult<Ticket> {
    let f = Fields::new(doc, "ticket");
    let history = match doc.get("processingHistory") {
        None | Some(Bson::Null) => Vec::new(),
        Some(Bson::Array(entries)) => entries
            .iter()
            .map(|entry| match entry {
                Bson::Document(entry) => history_from(entry),
                other => Err(f.fail("processingHistory", format!("expected documents, found {other:?}"))),
            })
            .collect::<ReadResult<Vec<_>>>()?,
        Some(other) => return Err(f.fail("processingHistory", format!("expected an array, found {other:?}"))),
    };
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_ticket_survives_the_round_trip_with_its_history() {
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
        };
        let back = ticket_from(&ticket_document(&ticket)).unwrap();
        assert_eq!(back.history, ticket.history);
        assert_eq!(back.resolved_at, Some(at));
        assert_eq!(back.resolution.as_deref(), Some("已处理"));
        assert_eq!(back.assignee_name, None);
        assert_eq!(back.version, 3);
        assert_eq!(back.status, TicketStatus::Resolved);
    }
}
