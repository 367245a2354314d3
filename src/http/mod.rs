//! The HTTP edge: the router, the GraphQL endpoint and the operational endpoints; the request
//! log and HTTP metrics around every route ([`observe`]); the shutdown of WebSockets ([`shutdown`]);
//! giving memory back once the server is quiet ([`quiet`]); the listener ([`listener`]) and serving
//! its connections with their timeouts and caps ([`connections`]); `/metrics`
//! and who may read it ([`metrics`]).

pub mod connections;
mod docs;
pub mod edge;
mod graphql;
pub mod integrations;
pub mod listener;
pub mod metrics;
pub mod observe;
mod ops;
mod playground;
pub mod quiet;
pub mod shutdown;
mod ws;

pub use crate::graphql::{authenticate, authenticate_limited};

use crate::config::IntegrationSettings;
use crate::graphql::AppSchema;
use crate::rest::RestState;
use crate::service::Services;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum::Router;
use edge::Edge;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
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

/// Every route of the server, with the inbound webhooks of the integrations that are configured
/// and `/metrics` as its rule for this listener says. Fails only when a REST document in
/// `rest_compat/` is broken.
pub fn router(
    state: AppState,
    integrations: &IntegrationSettings,
    metrics: metrics::MetricsEndpoint,
) -> Result<Router, String> {
    let rest = crate::rest::routes(RestState { services: state.services.clone(), schema: state.schema.clone() })?;
    let guard = state.services.guard.clone();
    let edge = Edge { settings: Arc::new(guard.settings().clone()), guard };
    let router = Router::new()
        .route("/graphql", post(graphql::execute).layer(RequestBodyLimitLayer::new(MAX_GRAPHQL_BODY_BYTES)))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .merge(metrics.routes())
        .merge(docs::routes())
        .merge(integrations::routes(integrations))
        .merge(rest)
        .merge(playground::router())
        // Every HTTP request has a deadline; a WebSocket connection (added after) lives on.
        .layer(from_fn_with_state(edge.clone(), edge::deadline))
        .route("/graphql/ws", get(ws::upgrade))
        .with_state(state);
    Ok(with_edge_layers(router, edge))
}

/// The router of the `METRICS_BIND` listener: `/metrics` alone, counted and logged like any
/// request (the request id and the edge's limits are the main listener's business).
pub fn metrics_router(metrics: metrics::MetricsEndpoint) -> Router {
    metrics.routes().layer(CatchPanicLayer::custom(crate::error::http::panic_response)).layer(from_fn(observe::observe))
}

/// The layers every route gets (see [`edge`] for what each does and why in this order).
pub fn with_edge_layers(router: Router, edge: Edge) -> Router {
    let mut router = router
        .layer(from_fn_with_state(edge.clone(), edge::body_hygiene))
        .layer(from_fn_with_state(edge.clone(), edge::guard_ip));
    if let Some(cors) = edge::cors(&edge.settings) {
        router = router.layer(cors);
    }
    router
        .layer(from_fn(edge::security_headers))
        .layer(CatchPanicLayer::custom(crate::error::http::panic_response))
        .layer(from_fn(observe::observe))
        .layer(from_fn_with_state(edge, edge::request_context))
}
