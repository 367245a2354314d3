//! DataLoaders: batch the lookups of related objects made while resolving one request.

use crate::domain::{Customer, Id, ServiceProvider};
use crate::error::AppError;
use crate::service::customers::CustomerService;
use crate::store::SharedStore;
use async_graphql::dataloader::Loader;
use std::collections::HashMap;
use std::sync::Arc;

/// Loads customers of one provider (the request's), so a batch can never cross tenants; contact
/// details masked, as everywhere but a customer's own detail.
pub struct CustomerLoader {
    customers: CustomerService,
    provider: Id,
}

impl CustomerLoader {
    pub fn new(customers: CustomerService, provider: Id) -> CustomerLoader {
        CustomerLoader { customers, provider }
    }
}

impl Loader<Id> for CustomerLoader {
    type Value = Customer;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, Customer>, Self::Error> {
        let customers = self.customers.related(&self.provider, keys).await.map_err(Arc::new)?;
        Ok(customers.into_iter().map(|c| (c.id.clone(), c)).collect())
    }
}

/// Loads providers by id (for the provider names shown beside tickets and chats).
pub struct ProviderLoader {
    store: SharedStore,
}

impl ProviderLoader {
    pub fn new(store: SharedStore) -> ProviderLoader {
        ProviderLoader { store }
    }
}

impl Loader<Id> for ProviderLoader {
    type Value = ServiceProvider;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, ServiceProvider>, Self::Error> {
        let providers = self.store.providers_by_ids(keys).await.map_err(Arc::new)?;
        Ok(providers.into_iter().map(|p| (p.id.clone(), p)).collect())
    }
}
