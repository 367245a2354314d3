//! Live events over `/graphql/ws` with real WebSocket clients: every subscription kind, signing in
//! and the close codes, the legacy protocol, replay from a cursor, idempotent writes, a consumer
//! that falls behind, and the reference client of the protocol (the npm package `graphql-ws`).
//!
//! A subscription that starts without `after` begins at whatever is latest when the server gets
//! to it, which a client cannot observe; so the tests subscribe with `after` set to the provider's
//! latest cursor read just before, and nothing written after that can be missed.

use crate::support::*;
use provider_desk::domain::{new_id, now, ChatMessage, ChatSender, ChatStatus, Id};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// How long a test waits for the close of a connection that never signed in (10 s on the server).
const INIT_WAIT: Duration = Duration::from_secs(25);

/// The providers of the demo accounts.
const PROVIDER_A: &str = "sp001";
const PROVIDER_B: &str = "sp002";

const CHAT_SUBSCRIPTION: &str = "subscription($customerId: ID, $after: String) {
    chatMessages(customerId: $customerId, after: $after) {
        cursor message { id customerId senderType content status }
    }
}";
const STATUS_SUBSCRIPTION: &str = "subscription($customerId: ID, $after: String) {
    chatMessageStatus(customerId: $customerId, after: $after) {
        cursor message { id customerId senderType status }
    }
}";
const NOTIFICATION_SUBSCRIPTION: &str = "subscription($after: String) {
    notifications(after: $after) {
        cursor unreadCount notification { id type relatedTicketId readStatus }
    }
}";
const TICKET_SUBSCRIPTION: &str = "subscription($ticketId: ID, $after: String) {
    ticketUpdates(ticketId: $ticketId, after: $after) {
        cursor ticket { id status processingHistory { action } }
    }
}";

const SEND: &str = "mutation($customerId: ID!, $content: String!, $key: String) {
    sendChatMessage(customerId: $customerId, content: $content, idempotencyKey: $key) { id customerId content }
}";
const CREATE_TICKET: &str = "mutation($customerId: ID!, $title: String!, $key: String) {
    createTicket(customerId: $customerId, title: $title, content: \"实时推送测试\", type: SYSTEM_ISSUE,
        idempotencyKey: $key) { id status }
}";
const REPLY_TICKET: &str =
    "mutation($id: ID!) { replyTicket(id: $id, content: \"我们正在处理\") { ticket { id status } } }";
const RESOLVE_TICKET: &str = "mutation($id: ID!) { resolveTicket(id: $id, resolution: \"已处理完毕\") { id status } }";
const ACKNOWLEDGE: &str = "mutation($customerId: ID!, $ids: [ID!]!, $status: ChatStatus!) {
    acknowledgeChatMessages(customerId: $customerId, messageIds: $ids, status: $status) { id status }
}";
const CONVERSATION: &str = "query($customerId: ID!) {
    chatMessages(customerId: $customerId, pageSize: 100) { total items { id senderType } }
}";

// --- helpers ---

/// The provider's latest event cursor, as `after` for a subscription that must see everything
/// written from now on.
async fn latest_cursor(app: &TestApp, provider: &str) -> String {
    let provider = Id::parse(provider).expect("a provider id");
    app.services.store.latest_cursor(&provider).await.expect("the store answers").to_string()
}

fn cursor_of(event: &Value) -> u64 {
    str_of(event, "cursor").parse().unwrap_or_else(|_| panic!("a numeric cursor: {event}"))
}

fn message_id(event: &Value) -> String {
    str_of(&event["message"], "id").to_owned()
}

/// Sends a chat message over HTTP GraphQL and returns it.
async fn send(app: &TestApp, token: &str, customer: &str, content: &str) -> Value {
    let variables = json!({ "customerId": customer, "content": content });
    app.data(token, SEND, variables).await["sendChatMessage"].clone()
}

async fn send_keyed(app: &TestApp, token: &str, customer: &str, content: &str, key: &str) -> Value {
    let variables = json!({ "customerId": customer, "content": content, "key": key });
    app.graphql(Some(token), SEND, variables).await
}

async fn create_ticket(app: &TestApp, token: &str, customer: &str, title: &str) -> Value {
    let variables = json!({ "customerId": customer, "title": title });
    app.data(token, CREATE_TICKET, variables).await["createTicket"].clone()
}

