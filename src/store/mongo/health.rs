//! The health port on MongoDB.

use super::MongoStore;
use crate::error::AppResult;
use crate::store::StoreHealth;
use async_trait::async_trait;
use mongodb::bson::doc;
use std::sync::atomic::Ordering;

#[async_trait]
impl StoreHealth for MongoStore {
    async fn ping(&self) -> AppResult<()> {
        self.op(self.database.run_command(doc! { "ping": 1 })).await.map(drop)
    }

    fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}
