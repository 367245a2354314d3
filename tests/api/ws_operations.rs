//! Queries and mutations over `/graphql/ws` meet what they meet over HTTP: each takes one request
//! from the provider's rate (shared with its HTTP requests), and one that runs past
//! `REQUEST_TIMEOUT_MS` is answered UNAVAILABLE while the connection lives on.

use crate::support::*;
use serde_json::{json, Value};

/// Runs `query` as operation `id` on the socket and returns its one result's payload.
async fn run(socket: &mut WsClient, id: &str, query: &str, variables: Value) -> Value {
    socket.subscribe(id, query, variables).await;
    let payload = socket.next_payload(id).await;
    socket.expect_complete(id).await;
    payload
}

fn code(payload: &Value) -> &str {
    payload["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn each_operation_on_a_socket_takes_from_the_providers_rate() {
    let app = TestApp::spawn_configured(&[
        ("RATE_LIMIT_PROVIDER_PER_MINUTE", "1"),
        ("RATE_LIMIT_PROVIDER_BURST", "3"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    let mut socket = WsClient::connect(&app, &token).await;
    for id in ["1", "2", "3"] {
        let payload = run(&mut socket, id, "{ me { id } }", json!({})).await;
        assert_eq!(payload["data"]["me"]["id"], "sp001", "operation {id} of the burst: {payload}");
    }
    let refused = run(&mut socket, "4", "{ me { id } }", json!({})).await;
    assert_eq!(code(&refused), "RATE_LIMITED", "the fourth operation is over the burst: {refused}");
    assert!(refused["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|secs| secs >= 1), "{refused}");
    let mutation = "mutation { markAllNotificationsRead { success } }";
    let refused = run(&mut socket, "5", mutation, json!({})).await;
    assert_eq!(code(&refused), "RATE_LIMITED", "a mutation too: {refused}");
    let over_http = app.post(Some(&token), "/graphql", json!({ "query": "{ me { id } }" })).await;
    assert_eq!(over_http.status, 429, "the socket used up the rate HTTP shares: {}", over_http.text);
    let other = app.login(DEMO_B).await;
    let mut theirs = WsClient::connect(&app, &other).await;
    let payload = run(&mut theirs, "1", "{ me { id } }", json!({})).await;
    assert!(payload.get("errors").is_none(), "another provider has its own rate: {payload}");
}

#[tokio::test]
async fn an_operation_on_a_socket_past_the_deadline_is_answered_unavailable_and_the_socket_lives_on() {
    let app = TestApp::spawn_configured(&[
        // A deadline an ordinary operation meets even on a loaded MongoDB test server.
        ("REQUEST_TIMEOUT_MS", "1500"),
        ("LOGIN_SLOW_AFTER_FAILURES", "1"),
        ("LOGIN_FAILURE_DELAY_MS", "5000"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    let mut socket = WsClient::connect(&app, &token).await;
    let login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }";
    let first = run(&mut socket, "1", login, json!({ "u": DEMO_B, "p": "wrong-one" })).await;
    assert_eq!(code(&first), "UNAUTHENTICATED", "{first}");
    // The second failure of the username is answered five seconds late: past the deadline.
    let slow = run(&mut socket, "2", login, json!({ "u": DEMO_B, "p": "wrong-two" })).await;
    assert_eq!(code(&slow), "UNAVAILABLE", "{slow}");
    assert!(has_chinese(slow["errors"][0]["message"].as_str().unwrap_or_default()), "{slow}");
    let after = run(&mut socket, "3", "{ me { id } }", json!({})).await;
    assert_eq!(after["data"]["me"]["id"], "sp001", "the socket still serves: {after}");
}

#[tokio::test]
async fn the_events_a_subscription_delivers_take_nothing_from_the_rate() {
    let app = TestApp::spawn_configured(&[
        ("RATE_LIMIT_PROVIDER_PER_MINUTE", "1"),
        ("RATE_LIMIT_PROVIDER_BURST", "5"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    let mut socket = WsClient::connect(&app, &token).await;
    // From the latest cursor, so no event is missed however late the subscription goes live.
    let provider = provider_desk::domain::Id::parse("sp001").unwrap();
    let after = app.services.store.latest_cursor(&provider).await.unwrap().to_string();
    let live = "subscription($after: String) { ticketUpdates(after: $after) { cursor } }";
    socket.subscribe("live", live, json!({ "after": after })).await;
    let payload = run(&mut socket, "q1", "{ me { id } }", json!({})).await;
    assert_eq!(payload["data"]["me"]["id"], "sp001", "{payload}");
    let create = "mutation { createTicket(customerId: \"c001\", title: \"限流\", content: \"订阅\", type: SYSTEM_ISSUE) { id } }";
    for _ in 0..3 {
        app.data(&token, create, json!({})).await;
    }
    let events = socket.next_events("live", 3).await;
    assert_eq!(events.len(), 3);
    let payload = run(&mut socket, "q2", "{ me { id } }", json!({})).await;
    assert_eq!(payload["data"]["me"]["id"], "sp001", "1 + 3 + this one fit the burst of five: {payload}");
}
