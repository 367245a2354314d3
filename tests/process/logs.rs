//! The log of a server process run with `LOG_FORMAT=json`: every line one JSON object, one line per
//! request with its request id, the provider once signed in, method, route, status and latency, and
//! no token or password anywhere, whatever the client sent.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn every_request_is_one_json_line_without_secrets() {
    let mut server = ServerProcess::start(&[("LOG_FORMAT", "json")]).await;
    let client = reqwest::Client::new();
    let api = format!("{}/api", server.address);
    let mut sent = 1; // ServerProcess::start's /healthz, once the server listens

    // Sign in over REST (with a request id of the client's own) and over GraphQL.
    let login: Value = client
        .post(format!("{api}/auth/login"))
        .header("x-request-id", "client-chosen-id-1")
        .json(&json!({ "username": DEMO_A, "password": DEMO_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sent += 1;
    let token = login["data"]["token"].as_str().expect("a token").to_owned();
    let refresh_token = login["data"]["refreshToken"].as_str().expect("a refresh token").to_owned();
    let graphql_token = server.login(DEMO_B).await;
    sent += 1;

    // Requests carrying the token in every place a careless log might copy it from.
    let response = client
        .get(format!("{api}/customers?pageSize=1&token={token}"))
        .bearer_auth(&token)
        .header("x-request-id", "client-chosen-id-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    sent += 1;
    let body = server.graphql(Some(&graphql_token), "query Mine { customers(pageSize: 1) { total } }", json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    sent += 1;
    let wrong_password = "wrong-password-7f3a";
    let refused = client
        .post(format!("{api}/auth/login"))
        .json(&json!({ "username": DEMO_A, "password": wrong_password }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    sent += 1;
    let refreshed =
        client.post(format!("{api}/auth/refresh")).json(&json!({ "refreshToken": refresh_token })).send().await;
    assert_eq!(refreshed.unwrap().status(), 200);
    sent += 1;
    let forged = client.get(format!("{api}/customers")).bearer_auth("forged.token.value").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    sent += 1;
    client.get(format!("{}/nowhere", server.address)).send().await.unwrap();
    sent += 1;

    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(30)).await.expect("the server exits after SIGTERM");
    assert!(status.success(), "{status}");

    let lines = server.stdout_lines();
    let mut requests = Vec::new();
    for line in &lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(entry["timestamp"].is_string() && entry["level"].is_string(), "{line}");
        for secret in [token.as_str(), refresh_token.as_str(), graphql_token.as_str(), DEMO_PASSWORD, wrong_password] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
        assert!(!line.contains(TEST_JWT_SECRET), "the JWT secret in the log: {line}");
        if entry["message"] == "request" {
            requests.push(entry);
        }
    }
    assert!(server.stderr_lines().iter().all(|line| line.trim().is_empty()), "{:?}", server.stderr_lines());
    assert_eq!(requests.len(), sent, "one line per request: {requests:#?}");
    for entry in &requests {
        for field in ["request_id", "method", "route", "path", "status", "latency_ms"] {
            assert!(!entry[field].is_null(), "{field} in {entry}");
        }
        assert!(entry["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{entry}");
        assert!(entry["status"].is_u64(), "{entry}");
    }
    let find = |route: &str, status: u64| {
        requests.iter().filter(move |entry| entry["route"] == route && entry["status"] == status).collect::<Vec<_>>()
    };
    let logins = find("/api/auth/login", 200);
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["request_id"], "client-chosen-id-1", "the client's request id is kept");
    assert_eq!(logins[0]["provider_id"], "sp001", "sign-in names the provider");
    assert_eq!(logins[0]["method"], "POST");
    let list = find("/api/customers", 200);
    assert_eq!(list[0]["request_id"], "client-chosen-id-2");
    assert_eq!(list[0]["provider_id"], "sp001");
    assert_eq!(list[0]["path"], "/api/customers", "no query string");
    let graphql = find("/graphql", 200);
    assert!(graphql.iter().any(|entry| entry["provider_id"] == "sp002"), "{graphql:?}");
    let refused = find("/api/auth/login", 401);
    assert!(refused[0]["provider_id"].is_null(), "no provider for a refused sign-in: {}", refused[0]);
    assert!(find("/api/customers", 401)[0]["provider_id"].is_null());
    assert_eq!(find("unmatched", 404)[0]["path"], "/nowhere");
    let generated: Vec<&str> = requests.iter().filter_map(|entry| entry["request_id"].as_str()).collect();
    let unique: std::collections::HashSet<&&str> = generated.iter().collect();
    assert_eq!(unique.len(), generated.len(), "request ids are unique: {generated:?}");
}

#[tokio::test]
async fn the_text_format_is_the_default() {
    let server = ServerProcess::start(&[("LOG_FORMAT", "")]).await;
    reqwest::get(format!("{}/healthz", server.address)).await.unwrap();
    let mut line = None;
    for _ in 0..40 {
        line = server.stdout_lines().into_iter().find(|line| line.contains("route=/healthz"));
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = line.unwrap_or_else(|| panic!("a request line: {:?}", server.stdout_lines()));
    assert!(!line.starts_with('{'), "{line}");
    for field in ["request_id=", "method=GET", "status=200", "latency_ms="] {
        assert!(line.contains(field), "{field} in {line}");
    }
}
