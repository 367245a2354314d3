//! Graceful shutdown of the connections the HTTP server does not wait for by itself.
//!
//! axum's graceful shutdown stops accepting and lets requests in flight finish, but a WebSocket
//! leaves the HTTP server once upgraded. Each WebSocket connection therefore registers here
//! ([`Shutdown::track`]) and watches [`Shutdown::stopped`]; when the server stops, each closes
//! with 1001 (going away) and the server waits ([`Shutdown::all_closed`]) until they have.

use std::future::Future;
use std::time::Instant;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Shutdown {
    /// When shutting down began; `None` while serving.
    began: watch::Sender<Option<Instant>>,
    /// Connections that have to be told.
    open: watch::Sender<usize>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { began: watch::channel(None).0, open: watch::channel(0).0 }
    }
}

impl Shutdown {
    /// Starts shutting down: every tracked connection is told to close.
    pub fn begin(&self) {
        self.began.send_if_modified(|began| {
            let first = began.is_none();
            if first {
                *began = Some(Instant::now());
            }
            first
        });
    }

    /// When shutting down began, if it has.
    pub fn began_at(&self) -> Option<Instant> {
        *self.began.borrow()
    }

    pub fn is_stopping(&self) -> bool {
        self.began.borrow().is_some()
    }

    /// Completes once shutting down has begun.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut began = self.began.subscribe();
        async move {
            if began.wait_for(Option::is_some).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Registers a connection until the guard is dropped.
    pub fn track(&self) -> TrackedConnection {
        self.open.send_modify(|open| *open += 1);
        TrackedConnection { open: self.open.clone() }
    }

    pub fn open_connections(&self) -> usize {
        *self.open.borrow()
    }

    /// Completes when no tracked connection is open.
    pub async fn all_closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open == 0).await;
    }
}

/// A connection registered with [`Shutdown::track`].
#[derive(Debug)]
pub struct TrackedConnection {
    open: watch::Sender<usize>,
}

impl Drop for TrackedConnection {
    fn drop(&mut self) {
        self.open.send_modify(|open| *open = open.saturating_sub(1));
    }
}
