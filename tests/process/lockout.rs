//! Locking a provider out from the command line while a server runs beside it:
//! `deactivate-provider`, `activate-provider`, `list-providers` and `end-sessions`. The server hears
//! nothing of the command (it is another process): it notices through its short caches (2 s) and
//! the session check at each WebSocket ping (every second here).

use crate::cli::{can_sign_in, stderr, stdout, Workspace};
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const CUSTOMERS: &str = "{ customers { total } }";
const REFRESH: &str = "mutation($r: String!) { refreshToken(refreshToken: $r) { token } }";

/// A server on the workspace's store, with demo data, checking open WebSockets every second.
async fn server_beside(workspace: &Workspace) -> TestApp {
    let config = test_config(&workspace.backend, workspace.path(), true, &[("WS_PING_SECONDS", "1")]);
    TestApp::spawn_with(config, Backend::from_env()).await
}

/// Adds a provider with the command line. Not a demo provider: with Redis, tokens are kept by
/// provider id, and the demo providers' ids are the same in every test's database.
fn new_provider(workspace: &Workspace, username: &str) {
    let create = ["create-provider", "--username", username, "--name", "锁定测试服务商", "--email", "lock@example.com"];
    let output = workspace.run(&[&create[..], &["--password-stdin"]].concat(), Some(PASSWORD));
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
}

const PASSWORD: &str = "lockout-pass-1";

async fn sign_in_error(app: &TestApp, username: &str) -> Value {
    let login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }";
    app.graphql(None, login, json!({ "u": username, "p": PASSWORD })).await
}

async fn operations(app: &TestApp, token: &str) -> Vec<String> {
    let log = app.data(token, "{ auditLog(pageSize: 50) { items { operation result } } }", json!({})).await;
    items(&log["auditLog"])
        .iter()
        .filter(|entry| entry["result"] == "ok")
        .map(|entry| str_of(entry, "operation").to_owned())
        .collect()
}

#[tokio::test]
async fn deactivate_provider_locks_a_signed_in_provider_out_of_a_running_server_until_activate_provider() {
    let workspace = Workspace::new();
    let app = server_beside(&workspace).await;
    new_provider(&workspace, "lock-me");
    let (token, refresh_token) = app.login_with("lock-me", PASSWORD).await;
    let other = app.login(DEMO_B).await;
    assert!(app.graphql(Some(&token), CUSTOMERS, json!({})).await["errors"].is_null());
    let mut subscriber = WsClient::connect(&app, &token).await;
    subscriber.subscribe("live", "subscription { notifications { cursor } }", json!({})).await;

    let deactivate = workspace.run(&["deactivate-provider", "lock-me"], None);
    assert!(deactivate.status.success(), "{}{}", stdout(&deactivate), stderr(&deactivate));
    assert!(
        stdout(&deactivate).contains("provider lock-me deactivated; 1 signed-in session(s) ended"),
        "{}",
        stdout(&deactivate)
    );

    let closed = tokio::time::timeout(Duration::from_secs(10), subscriber.expect_close()).await;
    assert_eq!(closed.ok(), Some(4403), "the provider's live connection closes within 10 s");
    let body = app.once_refused_with(&token, "FORBIDDEN").await;
    assert_eq!(error_code(&body), "FORBIDDEN", "the provider's access token is refused, and says why: {body}");
    let rest = app.get(Some(&token), "/api/customers").await;
    assert_eq!((rest.status, &rest.body["code"]), (403, &json!(403)), "on REST too: {}", rest.text);
    let body = app.graphql(None, REFRESH, json!({ "r": refresh_token })).await;
    assert!(!body["errors"].is_null(), "its refresh token renews nothing: {body}");
    assert_eq!(error_code(&sign_in_error(&app, "lock-me").await), "FORBIDDEN", "nor may it sign in again");
    assert!(app.graphql(Some(&other), CUSTOMERS, json!({})).await["errors"].is_null(), "demo-b is untouched");

    let listed = workspace.run(&["list-providers"], None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let lines: Vec<Value> =
        stdout(&listed).lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect();
    let statuses: Vec<(&str, &str)> = lines.iter().map(|p| (str_of(p, "username"), str_of(p, "status"))).collect();
    let expected = vec![(DEMO_A, "active"), (DEMO_B, "active"), ("lock-me", "inactive")];
    assert_eq!(statuses, expected, "{}", stdout(&listed));

    let activate = workspace.run(&["activate-provider", "lock-me"], None);
    assert!(activate.status.success(), "{}", stderr(&activate));
    assert!(stdout(&activate).contains("provider lock-me activated"), "{}", stdout(&activate));
    assert!(can_sign_in(&app, "lock-me", PASSWORD).await, "signing in works again at once");
    let (fresh, _) = app.login_with("lock-me", PASSWORD).await;
    let body = app.once_refused_with(&token, "UNAUTHENTICATED").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "the sessions deactivation ended stay ended: {body}");
    let done = operations(&app, &fresh).await;
    for operation in ["deactivateProvider", "activateProvider"] {
        assert!(done.iter().any(|done| done == operation), "{operation} is in the provider's audit log: {done:?}");
    }
    app.stop().await;

    let unknown = workspace.run(&["deactivate-provider", "nobody-here"], None);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no provider has the username"), "{}", stderr(&unknown));
}

