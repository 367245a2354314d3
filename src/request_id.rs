//! Request ids: which incoming `x-request-id` the HTTP edge keeps, and new ones. The edge puts
//! the id into the request's [`RequestContext`](crate::telemetry::RequestContext), so every log
//! line and every error built while serving it can name it without passing it around
//! ([`current_request_id`](crate::telemetry::current_request_id)); it is echoed in the
//! `x-request-id` header and put into every error the client gets.

use std::sync::Arc;

/// Whether an incoming `x-request-id` may be echoed: 1 to 64 of `A-Z a-z 0-9 - _ . :`, so it
/// cannot forge log lines or carry anything but an id.
pub fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new id: 32 hex digits (time-ordered, then random).
pub fn generate() -> Arc<str> {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    let millis = chrono::Utc::now().timestamp_millis() as u64;
    let hex: String = millis.to_be_bytes().iter().chain(random.iter()).map(|b| format!("{b:02x}")).collect();
    Arc::from(hex)
}
