//! The notifications port on MongoDB.

use super::documents::{date, optional_date, optional_id, optional_text, Fields, ReadResult};
use super::events::event;
use super::failures::{bad_document, is_duplicate_key};
use super::read;
use super::MongoStore;
use crate::domain::{
    EventKind, EventRecord, Id, Notification, NotificationType, OutboxDraft, Page, PageRequest, ReadStatus, Timestamp,
};
use crate::error::{AppError, AppResult};
use crate::store::NotificationFilter;
use crate::store::NotificationStore;
use async_trait::async_trait;
use mongodb::bson::{doc, Document};

pub(super) fn notification_event(n: &Notification) -> EventRecord {
    event(&n.service_provider_id, EventKind::Notification, &n.id, n.related_customer_id.as_ref(), n.created_at)
}

#[async_trait]
impl NotificationStore for MongoStore {
    async fn insert_notification(&self, notification: &Notification) -> AppResult<EventRecord> {
        let (provider, write_id) = (&notification.service_provider_id, notification.id.as_str());
        let document = notification_document(notification);
        let drafts = vec![notification_event(notification)];
        let _queued = self.queue_event_write(provider).await;
        let mut events = self
            .op(async {
                let logged = in_transaction!(self, |session| {
                    self.notifications.insert_one(&document).session(&mut session).await?;
                    self.log_events(&mut session, write_id, drafts.clone()).await
                })
                .await;
                match logged {
                    // The notification's id is new for this call: an earlier attempt committed.
                    Err(error) if is_duplicate_key(&error) => self.logged_events(provider, write_id).await,
                    other => other,
                }
            })
            .await?;
        events.pop().ok_or_else(|| AppError::internal("a stored notification logged no event"))
    }

    async fn insert_notification_once(
        &self,
        notification: &Notification,
        outbox: &[OutboxDraft],
    ) -> AppResult<Option<EventRecord>> {
        let (provider, write_id) = (&notification.service_provider_id, notification.id.as_str());
        let document = notification_document(notification);
        let drafts = vec![notification_event(notification)];
        let _queued = self.queue_event_write(provider).await;
        let logged = self
            .op(async {
                let logged = in_transaction!(self, |session| {
                    let by_id = doc! { "id": write_id };
                    if self.notifications.find_one(by_id).session(&mut session).await?.is_some() {
                        return Ok(None);
                    }
                    self.notifications.insert_one(&document).session(&mut session).await?;
                    let events = self.log_events(&mut session, write_id, drafts.clone()).await?;
                    self.queue_outbox(&mut session, outbox, &events).await?;
                    Ok(Some(events))
                })
                .await;
                match logged {
                    // Stored by a concurrent writer, or by an earlier attempt whose answer was
                    // lost: either way not by this call.
                    Err(error) if is_duplicate_key(&error) => Ok(None),
                    other => other,
                }
            })
            .await?;
        Ok(logged.and_then(|mut events| events.pop()))
    }

    async fn list_notifications(
        &self,
        provider: &Id,
        filter: &NotificationFilter,
        page: PageRequest,
    ) -> AppResult<Page<Notification>> {
        let query = notification_query(provider, filter);
        let (documents, total) = self.op(self.page(&self.notifications, query, notification_order(), page)).await?;
        Ok(Page { items: read(&documents, notification_from)?, total, request: page })
    }

    async fn unread_count(&self, provider: &Id) -> AppResult<u64> {
        self.op(self.notifications.count_documents(unread_query(provider))).await
    }

    async fn notification(&self, provider: &Id, id: &Id) -> AppResult<Option<Notification>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() };
        let found = self.op(self.notifications.find_one(query)).await?;
        found.as_ref().map(notification_from).transpose().map_err(bad_document)
    }

    async fn mark_notification_read(
        &self,
        provider: &Id,
        id: &Id,
        at: Timestamp,
    ) -> AppResult<Option<(Notification, Option<EventRecord>)>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() };
        let mut unread = query.clone();
        unread.insert("readStatus", ReadStatus::Unread.as_str());
        // A pipeline update, so the first read time is kept in the same atomic step.
        let update = vec![doc! { "$set": {
            "readStatus": ReadStatus::Read.as_str(),
            "readAt": { "$ifNull": ["$readAt", date(&at)] },
        } }];
        let write_id = format!("read:{}", crate::domain::new_id("w"));
        let _queued = self.queue_event_write(provider).await;
        let (found, mut events) = self
            .op(in_transaction!(self, |session| {
                let moved = self.notifications.update_one(unread.clone(), update.clone()).session(&mut session).await?;
                let found = self.notifications.find_one(query.clone()).session(&mut session).await?;
                let mut events = Vec::new();
                if found.is_some() && moved.modified_count > 0 {
                    let drafts = vec![event(provider, EventKind::Inbox, id, None, at)];
                    events = self.log_events(&mut session, &write_id, drafts).await?;
                }
                Ok((found, events))
            }))
            .await?;
        let Some(found) = found else { return Ok(None) };
        let notification = notification_from(&found).map_err(bad_document)?;
        Ok(Some((notification, events.pop())))
    }

    async fn mark_all_notifications_read(&self, provider: &Id, at: Timestamp) -> AppResult<(u64, Option<EventRecord>)> {
        let query = doc! { "serviceProviderId": provider.as_str(), "readStatus": ReadStatus::Unread.as_str() };
        let update = doc! { "$set": { "readStatus": ReadStatus::Read.as_str(), "readAt": date(&at) } };
        let write_id = format!("read-all:{}", crate::domain::new_id("w"));
        let _queued = self.queue_event_write(provider).await;
        let (marked, mut events) = self
            .op(in_transaction!(self, |session| {
                let marked =
                    self.notifications.update_many(query.clone(), update.clone()).session(&mut session).await?;
                let mut events = Vec::new();
                if marked.modified_count > 0 {
                    let drafts = vec![event(provider, EventKind::Inbox, provider, None, at)];
                    events = self.log_events(&mut session, &write_id, drafts).await?;
                }
                Ok((marked.modified_count, events))
            }))
            .await?;
        Ok((marked, events.pop()))
    }
}

pub(super) fn notification_document(n: &Notification) -> Document {
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

pub(super) fn notification_from(doc: &Document) -> ReadResult<Notification> {
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

/// The notification list's filter; its order is [`notification_order`].
pub(super) fn notification_query(provider: &Id, filter: &NotificationFilter) -> Document {
    let mut query = doc! { "serviceProviderId": provider.as_str() };
    if let Some(kind) = filter.notification_type {
        query.insert("type", kind.as_str());
    }
    if let Some(read_status) = filter.read_status {
        query.insert("readStatus", read_status.as_str());
    }
    query
}

/// Newest first.
pub(super) fn notification_order() -> Document {
    doc! { "createdAt": -1, "id": -1 }
}

/// A provider's unread notifications (the unread count).
pub(super) fn unread_query(provider: &Id) -> Document {
    doc! { "serviceProviderId": provider.as_str(), "readStatus": ReadStatus::Unread.as_str() }
}
