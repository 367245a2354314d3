//! The event log port: every change someone may watch live is logged under the provider's next
//! cursor in the same unit as the change (1, 2, 3, ... with no holes), so a subscriber that
//! reconnects replays what it missed.

use crate::domain::{Cursor, EventRecord, Id};
use crate::error::AppResult;
use async_trait::async_trait;

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Up to `limit` events of the provider after `after`, in cursor order.
    async fn events_after(&self, provider: &Id, after: Cursor, limit: u32) -> AppResult<Vec<EventRecord>>;
    /// The provider's newest cursor (0 before any event).
    async fn latest_cursor(&self, provider: &Id) -> AppResult<Cursor>;
}
