//! A provider locked out while signed in: the server that deactivates it refuses its tokens and
//! closes its WebSockets at once; a status changed behind the server's back (another process, the
//! database edited) is noticed within the status cache's 2 s, by the token check and by refresh.

use crate::support::*;
use provider_desk::domain::{new_id, ProviderStatus, ServiceProvider};
use serde_json::json;

const CUSTOMERS: &str = "{ customers { total } }";
const REFRESH: &str = "mutation($r: String!) { refreshToken(refreshToken: $r) { token } }";

const USERNAME: &str = "lock-me";
const PASSWORD: &str = "lockout-pass-1";

/// Adds an active provider and signs it in. Not a demo provider: with Redis, tokens are kept by
/// provider id, and the demo providers' ids are the same in every test's database.
async fn signed_in_provider(app: &TestApp) -> (String, String) {
    let now = chrono::Utc::now();
    let provider = ServiceProvider {
        id: new_id("sp"),
        username: USERNAME.to_owned(),
        name: "锁定测试服务商".to_owned(),
        contact_person: String::new(),
        phone: String::new(),
        email: "lock@example.com".to_owned(),
        region: String::new(),
        status: ProviderStatus::Active,
        created_at: now,
        updated_at: now,
    };
    let hash = app.services.auth.hash_password(PASSWORD).await.unwrap();
    app.services.store.insert_provider(&provider, &hash).await.unwrap();
    app.login_with(USERNAME, PASSWORD).await
}

#[tokio::test]
async fn the_server_that_deactivates_a_provider_refuses_its_token_and_closes_its_websockets_at_once() {
    let app = TestApp::spawn().await;
    let (token, refresh_token) = signed_in_provider(&app).await;
    assert!(app.graphql(Some(&token), CUSTOMERS, json!({})).await["errors"].is_null());
    let mut subscriber = WsClient::connect(&app, &token).await;
    subscriber.subscribe("live", "subscription { notifications { cursor } }", json!({})).await;

    let ended = app.services.auth.set_provider_status(USERNAME, ProviderStatus::Inactive).await.unwrap();
    assert_eq!(ended, 1);
    assert_eq!(subscriber.expect_close().await, 4403, "the open connection closes at once");
    let body = app.graphql(Some(&token), CUSTOMERS, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "the token is refused at once, saying why: {body}");
    assert_eq!(error_message(&body), "账号已停用，请联系管理员");
    let mut again = WsClient::open(&app, TRANSPORT_WS).await;
    again.init_with(json!({ "Authorization": format!("Bearer {token}") })).await;
    assert_eq!(again.expect_close().await, 4403, "nor does it open a new connection");
    let body = app.graphql(None, REFRESH, json!({ "r": refresh_token })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "its session ended with the deactivation: {body}");

    app.services.auth.set_provider_status(USERNAME, ProviderStatus::Active).await.unwrap();
    let (fresh, _) = app.login_with(USERNAME, PASSWORD).await;
    assert!(app.graphql(Some(&fresh), CUSTOMERS, json!({})).await["errors"].is_null(), "back in once activated");
    let body = app.graphql(Some(&token), CUSTOMERS, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "the ended session stays ended: {body}");
}

#[tokio::test]
async fn a_provider_set_inactive_behind_the_servers_back_has_its_token_and_refresh_token_refused() {
    let app = TestApp::spawn().await;
    let (token, refresh_token) = signed_in_provider(&app).await;
    let other = app.login(DEMO_B).await;
    assert!(app.graphql(Some(&token), CUSTOMERS, json!({})).await["errors"].is_null());

    // Written straight to the store: no session is revoked, only the status differs.
    let stored = app.services.store.set_provider_status(USERNAME, ProviderStatus::Inactive, chrono::Utc::now());
    assert!(stored.await.unwrap());
    let body = app.once_refused_with(&token, "FORBIDDEN").await;
    assert_eq!(error_code(&body), "FORBIDDEN", "the token is refused within the cache's 2 s: {body}");
    let rest = app.get(Some(&token), "/api/customers").await;
    assert_eq!((rest.status, &rest.body["code"]), (403, &json!(403)), "on REST too: {}", rest.text);
    let body = app.graphql(None, REFRESH, json!({ "r": refresh_token })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "the refresh token renews nothing: {body}");
    assert!(app.graphql(Some(&other), CUSTOMERS, json!({})).await["errors"].is_null(), "demo-b is untouched");

    // Refused, the refresh ended its session: activating the provider again does not revive it.
    let stored = app.services.store.set_provider_status(USERNAME, ProviderStatus::Active, chrono::Utc::now());
    assert!(stored.await.unwrap());
    let (fresh, _) = app.login_with(USERNAME, PASSWORD).await;
    assert!(app.graphql(Some(&fresh), CUSTOMERS, json!({})).await["errors"].is_null());
    let body = app.once_refused_with(&token, "UNAUTHENTICATED").await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}
