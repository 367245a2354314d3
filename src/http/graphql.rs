//! `POST /graphql`: authenticates the caller from the `Authorization` header and runs the operation.

use super::AppState;
use crate::error::AppError;
use crate::graphql::{with_request_data, RequestAuth};
use crate::service::Services;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::{header, HeaderMap};

pub async fn execute(State(state): State<AppState>, headers: HeaderMap, request: GraphQLRequest) -> GraphQLResponse {
    let auth = authenticate(&state.services, &headers).await;
    let request = with_request_data(request.into_inner(), &state.services, auth);
    state.schema.execute(request).await.into()
}

/// Verifies the bearer token, if the request carries one. A request without one may still sign
/// in; resolvers that need a provider refuse it.
pub async fn authenticate(services: &Services, headers: &HeaderMap) -> RequestAuth {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return RequestAuth::missing();
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match token {
        Some(token) => {
            let auth = services.auth.authenticate(token).await;
            if let Ok(session) = &auth {
                crate::telemetry::note_provider(&session.provider_id);
            }
            RequestAuth(auth)
        }
        None => RequestAuth(Err(AppError::Unauthenticated("认证信息格式不正确，应为 Bearer 令牌"))),
    }
}
