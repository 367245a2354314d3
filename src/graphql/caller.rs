//! Who is calling: the bearer token of an HTTP request verified into a [`RequestAuth`], and the
//! signed-in provider's rate limit checked before anything runs.
//!
//! It lives beside the schema, not in the HTTP layer, because both HTTP front doors (`/graphql`
//! and the REST shim, which sits below `http`) put the caller into a GraphQL request the same way.

use super::RequestAuth;
use crate::error::AppError;
use crate::limits::Refusal;
use crate::service::{ClientInfo, Services};
use axum::http::{header, HeaderMap};

/// [`authenticate`], and the signed-in provider's rate limit for `operations` operations (a
/// batch's), refused before anything runs.
pub async fn authenticate_limited(
    services: &Services,
    headers: &HeaderMap,
    client: &ClientInfo,
    operations: usize,
) -> Result<RequestAuth, Refusal> {
    let auth = authenticate(services, headers).await;
    if let Ok(session) = &auth.0 {
        let operations = u32::try_from(operations).unwrap_or(u32::MAX);
        services.guard.check_provider(&session.provider_id, client.ip, operations).await?;
    }
    Ok(auth)
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
                crate::context::note_provider(&session.provider_id);
            }
            RequestAuth(auth)
        }
        None => RequestAuth(Err(AppError::Unauthenticated("认证信息格式不正确，应为 Bearer 令牌"))),
    }
}
