//! Idempotency keys inside a write's transaction: a key used before answers the first write's
//! subject instead of writing again. And the [`IdempotencyStore`] port: the first answer given
//! under a key, kept in the key's row (`fingerprint`, `answer`; added to databases made before).

use super::rows::time_text;
use super::SqliteStore;
use crate::domain::{EventKind, Id, Timestamp};
use crate::error::AppResult;
use crate::store::{IdempotencyStore, KeyClaim, KeyedWrite, StoredAnswer, ANSWER_ONLY_KIND};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

/// Adds the answer's columns to an `idempotency_keys` table created before they existed.
pub(super) fn add_answer_columns(connection: &Connection) -> rusqlite::Result<()> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('idempotency_keys')")?;
    let columns = statement.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    for column in ["fingerprint", "answer"] {
        if !columns.iter().any(|c| c == column) {
            connection.execute_batch(&format!("ALTER TABLE idempotency_keys ADD COLUMN {column} TEXT"))?;
        }
    }
    Ok(())
}

/// Whether a key was claimed (or holds an answer) already.
pub(super) fn key_is_used(transaction: &Connection, provider: &Id, key: &Id) -> rusqlite::Result<bool> {
    Ok(used_idempotency_key(transaction, provider, key)?.is_some())
}

/// Claims a key for a change applied in the same transaction, after [`key_is_used`] said it was free.
pub(super) fn claim_change_key(
    transaction: &Connection,
    provider: &Id,
    key: &Id,
    claim: &KeyClaim,
    at: Timestamp,
) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO idempotency_keys (provider_id, key, kind, subject_id, created_at) VALUES (?, ?, ?, ?, ?)",
        )?
        .execute(params![provider.as_str(), key.as_str(), claim.kind, claim.subject.as_str(), time_text(&at)])
        .map(drop)
}

fn stored_answer_in(connection: &Connection, provider: &Id, key: &Id) -> rusqlite::Result<Option<StoredAnswer>> {
    connection
        .prepare_cached(
            "SELECT fingerprint, answer FROM idempotency_keys
             WHERE provider_id = ? AND key = ? AND answer IS NOT NULL",
        )?
        .query_row([provider.as_str(), key.as_str()], |row| {
            Ok(StoredAnswer { fingerprint: row.get::<_, Option<String>>(0)?.unwrap_or_default(), answer: row.get(1)? })
        })
        .optional()
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn key_claim(&self, provider: &Id, key: &Id) -> AppResult<Option<KeyClaim>> {
        let (provider, key) = (provider.clone(), key.clone());
        let used = self.read(move |c| used_idempotency_key(c, &provider, &key)).await?;
        Ok(used.filter(|(kind, _)| kind != ANSWER_ONLY_KIND).map(|(kind, subject)| KeyClaim { kind, subject }))
    }

    async fn stored_answer(&self, provider: &Id, key: &Id) -> AppResult<Option<StoredAnswer>> {
        let (provider, key) = (provider.clone(), key.clone());
        self.read(move |c| stored_answer_in(c, &provider, &key)).await
    }

    async fn record_answer(
        &self,
        provider: &Id,
        key: &Id,
        fingerprint: &str,
        answer: &str,
        at: Timestamp,
    ) -> AppResult<StoredAnswer> {
        let (provider, key) = (provider.clone(), key.clone());
        let (fingerprint, answer) = (fingerprint.to_owned(), answer.to_owned());
        self.write(move |t| {
            t.prepare_cached(
                "INSERT INTO idempotency_keys (provider_id, key, kind, subject_id, created_at, fingerprint, answer)
                 VALUES (?, ?, ?, '', ?, ?, ?)
                 ON CONFLICT (provider_id, key) DO UPDATE
                 SET fingerprint = excluded.fingerprint, answer = excluded.answer WHERE answer IS NULL",
            )?
            .execute(params![
                provider.as_str(),
                key.as_str(),
                ANSWER_ONLY_KIND,
                time_text(&at),
                fingerprint,
                answer
            ])?;
            let stored = stored_answer_in(t, &provider, &key)?;
            Ok(stored.unwrap_or(StoredAnswer { fingerprint, answer }))
        })
        .await
    }
}

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
