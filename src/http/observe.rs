//! The request log and the HTTP metrics: one middleware around every route.
//!
//! For each request it takes a request id (the client's or a proxy's `x-request-id` when it is a
//! plausible id, else a new one), runs the handler inside a `request` span carrying that id (so
//! every log line written while handling it names it) and a [`RequestContext`] (so the handler can
//! name the provider), then writes one log line — request id, provider id when signed in, method,
//! route, path, status, latency — and records `http_requests_total` and
//! `http_request_duration_seconds` by method, route pattern and status. Query strings, headers and
//! bodies are never logged, so no token or password can reach the log.

use crate::metrics;
use crate::telemetry::RequestContext;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

/// The header a request id is read from.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str).to_owned();
    let path = request.uri().path().to_owned();
    let request_id = request_id(request.headers());
    let context = RequestContext::new(request_id.clone());
    let in_flight = metrics::gauge("http_requests_in_flight", &[]).track();
    let span = tracing::info_span!("request", request_id = %request_id);
    let response = context.clone().scope(next.run(request).instrument(span)).await;
    drop(in_flight);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let status_label = status.to_string();
    let labels = [("method", method), ("route", route.as_str()), ("status", status_label.as_str())];
    metrics::counter("http_requests_total", &labels).inc();
    metrics::histogram("http_request_duration_seconds", &labels).observe(elapsed);
    let provider_id = context.provider();
    let latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    macro_rules! log_line {
        ($level:ident) => {
            tracing::$level!(
                target: "provider_desk::access",
                request_id = %request_id,
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

/// The client's request id if it is a plausible one (1–128 of `A-Z a-z 0-9 - _ . :`), else a new one.
fn request_id(headers: &HeaderMap) -> String {
    let given = headers.get(REQUEST_ID_HEADER).and_then(|value| value.to_str().ok()).map(str::trim).filter(|id| {
        (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    });
    match given {
        Some(id) => id.to_owned(),
        None => crate::domain::new_id("r").to_string(),
    }
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
