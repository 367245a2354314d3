//! The one WebSocket client of `/graphql/ws` the tests use, speaking `graphql-transport-ws` or,
//! when opened with [`LEGACY_WS`], the legacy `graphql-ws` protocol (`start`/`data`/`ka`).
//! It reads strictly: every wait has a deadline, pings are answered and skipped, and anything
//! unexpected (a close while a message is awaited, a result of another subscription) panics with
//! what arrived, so a test says what it waits for and fails on anything else.

use super::{Api, Backend};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The current protocol.
pub const TRANSPORT_WS: &str = "graphql-transport-ws";
/// The legacy protocol of `subscriptions-transport-ws`, which older clients still speak.
pub const LEGACY_WS: &str = "graphql-ws";

/// How long a client waits for anything the server should send soon, before calling it hung:
/// longer on MongoDB, since SecantusDB (a MongoDB-wire server in Python) answers far more slowly
/// on a loaded machine. Not a speed check.
pub fn wait() -> Duration {
    if Backend::from_env().is_mongo() {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(20)
    }
}

/// A WebSocket client of `/graphql/ws`, speaking `graphql-transport-ws` or the legacy `graphql-ws`.
pub struct WsClient {
    socket: WebSocketStream<TcpStream>,
    legacy: bool,
}

impl WsClient {
    /// Opens a connection offering `protocol`, without signing in.
    pub async fn open(api: &Api, protocol: &str) -> WsClient {
        WsClient::open_with_buffer(api, protocol, None).await
    }

    /// Opens a connection whose socket receive buffer is `receive_buffer` bytes (the system's
    /// default when `None`), so that a client that stops reading pushes back on the server soon.
    pub async fn open_with_buffer(api: &Api, protocol: &str, receive_buffer: Option<u32>) -> WsClient {
        WsClient::open_at(&api.address, protocol, receive_buffer).await
    }

    /// Opens a connection to the server at `address` (`http://host:port`).
    pub async fn open_at(address: &str, protocol: &str, receive_buffer: Option<u32>) -> WsClient {
        let host = address.trim_start_matches("http://");
        let address = tokio::net::lookup_host(host).await.expect("the address resolves").next().expect("an address");
        let socket = if address.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.expect("a socket");
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).expect("the receive buffer can be set");
        }
        let stream = socket.connect(address).await.expect("the server accepts a connection");
        let mut request = format!("ws://{host}/graphql/ws").into_client_request().expect("a WebSocket request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(protocol).expect("a header"));
        let (socket, response) =
            tokio_tungstenite::client_async(request, stream).await.expect("the WebSocket handshake succeeds");
        let chosen = response.headers().get("Sec-WebSocket-Protocol").and_then(|value| value.to_str().ok());
        assert_eq!(chosen, Some(protocol), "the server speaks the protocol offered");
        WsClient { socket, legacy: protocol == LEGACY_WS }
    }

    /// Opens a `graphql-transport-ws` connection and signs in with `token`.
    pub async fn connect(api: &Api, token: &str) -> WsClient {
        let mut client = WsClient::open(api, TRANSPORT_WS).await;
        client.init(token).await;
        client
    }

    /// Sends `connection_init` with the token and waits for `connection_ack`.
    pub async fn init(&mut self, token: &str) {
        self.init_with(json!({ "Authorization": format!("Bearer {token}") })).await;
        let ack = self.next_message().await;
        assert_eq!(ack["type"], "connection_ack", "signing in is acknowledged: {ack}");
    }

    pub async fn init_with(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload })).await;
    }

    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::Text(message.to_string().into())).await.expect("the message is sent");
    }

    /// Starts a subscription (`subscribe`, or `start` in the legacy protocol).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({ "type": kind, "id": id, "payload": { "query": query, "variables": variables } })).await;
    }

    /// The next protocol message, skipping pings and pongs (answering the protocol's pings).
    pub async fn next_message(&mut self) -> Value {
        self.next_message_within(wait()).await
    }

    pub async fn next_message_within(&mut self, wait: Duration) -> Value {
        self.next_message_or_quiet(wait).await.unwrap_or_else(|| panic!("no message from the server within {wait:?}"))
    }

    /// The next protocol message, or `None` when the server sends nothing for `quiet` (pings
    /// answered and skipped): for reading whatever a burst of writes delivered.
    pub async fn next_message_or_quiet(&mut self, quiet: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(text.as_str()).expect("the server sends JSON");
                    match message["type"].as_str() {
                        Some("ping") => self.send(json!({ "type": "pong" })).await,
                        Some("pong" | "ka") => {}
                        _ => return Some(message),
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(frame))) => panic!("the server closed the connection: {frame:?}"),
                Some(Ok(other)) => panic!("unexpected frame: {other:?}"),
                Some(Err(error)) => panic!("the connection failed: {error}"),
                None => panic!("the connection ended"),
            }
        }
    }

    /// The payload of the next result of subscription `id` (`next`, or `data` in the legacy
    /// protocol): `{ data }` or `{ errors }`.
    pub async fn next_payload(&mut self, id: &str) -> Value {
        let message = self.next_message().await;
        let kind = if self.legacy { "data" } else { "next" };
        assert_eq!(message["type"], kind, "a result of subscription {id}: {message}");
        assert_eq!(message["id"], id, "a result of subscription {id}: {message}");
        message["payload"].clone()
    }

    /// The next event of subscription `id`: the value of its single root field.
    pub async fn next_event(&mut self, id: &str) -> Value {
        let payload = self.next_payload(id).await;
        assert!(payload.get("errors").is_none(), "an event without errors: {payload}");
        let data = payload["data"].as_object().unwrap_or_else(|| panic!("an event with data: {payload}"));
        assert_eq!(data.len(), 1, "one root field: {payload}");
        data.values().next().cloned().unwrap_or_default()
    }

    /// The next `count` events of subscription `id`.
    pub async fn next_events(&mut self, id: &str, count: usize) -> Vec<Value> {
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            events.push(self.next_event(id).await);
        }
        events
    }

    /// Waits for subscription `id` to end (`complete`).
    pub async fn expect_complete(&mut self, id: &str) {
        let message = self.next_message().await;
        assert_eq!(message["type"], "complete", "subscription {id} ends: {message}");
        assert_eq!(message["id"], id, "subscription {id} ends: {message}");
    }

    /// Waits for the server to close the connection and returns the close code.
    pub async fn expect_close(&mut self) -> u16 {
        self.expect_close_within(wait()).await
    }

    pub async fn expect_close_within(&mut self, wait: Duration) -> u16 {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("the server did not close the connection within {wait:?}"));
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) => panic!("the server closed the connection without a code"),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("the connection failed before a close frame: {error}"),
                None => panic!("the connection ended without a close frame"),
            }
        }
    }

    /// Closes the connection from the client's side.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
