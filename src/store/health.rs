//! Whether the store answers, and how many round trips it has made (for the readiness report,
//! the metrics and the tests that count store calls per request).

use crate::error::AppResult;
use async_trait::async_trait;

#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// Checks that the store answers.
    async fn ping(&self) -> AppResult<()>;
    /// How many round trips to the store have been made so far (for tests and metrics).
    fn round_trips(&self) -> u64;
}
