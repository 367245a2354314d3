//! Tokens in Redis (`REDIS_URL`): access-token revocations and refresh-token families.
//!
//! Keys (all under `pd:{store}:`, the store named as for the bus and the limiter, so two
//! deployments or test runs sharing one Redis keep their families apart):
//!
//! | key | type | holds | expires |
//! | --- | --- | --- | --- |
//! | `revoked:{jti}` | string | `1`: this access token is refused | when the token would have expired |
//! | `family:{id}` | hash | `revokedAt` once the family is revoked | with the family's newest refresh token |
//! | `refresh:{sha256}` | hash | `family`, `provider`, `expiresAt`; once used `usedAt` and `successor` (its successor's hash) | when the refresh token expires |
//! | `provider-families:{id}` | set | the families of the provider's refresh tokens | with its newest refresh token |
//!
//! Nothing is kept past the moment it stops mattering, so Redis needs no clean-up job. Rotating a
//! refresh token is one Lua script (atomic on the server): the old token marked used and its
//! successor stored together, and of two concurrent rotations one finds it fresh and one finds it
//! used. The scripts build the family keys from the record they read, so they assume one Redis
//! server (or one slot), not a cluster.
//!
//! Before the keys were named after the store they lived under a bare `pd:`: revocations written
//! there are still honoured (checked beside the new keys) until the last of them has expired
//! ([`LEGACY_UNTIL`]); refresh tokens issued under it are not carried over (their sessions sign
//! in again once their access token expires).
//!
//! When Redis cannot be reached, every call answers UNAVAILABLE: a revocation check never passes
//! by default (fail closed), so a signed-out token cannot come back to life during an outage. The
//! connection manager reconnects by itself once Redis is back; no restart is needed.

use super::connect_redis;
use crate::domain::{format_time, Id, Timestamp};
use crate::error::{AppError, AppResult};
use crate::store::{RefreshTokenRecord, RefreshTokenUse, Successor, TokenStore};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{RedisError, Script};
use std::future::Future;
use std::time::Duration;

/// The prefix of the keys written before they were named after the store.
const LEGACY_PREFIX: &str = "pd:";
/// Until when a revocation under [`LEGACY_PREFIX`] may still matter: the longest it was kept
/// ([`ORPHAN_FAMILY_SECONDS`]) after this version shipped. After it, the legacy checks can go.
const LEGACY_UNTIL: &str = "2027-01-01T00:00:00Z";
/// How long a revoked family is remembered when it had no live refresh token to take the expiry
/// from: longer than any access token issued in it lives.
const ORPHAN_FAMILY_SECONDS: i64 = 31 * 24 * 3600;

/// Rotates a refresh token, atomically, and says what it was.
/// KEYS[1] = the token's key, KEYS[2] = its successor's key; ARGV[1] = the time of use, ARGV[2] =
/// the key prefix, ARGV[3] = the successor's hash, ARGV[4] / ARGV[5] = the successor's expiry as
/// text / Unix seconds.
/// Answers {} (unknown), {"revoked"}, {"fresh", family, provider, expiresAt} or
/// {"reused", family, provider, expiresAt, usedAt, "1" if ARGV[3] is its unused successor else "0"}.
const ROTATE_REFRESH_TOKEN: &str = r#"
local found = redis.call('HMGET', KEYS[1], 'family', 'provider', 'expiresAt', 'usedAt', 'successor')
if not found[1] then return {} end
local family = ARGV[2] .. 'family:' .. found[1]
if redis.call('HEXISTS', family, 'revokedAt') == 1 then return {'revoked'} end
if found[4] then
  local unused = '0'
  if found[5] == ARGV[3] and redis.call('EXISTS', KEYS[2]) == 1 and redis.call('HEXISTS', KEYS[2], 'usedAt') == 0 then
    unused = '1'
  end
  return {'reused', found[1], found[2], found[3], found[4], unused}
end
redis.call('HSET', KEYS[1], 'usedAt', ARGV[1], 'successor', ARGV[3])
redis.call('HSET', KEYS[2], 'family', found[1], 'provider', found[2], 'expiresAt', ARGV[4])
redis.call('EXPIREAT', KEYS[2], ARGV[5])
redis.call('HSETNX', family, 'createdAt', ARGV[1])
redis.call('EXPIREAT', family, ARGV[5])
local families = ARGV[2] .. 'provider-families:' .. found[2]
redis.call('SADD', families, found[1])
redis.call('EXPIREAT', families, ARGV[5])
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
    /// `pd:{store}:`.
    prefix: String,
    timeout: Duration,
    rotate_refresh_token: Script,
    revoke_family: Script,
}

