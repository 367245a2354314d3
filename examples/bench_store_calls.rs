//! Store calls per GraphQL page of tickets with their customers and provider names, for pages of
//! 10 and of 100: the DataLoaders batch the related objects, so both cost the same few calls.
//!
//! ```text
//! cargo run --release --example bench_store_calls
//! ```

use provider_desk::app::Application;
use provider_desk::config::Config;
use serde_json::{json, Value};

const TICKETS: &str =
    "query($size: Int!) { tickets(pageSize: $size) { items { id customer { name } serviceProviderName } } }";

#[tokio::main]
async fn main() {
    let data = tempfile::tempdir().expect("a data directory");
    let settings =
        [("PORT", "0".to_owned()), ("DATA_DIR", data.path().display().to_string()), ("BCRYPT_COST", "4".to_owned())];
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
    println!("| page size | tickets returned | store calls |");
    println!("| --- | --- | --- |");
    for size in [10, 100] {
        let before = store.round_trips();
        let body: Value = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": TICKETS, "variables": { "size": size } }))
            .send()
            .await
            .expect("the query answers")
            .json()
            .await
            .expect("JSON");
        let calls = store.round_trips() - before;
        let returned = body["data"]["tickets"]["items"].as_array().map_or(0, Vec::len);
        println!("| {size} | {returned} | {calls} |");
    }
}
