//! The GraphQL schema: thin resolvers over the service layer.
//!
//! Resolvers parse their arguments (see `service::input`), find the [`Session`] the HTTP layer
//! put into the request, call one service method and wrap the result in an object type. Related
//! objects (a ticket's customer, a chat's provider) load through per-request [`DataLoader`]s, so a
//! page costs the same number of store calls whatever its size.

mod attachments;
mod caller;
mod canned_replies;
mod chat_history;
mod idempotency;
mod inbox;
mod loaders;
mod metrics;
mod mutation;
mod objects;
mod omitted_variables;
mod own_documents;
mod protection;
mod query;
mod scalars;
mod search;
mod socket_operations;
mod subscription;
mod ticket_objects;

pub use caller::{authenticate, authenticate_limited};
pub use loaders::{CustomerLoader, ProviderLoader};
pub use own_documents::OwnDocuments;
pub use socket_operations::OverWebSocket;

use crate::error::AppError;
use crate::service::{ClientInfo, Services, Session};
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Data, ErrorExtensions, MergedObject, Schema, SchemaBuilder};
use subscription::SubscriptionRoot;

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Everything a provider reads: the core queries and each area's own part.
#[derive(MergedObject, Default)]
pub struct QueryRoot(query::CoreQuery, canned_replies::CannedReplyQuery);

/// Every change a provider makes: the core mutations and each area's own part.
#[derive(MergedObject, Default)]
pub struct MutationRoot(mutation::CoreMutation, canned_replies::CannedReplyMutation);

pub use protection::AuditNote;

/// Builds the schema around the services, with the limits of the security settings: depth,
/// complexity, directives per field, aliases and root fields per operation, and introspection
/// and "did you mean" suggestions for the callers `GRAPHQL_INTROSPECTION` allows (the protection
/// extension refuses the others; `off` also switches both off in the schema itself).
pub fn build_schema(services: Services) -> AppSchema {
    let protection = {
        let settings = services.guard.settings();
        protection::Protection {
            max_aliases: settings.graphql_max_aliases,
            max_root_fields: settings.graphql_max_root_fields,
            introspection: settings.graphql_introspection,
        }
    };
    // The metrics extension comes first, so it sees every outcome, the protection's refusals too.
    limited_schema(services)
        .extension(metrics::OperationMetrics)
        .extension(socket_operations::SocketOperations)
        .extension(protection)
        .finish()
}

/// The schema with the services and async-graphql's own limits of the security settings, and
/// without introspection or suggestions when `GRAPHQL_INTROSPECTION` is `off`; no extension yet.
fn limited_schema(services: Services) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let settings = services.guard.settings();
    let mut builder = Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot)
        .limit_depth(settings.graphql_max_depth)
        .limit_complexity(settings.graphql_max_complexity)
        .limit_directives(settings.graphql_max_directives)
        .limit_recursive_depth(32);
    if settings.graphql_introspection == crate::config::Introspection::Off {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.data(services)
}

/// The schema's SDL, as kept in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), MutationRoot::default(), SubscriptionRoot).finish().sdl()
}

/// Who a request comes from, as the HTTP layer found out from its `Authorization` header.
pub struct RequestAuth(pub Result<Session, AppError>);

impl RequestAuth {
    pub fn missing() -> RequestAuth {
        RequestAuth(Err(AppError::Unauthenticated("请先登录")))
    }

    /// Whether the request carried a valid bearer token.
    pub fn signed_in(&self) -> bool {
        self.0.is_ok()
    }
}

/// Adds the per-request data every resolver relies on: the caller, and the loaders scoped to it.
pub fn with_request_data(
    request: async_graphql::Request,
    services: &Services,
    auth: RequestAuth,
    client: ClientInfo,
) -> async_graphql::Request {
    let mut request = request;
    insert_caller_data(&mut request.data, services, auth, client);
    request
}

/// The data of one WebSocket connection, as [`with_request_data`] gives a request, marked
/// [`OverWebSocket`] so its queries and mutations take the provider's rate and the deadline.
pub fn connection_data(services: &Services, auth: RequestAuth, client: ClientInfo) -> Data {
    let mut data = Data::default();
    insert_caller_data(&mut data, services, auth, client);
    data.insert(OverWebSocket);
    data
}

/// Who the caller is, and the loaders scoped to that provider (they batch; they do not cache, so
/// a long-lived connection sees fresh data).
fn insert_caller_data(data: &mut Data, services: &Services, auth: RequestAuth, client: ClientInfo) {
    if let Ok(session) = &auth.0 {
        data.insert(DataLoader::new(
            CustomerLoader::new(services.customers.clone(), session.provider_id.clone()),
            tokio::spawn,
        ));
        data.insert(DataLoader::new(ProviderLoader::new(services.store.clone()), tokio::spawn));
        data.insert(DataLoader::new(
            attachments::AttachmentLoader::new(services.attachments.clone(), session.provider_id.clone()),
            tokio::spawn,
        ));
    }
    data.insert(auth);
    data.insert(client);
    data.insert(AuditNote::default());
}

/// What resolvers need from the context.
trait ContextExt {
    fn services(&self) -> &Services;
    /// The signed-in provider, or UNAUTHENTICATED.
    fn session(&self) -> async_graphql::Result<&Session>;
    /// Where the request comes from.
    fn client(&self) -> ClientInfo;
    /// Tells the audit log which entity a mutation acts on.
    fn audit_target(&self, target: &str);
    /// Tells the audit log who acted, when the request carried no token.
    fn audit_actor(&self, actor: &crate::domain::Id);
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

    fn client(&self) -> ClientInfo {
        self.data_opt::<ClientInfo>().cloned().unwrap_or_default()
    }

    fn audit_target(&self, target: &str) {
        if let Some(note) = self.data_opt::<AuditNote>() {
            note.target(target);
        }
    }

    fn audit_actor(&self, actor: &crate::domain::Id) {
        if let Some(note) = self.data_opt::<AuditNote>() {
            note.actor(actor);
        }
    }
}
