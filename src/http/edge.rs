//! What every request meets before a handler: its id, its client's address, the deny list, bans
//! and the per-IP rate limit, body hygiene (size and JSON depth), a deadline, security headers,
//! CORS, and a panic turned into a 500 answer instead of a dropped connection. How each refusal
//! looks to the client is [`crate::error::http`]'s business: the edge only decides to refuse.
//!
//! Order, outermost first: request id (and client address), request log and metrics
//! ([`observe`](super::observe)) and security headers, in one layer ([`request_context`]) → panic
//! catcher → CORS → IP guard, body hygiene and deadline (not on `/graphql/ws` or `/healthz`), in
//! one layer ([`admit`]) → the route.

use super::listener::Peer;
use super::MAX_GRAPHQL_BODY_BYTES;
use crate::config::{IpNet, SecuritySettings};
use crate::context::{note_bad_request, BadRequest, RequestContext};
use crate::error::http::{HttpError, Protocol};
use crate::error::{AppError, ErrorCode, REQUEST_TIMED_OUT};
use crate::limits::{Guard, Traffic};
use crate::rest::MAX_REST_BODY_BYTES;
use crate::service::ClientInfo;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::net::IpAddr;
use std::sync::Arc;
use tracing::Instrument;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The REST endpoints' retry key (see `rest::catalog`), which a browser client must be let send.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// What the edge middlewares share (as an `Arc<Edge>`: one atomic increment a layer a request).
pub struct Edge {
    pub settings: Arc<SecuritySettings>,
    pub guard: Arc<Guard>,
}

/// Gives the request its id (a sane incoming `x-request-id`, else a new one) and finds its
/// client's address; everything inside runs in a span and task-local scope naming the id, and is
/// logged and counted ([`observe`](super::observe)); the answer carries the id in `x-request-id`
/// and the [security headers](security_headers). One layer for all of it: each `from_fn` layer
/// costs a clone of the inner service and a boxed future on every request.
pub async fn request_context(State(edge): State<Arc<Edge>>, mut request: Request, next: Next) -> Response {
    let incoming = request.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::trim);
    let id: Arc<str> = match incoming {
        Some(id) if crate::context::acceptable_request_id(id) => Arc::from(id),
        _ => crate::context::generate_request_id(),
    };
    let peer = request.extensions().get::<ConnectInfo<Peer>>().map(|ConnectInfo(Peer(address))| address.ip());
    let ip = peer.map(|peer| client_ip(peer, request.headers(), &edge.settings.trusted_proxies));
    request.extensions_mut().insert(ClientInfo { ip, request_id: Some(id.clone()) });
    let page = Page::of(request.uri().path());
    // The span's fields are only evaluated when its level is on.
    let span = tracing::info_span!("request", request_id = %id, ip = ip.map(|ip| ip.to_string()).unwrap_or_default());
    let context = RequestContext::new(id.clone());
    let mut response = context.scope(super::observe::observe(request, next).instrument(span)).await;
    security_headers(page, response.headers_mut());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// The client's address: the socket's peer, unless the peer is a trusted proxy; then the
/// `X-Forwarded-For` hops are read from the right (the nearest) and the first one that is not a
/// trusted proxy is the client. An entry that is not an address ends the walk at the hop before it.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    crate::config::canonical(client)
}

/// Admits a request to its route, inside the CORS layer: refuses denied and banned clients and
/// those over the per-IP rate, reads and checks a POSTed body ([`hygienic`]), runs the route
/// within its deadline (every route but `/graphql/ws`, whose connection lives on, and `/healthz`,
/// which waits on nothing: [`deadline`]), and counts a malformed request toward a ban once it is
/// answered. The health endpoints are left
/// to themselves, so a load balancer's checks never count. One layer, for the reason
/// [`request_context`] gives.
pub async fn admit(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/healthz" {
        // Answered at once, without waiting on anything: no deadline to keep.
        return next.run(request).await;
    }
    if matches!(path, "/readyz" | "/metrics") {
        return deadline(&edge.settings, request, next).await;
    }
    let protocol = Protocol::of_path(path);
    let traffic = if path.starts_with("/integrations/") { Traffic::Webhooks } else { Traffic::Clients };
    let ip = request.extensions().get::<ClientInfo>().and_then(|client| client.ip);
    if let Some(ip) = ip {
        if let Err(refusal) = edge.guard.check_ip(ip, traffic).await {
            return HttpError::from_error(protocol, &AppError::from(refusal)).into_response();
        }
    }
    let response = match hygienic(&edge.settings, request).await {
        Ok(request) => deadline(&edge.settings, request, next).await,
        Err(refusal) => refusal,
    };
    if let Some(ip) = ip {
        if let Some(what) = crate::context::current_bad_request() {
            edge.guard.bad_request(ip, what).await;
        }
    }
    response
}

