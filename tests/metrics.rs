//! `GET /metrics`: every series the README promises, counts that match what was sent, and an
//! exposition that a strict parser of the Prometheus text format (and `promtool`, when installed)
//! accepts. Each test runs the server as a process of its own, since the registry is per process.

mod common;

use common::process::{ServerProcess, Subscriber};
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

const CHAT_SUBSCRIPTION: &str = "subscription Chat($after: String) {
    chatMessages(customerId: \"c001\", after: $after) { cursor message { id } }
}";

#[tokio::test]
async fn metrics_count_the_requests_operations_connections_and_events_that_happened() {
    let server = ServerProcess::start(&[]).await;
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
    let mut subscriber = Subscriber::connect(&server.address, &token).await;
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
        let message = subscriber.next_message().await.expect("the subscription delivers");
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
    let mut subscriber = Subscriber::connect(&server.address, &token).await;
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

type Labels = BTreeMap<String, String>;

/// A parsed exposition: the declared types, and every sample by name and label set.
struct Exposition {
    types: HashMap<String, String>,
    samples: HashMap<String, Vec<(Labels, f64)>>,
}

impl Exposition {
    /// Parses the text format strictly: `# HELP` and `# TYPE` once per family, before its samples;
    /// each family's samples together; valid names, label syntax and escapes; no duplicate series;
    /// histograms with cumulative buckets ending in `+Inf` equal to `_count`, and a `_sum`.
    fn parse(text: &str) -> Result<Exposition, String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the exposition must end with a line feed".into());
        }
        let mut types: HashMap<String, String> = HashMap::new();
        let mut helped: HashSet<String> = HashSet::new();
        let mut samples: HashMap<String, Vec<(Labels, f64)>> = HashMap::new();
        let mut finished_families: HashSet<String> = HashSet::new();
        let mut current_family: Option<String> = None;
        for (number, line) in text.lines().enumerate() {
            let at = |message: String| format!("line {}: {message}: {line:?}", number + 1);
            if let Some(rest) = line.strip_prefix("# ") {
                let (keyword, rest) = rest.split_once(' ').ok_or_else(|| at("a bare comment".into()))?;
                let (name, value) = rest.split_once(' ').ok_or_else(|| at("HELP/TYPE needs a name and text".into()))?;
                check_metric_name(name).map_err(at)?;
                if let Some(current) = current_family.replace(name.to_owned()) {
                    if current != name {
                        finished_families.insert(current);
                    }
                }
                if finished_families.contains(name) {
                    return Err(at("the family appears twice".into()));
                }
                match keyword {
                    "HELP" => {
                        check_escapes(value, false).map_err(at)?;
                        if !helped.insert(name.to_owned()) {
                            return Err(at("a second HELP".into()));
                        }
                    }
                    "TYPE" => {
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&value) {
                            return Err(at(format!("unknown type {value}")));
                        }
                        if samples.keys().any(|sample| family_of(sample, &types) == name) {
                            return Err(at("TYPE after samples".into()));
                        }
                        if types.insert(name.to_owned(), value.to_owned()).is_some() {
                            return Err(at("a second TYPE".into()));
                        }
                    }
                    _ => return Err(at("a comment that is neither HELP nor TYPE".into())),
                }
                continue;
            }
            if line.is_empty() {
                return Err(at("an empty line".into()));
            }
            let (name, labels, value) = parse_sample(line).map_err(at)?;
            let family = family_of(&name, &types);
            if !types.contains_key(&family) {
                return Err(at(format!("a sample of {family}, whose TYPE was not given")));
            }
            if current_family.as_deref() != Some(family.as_str()) {
                return Err(at("a sample away from its family".into()));
            }
            if types[&family] == "counter" && (value < 0.0 || name != family) {
                return Err(at("a counter sample must be the family's name with a value ≥ 0".into()));
            }
            let series = samples.entry(name.clone()).or_default();
            if series.iter().any(|(existing, _)| *existing == labels) {
                return Err(at("a duplicate series".into()));
            }
            series.push((labels, value));
        }
        let exposition = Exposition { types, samples };
        exposition.check_histograms()?;
        Ok(exposition)
    }

    fn check_histograms(&self) -> Result<(), String> {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let mut by_series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for (labels, value) in self.samples.get(&format!("{family}_bucket")).into_iter().flatten() {
                let mut rest = labels.clone();
                let le = rest.remove("le").ok_or(format!("{family}_bucket without le"))?;
                let bound = parse_value(&le).map_err(|e| format!("{family}: le {e}"))?;
                by_series.entry(rest).or_default().push((bound, *value));
            }
            for (labels, buckets) in by_series {
                let mut previous: Option<(f64, f64)> = None;
                for &(bound, count) in &buckets {
                    if let Some((previous_bound, previous_count)) = previous {
                        if bound <= previous_bound || count < previous_count {
                            return Err(format!("{family}{labels:?}: buckets out of order or not cumulative"));
                        }
                    }
                    previous = Some((bound, count));
                }
                let (last_bound, last_count) = previous.ok_or(format!("{family}{labels:?}: no buckets"))?;
                if last_bound != f64::INFINITY {
                    return Err(format!("{family}{labels:?}: no +Inf bucket"));
                }
                let find = |suffix: &str| {
                    self.samples
                        .get(&format!("{family}{suffix}"))
                        .and_then(|series| series.iter().find(|(l, _)| *l == labels))
                        .map(|(_, value)| *value)
                };
                if find("_count") != Some(last_count) {
                    return Err(format!("{family}{labels:?}: _count differs from the +Inf bucket"));
                }
                if find("_sum").is_none() {
                    return Err(format!("{family}{labels:?}: no _sum"));
                }
            }
        }
        Ok(())
    }

    /// The value of the sample `name` with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.get(name)?.iter().find(|(labels, _)| *labels == wanted).map(|(_, value)| *value)
    }

    fn series_of(&self, name: &str) -> Vec<(Labels, f64)> {
        self.samples.get(name).cloned().unwrap_or_default()
    }
}

