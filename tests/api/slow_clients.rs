//! Slow and greedy clients: connections that trickle a request head or send nothing are closed by
//! the server (header and idle timeouts), a body that never finishes is answered within its
//! deadline, and one address cannot hold more connections than its cap, while other clients keep
//! being served. Nothing here asserts a latency: each bound is generous, and only says the server
//! did close what it had to, rather than keep it open for ever.

use crate::support::TestApp;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Far beyond any timeout the tests set: a connection still open then was never closed.
const GENEROUS: Duration = Duration::from_secs(30);

fn server_address(app: &TestApp) -> SocketAddr {
    app.api.address.trim_start_matches("http://").parse().expect("the server's address")
}

async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source.parse().unwrap(), 0)).expect("a loopback source address");
    socket.connect(server).await.expect("the kernel accepts the connection")
}

/// Reads until the server closes the connection (end of stream or reset); `false` if it is still
/// open after `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A client that sends a request line and then one header line every 300 ms, never the blank
/// line that ends the head; answers when the server closed the connection, or `None` if it did
/// not within [`GENEROUS`].
async fn trickle_headers(server: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(server).await.unwrap();
    let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    let mut line = 0;
    while started.elapsed() < GENEROUS {
        if closed_by_server(&mut stream, Duration::from_millis(300)).await {
            return Some(started.elapsed());
        }
        line += 1;
        if stream.write_all(format!("X-Slow-{line}: 1\r\n").as_bytes()).await.is_err() {
            return Some(started.elapsed());
        }
    }
    None
}

/// A client that connects and sends nothing.
async fn stay_silent(server: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(server).await.unwrap();
    closed_by_server(&mut stream, GENEROUS).await.then(|| started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_slow_connections_from_one_address_are_closed_while_a_normal_client_is_served() {
    let app = TestApp::spawn_configured(&[("HTTP_HEADER_TIMEOUT_MS", "2000"), ("HTTP_IDLE_TIMEOUT_MS", "1000")]).await;
    let server = server_address(&app);
    assert_eq!(app.api.get(None, "/healthz").await.status, 200);

    let slow: Vec<_> = (0..200)
        .map(|i| if i % 2 == 0 { tokio::spawn(trickle_headers(server)) } else { tokio::spawn(stay_silent(server)) })
        .collect();

    let mut latencies = Vec::new();
    while latencies.len() < 20 || !slow.iter().all(|task| task.is_finished()) {
        let started = Instant::now();
        let answer = app.api.get(None, "/healthz").await;
        assert_eq!(answer.status, 200, "a normal client is answered while slow clients hold connections");
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(latencies.len() < 1000, "the slow connections were never all closed");
    }

    let mut closed_after = Vec::new();
    for (i, task) in slow.into_iter().enumerate() {
        let kind = if i % 2 == 0 { "trickling its headers" } else { "sending nothing" };
        let closed = task.await.unwrap().unwrap_or_else(|| panic!("connection {i} ({kind}) still open"));
        closed_after.push(closed);
    }
    latencies.sort();
    closed_after.sort();
    println!(
        "normal client: {} requests, median {:?}, slowest {:?}; slow connections closed after {:?} to {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies.last().unwrap(),
        closed_after.first().unwrap(),
        closed_after.last().unwrap()
    );
    app.stop().await;
}

/// Sends `GET /healthz` on a kept-alive connection and reads its whole answer; `None` if the
/// connection was closed first.
async fn healthz_on(stream: &mut TcpStream) -> Option<String> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.ok()?;
    let (mut answer, mut buffer) = (Vec::new(), [0u8; 4096]);
    loop {
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|length| body.len() >= length) {
                return Some(text.into_owned());
            }
        }
        match tokio::time::timeout(GENEROUS, stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buffer[..n]),
            _ => return None,
        }
    }
}

