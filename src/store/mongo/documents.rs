//! Mapping between MongoDB documents and domain types. Field names are those of the spec's data
//! models (section 4: `serviceProviderId`, `contactPerson`, `processingHistory`, `readStatus`, ...);
//! times are BSON dates. What is stored is read back exactly; a value outside its value set means
//! the document was written by something else and is reported, not guessed at.

use crate::domain::{
    usage, AuditEntry, ChatMessage, ChatSender, ChatStatus, Cursor, Customer, CustomerStatus, DeliveryStatus,
    EscalationStatus, EventKind, EventRecord, HistoryEntry, Id, Notification, NotificationType, OutboxDraft,
    OutboxEntry, OutboxTarget, ProviderStatus, ReadStatus, ServiceProvider, Ticket, TicketStatus, TicketType,
    Timestamp, UsageMetrics,
};
use mongodb::bson::{doc, Bson, DateTime, Document};

/// A document that could not be read back, with what was wrong.
pub type ReadResult<T> = Result<T, String>;

pub fn date(time: &Timestamp) -> DateTime {
    DateTime::from_millis(time.timestamp_millis())
}

pub fn optional_date(time: &Option<Timestamp>) -> Bson {
    time.as_ref().map_or(Bson::Null, |t| Bson::DateTime(date(t)))
}

pub(super) fn optional_text(text: &Option<String>) -> Bson {
    text.as_ref().map_or(Bson::Null, |t| Bson::String(t.clone()))
}

pub(super) fn optional_id(id: &Option<Id>) -> Bson {
    id.as_ref().map_or(Bson::Null, |t| Bson::String(t.to_string()))
}

/// Typed access to the fields of one stored document, naming the field in every error.
pub(super) struct Fields<'a> {
    doc: &'a Document,
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(doc: &'a Document, what: &'static str) -> Fields<'a> {
        Fields { doc, what }
    }

    pub(super) fn fail(&self, field: &str, problem: impl std::fmt::Display) -> String {
        format!("{} document {:?}: field {field}: {problem}", self.what, self.doc.get("id"))
    }

    pub(super) fn text(&self, field: &str) -> ReadResult<String> {
        match self.doc.get(field) {
            Some(Bson::String(text)) => Ok(text.clone()),
            other => Err(self.fail(field, format!("expected a string, found {other:?}"))),
        }
    }

    pub(super) fn optional_text(&self, field: &str) -> ReadResult<Option<String>> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::String(text)) => Ok(Some(text.clone())),
            other => Err(self.fail(field, format!("expected a string or null, found {other:?}"))),
        }
    }

    pub(super) fn id(&self, field: &str) -> ReadResult<Id> {
        self.text(field).map(Id::from_stored)
    }

    pub(super) fn optional_id(&self, field: &str) -> ReadResult<Option<Id>> {
        self.optional_text(field).map(|v| v.map(Id::from_stored))
    }

    pub(super) fn time(&self, field: &str) -> ReadResult<Timestamp> {
        match self.doc.get(field) {
            Some(Bson::DateTime(time)) => chrono::DateTime::from_timestamp_millis(time.timestamp_millis())
                .ok_or_else(|| self.fail(field, "a date out of range")),
            other => Err(self.fail(field, format!("expected a date, found {other:?}"))),
        }
    }

    pub(super) fn optional_time(&self, field: &str) -> ReadResult<Option<Timestamp>> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(_) => self.time(field).map(Some),
        }
    }

    /// A number, however the writer typed it (mongoose writes doubles).
    pub(super) fn number(&self, field: &str) -> ReadResult<i64> {
        match self.doc.get(field) {
            Some(Bson::Int32(n)) => Ok(i64::from(*n)),
            Some(Bson::Int64(n)) => Ok(*n),
            Some(Bson::Double(n)) if n.fract() == 0.0 && n.is_finite() => Ok(*n as i64),
            other => Err(self.fail(field, format!("expected a whole number, found {other:?}"))),
        }
    }

    pub(super) fn value<T>(&self, field: &str, parse: fn(&str) -> Option<T>) -> ReadResult<T> {
        let text = self.text(field)?;
        parse(&text).ok_or_else(|| self.fail(field, format!("unexpected value {text:?}")))
    }

    pub(super) fn percent(&self, usage: &Document, field: &str) -> ReadResult<u8> {
        Fields::new(usage, self.what).number(field).map(|n| n.clamp(0, 100) as u8)
    }
}

