//! The tokens port on SQLite. A rotation is one write transaction, so it is atomic by itself.

use super::rows;
use super::rows::time_text;
use super::SqliteStore;
use crate::domain::{Id, Timestamp};
use crate::error::AppResult;
use crate::store::StoreHealth;
use crate::store::{RefreshTokenRecord, RefreshTokenUse, Successor, TokenStore};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl TokenStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn revoked_only_here(&self) -> bool {
        true
    }

    async fn ping_tokens(&self) -> AppResult<()> {
        StoreHealth::ping(self).await
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

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: &Successor,
        at: Timestamp,
    ) -> AppResult<RefreshTokenUse> {
        let (token_hash, successor) = (token_hash.to_owned(), successor.clone());
        // One write transaction: the old token marked used and its successor stored commit
        // together, and the single writer serializes concurrent rotations.
        self.write(move |t| {
            let found = t
                .query_row(
                    "SELECT r.family_id, r.provider_id, r.expires_at, r.used_at, f.revoked_at IS NOT NULL
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
                        Ok((record, rows::parse_optional_time(row, 3)?, row.get::<_, bool>(4)?))
                    },
                )
                .optional()?;
            Ok(match found {
                None => RefreshTokenUse::Unknown,
                Some((_, _, true)) => RefreshTokenUse::Revoked,
                Some((record, Some(used_at), false)) => {
                    // Only the rotation that used the token stored a successor in this writer, so
                    // the successor existing in the family means it is the one.
                    let successor_unused = t.query_row(
                        "SELECT EXISTS (SELECT 1 FROM refresh_tokens
                         WHERE token_hash = ? AND family_id = ? AND used_at IS NULL)",
                        params![successor.token_hash, record.family_id],
                        |row| row.get(0),
                    )?;
                    RefreshTokenUse::Reused { record, used_at, successor_unused }
                }
                Some((record, None, false)) if record.expires_at <= at => RefreshTokenUse::Unknown,
                Some((record, None, false)) => {
                    t.execute(
                        "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?",
                        params![time_text(&at), token_hash],
                    )?;
                    t.execute(
                        "INSERT INTO refresh_tokens (token_hash, family_id, provider_id, expires_at) VALUES (?, ?, ?, ?)",
                        params![
                            successor.token_hash,
                            record.family_id,
                            record.provider_id.as_str(),
                            time_text(&successor.expires_at)
                        ],
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
