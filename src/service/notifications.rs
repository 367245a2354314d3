//! Notifications (the spec's "messages", 3.4): listing, reading, and marking read (which the
//! badges hear of, through an `inbox` event).

use super::realtime::Realtime;
use super::Session;
use crate::domain::{now, Id, Notification, Page, PageRequest, Timestamp};
use crate::error::{AppError, AppResult};
use crate::store::{NotificationFilter, NotificationStore, SharedStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct NotificationService {
    notifications: Arc<dyn NotificationStore>,
    realtime: Arc<Realtime>,
}

impl NotificationService {
    pub fn new(store: &SharedStore, realtime: Arc<Realtime>) -> NotificationService {
        NotificationService { notifications: store.clone(), realtime }
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
        let marked = self.notifications.mark_notification_read(&session.provider_id, id, now()).await?;
        let (notification, event) = marked.ok_or(AppError::NotFound("消息"))?;
        self.realtime.publish(event.into_iter().collect()).await;
        Ok(notification)
    }

    /// Marks all unread notifications read; returns how many were unread and when.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id))]
    pub async fn mark_all_read(&self, session: &Session) -> AppResult<(u64, Timestamp)> {
        let at = now();
        let (marked, event) = self.notifications.mark_all_notifications_read(&session.provider_id, at).await?;
        self.realtime.publish(event.into_iter().collect()).await;
        Ok((marked, at))
    }
}
