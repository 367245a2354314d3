//! The notifications port on SQLite.

use super::events::log_event;
use super::outbox::queue_outbox;
use super::rows::{id, optional_id, parse_optional_time, parse_time, parse_value, time_text};
use super::sql::{text, Conditions, ListQuery};
use super::SqliteStore;
use crate::domain::{
    EventKind, EventRecord, Id, Notification, NotificationType, OutboxDraft, Page, PageRequest, ReadStatus, Timestamp,
};
use crate::error::AppResult;
use crate::store::NotificationFilter;
use crate::store::NotificationStore;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(super) fn insert_notification_row(transaction: &Connection, n: &Notification) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO notifications (id, service_provider_id, type, title, content, related_customer_id,
                 related_customer_name, related_ticket_id, read_status, created_at, read_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            n.id.as_str(),
            n.service_provider_id.as_str(),
            n.notification_type.as_str(),
            n.title,
            n.content,
            n.related_customer_id.as_ref().map(Id::as_str),
            n.related_customer_name,
            n.related_ticket_id.as_ref().map(Id::as_str),
            n.read_status.as_str(),
            time_text(&n.created_at),
            n.read_at.as_ref().map(time_text),
        ])?;
    Ok(())
}

pub(super) fn notification_event(transaction: &Connection, n: &Notification) -> rusqlite::Result<EventRecord> {
    insert_notification_row(transaction, n)?;
    log_event(
        transaction,
        &n.service_provider_id,
        EventKind::Notification,
        &n.id,
        n.related_customer_id.as_ref(),
        n.created_at,
    )
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn insert_notification(&self, notification: &Notification) -> AppResult<EventRecord> {
        let notification = notification.clone();
        self.write(move |t| notification_event(t, &notification)).await
    }

    async fn insert_notification_once(
        &self,
        notification: &Notification,
        outbox: &[OutboxDraft],
    ) -> AppResult<Option<EventRecord>> {
        let (notification, outbox) = (notification.clone(), outbox.to_vec());
        self.write(move |t| {
            let exists = t
                .prepare_cached("SELECT 1 FROM notifications WHERE id = ?")?
                .query_row([notification.id.as_str()], |_| Ok(()))
                .optional()?
                .is_some();
            if exists {
                return Ok(None);
            }
            let event = notification_event(t, &notification)?;
            queue_outbox(t, &outbox, event.cursor)?;
            Ok(Some(event))
        })
        .await
    }

    async fn list_notifications(
        &self,
        provider: &Id,
        filter: &NotificationFilter,
        page: PageRequest,
    ) -> AppResult<Page<Notification>> {
        let list = notification_list(provider, filter);
        let (items, total) = self.read(move |c| list.page(c, page, notification_from_row)).await?;
        Ok(Page { items, total, request: page })
    }

    async fn unread_count(&self, provider: &Id) -> AppResult<u64> {
        let unread = unread_list(provider);
        self.read(move |c| unread.total(c)).await
    }

    async fn notification(&self, provider: &Id, id: &Id) -> AppResult<Option<Notification>> {
        let (provider, id) = (provider.clone(), id.clone());
        self.read(move |c| {
            c.prepare_cached(&notification_sql())?
                .query_row([provider.as_str(), id.as_str()], notification_from_row)
                .optional()
        })
        .await
    }

    async fn mark_notification_read(
        &self,
        provider: &Id,
        id: &Id,
        at: Timestamp,
    ) -> AppResult<Option<(Notification, Option<EventRecord>)>> {
        let (provider, id) = (provider.clone(), id.clone());
        self.write(move |t| {
            let was_unread =
                t.prepare_cached(
                    "UPDATE notifications SET read_status = ?, read_at = COALESCE(read_at, ?)
                     WHERE service_provider_id = ? AND id = ? AND read_status = ?",
                )?
                .execute(params![
                    ReadStatus::Read.as_str(),
                    time_text(&at),
                    provider.as_str(),
                    id.as_str(),
                    ReadStatus::Unread.as_str()
                ])? > 0;
            let Some(notification) = t
                .prepare_cached(&notification_sql())?
                .query_row([provider.as_str(), id.as_str()], notification_from_row)
                .optional()?
            else {
                return Ok(None);
            };
            let event = was_unread.then(|| log_event(t, &provider, EventKind::Inbox, &id, None, at)).transpose()?;
            Ok(Some((notification, event)))
        })
        .await
    }

    async fn mark_all_notifications_read(&self, provider: &Id, at: Timestamp) -> AppResult<(u64, Option<EventRecord>)> {
        let provider = provider.clone();
        self.write(move |t| {
            let marked = t
                .prepare_cached(
                    "UPDATE notifications SET read_status = ?, read_at = ?
                     WHERE service_provider_id = ? AND read_status = ?",
                )?
                .execute(params![
                    ReadStatus::Read.as_str(),
                    time_text(&at),
                    provider.as_str(),
                    ReadStatus::Unread.as_str()
                ])? as u64;
            let event =
                (marked > 0).then(|| log_event(t, &provider, EventKind::Inbox, &provider, None, at)).transpose()?;
            Ok((marked, event))
        })
        .await
    }
}

/// A provider's notifications that `filter` selects, newest first.
pub(super) fn notification_list(provider: &Id, filter: &NotificationFilter) -> ListQuery {
    let mut conditions = Conditions::of_provider(provider);
    if let Some(kind) = filter.notification_type {
        conditions.push("type = ?", [text(kind.as_str())]);
    }
    if let Some(read_status) = filter.read_status {
        conditions.push("read_status = ?", [text(read_status.as_str())]);
    }
    ListQuery { table: "notifications", columns: NOTIFICATION_COLUMNS, order: "created_at DESC, id DESC", conditions }
}

/// A provider's unread notifications, whose total is the unread count (kept: see `totals`).
pub(super) fn unread_list(provider: &Id) -> ListQuery {
    notification_list(provider, &NotificationFilter { read_status: Some(ReadStatus::Unread), ..Default::default() })
}

/// One notification of a provider; the parameters are the provider and the notification id.
pub(super) fn notification_sql() -> String {
    format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE service_provider_id = ? AND id = ?")
}

pub(super) const NOTIFICATION_COLUMNS: &str = "id, service_provider_id, type, title, content, related_customer_id, \
     related_customer_name, related_ticket_id, read_status, created_at, read_at";

pub(super) fn notification_from_row(row: &Row<'_>) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: id(row, 0)?,
        service_provider_id: id(row, 1)?,
        notification_type: parse_value(row, 2, NotificationType::parse)?,
        title: row.get(3)?,
        content: row.get(4)?,
        related_customer_id: optional_id(row, 5)?,
        related_customer_name: row.get(6)?,
        related_ticket_id: optional_id(row, 7)?,
        read_status: parse_value(row, 8, ReadStatus::parse)?,
        created_at: parse_time(row, 9)?,
        read_at: parse_optional_time(row, 10)?,
    })
}
