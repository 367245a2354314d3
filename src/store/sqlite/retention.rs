//! The retention port on SQLite: each call is one write transaction deleting at most one batch,
//! chosen through an index on the table's time column (`schema.sql`), so the writer is never held
//! for longer than one batch takes.

use super::rows::time_text;
use super::SqliteStore;
use crate::domain::Timestamp;
use crate::error::AppResult;
use crate::store::{Retained, RetentionStore};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn prune(&self, table: Retained, before: Timestamp, batch: u32) -> AppResult<u64> {
        let sql = match table {
            // A provider's next cursor is counted from its newest event, so that one stays.
            Retained::Events => {
                "DELETE FROM events WHERE (provider_id, cursor) IN (
                     SELECT provider_id, cursor FROM events AS old WHERE at < ?1
                     AND cursor < (SELECT MAX(cursor) FROM events AS newest WHERE newest.provider_id = old.provider_id)
                     LIMIT ?2)"
            }
            Retained::IdempotencyKeys => {
                "DELETE FROM idempotency_keys WHERE (provider_id, key) IN (
                     SELECT provider_id, key FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)"
            }
            Retained::RevokedAccessTokens => {
                "DELETE FROM revoked_access_tokens WHERE rowid IN (
                     SELECT rowid FROM revoked_access_tokens WHERE expires_at < ?1 LIMIT ?2)"
            }
            Retained::RefreshTokens => {
                "DELETE FROM refresh_tokens WHERE rowid IN (
                     SELECT rowid FROM refresh_tokens WHERE expires_at < ?1 LIMIT ?2)"
            }
            // A family keeps no expiry here: it goes with its last refresh token (every access token
            // issued in it expired before that one did), so the cut-off is the tokens'.
            Retained::TokenFamilies => {
                "DELETE FROM token_families WHERE rowid IN (
                     SELECT rowid FROM token_families AS family
                     WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = family.id) LIMIT ?2)"
            }
        };
        let before = time_text(&before);
        // Every statement numbers its parameters ?1 (the cut-off) and ?2 (the batch), even the one
        // that does not read ?1, so one binding fits all.
        self.write(move |t| t.prepare_cached(sql)?.execute(params![before, batch]).map(|n| n as u64)).await
    }
}
