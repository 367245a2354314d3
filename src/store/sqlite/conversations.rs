//! The inbox port on SQLite: `conversations` keeps one summary row a conversation and
//! `inbox_totals` one row of totals a provider, both written in the transaction of the chat write
//! they follow ([`record_message`], [`record_read`]), by the rules of
//! [`crate::domain::conversation`].
//!
//! A summary is read, changed by the domain's rule and written back, rather than updated by SQL
//! arithmetic: the rule then lives in one place for both adapters, and the single writer makes
//! the read-and-write atomic. Each list has an index in its own order (a partial one for the
//! unread and the waiting), so a page reads its rows and nothing else.

use super::chat::{chat_from_row, CHAT_COLUMNS};
use super::events::log_event;
use super::outbox::queue_outbox;
use super::rows::{id, parse_optional_time, parse_time, parse_value, time_text};
use super::sql::{table_exists, text};
use super::SqliteStore;
use crate::domain::{
    ChatMessage, ChatSender, ChatStatus, Conversation, ConversationFilter, ConversationKey, EventKind, Id, InboxTotals,
    LastMessage, Page, PageRequest,
};
use crate::error::AppResult;
use crate::store::{ConversationStore, MarkedConversation, ReadNotice};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// Creates the tables and their indexes if missing; new tables are filled from the messages
/// already stored, in the same transaction.
pub(super) fn install(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    let exists = table_exists(&transaction, "conversations")?;
    transaction.execute_batch(
        "CREATE TABLE IF NOT EXISTS conversations (
             service_provider_id TEXT NOT NULL,
             customer_id         TEXT NOT NULL,
             last_message_id     TEXT NOT NULL,
             last_sender         TEXT NOT NULL,
             last_preview        TEXT NOT NULL,
             last_at             TEXT NOT NULL,
             unread_messages     INTEGER NOT NULL,
             marked_unread       INTEGER NOT NULL,
             is_unread           INTEGER NOT NULL,
             waiting_since       TEXT,
             PRIMARY KEY (service_provider_id, customer_id)
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS conversations_by_last
             ON conversations (service_provider_id, last_at, customer_id);
         CREATE INDEX IF NOT EXISTS conversations_unread_by_last
             ON conversations (service_provider_id, last_at, customer_id) WHERE is_unread = 1;
         CREATE INDEX IF NOT EXISTS conversations_by_waiting
             ON conversations (service_provider_id, waiting_since, customer_id) WHERE waiting_since IS NOT NULL;
         CREATE TABLE IF NOT EXISTS inbox_totals (
             service_provider_id   TEXT PRIMARY KEY,
             conversations         INTEGER NOT NULL,
             unread_conversations  INTEGER NOT NULL,
             waiting_conversations INTEGER NOT NULL,
             unread_messages       INTEGER NOT NULL
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS chat_unread_from_customers ON chat_messages (service_provider_id, customer_id)
             WHERE sender_type = 'customer' AND status != 'read';",
    )?;
    if !exists {
        let messages = transaction
            .prepare(&format!(
                "SELECT {CHAT_COLUMNS} FROM chat_messages
                 ORDER BY service_provider_id, customer_id, timestamp, rowid"
            ))?
            .query_map([], chat_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut summary: Option<Conversation> = None;
        for message in &messages {
            let same = summary
                .as_ref()
                .is_some_and(|s| s.provider_id == message.service_provider_id && s.customer_id == message.customer_id);
            if !same {
                if let Some(done) = summary.take() {
                    save(&transaction, None, &done)?;
                }
            }
            summary = Some(Conversation::with_message(summary.as_ref(), message));
        }
        if let Some(done) = summary {
            save(&transaction, None, &done)?;
        }
    }
    transaction.commit()
}

/// Sums up a message just stored into its conversation.
pub(super) fn record_message(transaction: &Connection, message: &ChatMessage) -> rusqlite::Result<()> {
    let before = read_conversation(transaction, &message.service_provider_id, &message.customer_id)?;
    save(transaction, before.as_ref(), &Conversation::with_message(before.as_ref(), message))
}

/// Sums up `read` customer messages of a conversation that just moved to READ.
pub(super) fn record_read(transaction: &Connection, provider: &Id, customer: &Id, read: u64) -> rusqlite::Result<()> {
    if read == 0 {
        return Ok(());
    }
    match read_conversation(transaction, provider, customer)? {
        Some(before) => save(transaction, Some(&before), &before.with_read(read)),
        None => Ok(()),
    }
}

/// Writes a conversation's summary and moves the provider's totals by the change from `before`.
fn save(transaction: &Connection, before: Option<&Conversation>, after: &Conversation) -> rusqlite::Result<()> {
    let last = &after.last_message;
    transaction
        .prepare_cached(
            "INSERT OR REPLACE INTO conversations (service_provider_id, customer_id, last_message_id, last_sender,
                 last_preview, last_at, unread_messages, marked_unread, is_unread, waiting_since)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            after.provider_id.as_str(),
            after.customer_id.as_str(),
            last.id.as_str(),
            last.sender.as_str(),
            last.preview,
            time_text(&last.at),
            after.unread_messages as i64,
            after.marked_unread,
            after.is_unread(),
            after.waiting_since.as_ref().map(time_text),
        ])?;
    let change = InboxTotals::change(before, after);
    transaction
        .prepare_cached(
            "INSERT INTO inbox_totals (service_provider_id, conversations, unread_conversations,
                 waiting_conversations, unread_messages)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT DO UPDATE SET conversations = conversations + excluded.conversations,
                 unread_conversations = unread_conversations + excluded.unread_conversations,
                 waiting_conversations = waiting_conversations + excluded.waiting_conversations,
                 unread_messages = unread_messages + excluded.unread_messages",
        )?
        .execute(params![after.provider_id.as_str(), change[0], change[1], change[2], change[3]])?;
    Ok(())
}

