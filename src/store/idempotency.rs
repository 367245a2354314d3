//! Idempotency keys: what a write that a client may retry did (created now, or replayed from its
//! key), shared by the ports whose writes take a key (tickets, chat); and the [`IdempotencyStore`]
//! port, which keeps the first successful answer given under a key.
//!
//! Both live in one row per (provider, key) of `idempotency_keys`: the write claims the key in its
//! own transaction (kind and subject), so nothing is stored twice even when the answer is lost;
//! recording the answer then completes that row, or inserts one for a mutation that claims none.

use crate::domain::{EventKind, EventRecord, Id, Timestamp};
use crate::error::{AppError, AppResult};
use async_trait::async_trait;

/// The `kind` of a row that only holds an answer: its mutation claimed nothing in the store.
pub const ANSWER_ONLY_KIND: &str = "answer";

/// What a key's row says a write did with it: the kind of write and the subject it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub kind: String,
    pub subject: Id,
}

/// The first successful answer given under a key, and the fingerprint of the request it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub fingerprint: String,
    pub answer: String,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// What the write that claimed this key in its transaction did with it, if one did.
    async fn key_claim(&self, provider: &Id, key: &Id) -> AppResult<Option<KeyClaim>>;
    /// The answer recorded under a key, if one was.
    async fn stored_answer(&self, provider: &Id, key: &Id) -> AppResult<Option<StoredAnswer>>;
    /// Records the answer to a key's first request, in the key's claim row (or a new row of kind
    /// [`ANSWER_ONLY_KIND`] created at `at`). An answer already recorded stays: the stored one is
    /// answered, so that concurrent requests agree on it.
    async fn record_answer(
        &self,
        provider: &Id,
        key: &Id,
        fingerprint: &str,
        answer: &str,
        at: Timestamp,
    ) -> AppResult<StoredAnswer>;
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
        Err(key_used_elsewhere())
    }
}

/// The CONFLICT of a key that a write of another kind, or on another subject, claimed.
pub fn key_used_elsewhere() -> AppError {
    AppError::Conflict("该幂等键已用于其他操作，请使用新的幂等键".to_owned())
}
