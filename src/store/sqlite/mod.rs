//! The embedded store: one SQLite file under `DATA_DIR`.
//!
//! SQLite calls block, so none runs on the async runtime. Writes go to one writer thread with its
//! own connection (SQLite allows one writer at a time anyway), which commits the changes waiting
//! for it together ([`writer`]); reads go to a fixed set of reader threads, each with its own
//! connection, which WAL mode lets run beside the writer ([`readers`]). One call of the port is one
//! closure on one connection, which is what [`Store::round_trips`] counts.

mod readers;
mod rows;
mod writer;

use self::rows::{
    audit_from_row, chat_from_row, customer_from_row, event_from_row, history_from_row, millis, notification_from_row,
    outbox_from_row, provider_from_row, ticket_from_row, time_text, AUDIT_COLUMNS, CHAT_COLUMNS, CUSTOMER_COLUMNS,
    EVENT_COLUMNS, HISTORY_COLUMNS, NOTIFICATION_COLUMNS, OUTBOX_COLUMNS, PROVIDER_COLUMNS, TICKET_COLUMNS,
};
use super::{
    replayed_subject, CustomerFilter, CustomerStatusChange, KeyedWrite, NotificationFilter, OutboxCounts,
    RefreshTokenRecord, RefreshTokenUse, Store, TicketChange, TicketFilter, TokenStore, Written,
};
use crate::domain::{
    AuditEntry, ChatMessage, ChatSender, ChatStatus, Cursor, Customer, CustomerStatus, DeliveryStatus, EventKind,
    EventRecord, HistoryEntry, Id, Notification, OutboxDraft, OutboxEntry, Page, PageRequest, ReadStatus,
    ServiceProvider, Ticket, Timestamp,
};
use crate::error::{AppError, AppResult};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const SCHEMA: &str = include_str!("schema.sql");
const DATABASE_FILE: &str = "provider-desk.sqlite3";
/// Reader threads: enough to keep every core busy while some reads wait on the disk.
fn reader_count() -> usize {
    std::thread::available_parallelism().map_or(4, |cores| (cores.get() * 2).max(4))
}

pub struct SqliteStore {
    path: PathBuf,
    writer: writer::Writer,
    readers: readers::Readers,
    round_trips: AtomicU64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> AppResult<SqliteStore> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| AppError::internal(format!("cannot create data directory {}: {e}", data_dir.display())))?;
        let path = data_dir.join(DATABASE_FILE);
        let writer = open_connection(&path).map_err(sql_error)?;
        writer.execute_batch(SCHEMA).map_err(sql_error)?;
        let readers =
            (0..reader_count()).map(|_| open_connection(&path)).collect::<Result<_, _>>().map_err(sql_error)?;
        Ok(SqliteStore {
            path,
            writer: writer::Writer::start(writer)?,
            readers: readers::Readers::start(readers)?,
            round_trips: AtomicU64::new(0),
        })
    }

    /// The database file of a data directory.
    pub fn database_path(data_dir: &Path) -> PathBuf {
        data_dir.join(DATABASE_FILE)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T, F>(&self, query: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.readers.read(query).await;
        record_call(started, &result);
        result
    }

    async fn write<T, F>(&self, change: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.writer.write(change).await;
        record_call(started, &result);
        result
    }
}

/// Records one call's latency (waiting for a connection included) in `store_call_duration_seconds`.
fn record_call<T>(started: Instant, result: &AppResult<T>) {
    let labels = [("adapter", "sqlite"), ("outcome", crate::metrics::outcome(result))];
    crate::metrics::histogram("store_call_duration_seconds", &labels).observe(started.elapsed());
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    // WAL lets readers run beside the writer; synchronous=FULL makes every acknowledged write durable.
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )?;
    // A `LIKE ?` (the keyword filters) otherwise makes SQLite re-prepare its statement at every run,
    // in case the pattern allows an index; ours start with `%`, so it never does, and re-preparing
    // cost more than the query itself.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(connection)
}

fn sql_error(error: rusqlite::Error) -> AppError {
    sql_error_of(&error)
}

fn sql_error_of(error: &rusqlite::Error) -> AppError {
    match error {
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(code.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            AppError::Unavailable(error.to_string())
        }
        _ => AppError::Internal(format!("sqlite: {error}")),
    }
}

/// `?, ?, ?` for `count` parameters.
fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

fn id_values(ids: &[Id]) -> Vec<Value> {
    ids.iter().map(|id| text(id.as_str())).collect()
}

