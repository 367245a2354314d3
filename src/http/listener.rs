//! Accepting connections: `TCP_NODELAY` on every accepted connection, and the peer address type
//! handlers find as `ConnectInfo<Peer>` (set by [`super::connections`]).
//!
//! Without `TCP_NODELAY` the kernel holds a small write back while an earlier one is
//! unacknowledged (Nagle), and the client acknowledges late when it has nothing to send (delayed
//! ACK, up to 40 ms on Linux): a chat message or notification pushed right after another waited
//! for that ACK.

use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// The next connection, with `TCP_NODELAY` set.
pub async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
    }
    Ok((stream, peer))
}

/// The address of a connection's peer, for the edge (see [`super::edge::request_context`]).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, peer) = accept(&listener).await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is set on the server's side");
    }
}