#[tokio::test]
async fn list_providers_prints_one_json_line_per_provider_without_its_password_hash() {
    let workspace = Workspace::new();
    let app = server_beside(&workspace).await;
    let listed = workspace.run(&["list-providers"], None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let lines: Vec<Value> =
        stdout(&listed).lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&listed));
    for (line, username) in lines.iter().zip([DEMO_A, DEMO_B]) {
        let mut keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec!["createdAt", "id", "name", "status", "username"], "{line}");
        assert_eq!((str_of(line, "username"), str_of(line, "status")), (username, "active"));
        assert!(str_of(line, "id").starts_with("sp") && has_chinese(str_of(line, "name")), "{line}");
        time(line, "createdAt");
    }
    assert!(!stdout(&listed).contains("$2"), "no bcrypt hash: {}", stdout(&listed));
    app.stop().await;
}

#[tokio::test]
async fn end_sessions_signs_a_provider_out_everywhere_and_its_password_still_works() {
    let workspace = Workspace::new();
    let app = server_beside(&workspace).await;
    new_provider(&workspace, "end-me");
    let sessions = [app.login_with("end-me", PASSWORD).await, app.login_with("end-me", PASSWORD).await];
    let mut subscriber = WsClient::connect(&app, &sessions[0].0).await;
    subscriber.subscribe("live", "subscription { notifications { cursor } }", json!({})).await;

    let end = workspace.run(&["end-sessions", "end-me"], None);
    assert!(end.status.success(), "{}{}", stdout(&end), stderr(&end));
    assert!(stdout(&end).contains("2 signed-in session(s) of end-me ended"), "{}", stdout(&end));

    let closed = tokio::time::timeout(Duration::from_secs(10), subscriber.expect_close()).await;
    assert_eq!(closed.ok(), Some(4403), "the session's live connection closes within 10 s");
    for (token, refresh_token) in &sessions {
        let body = app.once_refused_with(token, "UNAUTHENTICATED").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "an access token from before is refused: {body}");
        let body = app.graphql(None, REFRESH, json!({ "r": refresh_token })).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "so is its refresh token: {body}");
    }
    let (fresh, _) = app.login_with("end-me", PASSWORD).await;
    assert!(app.graphql(Some(&fresh), CUSTOMERS, json!({})).await["errors"].is_null(), "signing in works");
    assert!(operations(&app, &fresh).await.iter().any(|done| done == "endSessions"), "audited");
    app.stop().await;

    let unknown = workspace.run(&["end-sessions", "nobody-here"], None);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no provider has the username"), "{}", stderr(&unknown));
}