async fn create_ticket_keyed(app: &TestApp, token: &str, customer: &str, title: &str, key: &str) -> Value {
    let variables = json!({ "customerId": customer, "title": title, "key": key });
    app.graphql(Some(token), CREATE_TICKET, variables).await
}

async fn acknowledge(app: &TestApp, token: &str, customer: &str, ids: &[&str], status: &str) -> Vec<Value> {
    let variables = json!({ "customerId": customer, "ids": ids, "status": status });
    let data = app.data(token, ACKNOWLEDGE, variables).await;
    data["acknowledgeChatMessages"].as_array().expect("a list of messages").clone()
}

/// The ids of the conversation with `customer`, oldest first, and its total.
async fn conversation(app: &TestApp, token: &str, customer: &str) -> (Vec<String>, u64) {
    let page = app.data(token, CONVERSATION, json!({ "customerId": customer })).await["chatMessages"].clone();
    let ids = items(&page).iter().map(|m| str_of(m, "id").to_owned()).collect();
    (ids, total(&page))
}

async fn ticket_total(app: &TestApp, token: &str) -> u64 {
    total(&app.data(token, "{ tickets(pageSize: 1) { total } }", json!({})).await["tickets"])
}

async fn unread_count(app: &TestApp, token: &str) -> u64 {
    let data = app.data(token, "{ notifications(pageSize: 1) { unreadCount } }", json!({})).await;
    data["notifications"]["unreadCount"].as_u64().expect("an unread count")
}

/// A new message from a customer of demo-a, still `SENT`, as the mini-program's integration layer
/// stores one when the customer writes; published to live subscribers like any other write.
async fn customer_writes(app: &TestApp, customer: &str, content: &str) -> String {
    let token = app.login(DEMO_A).await;
    let query = "query($id: ID!) { me { name } customer(id: $id) { name } }";
    let names = app.data(&token, query, json!({ "id": customer })).await;
    let message = ChatMessage {
        id: new_id("cm"),
        service_provider_id: Id::parse(PROVIDER_A).expect("a provider id"),
        service_provider_name: str_of(&names["me"], "name").to_owned(),
        customer_id: Id::parse(customer).expect("a customer id"),
        customer_name: str_of(&names["customer"], "name").to_owned(),
        sender_type: ChatSender::Customer,
        content: content.to_owned(),
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

fn assert_subscription_error(payload: &Value, code: &str) {
    assert_eq!(payload["errors"][0]["extensions"]["code"], code, "{payload}");
    assert!(payload["data"].is_null(), "no data with the error: {payload}");
    let message = payload["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(has_chinese(message), "a message in Chinese: {payload}");
}

// --- each subscription kind, live ---

#[tokio::test]
async fn a_chat_message_sent_over_http_arrives_on_the_chat_subscription() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c001", "after": after })).await;

    let sent = send(&app, &token, "c001", "您好，您的问题已处理").await;
    let event = ws.next_event("chat").await;
    assert_eq!(event["message"]["id"], sent["id"], "{event}");
    assert_eq!(event["message"]["customerId"], "c001");
    assert_eq!(event["message"]["senderType"], "SERVICE_PROVIDER");
    assert_eq!(event["message"]["content"], "您好，您的问题已处理");
    assert_eq!(event["message"]["status"], "SENT");
    assert_eq!(cursor_of(&event), after.parse::<u64>().unwrap() + 1, "the next cursor of the provider");
    ws.close().await;
}

#[tokio::test]
async fn acknowledging_a_customer_message_moves_its_status_forward_only_and_says_so_live() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let first = customer_writes(&app, "c002", "请问发票什么时候开？").await;
    let second = customer_writes(&app, "c002", "另外想改一下联系人").await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("status", STATUS_SUBSCRIPTION, json!({ "customerId": "c002", "after": after })).await;

    let moved = acknowledge(&app, &token, "c002", &[&first], "DELIVERED").await;
    assert_eq!(moved.len(), 1, "{moved:?}");
    let delivered = ws.next_event("status").await;
    assert_eq!(message_id(&delivered), first);
    assert_eq!(delivered["message"]["status"], "DELIVERED");
    assert_eq!(delivered["message"]["senderType"], "CUSTOMER");

    let moved = acknowledge(&app, &token, "c002", &[&first], "READ").await;
    assert_eq!(moved.len(), 1, "{moved:?}");
    let read = ws.next_event("status").await;
    assert_eq!(message_id(&read), first);
    assert_eq!(read["message"]["status"], "READ");
    assert!(cursor_of(&read) > cursor_of(&delivered));

    // Statuses only move forward: delivered after read moves nothing and says nothing.
    let moved = acknowledge(&app, &token, "c002", &[&first], "DELIVERED").await;
    assert!(moved.is_empty(), "nothing moved: {moved:?}");
    // The next status event is the other message's, not a step back of the first.
    acknowledge(&app, &token, "c002", &[&second], "READ").await;
    let next = ws.next_event("status").await;
    assert_eq!(message_id(&next), second, "the backwards acknowledgement emitted nothing: {next}");
    assert_eq!(next["message"]["status"], "READ");
    ws.close().await;
}

#[tokio::test]
async fn a_new_ticket_notifies_live_with_the_unread_count_queried_over_http() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("notifications", NOTIFICATION_SUBSCRIPTION, json!({ "after": after })).await;

    let ticket = create_ticket(&app, &token, "c003", "报表导出失败").await;
    let event = ws.next_event("notifications").await;
    assert_eq!(event["notification"]["relatedTicketId"], ticket["id"], "{event}");
    assert_eq!(event["notification"]["type"], "TICKET_UPDATE");
    assert_eq!(event["notification"]["readStatus"], "UNREAD");
    assert_eq!(event["unreadCount"].as_u64(), Some(unread_count(&app, &token).await), "{event}");
    ws.close().await;
}

