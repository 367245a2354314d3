//! Abuse protection through the real server (spec 6.3): rate limits per client IP and per
//! provider, failed sign-ins slowed then refused, automatic bans, the deny list, the client's
//! address behind a trusted proxy, GraphQL limits set low, subscriptions per connection, the
//! request deadline, and limits shared by two servers over Redis. Each test sets its limits low
//! through the configuration; the defaults are far above anything the rest of the suite sends.
//!
//! On `TEST_BACKEND=mongo` the servers use Redis (`REDIS_URL`), so the Redis limiter is the one
//! tested there; on SQLite the in-process one.

use crate::support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn call(app: &TestApp, method: &'static str, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
    call_from(app, method, path, token, body, None).await
}

/// A request, optionally saying (through `X-Forwarded-For`) that it was forwarded for `client`.
async fn call_from(
    app: &TestApp,
    method: &'static str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    forwarded_for: Option<&str>,
) -> Answer {
    let mut request = Request::new(method, path);
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(client) = forwarded_for {
        request = request.forwarded_for(client);
    }
    app.send(token, &request).await
}

/// A REST refusal: 429, the envelope's code 429, a Chinese message, data null, a Retry-After.
fn assert_rest_limited(answer: &Answer, context: &str) -> u64 {
    assert_eq!(answer.status, 429, "{context}: {}", answer.body);
    assert_eq!(answer.body["code"], 429, "{context}: {}", answer.body);
    assert!(answer.body["data"].is_null(), "{context}: {}", answer.body);
    assert!(has_chinese(answer.body["message"].as_str().unwrap_or_default()), "{context}: {}", answer.body);
    answer.retry_after()
}

fn login_body(username: &str, password: &str) -> Value {
    json!({ "username": username, "password": password })
}

const GRAPHQL_LOGIN: &str = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }";