/// The family a sample belongs to: a histogram's `_bucket`, `_sum` and `_count` belong to it.
fn family_of(sample: &str, types: &HashMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix) {
            if types.get(base).is_some_and(|kind| kind == "histogram" || kind == "summary") {
                return base.to_owned();
            }
        }
    }
    sample.to_owned()
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with("__") {
        Ok(())
    } else {
        Err(format!("bad label name {name:?}"))
    }
}

/// Only `\\` and `\n` (and `\"` in label values) may be escaped.
fn check_escapes(text: &str, quotes: bool) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\' | 'n') => {}
                Some('"') if quotes => {}
                other => return Err(format!("bad escape \\{other:?}")),
            }
        }
    }
    Ok(())
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

/// `name{label="value",...} value` (no timestamp: the server never sends one).
fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut labels = Labels::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        loop {
            if let Some(&(index, '}')) = chars.peek() {
                rest = &after_brace[index + 1..];
                break;
            }
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            let equals = after_brace[start..].find('=').ok_or("a label without =")? + start;
            let label = &after_brace[start..equals];
            check_label_name(label)?;
            while chars.peek().is_some_and(|(i, _)| *i <= equals) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {label} has no quoted value"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape in a label value: {other:?}")),
                    },
                    Some((_, '\n')) => return Err("a raw line feed in a label value".into()),
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} twice"));
            }
            match chars.peek() {
                Some((_, ',')) => {
                    chars.next();
                }
                Some((_, '}')) => {}
                _ => return Err("labels must be separated by commas".into()),
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("one space before the value")?;
    if value.contains(' ') {
        return Err("a timestamp or trailing text after the value".into());
    }
    Ok((name.to_owned(), labels, parse_value(value)?))
}
