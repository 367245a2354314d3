//! The leases port on SQLite.

use super::rows::millis;
use super::SqliteStore;
use crate::domain::Timestamp;
use crate::error::AppResult;
use crate::store::LeaseStore;
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(&self, name: &str, owner: &str, until: Timestamp, now: Timestamp) -> AppResult<bool> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(move |t| {
            t.prepare_cached(
                "INSERT INTO leases (name, owner, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET owner = ?2, until = ?3 WHERE leases.until <= ?4 OR leases.owner = ?2",
            )?
            .execute(params![name, owner, millis(&until), millis(&now)])
            .map(|changed| changed == 1)
        })
        .await
    }

    async fn release_lease(&self, name: &str, owner: &str) -> AppResult<()> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(move |t| t.execute("DELETE FROM leases WHERE name = ? AND owner = ?", [name, owner]).map(drop)).await
    }
}