#[tokio::test]
async fn requests_over_the_per_ip_rate_are_refused_with_429_and_retry_after_and_health_checks_never_are() {
    let app = TestApp::spawn_configured(&[
        ("RATE_LIMIT_IP_PER_MINUTE", "6"),
        ("RATE_LIMIT_IP_BURST", "4"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
    ])
    .await;
    for n in 0..4 {
        let answer = call(&app, "GET", "/api/customers", None, None).await;
        assert_eq!(answer.status, 401, "request {n} is within the burst (and has no token)");
    }
    let refused = call(&app, "GET", "/api/customers", None, None).await;
    let wait = assert_rest_limited(&refused, "the fifth request");
    assert!((1..=10).contains(&wait), "one request's worth of waiting (10 s at 6 a minute), not {wait}");

    let graphql = call(&app, "POST", "/graphql", None, Some(json!({ "query": "{ me { id } }" }))).await;
    assert_eq!(graphql.status, 429, "{}", graphql.body);
    assert_eq!(graphql.body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{}", graphql.body);
    assert!(graphql.body["errors"][0]["extensions"]["retryAfter"].as_u64().is_some(), "{}", graphql.body);
    assert!(graphql.body["data"].is_null());
    graphql.retry_after();

    for path in ["/healthz", "/readyz"] {
        assert_eq!(call(&app, "GET", path, None, None).await.status, 200, "{path} is never limited");
    }
}

#[tokio::test]
async fn the_inbound_webhooks_have_their_own_rate_per_address() {
    let app = TestApp::spawn_configured(&[
        ("CS_WEBHOOK_SECRET", "a-secret-of-the-pc-customer-service-system"),
        ("RATE_LIMIT_IP_PER_MINUTE", "60"),
        ("RATE_LIMIT_IP_BURST", "2"),
        ("RATE_LIMIT_WEBHOOK_PER_MINUTE", "60"),
        ("RATE_LIMIT_WEBHOOK_BURST", "5"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
    ])
    .await;
    let statuses = |answers: &[Answer]| answers.iter().map(|answer| answer.status).collect::<Vec<_>>();
    let mut api = Vec::new();
    for _ in 0..3 {
        api.push(call(&app, "GET", "/api/docs", None, None).await);
    }
    assert_eq!(statuses(&api), [200, 200, 429], "the API's rate for the address");
    // The same address as a partner system: unsigned deliveries are refused for their signature
    // (401), not for the API's spent rate, until the webhooks' own burst is spent.
    let mut webhooks = Vec::new();
    for _ in 0..6 {
        webhooks.push(call(&app, "POST", "/integrations/cs/messages", None, Some(json!({}))).await);
    }
    assert_eq!(statuses(&webhooks), [401, 401, 401, 401, 401, 429], "{:?}", webhooks.last().map(|a| &a.body));
    assert!(webhooks[5].retry_after() >= 1);
}

#[tokio::test]
async fn a_provider_is_limited_from_every_address_and_another_provider_is_not() {
    let app = TestApp::spawn_configured(&[
        ("RATE_LIMIT_PROVIDER_PER_MINUTE", "6"),
        ("RATE_LIMIT_PROVIDER_BURST", "3"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    let other = app.login(DEMO_B).await;
    let clients = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
    for client in clients {
        let answer = call_from(&app, "GET", "/api/customers", Some(&token), None, Some(client)).await;
        assert_eq!(answer.status, 200, "from {client}: {}", answer.body);
    }
    let refused = call_from(&app, "GET", "/api/customers", Some(&token), None, Some("198.51.100.4")).await;
    assert_rest_limited(&refused, "demo-a's fourth request, from a fourth address");
    let graphql = call(&app, "POST", "/graphql", Some(&token), Some(json!({ "query": "{ me { id } }" }))).await;
    assert_eq!(graphql.body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{}", graphql.body);
    assert_eq!(call(&app, "GET", "/api/customers", Some(&other), None).await.status, 200, "demo-b is not limited");
}

#[tokio::test]
async fn failed_sign_ins_of_one_username_are_slowed_then_refused_even_with_the_right_password() {
    let app = TestApp::spawn_configured(&[
        ("LOGIN_SLOW_AFTER_FAILURES", "2"),
        ("LOGIN_FAILURE_DELAY_MS", "2000"),
        ("LOGIN_MAX_FAILURES_PER_USERNAME", "4"),
        ("LOGIN_FAILURE_WINDOW_SECONDS", "120"),
    ])
    .await;
    let mut took = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let answer = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, "wrong-password"))).await;
        took.push(started.elapsed());
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    // A step long enough that a busy machine's slow answer is not mistaken for one (a CI run
    // under load answered an undelayed failure in 423 ms).
    let step = Duration::from_millis(2000);
    assert!(took[0] < step && took[1] < step, "the first two failures wait no step: {took:?}");
    assert!(took[2] >= step, "the third failure waits a step: {took:?}");
    assert!(took[3] >= 2 * step, "the fourth waits two: {took:?}");

    let refused = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, DEMO_PASSWORD))).await;
    let wait = assert_rest_limited(&refused, "the right password after four failures");
    assert!((60..=120).contains(&wait), "until the window has passed, not {wait} s");
    let graphql = app.graphql(None, GRAPHQL_LOGIN, json!({ "u": DEMO_A, "p": DEMO_PASSWORD })).await;
    assert_error(&graphql, "RATE_LIMITED");
    assert!(graphql["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| s >= 60), "{graphql}");

    let other = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_B, DEMO_PASSWORD))).await;
    assert_eq!(other.status, 200, "another username signs in from the same address: {}", other.body);
}

#[tokio::test]
async fn a_success_forgives_the_usernames_failures() {
    let app =
        TestApp::spawn_configured(&[("LOGIN_SLOW_AFTER_FAILURES", "0"), ("LOGIN_MAX_FAILURES_PER_USERNAME", "3")])
            .await;
    for round in 0..3 {
        for _ in 0..2 {
            let answer = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, "nope-nope"))).await;
            assert_eq!(answer.status, 401, "round {round}");
        }
        let answer = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, DEMO_PASSWORD))).await;
        assert_eq!(answer.status, 200, "round {round}: two failures and a success: {}", answer.body);
    }
}

#[tokio::test]
async fn many_usernames_failing_from_one_address_close_sign_in_for_that_address() {
    let app =
        TestApp::spawn_configured(&[("LOGIN_SLOW_AFTER_FAILURES", "0"), ("LOGIN_MAX_FAILURES_PER_IP", "3")]).await;
    for user in ["alice", "bob", "carol"] {
        let answer = call(&app, "POST", "/api/auth/login", None, Some(login_body(user, "guess-1234"))).await;
        assert_eq!(answer.status, 401, "{user}");
    }
    let refused = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, DEMO_PASSWORD))).await;
    assert_rest_limited(&refused, "a fourth username from the same address");
}

