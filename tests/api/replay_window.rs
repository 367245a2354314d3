//! A subscription's replay reads at most a bounded window of the event log
//! (`EVENT_REPLAY_MAX_EVENTS`, `EVENT_REPLAY_MAX_AGE_HOURS`): a cursor within it is replayed, an
//! older one is refused with BAD_USER_INPUT on `after`, telling the client to reload.

use crate::support::*;
use provider_desk::domain::{
    new_id, now, ChatMessage, ChatSender, ChatStatus, Id, Notification, NotificationType, ReadStatus, Timestamp,
};
use serde_json::{json, Value};

const CHAT: &str = "subscription($after: String) { chatMessages(after: $after) { cursor message { id } } }";

fn provider() -> Id {
    Id::parse("sp001").expect("a provider id")
}

async fn latest(app: &TestApp) -> u64 {
    app.services.store.latest_cursor(&provider()).await.expect("the store answers")
}

/// Writes a customer's chat message and publishes its event; returns the message's id.
async fn customer_message(app: &TestApp) -> String {
    let message = ChatMessage {
        id: new_id("cm"),
        service_provider_id: provider(),
        service_provider_name: "演示服务商".to_owned(),
        customer_id: Id::parse("c001").expect("a customer id"),
        customer_name: "客户".to_owned(),
        sender_type: ChatSender::Customer,
        content: "回放窗口".to_owned(),
        timestamp: now(),
        status: ChatStatus::Sent,
    };
    match app.services.store.insert_chat_message(&message, None, &[]).await.expect("the message is stored") {
        provider_desk::store::Written::Created(stored, events) => {
            app.services.realtime.publish(events).await;
            stored.id.to_string()
        }
        provider_desk::store::Written::Replayed(_) => panic!("no idempotency key, no replay"),
    }
}

/// Writes a notification created at `created_at` (its event is logged with that time, as the
/// server's notifications are) and publishes its event.
async fn notification_created(app: &TestApp, created_at: Timestamp) {
    let notification = Notification {
        id: new_id("n"),
        service_provider_id: provider(),
        notification_type: NotificationType::SystemNotification,
        title: "回放窗口".to_owned(),
        content: "两小时前的通知".to_owned(),
        related_customer_id: None,
        related_customer_name: None,
        related_ticket_id: None,
        read_status: ReadStatus::Unread,
        created_at,
        read_at: None,
    };
    let event = app.services.store.insert_notification(&notification).await.expect("the notification is stored");
    app.services.realtime.publish(vec![event]).await;
}

fn assert_cursor_expired(payload: &Value) {
    let error = &payload["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{payload}");
    assert_eq!(error["extensions"]["field"], "after", "{payload}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("游标已过期") && message.contains("重新加载"), "tells the client to reload: {payload}");
    assert!(payload["data"].is_null(), "{payload}");
}

#[tokio::test]
async fn a_cursor_more_events_behind_than_the_window_is_refused_and_one_within_it_is_replayed() {
    let app = TestApp::spawn_configured(&[("EVENT_REPLAY_MAX_EVENTS", "3")]).await;
    let token = app.login(DEMO_A).await;
    let before = latest(&app).await;
    let mut sent = Vec::new();
    for _ in 0..4 {
        sent.push(customer_message(&app).await);
    }
    assert_eq!(latest(&app).await, before + 4, "one event per message");
    let mut socket = WsClient::connect(&app, &token).await;

    socket.subscribe("old", CHAT, json!({ "after": before.to_string() })).await;
    assert_cursor_expired(&socket.next_payload("old").await);
    socket.expect_complete("old").await;
    socket.subscribe("zero", CHAT, json!({ "after": "0" })).await;
    assert_cursor_expired(&socket.next_payload("zero").await);
    socket.expect_complete("zero").await;

    socket.subscribe("recent", CHAT, json!({ "after": (before + 1).to_string() })).await;
    let replayed = socket.next_events("recent", 3).await;
    let ids: Vec<&str> = replayed.iter().map(|event| event["message"]["id"].as_str().unwrap_or_default()).collect();
    assert_eq!(ids, sent[1..].iter().map(String::as_str).collect::<Vec<_>>(), "the three within the window");
}

#[tokio::test]
async fn a_cursor_whose_first_missed_event_is_older_than_the_window_is_refused() {
    let app = TestApp::spawn_configured(&[("EVENT_REPLAY_MAX_AGE_HOURS", "1")]).await;
    let token = app.login(DEMO_A).await;
    let before = latest(&app).await;
    notification_created(&app, now() - chrono::Duration::hours(2)).await;
    let fresh = customer_message(&app).await;
    let mut socket = WsClient::connect(&app, &token).await;

    socket.subscribe("old", CHAT, json!({ "after": before.to_string() })).await;
    assert_cursor_expired(&socket.next_payload("old").await);
    socket.expect_complete("old").await;

    socket.subscribe("recent", CHAT, json!({ "after": (before + 1).to_string() })).await;
    let event = socket.next_event("recent").await;
    assert_eq!(event["message"]["id"], fresh.as_str(), "only the fresh event is missed: replayed");
    let exposition = Exposition::parse(&app.metrics().await).expect("a valid exposition");
    let refused = exposition.sample("realtime_replays_refused_total").unwrap_or(0.0);
    assert!(refused >= 1.0, "the refusal is counted: {refused}");
}
