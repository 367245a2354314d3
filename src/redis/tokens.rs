//! Tokens in Redis (`REDIS_URL`): access-token revocations and refresh-token families.
//!
//! Keys (all under the `pd:` prefix):
//!
//! | key | type | holds | expires |
//! | --- | --- | --- | --- |
//! | `pd:revoked:{jti}` | string | `1`: this access token is refused | when the token would have expired |
//! | `pd:family:{id}` | hash | `revokedAt` once the family is revoked | with the family's newest refresh token |
//! | `pd:refresh:{sha256}` | hash | `family`, `provider`, `expiresAt`, `usedAt` once used | when the refresh token expires |
//!
//! Nothing is kept past the moment it stops mattering, so Redis needs no clean-up job. Using a
//! refresh token is one Lua script (atomic on the server): of two concurrent uses, one finds it
//! fresh and one finds it used. The scripts build the family key from the record they read, so
//! they assume one Redis server (or one slot), not a cluster.
//!
//! When Redis cannot be reached, every call answers UNAVAILABLE: a revocation check never passes
//! by default (fail closed), so a signed-out token cannot come back to life during an outage. The
//! connection manager reconnects by itself once Redis is back; no restart is needed.

use super::connect_redis;
use crate::domain::{format_time, Id, Timestamp};
use crate::error::{AppError, AppResult};
use crate::store::{RefreshTokenRecord, RefreshTokenUse, TokenStore};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};
use std::future::Future;
use std::time::Duration;

const PREFIX: &str = "pd:";
/// How long a revoked family is remembered when it had no live refresh token to take the expiry
/// from: longer than any access token issued in it lives.
const ORPHAN_FAMILY_SECONDS: i64 = 31 * 24 * 3600;

/// Marks a refresh token used, atomically, and says what it was.
/// KEYS[1] = the token's key; ARGV[1] = the time of use; ARGV[2] = the key prefix.
/// Answers {} (unknown), {"revoked"}, or {"fresh"|"reused", family, provider, expiresAt}.
const USE_REFRESH_TOKEN: &str = r#"
local found = redis.call('HMGET', KEYS[1], 'family', 'provider', 'expiresAt', 'usedAt')
if not found[1] then return {} end
if redis.call('HEXISTS', ARGV[2] .. 'family:' .. found[1], 'revokedAt') == 1 then return {'revoked'} end
if found[4] then return {'reused', found[1], found[2], found[3]} end
redis.call('HSET', KEYS[1], 'usedAt', ARGV[1])
return {'fresh', found[1], found[2], found[3]}
"#;

/// Revokes a family, keeping the first revocation time.
/// KEYS[1] = the family's key; ARGV[1] = the time; ARGV[2] = seconds to keep a family without expiry.
const REVOKE_FAMILY: &str = r#"
redis.call('HSETNX', KEYS[1], 'revokedAt', ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"#;

pub struct RedisTokenStore {
    connection: ConnectionManager,
    timeout: Duration,
    use_refresh_token: Script,
    revoke_family: Script,
}

impl RedisTokenStore {
    /// Connects to Redis and checks that it answers. `timeout` bounds each connection attempt and
    /// each command.
    pub async fn connect(url: &str, timeout: Duration) -> AppResult<RedisTokenStore> {
        let (_, connection) = connect_redis(url, timeout).await?;
        let store = RedisTokenStore {
            connection,
            timeout,
            use_refresh_token: Script::new(USE_REFRESH_TOKEN),
            revoke_family: Script::new(REVOKE_FAMILY),
        };
        store.ping_tokens().await?;
        Ok(store)
    }

    /// Runs one command (or pipeline, or script) with the time limit, mapping failures.
    async fn run<T, F>(&self, command: impl FnOnce(ConnectionManager) -> F) -> AppResult<T>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, command(self.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(redis_error(error)),
            Err(_) => Err(AppError::Unavailable("redis: the command timed out".to_owned())),
        };
        let labels = [("purpose", "tokens"), ("outcome", crate::metrics::outcome(&result))];
        crate::metrics::histogram("redis_call_duration_seconds", &labels).observe(started.elapsed());
        result
    }
}

fn redis_error(error: RedisError) -> AppError {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
    {
        AppError::Unavailable(format!("redis: {error}"))
    } else {
        AppError::Internal(format!("redis: {error}"))
    }
}

fn revoked_key(jti: &str) -> String {
    format!("{PREFIX}revoked:{jti}")
}

fn family_key(family_id: &str) -> String {
    format!("{PREFIX}family:{family_id}")
}

/// A set of the families of a provider's refresh tokens (revoked ones too, until they expire).
fn provider_families_key(provider: &Id) -> String {
    format!("{PREFIX}provider-families:{provider}")
}

