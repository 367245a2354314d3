//! The notification (the spec's "message", model 4.4) sent to a provider.

use super::{Customer, Id, NotificationType, ReadStatus, Timestamp};

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: Id,
    pub service_provider_id: Id,
    pub notification_type: NotificationType,
    pub title: String,
    pub content: String,
    pub related_customer_id: Option<Id>,
    pub related_customer_name: Option<String>,
    pub related_ticket_id: Option<Id>,
    pub read_status: ReadStatus,
    pub created_at: Timestamp,
    /// When the provider read it; `None` while unread.
    pub read_at: Option<Timestamp>,
}

impl Notification {
    /// An unread alert to a customer's provider about that customer (expiry, falling usage).
    pub fn customer_alert(id: Id, customer: &Customer, title: &str, content: String, at: Timestamp) -> Notification {
        Notification {
            id,
            service_provider_id: customer.service_provider_id.clone(),
            notification_type: NotificationType::CustomerAlert,
            title: title.to_owned(),
            content,
            related_customer_id: Some(customer.id.clone()),
            related_customer_name: Some(customer.name.clone()),
            related_ticket_id: None,
            read_status: ReadStatus::Unread,
            created_at: at,
            read_at: None,
        }
    }
}
