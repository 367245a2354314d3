//! The inbox page at 10 and at 10,000 conversations, for the `inbox` section of `scripts/bench`:
//! the store calls one page costs (the whole request, the token check included; fewest of three)
//! and its latency, for each list (all, unread, waiting).
//!
//! It starts the release server in-process on the demo data (embedded, or MongoDB when
//! `MONGODB_URI` is set, with `MONGODB_DB`, `REDIS_URL` and `JWT_SECRET` passed through), then
//! grows demo-a's inbox through the store's ports, as the server writes: a customer (a copy of a
//! demo customer) and its message for each new conversation, the times spread over a year, one in
//! three answered by the provider, one in four read. Prints Markdown table rows.
//!
//! ```text
//! cargo run --release --example bench_inbox
//! ```

use chrono::Duration;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use provider_desk::app::Application;
use provider_desk::config::Config;
use provider_desk::domain::{
    new_id, now, ChatMessage, ChatSender, ChatStatus, Customer, Id, PageRequest, ServiceProvider,
};
use provider_desk::store::{CustomerFilter, SharedStore};
use serde_json::{json, Value};
use std::time::Instant;

const SIZES: [usize; 2] = [10, 10_000];
/// Requests timed a list and size, unless `INBOX_REQUESTS` says otherwise (SecantusDB answers a
/// few pages a second, so the MongoDB run times fewer).
const REQUESTS: usize = 200;
const IN_FLIGHT: usize = 128;
const PAGE: &str = "query($filter: ConversationFilter!) {
    conversations(filter: $filter, pageSize: 20) {
        total items { customerId unreadCount waitingSince customer { name phone status } lastMessage { preview timestamp } }
    }
}";

#[tokio::main]
async fn main() {
    let data = tempfile::tempdir().expect("a data directory");
    // The rate limits are off, as in every benchmark: every request comes from one provider.
    let mut settings = vec![
        ("PORT", "0".to_owned()),
        ("DATA_DIR", data.path().display().to_string()),
        ("BCRYPT_COST", "4".to_owned()),
        ("RATE_LIMIT_IP_PER_MINUTE", "0".to_owned()),
        ("RATE_LIMIT_PROVIDER_PER_MINUTE", "0".to_owned()),
    ];
    for name in ["MONGODB_URI", "MONGODB_DB", "REDIS_URL", "JWT_SECRET"] {
        if let Ok(value) = std::env::var(name) {
            settings.push((name, value));
        }
    }
    let config = Config::from_lookup(|name| settings.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()))
        .expect("a valid configuration");
    let application = Application::build(config).await.expect("the server starts");
    let base = format!("http://{}", application.local_addr());
    let store = application.services().store.clone();
    tokio::spawn(application.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "username": "demo-a", "password": "demo12345" }))
        .send()
        .await
        .expect("login answers")
        .json()
        .await
        .expect("JSON");
    let token = login["data"]["token"].as_str().expect("a token").to_owned();
    let requests = std::env::var("INBOX_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(REQUESTS).max(2);
    let (provider, _) = store.provider_credentials("demo-a").await.expect("the store answers").expect("demo-a");
    let demo = store
        .list_customers(&provider.id, &CustomerFilter::default(), PageRequest::new(1, 100).expect("a page"))
        .await
        .expect("the demo customers")
        .items;

    println!("| conversations | list | total | store calls a page | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut grown = store.inbox_totals(&provider.id).await.expect("the totals").conversations as usize;
    for size in SIZES {
        let started = Instant::now();
        grow(&store, &provider, &demo, grown, size).await;
        grown = size;
        eprintln!("inbox grown to {size} conversations in {:.1} s", started.elapsed().as_secs_f64());
        for filter in ["ALL", "UNREAD", "WAITING"] {
            let page = |client: &reqwest::Client| {
                let request = client
                    .post(format!("{base}/graphql"))
                    .bearer_auth(&token)
                    .json(&json!({ "query": PAGE, "variables": { "filter": filter } }));
                async move {
                    let body: Value = request.send().await.expect("the page answers").json().await.expect("JSON");
                    assert!(body.get("errors").is_none(), "{body}");
                    body
                }
            };
            let mut calls = u64::MAX;
            let mut total = 0;
            for _ in 0..3 {
                let before = store.round_trips();
                let body = page(&client).await;
                calls = calls.min(store.round_trips() - before);
                total = body["data"]["conversations"]["total"].as_u64().unwrap_or_default();
            }
            let mut times = Vec::with_capacity(requests);
            for _ in 0..requests {
                let started = Instant::now();
                page(&client).await;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let (p50, p99) = (times[requests / 2], times[requests * 99 / 100]);
            println!("| {size} | {} | {total} | {calls} | {p50:.2} | {p99:.2} |", filter.to_lowercase());
            eprintln!("{size} conversations, {}: {calls} store calls, p50 {p50:.2} ms", filter.to_lowercase());
        }
    }
}

/// Adds conversations `from..to` to the provider's inbox: each a new customer and its message.
async fn grow(store: &SharedStore, provider: &ServiceProvider, demo: &[Customer], from: usize, to: usize) {
    let at = now();
    stream::iter(from..to)
        .map(|n| {
            let store = store.clone();
            let mut customer = demo[n % demo.len()].clone();
            customer.id = Id::from_stored(format!("ib{n}"));
            customer.name = format!("{}{n}", customer.name);
            let spread = Duration::minutes((n as i64 * 52) % (365 * 24 * 60));
            let message = ChatMessage {
                id: new_id("cm"),
                service_provider_id: provider.id.clone(),
                service_provider_name: provider.name.clone(),
                customer_id: customer.id.clone(),
                customer_name: customer.name.clone(),
                sender_type: ChatSender::Customer,
                content: "您好，库存数据同步不了，麻烦看一下".to_owned(),
                timestamp: at - spread,
                status: if n % 4 == 0 { ChatStatus::Read } else { ChatStatus::Sent },
            };
            let reply = (n % 3 == 0).then(|| ChatMessage {
                id: new_id("cm"),
                sender_type: ChatSender::ServiceProvider,
                content: "好的，已经为您处理".to_owned(),
                timestamp: message.timestamp + Duration::minutes(5),
                ..message.clone()
            });
            async move {
                store.insert_customer(&customer).await?;
                store.insert_chat_message(&message, None, &[]).await?;
                if let Some(reply) = reply {
                    store.insert_chat_message(&reply, None, &[]).await?;
                }
                Ok::<_, provider_desk::error::AppError>(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await
        .expect("the inbox grows");
}
