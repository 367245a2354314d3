//! The REST compatibility layer: the spec's `/api` endpoints, each running one GraphQL operation
//! from `rest_compat/` in process against the same schema, and answering in the spec's envelope
//! `{code, message, data}`.
//!
//! It holds no business logic: it reads parameters into variables (lowercase value sets become
//! GraphQL enums), runs the operation, and shapes the answer (enums back to lowercase). Errors keep
//! the GraphQL error's message; its `extensions.code` picks the HTTP status, which the envelope's
//! `code` repeats.

mod catalog;
mod links;
mod openapi;
mod parameters;
pub mod rules;
mod shape;

pub use catalog::{Endpoint, Location};

use crate::context::{note_bad_request, BadRequest};
use crate::error::http::{rest_envelope, HttpError, Protocol};
use crate::error::{AppError, ErrorCode};
use crate::graphql::{authenticate_limited, with_request_data, OwnDocuments};
use crate::service::{ClientInfo, Services};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawPathParams, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Extension, Json, Router};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The refusal of a body sent as another media type than JSON.
pub const UNSUPPORTED_MEDIA_TYPE_MESSAGE: &str = "请求体必须是JSON（Content-Type: application/json）";

/// The largest REST request body: far above any documented request.
pub const MAX_REST_BODY_BYTES: usize = 64 * 1024;

/// What the REST handlers need: what runs their operations, and the services the caller is
/// verified with. The HTTP layer builds it from its own state; the routes hold it behind one
/// `Arc`, which axum clones for every request.
pub struct RestState {
    pub services: Services,
    pub documents: OwnDocuments,
}

/// The REST routes and the OpenAPI document, built from `rest_compat/` once at start-up; they
/// carry their own state, so they merge into a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>(state: RestState) -> Result<Router<S>, String> {
    let endpoints = catalog::load(&state.documents.sdl())?;
    let document = Arc::new(openapi::document(&endpoints)?);
    let mut by_path: BTreeMap<String, MethodRouter<Arc<RestState>>> = BTreeMap::new();
    for endpoint in endpoints {
        let endpoint = Arc::new(endpoint);
        let filter = match endpoint.method {
            Method::GET => MethodFilter::GET,
            Method::PUT => MethodFilter::PUT,
            Method::DELETE => MethodFilter::DELETE,
            _ => MethodFilter::POST,
        };
        let handler = {
            let endpoint = Arc::clone(&endpoint);
            move |state, client, headers, path, query, body| {
                serve(Arc::clone(&endpoint), state, client, headers, path, query, body)
            }
        };
        let path = endpoint.router_path();
        let method_router = by_path.remove(&path).unwrap_or_default().on(filter, handler);
        by_path.insert(path, method_router);
    }
    let router = by_path.into_iter().fold(Router::new(), |router, (path, methods)| router.route(&path, methods));
    Ok(router
        .route("/api/openapi.json", axum::routing::get(move || async move { Json(Value::clone(&document)) }))
        .route("/api/{*unknown}", axum::routing::any(unknown_endpoint))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_REST_BODY_BYTES))
        .with_state(Arc::new(state)))
}

async fn serve(
    endpoint: Arc<Endpoint>,
    State(state): State<Arc<RestState>>,
    client: Option<Extension<ClientInfo>>,
    headers: HeaderMap,
    path: RawPathParams,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            note_bad_request(BadRequest::BodyTooLarge);
            let message = format!("请求体过大，不能超过{}KB", MAX_REST_BODY_BYTES / 1024);
            return failure(ErrorCode::BadUserInput, message)
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
                .into_response();
        }
        Err(_) => {
            note_bad_request(BadRequest::MalformedBody);
            return failure(ErrorCode::BadUserInput, "无法读取请求体").into_response();
        }
    };
    if declares_another_media_type(&endpoint, &headers, &body) {
        note_bad_request(BadRequest::MalformedBody);
        return failure(ErrorCode::BadUserInput, UNSUPPORTED_MEDIA_TYPE_MESSAGE)
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .into_response();
    }
    let path: Vec<(&str, &str)> = path.iter().collect();
    let variables = match parameters::variables(&endpoint, &path, query.as_deref(), &headers, &body) {
        Ok(variables) => variables,
        Err(error) => return error.into_response(),
    };
    let client = client.map(|Extension(client)| client).unwrap_or_default();
    let auth = match authenticate_limited(&state.services, &headers, &client, 1).await {
        Ok(auth) => auth,
        Err(refusal) => return AppError::from(refusal).into_response(),
    };
    let request = async_graphql::Request::new(endpoint.query.clone())
        .operation_name(endpoint.operation_id.clone())
        .variables(async_graphql::Variables::from_json(variables));
    let request = with_request_data(request, &state.services, auth, client);
    let response = state.documents.execute(&endpoint.document, request).await;
    if let Some(error) = response.errors.first() {
        let extension = |name: &str| error.extensions.as_ref().and_then(|extensions| extensions.get(name));
        // An error without a code is async-graphql's own about the request: the client's mistake.
        let code = match extension("code") {
            Some(async_graphql::Value::String(code)) => ErrorCode::parse(code).unwrap_or(ErrorCode::Internal),
            _ => ErrorCode::BadUserInput,
        };
        let retry_after = match extension("retryAfter") {
            Some(async_graphql::Value::Number(seconds)) => seconds.as_u64(),
            _ => None,
        };
        return failure(code, error.message.clone()).with_retry_after(retry_after).into_response();
    }
    let mut data = match response.data {
        async_graphql::Value::Object(mut root) => root.swap_remove(endpoint.data_key.as_str()).unwrap_or_default(),
        _ => async_graphql::Value::Null,
    };
    endpoint.data.to_rest(&mut data);
    rest_envelope(StatusCode::OK, &endpoint.message, &data, None)
}

/// Whether a body the endpoint reads is declared as something else than JSON. A body without a
/// `Content-Type` is read as JSON, as it always was (clients that omit it keep working).
fn declares_another_media_type(endpoint: &Endpoint, headers: &HeaderMap, body: &[u8]) -> bool {
    let reads_body = endpoint.parameters.iter().any(|p| p.location == Location::Body);
    if !reads_body || body.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    let Some(declared) = headers.get(axum::http::header::CONTENT_TYPE) else { return false };
    let essence =
        declared.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    !(essence == "application/json" || essence.ends_with("+json"))
}

/// An error envelope: `data: null`, and the `requestId` to quote when reporting it.
fn failure(code: ErrorCode, message: impl Into<std::borrow::Cow<'static, str>>) -> HttpError {
    HttpError::new(Protocol::Rest, code, message)
}

async fn unknown_endpoint() -> Response {
    failure(ErrorCode::NotFound, "接口不存在").into_response()
}

/// The answer to a method a route does not take, in the envelope (for routes outside this router
/// too, such as the uploads).
pub async fn method_not_allowed() -> Response {
    failure(ErrorCode::BadUserInput, "该接口不支持此请求方法")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
        .into_response()
}