#[tokio::test]
async fn ticket_updates_follow_a_ticket_through_creation_reply_and_resolution_in_order() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("tickets", TICKET_SUBSCRIPTION, json!({ "after": after })).await;

    let ticket = create_ticket(&app, &token, "c004", "无法登录").await;
    let id = str_of(&ticket, "id").to_owned();
    app.data(&token, REPLY_TICKET, json!({ "id": id })).await;
    app.data(&token, RESOLVE_TICKET, json!({ "id": id })).await;

    let events = ws.next_events("tickets", 3).await;
    let statuses: Vec<&Value> = events.iter().map(|e| &e["ticket"]["status"]).collect();
    assert_eq!(statuses, [&json!("OPEN"), &json!("PROCESSING"), &json!("RESOLVED")], "{events:?}");
    for event in &events {
        assert_eq!(event["ticket"]["id"], id.as_str(), "{event}");
    }
    let cursors: Vec<u64> = events.iter().map(cursor_of).collect();
    assert!(cursors.windows(2).all(|pair| pair[0] < pair[1]), "cursors increase: {cursors:?}");
    ws.close().await;
}

#[tokio::test]
async fn ticket_updates_of_one_ticket_see_only_that_ticket() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let watched = create_ticket(&app, &token, "c005", "数据同步延迟").await;
    let watched = str_of(&watched, "id").to_owned();
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("one", TICKET_SUBSCRIPTION, json!({ "ticketId": watched, "after": after })).await;

    let other = create_ticket(&app, &token, "c005", "另一个问题").await;
    app.data(&token, REPLY_TICKET, json!({ "id": other["id"] })).await;
    app.data(&token, REPLY_TICKET, json!({ "id": watched })).await;

    let event = ws.next_event("one").await;
    assert_eq!(event["ticket"]["id"], watched.as_str(), "only the watched ticket: {event}");
    assert_eq!(event["ticket"]["status"], "PROCESSING");
    app.data(&token, RESOLVE_TICKET, json!({ "id": other["id"] })).await;
    app.data(&token, RESOLVE_TICKET, json!({ "id": watched })).await;
    let event = ws.next_event("one").await;
    assert_eq!(event["ticket"]["id"], watched.as_str(), "only the watched ticket: {event}");
    assert_eq!(event["ticket"]["status"], "RESOLVED");
    ws.close().await;
}

// --- signing in ---

#[tokio::test]
async fn a_connection_without_a_token_is_closed_with_4401() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::open(&app, TRANSPORT_WS).await;
    ws.init_with(json!({})).await;
    assert_eq!(ws.expect_close().await, 4401);
}

