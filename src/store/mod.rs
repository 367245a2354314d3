//! The storage port: what the service layer needs from a database, and nothing more.
//!
//! The port speaks domain types and is shaped so that both adapters fit without contortions:
//! every list is a filter plus a [`PageRequest`] answered with a total; every change that must be
//! all-or-nothing (a ticket change with its history entries and its notification) is one call, so
//! SQLite runs it in one transaction and MongoDB in one document update (history embedded) plus
//! one insert; state transitions are compare-and-set on a version, so concurrent writers never
//! lose each other's work. Every call is scoped by the provider id where the data is a tenant's.
//!
//! Every write that someone may watch live also appends to the provider's event log in the same
//! unit (see [`crate::domain::EventRecord`]), so an event is never published that was not stored,
//! and never stored without being replayable. Writes a client may retry take an idempotency key.
//!
//! Writes that another system must hear about (a chat reply, a ticket escalated or resolved, a
//! chat escalated, a customer alert) take the outbox deliveries the service layer decided on
//! ([`OutboxDraft`]) and store them in the same unit, under the sequence of the write's first
//! event; the dispatcher then claims them with a lease ([`Store::claim_deliveries`]), so a change
//! is never committed without its deliveries, nor a delivery queued for a change that failed.
//!
//! Adapters: [`sqlite`] (the embedded default) and [`mongo`] (`MONGODB_URI`) implement both ports;
//! [`redis`] (`REDIS_URL`) implements the [`TokenStore`] port only.

pub mod mongo;
pub mod redis;
pub mod sqlite;

use crate::domain::{
    AuditEntry, ChatMessage, ChatSender, ChatStatus, Cursor, Customer, CustomerStatus, EventKind, EventRecord, Id,
    Notification, NotificationType, OutboxDraft, OutboxEntry, Page, PageRequest, ReadStatus, ServiceProvider, Ticket,
    TicketStatus, TicketType, Timestamp,
};
use crate::error::AppResult;
use async_trait::async_trait;
use std::sync::Arc;

/// The store as the rest of the application holds it.
pub type SharedStore = Arc<dyn Store>;

/// The token store as the rest of the application holds it.
pub type SharedTokenStore = Arc<dyn TokenStore>;

/// Which customers to list.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Only customers whose expiry date is after this time.
    pub expiry_after: Option<Timestamp>,
    /// Only customers whose expiry date is at or before this time.
    pub expiry_until: Option<Timestamp>,
    /// A substring of the name or of the contact person, matched literally.
    pub keyword: Option<String>,
}

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub customer_id: Option<Id>,
    pub status: Option<TicketStatus>,
    pub ticket_type: Option<TicketType>,
}

/// Which notifications to list.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub notification_type: Option<NotificationType>,
    pub read_status: Option<ReadStatus>,
}

/// A change to a ticket, applied as one unit: the ticket's new state, the history entries that
/// record it and the notification that announces it.
#[derive(Debug, Clone)]
pub struct TicketChange {
    /// The ticket as it is to be stored. Its `version` is the version the change was computed from;
    /// the store applies the change only if the stored ticket still has that version.
    pub ticket: Ticket,
    pub appended_history: Vec<crate::domain::HistoryEntry>,
    pub notification: Notification,
    /// Deliveries to other systems that the change causes, queued with it.
    pub outbox: Vec<OutboxDraft>,
}

/// A customer's stored status moving to what its expiry date gives now (the status job), with
/// the alert that announces it, if any, and the deliveries that alert causes.
#[derive(Debug, Clone)]
pub struct CustomerStatusChange {
    pub provider_id: Id,
    pub customer_id: Id,
    /// The stored status the change was computed from: the store applies the change only if the
    /// customer still has it (compare-and-set), so two runs cannot both announce it.
    pub from: CustomerStatus,
    pub to: CustomerStatus,
    /// The `customer_alert` notification. Its id is derived from the customer, the status and
    /// the expiry date, and the store writes it only if no notification with that id exists, so
    /// a customer is alerted once per status per expiry date.
    pub alert: Option<Notification>,
    pub outbox: Vec<OutboxDraft>,
}

