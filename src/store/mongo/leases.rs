//! The leases port on MongoDB.

use super::documents::date;
use super::failures::is_duplicate_key;
use super::MongoStore;
use crate::domain::Timestamp;
use crate::error::AppResult;
use crate::store::LeaseStore;
use async_trait::async_trait;
use mongodb::bson::doc;

#[async_trait]
impl LeaseStore for MongoStore {
    async fn acquire_lease(&self, name: &str, owner: &str, until: Timestamp, now: Timestamp) -> AppResult<bool> {
        // Matches a lease that ran out or is ours; a lease held by another process matches
        // nothing, so the upsert tries to insert a second document with its `_id`, and fails.
        let filter = doc! { "_id": name, "$or": [{ "until": { "$lte": date(&now) } }, { "owner": owner }] };
        let update = doc! { "$set": { "owner": owner, "until": date(&until) } };
        self.op(async {
            match self.leases.update_one(filter, update).upsert(true).await {
                Ok(_) => Ok(true),
                Err(error) if is_duplicate_key(&error) => Ok(false),
                Err(error) => Err(error),
            }
        })
        .await
    }

    async fn release_lease(&self, name: &str, owner: &str) -> AppResult<()> {
        self.op(self.leases.delete_one(doc! { "_id": name, "owner": owner })).await.map(drop)
    }
}
