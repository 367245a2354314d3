//! A refresh whose answer was lost, retried (`REFRESH_REUSE_GRACE_SECONDS`): within the window
//! and from the same address the same pair comes back and the session stays signed in; after the
//! window, from another address, or once the new refresh token has been used, it is reuse and the
//! whole family is revoked. The last test loses the answer for real: a proxy between the server
//! and Redis withholds the reply to the rotation script until the server's Redis command timeout
//! has passed, and the client's retry gets a working pair.
//!
//! The client's address is set as a trusted proxy would (`TRUSTED_PROXIES` + `X-Forwarded-For`).

use crate::support::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const HOME: &str = "203.0.113.7";
const ELSEWHERE: &str = "198.51.100.23";

async fn spawn(grace_seconds: &str) -> TestApp {
    TestApp::spawn_configured(&[("TRUSTED_PROXIES", "127.0.0.1"), ("REFRESH_REUSE_GRACE_SECONDS", grace_seconds)]).await
}

/// `POST /api/auth/refresh` from `client`.
async fn refresh_from(app: &Api, refresh_token: &str, client: &str) -> Answer {
    let request = Request::post("/api/auth/refresh", json!({ "refreshToken": refresh_token })).forwarded_for(client);
    app.send(None, &request).await
}

/// The pair a refresh answered (access token, refresh token), or a panic naming what came back.
/// The access token carries its expiry, so equal pairs expire together.
fn pair(answer: &Answer) -> (String, String) {
    assert_eq!(answer.status, 200, "a new pair: {}", answer.body);
    let data = &answer.body["data"];
    (str_of(data, "token").to_owned(), str_of(data, "refreshToken").to_owned())
}

async fn signed_in(app: &Api, token: &str) -> bool {
    app.get(Some(token), "/api/customers").await.status == 200
}

#[tokio::test]
async fn a_refresh_retried_within_the_window_from_the_same_address_gets_the_same_pair_and_stays_signed_in() {
    let app = spawn("30").await;
    let (first_token, refresh) = app.login_pair(DEMO_A).await;
    let first = pair(&refresh_from(&app, &refresh, HOME).await);
    let retried = pair(&refresh_from(&app, &refresh, HOME).await);
    assert_eq!(retried, first, "the very pair the lost answer carried");
    assert!(signed_in(&app, &first.0).await, "its access token works");
    assert!(signed_in(&app, &first_token).await, "the family is not revoked");
    let next = pair(&refresh_from(&app, &first.1, HOME).await);
    assert_ne!(next.1, first.1, "its refresh token rotates in turn");
    assert!(signed_in(&app, &next.0).await);
}

#[tokio::test]
async fn a_refresh_retried_after_the_window_revokes_the_family() {
    let app = spawn("1").await;
    let (first_token, refresh) = app.login_pair(DEMO_A).await;
    let first = pair(&refresh_from(&app, &refresh, HOME).await);
    // Past the one-second window whatever second the first use fell in.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = refresh_from(&app, &refresh, HOME).await;
    assert_eq!((late.status, &late.body["code"]), (401, &json!(401)), "reuse: {}", late.body);
    assert_family_revoked(&app, &[&first_token, &first.0], &first.1).await;
}

#[tokio::test]
async fn a_refresh_retried_from_another_address_revokes_the_family() {
    let app = spawn("30").await;
    let (first_token, refresh) = app.login_pair(DEMO_A).await;
    let first = pair(&refresh_from(&app, &refresh, HOME).await);
    let stolen = refresh_from(&app, &refresh, ELSEWHERE).await;
    assert_eq!(stolen.status, 401, "reuse from another address: {}", stolen.body);
    assert_family_revoked(&app, &[&first_token, &first.0], &first.1).await;
}

#[tokio::test]
async fn a_refresh_retried_once_its_new_refresh_token_was_used_revokes_the_family() {
    let app = spawn("30").await;
    let (_, refresh) = app.login_pair(DEMO_A).await;
    let first = pair(&refresh_from(&app, &refresh, HOME).await);
    let second = pair(&refresh_from(&app, &first.1, HOME).await);
    let replayed = refresh_from(&app, &refresh, HOME).await;
    assert_eq!(replayed.status, 401, "the answer was not lost, so this is reuse: {}", replayed.body);
    assert_family_revoked(&app, &[&first.0, &second.0], &second.1).await;
}

#[tokio::test]
async fn with_the_window_at_zero_an_immediate_retry_revokes_the_family() {
    let app = spawn("0").await;
    let (first_token, refresh) = app.login_pair(DEMO_A).await;
    let first = pair(&refresh_from(&app, &refresh, HOME).await);
    assert_eq!(refresh_from(&app, &refresh, HOME).await.status, 401);
    assert_family_revoked(&app, &[&first_token, &first.0], &first.1).await;
}