const CONVERSATION_COLUMNS: &str = "service_provider_id, customer_id, last_message_id, last_sender, last_preview, \
     last_at, unread_messages, marked_unread, waiting_since";

/// One conversation; the parameters are the provider and the customer.
pub(super) fn conversation_sql() -> String {
    format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE service_provider_id = ? AND customer_id = ?")
}

/// The provider's totals; the parameter is the provider.
pub(super) const INBOX_TOTALS_SQL: &str = "SELECT conversations, unread_conversations, waiting_conversations, \
     unread_messages FROM inbox_totals WHERE service_provider_id = ?";

/// A page of an inbox list; the parameters are the provider, the `after` key's time and customer
/// (`after` only), the limit and the offset.
pub(super) fn conversation_page_sql(filter: ConversationFilter, after: bool) -> String {
    let (condition, key, order) = match filter {
        ConversationFilter::All => ("", "(last_at, customer_id) < (?, ?)", "last_at DESC, customer_id DESC"),
        ConversationFilter::Unread => {
            (" AND is_unread = 1", "(last_at, customer_id) < (?, ?)", "last_at DESC, customer_id DESC")
        }
        ConversationFilter::Waiting => {
            (" AND waiting_since IS NOT NULL", "(waiting_since, customer_id) > (?, ?)", "waiting_since, customer_id")
        }
    };
    let key = if after { format!(" AND {key}") } else { String::new() };
    format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE service_provider_id = ?{condition}{key}
         ORDER BY {order} LIMIT ? OFFSET ?"
    )
}

/// The customer's messages not yet read; the parameters are the provider and the customer.
pub(super) const UNREAD_FROM_CUSTOMER_SQL: &str = "SELECT id FROM chat_messages
     WHERE service_provider_id = ? AND customer_id = ? AND sender_type = 'customer' AND status != 'read'";

fn read_conversation(connection: &Connection, provider: &Id, customer: &Id) -> rusqlite::Result<Option<Conversation>> {
    connection
        .prepare_cached(&conversation_sql())?
        .query_row([provider.as_str(), customer.as_str()], conversation_from_row)
        .optional()
}

fn read_totals(connection: &Connection, provider: &Id) -> rusqlite::Result<InboxTotals> {
    let totals = connection
        .prepare_cached(INBOX_TOTALS_SQL)?
        .query_row([provider.as_str()], |row| {
            let count = |i: usize| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
            Ok(InboxTotals {
                conversations: count(0)?,
                unread_conversations: count(1)?,
                waiting_conversations: count(2)?,
                unread_messages: count(3)?,
            })
        })
        .optional()?;
    Ok(totals.unwrap_or_default())
}

fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        provider_id: id(row, 0)?,
        customer_id: id(row, 1)?,
        last_message: LastMessage {
            id: id(row, 2)?,
            sender: parse_value(row, 3, ChatSender::parse)?,
            preview: row.get(4)?,
            at: parse_time(row, 5)?,
        },
        unread_messages: row.get::<_, i64>(6)?.max(0) as u64,
        marked_unread: row.get(7)?,
        waiting_since: parse_optional_time(row, 8)?,
    })
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn conversations(
        &self,
        provider: &Id,
        filter: ConversationFilter,
        after: Option<&ConversationKey>,
        page: PageRequest,
    ) -> AppResult<Page<Conversation>> {
        let (provider, after) = (provider.clone(), after.cloned());
        self.read(move |c| {
            let total = read_totals(c, &provider)?.of(filter);
            let mut values = vec![text(provider.as_str())];
            if let Some(key) = &after {
                values.extend([text(&time_text(&key.at)), text(key.customer_id.as_str())]);
            }
            let offset = if after.is_some() { 0 } else { page.offset() as i64 };
            values.extend([Value::Integer(i64::from(page.page_size())), Value::Integer(offset)]);
            let items = c
                .prepare_cached(&conversation_page_sql(filter, after.is_some()))?
                .query_map(params_from_iter(values), conversation_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Page { items, total, request: page })
        })
        .await
    }

    async fn conversation(&self, provider: &Id, customer: &Id) -> AppResult<Option<Conversation>> {
        let (provider, customer) = (provider.clone(), customer.clone());
        self.read(move |c| read_conversation(c, &provider, &customer)).await
    }

    async fn inbox_totals(&self, provider: &Id) -> AppResult<InboxTotals> {
        let provider = provider.clone();
        self.read(move |c| read_totals(c, &provider)).await
    }

    async fn mark_conversation_read(
        &self,
        provider: &Id,
        customer: &Id,
        notice: ReadNotice,
    ) -> AppResult<Option<MarkedConversation>> {
        let (provider, customer) = (provider.clone(), customer.clone());
        self.write(move |t| {
            let Some(before) = read_conversation(t, &provider, &customer)? else { return Ok(None) };
            let ids = t
                .prepare_cached(UNREAD_FROM_CUSTOMER_SQL)?
                .query_map([provider.as_str(), customer.as_str()], |row| id(row, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let at = crate::domain::now();
            let (mut read, mut events) = (Vec::new(), Vec::new());
            for message in &ids {
                t.prepare_cached("UPDATE chat_messages SET status = ? WHERE id = ?")?
                    .execute([ChatStatus::Read.as_str(), message.as_str()])?;
                read.push(
                    t.prepare_cached(&format!("SELECT {CHAT_COLUMNS} FROM chat_messages WHERE id = ?"))?
                        .query_row([message.as_str()], chat_from_row)?,
                );
                events.push(log_event(t, &provider, EventKind::ChatStatus, message, Some(&customer), at)?);
            }
            if let (Some(first), false) = (events.first(), read.is_empty()) {
                queue_outbox(t, notice(&read).as_slice(), first.cursor)?;
            }
            let after = before.with_read(read.len() as u64).marked(false);
            if read.is_empty() && before.marked_unread {
                events.push(log_event(t, &provider, EventKind::Inbox, &customer, Some(&customer), at)?);
            }
            save(t, Some(&before), &after)?;
            Ok(Some(MarkedConversation { conversation: after, read, events }))
        })
        .await
    }

    async fn mark_conversation_unread(&self, provider: &Id, customer: &Id) -> AppResult<Option<MarkedConversation>> {
        let (provider, customer) = (provider.clone(), customer.clone());
        self.write(move |t| {
            let Some(before) = read_conversation(t, &provider, &customer)? else { return Ok(None) };
            let after = before.marked(true);
            let mut events = Vec::new();
            if after != before {
                save(t, Some(&before), &after)?;
                events.push(log_event(
                    t,
                    &provider,
                    EventKind::Inbox,
                    &customer,
                    Some(&customer),
                    crate::domain::now(),
                )?);
            }
            Ok(Some(MarkedConversation { conversation: after, read: Vec::new(), events }))
        })
        .await
    }
}