/// How many deliveries of the outbox are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

/// What a write that may be a client's retry did.
#[derive(Debug, Clone)]
pub enum Written<T> {
    /// Stored now, with the events it logged.
    Created(T, Vec<EventRecord>),
    /// The idempotency key had been used: this is what the first request stored.
    Replayed(T),
}

impl<T> Written<T> {
    pub fn value(&self) -> &T {
        match self {
            Written::Created(value, _) | Written::Replayed(value) => value,
        }
    }
}

/// How a write with an idempotency key went, inside an adapter's transaction.
pub(crate) enum KeyedWrite {
    Created(Vec<EventRecord>),
    /// The key had been used, by a write of this kind (an [`EventKind`] spelling) that created this
    /// subject.
    Replayed {
        kind: String,
        subject: Id,
    },
}

/// The first request's subject for a key used before, if it was the same kind of write.
pub(crate) fn replayed_subject(kind: &str, subject: Id, expected: EventKind) -> AppResult<Id> {
    if kind == expected.as_str() {
        Ok(subject)
    } else {
        Err(crate::error::AppError::Conflict("该幂等键已用于其他操作，请使用新的幂等键".to_owned()))
    }
}

/// A refresh token as stored: only the hash of the token itself is kept.
#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub provider_id: Id,
    pub expires_at: Timestamp,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone)]
pub enum RefreshTokenUse {
    /// The token was valid and unused; it is now used up.
    Fresh(RefreshTokenRecord),
    /// The token had been used before: a sign that it was stolen.
    Reused(RefreshTokenRecord),
    /// The token's family was revoked (logout or an earlier reuse).
    Revoked,
    /// No such token.
    Unknown,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the store answers.
    async fn ping(&self) -> AppResult<()>;

    /// How many round trips to the store have been made so far (for tests and metrics).
    fn round_trips(&self) -> u64;

    // --- providers ---
    async fn count_providers(&self) -> AppResult<u64>;
    async fn insert_provider(&self, provider: &ServiceProvider, password_hash: &str) -> AppResult<()>;
    /// The provider with this username and its password hash.
    async fn provider_credentials(&self, username: &str) -> AppResult<Option<(ServiceProvider, String)>>;
    async fn providers_by_ids(&self, ids: &[Id]) -> AppResult<Vec<ServiceProvider>>;
    /// Replaces the password hash of the provider with this username; false if there is none.
    async fn set_password_hash(&self, username: &str, password_hash: &str, at: Timestamp) -> AppResult<bool>;

