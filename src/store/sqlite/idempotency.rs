//! Idempotency keys inside a write's transaction: a key used before answers the first write's
//! subject instead of writing again.

use super::rows::time_text;
use crate::domain::{EventKind, Id, Timestamp};
use crate::store::KeyedWrite;
use rusqlite::{params, Connection, OptionalExtension};

/// What an idempotency key holds, if it was used: the kind and id of what it created.
pub(super) fn used_idempotency_key(
    transaction: &Connection,
    provider: &Id,
    key: &Id,
) -> rusqlite::Result<Option<(String, Id)>> {
    transaction
        .prepare_cached("SELECT kind, subject_id FROM idempotency_keys WHERE provider_id = ? AND key = ?")?
        .query_row([provider.as_str(), key.as_str()], |row| Ok((row.get(0)?, Id::from_stored(row.get(1)?))))
        .optional()
}

pub(super) fn record_idempotency_key(
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
pub(super) fn claim_key(
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
