//! The REST compatibility layer: the spec's `/api` endpoints, each running one GraphQL operation
//! from `rest_compat/` in process against the same schema, and answering in the spec's envelope
//! `{code, message, data}`.
//!
//! It holds no business logic: it reads parameters into variables (lowercase value sets become
//! GraphQL enums), runs the operation, and shapes the answer (enums back to lowercase). Errors keep
//! the GraphQL error's message; its `extensions.code` picks the HTTP status, which the envelope's
//! `code` repeats.

mod catalog;
mod openapi;
mod parameters;
mod shape;

pub use catalog::{Endpoint, Location};

use crate::error::AppError;
use crate::graphql::{with_request_data, AppSchema};
use crate::http::edge::refusal_response;
use crate::http::{authenticate_limited, AppState};
use crate::limits::BadRequest;
use crate::service::ClientInfo;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawPathParams, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The largest REST request body: far above any documented request.
pub const MAX_REST_BODY_BYTES: usize = 64 * 1024;

/// The REST routes and the OpenAPI document, built from `rest_compat/` once at start-up.
pub fn routes(schema: &AppSchema) -> Result<Router<AppState>, String> {
    let endpoints = catalog::load(&schema.sdl())?;
    let document = Arc::new(openapi::document(&endpoints));
    let mut by_path: BTreeMap<String, MethodRouter<AppState>> = BTreeMap::new();
    for endpoint in endpoints {
        let endpoint = Arc::new(endpoint);
        let filter = if endpoint.method == Method::GET { MethodFilter::GET } else { MethodFilter::POST };
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
        .layer(DefaultBodyLimit::max(MAX_REST_BODY_BYTES)))
}

async fn serve(
    endpoint: Arc<Endpoint>,
    State(state): State<AppState>,
    client: Option<Extension<ClientInfo>>,
    headers: HeaderMap,
    path: RawPathParams,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            crate::telemetry::note_bad_request(BadRequest::BodyTooLarge);
            return failure(413, format!("请求体过大，不能超过{}KB", MAX_REST_BODY_BYTES / 1024));
        }
        Err(_) => {
            crate::telemetry::note_bad_request(BadRequest::MalformedBody);
            return failure(400, "无法读取请求体".to_owned());
        }
    };
    let path: Vec<(&str, &str)> = path.iter().collect();
    let variables = match parameters::variables(&endpoint, &path, query.as_deref(), &body) {
        Ok(variables) => variables,
        Err(error) => return failure(error.http_status(), error.to_string()),
    };
    let client = client.map(|Extension(client)| client).unwrap_or_default();
    let auth = match authenticate_limited(&state.services, &headers, &client).await {
        Ok(auth) => auth,
        Err(refusal) => return refusal_response(&endpoint.path, refusal),
    };
    let mut request = async_graphql::Request::new(endpoint.query.clone())
        .operation_name(endpoint.operation_id.clone())
        .variables(async_graphql::Variables::from_json(variables));
    request.set_parsed_query(endpoint.document.clone());
    let response = state.schema.execute(with_request_data(request, &state.services, auth, client)).await;
    if let Some(error) = response.errors.first() {
        let extension = |name: &str| error.extensions.as_ref().and_then(|extensions| extensions.get(name));
        let status = match extension("code") {
            Some(async_graphql::Value::String(code)) => AppError::http_status_for_code(code),
            _ => 400,
        };
        let mut answer = failure(status, error.message.clone());
        if let Some(async_graphql::Value::Number(seconds)) = extension("retryAfter") {
            if let Some(seconds) = seconds.as_u64() {
                answer.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
            }
        }
        return answer;
    }
    let mut data = match response.data {
        async_graphql::Value::Object(mut root) => root.swap_remove(endpoint.data_key.as_str()).unwrap_or_default(),
        _ => async_graphql::Value::Null,
    };
    endpoint.data.to_rest(&mut data);
    envelope(200, &endpoint.message, &data)
}

/// The spec's envelope around `data`.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    code: u16,
    message: &'a str,
    data: &'a T,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// Serialized straight from what the operation answered, into a buffer sized for a page of
/// results, with no intermediate JSON tree.
fn envelope(status: u16, message: &str, data: &impl Serialize) -> Response {
    respond(status, message, data, None)
}

/// An error envelope: `data: null`, and the `requestId` to quote when reporting it.
fn failure(status: u16, message: String) -> Response {
    let request_id = crate::telemetry::current_request_id();
    respond(status, &message, &(), request_id.as_deref())
}

fn respond(status: u16, message: &str, data: &impl Serialize, request_id: Option<&str>) -> Response {
    let mut status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = Vec::with_capacity(ENVELOPE_CAPACITY);
    if let Err(error) = serde_json::to_writer(&mut body, &Envelope { code: status.as_u16(), message, data, request_id })
    {
        tracing::error!(%error, "a REST answer could not be serialized");
        status = StatusCode::INTERNAL_SERVER_ERROR;
        let internal = Envelope { code: 500, message: "服务器内部错误", data: &(), request_id };
        body = serde_json::to_vec(&internal).unwrap_or_default();
    }
    let headers = [
        (header::CONTENT_TYPE, header::HeaderValue::from_static("application/json")),
        (header::CACHE_CONTROL, header::HeaderValue::from_static("no-store")),
    ];
    (status, headers, body).into_response()
}

/// Enough for a page of ten customers, so that most answers are written without growing the buffer.
const ENVELOPE_CAPACITY: usize = 8 * 1024;

async fn unknown_endpoint() -> Response {
    failure(404, "接口不存在".to_owned())
}

async fn method_not_allowed() -> Response {
    failure(405, "该接口不支持此请求方法".to_owned())
}
