//! Two server processes sharing one store and one Redis: a chat message sent through one reaches
//! a subscriber of the other, and a logout on one closes the connection on the other. Processes,
//! not two in-process servers, so nothing but Redis can carry the event between them.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;

const CHAT_SUBSCRIPTION: &str = "subscription($customerId: ID, $after: String) {
    chatMessages(customerId: $customerId, after: $after) {
        cursor message { id customerId senderType content status }
    }
}";
const SEND: &str = "mutation($customerId: ID!, $content: String!, $key: String) {
    sendChatMessage(customerId: $customerId, content: $content, idempotencyKey: $key) { id customerId content }
}";

fn cursor_of(event: &Value) -> u64 {
    str_of(event, "cursor").parse().unwrap_or_else(|_| panic!("a numeric cursor: {event}"))
}

/// What two processes need to share one store and one Redis: the same data directory (SQLite),
/// or the same MongoDB database, and the Redis that `scripts/test` started.
pub(crate) fn shared_deployment(backend: &Backend, data_dir: &Path) -> Vec<(String, String)> {
    // The demo history reaches back 60 days, past the default replay window of 7, and is replayed.
    let env = with_settings(process_env(backend, data_dir), &[("EVENT_REPLAY_MAX_AGE_HOURS", "8760")]);
    match backend {
        Backend::Mongo { .. } => env,
        Backend::Sqlite => {
            let redis_url = std::env::var("TEST_BUS_REDIS_URL").unwrap_or_else(|_| {
                panic!("the two-process test needs Redis: set TEST_BUS_REDIS_URL (scripts/test starts one and sets it)")
            });
            with_settings(env, &[("REDIS_URL", &redis_url)])
        }
    }
}

#[tokio::test]
async fn a_message_sent_through_one_process_reaches_a_subscriber_of_another_over_redis() {
    let data = tempfile::tempdir().expect("a data directory");
    let backend = Backend::from_env();
    let settings = shared_deployment(&backend, data.path());
    let first = ServerProcess::start_with(&settings, data.path(), backend.clone()).await;
    let second = ServerProcess::start_with(&settings, data.path(), backend.clone()).await;
    let token = first.login(DEMO_A).await;

    let mut subscriber = WsClient::connect(&second, &token).await;
    // Replaying the stored conversation first proves the subscription is live before the send.
    subscriber.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c002", "after": "0" })).await;
    let stored = subscriber.next_events("chat", 4).await;
    let last_stored = stored.last().map(cursor_of).expect("a seeded conversation");

    let sent = first.graphql(Some(&token), SEND, json!({ "customerId": "c002", "content": "经另一个进程送达" })).await;
    let sent_id = sent["data"]["sendChatMessage"]["id"].as_str().expect("the first process stores the message");
    let arrived = subscriber.next_event("chat").await;
    assert_eq!(str_of(&arrived["message"], "id"), sent_id, "the second process's subscriber receives it: {arrived}");
    assert!(cursor_of(&arrived) > last_stored);

    // A logout on the first process ends the connection on the second at once.
    first.graphql(Some(&token), "mutation { logout { success } }", json!({})).await;
    assert_eq!(subscriber.expect_close().await, 4403, "the revocation crosses processes too");
    drop((first, second));
    if let Backend::Mongo { mongodb_uri, .. } = backend {
        drop_database(&mongodb_uri, &database_name(data.path()));
    }
}
