//! The in-process limiter (no `REDIS_URL`): counts in memory, bounded.
//!
//! The design choice: a fixed ceiling of entries (`MEMORY_LIMITER_MAX_KEYS`), split over
//! [`SHARDS`] shards by the key's hash, each behind its own mutex, so one call locks one shard
//! and does a bounded amount of work whatever the table holds:
//!
//! - **Expiry is incremental.** A shard keeps its entries in a vector beside a key → position
//!   index; every write also looks at the next [`SWEEP_STEP`] entries after a rotating cursor and
//!   removes the expired ones. No call ever scans a whole shard.
//! - **A full shard evicts one entry per new key**: after a longer sweep step, the entry expiring
//!   soonest among [`EVICTION_SAMPLE`] sampled at random, never an active ban while the samples
//!   hold anything else (bans are looked for at the front of every request; a counter evicted early
//!   only gives its client a fresh allowance). This is Redis's `volatile-ttl` policy with a
//!   sample, without its cost of an ordered index.
//!
//! Memory: about [`BYTES_PER_ENTRY`] bytes per entry (key text, entry, index slot and the hash
//! table's spare room), so the default ceiling of 200,000 keys holds about 40 MB at most.

use super::{Gcra, Limiter};
use crate::error::AppResult;
use async_trait::async_trait;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many shards the table is split into.
pub const SHARDS: usize = 32;
/// The ceiling of entries unless `MEMORY_LIMITER_MAX_KEYS` says otherwise.
pub const DEFAULT_MAX_KEYS: usize = 200_000;
/// An upper estimate of one entry's memory, keys of up to 40 bytes (`bad-requests:` and an IPv6
/// /64 is 38).
pub const BYTES_PER_ENTRY: usize = 200;
/// Entries looked at for expiry on every write.
const SWEEP_STEP: usize = 4;
/// Entries looked at for expiry before a full shard evicts.
const FULL_SWEEP_STEP: usize = 32;
/// Entries sampled to choose one to evict.
const EVICTION_SAMPLE: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Entry {
    value: Value,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Value {
    /// A GCRA key's theoretical arrival time.
    Arrival(Instant),
    /// A counter's count.
    Count(u64),
    /// A flag set for a while: a ban.
    Flag,
}

/// One shard: the entries in a vector (for sampling and the sweep cursor) and where each key is.
#[derive(Default)]
struct Shard {
    entries: Vec<(Arc<str>, Entry)>,
    index: HashMap<Arc<str>, usize>,
    cursor: usize,
    /// The state of the shard's random sampling (xorshift).
    random: u64,
}

impl Shard {
    fn get(&self, key: &str, now: Instant) -> Option<Entry> {
        let entry = self.entries[*self.index.get(key)?].1;
        (entry.expires > now).then_some(entry)
    }

    fn remove_at(&mut self, position: usize) {
        let (key, _) = self.entries.swap_remove(position);
        self.index.remove(&key);
        if let Some((moved, _)) = self.entries.get(position) {
            self.index.insert(Arc::clone(moved), position);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(position) = self.index.get(key).copied() {
            self.remove_at(position);
        }
    }

    /// Looks at the next `steps` entries after the cursor and removes the expired ones.
    fn sweep(&mut self, steps: usize, now: Instant) {
        for _ in 0..steps.min(self.entries.len()) {
            if self.cursor >= self.entries.len() {
                self.cursor = 0;
            }
            if self.entries[self.cursor].1.expires <= now {
                self.remove_at(self.cursor);
            } else {
                self.cursor += 1;
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.random.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }

    /// Writes the entry of `key`, making room first when the shard holds `capacity` others.
    fn put(&mut self, key: &str, entry: Entry, capacity: usize, now: Instant) {
        if let Some(&position) = self.index.get(key) {
            self.entries[position].1 = entry;
            return;
        }
        self.sweep(SWEEP_STEP, now);
        if self.entries.len() >= capacity {
            self.sweep(FULL_SWEEP_STEP, now);
        }
        if self.entries.len() >= capacity {
            if let Some(victim) = self.victim(now) {
                self.remove_at(victim);
            }
        }
        let key: Arc<str> = Arc::from(key);
        self.index.insert(Arc::clone(&key), self.entries.len());
        self.entries.push((key, entry));
    }

    /// The entry to evict from a full shard: among a random sample, an expired one, else the one
    /// expiring soonest that is not a ban, else (all bans) the ban expiring soonest.
    fn victim(&mut self, now: Instant) -> Option<usize> {
        let len = self.entries.len();
        if len == 0 {
            return None;
        }
        let rank = |entry: &Entry| (entry.expires > now, matches!(entry.value, Value::Flag), entry.expires);
        let sample: Vec<usize> = if len <= EVICTION_SAMPLE {
            (0..len).collect()
        } else {
            (0..EVICTION_SAMPLE).map(|_| (self.next_random() % len as u64) as usize).collect()
        };
        sample.into_iter().min_by_key(|&position| rank(&self.entries[position].1))
    }
}

pub struct MemoryLimiter {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: RandomState,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        MemoryLimiter::new()
    }
}

impl MemoryLimiter {
    /// A limiter holding at most [`DEFAULT_MAX_KEYS`] entries.
    pub fn new() -> MemoryLimiter {
        MemoryLimiter::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// A limiter holding at most `max_keys` entries (rounded up to a whole number per shard).
    pub fn with_max_keys(max_keys: usize) -> MemoryLimiter {
        let hasher = RandomState::new();
        let shards =
            (0..SHARDS).map(|n| Mutex::new(Shard { random: hasher.hash_one(n) | 1, ..Shard::default() })).collect();
        MemoryLimiter { shards, per_shard: max_keys.div_ceil(SHARDS).max(1), hasher }
    }

    /// The entries held now, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).entries.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with<T>(&self, key: &str, work: impl FnOnce(&mut Shard, Instant, usize) -> T) -> T {
        let shard = &self.shards[(self.hasher.hash_one(key) % SHARDS as u64) as usize];
        let mut shard = lock(shard);
        work(&mut shard, Instant::now(), self.per_shard)
    }
}

fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl Limiter for MemoryLimiter {
    async fn take(&self, key: &str, rate: Gcra) -> AppResult<Option<Duration>> {
        Ok(self.with(key, |shard, now, capacity| {
            let arrival = match shard.get(key, now) {
                Some(Entry { value: Value::Arrival(at), .. }) => at.max(now),
                _ => now,
            };
            let ahead = arrival - now;
            if ahead > rate.tolerance {
                return Some(ahead - rate.tolerance);
            }
            let next = arrival + rate.interval;
            shard.put(key, Entry { value: Value::Arrival(next), expires: next }, capacity, now);
            None
        }))
    }

    async fn hit(&self, key: &str, window: Duration) -> AppResult<(u64, Duration)> {
        Ok(self.with(key, |shard, now, capacity| {
            let entry = match shard.get(key, now) {
                Some(Entry { value: Value::Count(count), expires }) => {
                    Entry { value: Value::Count(count + 1), expires }
                }
                _ => Entry { value: Value::Count(1), expires: now + window },
            };
            shard.put(key, entry, capacity, now);
            let Value::Count(count) = entry.value else { unreachable!("a counter was just written") };
            (count, entry.expires - now)
        }))
    }

    async fn peek(&self, key: &str) -> AppResult<Option<(u64, Duration)>> {
        Ok(self.with(key, |shard, now, _| match shard.get(key, now) {
            Some(Entry { value: Value::Count(count), expires }) => Some((count, expires - now)),
            Some(Entry { value: Value::Flag, expires }) => Some((1, expires - now)),
            _ => None,
        }))
    }

    async fn set_for(&self, key: &str, duration: Duration) -> AppResult<()> {
        self.with(key, |shard, now, capacity| {
            shard.put(key, Entry { value: Value::Flag, expires: now + duration }, capacity, now);
        });
        Ok(())
    }

    async fn clear(&self, key: &str) -> AppResult<()> {
        self.with(key, |shard, _, _| shard.remove(key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: Instant, secs: u64) -> Entry {
        Entry { value: Value::Count(1), expires: now + Duration::from_secs(secs) }
    }

    #[test]
    fn a_full_shard_evicts_the_entry_expiring_soonest_and_never_a_ban_while_anything_else_can_go() {
        let now = Instant::now();
        let mut shard = Shard { random: 7, ..Shard::default() };
        shard.put("ban:a", Entry { value: Value::Flag, expires: now + Duration::from_secs(1) }, 4, now);
        shard.put("soon", at(now, 5), 4, now);
        shard.put("later", at(now, 50), 4, now);
        shard.put("ban:b", Entry { value: Value::Flag, expires: now + Duration::from_secs(2) }, 4, now);
        // Four entries, fewer than a sample: each new key evicts one, chosen among all of them.
        shard.put("new-1", at(now, 100), 4, now);
        assert!(shard.get("soon", now).is_none(), "the counter expiring soonest goes first, not the bans");
        shard.put("new-2", at(now, 100), 4, now);
        assert!(shard.get("later", now).is_none());
        assert!(shard.get("ban:a", now).is_some() && shard.get("ban:b", now).is_some(), "both bans stay");
        assert_eq!(shard.entries.len(), 4, "the ceiling holds");
        assert_eq!(shard.index.len(), 4);
    }

    #[test]
    fn a_shard_of_only_bans_evicts_the_ban_expiring_soonest() {
        let now = Instant::now();
        let mut shard = Shard { random: 7, ..Shard::default() };
        for (key, secs) in [("ban:a", 30), ("ban:b", 10), ("ban:c", 20)] {
            shard.put(key, Entry { value: Value::Flag, expires: now + Duration::from_secs(secs) }, 3, now);
        }
        shard.put("ban:d", Entry { value: Value::Flag, expires: now + Duration::from_secs(40) }, 3, now);
        assert!(shard.get("ban:b", now).is_none());
        assert!(["ban:a", "ban:c", "ban:d"].iter().all(|key| shard.get(key, now).is_some()));
    }

    #[test]
    fn expired_entries_are_swept_a_few_at_a_time_by_later_writes() {
        let start = Instant::now();
        let mut shard = Shard { random: 7, ..Shard::default() };
        for n in 0..40 {
            shard.put(&format!("k{n}"), at(start, 1), 1_000, start);
        }
        let later = start + Duration::from_secs(2);
        shard.put("fresh", at(later, 60), 1_000, later);
        assert_eq!(shard.entries.len(), 41 - SWEEP_STEP, "one write removes at most a step's worth");
        for n in 0..40 {
            shard.put(&format!("fresh{n}"), at(later, 60), 1_000, later);
        }
        assert_eq!(shard.entries.len(), 41, "the expired ones are gone, the fresh ones stay");
        for (position, (key, _)) in shard.entries.iter().enumerate() {
            assert_eq!(shard.index[key], position, "the index follows every move");
        }
    }

    #[tokio::test]
    async fn the_limiter_never_holds_more_than_its_ceiling_and_keeps_counting() {
        let limiter = MemoryLimiter::with_max_keys(SHARDS * 10);
        for n in 0..10_000 {
            limiter
                .hit(&format!("bad-requests:198.51.{}.{}", n / 256, n % 256), Duration::from_secs(600))
                .await
                .unwrap();
        }
        assert!(limiter.len() <= SHARDS * 10, "{} entries", limiter.len());
        let window = Duration::from_secs(600);
        assert_eq!(limiter.hit("k", window).await.unwrap().0, 1);
        assert_eq!(limiter.hit("k", window).await.unwrap().0, 2, "a key just written is counted on");
        limiter.set_for("ban:x", window).await.unwrap();
        assert!(limiter.peek("ban:x").await.unwrap().is_some());
        limiter.clear("ban:x").await.unwrap();
        assert!(limiter.peek("ban:x").await.unwrap().is_none());
    }
}
