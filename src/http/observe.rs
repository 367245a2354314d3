//! The request log and the HTTP metrics: one middleware around every route.
//!
//! It runs inside the request context the edge opens (see [`super::edge::request_context`]: the
//! request id, and the provider once the handler knows it). After the handler it writes one log
//! line — request id, provider id when signed in, method, route, path, status, latency — and
//! records `http_requests_total` and `http_request_duration_seconds` by method, route pattern and
//! status. Query strings, headers and
//! bodies are never logged, so no token or password can reach the log.

use crate::{context, metrics};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str).to_owned();
    let path = request.uri().path().to_owned();
    let in_flight = metrics::gauge("http_requests_in_flight", &[]).track();
    let response = next.run(request).await;
    drop(in_flight);
    super::quiet::request_finished();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let status_label = status.to_string();
    let labels = [("method", method), ("route", route.as_str()), ("status", status_label.as_str())];
    metrics::counter("http_requests_total", &labels).inc();
    metrics::histogram("http_request_duration_seconds", &labels).observe(elapsed);
    let request_id = context::current_request_id();
    let provider_id = context::current_provider();
    let latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    macro_rules! log_line {
        ($level:ident) => {
            tracing::$level!(
                target: "provider_desk::access",
                request_id = request_id.as_deref(),
                provider_id = provider_id.as_ref().map(|id| id.as_str()),
                method = %method,
                route = %route,
                path = %path,
                status,
                latency_ms,
                "request"
            )
        };
    }
    if status >= 500 {
        log_line!(warn);
    } else {
        log_line!(info);
    }
    response
}

/// The standard methods by name; anything else as `other`, so clients cannot invent labels.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
