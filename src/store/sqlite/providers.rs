//! The providers port on SQLite.

use super::rows::{id, parse_time, parse_value, time_text};
use super::sql::{id_values, placeholders};
use super::SqliteStore;
use crate::domain::{Id, ProviderStatus, ServiceProvider, Timestamp};
use crate::error::AppResult;
use crate::store::ProviderStore;
use async_trait::async_trait;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

#[async_trait]
impl ProviderStore for SqliteStore {
    async fn count_providers(&self) -> AppResult<u64> {
        self.read(|c| c.query_row("SELECT COUNT(*) FROM providers", [], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n.max(0) as u64)
    }

    async fn insert_provider(&self, p: &ServiceProvider, password_hash: &str) -> AppResult<()> {
        let (p, hash) = (p.clone(), password_hash.to_owned());
        self.write(move |t| {
            t.execute(
                "INSERT INTO providers (id, username, password_hash, name, contact_person, phone, email, region,
                     status, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    p.id.as_str(),
                    p.username,
                    hash,
                    p.name,
                    p.contact_person,
                    p.phone,
                    p.email,
                    p.region,
                    p.status.as_str(),
                    time_text(&p.created_at),
                    time_text(&p.updated_at),
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn provider_credentials(&self, username: &str) -> AppResult<Option<(ServiceProvider, String)>> {
        let username = username.to_owned();
        self.read(move |c| {
            c.prepare_cached(&provider_credentials_sql())?
                .query_row([username], |row| Ok((provider_from_row(row)?, row.get("password_hash")?)))
                .optional()
        })
        .await
    }

    async fn set_password_hash(&self, username: &str, password_hash: &str, at: Timestamp) -> AppResult<bool> {
        let (username, hash, at) = (username.to_owned(), password_hash.to_owned(), time_text(&at));
        self.write(move |t| {
            t.execute(
                "UPDATE providers SET password_hash = ?, updated_at = ? WHERE username = ?",
                params![hash, at, username],
            )
        })
        .await
        .map(|changed| changed > 0)
    }

    async fn providers_by_ids(&self, ids: &[Id]) -> AppResult<Vec<ServiceProvider>> {
        let ids = ids.to_vec();
        self.read(move |c| {
            c.prepare(&providers_by_ids_sql(ids.len()))?
                .query_map(params_from_iter(id_values(&ids)), provider_from_row)?
                .collect()
        })
        .await
    }

    async fn all_providers(&self) -> AppResult<Vec<ServiceProvider>> {
        self.read(|c| c.prepare(&all_providers_sql())?.query_map([], provider_from_row)?.collect()).await
    }

    async fn set_provider_status(&self, username: &str, status: ProviderStatus, at: Timestamp) -> AppResult<bool> {
        let (username, at) = (username.to_owned(), time_text(&at));
        self.write(move |t| {
            t.execute(
                "UPDATE providers SET status = ?, updated_at = ? WHERE username = ?",
                params![status.as_str(), at, username],
            )
        })
        .await
        .map(|changed| changed > 0)
    }

    async fn wechat_openid(&self, provider: &Id) -> AppResult<Option<String>> {
        let provider = provider.clone();
        self.read(move |c| {
            c.prepare_cached(WECHAT_OPENID_SQL)?.query_row([provider.as_str()], |row| row.get(0)).optional()
        })
        .await
    }

    async fn bind_wechat_openid(&self, provider: &Id, openid: &str, at: Timestamp) -> AppResult<()> {
        let (provider, openid) = (provider.clone(), openid.to_owned());
        self.write(move |t| {
            t.execute(
                "INSERT INTO wechat_bindings (provider_id, openid, bound_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (provider_id) DO UPDATE SET openid = ?2, bound_at = ?3",
                params![provider.as_str(), openid, time_text(&at)],
            )
            .map(drop)
        })
        .await
    }
}

/// The parameter is the username.
pub(super) fn provider_credentials_sql() -> String {
    format!("SELECT {PROVIDER_COLUMNS}, password_hash FROM providers WHERE username = ?")
}

/// `count` providers by id; the parameters are the ids.
pub(super) fn providers_by_ids_sql(count: usize) -> String {
    format!("SELECT {PROVIDER_COLUMNS} FROM providers WHERE id IN ({})", placeholders(count))
}

/// Every provider, oldest first.
pub(super) fn all_providers_sql() -> String {
    format!("SELECT {PROVIDER_COLUMNS} FROM providers ORDER BY created_at, username")
}

/// The parameter is the provider.
pub(super) const WECHAT_OPENID_SQL: &str = "SELECT openid FROM wechat_bindings WHERE provider_id = ?";

pub(super) const PROVIDER_COLUMNS: &str =
    "id, username, name, contact_person, phone, email, region, status, created_at, updated_at";

pub(super) fn provider_from_row(row: &Row<'_>) -> rusqlite::Result<ServiceProvider> {
    Ok(ServiceProvider {
        id: id(row, 0)?,
        username: row.get(1)?,
        name: row.get(2)?,
        contact_person: row.get(3)?,
        phone: row.get(4)?,
        email: row.get(5)?,
        region: row.get(6)?,
        status: parse_value(row, 7, ProviderStatus::parse)?,
        created_at: parse_time(row, 8)?,
        updated_at: parse_time(row, 9)?,
    })
}
