//! Idempotency keys on every retryable write, through the real server on the test backend: a
//! retried request (the REST `Idempotency-Key` header, or the GraphQL `idempotencyKey` argument)
//! answers the first answer byte for byte and stores nothing twice; an escalated chat retried
//! reaches the PC system once; the same key with another request is a 409 CONFLICT that changes
//! nothing; concurrent identical requests store one thing.

use crate::integration::{integrated, pairs, Receiver};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Sends a REST POST with an `Idempotency-Key`.
async fn keyed_post(app: &TestApp, token: &str, path: &str, key: &str, body: Value) -> Answer {
    app.send(Some(token), &Request::post(path, body).header("Idempotency-Key", key)).await
}

/// Sends the same keyed REST POST twice: both succeed, with the same bytes. Answers the first.
async fn sent_twice(app: &TestApp, token: &str, path: &str, key: &str, body: Value) -> Value {
    let first = keyed_post(app, token, path, key, body.clone()).await;
    assert_eq!(first.status, 200, "{path}: {}", first.text);
    let retry = keyed_post(app, token, path, key, body).await;
    assert_eq!(retry.status, 200, "{path} retried: {}", retry.text);
    assert_eq!(retry.text, first.text, "{path}: the retry answers the first answer byte for byte");
    first.body["data"].clone()
}

async fn ticket_total(app: &TestApp, token: &str) -> u64 {
    let answer = app.get(Some(token), "/api/tickets?pageSize=1").await;
    answer.body["data"]["total"].as_u64().expect("a total")
}

async fn chat_total(app: &TestApp, token: &str, customer: &str) -> u64 {
    let answer = app.get(Some(token), &format!("/api/chat/messages?customerId={customer}&pageSize=1")).await;
    answer.body["data"]["total"].as_u64().expect("a total")
}

async fn history_actions(app: &TestApp, token: &str, ticket: &str) -> Vec<String> {
    let answer = app.get(Some(token), &format!("/api/tickets/{ticket}")).await;
    let history = answer.body["data"]["processingHistory"].as_array().expect("a history").clone();
    history.iter().map(|entry| entry["action"].as_str().unwrap().to_owned()).collect()
}

