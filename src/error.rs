//! The one error type of the service, and its GraphQL mapping.
//!
//! Every failure a client can meet is an [`AppError`] variant that says what went wrong for the
//! client. It maps once to GraphQL (`extensions.code`, here, used by resolvers through
//! `async_graphql::ResultExt::extend`) and once to the REST envelope (the
//! status code, via [`AppError::http_status`]). Store and other internal failures carry their detail
//! for the log only; clients see `INTERNAL` / `UNAVAILABLE` with a generic message.

use async_graphql::ErrorExtensions;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed: a missing, wrong-typed or out-of-range parameter.
    #[error("{message}")]
    BadInput { field: Option<&'static str>, message: String },
    /// No credentials, or credentials that are wrong, expired or revoked.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The entity does not exist, or belongs to another provider.
    #[error("{0}不存在")]
    NotFound(&'static str),
    /// The entity's state forbids the action.
    #[error("{0}")]
    Conflict(String),
    /// Too many requests: try again after this many seconds.
    #[error("请求过于频繁，请{retry_after_secs}秒后再试")]
    RateLimited { retry_after_secs: u64 },
    /// A backing store is unreachable.
    #[error("服务暂时不可用，请稍后再试")]
    Unavailable(String),
    /// Anything else: a bug or an unexpected store failure. The detail is logged, never shown.
    #[error("服务器内部错误")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(field: &'static str, message: impl Into<String>) -> AppError {
        AppError::BadInput { field: Some(field), message: message.into() }
    }

    /// Too many requests; the wait is rounded up to whole seconds (at least one).
    pub fn rate_limited(retry_after: std::time::Duration) -> AppError {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        AppError::RateLimited { retry_after_secs: secs.max(1) }
    }

    pub fn internal(detail: impl std::fmt::Display) -> AppError {
        AppError::Internal(detail.to_string())
    }

    /// The GraphQL `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadInput { .. } => "BAD_USER_INPUT",
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Conflict(_) => "CONFLICT",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Unavailable(_) => "UNAVAILABLE",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The HTTP status (and REST `code`) for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            AppError::BadInput { .. } => 400,
            AppError::Unauthenticated(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::RateLimited { .. } => 429,
            AppError::Unavailable(_) => 503,
            AppError::Internal(_) => 500,
        }
    }

    /// The HTTP status for a GraphQL `extensions.code`, for layers that only see the GraphQL error.
    pub fn http_status_for_code(code: &str) -> u16 {
        match code {
            "BAD_USER_INPUT" => 400,
            "UNAUTHENTICATED" => 401,
            "FORBIDDEN" => 403,
            "NOT_FOUND" => 404,
            "CONFLICT" => 409,
            "RATE_LIMITED" => 429,
            "UNAVAILABLE" => 503,
            _ => 500,
        }
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        let request_id = crate::telemetry::current_request_id();
        match self {
            AppError::Internal(detail) | AppError::Unavailable(detail) => {
                tracing::error!(code = self.code(), request_id = request_id.as_deref(), %detail, "request failed");
            }
            _ => {}
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", self.code());
            if let AppError::BadInput { field: Some(field), .. } = self {
                extensions.set("field", *field);
            }
            if let AppError::RateLimited { retry_after_secs } = self {
                extensions.set("retryAfter", *retry_after_secs);
            }
            if let Some(id) = &request_id {
                extensions.set("requestId", id.to_string());
            }
        })
    }
}
