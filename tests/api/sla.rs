//! Service-level timers through the real server: the due times a new ticket is given, the status
//! as the server's clock moves (never a sleep), the list filtered by it in GraphQL and REST, and the
//! `sla-breaches` job's one alert per ticket and target, with its webhook.

use crate::integration::{integrated, pairs, Receiver};
use crate::support::*;
use provider_desk::service::jobs::Job;
use serde_json::{json, Value};
use std::time::Duration;

const FIELDS: &str = "id type status createdAt firstResponseDueAt resolutionDueAt firstRespondedAt resolvedAt \
    sla firstResponseSla resolutionSla";

const MINUTE: Duration = Duration::from_secs(60);

async fn create(app: &TestApp, token: &str, ticket_type: &str) -> Value {
    let query = format!(
        "mutation($type: TicketType!) {{
            createTicket(customerId: \"c002\", title: \"收银台无法打印\", content: \"门店收银台无法打印小票。\", type: $type) {{ {FIELDS} }}
        }}"
    );
    app.data(token, &query, json!({ "type": ticket_type })).await["createTicket"].clone()
}

async fn ticket(app: &TestApp, token: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ ticket(id: $id) {{ {FIELDS} }} }}");
    app.data(token, &query, json!({ "id": id })).await["ticket"].clone()
}

/// The ids of the provider's tickets in an SLA status, in list order.
async fn listed(app: &TestApp, token: &str, sla: &str) -> Vec<String> {
    let query = "query($sla: SlaStatus) { tickets(sla: $sla, pageSize: 100) { total items { id } } }";
    let page = app.data(token, query, json!({ "sla": sla })).await["tickets"].clone();
    assert_eq!(total(&page), items(&page).len() as u64, "{page}");
    items(&page).iter().map(|t| str_of(t, "id").to_owned()).collect()
}

async fn reply(app: &TestApp, token: &str, id: &str) {
    let query = "mutation($id: ID!) { replyTicket(id: $id, content: \"已安排工程师远程处理。\") { replyId } }";
    app.data(token, query, json!({ "id": id })).await;
}

async fn resolve(app: &TestApp, token: &str, id: &str) {
    let query = "mutation($id: ID!) { resolveTicket(id: $id, resolution: \"已处理\") { id } }";
    app.data(token, query, json!({ "id": id })).await;
}

/// The provider's breach alerts about one ticket.
async fn alerts(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let query = "{ notifications(type: TICKET_UPDATE, pageSize: 100) { items { title content relatedTicketId } } }";
    let page = app.data(token, query, json!({})).await["notifications"].clone();
    items(&page).iter().filter(|n| n["relatedTicketId"] == id && n["title"] == "工单超时提醒").cloned().collect()
}

