//! `POST /graphql`: authenticates the caller from the `Authorization` header and runs the operation
//! (or, signed in, a batch of up to `GRAPHQL_MAX_BATCH` operations, each counted against the
//! provider's rate; an anonymous caller sends one operation at a time).

use super::AppState;
use crate::context::{note_bad_request, BadRequest};
use crate::error::http::{HttpError, Protocol};
use crate::error::{AppError, ErrorCode};
use crate::graphql::{authenticate_limited, with_request_data, RequestAuth};
use crate::service::ClientInfo;
use async_graphql::{BatchRequest, ParseRequestError};
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

pub async fn execute(
    State(state): State<AppState>,
    client: Option<Extension<ClientInfo>>,
    headers: HeaderMap,
    request: GraphQLBatchRequest<MalformedRequest>,
) -> Response {
    let client = client.map(|Extension(client)| client).unwrap_or_default();
    let request = request.into_inner();
    let max_batch = state.services.guard.settings().graphql_max_batch;
    if let BatchRequest::Batch(requests) = &request {
        if requests.len() > max_batch || requests.is_empty() {
            let message = format!("批量请求须包含1到{max_batch}个操作");
            return HttpError::new(Protocol::Graphql, ErrorCode::BadUserInput, message).into_response();
        }
    }
    let operations = match &request {
        BatchRequest::Single(_) => 1,
        BatchRequest::Batch(requests) => requests.len(),
    };
    let auth = match authenticate_limited(&state.services, &headers, &client, operations).await {
        Ok(auth) => auth,
        Err(refusal) => return HttpError::from_error(Protocol::Graphql, &AppError::from(refusal)).into_response(),
    };
    if operations > 1 && !auth.signed_in() {
        // An anonymous caller has only sign-in and refresh to run; a batch of them would only
        // multiply password guesses in one request.
        let message = "批量请求须先登录";
        return HttpError::new(Protocol::Graphql, ErrorCode::BadUserInput, message).into_response();
    }
    let response = match request {
        BatchRequest::Single(request) => {
            let request = with_request_data(request, &state.services, auth, client);
            async_graphql::BatchResponse::Single(state.schema.execute(request).await)
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                let auth = RequestAuth(auth.0.as_ref().map(Clone::clone).map_err(clone_error));
                let request = with_request_data(request, &state.services, auth, client.clone());
                responses.push(state.schema.execute(request).await);
            }
            async_graphql::BatchResponse::Batch(responses)
        }
    };
    GraphQLResponse::from(response).into_response()
}

/// A `/graphql` body that is not a GraphQL request (not JSON, or JSON without a `query`): answered
/// like every other error, without the parser's words.
pub struct MalformedRequest(ParseRequestError);

impl From<ParseRequestError> for MalformedRequest {
    fn from(error: ParseRequestError) -> Self {
        MalformedRequest(error)
    }
}

impl IntoResponse for MalformedRequest {
    fn into_response(self) -> Response {
        let (status, what, message) = match self.0 {
            ParseRequestError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, BadRequest::BodyTooLarge, "请求体过大")
            }
            error => {
                tracing::info!(detail = ?error, "not a GraphQL request");
                let message = "请求体不是有效的GraphQL请求（应为含 query 的JSON对象）";
                (StatusCode::BAD_REQUEST, BadRequest::MalformedBody, message)
            }
        };
        note_bad_request(what);
        HttpError::new(Protocol::Graphql, ErrorCode::BadUserInput, message).with_status(status).into_response()
    }
}

fn clone_error(error: &AppError) -> AppError {
    match error {
        AppError::Unauthenticated(message) => AppError::Unauthenticated(message),
        AppError::Unavailable(detail) => AppError::Unavailable(detail.clone()),
        other => AppError::Internal(other.to_string()),
    }
}