/// Escapes `%`, `_` and `\` so user text matches literally in `LIKE ... ESCAPE '\'`.
fn like_pattern(keyword: &str) -> String {
    let mut pattern = String::with_capacity(keyword.len() + 2);
    pattern.push('%');
    for ch in keyword.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// A `WHERE` clause built from optional conditions, with its parameters in order.
#[derive(Default)]
struct Conditions {
    clauses: Vec<&'static str>,
    values: Vec<Value>,
}

impl Conditions {
    /// Rows of one provider: every tenant's query starts here.
    fn of_provider(provider: &Id) -> Conditions {
        let mut conditions = Conditions::default();
        conditions.push("service_provider_id = ?", [text(provider.as_str())]);
        conditions
    }

    fn push(&mut self, clause: &'static str, values: impl IntoIterator<Item = Value>) {
        self.clauses.push(clause);
        self.values.extend(values);
    }

    fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }

    /// Counts the matching rows of `table` and reads one page of them.
    fn page<T>(
        mut self,
        connection: &Connection,
        table: &str,
        columns: &str,
        order: &str,
        page: PageRequest,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<(Vec<T>, u64)> {
        let where_sql = self.sql();
        let count_sql = format!("SELECT COUNT(*) FROM {table} WHERE {where_sql}");
        let total: i64 =
            connection.prepare_cached(&count_sql)?.query_row(params_from_iter(&self.values), |r| r.get(0))?;
        let list_sql = format!("SELECT {columns} FROM {table} WHERE {where_sql} ORDER BY {order} LIMIT ? OFFSET ?");
        self.values.push(Value::Integer(i64::from(page.page_size())));
        self.values.push(Value::Integer(page.offset() as i64));
        let items = connection
            .prepare_cached(&list_sql)?
            .query_map(params_from_iter(&self.values), map)?
            .collect::<rusqlite::Result<Vec<T>>>()?;
        Ok((items, total.max(0) as u64))
    }
}

/// Reads the history of the given tickets, oldest first, grouped by ticket.
fn histories(connection: &Connection, ticket_ids: &[Id]) -> rusqlite::Result<HashMap<String, Vec<HistoryEntry>>> {
    let mut by_ticket: HashMap<String, Vec<HistoryEntry>> = HashMap::new();
    if ticket_ids.is_empty() {
        return Ok(by_ticket);
    }
    let sql = format!(
        "SELECT ticket_id, {HISTORY_COLUMNS} FROM ticket_history WHERE ticket_id IN ({}) ORDER BY rowid",
        placeholders(ticket_ids.len())
    );
    let mut statement = connection.prepare(&sql)?;
    let mut rows = statement.query(params_from_iter(id_values(ticket_ids)))?;
    while let Some(row) = rows.next()? {
        let ticket_id: String = row.get(0)?;
        by_ticket.entry(ticket_id).or_default().push(history_from_row(row, 1)?);
    }
    Ok(by_ticket)
}

fn with_histories(connection: &Connection, mut tickets: Vec<Ticket>) -> rusqlite::Result<Vec<Ticket>> {
    let ids: Vec<Id> = tickets.iter().map(|t| t.id.clone()).collect();
    let mut histories = histories(connection, &ids)?;
    for ticket in &mut tickets {
        ticket.history = histories.remove(ticket.id.as_str()).unwrap_or_default();
    }
    Ok(tickets)
}

fn insert_history(transaction: &rusqlite::Transaction<'_>, ticket: &Id, entry: &HistoryEntry) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO ticket_history (id, ticket_id, operator_id, operator_name, action, content, timestamp)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            entry.id.as_str(),
            ticket.as_str(),
            entry.operator_id,
            entry.operator_name,
            entry.action,
            entry.content,
            time_text(&entry.timestamp),
        ])?;
    Ok(())
}

fn insert_notification_row(transaction: &Connection, n: &Notification) -> rusqlite::Result<()> {
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

/// Appends an event to the provider's log under the next cursor. Runs inside the write
/// transaction, whose lock keeps a provider's cursors gapless and in commit order.
fn log_event(
    transaction: &Connection,
    provider: &Id,
    kind: EventKind,
    subject: &Id,
    customer: Option<&Id>,
    at: Timestamp,
) -> rusqlite::Result<EventRecord> {
    let cursor: i64 = transaction
        .prepare_cached("SELECT COALESCE(MAX(cursor), 0) + 1 FROM events WHERE provider_id = ?")?
        .query_row([provider.as_str()], |row| row.get(0))?;
    transaction
        .prepare_cached(
            "INSERT INTO events (provider_id, cursor, kind, subject_id, customer_id, at) VALUES (?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            provider.as_str(),
            cursor,
            kind.as_str(),
            subject.as_str(),
            customer.map(Id::as_str),
            time_text(&at)
        ])?;
    Ok(EventRecord {
        provider_id: provider.clone(),
        cursor: cursor as Cursor,
        kind,
        subject_id: subject.clone(),
        customer_id: customer.cloned(),
        at,
    })
}