    // --- customers ---
    async fn insert_customer(&self, customer: &Customer) -> AppResult<()>;
    /// Customers of a provider, most recently updated first, with `unresolved_issues` counted.
    async fn list_customers(
        &self,
        provider: &Id,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> AppResult<Page<Customer>>;
    /// Those of the given customers that belong to the provider, in no particular order.
    async fn customers_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Customer>>;
    /// The given customers, whichever provider they belong to (for the integrations, which act
    /// for no provider), in no particular order.
    async fn customers_anywhere(&self, ids: &[Id]) -> AppResult<Vec<Customer>>;
    /// Inserts or updates customers synced from the SaaS system: every field the SaaS system owns
    /// (contact data, version, ports, dates, usage measures, `updated_at`, `usage_updated_at`,
    /// `last_active_time`). A new customer is stored whole; an existing one keeps its id,
    /// provider, creation time and stored status. Answers, per customer, whether it was saved:
    /// `false` when the id belongs to another provider's customer.
    async fn save_customers(&self, customers: &[Customer]) -> AppResult<Vec<bool>>;
    /// Up to `limit` customers (of any provider) whose stored status is not the one their expiry
    /// date gives at `now`.
    async fn customers_with_stale_status(&self, now: Timestamp, limit: u32) -> AppResult<Vec<Customer>>;
    /// Applies a status change if the stored status is still `from`, with its alert (unless one
    /// with the alert's id exists) and the alert's event and deliveries; `None` if the status had
    /// changed in between.
    async fn apply_customer_status(&self, change: &CustomerStatusChange) -> AppResult<Option<Vec<EventRecord>>>;
    /// Rewrites any stored copy of the usage score that differs from the score the stored usage
    /// measures give; answers how many were rewritten.
    async fn reconcile_usage_scores(&self) -> AppResult<u64>;

    // --- tickets ---
    /// Stores a new ticket with its history, the notification announcing it and the deliveries it
    /// causes, and logs an event for each of the first two. With an idempotency key already used
    /// for a ticket, stores nothing and answers that ticket.
    async fn insert_ticket(
        &self,
        ticket: &Ticket,
        notification: &Notification,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<Ticket>>;
    /// Tickets of a provider, most recently updated first, each with its history.
    async fn list_tickets(&self, provider: &Id, filter: &TicketFilter, page: PageRequest) -> AppResult<Page<Ticket>>;
    async fn ticket(&self, provider: &Id, id: &Id) -> AppResult<Option<Ticket>>;
    /// Applies a change if the stored version still matches, logging the ticket's and the
    /// notification's events and queuing its deliveries; `None` if another change came first.
    async fn apply_ticket_change(&self, change: &TicketChange) -> AppResult<Option<Vec<EventRecord>>>;

    // --- notifications ---
    async fn insert_notification(&self, notification: &Notification) -> AppResult<EventRecord>;
    /// Notifications of a provider, newest first.
    async fn list_notifications(
        &self,
        provider: &Id,
        filter: &NotificationFilter,
        page: PageRequest,
    ) -> AppResult<Page<Notification>>;
    async fn unread_count(&self, provider: &Id) -> AppResult<u64>;
    async fn notification(&self, provider: &Id, id: &Id) -> AppResult<Option<Notification>>;
    /// Marks one notification read (keeping the first read time if it already was).
    async fn mark_notification_read(&self, provider: &Id, id: &Id, at: Timestamp) -> AppResult<Option<Notification>>;
    /// Marks every unread notification of the provider read; returns how many changed.
    async fn mark_all_notifications_read(&self, provider: &Id, at: Timestamp) -> AppResult<u64>;

    // --- chat ---
    /// Stores a chat message, logs its event and queues the deliveries it causes. With an
    /// idempotency key already used for a message, stores nothing and answers that message.
    async fn insert_chat_message(
        &self,
        message: &ChatMessage,
        idempotency_key: Option<&Id>,
        outbox: &[OutboxDraft],
    ) -> AppResult<Written<ChatMessage>>;
    async fn chat_message(&self, provider: &Id, id: &Id) -> AppResult<Option<ChatMessage>>;
    /// Moves those of the given messages of one conversation that `sender` wrote forward to
    /// `status` (sent → delivered → read; never back), logging an event for each message that
    /// moved. Answers the moved messages.
    async fn advance_chat_status(
        &self,
        provider: &Id,
        customer: &Id,
        ids: &[Id],
        sender: ChatSender,
        status: ChatStatus,
    ) -> AppResult<Vec<(ChatMessage, EventRecord)>>;
    /// A page of the conversation with one customer. Page 1 holds the latest messages; within a
    /// page, messages run oldest to newest, as a chat window shows them.
    async fn list_chat_messages(&self, provider: &Id, customer: &Id, page: PageRequest)
        -> AppResult<Page<ChatMessage>>;

    // --- event log ---
    /// Up to `limit` events of the provider after `after`, in cursor order.
    async fn events_after(&self, provider: &Id, after: Cursor, limit: u32) -> AppResult<Vec<EventRecord>>;
    /// The provider's newest cursor (0 before any event).
    async fn latest_cursor(&self, provider: &Id) -> AppResult<Cursor>;

    // --- WeChat ---
    /// The WeChat openid of the mini-program user signed in as the provider, once bound.
    async fn wechat_openid(&self, provider: &Id) -> AppResult<Option<String>>;
    async fn bind_wechat_openid(&self, provider: &Id, openid: &str, at: Timestamp) -> AppResult<()>;

    // --- the outbox ---
    /// Claims up to `limit` deliveries that are due at `now`, each the first pending delivery of
    /// its ordering key and not leased by anyone (or whose lease ran out), leasing them to `owner`
    /// until `lease_until`. A delivery whose ordering key holds an earlier pending one is never
    /// claimed, so a conversation's deliveries go out one at a time, in order.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> AppResult<Vec<OutboxEntry>>;
    /// Marks a pending delivery delivered (counting the attempt), whoever holds its lease.
    async fn complete_delivery(&self, id: &Id, at: Timestamp) -> AppResult<()>;
    /// Records a failed attempt of a delivery leased to `owner`: it waits until `retry_at`, or,
    /// with `None`, becomes a dead letter. Does nothing if the lease passed to someone else.
    async fn fail_delivery(
        &self,
        id: &Id,
        owner: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        at: Timestamp,
    ) -> AppResult<()>;
    /// Up to `limit` dead letters, oldest first.
    async fn dead_letters(&self, limit: u32) -> AppResult<Vec<OutboxEntry>>;
    /// Puts dead letters (the given ones, or all with `None`) back in the queue with a fresh set
    /// of attempts, due at `at`; answers how many.
    async fn replay_dead_letters(&self, ids: Option<&[Id]>, at: Timestamp) -> AppResult<u64>;
    async fn outbox_counts(&self) -> AppResult<OutboxCounts>;
    /// Deletes deliveries delivered before `before`; answers how many.
    async fn prune_outbox(&self, before: Timestamp) -> AppResult<u64>;

    // --- leases (scheduled jobs) ---
    /// Takes the named lease for `owner` until `until`, if it is free, ran out at or before `now`,
    /// or is `owner`'s already; answers whether `owner` holds it now.
    async fn acquire_lease(&self, name: &str, owner: &str, until: Timestamp, now: Timestamp) -> AppResult<bool>;
    /// Gives the lease up, if `owner` holds it.
    async fn release_lease(&self, name: &str, owner: &str) -> AppResult<()>;
    // --- audit log ---
    async fn insert_audit_entry(&self, entry: &AuditEntry) -> AppResult<()>;
    /// The provider's audit entries, newest first.
    async fn list_audit_entries(&self, provider: &Id, page: PageRequest) -> AppResult<Page<AuditEntry>>;
}

/// The token port: what sign-in, sign-out and refresh need to remember. It is its own port so that
/// tokens can live in Redis (`REDIS_URL`) while the data lives elsewhere; without Redis the main
/// store's adapter implements it too.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// What holds the tokens, for the readiness report (`sqlite`, `mongodb`, `redis`).
    fn backend(&self) -> &'static str;
    /// Whether only this process revokes the tokens held here (the embedded store: one server per
    /// data directory), so that a token found unrevoked may be trusted until this process revokes
    /// it, without asking again on every request.
    fn revoked_only_here(&self) -> bool {
        false
    }
    /// Checks that the token store answers.
    async fn ping_tokens(&self) -> AppResult<()>;
    /// Refuses an access token until `expires_at`.
    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> AppResult<()>;
    /// Whether the access token or its whole family has been revoked.
    async fn is_access_revoked(&self, jti: &str, family_id: &str) -> AppResult<bool>;
    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> AppResult<()>;
    /// Uses up a refresh token, atomically: of two concurrent uses, one is `Fresh`, one `Reused`.
    async fn use_refresh_token(&self, token_hash: &str, at: Timestamp) -> AppResult<RefreshTokenUse>;
    /// Revokes a refresh-token family, and with it every access token issued in it.
    async fn revoke_token_family(&self, family_id: &str, at: Timestamp) -> AppResult<()>;
    /// The families of the provider's refresh tokens that are not revoked: its signed-in sessions.
    async fn provider_token_families(&self, provider: &Id) -> AppResult<Vec<String>>;
}
