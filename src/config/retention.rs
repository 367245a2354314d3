//! Retention settings: how long the prune jobs (`crate::service::jobs`) keep the rows of the tables
//! that would otherwise grow forever, and how many they delete per write.
//!
//! Every default errs towards keeping: the event log is the replay log of subscriptions, so it is
//! kept well beyond how long a client stays away and reconnects with a cursor; idempotency keys at
//! least the 24 hours the IETF Idempotency-Key draft suggests (shorter is refused); tokens until
//! well past their expiry, so a clock a little off never turns a revoked token into an unknown one
//! while it could still be accepted.

use super::reader::{ConfigError, Reader};
use std::time::Duration;

const HOUR: u64 = 3_600;

/// What the prune jobs keep.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// `EVENT_RETENTION_DAYS`: how long logged events are kept (a subscriber reconnecting with an
    /// older cursor misses what was pruned).
    pub events: Duration,
    /// `IDEMPOTENCY_KEY_RETENTION_HOURS`: how long a used key answers a retry with the first result.
    pub idempotency_keys: Duration,
    /// `EXPIRED_TOKEN_RETENTION_HOURS`: how long revoked access tokens, refresh tokens and token
    /// families are kept past their expiry.
    pub expired_tokens: Duration,
    /// `RETENTION_BATCH_SIZE`: rows deleted per write.
    pub batch: u32,
}

impl RetentionSettings {
    pub(super) fn read(env: &Reader) -> Result<RetentionSettings, ConfigError> {
        let hours = |variable, range, default| {
            env.number_in::<u64>(variable, range, default).map(|hours| Duration::from_secs(hours * HOUR))
        };
        Ok(RetentionSettings {
            events: env.days("EVENT_RETENTION_DAYS", 1..=3_650, Duration::from_secs(30 * 24 * HOUR))?,
            idempotency_keys: hours("IDEMPOTENCY_KEY_RETENTION_HOURS", 24..=87_600, 24)?,
            expired_tokens: hours("EXPIRED_TOKEN_RETENTION_HOURS", 0..=8_760, 24)?,
            batch: env.number_in("RETENTION_BATCH_SIZE", 1..=100_000, 1_000)?,
        })
    }
}
