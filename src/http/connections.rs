//! Serving connections: the accept loop, with the limits that bound what a slow or idle client
//! costs (see `config::ConnectionSettings`).
//!
//! `axum::serve` gives hyper no timer, so a client that trickles its headers, or sends nothing,
//! would hold its connection forever. This loop serves each connection with hyper's HTTP/1
//! builder itself: a header-read timeout (hyper's, which also runs while a kept-alive connection
//! waits for its next request), an idle timeout ([`IdleStream`]: no request in progress and no
//! byte either way), a deadline for a request's whole body ([`DeadlineBody`]), and a cap on the
//! connections one peer address holds open ([`AddressSlots`]; a connection over it is closed at
//! once, before a byte is read: answering would cost what the cap saves). WebSockets leave the
//! HTTP connection once upgraded and count against their own cap, taken in `ws::upgrade`.
//! Like axum's loop it sets `TCP_NODELAY`, gives handlers the peer address (`ConnectInfo<Peer>`)
//! and shuts down gracefully: stop accepting, let requests in flight finish, close idle
//! connections.

use super::listener::{self, Peer};
use crate::config::{ConnectionSettings, IpNet};
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::{BoxError, Router};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// How many connections each peer address holds open, against a cap (0: none). Addresses in
/// `exempt` (the trusted proxies) are not capped.
#[derive(Debug)]
pub struct AddressSlots {
    cap: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl AddressSlots {
    pub fn new(cap: usize, exempt: Vec<IpNet>) -> Arc<AddressSlots> {
        Arc::new(AddressSlots { cap, exempt, open: Mutex::new(HashMap::new()) })
    }

    /// A slot for one more connection of `ip`, or `None` when it holds the cap already. An IPv6
    /// peer is counted by its /64, like every other per-address limit.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = crate::config::canonical(ip);
        if self.cap == 0 || self.exempt.iter().any(|net| net.contains(ip)) {
            return Some(Slot { slots: None, ip });
        }
        let ip = crate::config::limit_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Slot { slots: Some(Arc::clone(self)), ip })
    }
}

/// One connection counted in [`AddressSlots`] until dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Option<Arc<AddressSlots>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = &self.slots {
            let mut open = slots.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(count) = open.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&self.ip);
                }
            }
        }
    }
}

/// The WebSocket connections per peer address and the peer of this request's connection, given
/// to every request as an extension for `ws::upgrade` to take a slot from.
#[derive(Debug, Clone)]
pub struct WebSocketSlots {
    slots: Arc<AddressSlots>,
    peer: IpAddr,
}

impl WebSocketSlots {
    /// A slot for one more WebSocket of this connection's peer, or `None` over the cap.
    pub fn take(&self) -> Option<Slot> {
        self.slots.take(self.peer)
    }
}