// --- providers ---

/// The provider with its bcrypt hash in `password`, the spec's field for it.
pub fn provider_document(p: &ServiceProvider, password_hash: &str) -> Document {
    doc! {
        "id": p.id.as_str(),
        "username": &p.username,
        "password": password_hash,
        "name": &p.name,
        "contactPerson": &p.contact_person,
        "phone": &p.phone,
        "email": &p.email,
        "region": &p.region,
        "status": p.status.as_str(),
        "createdAt": date(&p.created_at),
        "updatedAt": date(&p.updated_at),
    }
}

pub fn provider_from(doc: &Document) -> ReadResult<ServiceProvider> {
    let f = Fields::new(doc, "provider");
    Ok(ServiceProvider {
        id: f.id("id")?,
        username: f.text("username")?,
        name: f.text("name")?,
        contact_person: f.text("contactPerson")?,
        phone: f.text("phone")?,
        email: f.text("email")?,
        region: f.text("region")?,
        status: f.value("status", ProviderStatus::parse)?,
        created_at: f.time("createdAt")?,
        updated_at: f.time("updatedAt")?,
    })
}

pub fn password_hash_from(doc: &Document) -> ReadResult<String> {
    Fields::new(doc, "provider").text("password")
}

// --- customers ---

/// The customer as stored. `usageScore` is written for readers of the raw data (it follows from
/// the four measures, which never change apart from it); `unresolvedIssues` is not stored at all,
/// it is counted from the tickets whenever a customer is read.
pub fn customer_document(c: &Customer) -> Document {
    doc! {
        "id": c.id.as_str(),
        "serviceProviderId": c.service_provider_id.as_str(),
        "serviceProviderName": &c.service_provider_name,
        "name": &c.name,
        "contactPerson": &c.contact_person,
        "phone": &c.phone,
        "email": &c.email,
        "region": &c.region,
        "softwareVersion": &c.software_version,
        "portCount": i64::from(c.port_count),
        "purchaseDate": date(&c.purchase_date),
        "expiryDate": date(&c.expiry_date),
        "status": c.stored_status.as_str(),
        "usageScore": i32::from(usage::total_score(&c.usage)),
        "usageMetrics": {
            "loginFrequency": i32::from(c.usage.login_frequency),
            "featureUsage": i32::from(c.usage.feature_usage),
            "dataInput": i32::from(c.usage.data_input),
            "trainingCompletion": i32::from(c.usage.training_completion),
        },
        "usageUpdatedAt": date(&c.usage_updated_at),
        "lastActiveTime": date(&c.last_active_time),
        "createdAt": date(&c.created_at),
        "updatedAt": date(&c.updated_at),
    }
}

/// The fields of a customer that the SaaS system owns (see `Store::save_customers`), with the
/// usage score that follows from its measures.
pub fn synced_customer_fields(c: &Customer) -> Document {
    let mut fields = customer_document(c);
    for owned_here in ["id", "serviceProviderId", "status", "createdAt"] {
        fields.remove(owned_here);
    }
    fields
}

/// The usage measures of a customer document (`usageMetrics`).
pub fn usage_metrics_from(doc: &Document) -> ReadResult<UsageMetrics> {
    let f = Fields::new(doc, "customer");
    let usage = doc.get_document("usageMetrics").map_err(|e| f.fail("usageMetrics", e))?;
    Ok(UsageMetrics {
        login_frequency: f.percent(usage, "loginFrequency")?,
        feature_usage: f.percent(usage, "featureUsage")?,
        data_input: f.percent(usage, "dataInput")?,
        training_completion: f.percent(usage, "trainingCompletion")?,
    })
}

pub fn customer_from(doc: &Document, unresolved_issues: u32) -> ReadResult<Customer> {
    let f = Fields::new(doc, "customer");
    let usage = doc.get_document("usageMetrics").map_err(|e| f.fail("usageMetrics", e))?;
    let port_count = f.number("portCount")?;
    Ok(Customer {
        id: f.id("id")?,
        service_provider_id: f.id("serviceProviderId")?,
        service_provider_name: f.text("serviceProviderName")?,
        name: f.text("name")?,
        contact_person: f.text("contactPerson")?,
        phone: f.text("phone")?,
        email: f.text("email")?,
        region: f.text("region")?,
        software_version: f.text("softwareVersion")?,
        port_count: u32::try_from(port_count).map_err(|_| f.fail("portCount", "out of range"))?,
        purchase_date: f.time("purchaseDate")?,
        expiry_date: f.time("expiryDate")?,
        stored_status: f.value("status", CustomerStatus::parse)?,
        usage: UsageMetrics {
            login_frequency: f.percent(usage, "loginFrequency")?,
            feature_usage: f.percent(usage, "featureUsage")?,
            data_input: f.percent(usage, "dataInput")?,
            training_completion: f.percent(usage, "trainingCompletion")?,
        },
        usage_updated_at: f.time("usageUpdatedAt")?,
        unresolved_issues,
        last_active_time: f.time("lastActiveTime")?,
        created_at: f.time("createdAt")?,
        updated_at: f.time("updatedAt")?,
    })
}

