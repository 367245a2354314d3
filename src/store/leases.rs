//! The leases port: named, expiring leases, so one process at a time runs a scheduled job.

use crate::domain::Timestamp;
use crate::error::AppResult;
use async_trait::async_trait;

#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the named lease for `owner` until `until`, if it is free, ran out at or before `now`,
    /// or is `owner`'s already; answers whether `owner` holds it now.
    async fn acquire_lease(&self, name: &str, owner: &str, until: Timestamp, now: Timestamp) -> AppResult<bool>;
    /// Gives the lease up, if `owner` holds it.
    async fn release_lease(&self, name: &str, owner: &str) -> AppResult<()>;
}
