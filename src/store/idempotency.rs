//! What a write that a client may retry did: created now, or replayed from its idempotency key.
//! Shared by the ports whose writes take a key (tickets, chat).

use crate::domain::{EventKind, EventRecord, Id};
use crate::error::{AppError, AppResult};

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
        Err(AppError::Conflict("该幂等键已用于其他操作，请使用新的幂等键".to_owned()))
    }
}
