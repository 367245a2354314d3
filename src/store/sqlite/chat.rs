//! The chat port on SQLite.
//!
//! A conversation's order is (timestamp, rowid): the time to the second, then the order stored.
//! A keyset window compares that pair as a row value against the cursor message's own pair, which
//! `chat_by_conversation` (its implicit rowid last) serves as a range, in order, without a sort.

use super::conversations::{record_message, record_read};
use super::events::log_event;
use super::idempotency::claim_key;
use super::outbox::queue_outbox;
use super::rows::{id, parse_time, parse_value, time_text};
use super::search::index_chat_message;
use super::sql::{text, Conditions, ListQuery};
use super::SqliteStore;
use crate::domain::{ChatMessage, ChatSender, ChatStatus, EventKind, EventRecord, Id, OutboxDraft, Page, PageRequest};
use crate::error::{AppError, AppResult};
use crate::store::{replayed_subject, KeyedWrite, Written};
use crate::store::{ChatCursor, ChatStore, ChatWindow};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

#[async_trait]
impl ChatStore for SqliteStore {
    async fn insert_chat_message(
        &self,
        message: &ChatMessage,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<ChatMessage>> {
        let (provider, key) = (message.service_provider_id.clone(), idempotency_key.cloned());
        let (m, outbox) = (message.clone(), outbox.to_vec());
        let outcome = self
            .write(move |t| {
                let provider = &m.service_provider_id;
                // Logged, and its key dated, when it arrives, not with the message's own time (a PC
                // system's, days old for a late backlog): the replay window, the event retention and
                // the key prune count from the log's time.
                let logged_at = crate::domain::now();
                let claim = claim_key(t, provider, key.as_ref(), EventKind::ChatMessage, &m.id, logged_at)?;
                if let Some(replayed) = claim {
                    return Ok(replayed);
                }
                t.prepare_cached(
                    "INSERT INTO chat_messages (id, service_provider_id, service_provider_name, customer_id,
                         customer_name, sender_type, content, timestamp, status)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    m.id.as_str(),
                    provider.as_str(),
                    m.service_provider_name,
                    m.customer_id.as_str(),
                    m.customer_name,
                    m.sender_type.as_str(),
                    m.content,
                    time_text(&m.timestamp),
                    m.status.as_str(),
                ])?;
                index_chat_message(t, m.id.as_str())?;
                record_message(t, &m)?;
                let event = log_event(t, provider, EventKind::ChatMessage, &m.id, Some(&m.customer_id), logged_at)?;
                queue_outbox(t, &outbox, event.cursor)?;
                Ok(KeyedWrite::Created(vec![event]))
            })
            .await?;
        match outcome {
            KeyedWrite::Created(events) => Ok(Written::Created(message.clone(), events)),
            KeyedWrite::Replayed { kind, subject } => {
                let subject = replayed_subject(&kind, subject, EventKind::ChatMessage)?;
                let first = self.chat_message(&provider, &subject).await?;
                first
                    .map(Written::Replayed)
                    .ok_or_else(|| AppError::internal("an idempotency key names a missing message"))
            }
        }
    }

    async fn chat_message(&self, provider: &Id, id: &Id) -> AppResult<Option<ChatMessage>> {
        let (provider, id) = (provider.clone(), id.clone());
        self.read(move |c| {
            c.prepare_cached(&chat_message_sql())?.query_row([provider.as_str(), id.as_str()], chat_from_row).optional()
        })
        .await
    }

    async fn chat_messages_anywhere(&self, ids: &[Id]) -> AppResult<Vec<ChatMessage>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut statement = c.prepare(&chat_messages_anywhere_sql(ids.len()))?;
            let rows = statement.query_map(rusqlite::params_from_iter(ids.iter().map(Id::as_str)), chat_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn advance_chat_status(
        &self,
        provider: &Id,
        customer: &Id,
        ids: &[Id],
        sender: ChatSender,
        status: ChatStatus,
    ) -> AppResult<Vec<(ChatMessage, EventRecord)>> {
        let (provider, customer, ids) = (provider.clone(), customer.clone(), ids.to_vec());
        // Statuses only move forward: sent < delivered < read.
        let earlier: Vec<&'static str> =
            ChatStatus::ALL.iter().take_while(|s| **s != status).map(|s| s.as_str()).collect();
        self.write(move |t| {
            let at = crate::domain::now();
            let mut moved = Vec::new();
            for id in &ids {
                let placeholders = vec!["?"; earlier.len()].join(", ");
                let mut values: Vec<Value> = vec![
                    text(status.as_str()),
                    text(provider.as_str()),
                    text(customer.as_str()),
                    text(id.as_str()),
                    text(sender.as_str()),
                ];
                values.extend(earlier.iter().map(|s| text(s)));
                let updated = t
                    .prepare_cached(&format!(
                        "UPDATE chat_messages SET status = ?
                         WHERE service_provider_id = ? AND customer_id = ? AND id = ? AND sender_type = ?
                           AND status IN ({placeholders})"
                    ))?
                    .execute(params_from_iter(values))?;
                if updated == 0 {
                    continue;
                }
                let message = t
                    .prepare_cached(&format!("SELECT {CHAT_COLUMNS} FROM chat_messages WHERE id = ?"))?
                    .query_row([id.as_str()], chat_from_row)?;
                let event = log_event(t, &provider, EventKind::ChatStatus, id, Some(&customer), at)?;
                moved.push((message, event));
            }
            if status == ChatStatus::Read && sender == ChatSender::Customer {
                record_read(t, &provider, &customer, moved.len() as u64)?;
            }
            Ok(moved)
        })
        .await
    }

    async fn list_chat_messages(
        &self,
        provider: &Id,
        customer: &Id,
        page: PageRequest,
    ) -> AppResult<Page<ChatMessage>> {
        let list = conversation_list(provider, customer);
        let (mut items, total) = self.read(move |c| list.page(c, page, chat_from_row)).await?;
        items.reverse();
        Ok(Page { items, total, request: page })
    }

    async fn chat_window(
        &self,
        provider: &Id,
        customer: &Id,
        cursor: &ChatCursor,
        limit: u32,
    ) -> AppResult<Option<ChatWindow>> {
        let older = matches!(cursor, ChatCursor::Before(_));
        let (provider, customer, at) = (provider.clone(), customer.clone(), cursor.message_id().clone());
        self.read(move |c| {
            let found = c
                .prepare_cached(CHAT_CURSOR_SQL)?
                .query_row([provider.as_str(), customer.as_str(), at.as_str()], |row| {
                    Ok((row.get::<_, Value>(0)?, row.get::<_, i64>(1)?))
                })
                .optional()?;
            let Some((timestamp, rowid)) = found else { return Ok(None) };
            let total = conversation_list(&provider, &customer).total(c)?;
            let values = [
                text(provider.as_str()),
                text(customer.as_str()),
                timestamp,
                Value::Integer(rowid),
                Value::Integer(i64::from(limit) + 1),
            ];
            let mut items = c
                .prepare_cached(&chat_window_sql(older))?
                .query_map(params_from_iter(values), chat_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let has_more = items.len() > limit as usize;
            items.truncate(limit as usize);
            if older {
                items.reverse();
            }
            Ok(Some(ChatWindow { items, total, has_more }))
        })
        .await
    }
}

/// The cursor message's place in its conversation; the parameters are the provider, the customer
/// and the message id, so another conversation's message is not found.
pub(super) const CHAT_CURSOR_SQL: &str =
    "SELECT timestamp, rowid FROM chat_messages WHERE service_provider_id = ? AND customer_id = ? AND id = ?";

/// The messages next to a cursor, nearest first: older ones newest first (`older`), or newer ones
/// oldest first. The parameters are the provider, the customer, the cursor's timestamp and rowid,
/// and the limit.
pub(super) fn chat_window_sql(older: bool) -> String {
    let (comparison, direction) = if older { ("<", "DESC") } else { (">", "ASC") };
    format!(
        "SELECT {CHAT_COLUMNS} FROM chat_messages
         WHERE service_provider_id = ? AND customer_id = ? AND (timestamp, rowid) {comparison} (?, ?)
         ORDER BY timestamp {direction}, rowid {direction} LIMIT ?"
    )
}

/// A conversation's messages, newest first (a page is reversed to read oldest first).
pub(super) fn conversation_list(provider: &Id, customer: &Id) -> ListQuery {
    let mut conditions = Conditions::of_provider(provider);
    conditions.push("customer_id = ?", [text(customer.as_str())]);
    ListQuery { table: "chat_messages", columns: CHAT_COLUMNS, order: "timestamp DESC, rowid DESC", conditions }
}

/// One message of a provider; the parameters are the provider and the message id.
pub(super) fn chat_message_sql() -> String {
    format!("SELECT {CHAT_COLUMNS} FROM chat_messages WHERE service_provider_id = ? AND id = ?")
}

/// The messages of any provider with `count` ids (the parameters).
pub(super) fn chat_messages_anywhere_sql(count: usize) -> String {
    format!("SELECT {CHAT_COLUMNS} FROM chat_messages WHERE id IN ({})", super::sql::placeholders(count))
}

pub(super) const CHAT_COLUMNS: &str = "id, service_provider_id, service_provider_name, customer_id, customer_name, \
     sender_type, content, timestamp, status";

pub(super) fn chat_from_row(row: &Row<'_>) -> rusqlite::Result<ChatMessage> {
    Ok(ChatMessage {
        id: id(row, 0)?,
        service_provider_id: id(row, 1)?,
        service_provider_name: row.get(2)?,
        customer_id: id(row, 3)?,
        customer_name: row.get(4)?,
        sender_type: parse_value(row, 5, ChatSender::parse)?,
        content: row.get(6)?,
        timestamp: parse_time(row, 7)?,
        status: parse_value(row, 8, ChatStatus::parse)?,
    })
}
