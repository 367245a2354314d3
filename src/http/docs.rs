//! `GET /api/docs`: Swagger UI for the REST endpoints, from assets vendored in
//! `rest_compat/swagger-ui/` (the npm package swagger-ui-dist), so it works with no internet.

use super::AppState;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

const BUNDLE: &str = include_str!("../../rest_compat/swagger-ui/swagger-ui-bundle.js");
const STYLES: &str = include_str!("../../rest_compat/swagger-ui/swagger-ui.css");

const PAGE: &str = r##"<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>provider-desk REST API</title>
  <link rel="stylesheet" href="/api/docs/swagger-ui.css">
  <style>.top-links { font: 14px sans-serif; padding: 8px 20px; } .top-links a { margin-right: 16px; }</style>
</head>
<body>
  <div class="top-links"><a href="/playground">GraphQL playground</a><a href="/api/openapi.json">openapi.json</a></div>
  <div id="swagger-ui"></div>
  <script src="/api/docs/swagger-ui-bundle.js"></script>
  <script src="/api/docs/init.js"></script>
</body>
</html>
"##;

/// Kept out of the page so that a strict Content-Security-Policy can forbid inline scripts.
const INIT: &str = r##"window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  persistAuthorization: true,
});
"##;

/// The page loads only its own files; Swagger UI sets inline styles and shows data: images, and
/// "Try it out" calls this server. No inline script, no eval.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

fn page() -> impl IntoResponse {
    ([(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)], Html(PAGE))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/docs", get(|| async { page() }))
        .route("/api/docs/", get(|| async { page() }))
        .route("/api/docs/swagger-ui-bundle.js", get(|| async { asset("text/javascript; charset=utf-8", BUNDLE) }))
        .route("/api/docs/swagger-ui.css", get(|| async { asset("text/css; charset=utf-8", STYLES) }))
        .route("/api/docs/init.js", get(|| async { asset("text/javascript; charset=utf-8", INIT) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=86400")], body)
}
