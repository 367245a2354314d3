//! The audit log (spec 6.3) through the real server: every mutation and every sign-in attempt,
//! over GraphQL and over REST, recorded with who, what, which entity, from where, how it ended and
//! when, in the store (SQLite or MongoDB), and paged through by the provider, newest first.

use crate::support::*;
use serde_json::{json, Value};

const AUDIT_LOG: &str = "query($page: Int, $size: Int) {
    auditLog(page: $page, pageSize: $size) {
        total page pageSize
        items { id at serviceProviderId username operation targetId ip result requestId }
    }
}";

async fn audit_log(app: &TestApp, token: &str, page: u32, size: u32) -> Value {
    app.data(token, AUDIT_LOG, json!({ "page": page, "size": size })).await["auditLog"].clone()
}

/// Sends a REST call with a chosen request id and returns the body.
async fn rest(app: &TestApp, token: Option<&str>, path: &str, body: Value, request_id: &str) -> Value {
    let answer = app.send(token, &Request::post(path, body).header("x-request-id", request_id)).await;
    assert_eq!(answer.header("x-request-id"), Some(request_id), "the request id is echoed");
    assert!(answer.is_json(), "JSON: {}", answer.text);
    answer.body
}

/// The entries signed with no provider whose username is `username`, read straight from the store.
async fn unowned_sign_ins(app: &TestApp, username: &str) -> Vec<(String, String)> {
    match &app.backend {
        Backend::Sqlite => {
            let connection = rusqlite::Connection::open(app.database_file()).expect("the database opens");
            let mut statement = connection
                .prepare("SELECT operation, result FROM audit_log WHERE service_provider_id IS NULL AND username = ? ORDER BY id")
                .unwrap();
            statement
                .query_map([username], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        }
        Backend::Mongo { mongodb_uri, .. } => {
            use mongodb::bson::{doc, Document};
            let client = mongodb::Client::with_uri_str(mongodb_uri).await.expect("MongoDB answers");
            let log = client.database(&database_name(&app.data_dir)).collection::<Document>("auditLog");
            let query = doc! { "serviceProviderId": null, "username": username };
            let mut cursor = log.find(query).sort(doc! { "id": 1 }).await.unwrap();
            let mut found = Vec::new();
            while cursor.advance().await.unwrap() {
                let entry = cursor.deserialize_current().unwrap();
                found.push((
                    entry.get_str("operation").unwrap().to_owned(),
                    entry.get_str("result").unwrap().to_owned(),
                ));
            }
            found
        }
    }
}

#[tokio::test]
async fn every_mutation_over_graphql_or_rest_is_recorded_with_its_target_address_result_and_request_id() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let created = rest(
        &app,
        Some(&token),
        "/api/tickets",
        json!({ "customerId": "c001", "title": "审计", "content": "记录每个变更", "type": "system_issue" }),
        "audit-create-1",
    )
    .await;
    let ticket = created["data"]["ticketId"].as_str().unwrap_or_else(|| panic!("created: {created}")).to_owned();
    let reply = "mutation($id: ID!) { replyTicket(id: $id, content: \"已收到\") { replyId } }";
    app.data(&token, reply, json!({ "id": ticket })).await;
    let resolve = "mutation($id: ID!) { resolveTicket(id: $id, resolution: \"已修复\") { id } }";
    app.data(&token, resolve, json!({ "id": ticket })).await;
    assert_error(&app.graphql(Some(&token), resolve, json!({ "id": ticket })).await, "CONFLICT");
    let bad = rest(&app, Some(&token), "/api/messages/bad%20id/read", json!({}), "audit-bad-1").await;
    assert_eq!(bad["code"], 400, "{bad}");
    let other = app.login(DEMO_B).await;
    let send = "mutation { sendChatMessage(customerId: \"c031\", content: \"你好\") { id } }";
    app.data(&other, send, json!({})).await;

    let log = audit_log(&app, &token, 1, 20).await;
    let entries = items(&log);
    let summary: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (str_of(e, "operation"), e["targetId"].as_str().unwrap_or("-"), str_of(e, "result")))
        .collect();
    assert_eq!(
        summary,
        [
            ("markNotificationRead", "bad id", "BAD_USER_INPUT"),
            ("resolveTicket", ticket.as_str(), "CONFLICT"),
            ("resolveTicket", ticket.as_str(), "ok"),
            ("replyTicket", ticket.as_str(), "ok"),
            ("createTicket", ticket.as_str(), "ok"),
            ("login", "sp001", "ok"),
        ],
        "demo-a's entries, newest first, and none of demo-b's: {log}"
    );
    assert_eq!(total(&log), 6);
    for entry in entries {
        assert_eq!(entry["serviceProviderId"], "sp001", "{entry}");
        assert_eq!(entry["ip"], "127.0.0.1", "{entry}");
        assert!(entry["requestId"].as_str().is_some_and(|id| !id.is_empty()), "{entry}");
        time(entry, "at");
    }
    assert_eq!(entries[0]["requestId"], "audit-bad-1");
    assert_eq!(entries[4]["requestId"], "audit-create-1");
    let times: Vec<_> = entries.iter().map(|e| time(e, "at")).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");

    let b_log = audit_log(&app, &other, 1, 20).await;
    let b_operations: Vec<&str> = items(&b_log).iter().map(|e| str_of(e, "operation")).collect();
    assert_eq!(b_operations, ["sendChatMessage", "login"], "{b_log}");
    assert_eq!(items(&b_log)[0]["targetId"], "c031");
}

