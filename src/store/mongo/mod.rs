//! The production store: MongoDB (`MONGODB_URI`, database `MONGODB_DB`).
//!
//! # Collections and indexes
//!
//! Documents use the field names of the spec's models (section 4). Indexes are created at every
//! start (creating an index that exists is a no-op), one per query the port makes:
//!
//! | collection | index | serves |
//! | --- | --- | --- |
//! | `providers` | `id` unique, `username` unique, `email` unique | sign-in, provider lookups |
//! | `customers` | `id` unique | customer lookups (loaders, detail) |
//! | | `serviceProviderId, updatedAt -1, id` | the customer list, newest first |
//! | | `serviceProviderId, expiryDate` | the list filtered by status (an expiry-date range) |
//! | | `serviceProviderId, name` and `serviceProviderId, contactPerson` | keyword search: the regex runs over index keys of one provider, not over documents |
//! | `tickets` | `id` unique | ticket detail and changes |
//! | | `serviceProviderId, updatedAt -1, id` | the ticket list |
//! | | `serviceProviderId, status, updatedAt -1` | the list filtered by status |
//! | | `serviceProviderId, customerId, status` | a customer's tickets, and counting its unresolved ones |
//! | `notifications` | `id` unique | detail, mark read |
//! | | `serviceProviderId, createdAt -1, id -1` | the list |
//! | | `serviceProviderId, readStatus, createdAt -1` | unread count, unread filter, mark all read |
//! | `chatMessages` | `id` unique | |
//! | | `serviceProviderId, customerId, timestamp -1, _id -1` | a conversation, latest page first |
//! | `refreshTokens` | `tokenHash` unique; `expiresAt` TTL | refresh; expired tokens are removed by the server |
//! | `tokenFamilies` | `id` unique; `expiresAt` TTL | family revocation |
//! | `revokedTokens` | `jti` unique; `expiresAt` TTL | access-token revocation |
//! | `events` | `providerId, cursor` unique | the event log: replay after a cursor |
//! | | `providerId, writeId` | a retried write finding what its first attempt logged |
//! | `eventCounters` | `_id` (the provider id) | the provider's latest cursor |
//! | `idempotencyKeys` | `providerId, key` unique | a retried request with the same key |
//! | `auditLog` | `id` unique; `serviceProviderId, at -1, id -1` | a provider's audit entries, newest first |
//! | `customers` | `expiryDate, status` | the status job: customers whose stored status lags behind |
//! | `outbox` | `id` unique | completing, failing, replaying a delivery |
//! | | `status, orderingKey, sequence, id` | the dispatcher: the first pending delivery of each conversation |
//! | | `status, deliveredAt` | pruning delivered entries |
//! | | `status, deadAt` | listing dead letters |
//! | `leases` | `_id` (the lease's name) | one process at a time runs a scheduled job |
//! | `wechatBindings` | `providerId` unique | the provider's WeChat openid |
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
//! start on a standalone server and says so; a single-node replica set is enough. Single-document
//! changes need no transaction: the ticket's history is appended with `$push` in the same update
//! that checks and increments its `version` (compare-and-set), a notification is marked read with
//! one update that keeps the first read time.
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
//! [`Store::round_trips`] counts the port's calls that go to the server, as the SQLite adapter does;
//! independent commands of one call (a page and its total) are sent concurrently.

mod documents;

use self::documents::{
    audit_document, audit_from, chat_document, chat_from, customer_document, customer_from, date, event_document,
    event_from, history_document, notification_document, notification_from, outbox_document, outbox_from,
    password_hash_from, provider_document, provider_from, refresh_token_from, synced_customer_fields, ticket_document,
    ticket_from, ticket_state, ReadResult,
};
use super::{
    replayed_subject, CustomerFilter, CustomerStatusChange, KeyedWrite, NotificationFilter, OutboxCounts,
    RefreshTokenRecord, RefreshTokenUse, Store, TicketChange, TicketFilter, TokenStore, Written,
};
use crate::config::{MongoSettings, WriteConcernSetting};
use crate::domain::{
    usage, AuditEntry, ChatMessage, ChatSender, ChatStatus, Cursor as EventCursor, Customer, CustomerStatus,
    DeliveryStatus, EventKind, EventRecord, Id, Notification, OutboxDraft, OutboxEntry, Page, PageRequest, ReadStatus,
    ServiceProvider, Ticket, TicketStatus, Timestamp, UsageMetrics,
};
use crate::error::{AppError, AppResult};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, ReturnDocument, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Cursor, Database, IndexModel};
use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Defaults for what neither the environment nor the URI sets.
const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_POOL_SIZE: u32 = 20;
/// The oldest server the store supports: MongoDB 4.4 (wire version 9).
const MIN_WIRE_VERSION: i64 = 9;
/// How often a transaction is tried when it keeps failing with transient errors.
const TRANSACTION_ATTEMPTS: usize = 3;
/// A revoked family with no refresh token to take its expiry from is kept this long: longer than
/// any token issued in it lives.
const ORPHAN_FAMILY_DAYS: i64 = 31;

/// Runs `$body` in a transaction on a session named `$session`: started again from the top on a
/// transient error (but not when no server could be selected at all: the caller hears UNAVAILABLE
/// after one server-selection timeout, not three), its commit repeated when the outcome is unknown
/// (commit is idempotent), and aborted on any other error. A macro rather than a function taking a closure, because an async
/// closure borrowing the session cannot yet be proven `Send` for the trait's futures.
macro_rules! in_transaction {
    ($store:expr, |$session:ident| $body:block) => {
        async {
            let mut $session = $store.client.start_session().await?;
            let mut attempt = 0;
            'attempts: loop {
                attempt += 1;
                $session.start_transaction().await?;
                let outcome: mongodb::error::Result<_> = async { $body }.await;
                let value = match outcome {
                    Ok(value) => value,
                    Err(error) => {
                        let _ = $session.abort_transaction().await;
                        if error.contains_label(TRANSIENT_TRANSACTION_ERROR)
                            && !matches!(*error.kind, ErrorKind::ServerSelection { .. })
                            && attempt < TRANSACTION_ATTEMPTS
                        {
                            continue 'attempts;
                        }
                        break 'attempts Err(error);
                    }
                };
                loop {
                    match $session.commit_transaction().await {
                        Ok(()) => break 'attempts Ok(value),
                        Err(error) if attempt < TRANSACTION_ATTEMPTS => {
                            attempt += 1;
                            if error.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) {
                                continue;
                            }
                            if error.contains_label(TRANSIENT_TRANSACTION_ERROR) {
                                continue 'attempts;
                            }
                            break 'attempts Err(error);
                        }
                        Err(error) => break 'attempts Err(error),
                    }
                }
            }
        }
    };
}

/// Locks that queue event-logging writes, per provider (see `MongoStore::event_writers`).
const EVENT_WRITER_LOCKS: usize = 64;