#[tokio::test]
async fn a_connection_with_a_bad_token_is_closed_with_4403() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::open(&app, TRANSPORT_WS).await;
    ws.init_with(json!({ "Authorization": "Bearer not-a-token" })).await;
    assert_eq!(ws.expect_close().await, 4403);
}

#[tokio::test]
async fn logging_out_closes_the_open_connection_of_that_token_with_4403() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "after": after })).await;

    let logout = app.data(&token, "mutation { logout { success } }", json!({})).await;
    assert_eq!(logout["logout"]["success"], true);
    assert_eq!(ws.expect_close().await, 4403, "the revoked token's connection is closed at once");
}

#[tokio::test]
async fn a_token_that_expires_while_the_connection_is_open_closes_it_with_4403() {
    let app = TestApp::spawn().await;
    // Signed with the test servers' secret, valid for two more seconds.
    let issued = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": PROVIDER_A, "jti": format!("expiring{issued}"), "fam": "expiring-family",
        "iss": "provider-desk", "aud": "provider-desk-api", "iat": issued, "nbf": issued, "exp": issued + 2,
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .expect("a token");
    let mut ws = WsClient::connect(&app, &token).await;
    assert_eq!(ws.expect_close().await, 4403, "the connection ends when its token does");
}

#[tokio::test]
async fn a_connection_that_never_signs_in_is_closed_with_4408() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::open(&app, TRANSPORT_WS).await;
    assert_eq!(ws.expect_close_within(INIT_WAIT).await, 4408);
}

#[tokio::test]
async fn subscribing_before_signing_in_is_closed_with_4401() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::open(&app, TRANSPORT_WS).await;
    ws.subscribe("early", CHAT_SUBSCRIPTION, json!({})).await;
    assert_eq!(ws.expect_close().await, 4401, "graphql-transport-ws: a subscribe before the ack is unauthorized");
}

#[tokio::test]
async fn a_connection_may_sign_in_with_a_token_field() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut ws = WsClient::open(&app, TRANSPORT_WS).await;
    ws.init_with(json!({ "token": token })).await;
    assert_eq!(ws.next_message().await["type"], "connection_ack");
    ws.close().await;
}

#[tokio::test]
async fn the_legacy_protocol_refuses_a_bad_token_with_a_connection_error_and_4403() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::open(&app, LEGACY_WS).await;
    ws.init_with(json!({ "Authorization": "Bearer not-a-token" })).await;
    let refusal = ws.next_message().await;
    assert_eq!(refusal["type"], "connection_error", "{refusal}");
    assert_eq!(ws.expect_close().await, 4403);
}

#[tokio::test]
async fn subscribing_to_another_providers_customer_or_ticket_answers_not_found() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let foreign_ticket = create_ticket(&app, &token_b, "c031", "demo-b 的工单").await;
    let mut ws = WsClient::connect(&app, &token_a).await;
    let cases = [
        ("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c031" })),
        ("status", STATUS_SUBSCRIPTION, json!({ "customerId": "c031" })),
        ("ticket", TICKET_SUBSCRIPTION, json!({ "ticketId": foreign_ticket["id"] })),
        ("missing", CHAT_SUBSCRIPTION, json!({ "customerId": "c999" })),
    ];
    for (id, query, variables) in cases {
        ws.subscribe(id, query, variables).await;
        let payload = ws.next_payload(id).await;
        assert_subscription_error(&payload, "NOT_FOUND");
        ws.expect_complete(id).await;
    }
    ws.close().await;
}

#[tokio::test]
async fn another_providers_subscription_never_receives_demo_a_events() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let mut ws = WsClient::connect(&app, &token_b).await;
    let after = latest_cursor(&app, PROVIDER_B).await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "after": after })).await;
    ws.subscribe("tickets", TICKET_SUBSCRIPTION, json!({ "after": after })).await;

    for n in 0..3 {
        send(&app, &token_a, "c001", &format!("demo-a 的消息 {n}")).await;
    }
    create_ticket(&app, &token_a, "c001", "demo-a 的工单").await;
    let own = send(&app, &token_b, "c031", "demo-b 的消息").await;

    let event = ws.next_event("chat").await;
    assert_eq!(event["message"]["id"], own["id"], "demo-b's first event is its own: {event}");
    assert_eq!(event["message"]["customerId"], "c031");
    assert_eq!(cursor_of(&event), after.parse::<u64>().unwrap() + 1, "demo-b's cursors are its own");
    // Nothing of demo-a's ticket reached demo-b's ticket subscription either.
    let ticket = create_ticket(&app, &token_b, "c031", "demo-b 的工单").await;
    let event = ws.next_event("tickets").await;
    assert_eq!(event["ticket"]["id"], ticket["id"], "demo-b's first ticket event is its own: {event}");
    ws.close().await;
}

