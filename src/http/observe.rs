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
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;
use tracing::Level;

/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // Both share the request's own buffers (an `Arc` and `Bytes`): nothing is copied.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let uri = request.uri().clone();
    let in_flight = in_flight().track();
    let response = next.run(request).await;
    drop(in_flight);
    super::quiet::request_finished();
    let elapsed = started.elapsed();
    let status = response.status();
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let (requests, durations) = series(method, route, status);
    requests.inc();
    durations.observe(elapsed);
    let status = status.as_u16();
    let failed = status >= 500;
    // The line's fields cost a lock and a clone or two: not gathered for a line nobody logs.
    let logged = if failed {
        tracing::enabled!(target: "provider_desk::access", Level::WARN)
    } else {
        tracing::enabled!(target: "provider_desk::access", Level::INFO)
    };
    if !logged {
        return response;
    }
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
                path = %uri.path(),
                status,
                latency_ms,
                "request"
            )
        };
    }
    if failed {
        log_line!(warn);
    } else {
        log_line!(info);
    }
    response
}

/// `http_requests_in_flight`, looked up once.
fn in_flight() -> &'static metrics::Gauge {
    static IN_FLIGHT: OnceLock<metrics::Gauge> = OnceLock::new();
    IN_FLIGHT.get_or_init(|| metrics::gauge("http_requests_in_flight", &[]))
}

/// The series of one route, method and status.
type RouteSeries = (metrics::Counter, metrics::Histogram);
/// Held series by route, then method and status (a route sees a handful of those).
type SeriesByRoute = HashMap<Box<str>, Vec<(&'static str, StatusCode, RouteSeries)>, foldhash::fast::FixedState>;

/// `http_requests_total` and `http_request_duration_seconds` of a method, route and status, held
/// once looked up: a lookup by name builds the label values (four allocations) and hashes them,
/// twice a request. Routes are the router's patterns, so the map stays as small as the router.
fn series(method: &'static str, route: &str, status: StatusCode) -> RouteSeries {
    static SERIES: OnceLock<RwLock<SeriesByRoute>> = OnceLock::new();
    let map = SERIES.get_or_init(Default::default);
    let held = |by_route: &SeriesByRoute| {
        let all = by_route.get(route)?;
        all.iter().find(|(m, s, _)| *m == method && *s == status).map(|(_, _, series)| series.clone())
    };
    if let Some(series) = held(&map.read().unwrap_or_else(|poisoned| poisoned.into_inner())) {
        return series;
    }
    let labels = [("method", method), ("route", route), ("status", status.as_str())];
    let series = (
        metrics::counter("http_requests_total", &labels),
        metrics::histogram("http_request_duration_seconds", &labels),
    );
    let mut by_route = map.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    by_route.entry(route.into()).or_default().push((method, status, series.clone()));
    series
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
