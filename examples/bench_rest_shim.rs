//! What the REST shim costs: the latency of `GET /api/customers` against the same GraphQL
//! operation sent to `POST /graphql`, measured side by side in one run (interleaved, one request
//! at a time, so both see the same machine).
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_rest_shim -- [requests per round] [rounds]
//! ```

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIST_CUSTOMERS: &str = include_str!("../rest_compat/customers.list.graphql");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn p99(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() - 1) as f64 * 0.99) as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let requests: usize = args.first().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rounds: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(3);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let binary = std::env::var("PROVIDER_DESK_BIN").unwrap_or(format!("{target}/release/provider-desk"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let _server = Server(
        Command::new(&binary)
            .env("PORT", port.to_string())
            .env("DATA_DIR", data.path())
            .env("RUST_LOG", "warn")
            // A benchmark is a flood from one address by design: no rate limits, no connection caps.
            .env("RATE_LIMIT_IP_PER_MINUTE", "0")
            .env("RATE_LIMIT_PROVIDER_PER_MINUTE", "0")
            .env("HTTP_MAX_CONNECTIONS_PER_IP", "0")
            .env("WS_MAX_CONNECTIONS_PER_IP", "0")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (cargo build --release first): {e}")),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let login: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "username": "demo-a", "password": "demo12345" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["token"].as_str().unwrap().to_owned();
    let rest_url = format!("{base}/api/customers?page=1&pageSize=10");
    let graphql_body = json!({ "query": LIST_CUSTOMERS, "variables": { "page": 1, "pageSize": 10 } });

    let (mut rest, mut graphql) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for _ in 0..requests {
            let started = Instant::now();
            let response = client.get(&rest_url).bearer_auth(&token).send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
            rest.push(started.elapsed().as_secs_f64() * 1000.0);

            let started = Instant::now();
            let response =
                client.post(format!("{base}/graphql")).bearer_auth(&token).json(&graphql_body).send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
            graphql.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let (rest_median, graphql_median) = (median(&mut rest), median(&mut graphql));
    println!("| request ({} each, interleaved) | median | p99 |", rest.len());
    println!("| --- | --- | --- |");
    println!("| `GET /api/customers?pageSize=10` (REST shim) | {rest_median:.3} ms | {:.3} ms |", p99(&mut rest));
    println!("| the same operation on `POST /graphql` | {graphql_median:.3} ms | {:.3} ms |", p99(&mut graphql));
    println!(
        "| shim overhead (median) | {:+.3} ms ({:+.1}%) | |",
        rest_median - graphql_median,
        (rest_median / graphql_median - 1.0) * 100.0
    );
}