// --- the legacy protocol ---

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_delivers_a_chat_message() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut ws = WsClient::open(&app, LEGACY_WS).await;
    ws.init(&token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("1", CHAT_SUBSCRIPTION, json!({ "customerId": "c006", "after": after })).await;

    let sent = send(&app, &token, "c006", "旧协议客户端的消息").await;
    let event = ws.next_event("1").await;
    assert_eq!(event["message"]["id"], sent["id"], "{event}");
    assert_eq!(event["message"]["content"], "旧协议客户端的消息");
    ws.close().await;
}

// --- replay ---

#[tokio::test]
async fn a_client_that_reconnects_with_its_last_cursor_gets_exactly_what_it_missed_then_live() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c007", "after": after })).await;
    let before = send(&app, &token, "c007", "断线前的消息").await;
    let seen = ws.next_event("chat").await;
    assert_eq!(seen["message"]["id"], before["id"]);
    let last = str_of(&seen, "cursor").to_owned();
    ws.close().await;

    let mut missed = Vec::new();
    for n in 1..=5 {
        missed.push(str_of(&send(&app, &token, "c007", &format!("离线期间的消息 {n}")).await, "id").to_owned());
    }

    let mut ws = WsClient::connect(&app, &token).await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c007", "after": last })).await;
    let replayed = ws.next_events("chat", 5).await;
    assert_eq!(replayed.iter().map(message_id).collect::<Vec<_>>(), missed, "exactly the missed ones, in order");
    let live = send(&app, &token, "c007", "重连后的消息").await;
    let event = ws.next_event("chat").await;
    assert_eq!(event["message"]["id"], live["id"], "the live one follows the replay: {event}");
    // It arrived once: the next event is the one sent after it.
    let sentinel = send(&app, &token, "c007", "再下一条").await;
    let next = ws.next_event("chat").await;
    assert_eq!(next["message"]["id"], sentinel["id"], "no duplicate at the seam: {next}");

    let mut cursors = vec![last.parse::<u64>().unwrap()];
    cursors.extend(replayed.iter().chain([&event, &next]).map(cursor_of));
    assert!(cursors.windows(2).all(|pair| pair[1] == pair[0] + 1), "no gap, no duplicate: {cursors:?}");
    ws.close().await;
}

#[tokio::test]
async fn a_replay_that_starts_while_two_clients_keep_writing_has_no_gap_and_no_duplicate() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let base: u64 = latest_cursor(&app, PROVIDER_A).await.parse().unwrap();
    let mut earlier = Vec::new();
    for n in 0..20 {
        earlier.push(str_of(&send(&app, &token, "c002", &format!("早先的消息 {n}")).await, "id").to_owned());
    }

    // Two writers keep sending while the subscriber connects and replays from `base`, so the
    // replay, the live stream and the seam between them all happen under concurrent writes.
    let writer = |name: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            let mut ids = Vec::new();
            for n in 0..40 {
                ids.push(str_of(&send(app, token, "c002", &format!("{name} {n}")).await, "id").to_owned());
            }
            ids
        }
    };
    let subscriber = async {
        let mut ws = WsClient::connect(&app, &token).await;
        ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c002", "after": base.to_string() })).await;
        ws
    };
    let (first, second, mut ws) = tokio::join!(writer("写入者甲"), writer("写入者乙"), subscriber);

    let events = ws.next_events("chat", 100).await;
    let cursors: Vec<u64> = events.iter().map(cursor_of).collect();
    assert_eq!(cursors, (base + 1..=base + 100).collect::<Vec<_>>(), "every cursor once, in order");
    let mut received: Vec<String> = events.iter().map(message_id).collect();
    assert_eq!(received[..20], earlier[..], "the earlier messages first, in order");
    for writer in [&first, &second] {
        let theirs: Vec<&String> = received.iter().filter(|id| writer.contains(id)).collect();
        assert_eq!(theirs, writer.iter().collect::<Vec<_>>(), "each writer's messages in the order written");
    }
    let mut written: Vec<String> = earlier.into_iter().chain(first).chain(second).collect();
    received.sort();
    written.sort();
    assert_eq!(received, written, "every message exactly once");
    let sentinel = send(&app, &token, "c002", "最后一条").await;
    assert_eq!(ws.next_event("chat").await["message"]["id"], sentinel["id"], "nothing delivered twice");
    ws.close().await;
}