async fn run_breach_job(app: &TestApp) -> u64 {
    let report = app.services.jobs.run_now(Job::SlaBreaches, "test").await.unwrap().expect("the job ran");
    report.changed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ticket_keeps_the_targets_of_its_type_complaints_tighter_than_suggestions() {
    let app = TestApp::spawn_configured(&[("SLA_FIRST_RESPONSE_MINUTES_COMPLAINT", "30")]).await;
    let token = app.login(DEMO_A).await;
    let complaint = create(&app, &token, "COMPLAINT").await;
    let created = time(&complaint, "createdAt");
    assert_eq!(time(&complaint, "firstResponseDueAt") - created, chrono::Duration::minutes(30), "{complaint}");
    assert_eq!(time(&complaint, "resolutionDueAt") - created, chrono::Duration::hours(24), "the default");
    assert_eq!((complaint["sla"].clone(), complaint["firstRespondedAt"].clone()), (json!("ON_TRACK"), Value::Null));
    let suggestion = create(&app, &token, "PRODUCT_SUGGESTION").await;
    assert_eq!(time(&suggestion, "firstResponseDueAt") - time(&suggestion, "createdAt"), chrono::Duration::hours(24));
    let seeded = "{ tickets(pageSize: 100) { items { id sla firstResponseDueAt } } }";
    let page = app.data(&token, seeded, json!({})).await["tickets"].clone();
    let old = items(&page).iter().find(|t| t["id"] != complaint["id"] && t["id"] != suggestion["id"]).unwrap();
    assert_eq!(
        (old["sla"].clone(), old["firstResponseDueAt"].clone()),
        (Value::Null, Value::Null),
        "demo tickets predate targets"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_target_an_unanswered_complaint_is_breached_and_alerted_exactly_once() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_configured(&pairs(&integrated(&receiver, &[]))).await;
    let token = app.login(DEMO_A).await;
    let complaint = create(&app, &token, "COMPLAINT").await;
    let id = str_of(&complaint, "id").to_owned();
    assert_eq!(run_breach_job(&app).await, 0, "nothing is late yet");

    app.clock().advance(50 * MINUTE);
    assert_eq!(ticket(&app, &token, &id).await["sla"], "AT_RISK", "in the last fifth of the hour");
    assert_eq!(listed(&app, &token, "AT_RISK").await, vec![id.clone()]);
    app.clock().advance(11 * MINUTE);
    let late = ticket(&app, &token, &id).await;
    assert_eq!((late["sla"].clone(), late["firstResponseSla"].clone()), (json!("BREACHED"), json!("BREACHED")));
    assert_eq!(listed(&app, &token, "BREACHED").await, vec![id.clone()]);
    assert!(!listed(&app, &token, "ON_TRACK").await.contains(&id));
    let rest = app.get(Some(&token), "/api/tickets?sla=breached&pageSize=100").await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    let rest_ids: Vec<&str> =
        rest.body["data"]["tickets"].as_array().unwrap().iter().map(|t| str_of(t, "id")).collect();
    assert_eq!(rest_ids, [id.as_str()], "REST filters the same way");

    assert_eq!(run_breach_job(&app).await, 1);
    assert_eq!(run_breach_job(&app).await, 0, "a second run finds the alert sent");
    let sent = alerts(&app, &token, &id).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(str_of(&sent[0], "content").contains("首次响应"), "{sent:?}");
    let hooks =
        receiver.wait_for("ticket.sla_breached", |r| r.iter().any(|h| h.json()["type"] == "ticket.sla_breached")).await;
    let breached: Vec<Value> = hooks.iter().map(|h| h.json()).filter(|b| b["type"] == "ticket.sla_breached").collect();
    assert_eq!(breached.len(), 1, "{breached:?}");
    assert!(breached[0].to_string().contains("first_response"), "{}", breached[0]);

    app.clock().advance(Duration::from_secs(24 * 3600));
    assert_eq!(run_breach_job(&app).await, 1, "the resolution target is a second breach, alerted once");
    assert_eq!(run_breach_job(&app).await, 0);
    assert_eq!(alerts(&app, &token, &id).await.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_in_time_meets_the_first_response_and_resolving_stops_the_resolution_clock() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let id = str_of(&create(&app, &token, "COMPLAINT").await, "id").to_owned();
    app.clock().advance(20 * MINUTE);
    reply(&app, &token, &id).await;
    let replied = ticket(&app, &token, &id).await;
    assert_eq!(time(&replied, "firstRespondedAt") - time(&replied, "createdAt"), chrono::Duration::minutes(20));
    assert_eq!((replied["firstResponseSla"].clone(), replied["sla"].clone()), (json!("MET"), json!("ON_TRACK")));
    app.clock().advance(2 * 60 * MINUTE);
    assert_eq!(ticket(&app, &token, &id).await["firstResponseSla"], "MET", "past the hour, still met");
    assert!(!listed(&app, &token, "BREACHED").await.contains(&id));

    resolve(&app, &token, &id).await;
    app.clock().advance(Duration::from_secs(30 * 24 * 3600));
    let resolved = ticket(&app, &token, &id).await;
    assert_eq!(
        (resolved["resolutionSla"].clone(), resolved["sla"].clone()),
        (json!("MET"), json!("MET")),
        "{resolved}"
    );
    assert_eq!(listed(&app, &token, "MET").await, vec![id.clone()]);
    assert_eq!(run_breach_job(&app).await, 0, "nothing to announce");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_marks_the_sla_parameter_an_addition_to_the_spec_route() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(format!("{}/api/openapi.json", app.address)).await.expect("the server answers");
    let document: Value = response.json().await.expect("JSON");
    let list = &document["paths"]["/api/tickets"]["get"];
    assert!(list.get("x-addition").is_none(), "the route is the spec's");
    let parameters = list["parameters"].as_array().expect("parameters");
    let sla = parameters.iter().find(|p| p["name"] == "sla").expect("an sla parameter");
    assert_eq!(sla["x-addition"], true, "{sla}");
    assert!(sla["description"].as_str().unwrap().starts_with("规范之外的新增接口："), "{sla}");
    assert_eq!(sla["schema"]["enum"], json!(["on_track", "at_risk", "breached", "met"]));
    assert!(parameters.iter().filter(|p| p["name"] != "sla").all(|p| p.get("x-addition").is_none()));
    app.stop().await;
}

/// The provider's alerts of `customer` waiting for a reply.
async fn wait_alerts(app: &TestApp, token: &str, customer: &str) -> usize {
    let query = "{ notifications(type: CUSTOMER_ALERT, pageSize: 100) { items { title relatedCustomerId } } }";
    let page = app.data(token, query, json!({})).await["notifications"].clone();
    items(&page).iter().filter(|n| n["relatedCustomerId"] == customer && n["title"] == "客户等待回复").count()
}

async fn provider_says(app: &TestApp, token: &str, customer: &str) {
    let query = "mutation($c: ID!) { sendChatMessage(customerId: $c, content: \"您好，马上为您处理\") { id } }";
    app.data(token, query, json!({ "c": customer })).await;
}

async fn run_wait_job(app: &TestApp) -> u64 {
    app.services.jobs.run_now(Job::ChatWaitAlerts, "test").await.unwrap().expect("the job ran").changed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_waiting_past_the_setting_raises_one_alert_per_waiting_episode() {
    use crate::integration::{customer_says, CS_SECRET};
    let app = TestApp::spawn_configured(&[("CS_WEBHOOK_SECRET", CS_SECRET), ("CHAT_WAIT_ALERT_MINUTES", "30")]).await;
    let token = app.login(DEMO_A).await;
    run_wait_job(&app).await; // whatever the demo chats already owe
    provider_says(&app, &token, "c001").await;
    customer_says(&app, "pc-wait-1", "c001", "请问什么时候能处理？").await;
    run_wait_job(&app).await;
    assert_eq!(wait_alerts(&app, &token, "c001").await, 0, "not waiting long yet");

    app.clock().advance(31 * MINUTE);
    run_wait_job(&app).await;
    run_wait_job(&app).await;
    assert_eq!(wait_alerts(&app, &token, "c001").await, 1, "one alert however often the job runs");
    customer_says(&app, "pc-wait-2", "c001", "还在吗？").await;
    assert_eq!(run_wait_job(&app).await, 0, "the same episode: still one alert");

    // An episode is known by the second it began (times are whole seconds), and chat messages are
    // stamped with the real time, not the test's clock: the next one has to begin a second later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    provider_says(&app, &token, "c001").await;
    customer_says(&app, "pc-wait-3", "c001", "又出现了同样的问题").await;
    app.clock().advance(31 * MINUTE);
    assert_eq!(run_wait_job(&app).await, 1, "a new episode");
    assert_eq!(wait_alerts(&app, &token, "c001").await, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_not_connected_hears_of_a_waiting_customer_by_wechat_once_per_episode() {
    use crate::integration::{customer_says, CS_SECRET};
    let receiver = Receiver::start().await;
    let base = receiver.url("");
    let app = TestApp::spawn_configured(&[
        ("CS_WEBHOOK_SECRET", CS_SECRET),
        ("CHAT_WAIT_ALERT_MINUTES", "30"),
        ("OUTBOX_POLL_INTERVAL_MS", "100"),
        ("WECHAT_API_BASE", base.as_str()),
        ("WECHAT_APP_ID", "wx-app-1"),
        ("WECHAT_APP_SECRET", "wx-secret-1"),
        ("WECHAT_TEMPLATE_ALERT", "template-alert"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    let bind = "mutation($code: String!) { bindWechat(code: $code) }";
    assert_eq!(app.data(&token, bind, json!({ "code": "code-a" })).await["bindWechat"], true);
    // c001 answered, so only the other demo chats are owed alerts by the first run.
    provider_says(&app, &token, "c001").await;
    run_wait_job(&app).await;
    let about_c001 = |receiver: &Receiver| -> Vec<Value> {
        let sends = receiver.received().into_iter().filter(|r| r.path.ends_with("/subscribe/send"));
        let messages = sends.map(|r| r.json());
        messages.filter(|m| m["page"].as_str().is_some_and(|page| page.contains("customerId=c001"))).collect()
    };

    customer_says(&app, "pc-wx-wait-1", "c001", "请问什么时候能处理？").await;
    app.clock().advance(31 * MINUTE);
    assert_eq!(run_wait_job(&app).await, 1, "c001's episode");
    receiver.wait_for("the wait alert by WeChat", |_| !about_c001(&receiver).is_empty()).await;
    let message = about_c001(&receiver).pop().unwrap();
    assert_eq!(
        (message["template_id"].as_str(), message["touser"].as_str()),
        (Some("template-alert"), Some("openid-code-a"))
    );
    assert_eq!(message["data"]["phrase2"]["value"], "等待回复", "{message}");
    let customer = app.data(&token, "{ customer(id: \"c001\") { name } }", json!({})).await;
    assert_eq!(message["data"]["thing1"]["value"], customer["customer"]["name"], "{message}");

    assert_eq!(run_wait_job(&app).await, 0, "the same episode");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(about_c001(&receiver).len(), 1, "one WeChat message for the episode");
    app.stop().await;
}