// --- tickets ---

pub fn history_document(entry: &HistoryEntry) -> Document {
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
pub fn ticket_state(t: &Ticket) -> Document {
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
pub fn ticket_document(t: &Ticket) -> Document {
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

pub fn ticket_from(doc: &Document) -> ReadResult<Ticket> {
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

// --- notifications ---

pub fn notification_document(n: &Notification) -> Document {
    doc! {
        "id": n.id.as_str(),
        "serviceProviderId": n.service_provider_id.as_str(),
        "type": n.notification_type.as_str(),
        "title": &n.title,
        "content": &n.content,
        "relatedCustomerId": optional_id(&n.related_customer_id),
        "relatedCustomerName": optional_text(&n.related_customer_name),
        "relatedTicketId": optional_id(&n.related_ticket_id),
        "readStatus": n.read_status.as_str(),
        "createdAt": date(&n.created_at),
        "readAt": optional_date(&n.read_at),
    }
}

pub fn notification_from(doc: &Document) -> ReadResult<Notification> {
    let f = Fields::new(doc, "notification");
    Ok(Notification {
        id: f.id("id")?,
        service_provider_id: f.id("serviceProviderId")?,
        notification_type: f.value("type", NotificationType::parse)?,
        title: f.text("title")?,
        content: f.text("content")?,
        related_customer_id: f.optional_id("relatedCustomerId")?,
        related_customer_name: f.optional_text("relatedCustomerName")?,
        related_ticket_id: f.optional_id("relatedTicketId")?,
        read_status: f.value("readStatus", ReadStatus::parse)?,
        created_at: f.time("createdAt")?,
        read_at: f.optional_time("readAt")?,
    })
}

// --- chat ---

pub fn chat_document(m: &ChatMessage) -> Document {
    doc! {
        "id": m.id.as_str(),
        "serviceProviderId": m.service_provider_id.as_str(),
        "serviceProviderName": &m.service_provider_name,
        "customerId": m.customer_id.as_str(),
        "customerName": &m.customer_name,
        "senderType": m.sender_type.as_str(),
        "content": &m.content,
        "timestamp": date(&m.timestamp),
        "status": m.status.as_str(),
    }
}

pub fn chat_from(doc: &Document) -> ReadResult<ChatMessage> {
    let f = Fields::new(doc, "chat message");
    Ok(ChatMessage {
        id: f.id("id")?,
        service_provider_id: f.id("serviceProviderId")?,
        service_provider_name: f.text("serviceProviderName")?,
        customer_id: f.id("customerId")?,
        customer_name: f.text("customerName")?,
        sender_type: f.value("senderType", ChatSender::parse)?,
        content: f.text("content")?,
        timestamp: f.time("timestamp")?,
        status: f.value("status", ChatStatus::parse)?,
    })
}

/// Reads a refresh-token document's fields back (`familyId`, `providerId`, `expiresAt`).
pub fn refresh_token_from(doc: &Document) -> ReadResult<(String, Id, Timestamp, bool)> {
    let f = Fields::new(doc, "refresh token");
    Ok((f.text("familyId")?, f.id("providerId")?, f.time("expiresAt")?, f.optional_time("usedAt")?.is_some()))
}

/// An entry of the event log. `writeId` names the write that logged it (the new ticket's, the
/// notification's or the message's id), so a retried write can find what its first attempt logged.
pub fn event_document(event: &EventRecord, write_id: &str) -> Document {
    doc! {
        "providerId": event.provider_id.as_str(),
        "cursor": event.cursor as i64,
        "kind": event.kind.as_str(),
        "subjectId": event.subject_id.as_str(),
        "customerId": optional_id(&event.customer_id),
        "at": date(&event.at),
        "writeId": write_id,
    }
}

pub fn event_from(doc: &Document) -> ReadResult<EventRecord> {
    let fields = Fields::new(doc, "event");
    let cursor = match doc.get("cursor") {
        Some(Bson::Int64(cursor)) if *cursor > 0 => *cursor as Cursor,
        Some(Bson::Int32(cursor)) if *cursor > 0 => *cursor as Cursor,
        other => return Err(fields.fail("cursor", format!("expected a positive integer, found {other:?}"))),
    };
    let kind = fields.text("kind")?;
    Ok(EventRecord {
        provider_id: Id::from_stored(fields.text("providerId")?),
        cursor,
        kind: EventKind::parse(&kind).ok_or_else(|| fields.fail("kind", format!("unknown value {kind:?}")))?,
        subject_id: Id::from_stored(fields.text("subjectId")?),
        customer_id: fields.optional_text("customerId")?.map(Id::from_stored),
        at: fields.time("at")?,
    })
}

// --- the outbox ---

/// A queued delivery. The payload is kept as JSON text, so every attempt sends the same bytes.
pub fn outbox_document(d: &OutboxDraft, sequence: Cursor) -> Document {
    doc! {
        "id": d.id.as_str(),
        "target": d.target.as_str(),
        "eventType": &d.event_type,
        "serviceProviderId": d.provider_id.as_str(),
        "customerId": optional_id(&d.customer_id),
        "orderingKey": &d.ordering_key,
        "sequence": sequence as i64,
        "payload": d.payload.to_string(),
        "status": DeliveryStatus::Pending.as_str(),
        "attempts": 0_i32,
        "nextAttemptAt": date(&d.created_at),
        "leaseOwner": Bson::Null,
        "leaseUntil": Bson::Null,
        "lastError": Bson::Null,
        "createdAt": date(&d.created_at),
        "deliveredAt": Bson::Null,
        "deadAt": Bson::Null,
    }
}

pub fn outbox_from(doc: &Document) -> ReadResult<OutboxEntry> {
    let f = Fields::new(doc, "outbox");
    let payload = f.text("payload")?;
    Ok(OutboxEntry {
        draft: OutboxDraft {
            id: f.id("id")?,
            target: f.value("target", OutboxTarget::parse)?,
            event_type: f.text("eventType")?,
            provider_id: f.id("serviceProviderId")?,
            customer_id: f.optional_id("customerId")?,
            ordering_key: f.text("orderingKey")?,
            payload: serde_json::from_str(&payload).map_err(|e| f.fail("payload", e))?,
            created_at: f.time("createdAt")?,
        },
        sequence: f.number("sequence")?.max(0) as Cursor,
        status: f.value("status", DeliveryStatus::parse)?,
        attempts: f.number("attempts")?.clamp(0, i64::from(u32::MAX)) as u32,
        next_attempt_at: f.time("nextAttemptAt")?,
        last_error: f.optional_text("lastError")?,
        delivered_at: f.optional_time("deliveredAt")?,
        dead_at: f.optional_time("deadAt")?,
    })
}

pub fn audit_document(entry: &AuditEntry) -> Document {
    doc! {
        "id": entry.id.as_str(),
        "at": date(&entry.at),
        "serviceProviderId": optional_id(&entry.provider_id),
        "username": optional_text(&entry.username),
        "operation": entry.operation.as_str(),
        "targetId": optional_text(&entry.target_id),
        "ip": optional_text(&entry.ip),
        "result": entry.result.as_str(),
        "requestId": optional_text(&entry.request_id),
    }
}

pub fn audit_from(doc: &Document) -> ReadResult<AuditEntry> {
    let fields = Fields::new(doc, "audit entry");
    Ok(AuditEntry {
        id: Id::from_stored(fields.text("id")?),
        at: fields.time("at")?,
        provider_id: fields.optional_text("serviceProviderId")?.map(Id::from_stored),
        username: fields.optional_text("username")?,
        operation: fields.text("operation")?,
        target_id: fields.optional_text("targetId")?,
        ip: fields.optional_text("ip")?,
        result: fields.text("result")?,
        request_id: fields.optional_text("requestId")?,
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

    #[test]
    fn numbers_written_as_doubles_are_read() {
        let stored = doc! { "portCount": 5.0, "bad": 1.5 };
        let f = Fields::new(&stored, "customer");
        assert_eq!(f.number("portCount"), Ok(5));
        assert!(f.number("bad").is_err());
    }
}
