//! Operational endpoints: liveness and readiness (`/metrics` is in [`super::metrics`]).

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

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
