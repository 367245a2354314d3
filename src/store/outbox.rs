//! The outbox port: deliveries to other systems, stored in the same unit as the change that
//! causes them and claimed by the dispatcher with a lease, one at a time per ordering key; and
//! ephemeral deliveries, queued on their own with an expiry and never kept once sent or expired.

use crate::domain::{Id, OutboxDraft, OutboxEntry, Timestamp};
use crate::error::AppResult;
use async_trait::async_trait;

/// How many deliveries of the outbox are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Queues an ephemeral delivery on its own (no write, no event: its sequence is its
    /// `created_at` in Unix milliseconds), due at `created_at`, dropped unsent at `expires_at`.
    async fn queue_expiring_delivery(&self, draft: &OutboxDraft, expires_at: Timestamp) -> AppResult<()>;
    /// Deletes a delivery whatever its state (an ephemeral one that was sent, or refused).
    async fn drop_delivery(&self, id: &Id) -> AppResult<()>;
    /// Claims up to `limit` deliveries that are due at `now`, each the first pending delivery of
    /// its ordering key and not leased by anyone (or whose lease ran out), leasing them to `owner`
    /// until `lease_until`. A delivery whose ordering key holds an earlier pending one is never
    /// claimed, so a conversation's deliveries go out one at a time, in order. Ephemeral
    /// deliveries that expired by `now` are deleted first, never claimed.
    async fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> AppResult<Vec<OutboxEntry>>;
    /// Marks a pending delivery delivered (counting the attempt), whoever holds its lease.
    async fn complete_delivery(&self, id: &Id, at: Timestamp) -> AppResult<()>;
    /// Records a failed attempt of a delivery leased to `owner`: it waits until `retry_at`, or,
    /// with `None`, becomes a dead letter. Does nothing if the lease passed to someone else.
    async fn fail_delivery(
        &self,
        id: &Id,
        owner: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        at: Timestamp,
    ) -> AppResult<()>;
    /// Up to `limit` dead letters, oldest first.
    async fn dead_letters(&self, limit: u32) -> AppResult<Vec<OutboxEntry>>;
    /// Puts dead letters (the given ones, or all with `None`) back in the queue with a fresh set
    /// of attempts, due at `at`; answers how many.
    async fn replay_dead_letters(&self, ids: Option<&[Id]>, at: Timestamp) -> AppResult<u64>;
    async fn outbox_counts(&self) -> AppResult<OutboxCounts>;
    /// Deletes deliveries delivered before `before`; answers how many.
    async fn prune_outbox(&self, before: Timestamp) -> AppResult<u64>;
}
