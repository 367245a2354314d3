//! Builders of the entities the contract tests store, from the domain types directly.
//!
//! Every builder takes what a test varies (the provider, the customer, the time) and fills the rest
//! with plain valid values; times are minutes after one fixed instant, so orderings are explicit.

use chrono::{Duration, TimeZone, Utc};
use provider_desk::domain::*;
use provider_desk::store::*;

/// A new, unique id with this prefix.
pub fn id(prefix: &str) -> Id {
    new_id(prefix)
}

/// Letters and digits no other test run uses (for database names).
pub fn random_suffix() -> String {
    new_id("r").as_str().to_lowercase()
}

/// `minutes` after a fixed instant (2026-01-01T00:00:00Z).
pub fn at(minutes: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// A page request known to be valid.
pub fn page(number: i64, size: i64) -> PageRequest {
    PageRequest::new(number, size).expect("a valid page request")
}

pub fn provider(id: &Id, username: &str) -> ServiceProvider {
    ServiceProvider {
        id: id.clone(),
        username: username.to_owned(),
        name: format!("服务商 {username}"),
        contact_person: "张三".to_owned(),
        phone: "13812345678".to_owned(),
        email: format!("{username}@example.com"),
        region: "北京市朝阳区".to_owned(),
        status: ProviderStatus::Active,
        created_at: at(0),
        updated_at: at(0),
    }
}

/// A customer of `provider`, last updated at `updated`, expiring a year after the fixed instant.
pub fn customer(provider: &Id, name: &str, updated: i64) -> Customer {
    Customer {
        id: id("c"),
        service_provider_id: provider.clone(),
        service_provider_name: "服务商".to_owned(),
        name: name.to_owned(),
        contact_person: "李四".to_owned(),
        phone: "13900001111".to_owned(),
        email: "customer@example.com".to_owned(),
        region: "上海市".to_owned(),
        software_version: "v3.2.1".to_owned(),
        port_count: 5,
        purchase_date: at(-60 * 24 * 300),
        expiry_date: at(60 * 24 * 365),
        stored_status: CustomerStatus::Active,
        usage: UsageMetrics { login_frequency: 80, feature_usage: 70, data_input: 60, training_completion: 50 },
        usage_updated_at: at(updated),
        unresolved_issues: 0,
        last_active_time: at(updated),
        created_at: at(0),
        updated_at: at(updated),
    }
}

/// An open ticket of `customer`, created (and last updated) at `created`, with its create entry.
pub fn ticket(customer: &Customer, created: i64) -> Ticket {
    Ticket {
        id: id("t"),
        service_provider_id: customer.service_provider_id.clone(),
        customer_id: customer.id.clone(),
        customer_name: customer.name.clone(),
        title: "无法登录".to_owned(),
        content: "客户反馈无法登录系统".to_owned(),
        ticket_type: TicketType::SystemIssue,
        status: TicketStatus::Open,
        escalation_status: EscalationStatus::Normal,
        escalation_reason: None,
        escalated_at: None,
        assignee_id: None,
        assignee_name: None,
        resolution: None,
        resolved_at: None,
        created_at: at(created),
        updated_at: at(created),
        history: vec![history("create", created)],
        version: 0,
        sla: Default::default(),
    }
}

pub fn history(action: &str, minutes: i64) -> HistoryEntry {
    HistoryEntry {
        id: id("h"),
        operator_id: "sp".to_owned(),
        operator_name: "张三".to_owned(),
        action: action.to_owned(),
        content: format!("{action} at {minutes}"),
        timestamp: at(minutes),
    }
}

/// An unread notification to `provider`, created at `created`.
pub fn notification(provider: &Id, kind: NotificationType, created: i64) -> Notification {
    Notification {
        id: id("m"),
        service_provider_id: provider.clone(),
        notification_type: kind,
        title: "通知".to_owned(),
        content: format!("created at {created}"),
        related_customer_id: None,
        related_customer_name: None,
        related_ticket_id: None,
        read_status: ReadStatus::Unread,
        created_at: at(created),
        read_at: None,
    }
}

/// The notification announcing a ticket (as the ticket service writes one).
pub fn ticket_notification(ticket: &Ticket, minutes: i64) -> Notification {
    Notification {
        related_customer_id: Some(ticket.customer_id.clone()),
        related_customer_name: Some(ticket.customer_name.clone()),
        related_ticket_id: Some(ticket.id.clone()),
        ..notification(&ticket.service_provider_id, NotificationType::TicketUpdate, minutes)
    }
}

/// The ticket moved to `status` at `minutes`, computed from `ticket` as stored (its version).
pub fn ticket_change(ticket: &Ticket, status: TicketStatus, minutes: i64, outbox: Vec<OutboxDraft>) -> TicketChange {
    let mut next = ticket.clone();
    next.status = status;
    next.updated_at = at(minutes);
    TicketChange {
        notification: ticket_notification(&next, minutes),
        ticket: next,
        appended_history: vec![history("process", minutes)],
        outbox,
        claim: None,
    }
}

/// A message in the conversation of `customer`, sent by `sender` at `minutes`.
pub fn chat(customer: &Customer, sender: ChatSender, minutes: i64) -> ChatMessage {
    ChatMessage {
        id: id("cm"),
        service_provider_id: customer.service_provider_id.clone(),
        service_provider_name: "服务商".to_owned(),
        customer_id: customer.id.clone(),
        customer_name: customer.name.clone(),
        sender_type: sender,
        content: format!("message at {minutes}"),
        timestamp: at(minutes),
        status: ChatStatus::Sent,
    }
}

/// A delivery to the PC customer-service system in `customer`'s conversation, due at `minutes`.
pub fn draft(customer: &Customer, minutes: i64) -> OutboxDraft {
    OutboxDraft {
        id: id("d"),
        target: OutboxTarget::CustomerService,
        event_type: "chat.message".to_owned(),
        provider_id: customer.service_provider_id.clone(),
        customer_id: Some(customer.id.clone()),
        ordering_key: OutboxDraft::conversation_key(&customer.service_provider_id, &customer.id),
        payload: serde_json::json!({ "at": minutes }),
        created_at: at(minutes),
    }
}

/// A WeChat message to `customer`'s provider about it, due at `minutes`.
pub fn wechat_draft(customer: &Customer, minutes: i64) -> OutboxDraft {
    OutboxDraft {
        target: OutboxTarget::Wechat,
        event_type: "wechat.customer_alert".to_owned(),
        ordering_key: OutboxDraft::wechat_key(&customer.service_provider_id),
        ..draft(customer, minutes)
    }
}

pub fn audit_entry(provider: &Id, operation: &str, minutes: i64) -> AuditEntry {
    AuditEntry {
        id: id("a"),
        at: at(minutes),
        provider_id: Some(provider.clone()),
        username: None,
        operation: operation.to_owned(),
        target_id: Some("t1".to_owned()),
        ip: Some("127.0.0.1".to_owned()),
        result: AuditEntry::OK.to_owned(),
        request_id: Some("req-1".to_owned()),
    }
}

/// Stores a customer and answers it.
pub async fn stored_customer(store: &SharedStore, provider: &Id, name: &str, updated: i64) -> Customer {
    let customer = customer(provider, name, updated);
    store.insert_customer(&customer).await.expect("the customer is stored");
    customer
}

/// Stores a ticket of `customer` (with its notification) and answers it as stored.
pub async fn stored_ticket(store: &SharedStore, customer: &Customer, created: i64) -> Ticket {
    let ticket = ticket(customer, created);
    store
        .insert_ticket(&ticket, &ticket_notification(&ticket, created), None, &[])
        .await
        .expect("the ticket is stored");
    ticket
}

/// Stores a chat message and answers it.
pub async fn stored_chat(store: &SharedStore, customer: &Customer, sender: ChatSender, minutes: i64) -> ChatMessage {
    let message = chat(customer, sender, minutes);
    store.insert_chat_message(&message, None, &[]).await.expect("the message is stored");
    message
}

/// The ids of a list, in its order.
pub fn ids<T>(items: &[T], id: impl Fn(&T) -> &Id) -> Vec<Id> {
    items.iter().map(|item| id(item).clone()).collect()
}

/// Stores a provider with a username no other has, and answers its id.
pub async fn stored_provider(store: &SharedStore) -> Id {
    let provider_id = id("sp");
    store.insert_provider(&provider(&provider_id, provider_id.as_str()), "hash").await.expect("the provider is stored");
    provider_id
}
