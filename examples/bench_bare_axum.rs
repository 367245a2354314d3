//! The yardstick of the edge's cost: a bare axum JSON handler, with no layer, state or store, on
//! the same tokio runtime and hyper the server uses. `scripts/bench` (section `edge`) measures the
//! server's `/healthz` and customer list as a share of what this answers on the same machine in
//! the same round.
//!
//! ```text
//! cargo build --release --example bench_bare_axum
//! target/release/examples/bench_bare_axum 8081      # or PORT=8081; 0 picks a free port
//! ```
//!
//! It prints `listening on <address>` once it accepts connections.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .map(|port| port.parse().expect("the port is a number"))
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the port is free");
    println!("listening on {}", listener.local_addr().expect("a bound listener has an address"));
    let router = Router::new().route("/healthz", get(healthz));
    axum::serve(listener, router).await.expect("serving never fails");
}