#[tokio::test]
async fn a_client_that_keeps_hitting_the_limit_is_banned_for_a_while() {
    let app = TestApp::spawn_configured(&[
        ("RATE_LIMIT_IP_PER_MINUTE", "60"),
        ("RATE_LIMIT_IP_BURST", "2"),
        ("AUTO_BAN_AFTER_REFUSALS", "3"),
        ("AUTO_BAN_WINDOW_SECONDS", "60"),
        ("AUTO_BAN_SECONDS", "600"),
    ])
    .await;
    let mut waits = Vec::new();
    for _ in 0..6 {
        let answer = call(&app, "GET", "/api/docs", None, None).await;
        if answer.status == 429 {
            waits.push(answer.retry_after());
        } else {
            assert_eq!(answer.status, 200);
        }
    }
    assert!(waits.len() >= 3, "refused after the burst: {waits:?}");
    assert!(waits[0] <= 2, "at first, one request's worth of waiting: {waits:?}");
    assert!(waits[waits.len() - 1] >= 500, "then banned for AUTO_BAN_SECONDS: {waits:?}");
    // Waiting out the rate does not lift the ban.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let banned = call(&app, "GET", "/api/customers", None, None).await;
    assert!(assert_rest_limited(&banned, "after the rate's interval") >= 500);
    assert_eq!(call(&app, "GET", "/healthz", None, None).await.status, 200);
}

#[tokio::test]
async fn refusals_bans_and_the_deny_list_are_counted_in_the_metrics() {
    // The abusers come through a trusted proxy; the scrape comes from 127.0.0.1 itself.
    let app = TestApp::spawn_configured(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("IP_DENY_LIST", "203.0.113.66"),
        ("RATE_LIMIT_IP_PER_MINUTE", "60"),
        ("RATE_LIMIT_IP_BURST", "2"),
        ("AUTO_BAN_AFTER_REFUSALS", "3"),
        ("AUTO_BAN_SECONDS", "600"),
    ])
    .await;
    let before = scrape(&app).await;
    let abuser = Some("203.0.113.5");
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(call_from(&app, "GET", "/api/docs", None, None, abuser).await.status);
    }
    assert_eq!(statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses[2..].iter().all(|status| *status == 429), "{statuses:?}");
    assert_eq!(call_from(&app, "GET", "/api/docs", None, None, Some("203.0.113.66")).await.status, 403);

    let after = scrape(&app).await;
    let grew = |series: &str| metric(&after, series) - metric(&before, series);
    // Other tests of this binary share the process's registry: counts only grow by at least ours.
    assert!(grew("rate_limit_refusals_total{scope=\"ip\"}") >= 3.0, "{after}");
    assert!(grew("ip_bans_total") >= 1.0, "{after}");
    assert!(grew("rate_limit_refusals_total{scope=\"ban\"}") >= 1.0, "requests of the banned client: {after}");
    assert!(grew("rate_limit_refusals_total{scope=\"deny_list\"}") >= 1.0, "{after}");
}

/// A POST of `body` as it is (not necessarily JSON), forwarded for `client`; the status and the
/// body read as JSON (null if it is not).
async fn post_raw_from(app: &TestApp, path: &str, token: Option<&str>, body: Vec<u8>, client: &str) -> (u16, Value) {
    let answer = app.send(token, &Request::post_raw(path, body).forwarded_for(client)).await;
    (answer.status, answer.body)
}