fn notification_event(transaction: &Connection, n: &Notification) -> rusqlite::Result<EventRecord> {
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

/// Queues deliveries under `sequence` (the cursor of the write's first event), inside the write's
/// transaction.
fn queue_outbox(transaction: &Connection, drafts: &[OutboxDraft], sequence: Cursor) -> rusqlite::Result<()> {
    for d in drafts {
        let payload =
            serde_json::to_string(&d.payload).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        transaction
            .prepare_cached(
                "INSERT INTO outbox (id, target, event_type, provider_id, customer_id, ordering_key, sequence, payload,
                     status, attempts, next_attempt_at, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            )?
            .execute(params![
                d.id.as_str(),
                d.target.as_str(),
                d.event_type,
                d.provider_id.as_str(),
                d.customer_id.as_ref().map(Id::as_str),
                d.ordering_key,
                sequence as i64,
                payload,
                DeliveryStatus::Pending.as_str(),
                millis(&d.created_at),
                millis(&d.created_at),
            ])?;
    }
    Ok(())
}

/// The customer fields the SaaS system owns, in the order of the upsert's parameters.
const SYNCED_CUSTOMER_COLUMNS: [&str; 16] = [
    "service_provider_name",
    "name",
    "contact_person",
    "phone",
    "email",
    "region",
    "software_version",
    "port_count",
    "purchase_date",
    "expiry_date",
    "login_frequency",
    "feature_usage",
    "data_input",
    "training_completion",
    "usage_updated_at",
    "last_active_time",
];

/// Inserts a whole customer: who it is and when, then the fields of [`SYNCED_CUSTOMER_COLUMNS`];
/// the parameters are [`customer_values`].
fn customer_insert_sql() -> String {
    format!(
        "INSERT INTO customers (id, service_provider_id, status, created_at, updated_at, {synced}) VALUES ({values})",
        synced = SYNCED_CUSTOMER_COLUMNS.join(", "),
        values = placeholders(5 + SYNCED_CUSTOMER_COLUMNS.len()),
    )
}

/// The parameters of [`customer_insert_sql`], in its column order.
fn customer_values(c: &Customer) -> Vec<Value> {
    vec![
        text(c.id.as_str()),
        text(c.service_provider_id.as_str()),
        text(c.stored_status.as_str()),
        Value::Text(time_text(&c.created_at)),
        Value::Text(time_text(&c.updated_at)),
        text(&c.service_provider_name),
        text(&c.name),
        text(&c.contact_person),
        text(&c.phone),
        text(&c.email),
        text(&c.region),
        text(&c.software_version),
        Value::Integer(c.port_count.into()),
        Value::Text(time_text(&c.purchase_date)),
        Value::Text(time_text(&c.expiry_date)),
        Value::Integer(c.usage.login_frequency.into()),
        Value::Integer(c.usage.feature_usage.into()),
        Value::Integer(c.usage.data_input.into()),
        Value::Integer(c.usage.training_completion.into()),
        Value::Text(time_text(&c.usage_updated_at)),
        Value::Text(time_text(&c.last_active_time)),
    ]
}

/// What an idempotency key holds, if it was used: the kind and id of what it created.
fn used_idempotency_key(transaction: &Connection, provider: &Id, key: &Id) -> rusqlite::Result<Option<(String, Id)>> {
    transaction
        .prepare_cached("SELECT kind, subject_id FROM idempotency_keys WHERE provider_id = ? AND key = ?")?
        .query_row([provider.as_str(), key.as_str()], |row| Ok((row.get(0)?, Id::from_stored(row.get(1)?))))
        .optional()
}

fn record_idempotency_key(
    transaction: &Connection,
    provider: &Id,
    key: &Id,
    kind: EventKind,
    subject: &Id,
    at: Timestamp,
) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO idempotency_keys (provider_id, key, kind, subject_id, created_at) VALUES (?, ?, ?, ?, ?)",
        )?
        .execute(params![provider.as_str(), key.as_str(), kind.as_str(), subject.as_str(), time_text(&at)])
        .map(drop)
}

