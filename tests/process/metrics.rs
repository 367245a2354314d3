//! `GET /metrics`: every series the README promises, counts that match what was sent, and an
//! exposition that a strict parser of the Prometheus text format (and `promtool`, when installed)
//! accepts; and the alert rules of `deploy/alerts.yml`, which read only names the server exports
//! (and which `promtool check rules` accepts, when installed). Each test runs the server as a
//! process of its own, since the registry is per process.

use crate::support::*;
use serde_json::{json, Value};

use std::time::Duration;

const CHAT_SUBSCRIPTION: &str = "subscription Chat($after: String) {
    chatMessages(customerId: \"c001\", after: $after) { cursor message { id } }
}";

#[tokio::test]
async fn metrics_count_the_requests_operations_connections_and_events_that_happened() {
    // The demo history reaches back 60 days, past the default replay window of 7, and is replayed below.
    let server = ServerProcess::start(&[("EVENT_REPLAY_MAX_AGE_HOURS", "8760")]).await;
    let client = reqwest::Client::new();
    let api = format!("{}/api", server.address);

    let login: Value = client
        .post(format!("{api}/auth/login"))
        .json(&json!({ "username": DEMO_A, "password": DEMO_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["token"].as_str().expect("a token").to_owned();
    for _ in 0..3 {
        let response = client.get(format!("{api}/customers?pageSize=2")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let response = client.get(format!("{api}/customers/c999")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 404);
    for _ in 0..2 {
        let body = server.graphql(Some(&token), "query ListThem { customers(pageSize: 1) { total } }", json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let body = server.graphql(None, "query Anon { customers { total } }", json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    server.graphql(Some(&token), "{ customers { total ", json!({})).await;
    server.graphql(Some(&token), "query Bad { noSuchField }", json!({})).await;

    // A subscription replaying from the start of the log (so it catches up once), then a live event.
    let mut subscriber = WsClient::connect(&server, &token).await;
    subscriber.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "after": "0" })).await;
    let sent = server
        .graphql(
            Some(&token),
            "mutation SendIt { sendChatMessage(customerId: \"c001\", content: \"指标测试\") { id } }",
            json!({}),
        )
        .await;
    let sent_id = sent["data"]["sendChatMessage"]["id"].as_str().expect("the message is stored").to_owned();
    loop {
        let message = subscriber.next_message().await;
        assert_eq!(message["type"], "next", "{message}");
        if message["payload"]["data"]["chatMessages"]["message"]["id"] == sent_id.as_str() {
            break;
        }
    }

    let text = server.metrics().await;
    let metrics = Exposition::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let http = |method: &str, route: &str, status: &str| {
        metrics.value("http_requests_total", &[("method", method), ("route", route), ("status", status)])
    };
    assert_eq!(http("POST", "/api/auth/login", "200"), Some(1.0));
    assert_eq!(http("GET", "/api/customers", "200"), Some(3.0), "counted by route, not by path");
    assert_eq!(http("GET", "/api/customers/{id}", "404"), Some(1.0), "the route pattern, not the id");
    assert_eq!(http("POST", "/graphql", "200"), Some(6.0), "2 + 1 + 1 + 1 operations and the send");
    assert_eq!(http("GET", "/graphql/ws", "101"), Some(1.0));
    for (labels, count) in metrics.series_of("http_requests_total") {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            metrics.value("http_request_duration_seconds_count", &labels),
            Some(count),
            "the latency histogram counts the same requests: {labels:?}"
        );
    }

    let operation = |name: &str, outcome: &str| {
        metrics.value("graphql_operations_total", &[("operation", name), ("outcome", outcome)])
    };
    assert_eq!(operation("login", "ok"), Some(1.0), "REST endpoints run named operations");
    assert_eq!(operation("listCustomers", "ok"), Some(3.0));
    assert_eq!(operation("getCustomer", "NOT_FOUND"), Some(1.0));
    assert_eq!(operation("ListThem", "ok"), Some(2.0));
    assert_eq!(operation("Anon", "UNAUTHENTICATED"), Some(1.0));
    assert_eq!(operation("anonymous", "GRAPHQL_PARSE_FAILED"), Some(1.0));
    assert_eq!(operation("Bad", "GRAPHQL_VALIDATION_FAILED"), Some(1.0));
    assert_eq!(operation("SendIt", "ok"), Some(1.0));
    assert_eq!(metrics.value("graphql_operation_duration_seconds_count", &[("operation", "ListThem")]), Some(2.0));

    assert_eq!(metrics.value("websocket_connections", &[]), Some(1.0));
    assert_eq!(metrics.value("graphql_subscriptions_active", &[]), Some(1.0));
    assert_eq!(
        metrics.value("realtime_events_published_total", &[("kind", "chat_message"), ("origin", "local")]),
        Some(1.0)
    );
    assert_eq!(metrics.value("realtime_subscriber_catch_ups_total", &[]), Some(1.0), "the replay caught up once");
    assert_eq!(metrics.value("realtime_subscribers_behind", &[]), Some(0.0));
    assert_eq!(metrics.value("realtime_subscriber_lags_total", &[]), Some(0.0));
    assert_eq!(metrics.value("http_requests_in_flight", &[]), Some(1.0), "the scrape itself");

    let adapter = if server_backend().is_mongo() { "mongodb" } else { "sqlite" };
    let store_calls = metrics.value("store_call_duration_seconds_count", &[("adapter", adapter), ("outcome", "ok")]);
    assert!(store_calls.is_some_and(|n| n > 10.0), "store calls are timed: {store_calls:?}");
    if server_backend().is_mongo() {
        for purpose in ["tokens", "publish"] {
            let calls = metrics.value("redis_call_duration_seconds_count", &[("purpose", purpose), ("outcome", "ok")]);
            assert!(calls.is_some_and(|n| n >= 1.0), "Redis {purpose} calls are timed: {calls:?}");
        }
    }
    assert!(metrics.value("process_start_time_seconds", &[]).is_some_and(|t| t > 1.6e9));
    assert_eq!(metrics.value("provider_desk_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));
    assert_eq!(metrics.value("outbox_backlog", &[]), Some(0.0), "no integration is configured: nothing queued");
    assert_eq!(metrics.value("outbox_dead_letters", &[]), Some(0.0));
    assert!(metrics.types.contains_key("rate_limit_refusals_total"));
    assert!(metrics.series_of("rate_limit_refusals_total").is_empty(), "nothing was refused");
    assert!(metrics.types.contains_key("bad_requests_total"));
    assert!(metrics.series_of("bad_requests_total").is_empty(), "nothing malformed was sent");
    assert_eq!(metrics.value("ip_bans_total", &[]), Some(0.0));

    // Closing the connection ends the subscription and the connection in the gauges.
    subscriber.close().await;
    let mut gauges = (None, None);
    for _ in 0..100 {
        let metrics = Exposition::parse(&server.metrics().await).unwrap();
        gauges = (metrics.value("websocket_connections", &[]), metrics.value("graphql_subscriptions_active", &[]));
        if gauges == (Some(0.0), Some(0.0)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gauges, (Some(0.0), Some(0.0)), "websocket_connections and graphql_subscriptions_active go back to 0");
    let metrics = Exposition::parse(&server.metrics().await).unwrap();
    assert!(metrics
        .value("http_requests_total", &[("method", "GET"), ("route", "/metrics"), ("status", "200")])
        .is_some());
}

#[tokio::test]
async fn the_exposition_is_valid_prometheus_text() {
    let server = ServerProcess::start(&[]).await;
    let token = server.login(DEMO_A).await;
    let client = reqwest::Client::new();
    // Something of every kind: unmatched and wildcard routes, errors, a subscription.
    for path in ["/healthz", "/readyz", "/nowhere", "/api/nowhere", "/api/customers"] {
        client.get(format!("{}{path}", server.address)).send().await.unwrap();
    }
    server.graphql(Some(&token), "query Q { notifications { total } }", json!({})).await;
    let mut subscriber = WsClient::connect(&server, &token).await;
    subscriber.subscribe("n", "subscription { notifications { cursor } }", json!({})).await;

    let text = server.metrics().await;
    let metrics = Exposition::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    for family in [
        "http_requests_total",
        "http_request_duration_seconds",
        "graphql_operations_total",
        "graphql_operation_duration_seconds",
        "store_call_duration_seconds",
    ] {
        assert!(metrics.types.contains_key(family), "{family} is declared");
    }
    assert_eq!(metrics.types["http_request_duration_seconds"], "histogram");
    assert!(metrics
        .value("http_requests_total", &[("method", "GET"), ("route", "unmatched"), ("status", "404")])
        .is_some());
    assert!(metrics
        .value("http_requests_total", &[("method", "GET"), ("route", "/api/{*unknown}"), ("status", "404")])
        .is_some());

    // promtool, where Prometheus is installed, lints the same text.
    if let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    } else {
        eprintln!("promtool is not installed: the strict parser alone checked the exposition");
    }
    subscriber.close().await;
}

#[tokio::test]
async fn metrics_report_the_process_cpu_memory_file_descriptors_and_free_disk() {
    let server = ServerProcess::start(&[]).await;
    let text = server.metrics().await;
    let metrics = Exposition::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let value = |name: &str| metrics.value(name, &[]).unwrap_or_else(|| panic!("{name} is reported:\n{text}"));
    assert_eq!(metrics.types["process_cpu_seconds_total"], "counter");
    assert!(value("process_cpu_seconds_total") >= 0.0);
    assert!(value("process_resident_memory_bytes") > 0.0);
    assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
    assert!(value("process_open_fds") > 0.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    assert!(value("data_dir_free_bytes") > 0.0, "the test's DATA_DIR is on a file system with room");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(started > now - 600.0 && started <= now + 1.0, "the server started just now: {started} vs {now}");
}

#[test]
fn the_strict_parser_refuses_what_prometheus_would() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n";
    assert!(Exposition::parse(good).is_ok());
    for bad in [
        "a_total 1\n",                                                                             // no TYPE
        "# TYPE a_total counter\na_total{x=\"1} 2\n",                                              // unterminated
        "# TYPE a_total counter\na_total{x=\"1\"} two\n",                                          // value
        "# TYPE a_total counter\na_total{x=\"1\"} 2\na_total{x=\"1\"} 3\n",                        // duplicate
        "# TYPE a_total counter\na_total{x=\"\\t\"} 2\n",                                          // bad escape
        "# TYPE a_total counter\na_total 2",                                                       // no final newline
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",                          // no +Inf
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",                       // count differs
    ] {
        assert!(Exposition::parse(bad).is_err(), "refused: {bad:?}");
    }
}

fn server_backend() -> Backend {
    Backend::from_env()
}

#[tokio::test]
async fn the_alert_rules_are_valid_and_read_only_metrics_the_server_exports() {
    let rules_path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/alerts.yml");
    let rules = std::fs::read_to_string(rules_path).expect("deploy/alerts.yml");
    let server = ServerProcess::start(&[]).await;
    let text = server.metrics().await;
    let metrics = Exposition::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    // Every selector is `name{job="provider-desk", ...}`: each name must be a family the server
    // declares (histogram series by their family), or Prometheus's own `up`.
    let mut named = Vec::new();
    for expression in rules.split("expr:").skip(1).map(|rest| rest.split("labels:").next().unwrap()) {
        for selector in expression
            .split('{')
            .map(|before| before.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap())
        {
            if selector.is_empty() || selector == "by" {
                continue;
            }
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| selector.strip_suffix(suffix).filter(|f| metrics.types.contains_key(*f)))
                .unwrap_or(selector);
            assert!(family == "up" || metrics.types.contains_key(family), "{selector} is not exported:\n{text}");
            named.push(family.to_owned());
        }
    }
    for family in ["http_requests_total", "http_request_duration_seconds", "store_call_duration_seconds"] {
        assert!(named.iter().any(|n| n == family), "an alert reads {family}: {named:?}");
    }
    for family in ["redis_call_duration_seconds", "outbox_dead_letters", "outbox_failure_streak", "ip_bans_total"] {
        assert!(named.iter().any(|n| n == family), "an alert reads {family}: {named:?}");
    }

    // promtool, where Prometheus is installed, checks the rules' syntax and expressions.
    match std::process::Command::new("promtool").args(["check", "rules", rules_path]).output() {
        Ok(output) => assert!(
            output.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => eprintln!("promtool is not installed: only the metric names of the rules were checked"),
    }
}
