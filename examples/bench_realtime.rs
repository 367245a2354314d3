//! Realtime benchmark: chat send → subscriber receipt latency at steady message rates, idle
//! subscribed WebSocket connections held by one server process (memory per connection), and the
//! fan-out of one notification to all of them.
//!
//! It starts the release server itself on a fresh data directory (and, with `REDIS_URL` /
//! `MONGODB_URI` set, on those backends) and prints a Markdown table.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_realtime -- [connections] [seconds]
//! ```
//!
//! `CHAT_RATES` sets the chat rates measured (messages per second, default `200,1000`).

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long the benchmark waits for the server to acknowledge a connection or deliver an event
/// before counting it as missing (a slow store must not hang the benchmark).
const PATIENCE: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start() -> Server {
        let binary = std::env::var("PROVIDER_DESK_BIN").unwrap_or_else(|_| {
            let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
            format!("{target}/release/provider-desk")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = tempfile::tempdir().unwrap();
        let child = Command::new(&binary)
            .env("PORT", port.to_string())
            .env("DATA_DIR", data.path())
            .env("BCRYPT_COST", "4")
            .env("RUST_LOG", "warn")
            // A benchmark is a flood from one address by design: no rate limits, no connection caps.
            .env("RATE_LIMIT_IP_PER_MINUTE", "0")
            .env("RATE_LIMIT_PROVIDER_PER_MINUTE", "0")
            .env("HTTP_MAX_CONNECTIONS_PER_IP", "0")
            .env("WS_MAX_CONNECTIONS_PER_IP", "0")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (build it with cargo build --release): {e}"));
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), _data: data };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{}/healthz", server.base)).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not come up");
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

async fn graphql(client: &reqwest::Client, base: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = client.post(format!("{base}/graphql")).json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let body = graphql(
        client,
        base,
        None,
        "mutation { login(username: \"demo-a\", password: \"demo12345\") { token } }",
        json!({}),
    )
    .await;
    body["data"]["login"]["token"].as_str().unwrap().to_owned()
}

