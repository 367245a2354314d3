//! The production store: MongoDB (`MONGODB_URI`, database `MONGODB_DB`).
//!
//! # Collections and indexes
//!
//! Documents use the field names of the spec's models (section 4); each area file converts its own
//! documents (`tickets.rs` writes and reads tickets, ...), with the shared plumbing in
//! [`documents`]. The index plan, one index per query the port makes, is in [`indexes`].
//!
//! # Atomicity: transactions
//!
//! A change that touches two documents (a ticket created or changed, with the `ticket_update`
//! notification that announces it; a chat escalated into a ticket) runs in one multi-document
//! transaction, so a crash half-way leaves nothing: either both are stored or neither. A
//! transaction that fails with a transient error (a primary election, a dropped connection) is run
//! again from the start, and a commit whose outcome is unknown is committed again (commit is
//! idempotent). Should a retry meet the work of an earlier attempt that did commit but whose answer
//! was lost, it recognises it by the ids that are new to the call (the ticket's id, the new history
//! entries' ids) and reports success instead of writing again: nothing is doubled.
//!
//! Every write that logs events takes the provider's next cursors with one `$inc` on its
//! `eventCounters` document inside the write's transaction. That document stays locked until the
//! transaction ends (a concurrent writer meets a write conflict and is retried), so a provider's
//! cursors are gapless and follow commit order, as the event log requires.
//!
//! MongoDB offers transactions on replica sets and sharded clusters only, so the store refuses to
//! start on a standalone server and says so; a single-node replica set is enough. A ticket change
//! checks and increments the ticket's `version` (compare-and-set) and inserts its history entries
//! into `ticketHistory` in that transaction (the history is not embedded: it would outgrow MongoDB's
//! 16 MB document limit). Single-document changes need no transaction: a notification is marked
//! read with one update that keeps the first read time.
//!
//! # Failures
//!
//! Retryable writes and reads are on; writes use write concern `majority` unless
//! `MONGODB_WRITE_CONCERN` (or the URI) says otherwise. Every call is bounded by
//! `MONGODB_OPERATION_TIMEOUT_MS`. A server that cannot be reached (no server selected within
//! `MONGODB_SERVER_SELECTION_TIMEOUT_MS`, a network error, a primary stepping down) makes the call
//! answer UNAVAILABLE; the driver keeps monitoring the server and the next call after it is back
//! succeeds, with no restart. At start-up the same conditions stop the server with a clear message.
//!
//! [`StoreHealth::round_trips`](crate::store::StoreHealth::round_trips) counts the port's calls that go to the server, as the SQLite adapter does;
//! independent commands of one call (a page and its total) are sent concurrently.

#[macro_use]
mod transactions;
mod attachments;
mod audit;
mod canned_replies;
mod chat;
mod conversations;
mod customers;
mod documents;
mod events;
mod failures;
mod health;
mod idempotency;
mod indexes;
mod leases;
mod notifications;
mod outbox;
mod providers;
pub mod query_shapes;
mod retention;
mod search;
mod search_backfill;
mod ticket_history;
mod ticket_sla;
mod tickets;
mod tokens;

use self::documents::ReadResult;
use self::failures::{bad_document, is_unreachable, mongo_error};
use crate::config::{MongoSettings, WriteConcernSetting};
use crate::domain::{Id, PageRequest};
use crate::error::{AppError, AppResult};
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{Acknowledgment, ClientOptions, WriteConcern};
use mongodb::{Client, Collection, Cursor, Database};
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Defaults for what neither the environment nor the URI sets.
const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const DEFAULT_MAX_POOL_SIZE: u32 = 20;

/// The oldest server the store supports: MongoDB 4.4 (wire version 9).
const MIN_WIRE_VERSION: i64 = 9;

/// A revoked family with no refresh token to take its expiry from is kept this long: longer than
/// any token issued in it lives.
const ORPHAN_FAMILY_DAYS: i64 = 31;

/// Locks that queue event-logging writes, per provider (see `MongoStore::event_writers`).
const EVENT_WRITER_LOCKS: usize = 64;

