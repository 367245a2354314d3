//! The prune jobs as an operator meets them: `provider-desk run-jobs` reports what each deleted,
//! a server's scheduled runs count it in `retention_pruned_total{table}`, and in both cases old rows
//! go while recent ones (a signed-in session, a fresh idempotency key, the recent events) stay.
//!
//! Rows cannot be made old through the API, so the test writes them through the store port
//! while no server runs, between runs of the real binary.

use crate::support::*;
use chrono::{Duration as Days, Utc};
use provider_desk::config::MongoSettings;
use provider_desk::domain::*;
use provider_desk::store::mongo::MongoStore;
use provider_desk::store::sqlite::SqliteStore;
use provider_desk::store::{RefreshTokenRecord, SharedStore, TokenStore};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const CREATE_TICKET: &str = "mutation($key: String) {
    createTicket(customerId: \"c001\", title: \"保留期测试\", content: \"最近的工单\", type: SYSTEM_ISSUE,
        idempotencyKey: $key) { id }
}";
const REFRESH: &str = "mutation($r: String!) { refreshToken(refreshToken: $r) { token } }";
const PRUNE_JOBS: [&str; 5] = [
    "events-prune",
    "idempotency-keys-prune",
    "revoked-access-tokens-prune",
    "refresh-tokens-prune",
    "token-families-prune",
];

/// The store of the server's data directory (SQLite) or database (MongoDB), with the token adapter
/// the server uses when there is no Redis: on MongoDB the server keeps its tokens in Redis, so the
/// store's token collections stay empty unless this writes to them.
async fn open_store(backend: &Backend, dir: &Path) -> (SharedStore, Option<Arc<dyn TokenStore>>) {
    match backend {
        Backend::Sqlite => {
            let store = Arc::new(SqliteStore::open(dir).expect("the SQLite store opens"));
            (store.clone(), Some(store))
        }
        Backend::Mongo { mongodb_uri, .. } => {
            let settings = MongoSettings {
                database: database_name(dir),
                write_concern: None,
                max_pool_size: None,
                connect_timeout: None,
                server_selection_timeout: None,
                operation_timeout: Duration::from_secs(30),
            };
            (Arc::new(MongoStore::connect(mongodb_uri, &settings).await.expect("the MongoDB store connects")), None)
        }
    }
}

/// Writes what the prune jobs must delete: a ticket of sp001 created eleven years ago under an
/// idempotency key (its two events and the key), then a notification of now (so that sp001's newest
/// event, which SQLite keeps whatever its age, is a recent one); and on SQLite a refresh token and
/// its family that expired ten days ago, and an expired access-token revocation (which SQLite's
/// own revocation write removes at once: expired revocations refuse nothing).
async fn write_old_rows(backend: &Backend, dir: &Path) {
    let (store, tokens) = open_store(backend, dir).await;
    let provider = Id::parse("sp001").unwrap();
    let customer = store.customers_by_ids(&provider, &[Id::parse("c001").unwrap()]).await.unwrap().remove(0);
    let long_ago = Utc::now() - Days::days(4_000);
    let ticket = Ticket {
        id: new_id("t"),
        service_provider_id: provider.clone(),
        customer_id: customer.id.clone(),
        customer_name: customer.name.clone(),
        title: "很久以前的工单".to_owned(),
        content: "早已处理".to_owned(),
        ticket_type: TicketType::SystemIssue,
        status: TicketStatus::Open,
        escalation_status: EscalationStatus::Normal,
        escalation_reason: None,
        escalated_at: None,
        assignee_id: None,
        assignee_name: None,
        resolution: None,
        resolved_at: None,
        created_at: long_ago,
        updated_at: long_ago,
        history: vec![HistoryEntry {
            id: new_id("h"),
            operator_id: "sp001".to_owned(),
            operator_name: "张三".to_owned(),
            action: "create".to_owned(),
            content: "创建工单".to_owned(),
            timestamp: long_ago,
        }],
        version: 0,
        sla: Default::default(),
    };
    let notification = Notification::customer_alert(new_id("m"), &customer, "旧通知", "旧通知".to_owned(), long_ago);
    store.insert_ticket(&ticket, &notification, Some(&new_id("k")), &[]).await.expect("the old ticket is stored");
    let now = Notification::customer_alert(new_id("m"), &customer, "新通知", "新通知".to_owned(), Utc::now());
    store.insert_notification(&now).await.expect("the recent notification is stored");
    if let Some(tokens) = tokens {
        let expired = Utc::now() - Days::days(10);
        let record = RefreshTokenRecord {
            token_hash: new_id("hash").to_string(),
            family_id: new_id("family").to_string(),
            provider_id: provider,
            expires_at: expired,
        };
        tokens.insert_refresh_token(&record).await.unwrap();
        tokens.revoke_access_token(new_id("jti").as_str(), expired).await.unwrap();
    }
}

