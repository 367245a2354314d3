//! `GET /graphql/ws`: subscriptions over WebSocket, protocol `graphql-transport-ws` (and the
//! legacy `graphql-ws`).
//!
//! The client signs in with `connection_init` (`{"Authorization": "Bearer <token>"}` or
//! `{"token": "<token>"}`). A connection without a token is closed with 4401, one with a bad
//! token with 4403, one that sends no `connection_init` within [`INIT_TIMEOUT`] with 4408. A
//! connection whose token is revoked (logout, refresh-token reuse) or expires while it is open is
//! closed with 4403 at once. The server pings every `WS_PING_SECONDS` (20 by default) so that
//! mobile networks and proxies keep idle sockets open, and checks each time that the connection's
//! session is still signed in: a session ended where this process hears nothing of it (a password
//! reset from the command line on the embedded store) is closed with 4403 then. A connection
//! runs at most `WS_MAX_SUBSCRIPTIONS` operations at once; one more is answered with an `error`
//! message for its id (code RATE_LIMITED) and not run. Each query and mutation on a connection
//! takes from the provider's rate and runs under `REQUEST_TIMEOUT_MS`, as over HTTP (see
//! `graphql::socket_operations`).
//! When the server shuts down, every connection is closed with 1001 (going away); a client
//! reconnects, with its last cursor, to another server or after the restart.

use super::connections::WebSocketSlots;
use super::AppState;
use crate::error::http::{HttpError, Protocol};
use crate::error::ws::{
    close_frame, operation_error, CLOSE_FORBIDDEN, CLOSE_GOING_AWAY, CLOSE_INIT_TIMEOUT, CLOSE_UNAUTHORIZED,
};
use crate::error::{AppError, ErrorCode};
use crate::graphql::{connection_data, RequestAuth};
use crate::metrics;
use crate::service::{ClientInfo, Session};
use async_graphql::http::{WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a connection may stay open without signing in.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest message a client may send (a subscription document with its variables).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// What async-graphql closes with when a subscription comes before `connection_init`.
const CLOSE_HANDSHAKE_INCOMPLETE: u16 = 1011;

pub async fn upgrade(
    State(state): State<AppState>,
    client: Option<Extension<ClientInfo>>,
    slots: Option<Extension<WebSocketSlots>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = client.map(|Extension(client)| client).unwrap_or_default();
    // Counted by the socket's peer address, like the HTTP connections (see `connections`).
    let slot = match slots.map(|Extension(slots)| slots.take()) {
        Some(None) => {
            let message = "来自该地址的WebSocket连接过多，请稍后再试";
            return HttpError::new(Protocol::PlainText, ErrorCode::RateLimited, message).into_response();
        }
        Some(slot) => slot,
        None => None,
    };
    let offered = headers.get(header::SEC_WEBSOCKET_PROTOCOL).and_then(|value| value.to_str().ok()).unwrap_or("");
    let Some(protocol) = offered.split(',').find_map(|name| WebSocketProtocols::from_str(name.trim()).ok()) else {
        let message = "请使用 graphql-transport-ws（或 graphql-ws）子协议";
        return HttpError::new(Protocol::PlainText, ErrorCode::BadUserInput, message).into_response();
    };
    if state.shutdown.is_stopping() {
        let message = "服务器正在重启，请稍后重连";
        return HttpError::new(Protocol::PlainText, ErrorCode::Unavailable, message).into_response();
    }
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Most connections sit idle for hours: small buffers (they grow for a large message) keep
        // each one cheap; no client message of this protocol comes near the size limit.
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            serve(state, protocol, socket, client).await;
            drop(slot);
        })
}

/// What signing in on a connection found, shared between the protocol handler and the loop that
/// watches the connection.
#[derive(Default)]
struct SignIn {
    session: Option<(Session, String)>,
    refused_with: Option<u16>,
}

