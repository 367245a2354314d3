//! Operational behaviour: health endpoints, and a store that survives restarts.

use crate::support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_and_readyz_answer_ok_while_the_store_is_reachable() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["status"] == "ok" || body["status"] == "ready", "{path}: {body}");
    }
}

#[tokio::test]
async fn what_was_written_is_there_after_a_restart_and_demo_data_is_not_seeded_twice() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), true).await;
    let token = app.login(DEMO_A).await;
    let created = app
        .data(
            &token,
            r#"mutation { createTicket(customerId: "c001", title: "重启后仍在", content: "验证数据持久化", type: SYSTEM_ISSUE) { id } }"#,
            json!({}),
        )
        .await;
    let ticket_id = created["createTicket"]["id"].as_str().unwrap().to_owned();
    app.stop().await;

    let app = TestApp::spawn_in(dir.path(), true).await;
    let token = app.login(DEMO_A).await;
    let data = app
        .data(
            &token,
            "query($id: ID!) { ticket(id: $id) { title } tickets { total } customers { total } }",
            json!({ "id": ticket_id }),
        )
        .await;
    assert_eq!(data["ticket"]["title"], "重启后仍在");
    assert_eq!(data["tickets"]["total"], 37, "36 seeded tickets plus the new one, seeded once");
    assert_eq!(data["customers"]["total"], 30);
}

#[tokio::test]
async fn with_seeding_off_an_empty_store_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), false).await;
    let body = app
        .graphql(None, "mutation { login(username: \"demo-a\", password: \"demo12345\") { token } }", json!({}))
        .await;
    assert_error(&body, "UNAUTHENTICATED");
}

#[tokio::test]
async fn mutations_are_not_accepted_over_get() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", "mutation { markAllNotificationsRead { markedCount } }")])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}
