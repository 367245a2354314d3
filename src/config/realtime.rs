//! Realtime settings: what one WebSocket connection may hold open and how often it is pinged.
//!
//! They are fields of `SecuritySettings` (`ws_max_subscriptions`, `ws_ping_interval`), where the
//! rest of the code has always found them; this file owns their defaults and how they are read.

use super::reader::{ConfigError, Reader};
use std::time::Duration;

/// Subscriptions one connection may run at once unless `WS_MAX_SUBSCRIPTIONS` says otherwise.
pub(super) const DEFAULT_WS_MAX_SUBSCRIPTIONS: usize = 20;

/// How often an open connection is pinged (and its session checked) unless `WS_PING_SECONDS`
/// says otherwise: often enough that mobile networks and proxies keep an idle connection open.
pub(super) const DEFAULT_WS_PING_INTERVAL: Duration = Duration::from_secs(20);

/// `WS_MAX_SUBSCRIPTIONS`, from 1 to 10,000.
pub(super) fn ws_max_subscriptions(env: &Reader) -> Result<usize, ConfigError> {
    env.number_in("WS_MAX_SUBSCRIPTIONS", 1..=10_000, DEFAULT_WS_MAX_SUBSCRIPTIONS)
}

/// `WS_PING_SECONDS`, from 1 to 300.
pub(super) fn ws_ping_interval(env: &Reader) -> Result<Duration, ConfigError> {
    env.secs("WS_PING_SECONDS", 1..=300, DEFAULT_WS_PING_INTERVAL)
}