/// Serves `router` on `listener` until `signal` completes, then shuts down gracefully (see the
/// module documentation).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    trusted_proxies: Vec<IpNet>,
    signal: impl Future<Output = ()>,
) -> io::Result<()> {
    let http_slots = AddressSlots::new(settings.max_per_ip, trusted_proxies.clone());
    let websocket_slots = AddressSlots::new(settings.max_websockets_per_ip, trusted_proxies);
    let (stop, stopping) = watch::channel(false);
    // Each connection holds a sender; when all are gone, `recv` answers `None`.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut signal => break,
            accepted = listener::accept(&listener) => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors, say: wait for some to be freed rather than spin.
                    tracing::error!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let Some(slot) = http_slots.take(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: the address holds HTTP_MAX_CONNECTIONS_PER_IP connections");
            continue;
        };
        let connection = Connection {
            router: router.clone(),
            settings: settings.clone(),
            websocket_slots: WebSocketSlots { slots: Arc::clone(&websocket_slots), peer: peer.ip() },
            peer,
            _slot: slot,
            _alive: alive.clone(),
        };
        tokio::spawn(connection.serve(stream, stopping.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(alive);
    let _ = all_closed.recv().await;
    Ok(())
}

/// Errors of one connection that `accept` reports; the listener is fine.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

struct Connection {
    router: Router,
    settings: ConnectionSettings,
    websocket_slots: WebSocketSlots,
    peer: SocketAddr,
    _slot: Slot,
    _alive: mpsc::Sender<()>,
}

impl Connection {
    async fn serve(self, stream: TcpStream, mut stopping: watch::Receiver<bool>) {
        let in_progress = Arc::new(AtomicUsize::new(0));
        let io = TokioIo::new(IdleStream::new(stream, self.settings.idle_timeout, Arc::clone(&in_progress)));
        let (router, peer, body_timeout) = (self.router.clone(), self.peer, self.settings.body_timeout);
        let websocket_slots = self.websocket_slots.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut router = router.clone();
            let busy = Busy::enter(&in_progress);
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(ConnectInfo(Peer(peer)));
            parts.extensions.insert(websocket_slots.clone());
            let request = Request::from_parts(parts, Body::new(DeadlineBody::new(body, body_timeout)));
            async move {
                let response = router.call(request).await;
                if response.as_ref().is_ok_and(|response| response.status() == StatusCode::SWITCHING_PROTOCOLS) {
                    // The connection now carries a WebSocket, which its pings keep alive and
                    // which is quiet for long stretches: it stays "in progress" for good.
                    std::mem::forget(busy);
                } else {
                    drop(busy);
                }
                response
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.settings.header_timeout).keep_alive(true);
        let connection = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        let served = tokio::select! {
            served = connection.as_mut() => served,
            () = async { let _ = stopping.wait_for(|stopping| *stopping).await; } => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = served {
            tracing::debug!(%error, peer = %self.peer, "connection ended with an error");
        }
    }
}

/// A request in progress on a connection, until dropped.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(in_progress: &Arc<AtomicUsize>) -> Busy {
        in_progress.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(in_progress))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A TCP stream that fails its reads once it has been idle (no request in progress, no byte
/// read or written) for `idle`, which makes hyper close the connection. While a request is in
/// progress the handler's own deadlines apply instead, and once upgraded to a WebSocket never.
struct IdleStream {
    stream: TcpStream,
    idle: Duration,
    /// When the last byte was read or written.
    last_active: Instant,
    /// Due at or before the end of the idle time; moved only when it fires (moving a timer on
    /// every read and write costs the timer wheel's lock twice a request).
    timer: Pin<Box<Sleep>>,
    in_progress: Arc<AtomicUsize>,
}

impl IdleStream {
    fn new(stream: TcpStream, idle: Duration, in_progress: Arc<AtomicUsize>) -> IdleStream {
        let last_active = Instant::now();
        IdleStream {
            stream,
            idle,
            last_active,
            timer: Box::pin(tokio::time::sleep_until(last_active + idle)),
            in_progress,
        }
    }

    fn active(&mut self) {
        self.last_active = Instant::now();
    }

    /// Whether `idle` has passed since the last byte; if not, `cx` is woken when it may have.
    fn idled_out(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            let deadline = self.last_active + self.idle;
            if deadline <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
        false
    }
}

impl AsyncRead for IdleStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if self.in_progress.load(Ordering::SeqCst) == 0 && self.idled_out(cx) {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle")));
                }
                Poll::Pending
            }
            failed => failed,
        }
    }
}

impl AsyncWrite for IdleStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that fails once `HTTP_BODY_TIMEOUT_MS` has passed since its head arrived,
/// however its bytes trickle in.
struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(body: Incoming, timeout: Duration) -> DeadlineBody {
        DeadlineBody { body, deadline: Box::pin(tokio::time::sleep(timeout)) }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(BoxError::from)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err("the request body took longer than HTTP_BODY_TIMEOUT_MS".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_cap_and_a_closed_slot_is_free_again() {
        let slots = AddressSlots::new(2, vec![IpNet::parse("10.0.0.0/8").unwrap()]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = slots.take(ip).unwrap();
        let _second = slots.take(ip).unwrap();
        assert!(slots.take(ip).is_none());
        assert!(slots.take("::ffff:192.0.2.1".parse().unwrap()).is_none(), "IPv4-mapped is the same address");
        assert!(slots.take("192.0.2.2".parse().unwrap()).is_some(), "another address has its own cap");
        drop(first);
        assert!(slots.take(ip).is_some());
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| slots.take(proxy).unwrap()).collect();
        assert_eq!(held.len(), 5, "a trusted proxy is not capped");
        let _v6: Vec<_> = (0..2).map(|_| slots.take("2001:db8:1:2::1".parse().unwrap()).unwrap()).collect();
        assert!(slots.take("2001:db8:1:2:ffff::9".parse().unwrap()).is_none(), "one /64 is one client");
        assert!(slots.take("2001:db8:1:3::1".parse().unwrap()).is_some(), "another /64 is another");
    }
}
