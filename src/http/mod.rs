//! The HTTP edge: the router, the GraphQL endpoint and the operational endpoints; the request
//! log and HTTP metrics around every route ([`observe`]); the shutdown of WebSockets ([`shutdown`]).

mod docs;
mod graphql;
pub mod integrations;
pub mod observe;
mod ops;
mod playground;
pub mod shutdown;
mod ws;

pub use graphql::authenticate;

use crate::config::IntegrationSettings;
use crate::graphql::AppSchema;
use crate::service::Services;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;

/// The largest GraphQL request body accepted: generous for any real operation, small enough that
/// nobody can make the server buffer megabytes.
pub const MAX_GRAPHQL_BODY_BYTES: usize = 256 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub schema: AppSchema,
    /// Tells the WebSocket connections when the server stops.
    pub shutdown: Arc<shutdown::Shutdown>,
}

/// Every route of the server, with the inbound webhooks of the integrations that are configured.
/// Fails only when a REST document in `rest_compat/` is broken.
pub fn router(state: AppState, integrations: &IntegrationSettings) -> Result<Router, String> {
    let rest = crate::rest::routes(&state.schema)?;
    Ok(Router::new()
        .route("/graphql", post(graphql::execute).layer(RequestBodyLimitLayer::new(MAX_GRAPHQL_BODY_BYTES)))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(docs::routes())
        .merge(integrations::routes(integrations))
        .merge(rest)
        .merge(playground::router())
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state))
}