pub struct MongoStore {
    client: Client,
    database: Database,
    providers: Collection<Document>,
    customers: Collection<Document>,
    tickets: Collection<Document>,
    notifications: Collection<Document>,
    chat: Collection<Document>,
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
            notifications: collection("notifications"),
            chat: collection("chatMessages"),
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
            client,
            database,
            operation_timeout: settings.operation_timeout.max(selection_timeout),
            round_trips: AtomicU64::new(0),
            event_writers: (0..EVENT_WRITER_LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
        };
        store.check_server(selection_timeout).await?;
        store.create_indexes().await?;
        Ok(store)
    }

    /// The database this store uses.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Waits for this process's other event-logging writes of the provider to finish.
    async fn queue_event_write(&self, provider: &Id) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        provider.hash(&mut hasher);
        self.event_writers[(hasher.finish() % self.event_writers.len() as u64) as usize].lock().await
    }

    /// Logs events under the provider's next cursors, inside the caller's transaction.
    async fn log_events(
        &self,
        session: &mut ClientSession,
        write_id: &str,
        mut events: Vec<EventRecord>,
    ) -> mongodb::error::Result<Vec<EventRecord>> {
        let Some(provider) = events.first().map(|event| event.provider_id.clone()) else { return Ok(events) };
        let counter = self
            .event_counters
            .find_one_and_update(doc! { "_id": provider.as_str() }, doc! { "$inc": { "cursor": events.len() as i64 } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .session(&mut *session)
            .await?;
        let last = counter.and_then(|c| c.get_i64("cursor").ok()).unwrap_or(events.len() as i64) as u64;
        let first = last + 1 - events.len() as u64;
        for (event, cursor) in events.iter_mut().zip(first..) {
            event.cursor = cursor;
        }
        let documents: Vec<Document> = events.iter().map(|event| event_document(event, write_id)).collect();
        self.events.insert_many(documents).session(&mut *session).await?;
        Ok(events)
    }

    /// Queues deliveries under `sequence` (the cursor of the write's first event), inside the
    /// caller's transaction.
    async fn queue_outbox(
        &self,
        session: &mut ClientSession,
        drafts: &[OutboxDraft],
        events: &[EventRecord],
    ) -> mongodb::error::Result<()> {
        let (Some(first), false) = (events.first(), drafts.is_empty()) else { return Ok(()) };
        let documents: Vec<Document> = drafts.iter().map(|d| outbox_document(d, first.cursor)).collect();
        self.outbox.insert_many(documents).session(&mut *session).await.map(drop)
    }

    /// What an earlier attempt of a write logged (its commit went through; its answer was lost).
    async fn logged_events(&self, provider: &Id, write_id: &str) -> mongodb::error::Result<Vec<EventRecord>> {
        let query = doc! { "providerId": provider.as_str(), "writeId": write_id };
        let documents = collect(self.events.find(query).sort(doc! { "cursor": 1 }).await?).await?;
        documents.iter().map(event_from).collect::<ReadResult<_>>().map_err(mongodb::error::Error::custom)
    }

    /// Checks an idempotency key inside a transaction: `Some` if it was used (the write must not
    /// happen), else records it for the subject about to be created.
    async fn claim_key(
        &self,
        session: &mut ClientSession,
        provider: &Id,
        key: Option<&Id>,
        kind: EventKind,
        subject: &Id,
        at: &Timestamp,
    ) -> mongodb::error::Result<Option<KeyedWrite>> {
        let Some(key) = key else { return Ok(None) };
        let query = doc! { "providerId": provider.as_str(), "key": key.as_str() };
        if let Some(used) = self.idempotency_keys.find_one(query.clone()).session(&mut *session).await? {
            return Ok(Some(keyed_replay(&used)));
        }
        let record = doc! {
            "providerId": provider.as_str(),
            "key": key.as_str(),
            "kind": kind.as_str(),
            "subjectId": subject.as_str(),
            "createdAt": date(at),
        };
        self.idempotency_keys.insert_one(record).session(&mut *session).await?;
        Ok(None)
    }

    /// After a keyed write failed on a unique index: the write of a concurrent request with the
    /// same key, if that is what it met.
    async fn key_taken(&self, provider: &Id, key: Option<&Id>) -> mongodb::error::Result<Option<KeyedWrite>> {
        let Some(key) = key else { return Ok(None) };
        let query = doc! { "providerId": provider.as_str(), "key": key.as_str() };
        Ok(self.idempotency_keys.find_one(query).await?.map(|used| keyed_replay(&used)))
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

    async fn create_indexes(&self) -> AppResult<()> {
        let index = |name: &str, keys: Document| {
            IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).build()).build()
        };
        let unique = |name: &str, keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).unique(true).build())
                .build()
        };
        let expiring = |name: &str| {
            IndexModel::builder()
                .keys(doc! { "expiresAt": 1 })
                .options(IndexOptions::builder().name(name.to_owned()).expire_after(Duration::from_secs(0)).build())
                .build()
        };
        let plan: Vec<(&Collection<Document>, Vec<IndexModel>)> = vec![
            (
                &self.providers,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    unique("username_unique", doc! { "username": 1 }),
                    unique("email_unique", doc! { "email": 1 }),
                ],
            ),
            (
                &self.customers,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("provider_updated", doc! { "serviceProviderId": 1, "updatedAt": -1, "id": 1 }),
                    index("provider_expiry", doc! { "serviceProviderId": 1, "expiryDate": 1 }),
                    index("provider_name", doc! { "serviceProviderId": 1, "name": 1 }),
                    index("provider_contact", doc! { "serviceProviderId": 1, "contactPerson": 1 }),
                    index("expiry_status", doc! { "expiryDate": 1, "status": 1 }),
                ],
            ),
            (
                &self.tickets,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("provider_updated", doc! { "serviceProviderId": 1, "updatedAt": -1, "id": 1 }),
                    index("provider_status_updated", doc! { "serviceProviderId": 1, "status": 1, "updatedAt": -1 }),
                    index("provider_customer_status", doc! { "serviceProviderId": 1, "customerId": 1, "status": 1 }),
                ],
            ),
            (
                &self.notifications,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("provider_created", doc! { "serviceProviderId": 1, "createdAt": -1, "id": -1 }),
                    index("provider_read_created", doc! { "serviceProviderId": 1, "readStatus": 1, "createdAt": -1 }),
                ],
            ),
            (
                &self.chat,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index(
                        "conversation_time",
                        doc! { "serviceProviderId": 1, "customerId": 1, "timestamp": -1, "_id": -1 },
                    ),
                ],
            ),
            (
                &self.refresh_tokens,
                vec![
                    unique("token_hash_unique", doc! { "tokenHash": 1 }),
                    index("provider", doc! { "providerId": 1 }),
                    expiring("expiry"),
                ],
            ),
            (&self.token_families, vec![unique("id_unique", doc! { "id": 1 }), expiring("expiry")]),
            (&self.revoked_tokens, vec![unique("jti_unique", doc! { "jti": 1 }), expiring("expiry")]),
            (
                &self.events,
                vec![
                    unique("provider_cursor", doc! { "providerId": 1, "cursor": 1 }),
                    index("provider_write", doc! { "providerId": 1, "writeId": 1 }),
                ],
            ),
            (&self.idempotency_keys, vec![unique("provider_key", doc! { "providerId": 1, "key": 1 })]),
            (
                &self.audit_log,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("provider_at", doc! { "serviceProviderId": 1, "at": -1, "id": -1 }),
                ],
            ),
            (
                &self.outbox,
                vec![
                    unique("id_unique", doc! { "id": 1 }),
                    index("queue", doc! { "status": 1, "orderingKey": 1, "sequence": 1, "id": 1 }),
                    index("status_delivered", doc! { "status": 1, "deliveredAt": 1 }),
                    index("status_dead", doc! { "status": 1, "deadAt": 1 }),
                ],
            ),
            (&self.wechat_bindings, vec![unique("provider_unique", doc! { "providerId": 1 })]),
            // Created here so that the first transaction does not have to create it.
            (&self.event_counters, vec![index("cursor", doc! { "cursor": 1 })]),
        ];
        for (collection, indexes) in plan {
            let name = collection.name().to_owned();
            self.op(async { collection.create_indexes(indexes).await.map(drop) }).await.map_err(|e| match e {
                AppError::Internal(detail) => AppError::Internal(format!(
                    "cannot create the indexes of {name} (an index of the same name but another definition may \
                     exist; drop it and start again): {detail}"
                )),
                other => other,
            })?;
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

    /// The open and processing tickets of each of the given customers (of one provider, or of
    /// any with `None`).
    async fn unresolved_counts(
        &self,
        provider: Option<&Id>,
        customers: &[Id],
    ) -> mongodb::error::Result<HashMap<String, u32>> {
        let mut counts = HashMap::new();
        if customers.is_empty() {
            return Ok(counts);
        }
        let mut filter = doc! {
            "customerId": { "$in": ids_bson(customers) },
            "status": { "$ne": TicketStatus::Resolved.as_str() },
        };
        if let Some(provider) = provider {
            filter.insert("serviceProviderId", provider.as_str());
        }
        let pipeline =
            vec![doc! { "$match": filter }, doc! { "$group": { "_id": "$customerId", "count": { "$sum": 1 } } }];
        let mut cursor = self.tickets.aggregate(pipeline).await?;
        while cursor.advance().await? {
            let row = cursor.deserialize_current()?;
            let count = match row.get("count") {
                Some(Bson::Int32(n)) => (*n).max(0) as u32,
                Some(Bson::Int64(n)) => (*n).max(0) as u32,
                _ => 0,
            };
            if let Ok(id) = row.get_str("_id") {
                counts.insert(id.to_owned(), count);
            }
        }
        Ok(counts)
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

fn bad_document(detail: String) -> AppError {
    AppError::Internal(format!("mongodb: {detail}"))
}

/// `text` as a regular expression that matches it literally: every ASCII character that is not a
/// letter or digit is escaped (PCRE reads a backslash before such a character as that character),
/// so user input can never be a pattern.
pub fn literal_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() * 2);
    for ch in text.chars() {
        if ch.is_ascii() && !ch.is_ascii_alphanumeric() {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern
}

/// Whether an error means the server cannot be reached (or cannot take writes) just now.
fn is_unreachable(error: &mongodb::error::Error) -> bool {
    // Server codes for a server going away, stepping down, or not being primary.
    const UNAVAILABLE_CODES: [i32; 14] = [6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 64, 10058];
    if error.contains_label(TRANSIENT_TRANSACTION_ERROR) || error.contains_label("RetryableWriteError") {
        return true;
    }
    match error.kind.as_ref() {
        ErrorKind::Io(_) | ErrorKind::ServerSelection { .. } | ErrorKind::ConnectionPoolCleared { .. } => true,
        ErrorKind::Shutdown => true,
        ErrorKind::Command(command) => UNAVAILABLE_CODES.contains(&command.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        _ => false,
    }
}

fn mongo_error(error: mongodb::error::Error) -> AppError {
    if is_unreachable(&error) {
        AppError::Unavailable(format!("mongodb: {error}"))
    } else {
        AppError::Internal(format!("mongodb: {error}"))
    }
}

fn keyed_replay(used: &Document) -> KeyedWrite {
    KeyedWrite::Replayed {
        kind: used.get_str("kind").unwrap_or_default().to_owned(),
        subject: Id::from_stored(used.get_str("subjectId").unwrap_or_default().to_owned()),
    }
}

/// An event about to be logged; the log gives it its cursor.
fn event(provider: &Id, kind: EventKind, subject: &Id, customer: Option<&Id>, at: Timestamp) -> EventRecord {
    EventRecord {
        provider_id: provider.clone(),
        cursor: 0,
        kind,
        subject_id: subject.clone(),
        customer_id: customer.cloned(),
        at,
    }
}

fn notification_event(n: &Notification) -> EventRecord {
    event(&n.service_provider_id, EventKind::Notification, &n.id, n.related_customer_id.as_ref(), n.created_at)
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => e.code == 11000,
        _ => false,
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> AppResult<()> {
        self.op(self.database.run_command(doc! { "ping": 1 })).await.map(drop)
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    async fn count_providers(&self) -> AppResult<u64> {
        self.op(self.providers.count_documents(doc! {})).await
    }

    async fn insert_provider(&self, provider: &ServiceProvider, password_hash: &str) -> AppResult<()> {
        self.op(self.providers.insert_one(provider_document(provider, password_hash))).await.map(drop)
    }

    async fn provider_credentials(&self, username: &str) -> AppResult<Option<(ServiceProvider, String)>> {
        let found = self.op(self.providers.find_one(doc! { "username": username })).await?;
        match found {
            None => Ok(None),
            Some(doc) => {
                let provider = provider_from(&doc).map_err(bad_document)?;
                let hash = password_hash_from(&doc).map_err(bad_document)?;
                Ok(Some((provider, hash)))
            }
        }
    }

    async fn set_password_hash(&self, username: &str, password_hash: &str, at: Timestamp) -> AppResult<bool> {
        let update = doc! { "$set": { "password": password_hash, "updatedAt": date(&at) } };
        let result = self.op(self.providers.update_one(doc! { "username": username }, update)).await?;
        Ok(result.matched_count > 0)
    }

    async fn providers_by_ids(&self, ids: &[Id]) -> AppResult<Vec<ServiceProvider>> {
        let documents = self
            .op(async { collect(self.providers.find(doc! { "id": { "$in": ids_bson(ids) } }).await?).await })
            .await?;
        read(&documents, provider_from)
    }

    async fn insert_customer(&self, customer: &Customer) -> AppResult<()> {
        self.op(self.customers.insert_one(customer_document(customer))).await.map(drop)
    }

    async fn list_customers(
        &self,
        provider: &Id,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> AppResult<Page<Customer>> {
        let mut query = doc! { "serviceProviderId": provider.as_str() };
        let mut expiry = Document::new();
        if let Some(after) = &filter.expiry_after {
            expiry.insert("$gt", date(after));
        }
        if let Some(until) = &filter.expiry_until {
            expiry.insert("$lte", date(until));
        }
        if !expiry.is_empty() {
            query.insert("expiryDate", expiry);
        }
        if let Some(keyword) = &filter.keyword {
            // Case-insensitive, as the embedded store's LIKE is for ASCII letters.
            let pattern = doc! { "$regex": literal_pattern(keyword), "$options": "i" };
            query.insert("$or", vec![doc! { "name": pattern.clone() }, doc! { "contactPerson": pattern }]);
        }
        let (documents, total, counts) = self
            .op(async {
                let (documents, total) =
                    self.page(&self.customers, query, doc! { "updatedAt": -1, "id": 1 }, page).await?;
                let ids: Vec<Id> = documents
                    .iter()
                    .filter_map(|d| d.get_str("id").ok())
                    .map(|id| Id::from_stored(id.into()))
                    .collect();
                let counts = self.unresolved_counts(Some(provider), &ids).await?;
                Ok((documents, total, counts))
            })
            .await?;
        let items = read(&documents, |d| {
            let unresolved = d.get_str("id").ok().and_then(|id| counts.get(id)).copied().unwrap_or(0);
            customer_from(d, unresolved)
        })?;
        Ok(Page { items, total, request: page })
    }

    async fn customers_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Customer>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": { "$in": ids_bson(ids) } };
        let (documents, counts) = self
            .op(async {
                let find = async { collect(self.customers.find(query).await?).await };
                tokio::try_join!(find, self.unresolved_counts(Some(provider), ids))
            })
            .await?;
        read(&documents, |d| {
            let unresolved = d.get_str("id").ok().and_then(|id| counts.get(id)).copied().unwrap_or(0);
            customer_from(d, unresolved)
        })
    }

    async fn customers_anywhere(&self, ids: &[Id]) -> AppResult<Vec<Customer>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = doc! { "id": { "$in": ids_bson(ids) } };
        let (documents, counts) = self
            .op(async {
                let find = async { collect(self.customers.find(query).await?).await };
                tokio::try_join!(find, self.unresolved_counts(None, ids))
            })
            .await?;
        read(&documents, |d| {
            let unresolved = d.get_str("id").ok().and_then(|id| counts.get(id)).copied().unwrap_or(0);
            customer_from(d, unresolved)
        })
    }

    async fn save_customers(&self, customers: &[Customer]) -> AppResult<Vec<bool>> {
        let mut saved = Vec::with_capacity(customers.len());
        for c in customers {
            // Matching on the provider too: an id of another provider's customer makes the upsert
            // insert a second document with that id, which the unique index refuses.
            let filter = doc! { "id": c.id.as_str(), "serviceProviderId": c.service_provider_id.as_str() };
            // An insert takes `id` and `serviceProviderId` from the filter.
            let update = doc! {
                "$set": synced_customer_fields(c),
                "$setOnInsert": { "status": c.stored_status.as_str(), "createdAt": date(&c.created_at) },
            };
            let outcome = self
                .op(async {
                    match self.customers.update_one(filter, update).upsert(true).await {
                        Ok(_) => Ok(true),
                        Err(error) if is_duplicate_key(&error) => Ok(false),
                        Err(error) => Err(error),
                    }
                })
                .await?;
            saved.push(outcome);
        }
        Ok(saved)
    }

    async fn customers_with_stale_status(&self, now: Timestamp, limit: u32) -> AppResult<Vec<Customer>> {
        let mut documents = Vec::new();
        for status in CustomerStatus::ALL {
            let left = i64::from(limit) - documents.len() as i64;
            if left <= 0 {
                break;
            }
            let (after, until) = status.expiry_range(now);
            let mut query = doc! { "status": { "$ne": status.as_str() } };
            let mut expiry = Document::new();
            if let Some(after) = &after {
                expiry.insert("$gt", date(after));
            }
            if let Some(until) = &until {
                expiry.insert("$lte", date(until));
            }
            if !expiry.is_empty() {
                query.insert("expiryDate", expiry);
            }
            let found = self
                .op(async {
                    collect(self.customers.find(query).sort(doc! { "expiryDate": 1, "id": 1 }).limit(left).await?).await
                })
                .await?;
            documents.extend(found);
        }
        let ids: Vec<Id> =
            documents.iter().filter_map(|d| d.get_str("id").ok()).map(|id| Id::from_stored(id.into())).collect();
        let counts = self.op(self.unresolved_counts(None, &ids)).await?;
        read(&documents, |d| {
            let unresolved = d.get_str("id").ok().and_then(|id| counts.get(id)).copied().unwrap_or(0);
            customer_from(d, unresolved)
        })
    }

    async fn apply_customer_status(&self, change: &CustomerStatusChange) -> AppResult<Option<Vec<EventRecord>>> {
        let filter = doc! {
            "id": change.customer_id.as_str(),
            "serviceProviderId": change.provider_id.as_str(),
            "status": change.from.as_str(),
        };
        let update = doc! { "$set": { "status": change.to.as_str() } };
        let alert = change.alert.as_ref().map(|n| (n.id.to_string(), notification_document(n), notification_event(n)));
        self.op(in_transaction!(self, |session| {
            let updated = self.customers.update_one(filter.clone(), update.clone()).session(&mut session).await?;
            if updated.matched_count == 0 {
                return Ok(None);
            }
            let Some((alert_id, document, event)) = &alert else { return Ok(Some(Vec::new())) };
            let exists = self.notifications.count_documents(doc! { "id": alert_id }).session(&mut session).await?;
            if exists > 0 {
                return Ok(Some(Vec::new()));
            }
            self.notifications.insert_one(document).session(&mut session).await?;
            let events = self.log_events(&mut session, alert_id, vec![event.clone()]).await?;
            self.queue_outbox(&mut session, &change.outbox, &events).await?;
            Ok(Some(events))
        }))
        .await
    }

    async fn reconcile_usage_scores(&self) -> AppResult<u64> {
        let projection = doc! { "_id": 0, "id": 1, "usageScore": 1, "usageMetrics": 1 };
        let documents =
            self.op(async { collect(self.customers.find(doc! {}).projection(projection).await?).await }).await?;
        let mut rewritten = 0;
        for document in documents {
            let (Ok(id), Ok(measures)) = (document.get_str("id"), document.get_document("usageMetrics")) else {
                continue;
            };
            let metrics: UsageMetrics = documents::usage_metrics_from(&document).map_err(bad_document)?;
            let score = i64::from(usage::total_score(&metrics));
            let stored = match document.get("usageScore") {
                Some(Bson::Int32(n)) => Some(i64::from(*n)),
                Some(Bson::Int64(n)) => Some(*n),
                Some(Bson::Double(n)) if n.fract() == 0.0 => Some(*n as i64),
                _ => None,
            };
            if stored == Some(score) {
                continue;
            }
            // Only if the measures are still those the score was computed from.
            let filter = doc! { "id": id, "usageMetrics": measures.clone() };
            let update = doc! { "$set": { "usageScore": score as i32 } };
            rewritten += self.op(self.customers.update_one(filter, update)).await?.modified_count;
        }
        Ok(rewritten)
    }

    async fn insert_ticket(
        &self,
        ticket: &Ticket,
        notification: &Notification,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<Ticket>> {
        let (provider, id, key) = (&ticket.service_provider_id, &ticket.id, idempotency_key);
        let write_id = notification.id.as_str();
        let drafts = vec![
            event(provider, EventKind::Ticket, id, Some(&ticket.customer_id), ticket.created_at),
            notification_event(notification),
        ];
        let (ticket_doc, notification_doc) = (ticket_document(ticket), notification_document(notification));
        let _queued = self.queue_event_write(provider).await;
        let outcome = self
            .op(async {
                let written = in_transaction!(self, |session| {
                    let claim =
                        self.claim_key(&mut session, provider, key, EventKind::Ticket, id, &ticket.created_at).await?;
                    if let Some(replayed) = claim {
                        return Ok(replayed);
                    }
                    self.tickets.insert_one(&ticket_doc).session(&mut session).await?;
                    self.notifications.insert_one(&notification_doc).session(&mut session).await?;
                    let events = self.log_events(&mut session, write_id, drafts.clone()).await?;
                    self.queue_outbox(&mut session, outbox, &events).await?;
                    Ok(KeyedWrite::Created(events))
                })
                .await;
                match written {
                    // The ticket's id is new for this call, so a ticket with it means that an earlier
                    // attempt of this very call committed, ticket, notification and events together,
                    // and only its answer was lost: done, not doubled. Otherwise a concurrent
                    // request with the same key came first.
                    Err(error) if is_duplicate_key(&error) => {
                        if self.tickets.find_one(doc! { "id": id.as_str() }).await?.is_some() {
                            return Ok(KeyedWrite::Created(self.logged_events(provider, write_id).await?));
                        }
                        self.key_taken(provider, key).await?.ok_or(error)
                    }
                    other => other,
                }
            })
            .await?;
        match outcome {
            KeyedWrite::Created(events) => Ok(Written::Created(ticket.clone(), events)),
            KeyedWrite::Replayed { kind, subject } => {
                let subject = replayed_subject(&kind, subject, EventKind::Ticket)?;
                let first = self.ticket(provider, &subject).await?;
                first
                    .map(Written::Replayed)
                    .ok_or_else(|| AppError::internal("an idempotency key names a missing ticket"))
            }
        }
    }

    async fn list_tickets(&self, provider: &Id, filter: &TicketFilter, page: PageRequest) -> AppResult<Page<Ticket>> {
        let mut query = doc! { "serviceProviderId": provider.as_str() };
        if let Some(customer) = &filter.customer_id {
            query.insert("customerId", customer.as_str());
        }
        if let Some(status) = filter.status {
            query.insert("status", status.as_str());
        }
        if let Some(ticket_type) = filter.ticket_type {
            query.insert("type", ticket_type.as_str());
        }
        let (documents, total) =
            self.op(self.page(&self.tickets, query, doc! { "updatedAt": -1, "id": 1 }, page)).await?;
        Ok(Page { items: read(&documents, ticket_from)?, total, request: page })
    }

    async fn ticket(&self, provider: &Id, id: &Id) -> AppResult<Option<Ticket>> {
        let found =
            self.op(self.tickets.find_one(doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() })).await?;
        found.as_ref().map(ticket_from).transpose().map_err(bad_document)
    }

    async fn apply_ticket_change(&self, change: &TicketChange) -> AppResult<Option<Vec<EventRecord>>> {
        let ticket = &change.ticket;
        let filter = doc! {
            "id": ticket.id.as_str(),
            "serviceProviderId": ticket.service_provider_id.as_str(),
            "version": ticket.version as i64,
        };
        let update = doc! {
            "$set": ticket_state(ticket),
            "$inc": { "version": 1_i64 },
            "$push": { "processingHistory": {
                "$each": change.appended_history.iter().map(history_document).collect::<Vec<_>>(),
            } },
        };
        let notification = notification_document(&change.notification);
        let ticket_id = ticket.id.to_string();
        let first_entry = change.appended_history.first().map(|entry| entry.id.to_string());
        let provider = &ticket.service_provider_id;
        let write_id = change.notification.id.as_str();
        let drafts = vec![
            event(provider, EventKind::Ticket, &ticket.id, Some(&ticket.customer_id), ticket.updated_at),
            notification_event(&change.notification),
        ];
        let _queued = self.queue_event_write(provider).await;
        self.op(async {
            let applied = in_transaction!(self, |session| {
                let updated = self.tickets.update_one(filter.clone(), update.clone()).session(&mut session).await?;
                if updated.matched_count == 0 {
                    // Either another change came first (nothing is written, the caller starts over),
                    // or an earlier attempt of this very change committed and only its answer was
                    // lost. The history entries' ids are new for this change, so finding one tells
                    // which; without this check the caller would apply the change a second time.
                    let Some(first) = &first_entry else { return Ok(None) };
                    let applied = doc! { "id": &ticket_id, "processingHistory.id": first };
                    let found = self.tickets.count_documents(applied).session(&mut session).await?;
                    return Ok((found > 0).then(Vec::new));
                }
                self.notifications.insert_one(&notification).session(&mut session).await?;
                let events = self.log_events(&mut session, write_id, drafts.clone()).await?;
                self.queue_outbox(&mut session, &change.outbox, &events).await?;
                Ok(Some(events))
            })
            .await?;
            match applied {
                // Applied by an earlier attempt: what it logged.
                Some(events) if events.is_empty() => Ok(Some(self.logged_events(provider, write_id).await?)),
                other => Ok(other),
            }
        })
        .await
    }

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

    async fn list_notifications(
        &self,
        provider: &Id,
        filter: &NotificationFilter,
        page: PageRequest,
    ) -> AppResult<Page<Notification>> {
        let mut query = doc! { "serviceProviderId": provider.as_str() };
        if let Some(kind) = filter.notification_type {
            query.insert("type", kind.as_str());
        }
        if let Some(read_status) = filter.read_status {
            query.insert("readStatus", read_status.as_str());
        }
        let (documents, total) =
            self.op(self.page(&self.notifications, query, doc! { "createdAt": -1, "id": -1 }, page)).await?;
        Ok(Page { items: read(&documents, notification_from)?, total, request: page })
    }

    async fn unread_count(&self, provider: &Id) -> AppResult<u64> {
        let query = doc! { "serviceProviderId": provider.as_str(), "readStatus": ReadStatus::Unread.as_str() };
        self.op(self.notifications.count_documents(query)).await
    }

    async fn notification(&self, provider: &Id, id: &Id) -> AppResult<Option<Notification>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() };
        let found = self.op(self.notifications.find_one(query)).await?;
        found.as_ref().map(notification_from).transpose().map_err(bad_document)
    }

    async fn mark_notification_read(&self, provider: &Id, id: &Id, at: Timestamp) -> AppResult<Option<Notification>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() };
        // A pipeline update, so the first read time is kept in the same atomic step.
        let update = vec![doc! { "$set": {
            "readStatus": ReadStatus::Read.as_str(),
            "readAt": { "$ifNull": ["$readAt", date(&at)] },
        } }];
        let found = self
            .op(self.notifications.find_one_and_update(query, update).return_document(ReturnDocument::After))
            .await?;
        found.as_ref().map(notification_from).transpose().map_err(bad_document)
    }

    async fn mark_all_notifications_read(&self, provider: &Id, at: Timestamp) -> AppResult<u64> {
        let query = doc! { "serviceProviderId": provider.as_str(), "readStatus": ReadStatus::Unread.as_str() };
        let update = doc! { "$set": { "readStatus": ReadStatus::Read.as_str(), "readAt": date(&at) } };
        self.op(self.notifications.update_many(query, update)).await.map(|r| r.modified_count)
    }

    async fn insert_chat_message(
        &self,
        message: &ChatMessage,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<ChatMessage>> {
        let (provider, id, key) = (&message.service_provider_id, &message.id, idempotency_key);
        let document = chat_document(message);
        let drafts = vec![event(provider, EventKind::ChatMessage, id, Some(&message.customer_id), message.timestamp)];
        let _queued = self.queue_event_write(provider).await;
        let outcome = self
            .op(async {
                let written = in_transaction!(self, |session| {
                    let claim = self
                        .claim_key(&mut session, provider, key, EventKind::ChatMessage, id, &message.timestamp)
                        .await?;
                    if let Some(replayed) = claim {
                        return Ok(replayed);
                    }
                    self.chat.insert_one(&document).session(&mut session).await?;
                    let events = self.log_events(&mut session, id.as_str(), drafts.clone()).await?;
                    self.queue_outbox(&mut session, outbox, &events).await?;
                    Ok(KeyedWrite::Created(events))
                })
                .await;
                match written {
                    // As for a ticket: our own earlier attempt, or a concurrent request's key.
                    Err(error) if is_duplicate_key(&error) => {
                        if self.chat.find_one(doc! { "id": id.as_str() }).await?.is_some() {
                            return Ok(KeyedWrite::Created(self.logged_events(provider, id.as_str()).await?));
                        }
                        self.key_taken(provider, key).await?.ok_or(error)
                    }
                    other => other,
                }
            })
            .await?;
        match outcome {
            KeyedWrite::Created(events) => Ok(Written::Created(message.clone(), events)),
            KeyedWrite::Replayed { kind, subject } => {
                let subject = replayed_subject(&kind, subject, EventKind::ChatMessage)?;
                let first = self.chat_message(provider, &subject).await?;
                first
                    .map(Written::Replayed)
                    .ok_or_else(|| AppError::internal("an idempotency key names a missing message"))
            }
        }
    }

    async fn chat_message(&self, provider: &Id, id: &Id) -> AppResult<Option<ChatMessage>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": id.as_str() };
        let found = self.op(self.chat.find_one(query)).await?;
        found.as_ref().map(chat_from).transpose().map_err(bad_document)
    }

    async fn advance_chat_status(
        &self,
        provider: &Id,
        customer: &Id,
        ids: &[Id],
        sender: ChatSender,
        status: ChatStatus,
    ) -> AppResult<Vec<(ChatMessage, EventRecord)>> {
        // Statuses only move forward: sent < delivered < read.
        let earlier: Vec<&str> = ChatStatus::ALL.iter().take_while(|s| **s != status).map(|s| s.as_str()).collect();
        let at = crate::domain::now();
        let write_id = format!("status:{}:{}", status.as_str(), crate::domain::new_id("w"));
        let _queued = self.queue_event_write(provider).await;
        let moved = self
            .op(in_transaction!(self, |session| {
                let mut moved = Vec::new();
                for id in ids {
                    let query = doc! {
                        "serviceProviderId": provider.as_str(),
                        "customerId": customer.as_str(),
                        "id": id.as_str(),
                        "senderType": sender.as_str(),
                        "status": { "$in": earlier.clone() },
                    };
                    let updated = self
                        .chat
                        .find_one_and_update(query, doc! { "$set": { "status": status.as_str() } })
                        .return_document(ReturnDocument::After)
                        .session(&mut session)
                        .await?;
                    if let Some(document) = updated {
                        moved.push(document);
                    }
                }
                let drafts: Vec<EventRecord> = moved
                    .iter()
                    .map(|document| {
                        let id = Id::from_stored(document.get_str("id").unwrap_or_default().to_owned());
                        event(provider, EventKind::ChatStatus, &id, Some(customer), at)
                    })
                    .collect();
                let events = self.log_events(&mut session, &write_id, drafts).await?;
                Ok((moved, events))
            }))
            .await?;
        let (documents, events) = moved;
        let messages = read(&documents, chat_from)?;
        Ok(messages.into_iter().zip(events).collect())
    }

    async fn list_chat_messages(
        &self,
        provider: &Id,
        customer: &Id,
        page: PageRequest,
    ) -> AppResult<Page<ChatMessage>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "customerId": customer.as_str() };
        // `_id` (driver-made, increasing) keeps messages of the same second in the order stored.
        let (documents, total) =
            self.op(self.page(&self.chat, query, doc! { "timestamp": -1, "_id": -1 }, page)).await?;
        let mut items = read(&documents, chat_from)?;
        items.reverse();
        Ok(Page { items, total, request: page })
    }

    async fn events_after(&self, provider: &Id, after: EventCursor, limit: u32) -> AppResult<Vec<EventRecord>> {
        let query = doc! { "providerId": provider.as_str(), "cursor": { "$gt": after as i64 } };
        let documents = self
            .op(async {
                collect(self.events.find(query).sort(doc! { "cursor": 1 }).limit(i64::from(limit)).await?).await
            })
            .await?;
        read(&documents, event_from)
    }

    async fn latest_cursor(&self, provider: &Id) -> AppResult<EventCursor> {
        let counter = self.op(self.event_counters.find_one(doc! { "_id": provider.as_str() })).await?;
        Ok(counter.and_then(|c| c.get_i64("cursor").ok()).map_or(0, |cursor| cursor as EventCursor))
    }

    async fn wechat_openid(&self, provider: &Id) -> AppResult<Option<String>> {
        let found = self.op(self.wechat_bindings.find_one(doc! { "providerId": provider.as_str() })).await?;
        Ok(found.and_then(|d| d.get_str("openId").ok().map(str::to_owned)))
    }

    async fn bind_wechat_openid(&self, provider: &Id, openid: &str, at: Timestamp) -> AppResult<()> {
        let filter = doc! { "providerId": provider.as_str() };
        let update = doc! { "$set": { "openId": openid, "boundAt": date(&at) } };
        self.op(async {
            match self.wechat_bindings.update_one(filter.clone(), update.clone()).upsert(true).await {
                // Two bindings raced to create the document: the other one did; set ours.
                Err(error) if is_duplicate_key(&error) => {
                    self.wechat_bindings.update_one(filter, update).await.map(drop)
                }
                other => other.map(drop),
            }
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
        let now = date(&now);
        let free = doc! { "nextAttemptAt": { "$lte": now }, "$or": [
            { "leaseUntil": Bson::Null },
            { "leaseUntil": { "$lte": now } },
        ] };
        // The first pending delivery of each ordering key, then those of them that are due.
        let pipeline = vec![
            doc! { "$match": { "status": DeliveryStatus::Pending.as_str() } },
            doc! { "$sort": { "orderingKey": 1, "sequence": 1, "id": 1 } },
            doc! { "$group": { "_id": "$orderingKey", "head": { "$first": "$$ROOT" } } },
            doc! { "$replaceRoot": { "newRoot": "$head" } },
            doc! { "$match": free.clone() },
            doc! { "$sort": { "nextAttemptAt": 1, "sequence": 1 } },
            doc! { "$limit": i64::from(limit) },
            doc! { "$project": { "_id": 0, "id": 1 } },
        ];
        let heads = self.op(async { collect(self.outbox.aggregate(pipeline).await?).await }).await?;
        let mut claimed = Vec::with_capacity(heads.len());
        for head in heads {
            let Ok(id) = head.get_str("id") else { continue };
            // Claimed only if still pending, due and free: another process may have got there first.
            let mut filter = free.clone();
            filter.insert("id", id);
            filter.insert("status", DeliveryStatus::Pending.as_str());
            let update = doc! { "$set": { "leaseOwner": owner, "leaseUntil": date(&lease_until) } };
            let found =
                self.op(self.outbox.find_one_and_update(filter, update).return_document(ReturnDocument::After)).await?;
            if let Some(document) = found {
                claimed.push(outbox_from(&document).map_err(bad_document)?);
            }
        }
        Ok(claimed)
    }

    async fn complete_delivery(&self, id: &Id, at: Timestamp) -> AppResult<()> {
        let filter = doc! { "id": id.as_str(), "status": DeliveryStatus::Pending.as_str() };
        let update = doc! {
            "$set": {
                "status": DeliveryStatus::Delivered.as_str(),
                "deliveredAt": date(&at),
                "leaseOwner": Bson::Null,
                "leaseUntil": Bson::Null,
            },
            "$inc": { "attempts": 1_i32 },
        };
        self.op(self.outbox.update_one(filter, update)).await.map(drop)
    }

    async fn fail_delivery(
        &self,
        id: &Id,
        owner: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        at: Timestamp,
    ) -> AppResult<()> {
        let filter = doc! { "id": id.as_str(), "status": DeliveryStatus::Pending.as_str(), "leaseOwner": owner };
        let (status, next, dead_at) = match retry_at {
            Some(retry_at) => (DeliveryStatus::Pending, date(&retry_at), Bson::Null),
            None => (DeliveryStatus::Dead, date(&at), Bson::DateTime(date(&at))),
        };
        let update = doc! {
            "$set": {
                "status": status.as_str(),
                "nextAttemptAt": next,
                "lastError": error,
                "deadAt": dead_at,
                "leaseOwner": Bson::Null,
                "leaseUntil": Bson::Null,
            },
            "$inc": { "attempts": 1_i32 },
        };
        self.op(self.outbox.update_one(filter, update)).await.map(drop)
    }

    async fn dead_letters(&self, limit: u32) -> AppResult<Vec<OutboxEntry>> {
        let query = doc! { "status": DeliveryStatus::Dead.as_str() };
        let sort = doc! { "deadAt": 1, "sequence": 1, "id": 1 };
        let documents =
            self.op(async { collect(self.outbox.find(query).sort(sort).limit(i64::from(limit)).await?).await }).await?;
        read(&documents, outbox_from)
    }

    async fn replay_dead_letters(&self, ids: Option<&[Id]>, at: Timestamp) -> AppResult<u64> {
        let mut filter = doc! { "status": DeliveryStatus::Dead.as_str() };
        if let Some(ids) = ids {
            if ids.is_empty() {
                return Ok(0);
            }
            filter.insert("id", doc! { "$in": ids_bson(ids) });
        }
        let update = doc! { "$set": {
            "status": DeliveryStatus::Pending.as_str(),
            "attempts": 0_i32,
            "nextAttemptAt": date(&at),
            "deadAt": Bson::Null,
            "leaseOwner": Bson::Null,
            "leaseUntil": Bson::Null,
        } };
        self.op(self.outbox.update_many(filter, update)).await.map(|r| r.modified_count)
    }

    async fn outbox_counts(&self) -> AppResult<OutboxCounts> {
        let count = |status: DeliveryStatus| self.outbox.count_documents(doc! { "status": status.as_str() });
        let (pending, delivered, dead) = self
            .op(async {
                tokio::try_join!(
                    count(DeliveryStatus::Pending),
                    count(DeliveryStatus::Delivered),
                    count(DeliveryStatus::Dead)
                )
            })
            .await?;
        Ok(OutboxCounts { pending, delivered, dead })
    }

    async fn prune_outbox(&self, before: Timestamp) -> AppResult<u64> {
        let filter = doc! { "status": DeliveryStatus::Delivered.as_str(), "deliveredAt": { "$lt": date(&before) } };
        self.op(self.outbox.delete_many(filter)).await.map(|r| r.deleted_count)
    }

    async fn acquire_lease(&self, name: &str, owner: &str, until: Timestamp, now: Timestamp) -> AppResult<bool> {
        // Matches a lease that ran out or is ours; a lease held by another process matches
        // nothing, so the upsert tries to insert a second document with its `_id`, and fails.
        let filter = doc! { "_id": name, "$or": [{ "until": { "$lte": date(&now) } }, { "owner": owner }] };
        let update = doc! { "$set": { "owner": owner, "until": date(&until) } };
        self.op(async {
            match self.leases.update_one(filter, update).upsert(true).await {
                Ok(_) => Ok(true),
                Err(error) if is_duplicate_key(&error) => Ok(false),
                Err(error) => Err(error),
            }
        })
        .await
    }

    async fn release_lease(&self, name: &str, owner: &str) -> AppResult<()> {
        self.op(self.leases.delete_one(doc! { "_id": name, "owner": owner })).await.map(drop)
    }

    async fn insert_audit_entry(&self, entry: &AuditEntry) -> AppResult<()> {
        self.op(self.audit_log.insert_one(audit_document(entry))).await.map(drop)
    }

    async fn list_audit_entries(&self, provider: &Id, page: PageRequest) -> AppResult<Page<AuditEntry>> {
        let query = doc! { "serviceProviderId": provider.as_str() };
        let (documents, total) = self.op(self.page(&self.audit_log, query, doc! { "at": -1, "id": -1 }, page)).await?;
        Ok(Page { items: read(&documents, audit_from)?, total, request: page })
    }
}

#[async_trait]
impl TokenStore for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn ping_tokens(&self) -> AppResult<()> {
        Store::ping(self).await
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> AppResult<()> {
        let update = doc! { "$setOnInsert": { "jti": jti, "expiresAt": date(&expires_at) } };
        self.op(self.revoked_tokens.update_one(doc! { "jti": jti }, update).upsert(true)).await.map(drop)
    }

    async fn is_access_revoked(&self, jti: &str, family_id: &str) -> AppResult<bool> {
        let (token, family) = self
            .op(async {
                tokio::try_join!(
                    self.revoked_tokens.count_documents(doc! { "jti": jti }).limit(1),
                    self.token_families
                        .count_documents(doc! { "id": family_id, "revokedAt": { "$ne": Bson::Null } })
                        .limit(1),
                )
            })
            .await?;
        Ok(token > 0 || family > 0)
    }

    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> AppResult<()> {
        let expires_at = date(&record.expires_at);
        // The family first (an upsert, so doing it twice is harmless), then the token: a token
        // never exists without its family. The family lives as long as its newest token.
        let family = doc! {
            "$setOnInsert": { "id": &record.family_id, "revokedAt": Bson::Null },
            "$max": { "expiresAt": expires_at },
        };
        let token = doc! {
            "tokenHash": &record.token_hash,
            "familyId": &record.family_id,
            "providerId": record.provider_id.as_str(),
            "expiresAt": expires_at,
            "usedAt": Bson::Null,
        };
        self.op(async {
            self.token_families.update_one(doc! { "id": &record.family_id }, family).upsert(true).await?;
            self.refresh_tokens.insert_one(token).await.map(drop)
        })
        .await
    }

    async fn use_refresh_token(&self, token_hash: &str, at: Timestamp) -> AppResult<RefreshTokenUse> {
        let outcome = self
            .op(async {
                // Marking it used only if unused is atomic: of two concurrent uses, one wins.
                let fresh = self
                    .refresh_tokens
                    .find_one_and_update(
                        doc! { "tokenHash": token_hash, "usedAt": Bson::Null },
                        doc! { "$set": { "usedAt": date(&at) } },
                    )
                    .await?;
                let (document, first_use) = match fresh {
                    Some(document) => (document, true),
                    None => match self.refresh_tokens.find_one(doc! { "tokenHash": token_hash }).await? {
                        Some(document) => (document, false),
                        None => return Ok(None),
                    },
                };
                let family = document.get_str("familyId").unwrap_or_default().to_owned();
                let revoked = self
                    .token_families
                    .count_documents(doc! { "id": family, "revokedAt": { "$ne": Bson::Null } })
                    .limit(1)
                    .await?;
                Ok(Some((document, first_use, revoked > 0)))
            })
            .await?;
        let Some((document, first_use, revoked)) = outcome else {
            return Ok(RefreshTokenUse::Unknown);
        };
        if revoked {
            return Ok(RefreshTokenUse::Revoked);
        }
        let (family_id, provider_id, expires_at, _) = refresh_token_from(&document).map_err(bad_document)?;
        let record = RefreshTokenRecord { token_hash: token_hash.to_owned(), family_id, provider_id, expires_at };
        Ok(if first_use { RefreshTokenUse::Fresh(record) } else { RefreshTokenUse::Reused(record) })
    }

    async fn revoke_token_family(&self, family_id: &str, at: Timestamp) -> AppResult<()> {
        let keep_until = at + chrono::Duration::days(ORPHAN_FAMILY_DAYS);
        // A pipeline update keeps the first revocation time; the upsert covers a family never seen.
        let update = vec![doc! { "$set": {
            "id": family_id,
            "revokedAt": { "$ifNull": ["$revokedAt", date(&at)] },
            "expiresAt": { "$ifNull": ["$expiresAt", date(&keep_until)] },
        } }];
        self.op(async {
            match self.token_families.update_one(doc! { "id": family_id }, update).upsert(true).await {
                // Two revocations raced to create the family: the other one stored it.
                Err(error) if is_duplicate_key(&error) => Ok(()),
                other => other.map(drop),
            }
        })
        .await
    }

    async fn provider_token_families(&self, provider: &Id) -> AppResult<Vec<String>> {
        let tokens = doc! { "providerId": provider.as_str(), "expiresAt": { "$gt": date(&crate::domain::now()) } };
        let projection = doc! { "_id": 0, "familyId": 1 };
        let found =
            self.op(async { collect(self.refresh_tokens.find(tokens).projection(projection).await?).await }).await?;
        let mut families: Vec<&str> = found.iter().filter_map(|d| d.get_str("familyId").ok()).collect();
        families.sort_unstable();
        families.dedup();
        if families.is_empty() {
            return Ok(Vec::new());
        }
        let open = doc! { "id": { "$in": &families }, "revokedAt": Bson::Null };
        let projection = doc! { "_id": 0, "id": 1 };
        let open =
            self.op(async { collect(self.token_families.find(open).projection(projection).await?).await }).await?;
        Ok(open.iter().filter_map(|d| d.get_str("id").ok().map(str::to_owned)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::literal_pattern;

    #[test]
    fn user_text_matches_literally() {
        assert_eq!(literal_pattern("科技"), "科技");
        assert_eq!(literal_pattern("a.b*c"), "a\\.b\\*c");
        assert_eq!(literal_pattern("(x|y)[z]{2}^$\\"), "\\(x\\|y\\)\\[z\\]\\{2\\}\\^\\$\\\\");
        assert_eq!(literal_pattern("张 三"), "张\\ 三");
    }
}
