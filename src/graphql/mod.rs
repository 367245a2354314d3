//! The GraphQL schema: thin resolvers over the service layer.
//!
//! Resolvers parse their arguments (see `service::input`), find the [`Session`] the HTTP layer
//! put into the request, call one service method and wrap the result in an object type. Related
//! objects (a ticket's customer, a chat's provider) load through per-request [`DataLoader`]s, so a
//! page costs the same number of store calls whatever its size.

mod loaders;
mod metrics;
mod mutation;
mod objects;
mod query;
mod scalars;
mod subscription;

pub use loaders::{CustomerLoader, ProviderLoader};

use crate::error::AppError;
use crate::service::{Services, Session};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Data, ErrorExtensions, Schema};
use subscription::SubscriptionRoot;

pub type AppSchema = Schema<query::QueryRoot, mutation::MutationRoot, SubscriptionRoot>;

/// Builds the schema around the services.
pub fn build_schema(services: Services) -> AppSchema {
    Schema::build(query::QueryRoot, mutation::MutationRoot, SubscriptionRoot)
        .data(services)
        .extension(metrics::OperationMetrics)
        .finish()
}

/// The schema's SDL, as kept in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(query::QueryRoot, mutation::MutationRoot, SubscriptionRoot).finish().sdl()
}

/// Who a request comes from, as the HTTP layer found out from its `Authorization` header.
pub struct RequestAuth(pub Result<Session, AppError>);

impl RequestAuth {
    pub fn missing() -> RequestAuth {
        RequestAuth(Err(AppError::Unauthenticated("请先登录")))
    }
}

/// Adds the per-request data every resolver relies on: the caller, and the loaders scoped to it.
pub fn with_request_data(
    request: async_graphql::Request,
    services: &Services,
    auth: RequestAuth,
) -> async_graphql::Request {
    let mut request = request;
    insert_caller_data(&mut request.data, services, auth);
    request
}

/// The data of one WebSocket connection, as [`with_request_data`] gives a request.
pub fn connection_data(services: &Services, auth: RequestAuth) -> Data {
    let mut data = Data::default();
    insert_caller_data(&mut data, services, auth);
    data
}

/// Who the caller is, and the loaders scoped to that provider (they batch; they do not cache, so
/// a long-lived connection sees fresh data).
fn insert_caller_data(data: &mut Data, services: &Services, auth: RequestAuth) {
    if let Ok(session) = &auth.0 {
        data.insert(DataLoader::new(
            CustomerLoader::new(services.store.clone(), session.provider_id.clone()),
            tokio::spawn,
        ));
        data.insert(DataLoader::new(ProviderLoader::new(services.store.clone()), tokio::spawn));
    }
    data.insert(auth);
}

/// What resolvers need from the context.
trait ContextExt {
    fn services(&self) -> &Services;
    /// The signed-in provider, or UNAUTHENTICATED.
    fn session(&self) -> async_graphql::Result<&Session>;
}

impl ContextExt for Context<'_> {
    fn services(&self) -> &Services {
        self.data_unchecked::<Services>()
    }

    fn session(&self) -> async_graphql::Result<&Session> {
        match self.data_opt::<RequestAuth>() {
            Some(RequestAuth(Ok(session))) => Ok(session),
            Some(RequestAuth(Err(error))) => Err(error.extend()),
            None => Err(AppError::Unauthenticated("请先登录").extend()),
        }
    }
}