async fn serve(state: AppState, protocol: WebSocketProtocols, socket: WebSocket, client: ClientInfo) {
    let _tracked = state.shutdown.track();
    let _open = metrics::gauge("websocket_connections", &[]).track();
    let (mut sink, source) = socket.split();
    let sign_in = Arc::new(Mutex::new(SignIn::default()));
    let max_operations = state.services.guard.settings().ws_max_subscriptions;
    let running = Arc::new(Mutex::new(HashSet::<String>::new()));
    let (refusals_tx, mut refusals) = tokio::sync::mpsc::unbounded_channel::<String>();
    let input_running = Arc::clone(&running);
    let input = source.take_while(|message| std::future::ready(message.is_ok())).filter_map(move |message| {
        std::future::ready(match message {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                let data = message.into_data();
                match admit(&data, &input_running, max_operations, protocol) {
                    Ok(()) => Some(data),
                    Err(refusal) => {
                        let _ = refusals_tx.send(refusal);
                        None
                    }
                }
            }
            _ => None,
        })
    });
    let services = state.services.clone();
    let init_sign_in = Arc::clone(&sign_in);
    let mut graphql = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol).on_connection_init(
        move |payload| async move {
            let outcome = match bearer_token(&payload) {
                None => Err((CLOSE_UNAUTHORIZED, "缺少访问令牌")),
                Some(token) => match services.auth.authenticate(&token).await {
                    Ok(session) => Ok((session, token)),
                    Err(_) => Err((CLOSE_FORBIDDEN, "访问令牌无效或已失效")),
                },
            };
            let mut sign_in = init_sign_in.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match outcome {
                Ok((session, token)) => {
                    let data = connection_data(&services, RequestAuth(Ok(session.clone())), client.clone());
                    sign_in.session = Some((session, token));
                    Ok(data)
                }
                Err((code, message)) => {
                    sign_in.refused_with = Some(code);
                    Err(async_graphql::Error::new(message))
                }
            }
        },
    );

    let mut revocations = state.services.auth.revoked_families();
    let ping_every = state.services.guard.settings().ws_ping_interval;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let mut closing: Option<(u16, &str)> = None;
    // Families revoked while the connection was still signing in: its token may be among them.
    let mut revoked_during_sign_in: Vec<String> = Vec::new();
    loop {
        let (signed_in, expires_in) = {
            let sign_in = sign_in.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let expires_in = sign_in
                .session
                .as_ref()
                .map(|(session, _)| (session.expires_at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO));
            (sign_in.session.clone(), expires_in)
        };
        if let Some((session, _)) = &signed_in {
            if revoked_during_sign_in.contains(&session.family_id) {
                closing = Some((CLOSE_FORBIDDEN, "登录已失效，请重新登录"));
                break;
            }
            revoked_during_sign_in.clear();
        }
        let expiry = tokio::time::sleep(expires_in.unwrap_or(INIT_TIMEOUT));
        tokio::select! {
            Some(refusal) = refusals.recv() => {
                if sink.send(Message::Text(refusal.into())).await.is_err() {
                    return;
                }
            }
            message = graphql.next() => match message {
                Some(WsMessage::Text(text)) => {
                    finished(&text, &running);
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let refused = sign_in.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).refused_with;
                    // graphql-transport-ws: a subscribe before the connection is acknowledged is
                    // answered with 4401 Unauthorized.
                    let code = match refused {
                        Some(refused) => refused,
                        None if code == CLOSE_HANDSHAKE_INCOMPLETE && signed_in.is_none() => CLOSE_UNAUTHORIZED,
                        None => code,
                    };
                    let _ = sink.send(close_frame(code, &reason)).await;
                    return;
                }
                None => {
                    // The legacy protocol reports a refused sign-in as a message, then ends.
                    let refused = sign_in.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).refused_with;
                    if let Some(code) = refused {
                        closing = Some((code, "访问令牌无效或已失效"));
                    }
                    break;
                }
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                if let Some((_, token)) = &signed_in {
                    if signed_out(&state, token).await {
                        closing = Some((CLOSE_FORBIDDEN, "登录已失效，请重新登录"));
                        break;
                    }
                }
            }
            family = revocations.recv() => {
                let Some((session, token)) = &signed_in else {
                    if let Ok(revoked) = family {
                        revoked_during_sign_in.push(revoked.family_id);
                    }
                    continue;
                };
                let revoked = match family {
                    Ok(revoked) => revoked.family_id == session.family_id,
                    // Missed some revocations: ask the store whether this token is still good.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => signed_out(&state, token).await,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => false,
                };
                if revoked {
                    closing = Some((CLOSE_FORBIDDEN, "登录已失效，请重新登录"));
                    break;
                }
            }
            _ = expiry, if signed_in.is_some() => {
                closing = Some((CLOSE_FORBIDDEN, "访问令牌已过期，请重新登录"));
                break;
            }
            _ = &mut init_deadline, if signed_in.is_none() => {
                closing = Some((CLOSE_INIT_TIMEOUT, "连接初始化超时"));
                break;
            }
            () = state.shutdown.stopped() => {
                closing = Some((CLOSE_GOING_AWAY, "服务器正在重启，请稍后重连"));
                break;
            }
        }
    }
    if let Some((code, reason)) = closing {
        let _ = sink.send(close_frame(code, reason)).await;
    }
}

