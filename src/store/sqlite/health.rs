//! The health port on SQLite.

use super::SqliteStore;
use crate::error::AppResult;
use crate::store::StoreHealth;
use async_trait::async_trait;
use std::sync::atomic::Ordering;

#[async_trait]
impl StoreHealth for SqliteStore {
    async fn ping(&self) -> AppResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}