#[tokio::test]
async fn a_client_that_keeps_sending_malformed_requests_is_banned_and_ordinary_mistakes_never_count() {
    let app = TestApp::spawn_configured(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("AUTO_BAN_AFTER_BAD_REQUESTS", "5"),
        ("AUTO_BAN_SECONDS", "600"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    let before = scrape(&app).await;

    // Mistakes a working client makes, three times the threshold from one address: no ban.
    let clumsy = "203.0.113.20";
    let (head, _) = token.rsplit_once('.').expect("a JWT");
    let other_secrets_token = format!("{head}.{}", "A".repeat(43));
    for _ in 0..3 {
        let missing = call_from(&app, "POST", "/api/tickets", Some(&token), Some(json!({})), Some(clumsy)).await;
        assert_eq!(missing.status, 400, "a missing parameter: {}", missing.body);
        let wrong_type = call_from(&app, "GET", "/api/customers?page=abc", Some(&token), None, Some(clumsy)).await;
        assert_eq!(wrong_type.status, 400, "a page that is not a number: {}", wrong_type.body);
        let unknown =
            call_from(&app, "POST", "/graphql", Some(&token), Some(json!({ "query": "{ nope }" })), Some(clumsy));
        assert_eq!(unknown.await.status, 200, "an unknown field is a GraphQL error");
        let stale = call_from(&app, "GET", "/api/customers", Some(&other_secrets_token), None, Some(clumsy)).await;
        assert_eq!(stale.status, 401, "a token signed with another secret (after a rotation)");
        let long_title =
            json!({ "customerId": "c001", "title": "长".repeat(101), "content": "x", "type": "system_issue" });
        let too_long = call_from(&app, "POST", "/api/tickets", Some(&token), Some(long_title), Some(clumsy)).await;
        assert_eq!(too_long.status, 400, "a title too long: {}", too_long.body);
    }
    let still = call_from(&app, "GET", "/api/customers", Some(&token), None, Some(clumsy)).await;
    assert_eq!(still.status, 200, "ordinary mistakes never ban: {}", still.body);

    // Requests no working client sends, one of each kind from another address: the fifth bans.
    let attacker = "203.0.113.21";
    let (status, _) = post_raw_from(&app, "/api/tickets", Some(&token), b"{not json".to_vec(), attacker).await;
    assert_eq!(status, 400, "a REST body that is not JSON");
    let (status, body) = post_raw_from(&app, "/graphql", Some(&token), b"hello".to_vec(), attacker).await;
    assert_eq!(status, 400, "a GraphQL body that is not JSON: {body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "answered like any error: {body}");
    assert!(body["errors"][0]["extensions"]["requestId"].is_string(), "{body}");
    assert!(has_chinese(body["errors"][0]["message"].as_str().unwrap_or_default()), "no parser's words: {body}");
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100)).into_bytes();
    assert_eq!(post_raw_from(&app, "/graphql", Some(&token), deep, attacker).await.0, 400, "JSON nested too deep");
    let aliases: String = (0..60).map(|n| format!("a{n}: me {{ id }} ")).collect();
    let bomb = serde_json::to_vec(&json!({ "query": format!("{{ {aliases} }}") })).unwrap();
    let (status, body) = post_raw_from(&app, "/graphql", Some(&token), bomb, attacker).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (200, &json!("BAD_USER_INPUT")), "{body}");
    let unsigned = call_from(&app, "GET", "/api/customers", Some("not.a.jwt"), None, Some(attacker)).await;
    assert_eq!(unsigned.status, 401, "a token that is no JWT: {}", unsigned.body);
    let banned = call_from(&app, "GET", "/api/customers", Some(&token), None, Some(attacker)).await;
    assert!(assert_rest_limited(&banned, "the client that kept sending garbage") >= 500, "banned for AUTO_BAN_SECONDS");
    let other = call_from(&app, "GET", "/api/customers", Some(&token), None, Some(clumsy)).await;
    assert_eq!(other.status, 200, "another client is not banned");

    let after = scrape(&app).await;
    let grew = |series: &str| metric(&after, series) - metric(&before, series);
    assert!(grew("bad_requests_total{reason=\"malformed_body\"}") >= 2.0, "{after}");
    assert!(grew("bad_requests_total{reason=\"json_too_deep\"}") >= 1.0, "{after}");
    assert!(grew("bad_requests_total{reason=\"graphql_limits\"}") >= 1.0, "{after}");
    assert!(grew("bad_requests_total{reason=\"forged_token\"}") >= 1.0, "{after}");
    assert!(grew("ip_bans_total") >= 1.0, "{after}");
}

async fn scrape(app: &TestApp) -> String {
    app.metrics().await
}

/// The value of one series (`name{labels}` exactly as exposed), 0 when it has no sample yet.
fn metric(text: &str, series: &str) -> f64 {
    Exposition::parse(text).unwrap_or_else(|e| panic!("a valid exposition ({e}): {text}")).sample(series).unwrap_or(0.0)
}

