//! Realtime settings: what one WebSocket connection may hold open, how often it is pinged, and how
//! far back a resuming subscription may replay the event log.
//!
//! They are fields of `SecuritySettings` (`ws_max_subscriptions`, `ws_ping_interval`,
//! `replay_window`), where the rest of the code has always found them; this file owns their
//! defaults and how they are read.

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

/// How far back a subscription's `after` may reach: at most `max_events` events behind the newest,
/// and none older than `max_age` (`EVENT_REPLAY_MAX_EVENTS`, `EVENT_REPLAY_MAX_AGE_HOURS`). The
/// log itself is never read further: an older cursor is refused, and the client reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    pub max_events: u64,
    pub max_age: Duration,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow { max_events: 10_000, max_age: Duration::from_secs(168 * 3600) }
    }
}

/// `EVENT_REPLAY_MAX_EVENTS` (1 to 1,000,000) and `EVENT_REPLAY_MAX_AGE_HOURS` (1 to 8,760).
pub(super) fn replay_window(env: &Reader) -> Result<ReplayWindow, ConfigError> {
    let defaults = ReplayWindow::default();
    let hours = env.number_in("EVENT_REPLAY_MAX_AGE_HOURS", 1..=8_760, defaults.max_age.as_secs() / 3600)?;
    Ok(ReplayWindow {
        max_events: env.number_in("EVENT_REPLAY_MAX_EVENTS", 1..=1_000_000, defaults.max_events)?,
        max_age: Duration::from_secs(hours * 3600),
    })
}
