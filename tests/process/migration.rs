//! A store written by the release before search (`tests/fixtures/store-before-search.sqlite`: the
//! demo data as commit 7dba05d's server seeded it, WAL checkpointed) opened by today's server: the
//! search index is built at start-up, the demo rows are found by search and by the customer keyword,
//! through REST and GraphQL, the inbox is built from the messages, and nothing was lost. SQLite only: the fixture is a SQLite file (a
//! MongoDB database written before search is the contract test
//! `search::a_mongodb_database_written_before_search_is_indexed_when_the_store_opens`).

use crate::support::*;
use serde_json::{json, Value};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-before-search.sqlite");

/// What the release that wrote the fixture answered through its API for each demo provider, counted
/// when the fixture was built: customers, tickets, notifications (`/api/messages`), chat messages
/// over all of its customers' conversations, customers whose keyword `商贸` matched.
const BEFORE_SEARCH: [(&str, u64, u64, u64, u64, u64); 2] = [(DEMO_A, 30, 36, 50, 32, 4), (DEMO_B, 30, 36, 50, 32, 7)];

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn data(server: &ServerProcess, token: &str, path: &str) -> Value {
    let answer = server.get(Some(token), path).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    answer.body["data"].clone()
}

#[tokio::test]
async fn a_store_written_before_search_keeps_every_row_and_finds_them_by_search_and_keyword() {
    if matches!(Backend::from_env(), Backend::Mongo { .. }) {
        return;
    }
    let dir = tempfile::tempdir().expect("a data directory");
    std::fs::copy(FIXTURE, dir.path().join("provider-desk.sqlite3")).expect("the fixture is copied");
    let env = with_settings(process_env(&Backend::Sqlite, dir.path()), &[("SEED_DEMO", "false")]);
    let server = ServerProcess::start_with(&env, dir.path(), Backend::Sqlite).await;

    for (provider, customers, tickets, notifications, chat, keyword) in BEFORE_SEARCH {
        let token = server.login(provider).await;
        assert_eq!(data(&server, &token, "/api/customers").await["total"], customers, "{provider}");
        assert_eq!(data(&server, &token, "/api/tickets").await["total"], tickets, "{provider}");
        assert_eq!(data(&server, &token, "/api/messages").await["total"], notifications, "{provider}");
        let listed = data(&server, &token, "/api/customers?pageSize=100").await;
        let mut messages = 0;
        for customer in listed["customers"].as_array().expect("the customers") {
            let id = customer["id"].as_str().expect("an id");
            messages += data(&server, &token, &format!("/api/chat/messages?customerId={id}")).await["total"]
                .as_u64()
                .expect("a total");
        }
        assert_eq!(messages, chat, "{provider}'s chat messages");
        // The inbox, built from those messages at start-up: the demo's 8 conversations, each
        // answered last by the provider, every customer message read.
        let inbox = data(&server, &token, "/api/chat/conversations?pageSize=100").await;
        assert_eq!(inbox["total"], 8, "{provider}: {inbox}");
        for conversation in inbox["conversations"].as_array().expect("the conversations") {
            assert_eq!(conversation["lastMessage"]["senderType"], "service_provider", "{conversation}");
            assert_eq!(
                (conversation["unreadCount"].clone(), conversation["waitingSince"].clone()),
                (json!(0), Value::Null)
            );
        }

        let by_keyword = data(&server, &token, &format!("/api/customers?keyword={}", encode("商贸"))).await;
        assert_eq!(by_keyword["total"], keyword, "{provider}: the keyword finds what it found before");
        let searched = data(&server, &token, &format!("/api/search?q={}&kinds=customer", encode("商贸"))).await;
        assert_eq!(searched["total"], keyword, "{provider}: search finds the same customers");

        let tickets = data(&server, &token, &format!("/api/search?q={}&kinds=ticket", encode("客服响应太慢"))).await;
        assert_eq!(tickets["total"], 3, "{provider}: the demo tickets of that title, {tickets}");
        let chat_hits = server
            .data(
                &token,
                "query($q: String!) { search(query: $q, kinds: [CHAT]) { total items { kind snippet } } }",
                json!({ "q": "登录问题" }),
            )
            .await;
        assert_eq!(chat_hits["search"]["total"], 4, "{provider}: {chat_hits}");
        assert!(chat_hits["search"]["items"][0]["snippet"].as_str().unwrap_or_default().contains("登录问题"));
    }
}