#[tokio::test]
async fn sign_ins_are_recorded_on_success_and_failure_and_an_unknown_username_without_a_provider() {
    let app = TestApp::spawn().await;
    let wrong = rest(&app, None, "/api/auth/login", json!({ "username": DEMO_A, "password": "not-it-1" }), "w-1").await;
    assert_eq!(wrong["code"], 401);
    let ghost =
        rest(&app, None, "/api/auth/login", json!({ "username": "ghost", "password": "boo-12345" }), "g-1").await;
    assert_eq!(ghost["code"], 401);
    let token = app.login(DEMO_A).await;

    let log = audit_log(&app, &token, 1, 10).await;
    let entries = items(&log);
    assert_eq!(entries.len(), 2, "the failure on demo-a's account and the success: {log}");
    assert_eq!(
        (str_of(&entries[0], "operation"), str_of(&entries[0], "result"), str_of(&entries[0], "username")),
        ("login", "ok", DEMO_A)
    );
    assert_eq!(
        (str_of(&entries[1], "operation"), str_of(&entries[1], "result"), str_of(&entries[1], "username")),
        ("login", "UNAUTHENTICATED", DEMO_A)
    );
    assert_eq!(entries[1]["requestId"], "w-1");
    assert_eq!(entries[1]["targetId"], "sp001");
    assert_eq!(unowned_sign_ins(&app, "ghost").await, [("login".to_owned(), "UNAUTHENTICATED".to_owned())]);
    let empty = rest(&app, None, "/api/auth/login", json!({ "username": "ghost", "password": "" }), "e-1").await;
    assert_eq!(empty["code"], 400);
    assert_eq!(
        unowned_sign_ins(&app, "ghost").await,
        [("login".to_owned(), "UNAUTHENTICATED".to_owned()), ("login".to_owned(), "BAD_USER_INPUT".to_owned())],
        "a refused input is a failed sign-in too"
    );
}

#[tokio::test]
async fn refresh_and_logout_are_recorded_for_the_provider_whose_tokens_they_are() {
    let app = TestApp::spawn_configured(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await; // reuse at once: no grace (see refresh_retry)
    let (token, refresh) = app.login_pair(DEMO_B).await;
    let refreshed = rest(&app, None, "/api/auth/refresh", json!({ "refreshToken": refresh }), "r-1").await;
    let new_token = refreshed["data"]["token"].as_str().unwrap_or_else(|| panic!("{refreshed}")).to_owned();
    let reused = rest(&app, None, "/api/auth/refresh", json!({ "refreshToken": refresh }), "r-2").await;
    assert_eq!(reused["code"], 401, "a used refresh token: {reused}");
    let (fresh, _) = app.login_pair(DEMO_B).await;
    let logout = rest(&app, None, "/api/auth/logout", json!({ "token": fresh }), "o-1").await;
    assert_eq!(logout["code"], 200, "{logout}");
    let (reader, _) = app.login_pair(DEMO_B).await;
    let _ = (token, new_token);

    let log = audit_log(&app, &reader, 1, 20).await;
    let summary: Vec<(&str, &str)> =
        items(&log).iter().map(|e| (str_of(e, "operation"), str_of(e, "result"))).collect();
    assert_eq!(
        summary,
        [("login", "ok"), ("logout", "ok"), ("login", "ok"), ("refreshToken", "ok"), ("login", "ok")],
        "the reused refresh token names no provider, so it is not in demo-b's log: {log}"
    );
}

#[tokio::test]
async fn the_log_pages_newest_first_and_refuses_bad_pages() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for n in 0..4 {
        let send = "mutation($c: String!) { sendChatMessage(customerId: \"c002\", content: $c) { id } }";
        app.data(&token, send, json!({ "c": format!("第{n}条") })).await;
    }
    let all = audit_log(&app, &token, 1, 100).await;
    assert_eq!(total(&all), 5);
    let second = audit_log(&app, &token, 2, 2).await;
    assert_eq!((second["page"].clone(), second["pageSize"].clone(), total(&second)), (json!(2), json!(2), 5));
    assert_eq!(items(&second)[..], items(&all)[2..4]);
    let body = app.graphql(Some(&token), "{ auditLog(pageSize: 1000) { total } }", json!({})).await;
    assert_error(&body, "BAD_USER_INPUT");
    let body = app.graphql(None, "{ auditLog { total } }", json!({})).await;
    assert_error(&body, "UNAUTHENTICATED");
}