#[tokio::test]
async fn after_zero_replays_a_seeded_conversation_in_full() {
    // The demo history reaches back 60 days, past the default replay window of 7 (tests/api/replay_window.rs).
    let app = TestApp::spawn_configured(&[("EVENT_REPLAY_MAX_AGE_HOURS", "8760")]).await;
    let token = app.login(DEMO_A).await;
    let (stored, total) = conversation(&app, &token, "c008").await;
    assert_eq!(total, 4, "the demo conversation with c008 has four messages");
    let mut ws = WsClient::connect(&app, &token).await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c008", "after": "0" })).await;

    let replayed = ws.next_events("chat", stored.len()).await;
    assert_eq!(replayed.iter().map(message_id).collect::<Vec<_>>(), stored, "the whole conversation, in order");
    let cursors: Vec<u64> = replayed.iter().map(cursor_of).collect();
    assert!(cursors.windows(2).all(|pair| pair[0] < pair[1]), "cursors increase: {cursors:?}");
    // Nothing more than the conversation: the next event is a new message.
    let live = send(&app, &token, "c008", "回放之后的新消息").await;
    assert_eq!(ws.next_event("chat").await["message"]["id"], live["id"]);
    ws.close().await;
}

#[tokio::test]
async fn a_cursor_beyond_the_latest_or_not_a_number_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let latest: u64 = latest_cursor(&app, PROVIDER_A).await.parse().unwrap();
    let mut ws = WsClient::connect(&app, &token).await;

    for (id, after) in [("ahead", (latest + 1).to_string()), ("word", "abc".to_owned()), ("negative", "-1".to_owned())]
    {
        ws.subscribe(id, CHAT_SUBSCRIPTION, json!({ "after": after })).await;
        let payload = ws.next_payload(id).await;
        assert_subscription_error(&payload, "BAD_USER_INPUT");
        ws.expect_complete(id).await;
    }

    // The latest cursor itself is fine: the subscription goes on live.
    ws.subscribe("latest", CHAT_SUBSCRIPTION, json!({ "after": latest.to_string() })).await;
    let sent = send(&app, &token, "c001", "最新游标之后").await;
    assert_eq!(ws.next_event("latest").await["message"]["id"], sent["id"]);
    ws.close().await;
}

// --- idempotency ---

#[tokio::test]
async fn a_chat_message_sent_twice_with_one_idempotency_key_is_stored_and_delivered_once() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let (_, before) = conversation(&app, &token, "c001").await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c001", "after": after })).await;

    let key = "7f3c2a9e-0d1b-4c55-9a61-2f8e4b7d1c03";
    let first = send_keyed(&app, &token, "c001", "只发一次", key).await;
    let retry = send_keyed(&app, &token, "c001", "只发一次", key).await;
    assert!(first.get("errors").is_none() && retry.get("errors").is_none(), "{first} {retry}");
    let id = &first["data"]["sendChatMessage"]["id"];
    assert_eq!(&retry["data"]["sendChatMessage"]["id"], id, "the retry answers the first message");
    assert_eq!(conversation(&app, &token, "c001").await.1, before + 1, "one message stored");

    let event = ws.next_event("chat").await;
    assert_eq!(&event["message"]["id"], id);
    let sentinel = send(&app, &token, "c001", "下一条").await;
    let next = ws.next_event("chat").await;
    assert_eq!(next["message"]["id"], sentinel["id"], "the retry delivered nothing: {next}");
    ws.close().await;
}

