//! The one error type of the service, the codes clients see, and its GraphQL mapping.
//!
//! Every failure a client can meet is an [`AppError`] variant that says what went wrong for the
//! client. Each variant has one [`ErrorCode`], and the code owns everything a protocol needs: its
//! string (GraphQL `extensions.code`), its HTTP status (and the REST envelope's `code`). The
//! GraphQL mapping is here (used by resolvers through `async_graphql::ResultExt::extend`); the
//! HTTP rendering, one path for every HTTP error shape, is in [`http`], and the WebSocket frames
//! in [`ws`]. Store and other internal failures carry their detail for the log only
//! ([`AppError::operator_detail`]); clients see `INTERNAL` / `UNAVAILABLE` with a generic message.

pub mod http;
pub mod ws;

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;
use std::borrow::Cow;

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

/// The message of a request cut at its deadline (`REQUEST_TIMEOUT_MS`), over HTTP or a WebSocket:
/// an `UNAVAILABLE` that says why.
pub const REQUEST_TIMED_OUT: &str = "请求处理超时，请稍后再试";

/// What kind of failure a client met: the GraphQL `extensions.code` and the HTTP status in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadUserInput,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The string clients read: GraphQL `extensions.code`, and what the audit log records.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The HTTP status (and REST `code`) of an answer with this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code a GraphQL `extensions.code` names, for layers that only see the GraphQL error.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|candidate| candidate.as_str() == code)
    }

    /// Whether the failure is the server's, not the client's: its detail is for the operators.
    pub fn is_server_fault(self) -> bool {
        matches!(self, ErrorCode::Unavailable | ErrorCode::Internal)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A string that is no [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl std::str::FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(code: &str) -> Result<ErrorCode, UnknownErrorCode> {
        ErrorCode::parse(code).ok_or_else(|| UnknownErrorCode(code.to_owned()))
    }
}

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

    /// What kind of failure this is for the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::BadInput { .. } => ErrorCode::BadUserInput,
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status (and REST `code`) for this error.
    pub fn http_status(&self) -> StatusCode {
        self.code().http_status()
    }

    /// How long the client should wait before trying again, for a rate-limited request.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// What an operator needs to read: the detail a server fault carries (never shown to API
    /// clients), else the message the client got.
    pub fn operator_detail(&self) -> Cow<'_, str> {
        match self {
            AppError::Internal(detail) | AppError::Unavailable(detail) => Cow::Borrowed(detail),
            other => Cow::Owned(other.to_string()),
        }
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        let request_id = crate::context::current_request_id();
        if self.code().is_server_fault() {
            let detail = self.operator_detail();
            tracing::error!(code = self.code().as_str(), request_id = request_id.as_deref(), %detail, "request failed");
        }
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", self.code().as_str());
            if let AppError::BadInput { field: Some(field), .. } = self {
                extensions.set("field", *field);
            }
            if let Some(retry_after_secs) = self.retry_after_secs() {
                extensions.set("retryAfter", retry_after_secs);
            }
            if let Some(id) = &request_id {
                extensions.set("requestId", id.to_string());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back_from_its_string() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        assert_eq!("SOMETHING_ELSE".parse::<ErrorCode>(), Err(UnknownErrorCode("SOMETHING_ELSE".to_owned())));
    }

    #[test]
    fn each_code_has_the_status_clients_were_promised() {
        let statuses: Vec<(&str, u16)> =
            ErrorCode::ALL.iter().map(|code| (code.as_str(), code.http_status().as_u16())).collect();
        assert_eq!(
            statuses,
            [
                ("BAD_USER_INPUT", 400),
                ("UNAUTHENTICATED", 401),
                ("FORBIDDEN", 403),
                ("NOT_FOUND", 404),
                ("CONFLICT", 409),
                ("RATE_LIMITED", 429),
                ("UNAVAILABLE", 503),
                ("INTERNAL", 500),
            ]
        );
    }

    #[test]
    fn only_server_faults_show_operators_their_detail() {
        assert_eq!(AppError::internal("disk full").operator_detail(), "disk full");
        assert_eq!(AppError::Unavailable("redis down".into()).operator_detail(), "redis down");
        assert_eq!(AppError::NotFound("客户").operator_detail(), "客户不存在");
        assert!(AppError::internal("x").code().is_server_fault());
        assert!(!AppError::Forbidden("no").code().is_server_fault());
    }
}
