//! Everything that talks to Redis (`REDIS_URL`), in one adapter folder: the token store
//! ([`tokens`], the store's `TokenStore` port), the shared rate limiter ([`limiter`], the
//! `Limiter` port of `crate::limits`) and the event bus between server processes ([`bus`], the
//! service's `RemoteBus` port), over one way of opening the connection ([`connect_redis`]).
//!
//! Each user opens its own connection manager, so a slow limiter call never queues a token check;
//! keys and channels are named after the store (`pd:{store}:...`), so deployments sharing one Redis
//! stay apart.

pub mod bus;
pub mod limiter;
pub mod tokens;

pub use self::bus::RedisBus;
pub use self::limiter::RedisLimiter;
pub use self::tokens::RedisTokenStore;

use crate::error::{AppError, AppResult};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Opens `REDIS_URL` for one user of Redis (tokens, limits, the bus): a connection manager that
/// reconnects by itself, each attempt and each command bounded by `timeout`. Answers the client
/// too, for users that open more connections (the bus's subscriptions).
pub async fn connect_redis(url: &str, timeout: Duration) -> AppResult<(redis::Client, ConnectionManager)> {
    let client = redis::Client::open(url)
        .map_err(|e| AppError::Internal(format!("REDIS_URL is not a usable Redis URL: {e}")))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    match tokio::time::timeout(timeout * 2, ConnectionManager::new_with_config(client.clone(), config)).await {
        Ok(Ok(connection)) => Ok((client, connection)),
        Ok(Err(error)) => Err(AppError::Unavailable(format!("cannot reach Redis at REDIS_URL: {error}"))),
        Err(_) => Err(AppError::Unavailable("cannot reach Redis at REDIS_URL: timed out".to_owned())),
    }
}
