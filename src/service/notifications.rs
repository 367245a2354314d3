//! Notifications (the spec's "messages", 3.4): listing, reading, and marking read.

use super::Session;
use crate::domain::{now, Id, Notification, Page, PageRequest, Timestamp};
use crate::error::{AppError, AppResult};
use crate::store::{NotificationFilter, NotificationStore, SharedStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct NotificationService {
    notifications: Arc<dyn NotificationStore>,
}

impl NotificationService {
    pub fn new(store: &SharedStore) -> NotificationService {
        NotificationService { notifications: store.clone() }
    }

    pub async fn list(
        &self,
        session: &Session,
        filter: &NotificationFilter,
        page: PageRequest,
    ) -> AppResult<Page<Notification>> {
        self.notifications.list_notifications(&session.provider_id, filter, page).await
    }

    /// How many of the provider's notifications are unread, counted now.
    pub async fn unread_count(&self, session: &Session) -> AppResult<u64> {
        self.notifications.unread_count(&session.provider_id).await
    }

    pub async fn get(&self, session: &Session, id: &Id) -> AppResult<Notification> {
        self.notifications.notification(&session.provider_id, id).await?.ok_or(AppError::NotFound("消息"))
    }

    /// Marks one notification read. Marking a read one again changes nothing and succeeds.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, notification = %id))]
    pub async fn mark_read(&self, session: &Session, id: &Id) -> AppResult<Notification> {
        self.notifications
            .mark_notification_read(&session.provider_id, id, now())
            .await?
            .ok_or(AppError::NotFound("消息"))
    }

    /// Marks all unread notifications read; returns how many were unread and when.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id))]
    pub async fn mark_all_read(&self, session: &Session) -> AppResult<(u64, Timestamp)> {
        let at = now();
        let marked = self.notifications.mark_all_notifications_read(&session.provider_id, at).await?;
        Ok((marked, at))
    }
}