fn refresh_key(token_hash: &str) -> String {
    format!("{PREFIX}refresh:{token_hash}")
}

fn parse_time(text: &str) -> AppResult<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| AppError::Internal(format!("redis: bad time {text:?}: {e}")))
}

#[async_trait]
impl TokenStore for RedisTokenStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping_tokens(&self) -> AppResult<()> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await }).await.map(drop)
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> AppResult<()> {
        let seconds = (expires_at - crate::domain::now()).num_seconds();
        if seconds <= 0 {
            // The token has expired already: nothing to refuse.
            return Ok(());
        }
        let key = revoked_key(jti);
        self.run(|mut c| async move {
            redis::cmd("SET").arg(key).arg(1).arg("EX").arg(seconds).query_async::<()>(&mut c).await
        })
        .await
    }

    async fn is_access_revoked(&self, jti: &str, family_id: &str) -> AppResult<bool> {
        let (token, family) = (revoked_key(jti), family_key(family_id));
        let (token_revoked, family_revoked): (bool, bool) =
            self.run(|mut c| async move {
                redis::pipe().exists(token).hexists(family, "revokedAt").query_async(&mut c).await
            })
            .await?;
        Ok(token_revoked || family_revoked)
    }

    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> AppResult<()> {
        let (token, family) = (refresh_key(&record.token_hash), family_key(&record.family_id));
        let families = provider_families_key(&record.provider_id);
        let expires = record.expires_at.timestamp();
        let fields = [
            ("family", record.family_id.clone()),
            ("provider", record.provider_id.to_string()),
            ("expiresAt", format_time(&record.expires_at)),
        ];
        self.run(|mut c| async move {
            redis::pipe()
                .atomic()
                .hset_multiple(&token, &fields)
                .ignore()
                .expire_at(&token, expires)
                .ignore()
                // The family lives as long as its newest refresh token (each rotation pushes it on).
                .hset_nx(&family, "createdAt", format_time(&crate::domain::now()))
                .ignore()
                .expire_at(&family, expires)
                .ignore()
                .sadd(&families, &record.family_id)
                .ignore()
                .expire_at(&families, expires)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn use_refresh_token(&self, token_hash: &str, at: Timestamp) -> AppResult<RefreshTokenUse> {
        let key = refresh_key(token_hash);
        let at = format_time(&at);
        let found: Vec<String> = self
            .run(|mut c| {
                let script = self.use_refresh_token.clone();
                async move { script.key(key).arg(at).arg(PREFIX).invoke_async(&mut c).await }
            })
            .await?;
        let record = |found: &[String]| -> AppResult<RefreshTokenRecord> {
            match found {
                [_, family, provider, expires_at] => Ok(RefreshTokenRecord {
                    token_hash: token_hash.to_owned(),
                    family_id: family.clone(),
                    provider_id: Id::from_stored(provider.clone()),
                    expires_at: parse_time(expires_at)?,
                }),
                _ => Err(AppError::Internal(format!("redis: unexpected refresh-token record {found:?}"))),
            }
        };
        match found.first().map(String::as_str) {
            None => Ok(RefreshTokenUse::Unknown),
            Some("revoked") => Ok(RefreshTokenUse::Revoked),
            Some("reused") => Ok(RefreshTokenUse::Reused(record(&found)?)),
            Some("fresh") => Ok(RefreshTokenUse::Fresh(record(&found)?)),
            Some(other) => Err(AppError::Internal(format!("redis: unexpected answer {other:?}"))),
        }
    }

    async fn revoke_token_family(&self, family_id: &str, at: Timestamp) -> AppResult<()> {
        let key = family_key(family_id);
        let at = format_time(&at);
        self.run(|mut c| {
            let script = self.revoke_family.clone();
            async move { script.key(key).arg(at).arg(ORPHAN_FAMILY_SECONDS).invoke_async::<i64>(&mut c).await }
        })
        .await
        .map(drop)
    }

    async fn provider_token_families(&self, provider: &Id) -> AppResult<Vec<String>> {
        let key = provider_families_key(provider);
        let families: Vec<String> =
            self.run(|mut c| async move { redis::cmd("SMEMBERS").arg(key).query_async(&mut c).await }).await?;
        if families.is_empty() {
            return Ok(families);
        }
        let mut query = redis::pipe();
        for family in &families {
            query.hexists(family_key(family), "revokedAt");
        }
        let revoked: Vec<bool> = self.run(|mut c| async move { query.query_async(&mut c).await }).await?;
        Ok(families.into_iter().zip(revoked).filter(|(_, revoked)| !revoked).map(|(family, _)| family).collect())
    }
}