/// A socket with `query` subscribed, or `None` if the server did not acknowledge it within
/// [`PATIENCE`].
async fn subscribe(base: &str, token: &str, query: &str) -> Option<Socket> {
    let url = format!("{}/graphql/ws", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let opening = async {
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
        socket.send(Message::text(init.to_string())).await.ok()?;
        loop {
            match socket.next().await? {
                Ok(Message::Text(text)) if text.contains("connection_ack") => break,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        let start = json!({ "id": "1", "type": "subscribe", "payload": { "query": query } });
        socket.send(Message::text(start.to_string())).await.ok()?;
        Some(socket)
    };
    tokio::time::timeout(PATIENCE, opening).await.ok().flatten()
}

/// The next `next` payload on a socket.
async fn next_data(socket: &mut Socket) -> Value {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == "next" {
                    return message["payload"]["data"].clone();
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the subscription ended: {other:?}"),
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends chat messages at `rate` per second for `seconds` and measures, at one subscriber, the
/// time from the start of each send to its receipt. Returns (p50, p99, received, sent) in ms.
async fn chat_latency(server: &Server, token: &str, rate: u32, seconds: u64) -> (f64, f64, usize, usize) {
    let mut subscriber =
        subscribe(&server.base, token, "subscription { chatMessages(customerId: \"c001\") { message { content } } }")
            .await
            .expect("the chat subscription is acknowledged");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let epoch = Instant::now();
    let total = (rate as u64 * seconds) as usize;
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let token = token.to_owned();
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        let mut sends = Vec::with_capacity(total);
        for _ in 0..total {
            tick.tick().await;
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            let sent_at = epoch.elapsed().as_micros();
            sends.push(tokio::spawn(async move {
                let query = "mutation($t: String!) { sendChatMessage(customerId: \"c001\", content: $t) { id } }";
                graphql(&client, &base, Some(&token), query, json!({ "t": format!("bench:{sent_at}") })).await
            }));
        }
        for send in sends {
            let _ = send.await;
        }
    });
    let mut latencies = Vec::with_capacity(total);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds + 10);
    while latencies.len() < total {
        let Ok(data) = tokio::time::timeout_at(deadline, next_data(&mut subscriber)).await else { break };
        let content = data["chatMessages"]["message"]["content"].as_str().unwrap_or_default();
        if let Some(sent_at) = content.strip_prefix("bench:").and_then(|v| v.parse::<u128>().ok()) {
            latencies.push((epoch.elapsed().as_micros() - sent_at) as f64 / 1000.0);
        }
    }
    sender.await.unwrap();
    latencies.sort_by(|a, b| a.total_cmp(b));
    (percentile(&latencies, 0.5), percentile(&latencies, 0.99), latencies.len(), total)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let connections: usize = args.first().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(10);
    let server = Server::start().await;
    let client = reqwest::Client::new();
    let token = login(&client, &server.base).await;

    println!("| figure | value |");
    println!("| --- | --- |");
    for rate in chat_rates() {
        let (p50, p99, received, sent) = chat_latency(&server, &token, rate, seconds).await;
        println!(
            "| chat send → receipt at {rate} msg/s ({received}/{sent} received) | p50 {p50:.2} ms, p99 {p99:.2} ms |"
        );
    }

    // Idle subscribed connections and their memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rest_kib = server.rss_kib();
    let mut sockets = Vec::with_capacity(connections);
    let opened = Instant::now();
    for batch in (0..connections).collect::<Vec<_>>().chunks(250) {
        let tasks: Vec<_> = batch
            .iter()
            .map(|_| {
                let (base, token) = (server.base.clone(), token.clone());
                tokio::spawn(async move {
                    subscribe(&base, &token, "subscription { notifications { cursor unreadCount } }").await
                })
            })
            .collect();
        for task in tasks {
            sockets.extend(task.await.unwrap());
        }
    }
    let open_secs = opened.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held_kib = server.rss_kib();
    let held = sockets.len();
    let per_connection = (held_kib.saturating_sub(rest_kib)) as f64 / held.max(1) as f64;
    println!("| idle subscribed connections held | {held} of {connections} (opened in {open_secs:.1} s) |");
    println!("| server memory at rest → holding them | {} MiB → {} MiB |", rest_kib / 1024, held_kib / 1024);
    println!("| memory per idle subscribed connection | {per_connection:.1} KiB |");

    // Fan-out: one notification (from one new ticket) to every subscriber. A first ticket shows
    // which subscriptions are live (a subscription starts a moment after it is sent); the second
    // is timed.
    let live = Arc::new(tokio::sync::Semaphore::new(0));
    let (start, started) = tokio::sync::watch::channel(None::<Instant>);
    let receipts: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            let (live, started) = (Arc::clone(&live), started.clone());
            tokio::spawn(async move {
                tokio::time::timeout(PATIENCE, next_data(&mut socket)).await.ok()?;
                live.add_permits(1);
                tokio::time::timeout(PATIENCE, next_data(&mut socket)).await.ok()?;
                let received = Instant::now();
                let sent = (*started.borrow())?;
                Some(received.duration_since(sent).as_secs_f64() * 1000.0)
            })
        })
        .collect();
    let create = "mutation { createTicket(customerId: \"c001\", title: \"扇出测试\", content: \"扇出\", type: COMPLAINT) { id } }";
    graphql(&client, &server.base, Some(&token), create, json!({})).await;
    let all_live = live.acquire_many(held as u32);
    let warmed = tokio::time::timeout(PATIENCE, all_live).await.is_ok();
    let live_count = if warmed { held } else { live.available_permits() };
    start.send_replace(Some(Instant::now()));
    graphql(&client, &server.base, Some(&token), create, json!({})).await;
    let mut times = Vec::new();
    for receipt in receipts {
        if let Ok(Some(ms)) = receipt.await {
            times.push(ms);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "| fan-out of one notification to {live_count} live subscribers ({} received) | p50 {:.1} ms, p99 {:.1} ms, last {:.1} ms |",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(f64::NAN)
    );
}

/// The chat rates to measure, in messages per second (`CHAT_RATES`, default 200 and 1,000).
fn chat_rates() -> Vec<u32> {
    let rates = std::env::var("CHAT_RATES").unwrap_or_else(|_| "200,1000".to_owned());
    rates.split(',').filter_map(|rate| rate.trim().parse().ok()).filter(|&rate| rate > 0).collect()
}
