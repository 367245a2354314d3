//! The HTTP edge: the router, the GraphQL endpoint and the operational endpoints.

mod graphql;
mod ops;
mod playground;
mod ws;

use crate::graphql::AppSchema;
use crate::service::Services;
use axum::routing::{get, post};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// The largest GraphQL request body accepted: generous for any real operation, small enough that
/// nobody can make the server buffer megabytes.
pub const MAX_GRAPHQL_BODY_BYTES: usize = 256 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub schema: AppSchema,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", post(graphql::execute).layer(RequestBodyLimitLayer::new(MAX_GRAPHQL_BODY_BYTES)))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .merge(playground::router())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
