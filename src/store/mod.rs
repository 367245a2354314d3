//! The storage port: what the service layer needs from a database, and nothing more.
//!
//! The port speaks domain types and is shaped so that both adapters fit without contortions:
//! every list is a filter plus a [`PageRequest`] answered with a total; every change that must be
//! all-or-nothing (a ticket change with its history entries and its notification) is one call, so
//! SQLite and MongoDB each run it in one transaction; state transitions are compare-and-set on a version, so concurrent writers never
//! lose each other's work. Every call is scoped by the provider id where the data is a tenant's.
//!
//! Every write that someone may watch live also appends to the provider's event log in the same
//! unit (see [`crate::domain::EventRecord`]), so an event is never published that was not stored,
//! and never stored without being replayable. Writes a client may retry take an idempotency key.
//!
//! Writes that another system must hear about (a chat reply, a ticket escalated or resolved, a
//! chat escalated, a customer alert) take the outbox deliveries the service layer decided on
//! ([`OutboxDraft`]) and store them in the same unit, under the sequence of the write's first
//! event; the dispatcher then claims them with a lease ([`OutboxStore::claim_deliveries`]), so a change
//! is never committed without its deliveries, nor a delivery queued for a change that failed.
//!
//! # Ports by area
//!
//! The port is a set of small traits, one file each: [`ProviderStore`], [`CustomerStore`],
//! [`TicketStore`], [`NotificationStore`], [`ChatStore`], [`ConversationStore`], [`EventStore`], [`OutboxStore`],
//! [`LeaseStore`], [`AuditStore`], [`CannedReplyStore`], [`IdempotencyStore`], [`RetentionStore`], [`SearchStore`], [`AttachmentStore`], [`StoreHealth`], and [`TokenStore`] apart. [`Store`] is their sum,
//! implemented for every type that implements them all; a service holds only the ports it uses
//! (an `Arc<dyn Store>` coerces to any of them).
//!
//! Each adapter is split the same way, one file per area, with its shared plumbing apart:
//! [`sqlite`] (the embedded default) and [`mongo`] (`MONGODB_URI`) implement every port; the Redis
//! adapter (`crate::redis`, `REDIS_URL`) implements [`TokenStore`] only. The contract suite
//! (`tests/contract`) holds both adapters to the same behaviour, with no HTTP in between: a new
//! store method gets its first test there.

pub mod attachments;
pub mod audit;
pub mod canned_replies;
pub mod chat;
pub mod conversations;
pub mod customers;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod leases;
pub mod mongo;
pub mod notifications;
pub mod outbox;
pub mod providers;
pub mod read_shapes;
pub mod retention;
pub mod search;
pub mod sqlite;
pub mod tickets;
pub mod tokens;

pub use self::attachments::{AttachmentStore, BlobReader};
pub use self::audit::AuditStore;
pub use self::canned_replies::CannedReplyStore;
pub use self::chat::{ChatCursor, ChatStore, ChatWindow};
pub use self::conversations::{ConversationStore, MarkedConversation, ReadNotice};
pub use self::customers::{CustomerFilter, CustomerStatusChange, CustomerStore};
pub use self::events::EventStore;
pub use self::health::StoreHealth;
pub use self::idempotency::{key_used_elsewhere, IdempotencyStore, KeyClaim, StoredAnswer, Written, ANSWER_ONLY_KIND};
pub(crate) use self::idempotency::{replayed_subject, KeyedWrite};
pub use self::leases::LeaseStore;
pub use self::notifications::{NotificationFilter, NotificationStore};
pub use self::outbox::{OutboxCounts, OutboxStore};
pub use self::providers::ProviderStore;
pub use self::retention::{Retained, RetentionStore};
pub use self::search::SearchStore;
pub use self::tickets::{SlaFilter, TicketChange, TicketFilter, TicketStore};
pub use self::tokens::{RefreshTokenRecord, RefreshTokenUse, Successor, TokenStore};
use std::sync::Arc;

/// The whole storage port: every area's port. Implemented for every type that implements them
/// all, so an adapter only implements the areas.
pub trait Store:
    StoreHealth
    + ProviderStore
    + CustomerStore
    + TicketStore
    + NotificationStore
    + ChatStore
    + ConversationStore
    + EventStore
    + OutboxStore
    + LeaseStore
    + AuditStore
    + CannedReplyStore
    + IdempotencyStore
    + RetentionStore
    + SearchStore
    + AttachmentStore
{
}

impl<T> Store for T where
    T: StoreHealth
        + ProviderStore
        + CustomerStore
        + TicketStore
        + NotificationStore
        + ChatStore
        + ConversationStore
        + EventStore
        + OutboxStore
        + LeaseStore
        + AuditStore
        + CannedReplyStore
        + IdempotencyStore
        + RetentionStore
        + SearchStore
        + AttachmentStore
{
}

/// The store as the rest of the application holds it.
pub type SharedStore = Arc<dyn Store>;

/// The token store as the rest of the application holds it.
pub type SharedTokenStore = Arc<dyn TokenStore>;
