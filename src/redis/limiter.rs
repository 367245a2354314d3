//! The shared limiter (`REDIS_URL`): every process using the same Redis and store shares the counts.
//!
//! Keys are `pd:{store}:rl:{key}` (the store named as for the bus), each expiring when it stops
//! mattering. GCRA is one Lua script on Redis's own clock, so two processes with skewed clocks
//! still agree; counters are INCR with the window's PEXPIRE set by the first hit, in one script.

use super::connect_redis;
use crate::error::{AppError, AppResult};
use crate::limits::{Gcra, Limiter};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Script;
use std::future::Future;
use std::time::Duration;

/// KEYS[1] = the key; ARGV[1] = the interval, ARGV[2] = the tolerance (microseconds).
/// Answers 0 when allowed, else the microseconds until a request is.
const TAKE: &str = r#"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local arrival = tonumber(redis.call('GET', KEYS[1]) or now)
if arrival < now then arrival = now end
if arrival - now > tolerance then
  local wait = arrival - now - tolerance
  if wait < 1 then wait = 1 end
  return wait
end
local next = arrival + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1)
return 0
"#;

/// KEYS[1] = the key; ARGV[1] = the window (milliseconds). Answers {count, milliseconds left}.
const HIT: &str = r#"
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"#;

pub struct RedisLimiter {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    take: Script,
    hit: Script,
}

impl RedisLimiter {
    /// Connects; `store` names the data the limits belong to (see `bus`).
    pub async fn connect(url: &str, store: &str, timeout: Duration) -> AppResult<RedisLimiter> {
        let (_, connection) = connect_redis(url, timeout).await?;
        Ok(RedisLimiter {
            connection,
            prefix: format!("pd:{store}:rl:"),
            timeout,
            take: Script::new(TAKE),
            hit: Script::new(HIT),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn run<T, F>(&self, command: impl FnOnce(ConnectionManager) -> F) -> AppResult<T>
    where
        F: Future<Output = Result<T, redis::RedisError>>,
    {
        match tokio::time::timeout(self.timeout, command(self.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(AppError::Unavailable(format!("redis (rate limits): {error}"))),
            Err(_) => Err(AppError::Unavailable("redis (rate limits): the command timed out".to_owned())),
        }
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn take(&self, key: &str, rate: Gcra) -> AppResult<Option<Duration>> {
        let key = self.key(key);
        let (interval, tolerance) = (rate.interval.as_micros() as u64, rate.tolerance.as_micros() as u64);
        let wait: i64 = self
            .run(|mut c| {
                let script = self.take.clone();
                async move { script.key(key).arg(interval).arg(tolerance).invoke_async(&mut c).await }
            })
            .await?;
        Ok((wait > 0).then(|| Duration::from_micros(wait as u64)))
    }

    async fn hit(&self, key: &str, window: Duration) -> AppResult<(u64, Duration)> {
        let key = self.key(key);
        let window = window.as_millis().max(1) as u64;
        let (count, left): (i64, i64) = self
            .run(|mut c| {
                let script = self.hit.clone();
                async move { script.key(key).arg(window).invoke_async(&mut c).await }
            })
            .await?;
        Ok((count.max(0) as u64, millis(left)))
    }

    async fn peek(&self, key: &str) -> AppResult<Option<(u64, Duration)>> {
        let key = self.key(key);
        let (count, left): (Option<i64>, i64) =
            self.run(|mut c| async move { redis::pipe().get(&key).pttl(&key).query_async(&mut c).await }).await?;
        Ok(count.filter(|_| left > 0).map(|count| (count.max(0) as u64, millis(left))))
    }

    async fn set_for(&self, key: &str, duration: Duration) -> AppResult<()> {
        let key = self.key(key);
        let ms = duration.as_millis().max(1) as u64;
        self.run(
            |mut c| async move { redis::cmd("SET").arg(key).arg(1).arg("PX").arg(ms).query_async::<()>(&mut c).await },
        )
        .await
    }

    async fn clear(&self, key: &str) -> AppResult<()> {
        let key = self.key(key);
        self.run(|mut c| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await }).await
    }
}