async fn assert_family_revoked(app: &TestApp, access_tokens: &[&str], refresh_token: &str) {
    for token in access_tokens {
        let body = app.once_refused_with(token, "UNAUTHENTICATED").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "every access token of the family: {body}");
    }
    let newest = refresh_from(app, refresh_token, HOME).await;
    assert_eq!(newest.status, 401, "the family's newest refresh token: {}", newest.body);
}

/// The Redis the proxy test goes through (on SQLite too: scripts/test starts one).
fn redis_address() -> String {
    let url = std::env::var("TEST_REDIS_URL").or_else(|_| std::env::var("TEST_BUS_REDIS_URL")).unwrap_or_else(|_| {
        panic!("the lost-answer test needs Redis: set TEST_REDIS_URL or TEST_BUS_REDIS_URL (scripts/test does)")
    });
    url.trim_start_matches("redis://").trim_end_matches('/').to_owned()
}

/// A TCP proxy in front of Redis that, once armed, lets the next command naming a refresh-token
/// key through at once and holds Redis's reply to it for `hold` (longer than the server waits).
struct WithholdingProxy {
    port: u16,
    armed: Arc<AtomicBool>,
}

impl WithholdingProxy {
    fn start(upstream: String, hold: Duration) -> WithholdingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let arming = armed.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(redis) = TcpStream::connect(&upstream) else { continue };
                let held = Arc::new(AtomicBool::new(false));
                let (mut to_redis, mut from_client) = (redis.try_clone().unwrap(), client.try_clone().unwrap());
                let (armed, hold_next) = (arming.clone(), held.clone());
                std::thread::spawn(move || {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(read @ 1..) = from_client.read(&mut buffer) {
                        let chunk = &buffer[..read];
                        if chunk.windows(9).any(|w| w == b":refresh:") && armed.swap(false, Ordering::SeqCst) {
                            hold_next.store(true, Ordering::SeqCst);
                        }
                        if to_redis.write_all(chunk).is_err() {
                            break;
                        }
                    }
                });
                let (mut from_redis, mut to_client) = (redis, client);
                std::thread::spawn(move || {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(read @ 1..) = from_redis.read(&mut buffer) {
                        if held.swap(false, Ordering::SeqCst) {
                            std::thread::sleep(hold);
                        }
                        if to_client.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        WithholdingProxy { port, armed }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn withhold_next_rotation(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

fn code_of(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Whether Redis itself (not through the proxy) holds the refresh token as used.
fn used_in_redis(refresh_token: &str) -> bool {
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(refresh_token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let client = redis::Client::open(format!("redis://{}", redis_address())).expect("a Redis URL");
    let mut redis = client.get_connection().expect("Redis answers");
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("pd:*:refresh:{hash}")).query(&mut redis).unwrap();
    assert_eq!(keys.len(), 1, "one key holds the refresh token: {keys:?}");
    let used_at: Option<String> = redis::cmd("HGET").arg(&keys[0]).arg("usedAt").query(&mut redis).unwrap();
    used_at.is_some()
}

async fn refresh_graphql_from(app: &Api, refresh_token: &str, client: &str) -> Value {
    let query = "mutation($r: String!) { refreshToken(refreshToken: $r) { token refreshToken } }";
    let body = json!({ "query": query, "variables": { "r": refresh_token } });
    app.send(None, &Request::post("/graphql", body).forwarded_for(client)).await.body
}

#[tokio::test]
async fn a_rotation_whose_redis_reply_came_after_the_timeout_is_answered_on_the_clients_retry() {
    let proxy = WithholdingProxy::start(redis_address(), Duration::from_millis(1500));
    let redis = proxy.url();
    let app = TestApp::spawn_configured(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_TIMEOUT_MS", "300"),
    ])
    .await;
    let (first_token, refresh) = app.login_pair(DEMO_A).await;
    // A rotation in another session first, so Redis has the script and the next one is one call.
    let (_, warm_up) = app.login_pair(DEMO_A).await;
    pair(&refresh_from(&app, &warm_up, HOME).await);

    proxy.withhold_next_rotation();
    let lost = refresh_graphql_from(&app, &refresh, HOME).await;
    assert_eq!(code_of(&lost), Some("UNAVAILABLE"), "the server gave up waiting for Redis: {lost}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(used_in_redis(&refresh), "yet the script ran: the refresh token is marked used");

    // A client retries what failed; Redis's connection may need a moment to recover first.
    let mut retried = refresh_graphql_from(&app, &refresh, HOME).await;
    for _ in 0..20 {
        if code_of(&retried) != Some("UNAVAILABLE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        retried = refresh_graphql_from(&app, &refresh, HOME).await;
    }
    let pair = &retried["data"]["refreshToken"];
    let (token, next) = (str_of(pair, "token").to_owned(), str_of(pair, "refreshToken").to_owned());
    assert!(signed_in(&app, &token).await, "the retry's access token works: {retried}");
    assert!(signed_in(&app, &first_token).await, "and the family was not revoked");
    let rotated = refresh_graphql_from(&app, &next, HOME).await;
    assert!(rotated["data"]["refreshToken"]["token"].is_string(), "its refresh token works: {rotated}");
}
