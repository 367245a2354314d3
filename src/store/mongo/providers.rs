//! The providers port on MongoDB.

use super::documents::{date, Fields, ReadResult};
use super::failures::{bad_document, is_duplicate_key};
use super::MongoStore;
use super::{collect, ids_bson, read};
use crate::domain::{Id, ProviderStatus, ServiceProvider, Timestamp};
use crate::error::AppResult;
use crate::store::ProviderStore;
use async_trait::async_trait;
use mongodb::bson::{doc, Document};

#[async_trait]
impl ProviderStore for MongoStore {
    async fn count_providers(&self) -> AppResult<u64> {
        self.op(self.providers.count_documents(doc! {})).await
    }

    async fn insert_provider(&self, provider: &ServiceProvider, password_hash: &str) -> AppResult<()> {
        self.op(self.providers.insert_one(provider_document(provider, password_hash))).await.map(drop)
    }

    async fn provider_credentials(&self, username: &str) -> AppResult<Option<(ServiceProvider, String)>> {
        let found = self.op(self.providers.find_one(doc! { "username": username })).await?;
        match found {
            None => Ok(None),
            Some(doc) => {
                let provider = provider_from(&doc).map_err(bad_document)?;
                let hash = password_hash_from(&doc).map_err(bad_document)?;
                Ok(Some((provider, hash)))
            }
        }
    }

    async fn set_password_hash(&self, username: &str, password_hash: &str, at: Timestamp) -> AppResult<bool> {
        let update = doc! { "$set": { "password": password_hash, "updatedAt": date(&at) } };
        let result = self.op(self.providers.update_one(doc! { "username": username }, update)).await?;
        Ok(result.matched_count > 0)
    }

    async fn providers_by_ids(&self, ids: &[Id]) -> AppResult<Vec<ServiceProvider>> {
        let documents = self
            .op(async { collect(self.providers.find(doc! { "id": { "$in": ids_bson(ids) } }).await?).await })
            .await?;
        read(&documents, provider_from)
    }

    async fn all_providers(&self) -> AppResult<Vec<ServiceProvider>> {
        let documents =
            self.op(async { collect(self.providers.find(doc! {}).sort(providers_order()).await?).await }).await?;
        read(&documents, provider_from)
    }

    async fn set_provider_status(&self, username: &str, status: ProviderStatus, at: Timestamp) -> AppResult<bool> {
        let update = doc! { "$set": { "status": status.as_str(), "updatedAt": date(&at) } };
        let result = self.op(self.providers.update_one(doc! { "username": username }, update)).await?;
        Ok(result.matched_count > 0)
    }

    async fn wechat_openid(&self, provider: &Id) -> AppResult<Option<String>> {
        let found = self.op(self.wechat_bindings.find_one(doc! { "providerId": provider.as_str() })).await?;
        Ok(found.and_then(|d| d.get_str("openId").ok().map(str::to_owned)))
    }

    async fn bind_wechat_openid(&self, provider: &Id, openid: &str, at: Timestamp) -> AppResult<()> {
        let filter = doc! { "providerId": provider.as_str() };
        let update = doc! { "$set": { "openId": openid, "boundAt": date(&at) } };
        self.op(async {
            match self.wechat_bindings.update_one(filter.clone(), update.clone()).upsert(true).await {
                // Two bindings raced to create the document: the other one did; set ours.
                Err(error) if is_duplicate_key(&error) => {
                    self.wechat_bindings.update_one(filter, update).await.map(drop)
                }
                other => other.map(drop),
            }
        })
        .await
    }
}

/// The provider with its bcrypt hash in `password`, the spec's field for it.
pub(super) fn provider_document(p: &ServiceProvider, password_hash: &str) -> Document {
    doc! {
        "id": p.id.as_str(),
        "username": &p.username,
        "password": password_hash,
        "name": &p.name,
        "contactPerson": &p.contact_person,
        "phone": &p.phone,
        "email": &p.email,
        "region": &p.region,
        "status": p.status.as_str(),
        "createdAt": date(&p.created_at),
        "updatedAt": date(&p.updated_at),
    }
}

pub(super) fn provider_from(doc: &Document) -> ReadResult<ServiceProvider> {
    let f = Fields::new(doc, "provider");
    Ok(ServiceProvider {
        id: f.id("id")?,
        username: f.text("username")?,
        name: f.text("name")?,
        contact_person: f.text("contactPerson")?,
        phone: f.text("phone")?,
        email: f.text("email")?,
        region: f.text("region")?,
        status: f.value("status", ProviderStatus::parse)?,
        created_at: f.time("createdAt")?,
        updated_at: f.time("updatedAt")?,
    })
}

pub(super) fn password_hash_from(doc: &Document) -> ReadResult<String> {
    Fields::new(doc, "provider").text("password")
}

/// Every provider, oldest first.
pub(super) fn providers_order() -> Document {
    doc! { "createdAt": 1, "username": 1 }
}
