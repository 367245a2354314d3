//! Every error answered over HTTP, rendered in one place: the REST envelope
//! `{code, message, data: null, requestId}`, the GraphQL error body, the edge's refusals (rate
//! limited, banned, body too large, deadline passed) and a handler's panic.
//!
//! The design choice: a route speaks one [`Protocol`], and an error is answered in it, whoever
//! raised it (a handler, the edge, the REST shim reading a GraphQL answer). [`HttpError`] is the
//! one `IntoResponse` for them all; the status comes from the [`ErrorCode`] unless the answer
//! needs a more precise one (413, 405). Every error answer carries the request id to quote and
//! `Cache-Control: no-store`, and a rate-limited one `Retry-After`.

use super::{AppError, ErrorCode};
use crate::context::current_request_id;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use std::borrow::Cow;

/// The body an error answer takes: the language of the route it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The spec's envelope `{code, message, data: null, requestId}`.
    Rest,
    /// A GraphQL response: `{data: null, errors: [{message, extensions: {code, requestId}}]}`.
    Graphql,
    /// Just the message, as text: a refused WebSocket upgrade, before any protocol is spoken.
    PlainText,
}

impl Protocol {
    /// The protocol of a route: GraphQL for `/graphql...`, the REST envelope elsewhere.
    pub fn of_path(path: &str) -> Protocol {
        if path.starts_with("/graphql") {
            Protocol::Graphql
        } else {
            Protocol::Rest
        }
    }
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct HttpError {
    protocol: Protocol,
    status: StatusCode,
    code: ErrorCode,
    message: Cow<'static, str>,
    retry_after_secs: Option<u64>,
}

impl HttpError {
    /// An answer with `code`'s status.
    pub fn new(protocol: Protocol, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> HttpError {
        HttpError { protocol, status: code.http_status(), code, message: message.into(), retry_after_secs: None }
    }

    /// The answer to `error`: its code, its client message, its wait when rate limited.
    pub fn from_error(protocol: Protocol, error: &AppError) -> HttpError {
        HttpError::new(protocol, error.code(), error.to_string()).with_retry_after(error.retry_after_secs())
    }

    /// A status more precise than the code's (413 for a body too large, 405).
    pub fn with_status(mut self, status: StatusCode) -> HttpError {
        self.status = status;
        self
    }

    /// Tells the client how long to wait (`Retry-After`, and `retryAfter` in GraphQL).
    pub fn with_retry_after(mut self, seconds: Option<u64>) -> HttpError {
        self.retry_after_secs = seconds;
        self
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        let mut response = match self.protocol {
            Protocol::PlainText => return (self.status, self.message).into_response(),
            Protocol::Rest => rest_envelope(self.status, &self.message, &(), request_id.as_deref()),
            Protocol::Graphql => {
                let mut extensions = json!({ "code": self.code.as_str() });
                if let Some(id) = &request_id {
                    extensions["requestId"] = json!(id.as_ref());
                }
                if let Some(seconds) = self.retry_after_secs {
                    extensions["retryAfter"] = json!(seconds);
                }
                let body = json!({ "data": null, "errors": [{ "message": self.message, "extensions": extensions }] });
                let mut response = (self.status, Json(body)).into_response();
                response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
        };
        if let Some(seconds) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// An error on a REST route.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        HttpError::from_error(Protocol::Rest, &self).into_response()
    }
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

/// Enough for a page of ten customers, so that most answers are written without growing the buffer.
const ENVELOPE_CAPACITY: usize = 8 * 1024;

/// The REST envelope `{code, message, data, requestId?}`, `code` repeating the status; serialized
/// straight from `data` into a buffer sized for a page of results, with no intermediate JSON tree.
/// Errors pass the request id (with `data: null`), successes none.
pub fn rest_envelope(status: StatusCode, message: &str, data: &impl Serialize, request_id: Option<&str>) -> Response {
    let mut status = status;
    let mut body = Vec::with_capacity(ENVELOPE_CAPACITY);
    if let Err(error) = serde_json::to_writer(&mut body, &Envelope { code: status.as_u16(), message, data, request_id })
    {
        tracing::error!(%error, "a REST answer could not be serialized");
        status = StatusCode::INTERNAL_SERVER_ERROR;
        let internal = Envelope { code: 500, message: "服务器内部错误", data: &(), request_id };
        body = serde_json::to_vec(&internal).unwrap_or_default();
    }
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (status, headers, body).into_response()
}

/// A panic in a handler: logged with the request id, answered 500 with a body that is at once a
/// REST envelope and a GraphQL response (`data: null`, `errors`), so either kind of client reads it.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let request_id = current_request_id().map(|id| id.to_string());
    tracing::error!(request_id = request_id.as_deref(), detail, "a handler panicked");
    let code = ErrorCode::Internal;
    let message = AppError::Internal(String::new()).to_string();
    let mut body: Value = json!({
        "code": code.http_status().as_u16(),
        "message": message,
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }],
    });
    if let Some(id) = request_id {
        body["requestId"] = json!(id);
        body["errors"][0]["extensions"]["requestId"] = json!(id);
    }
    let mut response = (code.http_status(), Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn one_of_each() -> Vec<AppError> {
        vec![
            AppError::bad_input("title", "标题不能为空"),
            AppError::Unauthenticated("请先登录"),
            AppError::Forbidden("无权操作"),
            AppError::NotFound("客户"),
            AppError::Conflict("工单已关闭".into()),
            AppError::RateLimited { retry_after_secs: 7 },
            AppError::Unavailable("the store is down".into()),
            AppError::internal("a bug"),
        ]
    }

    #[tokio::test]
    async fn every_error_s_rest_envelope_repeats_its_status_as_code() {
        let errors = one_of_each();
        let codes: std::collections::HashSet<ErrorCode> = errors.iter().map(AppError::code).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len(), "one error of every code");
        for error in errors {
            let expected_message = error.to_string();
            let response = error.into_response();
            let status = response.status();
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
            let body = body_of(response).await;
            assert_eq!(body["code"], status.as_u16(), "{body}");
            assert_eq!(body["message"], expected_message.as_str());
            assert_eq!(body["data"], Value::Null);
        }
    }

    #[tokio::test]
    async fn a_rate_limited_answer_says_when_to_come_back_in_either_protocol() {
        let error = AppError::RateLimited { retry_after_secs: 7 };
        for protocol in [Protocol::Rest, Protocol::Graphql] {
            let response = HttpError::from_error(protocol, &error).into_response();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        }
        let body = body_of(HttpError::from_error(Protocol::Graphql, &error).into_response()).await;
        assert_eq!(body["data"], Value::Null);
        assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
        assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 7);
    }

    #[tokio::test]
    async fn an_error_answer_names_the_request_it_answers() {
        let context = crate::context::RequestContext::new("trace-me-2".into());
        let response = context
            .scope(async { HttpError::new(Protocol::Rest, ErrorCode::NotFound, "接口不存在").into_response() })
            .await;
        assert_eq!(body_of(response).await["requestId"], "trace-me-2");
    }

    #[test]
    fn graphql_routes_answer_errors_in_graphql() {
        assert_eq!(Protocol::of_path("/graphql"), Protocol::Graphql);
        assert_eq!(Protocol::of_path("/graphql/ws"), Protocol::Graphql);
        assert_eq!(Protocol::of_path("/api/customers"), Protocol::Rest);
    }
}