pub struct MongoStore {
    client: Client,
    database: Database,
    providers: Collection<Document>,
    customers: Collection<Document>,
    tickets: Collection<Document>,
    ticket_history: Collection<Document>,
    notifications: Collection<Document>,
    chat: Collection<Document>,
    conversations: Collection<Document>,
    inbox_totals: Collection<Document>,
    refresh_tokens: Collection<Document>,
    token_families: Collection<Document>,
    revoked_tokens: Collection<Document>,
    events: Collection<Document>,
    event_counters: Collection<Document>,
    idempotency_keys: Collection<Document>,
    audit_log: Collection<Document>,
    outbox: Collection<Document>,
    leases: Collection<Document>,
    wechat_bindings: Collection<Document>,
    canned_replies: Collection<Document>,
    operation_timeout: Duration,
    round_trips: AtomicU64,
    /// Queues this process's event-logging writes per provider (striped by the provider id's hash):
    /// they all update the provider's cursor counter, and without the queue concurrent ones would
    /// mostly abort each other with write conflicts and be retried.
    event_writers: Vec<tokio::sync::Mutex<()>>,
}

impl MongoStore {
    /// Connects, checks that the server is usable (reachable, 4.4 or newer, able to run
    /// transactions), and creates the indexes.
    pub async fn connect(uri: &str, settings: &MongoSettings) -> AppResult<MongoStore> {
        if uri.starts_with("mongodb+srv://") {
            return Err(AppError::Internal(
                "MONGODB_URI: mongodb+srv:// URIs need DNS SRV lookups, which this build leaves out; \
                 list the hosts in a mongodb://host1,host2/?replicaSet=... URI instead"
                    .to_owned(),
            ));
        }
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| AppError::Internal(format!("MONGODB_URI is not a usable MongoDB URI: {e}")))?;
        options.app_name.get_or_insert_with(|| "provider-desk".to_owned());
        options.retry_writes = Some(true);
        options.retry_reads = Some(true);
        if let Some(setting) = settings.write_concern {
            options.write_concern = Some(write_concern(setting));
        } else if options.write_concern.as_ref().and_then(|w| w.w.as_ref()).is_none() {
            options.write_concern = Some(write_concern(WriteConcernSetting::Majority));
        }
        if options.write_concern.as_ref().is_some_and(|w| w.w == Some(Acknowledgment::Nodes(0))) {
            return Err(AppError::Internal("MONGODB_URI: unacknowledged writes (w=0) are refused".to_owned()));
        }
        if let Some(size) = settings.max_pool_size {
            options.max_pool_size = Some(size);
        }
        options.max_pool_size.get_or_insert(DEFAULT_MAX_POOL_SIZE);
        if let Some(timeout) = settings.connect_timeout {
            options.connect_timeout = Some(timeout);
        }
        options.connect_timeout.get_or_insert(DEFAULT_CONNECT_TIMEOUT);
        if let Some(timeout) = settings.server_selection_timeout {
            options.server_selection_timeout = Some(timeout);
        }
        let selection_timeout = *options.server_selection_timeout.get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        let client = Client::with_options(options)
            .map_err(|e| AppError::Internal(format!("MONGODB_URI is not a usable MongoDB URI: {e}")))?;
        let database = client.database(&settings.database);
        let collection = |name: &str| database.collection::<Document>(name);
        let store = MongoStore {
            providers: collection("providers"),
            customers: collection("customers"),
            tickets: collection("tickets"),
            ticket_history: collection("ticketHistory"),
            notifications: collection("notifications"),
            chat: collection("chatMessages"),
            conversations: collection("conversations"),
            inbox_totals: collection("inboxTotals"),
            refresh_tokens: collection("refreshTokens"),
            token_families: collection("tokenFamilies"),
            revoked_tokens: collection("revokedTokens"),
            events: collection("events"),
            event_counters: collection("eventCounters"),
            idempotency_keys: collection("idempotencyKeys"),
            audit_log: collection("auditLog"),
            outbox: collection("outbox"),
            leases: collection("leases"),
            wechat_bindings: collection("wechatBindings"),
            canned_replies: collection("cannedReplies"),
            client,
            database,
            operation_timeout: settings.operation_timeout.max(selection_timeout),
            round_trips: AtomicU64::new(0),
            event_writers: (0..EVENT_WRITER_LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
        };
        store.check_server(selection_timeout).await?;
        store.create_indexes().await?;
        store.create_attachment_indexes().await?;
        store.build_search_index().await?;
        store.build_conversations().await?;
        Ok(store)
    }

