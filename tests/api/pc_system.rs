//! The PC customer-service system acting on tickets (`POST /integrations/cs/ticket-events`):
//! through the real server, signed as the PC system signs, seen by the app as a change made in it.

use crate::integration::{post_signed, post_signed_at, CS_SECRET};
use crate::support::ws::WsClient;
use crate::support::*;
use serde_json::{json, Value};

const EVENTS: &str = "/integrations/cs/ticket-events";
const TICKET_SUBSCRIPTION: &str = "subscription($ticketId: ID, $after: String) {
    ticketUpdates(ticketId: $ticketId, after: $after) {
        cursor ticket { id status assigneeId assigneeName processingHistory { action operatorName } }
    }
}";
const DETAIL: &str = "query($id: ID!) {
    ticket(id: $id) {
        id status assigneeId assigneeName resolution resolvedAt firstRespondedAt
        processingHistory { action operatorId operatorName content }
    }
}";

async fn spawn() -> TestApp {
    TestApp::spawn_configured(&[("CS_WEBHOOK_SECRET", CS_SECRET)]).await
}

async fn create(app: &TestApp, token: &str) -> String {
    let query = "mutation { createTicket(customerId: \"c003\", title: \"报表导出失败\", content: \"导出时报错\", type: SYSTEM_ISSUE) { id } }";
    str_of(&app.data(token, query, json!({})).await["createTicket"], "id").to_owned()
}

async fn detail(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(token, DETAIL, json!({ "id": id })).await["ticket"].clone()
}

fn event(event_id: &str, ticket: &str, kind: &str, occurred_at: &str, extra: Value) -> Value {
    let mut body = json!({
        "eventId": event_id, "ticketId": ticket, "type": kind,
        "operator": { "id": "cs-007", "name": "二线客服王工" }, "occurredAt": occurred_at,
    });
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    body
}

fn minutes_ago(minutes: i64) -> String {
    provider_desk::domain::format_time(&(chrono::Utc::now() - chrono::Duration::minutes(minutes)))
}

fn actions(ticket: &Value) -> Vec<String> {
    ticket["processingHistory"].as_array().unwrap().iter().map(|e| str_of(e, "action").to_owned()).collect()
}

