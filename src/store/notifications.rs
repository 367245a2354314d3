//! The notifications port: a provider's notifications, their unread count, marking read.

use crate::domain::{
    EventRecord, Id, Notification, NotificationType, OutboxDraft, Page, PageRequest, ReadStatus, Timestamp,
};
use crate::error::AppResult;
use async_trait::async_trait;

/// Which notifications to list.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub notification_type: Option<NotificationType>,
    pub read_status: Option<ReadStatus>,
}

#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    async fn insert_notification(&self, notification: &Notification) -> AppResult<EventRecord>;
    /// Stores the notification unless one with its id is stored already: a notification whose id
    /// is derived from what it announces is then its own once-only marker. With it, in the same
    /// transaction, queues `outbox` under its event's cursor. `None` if it existed (nothing queued).
    async fn insert_notification_once(
        &self,
        notification: &Notification,
        outbox: &[OutboxDraft],
    ) -> AppResult<Option<EventRecord>>;
    /// Notifications of a provider, newest first.
    async fn list_notifications(
        &self,
        provider: &Id,
        filter: &NotificationFilter,
        page: PageRequest,
    ) -> AppResult<Page<Notification>>;
    async fn unread_count(&self, provider: &Id) -> AppResult<u64>;
    async fn notification(&self, provider: &Id, id: &Id) -> AppResult<Option<Notification>>;
    /// Marks one notification read (keeping the first read time if it already was), logging an
    /// `inbox` event when it was unread (the unread count moved).
    async fn mark_notification_read(
        &self,
        provider: &Id,
        id: &Id,
        at: Timestamp,
    ) -> AppResult<Option<(Notification, Option<EventRecord>)>>;
    /// Marks every unread notification of the provider read; answers how many changed, and the
    /// `inbox` event logged if any did.
    async fn mark_all_notifications_read(&self, provider: &Id, at: Timestamp) -> AppResult<(u64, Option<EventRecord>)>;
}
