//! Connection settings: how long a client may take to send a request's head and body, how long a
//! kept-alive connection may sit idle, and how many connections one address may hold open.
//!
//! They bound what a slow or idle client costs the server (a socket, a task, buffers), which no
//! request deadline can: a request deadline starts only once the head has arrived. The caps count
//! the socket's peer address, not the client address the edge derives from `X-Forwarded-For`;
//! a peer that is a trusted proxy (`TRUSTED_PROXIES`) is therefore not capped, or one proxy would
//! use up the cap for everyone behind it.

use super::reader::{ConfigError, Reader};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `HTTP_HEADER_TIMEOUT_MS`: the most a request's head (request line and headers) may take
    /// to arrive, counted from when the server starts waiting for it (the connection opened, or
    /// the previous answer was sent); over it, the connection is closed.
    pub header_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT_MS`: the most a request's whole body may take to arrive, counted from
    /// its head; over it, reading the body fails and the request is answered 400.
    pub body_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_MS`: a connection with no request in progress and no byte either way for
    /// this long is closed. At most the header timeout (waiting for the next request is waiting
    /// for a head, so the header timeout bounds it anyway).
    pub idle_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS_PER_IP`: HTTP connections one peer address may hold open; a
    /// connection over it is closed at once. 0: no cap.
    pub max_per_ip: usize,
    /// `WS_MAX_CONNECTIONS_PER_IP`: WebSocket connections one peer address may hold open (apart
    /// from its HTTP connections); an upgrade over it is refused with 429. 0: no cap.
    pub max_websockets_per_ip: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(5),
            max_per_ip: 256,
            max_websockets_per_ip: 128,
        }
    }
}

impl ConnectionSettings {
    pub(super) fn read(env: &Reader) -> Result<ConnectionSettings, ConfigError> {
        let defaults = ConnectionSettings::default();
        let header_timeout = env.millis("HTTP_HEADER_TIMEOUT_MS", 100..=300_000, defaults.header_timeout)?;
        let idle_timeout =
            env.millis("HTTP_IDLE_TIMEOUT_MS", 100..=300_000, defaults.idle_timeout.min(header_timeout))?;
        if idle_timeout > header_timeout {
            return Err(ConfigError::new(
                "HTTP_IDLE_TIMEOUT_MS",
                idle_timeout.as_millis().to_string(),
                "must not exceed HTTP_HEADER_TIMEOUT_MS: an idle connection is waiting for a request head",
            ));
        }
        Ok(ConnectionSettings {
            header_timeout,
            body_timeout: env.millis("HTTP_BODY_TIMEOUT_MS", 100..=3_600_000, defaults.body_timeout)?,
            idle_timeout,
            max_per_ip: env.number_in("HTTP_MAX_CONNECTIONS_PER_IP", 0..=1_000_000, defaults.max_per_ip)?,
            max_websockets_per_ip: env.number_in(
                "WS_MAX_CONNECTIONS_PER_IP",
                0..=1_000_000,
                defaults.max_websockets_per_ip,
            )?,
        })
    }
}
