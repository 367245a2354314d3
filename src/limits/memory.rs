//! The in-process limiter (no `REDIS_URL`): counts in a map, forgotten when they expire.

use super::{Gcra, Limiter};
use crate::error::AppResult;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Expired entries are swept once the map holds this many.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// A GCRA key's theoretical arrival time, or a counter's count.
    value: Slot,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Arrival(Instant),
    Count(u64),
}

#[derive(Default)]
pub struct MemoryLimiter {
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryLimiter {
    pub fn new() -> MemoryLimiter {
        MemoryLimiter::default()
    }

    fn with<T>(&self, work: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, entry| entry.expires > now);
        }
        work(&mut entries, now)
    }
}

#[async_trait]
impl Limiter for MemoryLimiter {
    async fn take(&self, key: &str, rate: Gcra) -> AppResult<Option<Duration>> {
        Ok(self.with(|entries, now| {
            let arrival = match entries.get(key) {
                Some(Entry { value: Slot::Arrival(at), expires }) if *expires > now => (*at).max(now),
                _ => now,
            };
            let ahead = arrival - now;
            if ahead > rate.tolerance {
                return Some(ahead - rate.tolerance);
            }
            let next = arrival + rate.interval;
            entries.insert(key.to_owned(), Entry { value: Slot::Arrival(next), expires: next });
            None
        }))
    }

    async fn hit(&self, key: &str, window: Duration) -> AppResult<(u64, Duration)> {
        Ok(self.with(|entries, now| {
            let entry = match entries.get(key) {
                Some(Entry { value: Slot::Count(count), expires }) if *expires > now => {
                    Entry { value: Slot::Count(count + 1), expires: *expires }
                }
                _ => Entry { value: Slot::Count(1), expires: now + window },
            };
            entries.insert(key.to_owned(), entry);
            let Slot::Count(count) = entry.value else { unreachable!("a counter was just written") };
            (count, entry.expires - now)
        }))
    }

    async fn peek(&self, key: &str) -> AppResult<Option<(u64, Duration)>> {
        Ok(self.with(|entries, now| match entries.get(key) {
            Some(Entry { value: Slot::Count(count), expires }) if *expires > now => Some((*count, *expires - now)),
            _ => None,
        }))
    }

    async fn set_for(&self, key: &str, duration: Duration) -> AppResult<()> {
        self.with(|entries, now| {
            entries.insert(key.to_owned(), Entry { value: Slot::Count(1), expires: now + duration });
        });
        Ok(())
    }

    async fn clear(&self, key: &str) -> AppResult<()> {
        self.with(|entries, _| entries.remove(key));
        Ok(())
    }
}