#[tokio::test]
async fn a_ticket_created_twice_with_one_idempotency_key_is_stored_and_delivered_once() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = ticket_total(&app, &token).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    ws.subscribe("tickets", TICKET_SUBSCRIPTION, json!({ "after": after })).await;

    let key = "ticket-retry-0001";
    let first = create_ticket_keyed(&app, &token, "c002", "重复提交的工单", key).await;
    let retry = create_ticket_keyed(&app, &token, "c002", "重复提交的工单", key).await;
    assert!(first.get("errors").is_none() && retry.get("errors").is_none(), "{first} {retry}");
    let id = &first["data"]["createTicket"]["id"];
    assert_eq!(&retry["data"]["createTicket"]["id"], id, "the retry answers the first ticket");
    assert_eq!(ticket_total(&app, &token).await, before + 1, "one ticket stored");

    assert_eq!(&ws.next_event("tickets").await["ticket"]["id"], id);
    let sentinel = create_ticket(&app, &token, "c002", "下一个工单").await;
    let next = ws.next_event("tickets").await;
    assert_eq!(next["ticket"]["id"], sentinel["id"], "the retry delivered nothing: {next}");
    ws.close().await;
}

#[tokio::test]
async fn an_idempotency_key_reused_for_the_other_kind_of_write_conflicts() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let chat_key = "shared-key-chat";
    let ticket_key = "shared-key-ticket";
    assert!(send_keyed(&app, &token, "c003", "先发消息", chat_key).await.get("errors").is_none());
    assert!(create_ticket_keyed(&app, &token, "c003", "先建工单", ticket_key).await.get("errors").is_none());
    let (_, messages) = conversation(&app, &token, "c003").await;
    let tickets = ticket_total(&app, &token).await;

    assert_error(&create_ticket_keyed(&app, &token, "c003", "再建工单", chat_key).await, "CONFLICT");
    assert_error(&send_keyed(&app, &token, "c003", "再发消息", ticket_key).await, "CONFLICT");
    assert_eq!(ticket_total(&app, &token).await, tickets, "no ticket stored");
    assert_eq!(conversation(&app, &token, "c003").await.1, messages, "no message stored");
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_bad_input() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let too_long = "k".repeat(65);
    for key in ["not a key!", "", too_long.as_str()] {
        let body = send_keyed(&app, &token, "c001", "消息", key).await;
        assert_error(&body, "BAD_USER_INPUT");
        assert!(has_chinese(&error_message(&body)), "{body}");
        assert_error(&create_ticket_keyed(&app, &token, "c001", "工单", key).await, "BAD_USER_INPUT");
    }
}

// --- a slow consumer ---

#[tokio::test]
async fn a_subscriber_that_stops_reading_gets_every_message_once_in_order_when_it_reads_again() {
    const SENT: usize = 600;
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    // The server must find the socket full long before the 600th event, so that the subscription
    // falls behind its live buffer (256 events) while the client does not read: a small receive
    // buffer, long messages, and each event carrying its content five times (about 30 KB), which
    // is far more than the kernel's send buffer holds (4 MB by default).
    let mut ws = WsClient::open_with_buffer(&app, TRANSPORT_WS, Some(4096)).await;
    ws.init(&token).await;
    let after = latest_cursor(&app, PROVIDER_A).await;
    let heavy = "subscription($customerId: ID, $after: String) {
        chatMessages(customerId: $customerId, after: $after) {
            cursor message { id content c1: content c2: content c3: content c4: content }
        }
    }";
    ws.subscribe("chat", heavy, json!({ "customerId": "c001", "after": after })).await;

    let padding = "慢".repeat(1990);
    let mut sent = Vec::with_capacity(SENT);
    for n in 0..SENT {
        let message = send(&app, &token, "c001", &format!("{n} {padding}")).await;
        sent.push(str_of(&message, "id").to_owned());
    }

    let events = ws.next_events("chat", SENT).await;
    assert_eq!(events.iter().map(message_id).collect::<Vec<_>>(), sent, "every message once, in order");
    let first: u64 = after.parse::<u64>().unwrap() + 1;
    let cursors: Vec<u64> = events.iter().map(cursor_of).collect();
    assert_eq!(cursors, (first..first + SENT as u64).collect::<Vec<_>>(), "cursors are contiguous");
    let sentinel = send(&app, &token, "c001", "最后一条").await;
    assert_eq!(ws.next_event("chat").await["message"]["id"], sentinel["id"], "nothing delivered twice");
    ws.close().await;
}

