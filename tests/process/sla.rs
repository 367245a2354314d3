//! The `sla-breaches` job across processes: a complaint made through a running server, then two
//! `provider-desk run-jobs sla-breaches --at <after its target>` processes at once, then the same
//! again after the server restarted. Exactly one alert reaches the provider, whoever ran first.

use crate::support::*;
use serde_json::{json, Value};
use std::process::Output;
use std::time::Duration;

const CREATE: &str = "mutation {
    createTicket(customerId: \"c001\", title: \"投诉：收银台频繁卡顿\", content: \"已经三天没有人回复\", type: COMPLAINT) {
        id createdAt firstResponseDueAt
    }
}";
const ALERTS: &str = "{ notifications(type: TICKET_UPDATE, pageSize: 100) { items { title relatedTicketId } } }";

fn changed(output: &Output) -> u64 {
    assert!(output.status.success(), "run-jobs: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.lines().next().expect("a report line")).expect("JSON");
    assert_eq!(report["job"], "sla-breaches", "{report}");
    report["changed"].as_u64().unwrap_or(0)
}

async fn alerts(server: &ServerProcess, token: &str, ticket: &str) -> usize {
    let page = server.data(token, ALERTS, json!({})).await["notifications"].clone();
    items(&page).iter().filter(|n| n["relatedTicketId"] == ticket && n["title"] == "工单超时提醒").count()
}

async fn stop(mut server: ServerProcess) {
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).await.is_some(), "the server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_run_jobs_processes_past_the_target_send_exactly_one_alert_and_a_restart_sends_none() {
    let backend = Backend::from_env();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let env = with_settings(process_env(&backend, dir), &[("JOB_INTERVAL_SECONDS", "0")]);
    let server = ServerProcess::start_with(&env, dir, backend.clone()).await;
    let token = server.login(DEMO_A).await;
    let ticket = server.data(&token, CREATE, json!({})).await["createTicket"].clone();
    let id = str_of(&ticket, "id").to_owned();
    let later = provider_desk::domain::format_time(&(time(&ticket, "firstResponseDueAt") + chrono::Duration::hours(1)));
    let args = ["run-jobs", "sla-breaches", "--at", later.as_str()];

    let before = changed(&run_cli(&env, dir, &["run-jobs", "sla-breaches"], None));
    assert_eq!(before, 0, "as of now nothing is late");
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| run_cli(&env, dir, &args, None));
        let second = scope.spawn(|| run_cli(&env, dir, &args, None));
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!(changed(&first) + changed(&second), 1, "one alert between the two processes");
    assert_eq!(alerts(&server, &token, &id).await, 1);

    stop(server).await;
    let server = ServerProcess::start_with(&env, dir, backend.clone()).await;
    let token = server.login(DEMO_A).await;
    assert_eq!(changed(&run_cli(&env, dir, &args, None)), 0, "after a restart the alert is still known as sent");
    assert_eq!(alerts(&server, &token, &id).await, 1);
    let bad = run_cli(&env, dir, &["run-jobs", "sla-breaches", "--at", "tomorrow"], None);
    assert!(!bad.status.success(), "a time that is not RFC 3339 is refused");
    stop(server).await;
}