async fn stop(mut server: ServerProcess) {
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).await.is_some(), "the server stops");
}

/// The cursors and times of sp001's logged events.
async fn logged_events(backend: &Backend, dir: &Path) -> Vec<(Cursor, Timestamp)> {
    let (store, _) = open_store(backend, dir).await;
    let events = store.events_after(&Id::parse("sp001").unwrap(), 0, 100_000).await.unwrap();
    events.into_iter().map(|event| (event.cursor, event.at)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_keys_and_tokens_are_pruned_by_run_jobs_and_on_schedule_and_recent_ones_stay() {
    let backend = Backend::from_env();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // Retention wide enough that the seeded demo data (up to 60 days old) stays: only what
    // `write_old_rows` writes is due.
    let env = with_settings(
        process_env(&backend, dir),
        &[("JOB_INTERVAL_SECONDS", "0"), ("EVENT_RETENTION_DAYS", "3650"), ("EXPIRED_TOKEN_RETENTION_HOURS", "1")],
    );
    let expected_tokens = u64::from(!backend.is_mongo());

    let server = ServerProcess::start_with(&env, dir, backend.clone()).await;
    let (token, refresh_token) = server.login_pair(DEMO_A).await;
    let key = new_id("k").to_string();
    let created = server.data(&token, CREATE_TICKET, json!({ "key": key })).await["createTicket"]["id"].clone();
    stop(server).await;
    let recent_events = logged_events(&backend, dir).await;

    write_old_rows(&backend, dir).await;
    let mut args = vec!["run-jobs"];
    args.extend(PRUNE_JOBS);
    let output = run_cli(&env, dir, &args, None);
    assert!(output.status.success(), "run-jobs: {}", String::from_utf8_lossy(&output.stderr));
    let reports: Vec<Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let changed: Vec<(String, u64)> =
        reports.iter().map(|r| (r["job"].as_str().unwrap().to_owned(), r["changed"].as_u64().unwrap())).collect();
    let expected: Vec<(String, u64)> =
        PRUNE_JOBS.iter().map(|j| j.to_string()).zip([2, 1, 0, expected_tokens, expected_tokens]).collect();
    assert_eq!(changed, expected, "{reports:?}");
    let again = run_cli(&env, dir, &args, None);
    assert!(String::from_utf8_lossy(&again.stdout).lines().all(|line| line.contains("\"changed\":0")), "a second run");

    // The scheduled runs of a server count what they delete.
    write_old_rows(&backend, dir).await;
    let scheduled = with_settings(env.clone(), &[("JOB_INTERVAL_SECONDS", "1")]);
    let server = ServerProcess::start_with(&scheduled, dir, backend.clone()).await;
    let token = server.login(DEMO_A).await;
    let pruned = |metrics: &Exposition, table: &str| metrics.value("retention_pruned_total", &[("table", table)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let text = server.metrics().await;
        let metrics = Exposition::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
        if pruned(&metrics, "token_families").is_some() {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "the prune jobs never ran on schedule");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(pruned(&metrics, "events"), Some(2.0));
    assert_eq!(pruned(&metrics, "idempotency_keys"), Some(1.0));
    assert_eq!(pruned(&metrics, "revoked_access_tokens"), Some(0.0));
    for table in ["refresh_tokens", "token_families"] {
        assert_eq!(pruned(&metrics, table), Some(expected_tokens as f64), "{table}");
    }

    // What is recent stayed: the session still refreshes, the key still replays, the events remain.
    let refreshed = server.graphql(None, REFRESH, json!({ "r": refresh_token })).await;
    assert!(refreshed["errors"].is_null(), "{refreshed}");
    let replayed = server.data(&token, CREATE_TICKET, json!({ "key": key })).await["createTicket"]["id"].clone();
    assert_eq!(replayed, created, "the recent key replays the first ticket");
    stop(server).await;
    let left = logged_events(&backend, dir).await;
    assert!(recent_events.iter().all(|event| left.contains(event)), "the events of the last weeks, all of them");
    let cut_off = Utc::now() - Days::days(3_650);
    assert!(left.iter().all(|(_, at)| *at > cut_off), "no event older than EVENT_RETENTION_DAYS: {left:?}");
    assert_eq!(left.len(), recent_events.len() + 2, "and the two recent notifications written beside the old rows");
    if let Backend::Mongo { mongodb_uri, .. } = &backend {
        drop_database(mongodb_uri, &database_name(dir));
    }
}
