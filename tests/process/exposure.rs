//! A server on a public address, as the Docker image runs it (`BIND=0.0.0.0`): no demo accounts
//! unless `SEED_DEMO=true` (then a warning at every start), `/metrics` refused unless
//! `METRICS_TOKEN` or `METRICS_BIND` says who may read it, each decision said in the log; and the
//! outbox's delivery metrics that the alert rules of `deploy/alerts.yml` read.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const METRICS_TOKEN: &str = "scrape-token-0123456789abcdef";

/// The log lines (JSON) whose message contains `text`.
fn log_lines(server: &ServerProcess, text: &str) -> Vec<Value> {
    server
        .stdout_lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["message"].as_str().is_some_and(|message| message.contains(text)))
        .collect()
}

/// The number of providers in the server's store, as `provider-desk check-config` reports it.
fn providers_in_store(server: &ServerProcess, env: &[(String, String)]) -> String {
    let output = run_cli(env, &server.data_dir, &["check-config"], None);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = text.lines().find(|line| line.contains("providers)")).unwrap_or_else(|| panic!("{text}"));
    line.rsplit('(').next().unwrap().trim_end_matches(')').to_owned()
}

async fn login_status(server: &ServerProcess) -> u16 {
    server.post(None, "/api/auth/login", json!({ "username": DEMO_A, "password": DEMO_PASSWORD })).await.status
}

async fn public_server(extra: &[(&str, &str)]) -> (ServerProcess, Vec<(String, String)>, tempfile::TempDir) {
    let temp = tempfile::tempdir().expect("a data directory");
    let backend = Backend::from_env();
    let mut settings = vec![("BIND", "0.0.0.0")];
    settings.extend_from_slice(extra);
    let env = with_settings(process_env(&backend, temp.path()), &settings);
    let server = ServerProcess::start_with(&env, temp.path(), backend).await;
    (server, env, temp)
}

#[tokio::test]
async fn a_server_on_a_public_address_with_nothing_set_seeds_no_demo_accounts_and_says_why() {
    let (server, env, _temp) = public_server(&[]).await;
    assert_eq!(login_status(&server).await, 401, "demo-a cannot sign in");
    assert_eq!(providers_in_store(&server, &env), "0 providers", "the store is empty");
    let said = log_lines(&server, "no demo accounts");
    assert_eq!(said.len(), 1, "{:?}", server.stdout_lines());
    assert_eq!(said[0]["level"], "INFO");
    assert!(said[0]["message"].as_str().unwrap().contains("public address"), "{}", said[0]);
    assert_eq!(said[0]["bind"], "0.0.0.0");
    assert!(log_lines(&server, "demo accounts (password").is_empty(), "no seeding warning");
}

#[tokio::test]
async fn seed_demo_true_on_a_public_address_seeds_and_warns_at_every_start() {
    let (server, env, temp) = public_server(&[("SEED_DEMO", "true")]).await;
    assert_eq!(login_status(&server).await, 200, "demo-a signs in");
    let warned = log_lines(&server, "SEED_DEMO=true");
    assert_eq!(warned.len(), 1, "{:?}", server.stdout_lines());
    assert_eq!(warned[0]["level"], "WARN");
    drop(server);
    // A restart on the same store seeds nothing new, and warns again.
    let again = ServerProcess::start_with(&env, temp.path(), Backend::from_env()).await;
    assert_eq!(log_lines(&again, "SEED_DEMO=true").len(), 1, "{:?}", again.stdout_lines());
    assert_eq!(providers_in_store(&again, &env), "2 providers");
}

#[tokio::test]
async fn seed_demo_false_seeds_nothing_even_on_loopback() {
    let server = ServerProcess::start(&[("SEED_DEMO", "false")]).await;
    assert_eq!(login_status(&server).await, 401);
}

#[tokio::test]
async fn metrics_on_a_public_address_with_neither_token_nor_listener_are_refused_and_the_log_says_so() {
    let (server, _env, _temp) = public_server(&[]).await;
    let answer = server.get(None, "/metrics").await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert!(!answer.text.contains("http_requests_total"), "nothing of the exposition: {}", answer.text);
    let said = log_lines(&server, "/metrics answers 403");
    assert_eq!(said.len(), 1, "{:?}", server.stdout_lines());
    assert!(said[0]["message"].as_str().unwrap().contains("METRICS_TOKEN"), "{}", said[0]);
    assert_eq!(server.get(None, "/healthz").await.status, 200, "the health checks stay open");
}

