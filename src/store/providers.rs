//! The providers port: the service providers who sign in, their credentials, and the WeChat openid
//! of the mini-program user signed in as each.

use crate::domain::{Id, ProviderStatus, ServiceProvider, Timestamp};
use crate::error::AppResult;
use async_trait::async_trait;

#[async_trait]
pub trait ProviderStore: Send + Sync + 'static {
    async fn count_providers(&self) -> AppResult<u64>;
    async fn insert_provider(&self, provider: &ServiceProvider, password_hash: &str) -> AppResult<()>;
    /// The provider with this username and its password hash.
    async fn provider_credentials(&self, username: &str) -> AppResult<Option<(ServiceProvider, String)>>;
    async fn providers_by_ids(&self, ids: &[Id]) -> AppResult<Vec<ServiceProvider>>;
    /// Every provider, oldest first (then by username): what an operator lists.
    async fn all_providers(&self) -> AppResult<Vec<ServiceProvider>>;
    /// Sets the status of the provider with this username; false if there is none.
    async fn set_provider_status(&self, username: &str, status: ProviderStatus, at: Timestamp) -> AppResult<bool>;
    /// Replaces the password hash of the provider with this username; false if there is none.
    async fn set_password_hash(&self, username: &str, password_hash: &str, at: Timestamp) -> AppResult<bool>;
    /// The WeChat openid of the mini-program user signed in as the provider, once bound.
    async fn wechat_openid(&self, provider: &Id) -> AppResult<Option<String>>;
    async fn bind_wechat_openid(&self, provider: &Id, openid: &str, at: Timestamp) -> AppResult<()>;
}