#[tokio::test]
async fn a_kept_alive_connection_stays_open_while_it_is_used_and_is_closed_once_idle() {
    let app = TestApp::spawn_configured(&[("HTTP_HEADER_TIMEOUT_MS", "2000"), ("HTTP_IDLE_TIMEOUT_MS", "1000")]).await;
    let mut stream = TcpStream::connect(server_address(&app)).await.unwrap();
    // Six requests 400 ms apart: the connection lives 2.4 s, more than twice the idle time, but is
    // never idle for 1 s.
    for request in 1..=6 {
        let answer = healthz_on(&mut stream).await;
        let answer = answer.unwrap_or_else(|| panic!("request {request} found the connection closed"));
        assert!(answer.starts_with("HTTP/1.1 200"), "request {request}: {answer}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(closed_by_server(&mut stream, GENEROUS).await, "the idle connection was never closed");
    app.stop().await;
}

#[tokio::test]
async fn a_request_body_that_never_finishes_is_answered_at_its_deadline() {
    let app = TestApp::spawn_configured(&[("HTTP_BODY_TIMEOUT_MS", "1000")]).await;
    let mut stream = TcpStream::connect(server_address(&app)).await.unwrap();
    let head = "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(br#"{"query":"#).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(GENEROUS, async {
        let mut buffer = [0u8; 4096];
        while !answer.windows(4).any(|window| window == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server still waits for the body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_of_an_address_are_closed_at_once_while_another_address_is_served() {
    // Long timeouts: a connection closed here was refused, not timed out.
    let app = TestApp::spawn_configured(&[
        ("HTTP_MAX_CONNECTIONS_PER_IP", "20"),
        ("HTTP_HEADER_TIMEOUT_MS", "120000"),
        ("HTTP_IDLE_TIMEOUT_MS", "120000"),
    ])
    .await;
    let server = server_address(&app);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from("127.0.0.1", server).await);
    }
    let mut over = connect_from("127.0.0.1", server).await;
    assert!(closed_by_server(&mut over, GENEROUS).await, "the 21st connection of 127.0.0.1 is closed");

    let other = reqwest::Client::builder().local_address("127.0.0.2".parse::<IpAddr>().unwrap()).build().unwrap();
    let answer = other.get(format!("{}/healthz", app.api.address)).send().await.unwrap();
    assert_eq!(answer.status(), 200, "127.0.0.2 has a cap of its own");

    // A closed connection gives its slot back (once the server has noticed it closed).
    let mut first = held.remove(0);
    first.shutdown().await.unwrap();
    assert!(closed_by_server(&mut first, GENEROUS).await);
    drop(first);
    let mut served = false;
    for _ in 0..100 {
        let mut again = connect_from("127.0.0.1", server).await;
        again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(GENEROUS, again.read_to_end(&mut answer)).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "a slot freed by a closed connection serves a new one");
    drop(held);
    app.stop().await;
}

/// Asks for a WebSocket upgrade on a fresh connection; answers the status line and the connection.
async fn upgrade(server: SocketAddr) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let request = "GET /graphql/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                   Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while !answer.contains(&b'\n') {
        match tokio::time::timeout(GENEROUS, stream.read(&mut buffer)).await.expect("an answer") {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    (String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned(), stream)
}

#[tokio::test]
async fn websockets_of_an_address_have_a_cap_of_their_own() {
    let app =
        TestApp::spawn_configured(&[("WS_MAX_CONNECTIONS_PER_IP", "2"), ("HTTP_MAX_CONNECTIONS_PER_IP", "2")]).await;
    let server = server_address(&app);
    let (first, _first) = upgrade(server).await;
    let (second, _second) = upgrade(server).await;
    assert!(first.starts_with("HTTP/1.1 101") && second.starts_with("HTTP/1.1 101"), "{first} / {second}");
    let (refused, _third) = upgrade(server).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "the third WebSocket is refused: {refused}");
    // Two WebSockets and the refused upgrade's connection: the WebSockets left the HTTP count.
    assert_eq!(app.api.get(None, "/healthz").await.status, 200, "open WebSockets leave the HTTP cap");
    app.stop().await;
}
