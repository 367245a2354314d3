//! `GET /metrics`: the Prometheus text exposition (see [`crate::metrics`]), behind the access rule
//! of the listener that serves it, with the outbox gauges read from the store at most once per
//! [`OUTBOX_GAUGES_MAX_AGE`].
//!
//! Design choices. The access rule ([`MetricsAccess`], decided in `config` from the bind address,
//! `METRICS_TOKEN` and `METRICS_BIND`) is state of the route, so the main listener and the
//! `METRICS_BIND` listener run the same handler with their own rule. A token is compared as
//! SHA-256 digests, byte by byte without an early exit, so neither its content nor its length
//! shows in the time an answer takes. The outbox gauges are shared by every process and cost a
//! store query; a scraper (or anyone who can reach the endpoint) scraping in a loop reads the
//! store once per [`OUTBOX_GAUGES_MAX_AGE`], not once per scrape.

use crate::config::MetricsAccess;
use crate::error::http::{HttpError, Protocol};
use crate::error::ErrorCode;
use crate::store::SharedStore;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the outbox gauges are shown before the store is read again.
pub const OUTBOX_GAUGES_MAX_AGE: Duration = Duration::from_secs(5);

/// What the `/metrics` route needs: its access rule and the store of the outbox gauges.
#[derive(Clone)]
pub struct MetricsEndpoint {
    access: Arc<MetricsAccess>,
    store: SharedStore,
    outbox: Arc<OutboxGauges>,
}

impl MetricsEndpoint {
    pub fn new(access: MetricsAccess, store: SharedStore) -> MetricsEndpoint {
        MetricsEndpoint { access: Arc::new(access), store, outbox: Arc::new(OutboxGauges::default()) }
    }

    /// The same store and cache under another access rule (the `METRICS_BIND` listener's).
    pub fn with_access(&self, access: MetricsAccess) -> MetricsEndpoint {
        MetricsEndpoint { access: Arc::new(access), ..self.clone() }
    }

    /// `GET /metrics`, unless the rule is not to serve it here (then the router has no such route
    /// and answers 404 like for any unknown path).
    pub fn routes<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        match *self.access {
            MetricsAccess::NotServed => Router::new(),
            _ => Router::new().route("/metrics", get(scrape)).with_state(self),
        }
    }

    async fn refresh_outbox_gauges(&self) {
        if !self.outbox.due(Instant::now()) {
            return;
        }
        match self.store.outbox_counts().await {
            Ok(counts) => {
                crate::metrics::gauge("outbox_backlog", &[]).set(i64::try_from(counts.pending).unwrap_or(i64::MAX));
                crate::metrics::gauge("outbox_dead_letters", &[]).set(i64::try_from(counts.dead).unwrap_or(i64::MAX));
            }
            Err(error) => tracing::warn!(%error, "the outbox gauges keep their last values: the store did not answer"),
        }
    }
}

async fn scrape(State(endpoint): State<MetricsEndpoint>, headers: HeaderMap) -> Response {
    match &*endpoint.access {
        MetricsAccess::Open => {}
        MetricsAccess::Token(token) => {
            if !bearer_matches(&headers, token) {
                let mut answer =
                    HttpError::new(Protocol::Rest, ErrorCode::Unauthenticated, "/metrics needs its bearer token")
                        .into_response();
                answer.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return answer;
            }
        }
        MetricsAccess::Refused | MetricsAccess::NotServed => {
            let message = "/metrics is not served on a public address without METRICS_TOKEN or METRICS_BIND";
            return HttpError::new(Protocol::Rest, ErrorCode::Forbidden, message).into_response();
        }
    }
    endpoint.refresh_outbox_gauges().await;
    let headers =
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"), (header::CACHE_CONTROL, "no-store")];
    (headers, crate::metrics::render()).into_response()
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let (given, expected) = (Sha256::digest(given.as_bytes()), Sha256::digest(token.as_bytes()));
    let difference = given.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// When the outbox gauges were last read.
#[derive(Default)]
struct OutboxGauges {
    read_at: Mutex<Option<Instant>>,
}

impl OutboxGauges {
    /// Whether the gauges are older than [`OUTBOX_GAUGES_MAX_AGE`] at `now`; if so, they count as
    /// read at `now`, so scrapes arriving meanwhile (or a store that does not answer) do not read
    /// the store again.
    fn due(&self, now: Instant) -> bool {
        let mut read_at = self.read_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *read_at {
            Some(at) if now.saturating_duration_since(at) < OUTBOX_GAUGES_MAX_AGE => false,
            _ => {
                *read_at = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_gauges_are_read_once_per_max_age() {
        let gauges = OutboxGauges::default();
        let start = Instant::now();
        assert!(gauges.due(start), "the first scrape reads the store");
        assert!(!gauges.due(start + Duration::from_millis(10)));
        assert!(!gauges.due(start + OUTBOX_GAUGES_MAX_AGE - Duration::from_millis(1)));
        assert!(gauges.due(start + OUTBOX_GAUGES_MAX_AGE), "then again once they are that old");
        assert!(!gauges.due(start + OUTBOX_GAUGES_MAX_AGE + Duration::from_secs(1)));
    }

    #[test]
    fn only_the_exact_bearer_token_matches() {
        let token = "0123456789abcdef-metrics";
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(bearer_matches(&with(&format!("Bearer {token}")), token));
        assert!(!bearer_matches(&HeaderMap::new(), token));
        assert!(!bearer_matches(&with(token), token), "the scheme is required");
        assert!(!bearer_matches(&with(&format!("Bearer {token}x")), token));
        assert!(!bearer_matches(&with("Bearer 0123456789abcdef-metric"), token));
        assert!(!bearer_matches(&with("Bearer "), token));
    }
}