#[tokio::test]
async fn with_metrics_token_set_metrics_need_the_bearer_token_on_any_bind() {
    for bind in ["0.0.0.0", "127.0.0.1"] {
        let (server, _env, _temp) = public_server(&[("BIND", bind), ("METRICS_TOKEN", METRICS_TOKEN)]).await;
        let without = server.get(None, "/metrics").await;
        assert_eq!(without.status, 401, "{bind}: {}", without.text);
        assert_eq!(without.header("www-authenticate"), Some("Bearer"));
        assert_eq!(server.get(Some("scrape-token-0123456789abcdeX"), "/metrics").await.status, 401, "{bind}");
        assert_eq!(server.get(Some(&METRICS_TOKEN[..20]), "/metrics").await.status, 401, "{bind}: a prefix");
        let with = server.get(Some(METRICS_TOKEN), "/metrics").await;
        assert_eq!(with.status, 200, "{bind}");
        let metrics = Exposition::parse(&with.text).unwrap_or_else(|error| panic!("{error}\n{}", with.text));
        let refused = [("method", "GET"), ("route", "/metrics"), ("status", "401")];
        assert_eq!(metrics.value("http_requests_total", &refused), Some(3.0), "{bind}: the refusals are counted");
    }
}

#[tokio::test]
async fn metrics_bind_serves_metrics_on_a_listener_of_its_own_and_the_main_one_answers_404() {
    let (server, _env, _temp) = public_server(&[("METRICS_BIND", "127.0.0.1:0")]).await;
    let address = loop {
        if let Some(line) = log_lines(&server, "metrics listening").first() {
            break line["address"].as_str().expect("the metrics listener's address").to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(address, server.address.trim_start_matches("http://"), "a listener of its own");
    let main = server.get(None, "/metrics").await;
    assert_eq!(main.status, 404, "the main listener does not serve /metrics: {}", main.text);
    assert_eq!(login_status(&server).await, 401, "a public bind: no demo accounts");

    let own = Api::new(format!("http://{address}"));
    let scraped = own.get(None, "/metrics").await;
    assert_eq!(scraped.status, 200, "{}", scraped.text);
    let metrics = Exposition::parse(&scraped.text).unwrap_or_else(|error| panic!("{error}\n{}", scraped.text));
    let main_404 = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(metrics.value("http_requests_total", &main_404), Some(1.0), "the main listener's 404");
    assert_eq!(own.get(None, "/healthz").await.status, 404, "the metrics listener serves /metrics alone");
    assert_eq!(own.get(None, "/api/customers").await.status, 404);
    assert!(log_lines(&server, "/metrics answers 403").is_empty(), "{:?}", server.stdout_lines());
}

#[tokio::test]
async fn metrics_bind_with_a_token_needs_the_token_there_too() {
    let (server, _env, _temp) =
        public_server(&[("METRICS_BIND", "127.0.0.1:0"), ("METRICS_TOKEN", METRICS_TOKEN)]).await;
    let address = loop {
        if let Some(line) = log_lines(&server, "metrics listening").first() {
            break line["address"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let own = Api::new(format!("http://{address}"));
    assert_eq!(own.get(None, "/metrics").await.status, 401);
    assert_eq!(own.get(Some(METRICS_TOKEN), "/metrics").await.status, 200);
    assert_eq!(server.get(Some(METRICS_TOKEN), "/metrics").await.status, 404);
}

#[tokio::test]
async fn a_failing_webhook_shows_as_a_failure_streak_retries_and_a_dead_letter_in_the_metrics() {
    let server = ServerProcess::start(&[
        ("CS_WEBHOOK_SECRET", "cs-secret-0123456789abcdef"),
        // Nothing listens on port 1: every attempt is refused.
        ("CS_WEBHOOK_URL", "http://127.0.0.1:1/hooks/cs"),
        ("OUTBOX_MAX_ATTEMPTS", "3"),
        ("OUTBOX_BASE_DELAY_MS", "20"),
        ("OUTBOX_MAX_DELAY_MS", "50"),
        ("OUTBOX_POLL_INTERVAL_MS", "50"),
    ])
    .await;
    let token = server.login(DEMO_A).await;
    let sent = server
        .graphql(
            Some(&token),
            "mutation { sendChatMessage(customerId: \"c001\", content: \"告警测试\") { id } }",
            json!({}),
        )
        .await;
    assert!(sent["errors"].is_null(), "{sent}");
    let delivery = |metrics: &Exposition, outcome: &str| {
        metrics.value("outbox_deliveries_total", &[("target", "cs"), ("outcome", outcome)])
    };
    // The outbox gauges are read from the store at most every 5 s: poll until they show it.
    let metrics = loop {
        let metrics = Exposition::parse(&server.metrics().await).unwrap();
        if delivery(&metrics, "dead_letter") == Some(1.0) && metrics.value("outbox_dead_letters", &[]) == Some(1.0) {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(delivery(&metrics, "retry"), Some(2.0));
    assert_eq!(delivery(&metrics, "delivered"), None);
    assert_eq!(metrics.value("outbox_failure_streak", &[("target", "cs")]), Some(3.0), "three refused in a row");
    assert_eq!(metrics.value("outbox_backlog", &[]), Some(0.0));
}
