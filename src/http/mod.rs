//! The HTTP edge: the router, the GraphQL endpoint and the operational endpoints; the request
//! log and HTTP metrics around every route ([`observe`]); the shutdown of WebSockets ([`shutdown`]);
//! giving memory back once the server is quiet ([`quiet`]); the listener ([`listener`]) and serving
//! its connections with their timeouts and caps ([`connections`]); `/metrics`
//! and who may read it ([`metrics`]).

pub mod connections;
mod cs_events;
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
pub mod uploads;
mod ws;

pub use crate::graphql::{authenticate, authenticate_limited};

use crate::config::IntegrationSettings;
use crate::graphql::{AppSchema, OwnDocuments};
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

/// What every handler shares, behind one `Arc`: axum clones a handler's state for every request,
/// and cloning this is one atomic increment where [`Services`] by value is one per handle inside.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

/// What [`AppState`] holds.
pub struct SharedState {
    pub services: Services,
    pub schema: AppSchema,
    /// Tells the WebSocket connections when the server stops.
    pub shutdown: Arc<shutdown::Shutdown>,
}

impl AppState {
    pub fn new(services: Services, schema: AppSchema) -> AppState {
        AppState(Arc::new(SharedState { services, schema, shutdown: Arc::new(shutdown::Shutdown::default()) }))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// Every route of the server, with the inbound webhooks of the integrations that are configured
/// and `/metrics` as its rule for this listener says. Fails only when a REST document in
/// `rest_compat/` is broken.
pub fn router(
    state: AppState,
    integrations: &IntegrationSettings,
    metrics: metrics::MetricsEndpoint,
) -> Result<Router, String> {
    let documents = OwnDocuments::new(state.schema.clone(), state.services.clone());
    let rest = crate::rest::routes(RestState { services: state.services.clone(), documents })?;
    let guard = state.services.guard.clone();
    let edge = Arc::new(Edge { settings: Arc::new(guard.settings().clone()), guard });
    let router = Router::new()
        .route("/graphql", post(graphql::execute).layer(RequestBodyLimitLayer::new(MAX_GRAPHQL_BODY_BYTES)))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .merge(metrics.routes())
        .merge(docs::routes())
        .merge(integrations::routes(integrations))
        .merge(uploads::routes())
        .merge(uploads::customer_service_routes(integrations))
        .merge(rest)
        .merge(playground::router())
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
pub fn with_edge_layers(router: Router, edge: Arc<Edge>) -> Router {
    let mut router = router.layer(from_fn_with_state(edge.clone(), edge::admit));
    if let Some(cors) = edge::cors(&edge.settings) {
        router = router.layer(cors);
    }
    router
        .layer(CatchPanicLayer::custom(crate::error::http::panic_response))
        .layer(from_fn_with_state(edge, edge::request_context))
}
