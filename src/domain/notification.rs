//! The notification (the spec's "message", model 4.4) sent to a provider.

use super::{Id, NotificationType, ReadStatus, Timestamp};

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