impl RedisTokenStore {
    /// Connects to Redis and checks that it answers. `store` names the data the tokens belong to
    /// (see `bus`); `timeout` bounds each connection attempt and each command.
    pub async fn connect(url: &str, store: &str, timeout: Duration) -> AppResult<RedisTokenStore> {
        let (_, connection) = connect_redis(url, timeout).await?;
        let store = RedisTokenStore {
            connection,
            prefix: format!("pd:{store}:"),
            timeout,
            rotate_refresh_token: Script::new(ROTATE_REFRESH_TOKEN),
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

impl RedisTokenStore {
    fn revoked_key(&self, jti: &str) -> String {
        format!("{}revoked:{jti}", self.prefix)
    }

    fn family_key(&self, family_id: &str) -> String {
        format!("{}family:{family_id}", self.prefix)
    }

    /// A set of the families of a provider's refresh tokens (revoked ones too, until they expire).
    fn provider_families_key(&self, provider: &Id) -> String {
        format!("{}provider-families:{provider}", self.prefix)
    }

    fn refresh_key(&self, token_hash: &str) -> String {
        format!("{}refresh:{token_hash}", self.prefix)
    }
}

/// Whether a revocation written under [`LEGACY_PREFIX`] may still be in force.
fn legacy_revocations_matter() -> bool {
    parse_time(LEGACY_UNTIL).is_ok_and(|until| crate::domain::now() < until)
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
        let key = self.revoked_key(jti);
        self.run(|mut c| async move {
            redis::cmd("SET").arg(key).arg(1).arg("EX").arg(seconds).query_async::<()>(&mut c).await
        })
        .await
    }

    async fn is_access_revoked(&self, jti: &str, family_id: &str) -> AppResult<bool> {
        let (token, family) = (self.revoked_key(jti), self.family_key(family_id));
        let mut query = redis::pipe();
        query.exists(token).hexists(family, "revokedAt");
        if legacy_revocations_matter() {
            query.exists(format!("{LEGACY_PREFIX}revoked:{jti}"));
            query.hexists(format!("{LEGACY_PREFIX}family:{family_id}"), "revokedAt");
        }
        let revoked: Vec<bool> = self.run(|mut c| async move { query.query_async(&mut c).await }).await?;
        Ok(revoked.into_iter().any(|revoked| revoked))
    }

    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> AppResult<()> {
        let (token, family) = (self.refresh_key(&record.token_hash), self.family_key(&record.family_id));
        let families = self.provider_families_key(&record.provider_id);
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

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: &Successor,
        at: Timestamp,
    ) -> AppResult<RefreshTokenUse> {
        let (key, successor_key) = (self.refresh_key(token_hash), self.refresh_key(&successor.token_hash));
        let found: Vec<String> = self
            .run(|mut c| {
                let mut script = self.rotate_refresh_token.prepare_invoke();
                script.key(key).key(successor_key).arg(format_time(&at)).arg(&self.prefix);
                script.arg(&successor.token_hash);
                script.arg(format_time(&successor.expires_at)).arg(successor.expires_at.timestamp());
                async move { script.invoke_async(&mut c).await }
            })
            .await?;
        let record = |found: &[String]| -> AppResult<RefreshTokenRecord> {
            match found {
                [_, family, provider, expires_at, ..] => Ok(RefreshTokenRecord {
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
            Some("fresh") => Ok(RefreshTokenUse::Fresh(record(&found)?)),
            Some("reused") => match &found[..] {
                [.., used_at, unused] => Ok(RefreshTokenUse::Reused {
                    record: record(&found)?,
                    used_at: parse_time(used_at)?,
                    successor_unused: unused == "1",
                }),
                _ => Err(AppError::Internal(format!("redis: unexpected refresh-token record {found:?}"))),
            },
            Some(other) => Err(AppError::Internal(format!("redis: unexpected answer {other:?}"))),
        }
    }

    async fn revoke_token_family(&self, family_id: &str, at: Timestamp) -> AppResult<()> {
        let key = self.family_key(family_id);
        let at = format_time(&at);
        self.run(|mut c| {
            let script = self.revoke_family.clone();
            async move { script.key(key).arg(at).arg(ORPHAN_FAMILY_SECONDS).invoke_async::<i64>(&mut c).await }
        })
        .await
        .map(drop)
    }

    async fn provider_token_families(&self, provider: &Id) -> AppResult<Vec<String>> {
        let key = self.provider_families_key(provider);
        let families: Vec<String> =
            self.run(|mut c| async move { redis::cmd("SMEMBERS").arg(key).query_async(&mut c).await }).await?;
        if families.is_empty() {
            return Ok(families);
        }
        let mut query = redis::pipe();
        for family in &families {
            query.hexists(self.family_key(family), "revokedAt");
        }
        let revoked: Vec<bool> = self.run(|mut c| async move { query.query_async(&mut c).await }).await?;
        Ok(families.into_iter().zip(revoked).filter(|(_, revoked)| !revoked).map(|(family, _)| family).collect())
    }
}