/// Checks an idempotency key before a write: `Some` if it was used (the write must not happen),
/// else records it for the subject about to be created.
fn claim_key(
    transaction: &Connection,
    provider: &Id,
    key: Option<&Id>,
    kind: EventKind,
    subject: &Id,
    at: Timestamp,
) -> rusqlite::Result<Option<KeyedWrite>> {
    let Some(key) = key else { return Ok(None) };
    if let Some((kind, subject)) = used_idempotency_key(transaction, provider, key)? {
        return Ok(Some(KeyedWrite::Replayed { kind, subject }));
    }
    record_idempotency_key(transaction, provider, key, kind, subject, at)?;
    Ok(None)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> AppResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn count_providers(&self) -> AppResult<u64> {
        self.read(|c| c.query_row("SELECT COUNT(*) FROM providers", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n.max(0) as u64)
    }

    async fn insert_provider(&self, p: &ServiceProvider, password_hash: &str) -> AppResult<()> {
        let (p, hash) = (p.clone(), password_hash.to_owned());
        self.write(move |t| {
            t.execute(
                "INSERT INTO providers (id, username, password_hash, name, contact_person, phone, email, region,
                     status, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    p.id.as_str(),
                    p.username,
                    hash,
                    p.name,
                    p.contact_person,
                    p.phone,
                    p.email,
                    p.region,
                    p.status.as_str(),
                    time_text(&p.created_at),
                    time_text(&p.updated_at),
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn provider_credentials(&self, username: &str) -> AppResult<Option<(ServiceProvider, String)>> {
        let username = username.to_owned();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {PROVIDER_COLUMNS}, password_hash FROM providers WHERE username = ?"))?
                .query_row([username], |row| Ok((provider_from_row(row)?, row.get("password_hash")?)))
                .optional()
        })
        .await
    }

    async fn set_password_hash(&self, username: &str, password_hash: &str, at: Timestamp) -> AppResult<bool> {
        let (username, hash, at) = (username.to_owned(), password_hash.to_owned(), time_text(&at));
        self.write(move |t| {
            t.execute(
                "UPDATE providers SET password_hash = ?, updated_at = ? WHERE username = ?",
                params![hash, at, username],
            )
        })
        .await
        .map(|changed| changed > 0)
    }

    async fn providers_by_ids(&self, ids: &[Id]) -> AppResult<Vec<ServiceProvider>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let sql = format!("SELECT {PROVIDER_COLUMNS} FROM providers WHERE id IN ({})", placeholders(ids.len()));
            c.prepare(&sql)?.query_map(params_from_iter(id_values(&ids)), provider_from_row)?.collect()
        })
        .await
    }

    async fn insert_customer(&self, c: &Customer) -> AppResult<()> {
        let values = customer_values(c);
        self.write(move |t| t.prepare_cached(&customer_insert_sql())?.execute(params_from_iter(values)).map(drop)).await
    }

    async fn list_customers(
        &self,
        provider: &Id,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> AppResult<Page<Customer>> {
        let mut conditions = Conditions::of_provider(provider);
        if let Some(after) = &filter.expiry_after {
            conditions.push("expiry_date > ?", [Value::Text(time_text(after))]);
        }
        if let Some(until) = &filter.expiry_until {
            conditions.push("expiry_date <= ?", [Value::Text(time_text(until))]);
        }
        if let Some(keyword) = &filter.keyword {
            let pattern = like_pattern(keyword);
            conditions.push(
                "(name LIKE ? ESCAPE '\\' OR contact_person LIKE ? ESCAPE '\\')",
                [Value::Text(pattern.clone()), Value::Text(pattern)],
            );
        }
        let (items, total) = self
            .read(move |c| {
                conditions.page(c, "customers", CUSTOMER_COLUMNS, "updated_at DESC, id", page, customer_from_row)
            })
            .await?;
        Ok(Page { items, total, request: page })
    }

    async fn customers_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Customer>> {
        let (provider, ids) = (provider.clone(), ids.to_vec());
        self.read(move |c| {
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE service_provider_id = ? AND id IN ({})",
                placeholders(ids.len())
            );
            let mut values = vec![text(provider.as_str())];
            values.extend(id_values(&ids));
            c.prepare_cached(&sql)?.query_map(params_from_iter(values), customer_from_row)?.collect()
        })
        .await
    }

    async fn customers_anywhere(&self, ids: &[Id]) -> AppResult<Vec<Customer>> {
        let ids = ids.to_vec();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |c| {
            let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id IN ({})", placeholders(ids.len()));
            c.prepare(&sql)?.query_map(params_from_iter(id_values(&ids)), customer_from_row)?.collect()
        })
        .await
    }

    async fn save_customers(&self, customers: &[Customer]) -> AppResult<Vec<bool>> {
        let customers = customers.to_vec();
        self.write(move |t| {
            let updates = SYNCED_CUSTOMER_COLUMNS.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>();
            let sql = format!(
                "{insert}
                 ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, {updates}
                 WHERE customers.service_provider_id = excluded.service_provider_id",
                insert = customer_insert_sql(),
                updates = updates.join(", "),
            );
            let mut saved = Vec::with_capacity(customers.len());
            for c in &customers {
                let changed = t.prepare_cached(&sql)?.execute(params_from_iter(customer_values(c)))?;
                saved.push(changed == 1);
            }
            Ok(saved)
        })
        .await
    }

    async fn customers_with_stale_status(&self, now: Timestamp, limit: u32) -> AppResult<Vec<Customer>> {
        self.read(move |c| {
            let mut stale = Vec::new();
            for status in CustomerStatus::ALL {
                let (after, until) = status.expiry_range(now);
                let mut conditions = Conditions::default();
                conditions.push("status <> ?", [text(status.as_str())]);
                if let Some(after) = after {
                    conditions.push("expiry_date > ?", [Value::Text(time_text(&after))]);
                }
                if let Some(until) = until {
                    conditions.push("expiry_date <= ?", [Value::Text(time_text(&until))]);
                }
                let left = i64::from(limit) - stale.len() as i64;
                if left <= 0 {
                    break;
                }
                conditions.values.push(Value::Integer(left));
                let sql = format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE {} ORDER BY expiry_date, id LIMIT ?",
                    conditions.sql()
                );
                let found = c
                    .prepare_cached(&sql)?
                    .query_map(params_from_iter(&conditions.values), customer_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                stale.extend(found);
            }
            Ok(stale)
        })
        .await
    }

    async fn apply_customer_status(&self, change: &CustomerStatusChange) -> AppResult<Option<Vec<EventRecord>>> {
        let change = change.clone();
        self.write(move |t| {
            let updated = t
                .prepare_cached(
                    "UPDATE customers SET status = ? WHERE id = ? AND service_provider_id = ? AND status = ?",
                )?
                .execute(params![
                    change.to.as_str(),
                    change.customer_id.as_str(),
                    change.provider_id.as_str(),
                    change.from.as_str()
                ])?;
            if updated == 0 {
                return Ok(None);
            }
            let Some(alert) = &change.alert else { return Ok(Some(Vec::new())) };
            let exists: bool = t
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM notifications WHERE id = ?)")?
                .query_row([alert.id.as_str()], |row| row.get(0))?;
            if exists {
                return Ok(Some(Vec::new()));
            }
            let event = notification_event(t, alert)?;
            queue_outbox(t, &change.outbox, event.cursor)?;
            Ok(Some(vec![event]))
        })
        .await
    }

    /// The embedded store keeps no copy of the usage score: it is computed from the stored
    /// measures whenever a customer is read, so there is nothing to rewrite.
    async fn reconcile_usage_scores(&self) -> AppResult<u64> {
        Ok(0)
    }

    async fn insert_ticket(
        &self,
        ticket: &Ticket,
        notification: &Notification,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<Ticket>> {
        let (provider, key) = (ticket.service_provider_id.clone(), idempotency_key.cloned());
        let (stored, notification, outbox) = (ticket.clone(), notification.clone(), outbox.to_vec());
        let ticket = stored.clone();
        let outcome = self
            .write(move |t| {
                let provider = &ticket.service_provider_id;
                let claim = claim_key(t, provider, key.as_ref(), EventKind::Ticket, &ticket.id, ticket.created_at)?;
                if let Some(replayed) = claim {
                    return Ok(replayed);
                }
                t.prepare_cached(
                    "INSERT INTO tickets (id, service_provider_id, customer_id, customer_name, title, content, type,
                     status, escalation_status, escalation_reason, escalated_at, assignee_id, assignee_name,
                     resolution, resolved_at, created_at, updated_at, version)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    ticket.id.as_str(),
                    ticket.service_provider_id.as_str(),
                    ticket.customer_id.as_str(),
                    ticket.customer_name,
                    ticket.title,
                    ticket.content,
                    ticket.ticket_type.as_str(),
                    ticket.status.as_str(),
                    ticket.escalation_status.as_str(),
                    ticket.escalation_reason,
                    ticket.escalated_at.as_ref().map(time_text),
                    ticket.assignee_id,
                    ticket.assignee_name,
                    ticket.resolution,
                    ticket.resolved_at.as_ref().map(time_text),
                    time_text(&ticket.created_at),
                    time_text(&ticket.updated_at),
                    ticket.version as i64,
                ])?;
                for entry in &ticket.history {
                    insert_history(t, &ticket.id, entry)?;
                }
                let ticket_event = log_event(
                    t,
                    provider,
                    EventKind::Ticket,
                    &ticket.id,
                    Some(&ticket.customer_id),
                    ticket.created_at,
                )?;
                queue_outbox(t, &outbox, ticket_event.cursor)?;
                Ok(KeyedWrite::Created(vec![ticket_event, notification_event(t, &notification)?]))
            })
            .await?;
        match outcome {
            KeyedWrite::Created(events) => Ok(Written::Created(stored, events)),
            KeyedWrite::Replayed { kind, subject } => {
                let subject = replayed_subject(&kind, subject, EventKind::Ticket)?;
                let first = self.ticket(&provider, &subject).await?;
                first
                    .map(Written::Replayed)
                    .ok_or_else(|| AppError::internal("an idempotency key names a missing ticket"))
            }
        }
    }

    async fn list_tickets(&self, provider: &Id, filter: &TicketFilter, page: PageRequest) -> AppResult<Page<Ticket>> {
        let mut conditions = Conditions::of_provider(provider);
        if let Some(customer) = &filter.customer_id {
            conditions.push("customer_id = ?", [text(customer.as_str())]);
        }
        if let Some(status) = filter.status {
            conditions.push("status = ?", [text(status.as_str())]);
        }
        if let Some(ticket_type) = filter.ticket_type {
            conditions.push("type = ?", [text(ticket_type.as_str())]);
        }
        let (items, total) = self
            .read(move |c| {
                let (tickets, total) =
                    conditions.page(c, "tickets", TICKET_COLUMNS, "updated_at DESC, id", page, ticket_from_row)?;
                Ok((with_histories(c, tickets)?, total))
            })
            .await?;
        Ok(Page { items, total, request: page })
    }

    async fn ticket(&self, provider: &Id, id: &Id) -> AppResult<Option<Ticket>> {
        let (provider, id) = (provider.clone(), id.clone());
        self.read(move |c| {
            let ticket = c
                .prepare_cached(&format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets WHERE service_provider_id = ? AND id = ?"
                ))?
                .query_row([provider.as_str(), id.as_str()], ticket_from_row)
                .optional()?;
            match ticket {
                Some(ticket) => Ok(with_histories(c, vec![ticket])?.pop()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn apply_ticket_change(&self, change: &TicketChange) -> AppResult<Option<Vec<EventRecord>>> {
        let change = change.clone();
        self.write(move |t| {
            let ticket = &change.ticket;
            let updated = t
                .prepare_cached(
                    "UPDATE tickets SET status = ?, escalation_status = ?, escalation_reason = ?, escalated_at = ?,
                         assignee_id = ?, assignee_name = ?, resolution = ?, resolved_at = ?, updated_at = ?,
                         version = version + 1
                     WHERE id = ? AND service_provider_id = ? AND version = ?",
                )?
                .execute(params![
                    ticket.status.as_str(),
                    ticket.escalation_status.as_str(),
                    ticket.escalation_reason,
                    ticket.escalated_at.as_ref().map(time_text),
                    ticket.assignee_id,
                    ticket.assignee_name,
                    ticket.resolution,
                    ticket.resolved_at.as_ref().map(time_text),
                    time_text(&ticket.updated_at),
                    ticket.id.as_str(),
                    ticket.service_provider_id.as_str(),
                    ticket.version as i64,
                ])?;
            if updated == 0 {
                return Ok(None);
            }
            for entry in &change.appended_history {
                insert_history(t, &ticket.id, entry)?;
            }
            let provider = &ticket.service_provider_id;
            let ticket_event =
                log_event(t, provider, EventKind::Ticket, &ticket.id, Some(&ticket.customer_id), ticket.updated_at)?;
            queue_outbox(t, &change.outbox, ticket_event.cursor)?;
            Ok(Some(vec![ticket_event, notification_event(t, &change.notification)?]))
        })
        .await
    }

    async fn insert_notification(&self, notification: &Notification) -> AppResult<EventRecord> {
        let notification = notification.clone();
        self.write(move |t| notification_event(t, &notification)).await
    }

    async fn list_notifications(
        &self,
        provider: &Id,
        filter: &NotificationFilter,
        page: PageRequest,
    ) -> AppResult<Page<Notification>> {
        let mut conditions = Conditions::of_provider(provider);
        if let Some(kind) = filter.notification_type {
            conditions.push("type = ?", [text(kind.as_str())]);
        }
        if let Some(read_status) = filter.read_status {
            conditions.push("read_status = ?", [text(read_status.as_str())]);
        }
        let (items, total) = self
            .read(move |c| {
                let order = "created_at DESC, id DESC";
                conditions.page(c, "notifications", NOTIFICATION_COLUMNS, order, page, notification_from_row)
            })
            .await?;
        Ok(Page { items, total, request: page })
    }

    async fn unread_count(&self, provider: &Id) -> AppResult<u64> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached("SELECT COUNT(*) FROM notifications WHERE service_provider_id = ? AND read_status = ?")?
                .query_row([provider.as_str(), ReadStatus::Unread.as_str()], |r| r.get::<_, i64>(0))
        })
        .await
        .map(|n| n.max(0) as u64)
    }

    async fn notification(&self, provider: &Id, id: &Id) -> AppResult<Option<Notification>> {
        let (provider, id) = (provider.clone(), id.clone());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE service_provider_id = ? AND id = ?"
            ))?
            .query_row([provider.as_str(), id.as_str()], notification_from_row)
            .optional()
        })
        .await
    }

    async fn mark_notification_read(&self, provider: &Id, id: &Id, at: Timestamp) -> AppResult<Option<Notification>> {
        let (provider, id) = (provider.clone(), id.clone());
        self.write(move |t| {
            t.prepare_cached(
                "UPDATE notifications SET read_status = ?, read_at = COALESCE(read_at, ?)
                 WHERE service_provider_id = ? AND id = ?",
            )?
            .execute(params![
                ReadStatus::Read.as_str(),
                time_text(&at),
                provider.as_str(),
                id.as_str()
            ])?;
            t.prepare_cached(&format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE service_provider_id = ? AND id = ?"
            ))?
            .query_row([provider.as_str(), id.as_str()], notification_from_row)
            .optional()
        })
        .await
    }

    async fn mark_all_notifications_read(&self, provider: &Id, at: Timestamp) -> AppResult<u64> {
        let provider = provider.clone();
        self.write(move |t| {
            t.prepare_cached(
                "UPDATE notifications SET read_status = ?, read_at = ?
                 WHERE service_provider_id = ? AND read_status = ?",
            )?
            .execute(params![ReadStatus::Read.as_str(), time_text(&at), provider.as_str(), ReadStatus::Unread.as_str()])
            .map(|n| n as u64)
        })
        .await
    }

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
                let claim = claim_key(t, provider, key.as_ref(), EventKind::ChatMessage, &m.id, m.timestamp)?;
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
                let event = log_event(t, provider, EventKind::ChatMessage, &m.id, Some(&m.customer_id), m.timestamp)?;
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
            c.prepare_cached(&format!(
                "SELECT {CHAT_COLUMNS} FROM chat_messages WHERE service_provider_id = ? AND id = ?"
            ))?
            .query_row([provider.as_str(), id.as_str()], chat_from_row)
            .optional()
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
        let mut conditions = Conditions::of_provider(provider);
        conditions.push("customer_id = ?", [text(customer.as_str())]);
        let (mut items, total) = self
            .read(move |c| {
                let order = "timestamp DESC, rowid DESC";
                conditions.page(c, "chat_messages", CHAT_COLUMNS, order, page, chat_from_row)
            })
            .await?;
        items.reverse();
        Ok(Page { items, total, request: page })
    }

    async fn events_after(&self, provider: &Id, after: Cursor, limit: u32) -> AppResult<Vec<EventRecord>> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE provider_id = ? AND cursor > ? ORDER BY cursor LIMIT ?"
            ))?
            .query_map(params![provider.as_str(), after as i64, limit], event_from_row)?
            .collect()
        })
        .await
    }

    async fn latest_cursor(&self, provider: &Id) -> AppResult<Cursor> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached("SELECT COALESCE(MAX(cursor), 0) FROM events WHERE provider_id = ?")?
                .query_row([provider.as_str()], |row| row.get::<_, i64>(0))
                .map(|cursor| cursor as Cursor)
        })
        .await
    }

    async fn wechat_openid(&self, provider: &Id) -> AppResult<Option<String>> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached("SELECT openid FROM wechat_bindings WHERE provider_id = ?")?
                .query_row([provider.as_str()], |row| row.get(0))
                .optional()
        })
        .await
    }

    async fn bind_wechat_openid(&self, provider: &Id, openid: &str, at: Timestamp) -> AppResult<()> {
        let (provider, openid) = (provider.clone(), openid.to_owned());
        self.write(move |t| {
            t.execute(
                "INSERT INTO wechat_bindings (provider_id, openid, bound_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (provider_id) DO UPDATE SET openid = ?2, bound_at = ?3",
                params![provider.as_str(), openid, time_text(&at)],
            )
            .map(drop)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> AppResult<Vec<OutboxEntry>> {
        let owner = owner.to_owned();
        let (now, lease_until) = (millis(&now), millis(&lease_until));
        self.write(move |t| {
            let pending = DeliveryStatus::Pending.as_str();
            let heads = t
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox o
                     WHERE o.status = ?1 AND o.next_attempt_at <= ?2 AND (o.lease_until IS NULL OR o.lease_until <= ?2)
                       AND NOT EXISTS (
                           SELECT 1 FROM outbox p
                           WHERE p.status = ?1 AND p.ordering_key = o.ordering_key
                             AND (p.sequence < o.sequence OR (p.sequence = o.sequence AND p.id < o.id)))
                     ORDER BY o.next_attempt_at, o.sequence
                     LIMIT ?3"
                ))?
                .query_map(params![pending, now, limit], outbox_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for entry in &heads {
                t.prepare_cached("UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?")?
                    .execute(params![owner, lease_until, entry.draft.id.as_str()])?;
            }
            Ok(heads)
        })
        .await
    }

    async fn complete_delivery(&self, id: &Id, at: Timestamp) -> AppResult<()> {
        let id = id.clone();
        self.write(move |t| {
            t.prepare_cached(
                "UPDATE outbox SET status = ?, delivered_at = ?, attempts = attempts + 1, lease_owner = NULL,
                     lease_until = NULL
                 WHERE id = ? AND status = ?",
            )?
            .execute(params![
                DeliveryStatus::Delivered.as_str(),
                millis(&at),
                id.as_str(),
                DeliveryStatus::Pending.as_str()
            ])
            .map(drop)
        })
        .await
    }

    async fn fail_delivery(
        &self,
        id: &Id,
        owner: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        at: Timestamp,
    ) -> AppResult<()> {
        let (id, owner, error) = (id.clone(), owner.to_owned(), error.to_owned());
        self.write(move |t| {
            let (status, next, dead_at) = match retry_at {
                Some(retry_at) => (DeliveryStatus::Pending, millis(&retry_at), None),
                None => (DeliveryStatus::Dead, millis(&at), Some(millis(&at))),
            };
            t.prepare_cached(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,
                     dead_at = ?, lease_owner = NULL, lease_until = NULL
                 WHERE id = ? AND status = ? AND lease_owner = ?",
            )?
            .execute(params![
                status.as_str(),
                next,
                error,
                dead_at,
                id.as_str(),
                DeliveryStatus::Pending.as_str(),
                owner
            ])
            .map(drop)
        })
        .await
    }

    async fn dead_letters(&self, limit: u32) -> AppResult<Vec<OutboxEntry>> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = ? ORDER BY dead_at, sequence, id LIMIT ?"
            ))?
            .query_map(params![DeliveryStatus::Dead.as_str(), limit], outbox_from_row)?
            .collect()
        })
        .await
    }

    async fn replay_dead_letters(&self, ids: Option<&[Id]>, at: Timestamp) -> AppResult<u64> {
        if ids.is_some_and(<[Id]>::is_empty) {
            return Ok(0);
        }
        let ids = ids.map(<[Id]>::to_vec);
        self.write(move |t| {
            let mut sql = "UPDATE outbox SET status = ?, attempts = 0, next_attempt_at = ?, dead_at = NULL,
                     lease_owner = NULL, lease_until = NULL
                 WHERE status = ?"
                .to_owned();
            let mut values = vec![
                text(DeliveryStatus::Pending.as_str()),
                Value::Integer(millis(&at)),
                text(DeliveryStatus::Dead.as_str()),
            ];
            if let Some(ids) = &ids {
                sql.push_str(&format!(" AND id IN ({})", placeholders(ids.len())));
                values.extend(id_values(ids));
            }
            t.execute(&sql, params_from_iter(values)).map(|n| n as u64)
        })
        .await
    }

    async fn outbox_counts(&self) -> AppResult<OutboxCounts> {
        self.read(|c| {
            let mut counts = OutboxCounts::default();
            let mut statement = c.prepare_cached("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let n = row.get::<_, i64>(1)?.max(0) as u64;
                match DeliveryStatus::parse(&row.get::<_, String>(0)?) {
                    Some(DeliveryStatus::Pending) => counts.pending = n,
                    Some(DeliveryStatus::Delivered) => counts.delivered = n,
                    Some(DeliveryStatus::Dead) => counts.dead = n,
                    None => {}
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn prune_outbox(&self, before: Timestamp) -> AppResult<u64> {
        self.write(move |t| {
            t.prepare_cached("DELETE FROM outbox WHERE status = ? AND delivered_at < ?")?
                .execute(params![DeliveryStatus::Delivered.as_str(), millis(&before)])
                .map(|n| n as u64)
        })
        .await
    }

    async fn acquire_lease(&self, name: &str, owner: &str, until: Timestamp, now: Timestamp) -> AppResult<bool> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(move |t| {
            t.prepare_cached(
                "INSERT INTO leases (name, owner, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET owner = ?2, until = ?3 WHERE leases.until <= ?4 OR leases.owner = ?2",
            )?
            .execute(params![name, owner, millis(&until), millis(&now)])
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn release_lease(&self, name: &str, owner: &str) -> AppResult<()> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(move |t| t.execute("DELETE FROM leases WHERE name = ? AND owner = ?", [name, owner]).map(drop)).await
    }

    async fn insert_audit_entry(&self, entry: &AuditEntry) -> AppResult<()> {
        let e = entry.clone();
        self.write(move |t| {
            t.prepare_cached(&format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"))?
                .execute(params![
                    e.id.as_str(),
                    time_text(&e.at),
                    e.provider_id.as_ref().map(Id::as_str),
                    e.username,
                    e.operation,
                    e.target_id,
                    e.ip,
                    e.result,
                    e.request_id
                ])
                .map(drop)
        })
        .await
    }

    async fn list_audit_entries(&self, provider: &Id, page: PageRequest) -> AppResult<Page<AuditEntry>> {
        let conditions = Conditions::of_provider(provider);
        let (items, total) = self
            .read(move |c| conditions.page(c, "audit_log", AUDIT_COLUMNS, "at DESC, id DESC", page, audit_from_row))
            .await?;
        Ok(Page { items, total, request: page })
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn revoked_only_here(&self) -> bool {
        true
    }

    async fn ping_tokens(&self) -> AppResult<()> {
        Store::ping(self).await
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> AppResult<()> {
        let jti = jti.to_owned();
        self.write(move |t| {
            t.execute(
                "INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)",
                params![jti, time_text(&expires_at)],
            )?;
            // Entries past their token's expiry refuse nothing any more.
            t.execute("DELETE FROM revoked_access_tokens WHERE expires_at < ?", [time_text(&crate::domain::now())])?;
            Ok(())
        })
        .await
    }

    async fn is_access_revoked(&self, jti: &str, family_id: &str) -> AppResult<bool> {
        let (jti, family_id) = (jti.to_owned(), family_id.to_owned());
        self.read(move |c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = ?)
                     OR EXISTS (SELECT 1 FROM token_families WHERE id = ? AND revoked_at IS NOT NULL)",
            )?
            .query_row([jti, family_id], |r| r.get(0))
        })
        .await
    }

    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> AppResult<()> {
        let record = record.clone();
        self.write(move |t| {
            t.execute("INSERT OR IGNORE INTO token_families (id) VALUES (?)", [&record.family_id])?;
            t.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, provider_id, expires_at) VALUES (?, ?, ?, ?)",
                params![
                    record.token_hash,
                    record.family_id,
                    record.provider_id.as_str(),
                    time_text(&record.expires_at)
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn use_refresh_token(&self, token_hash: &str, at: Timestamp) -> AppResult<RefreshTokenUse> {
        let token_hash = token_hash.to_owned();
        self.write(move |t| {
            let found = t
                .query_row(
                    "SELECT r.family_id, r.provider_id, r.expires_at, r.used_at IS NOT NULL, f.revoked_at IS NOT NULL
                     FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id
                     WHERE r.token_hash = ?",
                    [&token_hash],
                    |row| {
                        let record = RefreshTokenRecord {
                            token_hash: token_hash.clone(),
                            family_id: row.get(0)?,
                            provider_id: Id::from_stored(row.get(1)?),
                            expires_at: rows::parse_time(row, 2)?,
                        };
                        Ok((record, row.get::<_, bool>(3)?, row.get::<_, bool>(4)?))
                    },
                )
                .optional()?;
            Ok(match found {
                None => RefreshTokenUse::Unknown,
                Some((_, _, true)) => RefreshTokenUse::Revoked,
                Some((record, true, false)) => RefreshTokenUse::Reused(record),
                Some((record, false, false)) => {
                    t.execute(
                        "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?",
                        params![time_text(&at), token_hash],
                    )?;
                    RefreshTokenUse::Fresh(record)
                }
            })
        })
        .await
    }

    async fn revoke_token_family(&self, family_id: &str, at: Timestamp) -> AppResult<()> {
        let family_id = family_id.to_owned();
        self.write(move |t| {
            t.execute(
                "INSERT INTO token_families (id, revoked_at) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(revoked_at, ?2)",
                params![family_id, time_text(&at)],
            )
            .map(drop)
        })
        .await
    }

    async fn provider_token_families(&self, provider: &Id) -> AppResult<Vec<String>> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT DISTINCT r.family_id FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id
                 WHERE r.provider_id = ? AND f.revoked_at IS NULL",
            )?
            .query_map([provider.as_str()], |row| row.get(0))?
            .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern("科技"), "%科技%");
        assert_eq!(like_pattern("100%_\\"), "%100\\%\\_\\\\%");
    }
}