    /// The database this store uses.
    pub fn database(&self) -> &Database {
        &self.database
    }

    async fn check_server(&self, selection_timeout: Duration) -> AppResult<()> {
        let admin = self.client.database("admin");
        let hello = admin.run_command(doc! { "hello": 1 });
        let hello = match tokio::time::timeout(self.operation_timeout, hello).await {
            Ok(Ok(hello)) => hello,
            Ok(Err(error)) if is_unreachable(&error) => {
                return Err(AppError::Unavailable(format!(
                    "cannot reach MongoDB at MONGODB_URI within {} ms (MONGODB_SERVER_SELECTION_TIMEOUT_MS): {error}",
                    selection_timeout.as_millis()
                )))
            }
            Ok(Err(error)) => return Err(AppError::Internal(format!("MongoDB refused the connection check: {error}"))),
            Err(_) => return Err(AppError::Unavailable("cannot reach MongoDB at MONGODB_URI: timed out".to_owned())),
        };
        let wire_version = match hello.get("maxWireVersion") {
            Some(Bson::Int32(v)) => i64::from(*v),
            Some(Bson::Int64(v)) => *v,
            _ => 0,
        };
        if wire_version < MIN_WIRE_VERSION {
            return Err(AppError::Internal(format!(
                "the MongoDB server at MONGODB_URI is too old (wire version {wire_version}); MongoDB 4.4 or newer is needed"
            )));
        }
        let replica_set = hello.get_str("setName").is_ok();
        let sharded = hello.get_str("msg").ok() == Some("isdbgrid");
        if !replica_set && !sharded {
            return Err(AppError::Internal(
                "the MongoDB server at MONGODB_URI is a standalone server; provider-desk writes a ticket change and \
                 its notification in one transaction, which MongoDB runs only on a replica set or a sharded cluster. \
                 A single-node replica set is enough: start mongod with --replSet rs0 and run rs.initiate() once"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// One call of the port: counted, bounded in time, its failure classified.
    async fn op<T>(&self, call: impl IntoFuture<Output = mongodb::error::Result<T>>) -> AppResult<T> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.operation_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(mongo_error(error)),
            Err(_) => Err(AppError::Unavailable(format!(
                "mongodb: no answer within {} ms (MONGODB_OPERATION_TIMEOUT_MS)",
                self.operation_timeout.as_millis()
            ))),
        };
        let labels = [("adapter", "mongodb"), ("outcome", crate::metrics::outcome(&result))];
        crate::metrics::histogram("store_call_duration_seconds", &labels).observe(started.elapsed());
        result
    }

    /// Counts the matches of `filter` and reads one page of them, concurrently.
    async fn page(
        &self,
        collection: &Collection<Document>,
        filter: Document,
        sort: Document,
        page: PageRequest,
    ) -> mongodb::error::Result<(Vec<Document>, u64)> {
        let count = collection.count_documents(filter.clone());
        let find = async {
            let cursor =
                collection.find(filter).sort(sort).skip(page.offset()).limit(i64::from(page.page_size())).await?;
            collect(cursor).await
        };
        let (total, items) = tokio::try_join!(count, find)?;
        Ok((items, total))
    }
}

fn write_concern(setting: WriteConcernSetting) -> WriteConcern {
    let w = match setting {
        WriteConcernSetting::Majority => Acknowledgment::Majority,
        WriteConcernSetting::Nodes(n) => Acknowledgment::Nodes(n),
    };
    WriteConcern::builder().w(w).build()
}

async fn collect(mut cursor: Cursor<Document>) -> mongodb::error::Result<Vec<Document>> {
    let mut documents = Vec::new();
    while cursor.advance().await? {
        documents.push(cursor.deserialize_current()?);
    }
    Ok(documents)
}

fn ids_bson(ids: &[Id]) -> Vec<Bson> {
    ids.iter().map(|id| Bson::String(id.to_string())).collect()
}

fn read<T>(documents: &[Document], from: impl Fn(&Document) -> ReadResult<T>) -> AppResult<Vec<T>> {
    documents.iter().map(|d| from(d).map_err(bad_document)).collect()
}