#[tokio::test]
async fn the_deny_list_refuses_a_client_with_403_everywhere_but_the_health_checks() {
    let app = TestApp::spawn_configured(&[("IP_DENY_LIST", "10.9.9.9, 127.0.0.0/8")]).await;
    let rest = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, DEMO_PASSWORD))).await;
    assert_eq!(rest.status, 403, "{}", rest.body);
    assert_eq!(rest.body["code"], 403);
    assert!(rest.body["data"].is_null());
    let graphql = call(&app, "POST", "/graphql", None, Some(json!({ "query": "{ me { id } }" }))).await;
    assert_eq!(graphql.status, 403);
    assert_eq!(graphql.body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{}", graphql.body);
    assert_eq!(call(&app, "GET", "/playground", None, None).await.status, 403);
    assert_eq!(call(&app, "GET", "/healthz", None, None).await.status, 200);
}

#[tokio::test]
async fn only_a_trusted_proxy_says_who_the_client_is() {
    let behind_proxy =
        TestApp::spawn_configured(&[("TRUSTED_PROXIES", "127.0.0.1"), ("IP_DENY_LIST", "203.0.113.9")]).await;
    let denied = call_from(&behind_proxy, "GET", "/api/customers", None, None, Some("203.0.113.9")).await;
    assert_eq!(denied.status, 403, "the proxy forwarded for a denied client");
    let chained = call_from(&behind_proxy, "GET", "/api/customers", None, None, Some("203.0.113.9, 127.0.0.1")).await;
    assert_eq!(chained.status, 403, "trusted hops are skipped from the right");
    let spoofed =
        call_from(&behind_proxy, "GET", "/api/customers", None, None, Some("203.0.113.9, 198.51.100.7")).await;
    assert_eq!(spoofed.status, 401, "the nearest untrusted hop is the client, whatever it claims before");

    let direct = TestApp::spawn_configured(&[("IP_DENY_LIST", "203.0.113.9")]).await;
    let ignored = call_from(&direct, "GET", "/api/customers", None, None, Some("203.0.113.9")).await;
    assert_eq!(ignored.status, 401, "without TRUSTED_PROXIES the header is ignored");
}

#[tokio::test]
async fn graphql_limits_refuse_deep_wide_and_batched_operations_as_bad_input() {
    let app = TestApp::spawn_configured(&[
        ("GRAPHQL_MAX_DEPTH", "3"),
        ("GRAPHQL_MAX_ALIASES", "2"),
        ("GRAPHQL_MAX_ROOT_FIELDS", "2"),
        ("GRAPHQL_MAX_BATCH", "2"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    app.data(&token, "{ tickets { items { id } } }", json!({})).await;
    let refused = [
        ("four deep", "{ tickets { items { customer { name } } } }".to_owned()),
        ("three aliases", "{ a: me { id } b: me { name } c: me { phone } }".to_owned()),
        ("three root fields", "{ me { id } customers { total } tickets { total } }".to_owned()),
        (
            "three root fields through fragments",
            "query { ...A ...B } fragment A on Query { me { id } customers { total } } fragment B on Query { tickets { total } }"
                .to_owned(),
        ),
    ];
    for (what, query) in refused {
        let body = app.graphql(Some(&token), &query, json!({})).await;
        assert_error(&body, "BAD_USER_INPUT");
        assert!(has_chinese(&error_message(&body)), "{what}: a Chinese message: {body}");
    }
    let batch = |n: usize| json!(vec![json!({ "query": "{ me { id } }" }); n]);
    let two = call(&app, "POST", "/graphql", Some(&token), Some(batch(2))).await;
    assert_eq!(two.status, 200);
    assert_eq!(two.body.as_array().map(Vec::len), Some(2), "{}", two.body);
    assert_eq!(two.body[1]["data"]["me"]["id"], "sp001");
    let three = call(&app, "POST", "/graphql", Some(&token), Some(batch(3))).await;
    assert_eq!(three.status, 400, "{}", three.body);
    assert_eq!(three.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_connection_runs_at_most_the_configured_number_of_subscriptions() {
    let app = TestApp::spawn_configured(&[("WS_MAX_SUBSCRIPTIONS", "2")]).await;
    let token = app.login(DEMO_A).await;
    let mut socket = WsClient::connect(&app, &token).await;
    let subscribe = |id: &str| {
        json!({ "type": "subscribe", "id": id,
            "payload": { "query": "subscription { notifications { cursor } }" } })
    };
    socket.send(subscribe("1")).await;
    socket.send(subscribe("2")).await;
    socket.send(subscribe("3")).await;
    let refusal = socket.next_message().await;
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(refusal["id"], "3");
    assert_eq!(refusal["payload"][0]["extensions"]["code"], "RATE_LIMITED", "{refusal}");

    socket.send(json!({ "type": "complete", "id": "1" })).await;
    socket.send(subscribe("4")).await;
    // Notifications reach the running subscriptions, 2 and 4, and nothing else is refused. A
    // subscription goes live a moment after it is sent, so tickets are created until both have
    // had one.
    let create = "mutation { createTicket(customerId: \"c001\", title: \"订阅\", content: \"上限\", type: SYSTEM_ISSUE) { id } }";
    let mut delivered_to = std::collections::BTreeSet::new();
    for _ in 0..20 {
        app.data(&token, create, json!({})).await;
        while let Some(message) = socket.next_message_or_quiet(Duration::from_millis(300)).await {
            if message["type"] == "complete" && message["id"] == "1" {
                continue;
            }
            assert_eq!(message["type"], "next", "{message}");
            delivered_to.insert(message["id"].as_str().unwrap().to_owned());
        }
        if delivered_to.len() == 2 {
            break;
        }
    }
    assert_eq!(delivered_to.into_iter().collect::<Vec<_>>(), ["2", "4"]);
    let refused = metric(&scrape(&app).await, "rate_limit_refusals_total{scope=\"subscriptions\"}");
    assert!(refused >= 1.0, "the refused subscription is counted");
}

#[tokio::test]
async fn a_request_over_the_deadline_is_answered_503() {
    let app = TestApp::spawn_configured(&[
        ("REQUEST_TIMEOUT_MS", "300"),
        ("LOGIN_SLOW_AFTER_FAILURES", "1"),
        ("LOGIN_FAILURE_DELAY_MS", "5000"),
    ])
    .await;
    let first = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, "wrong-one"))).await;
    assert_eq!(first.status, 401);
    let started = Instant::now();
    let slow = call(&app, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, "wrong-two"))).await;
    assert_eq!(slow.status, 503, "{}", slow.body);
    assert_eq!(slow.body["code"], 503);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut at the deadline, not the 5 s delay: {:?}",
        started.elapsed()
    );
    assert_eq!(call(&app, "GET", "/healthz", None, None).await.status, 200);
}