#[tokio::test]
async fn a_replay_costs_the_same_few_store_calls_for_ten_missed_messages_and_a_hundred() {
    // The count is the whole process's: the scheduled jobs (first run at start-up) would add theirs.
    let app = TestApp::spawn_configured(&[("JOB_INTERVAL_SECONDS", "0")]).await;
    let token = app.login(DEMO_A).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let query = "subscription($customerId: ID, $after: String) {
        chatMessages(customerId: $customerId, after: $after) { cursor message { id } }
    }";
    let mut costs = Vec::new();
    for missed in [10, 100] {
        let after = latest_cursor(&app, PROVIDER_A).await;
        let mut sent = Vec::with_capacity(missed);
        for n in 0..missed {
            sent.push(str_of(&send(&app, &token, "c002", &format!("补发 {n}")).await, "id").to_owned());
        }
        // Another write may land beside a replay on a loaded machine: the fewest of three shows
        // what the replay needs.
        let mut fewest = u64::MAX;
        for attempt in 0..3 {
            let id = format!("replay-{missed}-{attempt}");
            let before = app.store_round_trips();
            ws.subscribe(&id, query, json!({ "customerId": "c002", "after": after })).await;
            let events = ws.next_events(&id, missed).await;
            fewest = fewest.min(app.store_round_trips() - before);
            assert_eq!(events.iter().map(message_id).collect::<Vec<_>>(), sent, "every missed message, in order");
            ws.send(json!({ "id": id, "type": "complete" })).await;
            ws.expect_complete(&id).await;
        }
        costs.push(fewest);
    }
    assert_eq!(costs[0], costs[1], "a hundred missed messages cost what ten do: {costs:?}");
    assert!(costs[1] <= 6, "a few store calls: {costs:?}");
    ws.close().await;
}

// --- the reference client ---

#[tokio::test]
async fn the_reference_graphql_ws_client_replays_receives_live_and_sees_the_close_codes() {
    let client_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ws-client");
    assert!(
        client_dir.join("node_modules/graphql-ws").is_dir(),
        "tests/ws-client/node_modules is missing: run `npm ci --prefix tests/ws-client` (scripts/test does it)"
    );
    // The demo history reaches back 60 days, past the default replay window of 7.
    let app = TestApp::spawn_configured(&[("EVENT_REPLAY_MAX_AGE_HOURS", "8760")]).await;
    let token = app.login(DEMO_A).await;
    let base = app.address.clone();
    let output = tokio::task::spawn_blocking(move || run_node(&client_dir, &base, &token, "c005"))
        .await
        .expect("the node client ran");
    let line = output.lines().rev().find(|line| line.trim_start().starts_with('{'));
    let result: Value = line
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("the client prints one JSON line, got: {output}"));

    assert!(result.get("error").is_none(), "the client reports no error: {result}");
    let stored = result["stored"].as_array().expect("the stored conversation");
    assert!(!stored.is_empty(), "the demo conversation with c005 is not empty: {result}");
    assert_eq!(result["replayed"], result["stored"], "after: 0 replays the stored conversation: {result}");
    assert_eq!(result["live"]["message"]["id"], result["sentId"], "the live message arrives: {result}");
    assert_eq!(result["missingTokenClose"], 4401, "{result}");
    assert_eq!(result["badTokenClose"], 4403, "{result}");
}

/// Runs `check.mjs` and returns its standard output; kills it if it outlives two minutes.
fn run_node(dir: &Path, base: &str, token: &str, customer: &str) -> String {
    use std::io::Read;
    let mut child = std::process::Command::new("node")
        .arg("check.mjs")
        .current_dir(dir)
        .env("BASE_URL", base)
        .env("TOKEN", token)
        .env("CUSTOMER_ID", customer)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("node runs ({error}); the reference client needs Node.js 18 or later"));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the client's status") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the reference client did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("the client's output");
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("the client's errors");
    assert!(status.success(), "the client exits cleanly ({status}): {stdout}\n{stderr}");
    stdout
}
