//! `GET /playground`: GraphiQL, built from `playground/` into `playground/dist/` and embedded in
//! the binary at compile time, so a fresh checkout serves it without Node.js and the page loads
//! nothing from anywhere but this server.
//!
//! `index.html` is revalidated on every load (`no-cache` with an ETag). It names each asset with
//! `?v=<hash of its content>`; an asset asked for with its current hash may be cached for a year,
//! any other request for it is revalidated. Assets are sent gzip-compressed (compressed at build
//! time) to clients that accept it.

use axum::extract::{Path, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

macro_rules! dist {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/playground/dist/", $path))
    };
}

/// Where nothing but this server may be reached from: the page's own assets, its inline styles
/// (Monaco sets them), fonts and icons inlined as data URLs, and this server's GraphQL endpoints.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; worker-src 'self'; \
     frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    gzip: &'static [u8],
}

const INDEX_HTML: &[u8] = dist!("index.html");

const ASSETS: [Asset; 5] = [
    Asset {
        name: "playground.js",
        content_type: "text/javascript; charset=utf-8",
        body: dist!("assets/playground.js"),
        gzip: dist!("assets/playground.js.gz"),
    },
    Asset {
        name: "playground.css",
        content_type: "text/css; charset=utf-8",
        body: dist!("assets/playground.css"),
        gzip: dist!("assets/playground.css.gz"),
    },
    Asset {
        name: "editor.worker.js",
        content_type: "text/javascript; charset=utf-8",
        body: dist!("assets/editor.worker.js"),
        gzip: dist!("assets/editor.worker.js.gz"),
    },
    Asset {
        name: "json.worker.js",
        content_type: "text/javascript; charset=utf-8",
        body: dist!("assets/json.worker.js"),
        gzip: dist!("assets/json.worker.js.gz"),
    },
    Asset {
        name: "graphql.worker.js",
        content_type: "text/javascript; charset=utf-8",
        body: dist!("assets/graphql.worker.js"),
        gzip: dist!("assets/graphql.worker.js.gz"),
    },
];

/// The SHA-256 of each embedded file in hex, computed once: the ETags, and the `v` an asset
/// URL must carry to be cached for good (its first 16 digits, as `playground/build.mjs` writes).
static HASHES: LazyLock<(String, Vec<String>)> = LazyLock::new(|| {
    let hex = |bytes: &[u8]| Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>();
    (hex(INDEX_HTML), ASSETS.iter().map(|asset| hex(asset.body)).collect())
});

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/playground", get(index))
        .route("/playground/", get(|| async { Redirect::permanent("/playground") }))
        .route("/playground/assets/{name}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    let etag = format!("\"{}\"", &HASHES.0[..32]);
    let mut response = if matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response()
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response_headers.insert(header::ETAG, value(&etag));
    response_headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response_headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[derive(Deserialize)]
struct Version {
    v: Option<String>,
}

async fn asset(Path(name): Path<String>, Query(version): Query<Version>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-cache")], "没有这个文件").into_response();
    };
    let asset = &ASSETS[index];
    let hash = &HASHES.1[index];
    let gzip = accepts_gzip(&headers);
    let etag = format!("\"{}{}\"", &hash[..32], if gzip { "-gzip" } else { "" });
    let cache =
        if version.v.as_deref() == Some(&hash[..16]) { "public, max-age=31536000, immutable" } else { "no-cache" };

    let mut response = if matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = (if gzip { asset.gzip } else { asset.body }).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        if gzip {
            response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response_headers.insert(header::ETAG, value(&etag));
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("an ETag of hex digits is a valid header value")
}

/// Whether `If-None-Match` names this ETag (or is `*`).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|value| value.to_str().ok()).any(|value| {
        value.split(',').map(|tag| tag.trim().trim_start_matches("W/")).any(|tag| tag == etag || tag == "*")
    })
}

/// Whether `Accept-Encoding` takes gzip (`gzip` or `*`, not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|value| value.to_str().ok()).any(|value| {
        value.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts
                .any(|param| param.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}
