//! Signing in, tokens and signing out (spec 3.1, 6.1), through the real GraphQL endpoint.

use crate::support::*;
use base64::Engine;
use serde_json::{json, Value};

const ME: &str = "{ me { id username } }";
const LOGIN: &str = "mutation($u: String!, $p: String!) {
    login(username: $u, password: $p) { token refreshToken expiresAt userInfo { id name contactPerson phone email region } }
}";
const REFRESH: &str = "mutation($r: String!) { refreshToken(refreshToken: $r) { token refreshToken expiresAt } }";
const LOGOUT: &str = "mutation($t: String) { logout(token: $t) { success } }";

async fn login_with(app: &TestApp, username: &str, password: &str) -> Value {
    app.graphql(None, LOGIN, json!({ "u": username, "p": password })).await
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A token signed with the server's own secret, with the given claims.
fn forge(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims(issued: i64, expires: i64) -> Value {
    json!({
        "sub": "sp001", "jti": format!("forged{issued}"), "fam": "forged-family",
        "iss": "provider-desk", "aud": "provider-desk-api", "iat": issued, "nbf": issued, "exp": expires,
    })
}

fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn login_returns_a_token_a_refresh_token_and_the_providers_profile() {
    let app = TestApp::spawn().await;
    let body = login_with(&app, DEMO_A, DEMO_PASSWORD).await;
    let login = &body["data"]["login"];
    assert!(login["token"].as_str().unwrap().split('.').count() == 3, "a JWT: {body}");
    assert!(login["refreshToken"].as_str().unwrap().len() >= 32);
    assert_eq!(login["userInfo"]["id"], "sp001");
    for field in ["name", "contactPerson", "phone", "email", "region"] {
        assert!(!login["userInfo"][field].as_str().unwrap().is_empty(), "{field}");
    }
    let expires = chrono::DateTime::parse_from_rfc3339(login["expiresAt"].as_str().unwrap()).unwrap();
    let hours = (expires.timestamp() - now_seconds()) as f64 / 3600.0;
    assert!((23.9..=24.1).contains(&hours), "the access token lives 24 hours, not {hours}");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let wrong_password = login_with(&app, DEMO_A, "not-the-password").await;
    let unknown_user = login_with(&app, "nobody-here", DEMO_PASSWORD).await;
    assert_error(&wrong_password, "UNAUTHENTICATED");
    assert_error(&unknown_user, "UNAUTHENTICATED");
    assert_eq!(error_message(&wrong_password), error_message(&unknown_user));
}

#[tokio::test]
async fn passwords_longer_than_bcrypt_can_check_are_refused_not_truncated() {
    let app = TestApp::spawn().await;
    let long = format!("{DEMO_PASSWORD}{}", "x".repeat(80));
    let body = login_with(&app, DEMO_A, &long).await;
    assert_error(&body, "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "password");
}

#[tokio::test]
async fn empty_credentials_are_bad_input() {
    let app = TestApp::spawn().await;
    assert_error(&login_with(&app, "", DEMO_PASSWORD).await, "BAD_USER_INPUT");
    assert_error(&login_with(&app, DEMO_A, "").await, "BAD_USER_INPUT");
}

#[tokio::test]
async fn requests_without_a_token_are_unauthenticated() {
    let app = TestApp::spawn().await;
    assert_error(&app.graphql(None, ME, json!({})).await, "UNAUTHENTICATED");
    assert_error(&app.graphql(None, "{ customers { total } }", json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_malformed_authorization_header_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Authorization", format!("Token {token}"))
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_error(&body, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn().await;
    let issued = now_seconds() - 25 * 3600;
    let token = forge(claims(issued, issued + 24 * 3600), TEST_JWT_SECRET);
    assert_error(&app.graphql(Some(&token), ME, json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_signed_with_the_servers_secret_and_valid_claims_is_accepted() {
    // The control for the forged-token tests below: only the property under test differs.
    let app = TestApp::spawn().await;
    let token = forge(claims(now_seconds(), now_seconds() + 3600), TEST_JWT_SECRET);
    assert_eq!(app.data(&token, ME, json!({})).await["me"]["id"], "sp001");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_refused() {
    let app = TestApp::spawn().await;
    let token = forge(claims(now_seconds(), now_seconds() + 3600), "some-other-secret-that-is-also-long-enough");
    assert_error(&app.graphql(Some(&token), ME, json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_for_another_audience_or_issuer_is_refused() {
    let app = TestApp::spawn().await;
    let mut wrong_audience = claims(now_seconds(), now_seconds() + 3600);
    wrong_audience["aud"] = json!("another-api");
    let mut wrong_issuer = claims(now_seconds(), now_seconds() + 3600);
    wrong_issuer["iss"] = json!("someone-else");
    for claims in [wrong_audience, wrong_issuer] {
        let token = forge(claims, TEST_JWT_SECRET);
        assert_error(&app.graphql(Some(&token), ME, json!({})).await, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("sp002");
    parts[1] = base64url(payload.to_string().as_bytes());
    let tampered = parts.join(".");
    assert_error(&app.graphql(Some(&tampered), ME, json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let app = TestApp::spawn().await;
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(claims(now_seconds(), now_seconds() + 3600).to_string().as_bytes());
    for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
        assert_error(&app.graphql(Some(&token), ME, json!({})).await, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn after_logout_the_token_is_refused_everywhere() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let other_session = app.login(DEMO_A).await;
    let body = app.graphql(Some(&token), LOGOUT, json!({})).await;
    assert_eq!(body["data"]["logout"]["success"], true, "{body}");
    assert_error(&app.graphql(Some(&token), ME, json!({})).await, "UNAUTHENTICATED");
    assert_error(&app.graphql(Some(&token), "{ tickets { total } }", json!({})).await, "UNAUTHENTICATED");
    // Signing out ends that session only.
    assert_eq!(app.data(&other_session, ME, json!({})).await["me"]["id"], "sp001");
}

#[tokio::test]
async fn logout_accepts_the_token_in_its_argument_as_the_rest_endpoint_sends_it() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let body = app.graphql(None, LOGOUT, json!({ "t": token })).await;
    assert_eq!(body["data"]["logout"]["success"], true, "{body}");
    assert_error(&app.graphql(Some(&token), ME, json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_also_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let (token, refresh) = app.login_pair(DEMO_A).await;
    app.graphql(Some(&token), LOGOUT, json!({})).await;
    assert_error(&app.graphql(None, REFRESH, json!({ "r": refresh })).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_revoked_token_stays_revoked_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), true).await;
    let token = app.login(DEMO_A).await;
    app.graphql(Some(&token), LOGOUT, json!({})).await;
    app.stop().await;
    let app = TestApp::spawn_in(dir.path(), true).await;
    assert_error(&app.graphql(Some(&token), ME, json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn refreshing_rotates_both_tokens() {
    let app = TestApp::spawn().await;
    let (_, refresh) = app.login_pair(DEMO_A).await;
    let body = app.graphql(None, REFRESH, json!({ "r": refresh })).await;
    let pair = &body["data"]["refreshToken"];
    let (token, next_refresh) = (pair["token"].as_str().unwrap(), pair["refreshToken"].as_str().unwrap());
    assert_ne!(next_refresh, refresh);
    assert_eq!(app.data(token, ME, json!({})).await["me"]["id"], "sp001");
    // The new refresh token works in turn.
    let body = app.graphql(None, REFRESH, json!({ "r": next_refresh })).await;
    assert!(body["data"]["refreshToken"]["token"].is_string(), "{body}");
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_its_whole_family() {
    let app = TestApp::spawn_configured(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await; // reuse at once: no grace (see refresh_retry)
    let (first_token, refresh) = app.login_pair(DEMO_A).await;
    let body = app.graphql(None, REFRESH, json!({ "r": refresh })).await;
    let rotated_token = body["data"]["refreshToken"]["token"].as_str().unwrap().to_owned();
    let rotated_refresh = body["data"]["refreshToken"]["refreshToken"].as_str().unwrap().to_owned();

    // The old refresh token comes back: someone copied it.
    assert_error(&app.graphql(None, REFRESH, json!({ "r": refresh })).await, "UNAUTHENTICATED");

    // Everything issued in that family stops working.
    assert_error(&app.graphql(None, REFRESH, json!({ "r": rotated_refresh })).await, "UNAUTHENTICATED");
    assert_error(&app.graphql(Some(&rotated_token), ME, json!({})).await, "UNAUTHENTICATED");
    assert_error(&app.graphql(Some(&first_token), ME, json!({})).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_unknown_or_empty_refresh_token_is_refused() {
    let app = TestApp::spawn().await;
    assert_error(&app.graphql(None, REFRESH, json!({ "r": "not-a-token" })).await, "UNAUTHENTICATED");
    assert_error(&app.graphql(None, REFRESH, json!({ "r": "  " })).await, "BAD_USER_INPUT");
}

#[tokio::test]
async fn tokens_survive_a_restart_because_the_generated_secret_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_string_lossy().into_owned();
    let config = || {
        provider_desk::config::Config::from_lookup(|name| match name {
            "PORT" => Some("0".to_owned()),
            "DATA_DIR" => Some(dir_text.clone()),
            "BCRYPT_COST" => Some("4".to_owned()),
            _ => None,
        })
        .unwrap()
    };
    let services = provider_desk::app::build_services(&config()).await.unwrap();
    provider_desk::seed::seed_demo_if_empty(&services).await.unwrap();
    let (_, tokens) = services.auth.login(DEMO_A, DEMO_PASSWORD, &Default::default()).await.unwrap();
    drop(services);
    let secret = std::fs::read_to_string(dir.path().join("jwt-secret")).unwrap();
    assert!(secret.len() >= 32);
    let services = provider_desk::app::build_services(&config()).await.unwrap();
    let session = services.auth.authenticate(&tokens.token).await.unwrap();
    assert_eq!(session.provider_id.as_str(), "sp001");
}