/// The Redis the two-server test shares (on SQLite too: scripts/test starts one).
fn shared_redis() -> String {
    std::env::var("TEST_REDIS_URL").or_else(|_| std::env::var("TEST_BUS_REDIS_URL")).unwrap_or_else(|_| {
        panic!("the shared-limits test needs Redis: set TEST_REDIS_URL or TEST_BUS_REDIS_URL (scripts/test does)")
    })
}

#[tokio::test]
async fn two_servers_sharing_redis_share_their_limits() {
    let data = tempfile::tempdir().unwrap();
    let backend = Backend::from_env();
    let redis = shared_redis();
    let settings = [
        ("REDIS_URL", redis.as_str()),
        ("RATE_LIMIT_IP_PER_MINUTE", "6"),
        ("RATE_LIMIT_IP_BURST", "5"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
        ("LOGIN_SLOW_AFTER_FAILURES", "0"),
        ("LOGIN_MAX_FAILURES_PER_USERNAME", "2"),
    ];
    let first = TestApp::spawn_with(test_config(&backend, data.path(), true, &settings), backend.clone()).await;
    let second = TestApp::spawn_with(test_config(&backend, data.path(), true, &settings), backend.clone()).await;
    let failed = call(&first, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, "wrong-password"))).await;
    assert_eq!(failed.status, 401);
    let failed = call(&second, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, "wrong-password"))).await;
    assert_eq!(failed.status, 401);
    let refused = call(&first, "POST", "/api/auth/login", None, Some(login_body(DEMO_A, DEMO_PASSWORD))).await;
    assert_rest_limited(&refused, "two failures, one on each server");
    // Three requests so far; two more on the second server fill the burst of five.
    for _ in 0..2 {
        assert_eq!(call(&second, "GET", "/api/customers", None, None).await.status, 401);
    }
    assert_rest_limited(&call(&first, "GET", "/api/customers", None, None).await, "the sixth request, on the first");
    first.stop().await;
    second.stop().await;
    if let Backend::Mongo { mongodb_uri, .. } = &backend {
        drop_database(mongodb_uri, &database_name(data.path()));
    }
}