/// Whether the connection's session has ended. A token store that cannot answer ends nothing
/// here: the connection is asked again at the next ping.
async fn signed_out(state: &AppState, token: &str) -> bool {
    match state.services.auth.authenticate(token).await {
        Ok(_) => false,
        Err(AppError::Unavailable(detail)) => {
            tracing::warn!(%detail, "cannot check an open connection's session; asking again at the next ping");
            false
        }
        Err(_) => true,
    }
}

/// Lets a client message through, or refuses a new operation over the connection's limit (with
/// the `error` message to send for it). Keeps the ids of the operations running.
fn admit(
    data: &[u8],
    running: &Mutex<HashSet<String>>,
    max: usize,
    protocol: WebSocketProtocols,
) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: String,
        id: Option<String>,
    }
    let Ok(Envelope { kind, id: Some(id) }) = serde_json::from_slice::<Envelope>(data) else { return Ok(()) };
    let mut running = running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match kind.as_str() {
        "subscribe" | "start" if !running.contains(&id) && running.len() >= max => {
            tracing::info!(max, "refused a subscription: too many on one connection");
            crate::limits::count_refusal("subscriptions");
            let message = format!("每个连接最多同时运行{max}个订阅");
            Err(operation_error(&id, protocol, ErrorCode::RateLimited, &message))
        }
        "subscribe" | "start" => {
            running.insert(id);
            Ok(())
        }
        "complete" | "stop" => {
            running.remove(&id);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Forgets an operation the server has finished (`complete`) or failed (`error`).
fn finished(text: &str, running: &Mutex<HashSet<String>>) {
    if !(text.starts_with(r#"{"type":"complete""#) || text.starts_with(r#"{"type":"error""#)) {
        return;
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        id: Option<String>,
    }
    if let Ok(Envelope { id: Some(id) }) = serde_json::from_str::<Envelope>(text) {
        running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&id);
    }
}

/// The token of a `connection_init` payload: `{"Authorization": "Bearer <token>"}` (any case of
/// the key) or `{"token": "<token>"}`.
fn bearer_token(payload: &serde_json::Value) -> Option<String> {
    let object = payload.as_object()?;
    let field = |wanted: &str| {
        object.iter().find(|(key, _)| key.eq_ignore_ascii_case(wanted)).and_then(|(_, value)| value.as_str())
    };
    let token = match field("authorization") {
        Some(header) => header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))?,
        None => field("token")?,
    };
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}
