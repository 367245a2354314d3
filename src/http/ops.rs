//! Operational endpoints: liveness, readiness and metrics.

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::Json;
use serde_json::{json, Value};

/// The process's metrics in the Prometheus text format (see [`crate::metrics`]), with the outbox
/// gauges read from the store at the scrape (the outbox is shared by every process).
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    match state.services.store.outbox_counts().await {
        Ok(counts) => {
            crate::metrics::gauge("outbox_backlog", &[]).set(i64::try_from(counts.pending).unwrap_or(i64::MAX));
            crate::metrics::gauge("outbox_dead_letters", &[]).set(i64::try_from(counts.dead).unwrap_or(i64::MAX));
        }
        Err(error) => tracing::warn!(%error, "the outbox gauges keep their last values: the store did not answer"),
    }
    let headers =
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"), (header::CACHE_CONTROL, "no-store")];
    (headers, crate::metrics::render())
}

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Every configured backend answers: the store (SQLite or MongoDB) and the token store (the same
/// store, or Redis). Each is reported by name, so an operator sees which one is down.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let services = &state.services;
    let (store, tokens) = tokio::join!(services.store.ping(), services.tokens.ping_tokens());
    let report = |result: &crate::error::AppResult<()>, what: &str| match result {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(%error, "{what} is not ready");
            "unreachable"
        }
    };
    let body = json!({
        "status": if store.is_ok() && tokens.is_ok() { "ready" } else { "unavailable" },
        "store": report(&store, "store"),
        "tokens": report(&tokens, "token store"),
        "tokenBackend": services.tokens.backend(),
    });
    let status = if store.is_ok() && tokens.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}
