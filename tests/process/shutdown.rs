//! Graceful shutdown of a real server process on SIGTERM: it stops accepting connections, lets a
//! request in flight finish, closes a subscribed WebSocket with 1001 (going away) and exits with 0.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_closes_websockets_with_1001_and_exits_0() {
    let mut server = ServerProcess::start(&[]).await;
    let token = server.login(DEMO_A).await;
    let mut subscriber = WsClient::connect(&server, &token).await;
    subscriber.subscribe("n", "subscription { notifications { cursor } }", json!({})).await;
    // The subscription is running once the gauge says so.
    wait_for_metric(&server, "graphql_subscriptions_active 1").await;

    // A slow request: the headers and half the body now, the rest after the signal.
    let body = json!({ "query": "query Slow { customers(pageSize: 2) { total } }" }).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let host = server.address.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&host).await.expect("the server accepts a connection");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\nauthorization: Bearer {token}\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(first_half.as_bytes()).await.unwrap();
    slow.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.signal("TERM");

    // The WebSocket is told the server is going away.
    assert_eq!(subscriber.expect_close().await, 1001, "close code 1001 (going away)");

    // No new connections once shutting down has begun.
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(&host).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the listener is closed during shutdown");
    assert!(
        server.wait_exit(Duration::from_millis(300)).await.is_none(),
        "the process waits for the request in flight"
    );

    // The request in flight completes normally.
    slow.write_all(second_half.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
        .await
        .expect("the answer comes, and the connection is closed after it")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json_body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default().trim())
        .or_else(|_| serde_json::from_str(dechunk(&answer).as_str()))
        .unwrap_or_else(|e| panic!("a JSON body ({e}): {answer}"));
    assert_eq!(json_body["data"]["customers"]["total"], 30, "{json_body}");

    let status = server.wait_exit(Duration::from_secs(15)).await.expect("the process exits");
    assert!(status.success(), "exit status 0, got {status}");
    let lines = server.stdout_lines();
    assert!(lines.iter().any(|line| line.contains("shutting down")), "{lines:?}");
    assert!(lines.last().is_some_and(|line| line.contains("shut down")), "{lines:?}");
}

#[tokio::test]
async fn a_request_that_outlasts_the_shutdown_timeout_does_not_keep_the_process_alive() {
    let mut server = ServerProcess::start(&[("SHUTDOWN_TIMEOUT_SECS", "1")]).await;
    let host = server.address.trim_start_matches("http://").to_owned();
    let mut stuck = TcpStream::connect(&host).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    stuck.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10)).await.expect("the process exits");
    assert!(status.success(), "{status}");
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited for the timeout first");
    assert!(
        server.stdout_lines().iter().any(|line| line.contains("still in flight at the shutdown timeout")),
        "{:?}",
        server.stdout_lines()
    );
}

async fn wait_for_metric(server: &ServerProcess, line: &str) {
    for _ in 0..100 {
        if server.metrics().await.lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {line:?} in /metrics");
}

/// The body of a chunked HTTP/1.1 answer.
fn dechunk(answer: &str) -> String {
    let Some((_, mut rest)) = answer.split_once("\r\n\r\n") else { return String::new() };
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}