/// Reads a POSTed (or PUT, or DELETE) `/graphql` or `/api` body (refusing one over the route's limit with 413) and
/// refuses JSON nested deeper than `JSON_MAX_DEPTH` with 400, before any parser sees it.
#[allow(clippy::result_large_err)]
async fn hygienic(settings: &SecuritySettings, request: Request) -> Result<Request, Response> {
    let path = request.uri().path();
    let limit = if path == "/graphql" {
        MAX_GRAPHQL_BODY_BYTES
    } else if path == super::uploads::UPLOADS_PATH {
        // Streamed to the upload service, which keeps its own limit (`UPLOAD_MAX_BYTES`).
        return Ok(request);
    } else if path.starts_with("/api/") {
        MAX_REST_BODY_BYTES
    } else {
        return Ok(request);
    };
    if !matches!(*request.method(), Method::POST | Method::PUT | Method::DELETE) {
        return Ok(request);
    }
    let protocol = Protocol::of_path(path);
    let too_large = || {
        note_bad_request(BadRequest::BodyTooLarge);
        let message = format!("请求体过大，不能超过{}KB", limit / 1024);
        HttpError::new(protocol, ErrorCode::BadUserInput, message)
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .into_response()
    };
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) if bytes.len() + chunk.len() <= limit => bytes.extend_from_slice(&chunk),
            Ok(_) => return Err(too_large()),
            Err(_) => {
                note_bad_request(BadRequest::MalformedBody);
                return Err(HttpError::new(protocol, ErrorCode::BadUserInput, "无法读取请求体").into_response());
            }
        }
    }
    let max_depth = settings.json_max_depth;
    if json_depth(&bytes) > max_depth {
        note_bad_request(BadRequest::JsonTooDeep);
        let message = format!("请求体的JSON嵌套过深（最多{max_depth}层）");
        return Err(HttpError::new(protocol, ErrorCode::BadUserInput, message).into_response());
    }
    Ok(Request::from_parts(parts, Body::from(Bytes::from(bytes))))
}

/// How deeply the arrays and objects of a JSON text nest (strings skipped). Works on any bytes:
/// for a text that is not JSON it measures the brackets, which is all the limit needs.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The most one HTTP request may take (`REQUEST_TIMEOUT_MS`); over it, 503. A WebSocket
/// (`/graphql/ws`) has none: its connection lives on.
async fn deadline(settings: &SecuritySettings, request: Request, next: Next) -> Response {
    if request.uri().path() == "/graphql/ws" {
        return next.run(request).await;
    }
    let uri = request.uri().clone();
    match tokio::time::timeout(settings.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let path = uri.path();
            tracing::warn!(path, "request timed out");
            HttpError::new(Protocol::of_path(path), ErrorCode::Unavailable, REQUEST_TIMED_OUT).into_response()
        }
    }
}

/// The Content-Security-Policy of answers that are not pages: nothing may load, nothing may frame.
const API_CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Which security headers a path's answers get: the playground may frame itself, and it and the
/// docs set their own CSP; `/graphql` answers are not cached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Page {
    Playground,
    Docs,
    Graphql,
    Other,
}

impl Page {
    fn of(path: &str) -> Page {
        if path.starts_with("/playground") {
            Page::Playground
        } else if path.starts_with("/api/docs") {
            Page::Docs
        } else if path == "/graphql" {
            Page::Graphql
        } else {
            Page::Other
        }
    }
}

/// Headers every answer carries (a handler's own win): no MIME sniffing, no framing (the
/// playground may frame itself), no referrer, and for everything but the playground's and the
/// docs' own files a CSP that allows nothing (those pages set their own).
fn security_headers(page: Page, headers: &mut HeaderMap) {
    // Room for these and `x-request-id` at once, rather than the map growing twice on the way.
    headers.reserve(8);
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, if page == Page::Playground { "SAMEORIGIN" } else { "DENY" }),
        (header::REFERRER_POLICY, "no-referrer"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    let ui = matches!(page, Page::Playground | Page::Docs);
    if !ui && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CONTENT_SECURITY_POLICY));
    }
    if page == Page::Graphql && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// CORS for the configured origins (`CORS_ALLOWED_ORIGINS`); `None` without any, so browsers
/// refuse every cross-origin call.
pub fn cors(settings: &SecuritySettings) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if settings.cors_allowed_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> =
        settings.cors_allowed_origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, X_REQUEST_ID, IDEMPOTENCY_KEY])
            .expose_headers([X_REQUEST_ID, header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": "[[[{{{"}]}"#), 3);
        assert_eq!(json_depth(br#""\"[[[""#), 0);
        assert_eq!(json_depth(b"[[[[]]]]"), 4);
        assert_eq!(json_depth(b"not json"), 0);
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let trusted = vec![IpNet::parse("10.0.0.0/8").unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.5, 10.0.0.2"));
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_ip(proxy, &headers, &trusted), "203.0.113.5".parse::<IpAddr>().unwrap());
        let stranger: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(client_ip(stranger, &headers, &trusted), stranger, "an untrusted peer's header is ignored");
        headers.insert("x-forwarded-for", HeaderValue::from_static("garbage, 10.0.0.3"));
        assert_eq!(client_ip(proxy, &headers, &trusted), "10.0.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    fn boom() -> &'static str {
        panic!("a bug")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_with_the_request_id() {
        let edge = Arc::new(Edge {
            settings: Arc::new(SecuritySettings::default()),
            guard: Arc::new(Guard::new(
                Arc::new(crate::limits::memory::MemoryLimiter::new()),
                SecuritySettings::default(),
            )),
        });
        let router = super::super::with_edge_layers(
            axum::Router::new().route("/api/boom", axum::routing::get(|| async { boom() })),
            edge,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let settings = crate::config::ConnectionSettings::default();
        tokio::spawn(super::super::connections::serve(listener, router, settings, Vec::new(), std::future::pending()));
        let response = reqwest::Client::new()
            .get(format!("http://{address}/api/boom"))
            .header("x-request-id", "trace-me-1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["x-request-id"], "trace-me-1");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 500);
        assert_eq!(body["message"], "服务器内部错误");
        assert_eq!(body["requestId"], "trace-me-1");
        assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
        assert!(!body.to_string().contains("a bug"), "the panic's text stays in the log: {body}");
        let again = reqwest::get(format!("http://{address}/api/boom")).await.unwrap();
        assert_eq!(again.status(), 500, "the server keeps serving");
    }
}