async fn latest_cursor(app: &TestApp) -> String {
    let provider = provider_desk::domain::Id::parse("sp001").unwrap();
    app.services.store.latest_cursor(&provider).await.unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assign_event_sets_the_assignee_with_history_and_the_subscriber_sees_it() {
    let app = spawn().await;
    let token = app.login(DEMO_A).await;
    let id = create(&app, &token).await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app).await;
    ws.subscribe("t", TICKET_SUBSCRIPTION, json!({ "ticketId": id, "after": after })).await;

    let assign =
        event("pc-e1", &id, "assign", &minutes_ago(1), json!({ "assignee": { "id": "cs-009", "name": "李工" } }));
    let (status, duplicate, answer) = post_signed(&app, EVENTS, CS_SECRET, &assign).await;
    assert_eq!((status, duplicate), (200, false), "{answer}");
    assert_eq!(answer["data"]["applied"], true, "{answer}");
    let live = ws.next_event("t").await;
    assert_eq!(
        (live["ticket"]["assigneeId"].clone(), live["ticket"]["assigneeName"].clone()),
        (json!("cs-009"), json!("李工"))
    );
    let last = live["ticket"]["processingHistory"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!((last["action"].clone(), last["operatorName"].clone()), (json!("assign"), json!("二线客服王工")));
    let updates = "{ notifications(type: TICKET_UPDATE, pageSize: 100) { items { relatedTicketId content } } }";
    let page = app.data(&token, updates, json!({})).await["notifications"].clone();
    assert!(
        items(&page).iter().any(|n| n["relatedTicketId"] == id.as_str() && str_of(n, "content").contains("李工")),
        "{page}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolve_event_resolves_and_its_duplicate_changes_nothing() {
    let app = spawn().await;
    let token = app.login(DEMO_A).await;
    let id = create(&app, &token).await;
    let resolve = event("pc-e2", &id, "resolve", &minutes_ago(1), json!({ "content": "已远程修复导出功能" }));
    let (status, duplicate, first) = post_signed(&app, EVENTS, CS_SECRET, &resolve).await;
    assert_eq!((status, duplicate), (200, false), "{first}");
    let resolved = detail(&app, &token, &id).await;
    assert_eq!(
        (resolved["status"].clone(), resolved["resolution"].clone()),
        (json!("RESOLVED"), json!("已远程修复导出功能"))
    );
    assert!(!resolved["firstRespondedAt"].is_null(), "resolving answers the customer too");

    let (status, duplicate, again) = post_signed(&app, EVENTS, CS_SECRET, &resolve).await;
    assert_eq!((status, duplicate), (200, true));
    assert_eq!(again, first, "the same answer");
    assert_eq!(detail(&app, &token, &id).await, resolved, "nothing changed");

    let other = event("pc-e3", &id, "resolve", &minutes_ago(0), json!({}));
    let (status, _, refused) = post_signed(&app, EVENTS, CS_SECRET, &other).await;
    assert_eq!(status, 409, "a resolved ticket cannot be resolved again: {refused}");
    assert!(has_chinese(str_of(&refused, "message")), "{refused}");
    assert_eq!(detail(&app, &token, &id).await, resolved, "nothing changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_event_on_a_resolved_ticket_reopens_it_as_a_reply_from_the_app_does() {
    let app = spawn().await;
    let token = app.login(DEMO_A).await;
    let id = create(&app, &token).await;
    app.data(&token, "mutation($id: ID!) { resolveTicket(id: $id) { id } }", json!({ "id": id })).await;
    let reply = event("pc-e4", &id, "reply", &minutes_ago(0), json!({ "content": "问题仍在，我们继续跟进" }));
    let (status, _, answer) = post_signed(&app, EVENTS, CS_SECRET, &reply).await;
    assert_eq!(status, 200, "{answer}");
    let reopened = detail(&app, &token, &id).await;
    assert_eq!(reopened["status"], "PROCESSING");
    assert_eq!((reopened["resolution"].clone(), reopened["resolvedAt"].clone()), (Value::Null, Value::Null));
    assert_eq!(actions(&reopened), ["create", "resolve", "reopen", "reply"]);
    let entry = reopened["processingHistory"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(
        (entry["operatorId"].clone(), entry["content"].clone()),
        (json!("cs-007"), json!("问题仍在，我们继续跟进"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_older_than_the_last_change_of_its_kind_is_recorded_and_not_applied() {
    let app = spawn().await;
    let token = app.login(DEMO_A).await;
    let id = create(&app, &token).await;
    let newer =
        event("pc-e5", &id, "assign", &minutes_ago(1), json!({ "assignee": { "id": "cs-2", "name": "新负责人" } }));
    let older =
        event("pc-e6", &id, "assign", &minutes_ago(10), json!({ "assignee": { "id": "cs-1", "name": "旧负责人" } }));
    assert_eq!(post_signed(&app, EVENTS, CS_SECRET, &newer).await.0, 200);
    let (status, duplicate, answer) = post_signed(&app, EVENTS, CS_SECRET, &older).await;
    assert_eq!((status, duplicate, answer["data"]["applied"].clone()), (200, false, json!(false)), "{answer}");
    assert_eq!(detail(&app, &token, &id).await["assigneeName"], "新负责人");
    let (_, duplicate, again) = post_signed(&app, EVENTS, CS_SECRET, &older).await;
    assert_eq!((duplicate, again), (true, answer), "recorded under its id");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_is_401_and_a_bad_event_is_400_and_neither_changes_anything() {
    let app = spawn().await;
    let token = app.login(DEMO_A).await;
    let id = create(&app, &token).await;
    let before = detail(&app, &token, &id).await;
    let resolve = event("pc-e7", &id, "resolve", &minutes_ago(0), json!({}));
    let now = chrono::Utc::now().timestamp();
    let (status, _, _) = post_signed_at(&app, EVENTS, "not-the-secret", now, resolve.to_string().as_bytes()).await;
    assert_eq!(status, 401);
    let unknown = event("pc-e8", &id, "delete", &minutes_ago(0), json!({}));
    let (status, _, answer) = post_signed(&app, EVENTS, CS_SECRET, &unknown).await;
    assert_eq!(status, 400, "{answer}");
    let missing = event("pc-e9", "t-none", "resolve", &minutes_ago(0), json!({}));
    assert_eq!(post_signed(&app, EVENTS, CS_SECRET, &missing).await.0, 404);
    assert_eq!(detail(&app, &token, &id).await, before);
    app.stop().await;
}

const STATUS_SUBSCRIPTION: &str = "subscription($customerId: ID, $after: String) {
    chatMessageStatus(customerId: $customerId, after: $after) { cursor message { id senderType status } }
}";
const RECEIPTS: &str = "/integrations/cs/receipts";

async fn provider_says(app: &TestApp, token: &str, customer: &str) -> String {
    let query = "mutation($c: ID!) { sendChatMessage(customerId: $c, content: \"您好，已为您处理\") { id status } }";
    let sent = app.data(token, query, json!({ "c": customer })).await["sendChatMessage"].clone();
    assert_eq!(sent["status"], "SENT");
    str_of(&sent, "id").to_owned()
}

async fn status_of(app: &TestApp, token: &str, customer: &str, id: &str) -> String {
    let query = "query($c: ID!) { chatMessages(customerId: $c, pageSize: 100) { items { id status } } }";
    let page = app.data(token, query, json!({ "c": customer })).await["chatMessages"].clone();
    let message = items(&page).iter().find(|m| m["id"] == id).cloned().expect("the message is listed");
    str_of(&message, "status").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_receipt_moves_the_providers_message_to_read_live_and_never_back() {
    let app = spawn().await;
    let token = app.login(DEMO_A).await;
    let message = provider_says(&app, &token, "c004").await;
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app).await;
    ws.subscribe("s", STATUS_SUBSCRIPTION, json!({ "customerId": "c004", "after": after })).await;

    let read =
        json!({ "eventId": "pc-r1", "messageIds": [message, "cm-unknown"], "status": "read", "at": minutes_ago(0) });
    let (status, duplicate, answer) = post_signed(&app, RECEIPTS, CS_SECRET, &read).await;
    assert_eq!((status, duplicate), (200, false), "{answer}");
    assert_eq!(
        (answer["data"]["moved"].clone(), answer["data"]["unknown"].clone()),
        (json!([message]), json!(["cm-unknown"]))
    );
    let live = ws.next_event("s").await;
    assert_eq!(
        (live["message"]["id"].clone(), live["message"]["status"].clone()),
        (json!(message), json!("READ")),
        "{live}"
    );
    assert_eq!(status_of(&app, &token, "c004", &message).await, "READ");

    let (_, duplicate, again) = post_signed(&app, RECEIPTS, CS_SECRET, &read).await;
    assert_eq!((duplicate, again), (true, answer), "a duplicate gets the first answer");
    let delivered = json!({ "eventId": "pc-r2", "messageIds": [message], "status": "delivered", "at": minutes_ago(0) });
    let (status, _, late) = post_signed(&app, RECEIPTS, CS_SECRET, &delivered).await;
    assert_eq!((status, late["data"]["moved"].clone()), (200, json!([])), "never back: {late}");
    assert_eq!(status_of(&app, &token, "c004", &message).await, "READ");
    let bad = json!({ "eventId": "pc-r3", "messageIds": [message], "status": "seen", "at": minutes_ago(0) });
    assert_eq!(post_signed(&app, RECEIPTS, CS_SECRET, &bad).await.0, 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pc_system_receives_tickets_created_and_replied_and_conversations_read() {
    use crate::integration::{customer_says, integrated, pairs, Receiver};
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_configured(&pairs(&integrated(&receiver, &[]))).await;
    let token = app.login(DEMO_A).await;
    let id = create(&app, &token).await;
    let reply = "mutation($id: ID!) { replyTicket(id: $id, content: \"已安排工程师\") { replyId } }";
    app.data(&token, reply, json!({ "id": id })).await;
    let said = customer_says(&app, "pc-read-1", "c003", "导出还是失败").await;
    let read = "mutation { markConversationRead(customerId: \"c003\") { customerId } }";
    app.data(&token, read, json!({})).await;

    let kinds = ["ticket.created", "ticket.replied", "chat.read"];
    let hooks = receiver
        .wait_for("ticket.created, ticket.replied and chat.read", |r| {
            kinds.iter().all(|kind| r.iter().any(|h| h.json()["type"] == *kind))
        })
        .await;
    let of = |kind: &str| hooks.iter().map(|h| h.json()).find(|b| b["type"] == kind).unwrap();
    let created = of("ticket.created");
    assert_eq!((created["data"]["ticketId"].clone(), created["data"]["status"].clone()), (json!(id), json!("open")));
    let replied = of("ticket.replied");
    assert_eq!(replied["data"]["status"], "processing");
    assert_eq!(replied["data"]["reply"]["content"], "已安排工程师", "{replied}");
    assert_eq!(replied["data"]["reply"]["operatorId"], "sp001");
    let chat_read = of("chat.read");
    assert_eq!(chat_read["customerId"], "c003");
    let read_ids = chat_read["data"]["messageIds"].as_array().unwrap();
    assert!(read_ids.contains(&said["chatMessageId"]), "{chat_read}");
    assert!(hooks.iter().all(|h| h.signed));
    app.stop().await;
}
