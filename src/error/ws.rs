//! Errors on a WebSocket, rendered in one place: the close frame that ends a connection (a code
//! and a reason), and the `error` message that refuses one operation while the connection lives on.
//!
//! The design choice: the close codes are named here with the reason clients read, so the
//! connection loop only decides *when* to close, never how the frame looks.

use super::ErrorCode;
use async_graphql::http::WebSocketProtocols;
use axum::extract::ws::{CloseFrame, Message};

/// No `connection_init` token (graphql-transport-ws: Unauthorized).
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// A token that is bad, revoked or expired.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// No `connection_init` in time.
pub const CLOSE_INIT_TIMEOUT: u16 = 4408;
/// The server is shutting down (RFC 6455: going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The frame that closes a connection with `code`, telling the client why.
pub fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// The `error` message refusing operation `id`, in the shape of the connection's protocol
/// (`graphql-transport-ws` carries a list of errors, the legacy `graphql-ws` one error).
pub fn operation_error(id: &str, protocol: WebSocketProtocols, code: ErrorCode, message: &str) -> String {
    let payload = serde_json::json!({ "message": message, "extensions": { "code": code.as_str() } });
    let payload = match protocol {
        WebSocketProtocols::GraphQLWS => serde_json::json!([payload]),
        _ => payload,
    };
    serde_json::json!({ "type": "error", "id": id, "payload": payload }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_operation_names_its_id_and_code_in_either_protocol() {
        let legacy = operation_error("7", WebSocketProtocols::SubscriptionsTransportWS, ErrorCode::RateLimited, "多");
        assert_eq!(
            legacy,
            r#"{"type":"error","id":"7","payload":{"message":"多","extensions":{"code":"RATE_LIMITED"}}}"#
        );
        let modern = operation_error("7", WebSocketProtocols::GraphQLWS, ErrorCode::RateLimited, "多");
        assert_eq!(
            modern,
            r#"{"type":"error","id":"7","payload":[{"message":"多","extensions":{"code":"RATE_LIMITED"}}]}"#
        );
    }
}