fn new_ticket(title: &str) -> Value {
    json!({ "customerId": "c001", "title": title, "content": "登录时提示密码错误", "type": "system_issue" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_write_retried_with_its_key_answers_the_first_answer_and_stores_nothing_twice() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let (tickets, chats) = (ticket_total(&app, &token).await, chat_total(&app, &token, "c001").await);

    let created = sent_twice(&app, &token, "/api/tickets", "create-1", new_ticket("无法登录")).await;
    let ticket = created["ticketId"].as_str().unwrap().to_owned();
    let path = |action: &str| format!("/api/tickets/{ticket}/{action}");
    sent_twice(&app, &token, &path("reply"), "reply-1", json!({ "content": "请清除缓存后重试" })).await;
    let escalated = sent_twice(&app, &token, &path("escalate"), "escalate-1", json!({ "reason": "需要二线" })).await;
    assert_eq!(escalated["escalationStatus"], "escalated");
    let resolved = sent_twice(&app, &token, &path("resolve"), "resolve-1", json!({ "resolution": "已修复" })).await;
    assert_eq!(resolved["status"], "resolved");
    sent_twice(&app, &token, "/api/chat/send", "send-1", json!({ "customerId": "c001", "content": "您好" })).await;
    let chat = json!({ "customerId": "c002", "content": "无法同步", "reason": "需要技术支持" });
    let chat_ticket = sent_twice(&app, &token, "/api/chat/escalate", "escalate-chat-1", chat).await;
    assert_eq!(chat_ticket["escalationStatus"], "escalated");

    assert_eq!(ticket_total(&app, &token).await, tickets + 2, "one created ticket, one escalated chat");
    assert_eq!(chat_total(&app, &token, "c001").await, chats + 1, "one chat message");
    assert_eq!(history_actions(&app, &token, &ticket).await, ["create", "reply", "escalate", "resolve"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graphql_write_retried_with_its_key_answers_the_first_answer_and_stores_nothing_twice() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let tickets = ticket_total(&app, &token).await;
    let twice = |query: &'static str, variables: Value| {
        let (app, token) = (&app, &token);
        async move {
            let body = json!({ "query": query, "variables": variables });
            let first = app.post(Some(token), "/graphql", body.clone()).await;
            assert!(first.body.get("errors").is_none(), "{}", first.text);
            let retry = app.post(Some(token), "/graphql", body).await;
            assert_eq!(retry.text, first.text, "the retry answers the first answer byte for byte");
            first.body["data"].clone()
        }
    };
    let create =
        "mutation($key: String) { createTicket(customerId: \"c001\", title: \"无法登录\", content: \"提示密码错误\",
        type: SYSTEM_ISSUE, idempotencyKey: $key) { id processingHistory { id } updatedAt } }";
    let created = twice(create, json!({ "key": "g-create" })).await;
    let ticket = created["createTicket"]["id"].as_str().unwrap().to_owned();
    let reply = "mutation($id: ID!, $key: String) { replyTicket(id: $id, content: \"处理中\", idempotencyKey: $key) {
        replyId timestamp ticket { id updatedAt } } }";
    twice(reply, json!({ "id": ticket, "key": "g-reply" })).await;
    let escalate =
        "mutation($id: ID!, $key: String) { escalateTicket(id: $id, reason: \"需要二线\", idempotencyKey: $key) {
        escalatedAt notificationSent } }";
    twice(escalate, json!({ "id": ticket, "key": "g-escalate" })).await;
    let resolve =
        "mutation($id: ID!, $key: String) { resolveTicket(id: $id, idempotencyKey: $key) { status resolvedAt } }";
    twice(resolve, json!({ "id": ticket, "key": "g-resolve" })).await;
    // A literal key works as a variable does.
    let send = "mutation { sendChatMessage(customerId: \"c001\", content: \"您好\", idempotencyKey: \"g-send\") { id timestamp } }";
    twice(send, json!({})).await;
    let escalate_chat = "mutation { escalateChat(customerId: \"c002\", content: \"无法同步\", reason: \"需要支持\",
        idempotencyKey: \"g-escalate-chat\") { id createdAt } }";
    twice(escalate_chat, json!({})).await;

    assert_eq!(ticket_total(&app, &token).await, tickets + 2);
    assert_eq!(history_actions(&app, &token, &ticket).await, ["create", "reply", "escalate", "resolve"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_another_request_is_a_conflict_that_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let created = sent_twice(&app, &token, "/api/tickets", "same-key", new_ticket("无法登录")).await;
    let tickets = ticket_total(&app, &token).await;

    let other = keyed_post(&app, &token, "/api/tickets", "same-key", new_ticket("另一个问题")).await;
    assert_eq!((other.status, other.body["code"].clone()), (409, json!(409)), "{}", other.text);
    assert!(has_chinese(other.body["message"].as_str().unwrap()), "{}", other.text);
    // Another endpoint under the same key is another request too.
    let send =
        keyed_post(&app, &token, "/api/chat/send", "same-key", json!({ "customerId": "c001", "content": "您好" }));
    assert_eq!(send.await.status, 409);
    let query =
        "mutation { createTicket(customerId: \"c001\", title: \"又一个\", content: \"内容\", type: SYSTEM_ISSUE,
        idempotencyKey: \"same-key\") { id } }";
    assert_error(&app.graphql(Some(&token), query, json!({})).await, "CONFLICT");

    assert_eq!(ticket_total(&app, &token).await, tickets, "nothing more stored");
    let id = created["ticketId"].as_str().unwrap();
    assert_eq!(history_actions(&app, &token, id).await, ["create"]);
    // The first request, sent again, still gets its answer.
    let again = keyed_post(&app, &token, "/api/tickets", "same-key", new_ticket("无法登录")).await;
    assert_eq!(again.body["data"], created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_requests_store_one_thing_and_agree_on_the_answer() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let tickets = ticket_total(&app, &token).await;
    let requests = (0..6).map(|_| keyed_post(&app, &token, "/api/tickets", "together", new_ticket("无法登录")));
    let answers = futures_util::future::join_all(requests).await;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let ids: std::collections::BTreeSet<&str> =
        answers.iter().map(|a| a.body["data"]["ticketId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one ticket for all: {ids:?}");
    assert_eq!(ticket_total(&app, &token).await, tickets + 1);

    let ticket = ids.into_iter().next().unwrap();
    let path = format!("/api/tickets/{ticket}/reply");
    let replies = (0..6).map(|_| keyed_post(&app, &token, &path, "reply-together", json!({ "content": "处理中" })));
    for answer in futures_util::future::join_all(replies).await {
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    assert_eq!(history_actions(&app, &token, ticket).await, ["create", "reply"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_idempotency_key_is_refused_like_a_malformed_argument() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let tickets = ticket_total(&app, &token).await;
    for key in ["not a key", "x".repeat(65).as_str(), "\"\""] {
        let answer = keyed_post(&app, &token, "/api/tickets", key, new_ticket("无法登录")).await;
        assert_eq!((answer.status, answer.body["code"].clone()), (400, json!(400)), "{key}: {}", answer.text);
    }
    let query = "mutation { resolveTicket(id: \"t001\", idempotencyKey: \"not a key\") { id } }";
    assert_error(&app.graphql(Some(&token), query, json!({})).await, "BAD_USER_INPUT");
    // The IETF draft's form, a quoted string, is the same key as the bare one.
    let bare = keyed_post(&app, &token, "/api/tickets", "k-1", new_ticket("无法登录")).await;
    let quoted = keyed_post(&app, &token, "/api/tickets", "\"k-1\"", new_ticket("无法登录")).await;
    assert_eq!((bare.status, quoted.text), (200, bare.text.clone()));
    assert_eq!(ticket_total(&app, &token).await, tickets + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalated_chat_retried_reaches_the_pc_system_once() {
    let receiver = Receiver::start().await;
    let settings = integrated(&receiver, &[]);
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login(DEMO_A).await;
    let tickets = ticket_total(&app, &token).await;

    let chat = json!({ "customerId": "c001", "content": "无法同步", "reason": "需要技术支持" });
    for _ in 0..3 {
        let answer = keyed_post(&app, &token, "/api/chat/escalate", "escalate-once", chat.clone()).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let query = "mutation { escalateChat(customerId: \"c001\", content: \"无法同步\", reason: \"需要技术支持\",
        idempotencyKey: \"escalate-once-gql\") { id } }";
    for _ in 0..3 {
        app.data(&token, query, json!({})).await;
    }

    receiver.wait_for("two chat.escalated webhooks", |r| r.len() >= 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.services.store.outbox_counts().await.unwrap().pending > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let counts = app.services.store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.dead), (0, 2, 0), "two deliveries queued, no more");
    let escalated: Vec<_> =
        receiver.webhooks().iter().filter(|r| r.json()["type"] == "chat.escalated").cloned().collect();
    assert_eq!(escalated.len(), 2, "one per escalated chat: {escalated:#?}");
    assert_eq!(ticket_total(&app, &token).await, tickets + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_from_before_stored_answers_gains_their_columns_and_keeps_its_keys() {
    if Backend::from_env().is_mongo() {
        return; // MongoDB documents take new fields as they come.
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let connection =
            rusqlite::Connection::open(provider_desk::store::sqlite::SqliteStore::database_path(dir.path()));
        connection
            .unwrap()
            .execute_batch(
                "CREATE TABLE idempotency_keys (provider_id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
                 subject_id TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (provider_id, key)) WITHOUT ROWID;
             INSERT INTO idempotency_keys VALUES ('sp001', 'old-key', 'ticket', 't001', '2026-01-01T00:00:00.000Z');",
            )
            .unwrap();
    }
    let app = TestApp::spawn_in(dir.path(), true).await;
    let token = app.login(DEMO_A).await;
    sent_twice(&app, &token, "/api/tickets", "new-key", new_ticket("无法登录")).await;
    // The key stored before answers its ticket, as it did.
    let old = keyed_post(&app, &token, "/api/tickets", "old-key", new_ticket("无法登录")).await;
    assert_eq!((old.status, old.body["data"]["ticketId"].clone()), (200, json!("t001")), "{}", old.text);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_was_never_recorded_is_replayed_by_its_retry_not_repeated() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let created = app.post(Some(&token), "/api/tickets", new_ticket("无法登录")).await;
    let ticket = created.body["data"]["ticketId"].as_str().unwrap().to_owned();
    // The first requests' writes happen, and the server stops before recording their answers: the
    // services write (claiming the keys) with no answer kept.
    let session = app.services.auth.authenticate(&token).await.unwrap();
    let key = |text: &str| provider_desk::domain::Id::parse(text);
    let id = key(&ticket).unwrap();
    app.services.tickets.resolve(&session, &id, None, key("lost-resolve")).await.unwrap();
    let customer = key("c001").unwrap();
    let content = provider_desk::domain::Text::parse("无法同步", provider_desk::domain::TextLimit::TICKET_CONTENT);
    let reason = provider_desk::domain::Text::parse("需要支持", provider_desk::domain::TextLimit::REASON);
    let escalated =
        app.services.chat.escalate(&session, &customer, content.unwrap(), reason.unwrap(), key("lost-chat"));
    let escalated = escalated.await.unwrap();
    let tickets = ticket_total(&app, &token).await;

    let path = format!("/api/tickets/{ticket}/resolve");
    let retry = sent_twice(&app, &token, &path, "lost-resolve", json!({})).await;
    assert_eq!(retry["status"], "resolved", "the retry answers the resolution, not 'already resolved'");
    let chat = json!({ "customerId": "c001", "content": "无法同步", "reason": "需要支持" });
    let retry = sent_twice(&app, &token, "/api/chat/escalate", "lost-chat", chat).await;
    assert_eq!(retry["ticketId"], escalated.id.as_str());
    assert_eq!(history_actions(&app, &token, &ticket).await, ["create", "resolve"]);
    assert_eq!(ticket_total(&app, &token).await, tickets, "no second escalated ticket");
}
