//! Tickets (spec 3.3): the list with its filters and paging, one ticket's detail, the lifecycle
//! with its history, the notifications and unresolved issues that follow it, concurrent replies,
//! batched loading, and the provider boundary, through the real GraphQL endpoint.

use crate::support::*;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// Every field of a ticket, with its customer and its history.
const TICKET_FIELDS: &str =
    "id customerId customerName customer { id name unresolvedIssues } title content type status \
    escalationStatus escalationReason escalatedAt serviceProviderId serviceProviderName assigneeId assigneeName \
    lastProcessor resolution resolvedAt createdAt updatedAt \
    processingHistory { id operatorId operatorName action content timestamp }";

const STATUSES: [&str; 3] = ["OPEN", "PROCESSING", "RESOLVED"];
const TYPES: [&str; 6] = [
    "SYSTEM_ISSUE",
    "PRODUCT_SUGGESTION",
    "TRAINING_IMPLEMENTATION",
    "RENEWAL_QUESTION",
    "ISSUE_ESCALATION",
    "COMPLAINT",
];
const ACTIONS: [&str; 7] = ["create", "assign", "reply", "process", "resolve", "reopen", "escalate"];

fn list_query() -> String {
    format!(
        "query($page: Int = 1, $pageSize: Int = 10, $status: TicketStatus, $type: TicketType, $customerId: ID) {{
            tickets(page: $page, pageSize: $pageSize, status: $status, type: $type, customerId: $customerId) {{
                total page pageSize items {{ {TICKET_FIELDS} }}
            }}
        }}"
    )
}

fn detail_query() -> String {
    format!("query($id: ID!) {{ ticket(id: $id) {{ {TICKET_FIELDS} }} }}")
}

fn create_query() -> String {
    format!(
        "mutation($customerId: ID!, $title: String!, $content: String!, $type: TicketType!) {{
            createTicket(customerId: $customerId, title: $title, content: $content, type: $type) {{ {TICKET_FIELDS} }}
        }}"
    )
}

fn reply_query() -> String {
    format!(
        "mutation($id: ID!, $content: String!) {{
            replyTicket(id: $id, content: $content) {{
                ticketId replyId content operatorId operatorName timestamp ticket {{ {TICKET_FIELDS} }}
            }}
        }}"
    )
}

fn resolve_query() -> String {
    format!("mutation($id: ID!, $resolution: String) {{ resolveTicket(id: $id, resolution: $resolution) {{ {TICKET_FIELDS} }} }}")
}

fn escalate_query() -> String {
    format!(
        "mutation($id: ID!, $reason: String!) {{
            escalateTicket(id: $id, reason: $reason) {{
                ticketId escalationStatus reason escalatedAt notificationSent ticket {{ {TICKET_FIELDS} }}
            }}
        }}"
    )
}

const TICKET_UPDATES: &str = "{
    notifications(type: TICKET_UPDATE, pageSize: 100) {
        total unreadCount
        items { id serviceProviderId type title content relatedCustomerId relatedTicketId readStatus createdAt }
    }
}";

const UNRESOLVED: &str = "query($id: ID!) { customer(id: $id) { unresolvedIssues } }";
const TOTAL: &str = "{ tickets { total } }";
const ME: &str = "{ me { id name } }";

// --- helpers ---

/// The `tickets` page for the given variables (which must succeed).
async fn list(app: &TestApp, token: &str, variables: Value) -> Value {
    app.data(token, &list_query(), variables).await["tickets"].clone()
}

/// All of the provider's tickets, in one page, in list order.
async fn all_tickets(app: &TestApp, token: &str) -> Vec<Value> {
    let page = list(app, token, json!({ "pageSize": 100 })).await;
    assert_eq!(total(&page), items(&page).len() as u64, "one page of a hundred holds every ticket");
    items(&page).clone()
}

async fn ticket(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(token, &detail_query(), json!({ "id": id })).await["ticket"].clone()
}

async fn ticket_total(app: &TestApp, token: &str) -> u64 {
    app.data(token, TOTAL, json!({})).await["tickets"]["total"].as_u64().expect("a total")
}

async fn create(app: &TestApp, token: &str, customer: &str, title: &str) -> Value {
    let variables = json!({ "customerId": customer, "title": title, "content": "门店收银台无法打印小票。", "type": "SYSTEM_ISSUE" });
    app.data(token, &create_query(), variables).await["createTicket"].clone()
}

async fn reply(app: &TestApp, token: &str, id: &str, content: &str) -> Value {
    app.data(token, &reply_query(), json!({ "id": id, "content": content })).await["replyTicket"].clone()
}

async fn resolve(app: &TestApp, token: &str, id: &str, resolution: Option<&str>) -> Value {
    app.data(token, &resolve_query(), json!({ "id": id, "resolution": resolution })).await["resolveTicket"].clone()
}

async fn escalate(app: &TestApp, token: &str, id: &str, reason: &str) -> Value {
    app.data(token, &escalate_query(), json!({ "id": id, "reason": reason })).await["escalateTicket"].clone()
}

async fn ticket_updates(app: &TestApp, token: &str) -> Value {
    app.data(token, TICKET_UPDATES, json!({})).await["notifications"].clone()
}

async fn unresolved_issues(app: &TestApp, token: &str, customer: &str) -> u64 {
    let data = app.data(token, UNRESOLVED, json!({ "id": customer })).await;
    data["customer"]["unresolvedIssues"].as_u64().expect("a count of unresolved issues")
}

async fn provider_name(app: &TestApp, token: &str) -> String {
    str_of(&app.data(token, ME, json!({})).await["me"], "name").to_owned()
}

/// A seeded ticket of the provider that is open and not escalated, so every change applies to it.
async fn an_open_normal_ticket(app: &TestApp, token: &str) -> Value {
    let page = list(app, token, json!({ "status": "OPEN", "pageSize": 100 })).await;
    items(&page)
        .iter()
        .find(|t| t["escalationStatus"] == "NORMAL")
        .cloned()
        .unwrap_or_else(|| panic!("the demo data has an open ticket that is not escalated: {page}"))
}

fn ids(tickets: &[Value]) -> Vec<String> {
    tickets.iter().map(|t| str_of(t, "id").to_owned()).collect()
}

fn history(ticket: &Value) -> &Vec<Value> {
    ticket["processingHistory"].as_array().unwrap_or_else(|| panic!("a processing history: {ticket}"))
}

fn actions(ticket: &Value) -> Vec<&str> {
    history(ticket).iter().map(|e| str_of(e, "action")).collect()
}

fn last_entry(ticket: &Value) -> &Value {
    history(ticket).last().unwrap_or_else(|| panic!("a history entry: {ticket}"))
}

fn assert_bad_input(body: &Value, context: &str) {
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{context}: {body}");
    assert!(body["data"].is_null(), "{context}: no data on error: {body}");
    assert!(has_chinese(&error_message(body)), "{context}: a message in Chinese: {body}");
}

/// Asserts that a change between two `ticket_updates` snapshots added exactly one unread
/// ticket_update notification, for `ticket`, and raised the unread count by exactly one.
fn assert_one_notification_for(before: &Value, after: &Value, ticket: &Value) {
    assert_eq!(total(after), total(before) + 1, "one more ticket_update notification");
    assert_eq!(
        after["unreadCount"].as_u64(),
        before["unreadCount"].as_u64().map(|n| n + 1),
        "the unread count rises by one"
    );
    let known: HashSet<&str> = items(before).iter().map(|n| str_of(n, "id")).collect();
    let new: Vec<&Value> = items(after).iter().filter(|n| !known.contains(str_of(n, "id"))).collect();
    assert_eq!(new.len(), 1, "exactly one new notification: {new:?}");
    let notification = new[0];
    assert_eq!(notification["type"], "TICKET_UPDATE", "{notification}");
    assert_eq!(notification["serviceProviderId"], "sp001", "{notification}");
    assert_eq!(notification["relatedTicketId"], ticket["id"], "{notification}");
    assert_eq!(notification["relatedCustomerId"], ticket["customerId"], "{notification}");
    assert_eq!(notification["readStatus"], "UNREAD", "{notification}");
    assert!(str_of(notification, "content").contains(str_of(ticket, "title")), "names the ticket: {notification}");
    time(notification, "createdAt");
}

// --- the list ---

#[tokio::test]
async fn the_list_defaults_to_the_first_ten_of_the_providers_thirty_six_tickets() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = app.data(&token, "{ tickets { total page pageSize items { id serviceProviderId } } }", json!({})).await;
    let page = &data["tickets"];
    assert_eq!(page["page"], 1);
    assert_eq!(page["pageSize"], 10);
    assert_eq!(page["total"], 36);
    assert_eq!(items(page).len(), 10);
    assert!(items(page).iter().all(|t| t["serviceProviderId"] == "sp001"), "{page}");
}

#[tokio::test]
async fn a_provider_lists_exactly_its_own_tickets() {
    let app = TestApp::spawn().await;
    for (user, range) in [(DEMO_A, 1..=36), (DEMO_B, 37..=72)] {
        let token = app.login(user).await;
        let mut found = ids(&all_tickets(&app, &token).await);
        found.sort();
        let expected: Vec<String> = range.map(|n| format!("t{n:03}")).collect();
        assert_eq!(found, expected, "{user}");
    }
}

#[tokio::test]
async fn the_list_runs_most_recently_updated_first() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let tickets = all_tickets(&app, &token).await;
    for pair in tickets.windows(2) {
        let (first, second) = (time(&pair[0], "updatedAt"), time(&pair[1], "updatedAt"));
        assert!(first >= second, "updatedAt descending: {} then {}", pair[0]["id"], pair[1]["id"]);
        if first == second {
            assert!(str_of(&pair[0], "id") < str_of(&pair[1], "id"), "equal times run by id: {pair:?}");
        }
    }
}

#[tokio::test]
async fn a_ticket_that_changes_moves_to_the_top_of_the_list() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = all_tickets(&app, &token).await;
    let oldest = str_of(before.last().expect("tickets"), "id").to_owned();

    let replied = reply(&app, &token, &oldest, "已安排工程师跟进。").await;
    let after = all_tickets(&app, &token).await;
    let position = after.iter().position(|t| t["id"] == oldest.as_str()).expect("still listed");
    let updated = time(&replied["ticket"], "updatedAt");
    assert_eq!(time(&after[0], "updatedAt"), updated, "nothing was updated later: {}", after[0]);
    assert!(
        after[..position].iter().all(|t| time(t, "updatedAt") == updated),
        "only tickets updated in the same second come before it"
    );
}

#[tokio::test]
async fn pages_split_the_list_without_overlap() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut seen = Vec::new();
    for page in 1..=4 {
        let found = list(&app, &token, json!({ "page": page, "pageSize": 10 })).await;
        assert_eq!(found["page"], page);
        assert_eq!(total(&found), 36);
        seen.extend(ids(items(&found)));
    }
    assert_eq!(seen, ids(&all_tickets(&app, &token).await), "four pages of ten are the list of thirty-six, in order");
    let past = list(&app, &token, json!({ "page": 5, "pageSize": 10 })).await;
    assert!(items(&past).is_empty());
    assert_eq!(total(&past), 36);
}

#[tokio::test]
async fn each_status_filter_returns_only_its_status_and_together_they_cover_every_ticket() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = all_tickets(&app, &token).await;
    let mut seen = Vec::new();
    for status in STATUSES {
        let page = list(&app, &token, json!({ "status": status, "pageSize": 100 })).await;
        let found = items(&page);
        assert!(!found.is_empty(), "the demo data has {status} tickets");
        assert_eq!(total(&page), found.len() as u64, "{status}");
        assert!(found.iter().all(|t| t["status"] == status), "only {status}: {page}");
        let expected = everything.iter().filter(|t| t["status"] == status).count();
        assert_eq!(found.len(), expected, "every {status} ticket of the list");
        seen.extend(ids(found));
    }
    seen.sort();
    let mut all = ids(&everything);
    all.sort();
    assert_eq!(seen, all, "the three statuses cover every ticket once");
}

#[tokio::test]
async fn each_type_filter_returns_only_its_type_and_together_they_cover_every_ticket() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = all_tickets(&app, &token).await;
    let mut seen = Vec::new();
    for kind in TYPES {
        let page = list(&app, &token, json!({ "type": kind, "pageSize": 100 })).await;
        let found = items(&page);
        assert!(!found.is_empty(), "the demo data has {kind} tickets");
        assert_eq!(total(&page), found.len() as u64, "{kind}");
        assert!(found.iter().all(|t| t["type"] == kind), "only {kind}: {page}");
        assert_eq!(found.len(), everything.iter().filter(|t| t["type"] == kind).count(), "every {kind} ticket");
        seen.extend(ids(found));
    }
    seen.sort();
    let mut all = ids(&everything);
    all.sort();
    assert_eq!(seen, all, "the six types cover every ticket once");
}

#[tokio::test]
async fn status_and_type_filters_combine() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for status in STATUSES {
        let of_status = total(&list(&app, &token, json!({ "status": status })).await);
        let mut sum = 0;
        for kind in TYPES {
            let page = list(&app, &token, json!({ "status": status, "type": kind, "pageSize": 100 })).await;
            assert!(items(&page).iter().all(|t| t["status"] == status && t["type"] == kind), "{page}");
            sum += total(&page);
        }
        assert_eq!(sum, of_status, "the types split the {status} tickets");
    }
}

#[tokio::test]
async fn the_customer_filter_returns_exactly_that_customers_tickets() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = all_tickets(&app, &token).await;
    let mut sum = 0;
    for n in 1..=30 {
        let customer = format!("c{n:03}");
        let page = list(&app, &token, json!({ "customerId": customer, "pageSize": 100 })).await;
        let expected: Vec<String> =
            ids(&everything.iter().filter(|t| t["customerId"] == customer.as_str()).cloned().collect::<Vec<_>>());
        assert_eq!(ids(items(&page)), expected, "{customer}'s tickets, in list order");
        assert_eq!(total(&page), expected.len() as u64, "{customer}");
        sum += total(&page);
    }
    assert_eq!(sum, everything.len() as u64, "every ticket belongs to one of the thirty customers");
}

#[tokio::test]
async fn a_customers_tickets_show_its_name_and_its_open_ones_count_as_its_unresolved_issues() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = all_tickets(&app, &token).await;
    let customer = str_of(&everything[0], "customerId").to_owned();
    let detail = app
        .data(&token, "query($id: ID!) { customer(id: $id) { name unresolvedIssues } }", json!({ "id": customer }))
        .await;
    let page = list(&app, &token, json!({ "customerId": customer, "pageSize": 100 })).await;
    assert!(!items(&page).is_empty());
    for t in items(&page) {
        assert_eq!(t["customerName"], detail["customer"]["name"], "{t}");
        assert_eq!(t["customer"]["id"], customer.as_str(), "{t}");
        assert_eq!(t["customer"]["name"], detail["customer"]["name"], "{t}");
    }
    let unresolved = items(&page).iter().filter(|t| t["status"] != "RESOLVED").count() as u64;
    assert_eq!(detail["customer"]["unresolvedIssues"].as_u64(), Some(unresolved));
}

// --- one ticket ---

#[tokio::test]
async fn a_resolved_ticket_has_every_field_of_the_spec_with_times_in_utc() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let provider = provider_name(&app, &token).await;
    let resolved = list(&app, &token, json!({ "status": "RESOLVED", "pageSize": 1 })).await;
    let listed = &items(&resolved)[0];
    let id = str_of(listed, "id");

    let detail = ticket(&app, &token, id).await;
    assert_eq!(&detail, listed, "the detail is what the list shows");
    assert_eq!(detail["id"], id);
    assert_eq!(detail["serviceProviderId"], "sp001");
    assert_eq!(detail["serviceProviderName"], provider.as_str());
    assert_eq!(detail["customer"]["id"], detail["customerId"]);
    assert!(!str_of(&detail["customer"], "name").is_empty());
    assert_eq!(detail["customer"]["name"], detail["customerName"]);
    for field in ["title", "content", "resolution", "lastProcessor"] {
        assert!(!str_of(&detail, field).is_empty(), "{field} in {detail}");
    }
    assert!(TYPES.contains(&str_of(&detail, "type")), "{detail}");
    assert_eq!(detail["status"], "RESOLVED");
    assert!(["NORMAL", "ESCALATED"].contains(&str_of(&detail, "escalationStatus")), "{detail}");
    let created = time(&detail, "createdAt");
    let updated = time(&detail, "updatedAt");
    let resolved_at = time(&detail, "resolvedAt");
    assert!(created <= resolved_at && resolved_at <= updated, "created, resolved, updated in order: {detail}");

    let entries = history(&detail);
    assert!(entries.len() >= 2, "at least created and resolved: {detail}");
    assert_eq!(entries[0]["action"], "create");
    assert_eq!(last_entry(&detail)["action"], "resolve");
    for entry in entries {
        for field in ["id", "operatorId", "operatorName", "content"] {
            assert!(!str_of(entry, field).is_empty(), "{field} in {entry}");
        }
        assert!(ACTIONS.contains(&str_of(entry, "action")), "{entry}");
        time(entry, "timestamp");
    }
    let times: Vec<DateTime<Utc>> = entries.iter().map(|e| time(e, "timestamp")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");
    assert_eq!(detail["lastProcessor"], last_entry(&detail)["operatorName"], "whoever acted last");
}

#[tokio::test]
async fn an_escalated_ticket_shows_its_reason_and_when_it_was_escalated() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let escalated = list(&app, &token, json!({ "type": "ISSUE_ESCALATION", "pageSize": 100 })).await;
    for t in items(&escalated) {
        assert_eq!(t["escalationStatus"], "ESCALATED", "{t}");
        assert!(!str_of(t, "escalationReason").is_empty(), "{t}");
        assert!(time(t, "escalatedAt") >= time(t, "createdAt"), "{t}");
        assert!(actions(t).contains(&"escalate"), "{t}");
    }
}

#[tokio::test]
async fn an_unknown_ticket_is_not_found() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let body = app.graphql(Some(&token), &detail_query(), json!({ "id": "t999999" })).await;
    assert_error(&body, "NOT_FOUND");
    let body = app.graphql(Some(&token), &reply_query(), json!({ "id": "t999999", "content": "在吗" })).await;
    assert_error(&body, "NOT_FOUND");
}

// --- the lifecycle ---

#[tokio::test]
async fn a_new_ticket_is_open_with_a_create_entry_in_its_history() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let provider = provider_name(&app, &token).await;
    let before = ticket_total(&app, &token).await;
    let started = Utc::now() - chrono::Duration::seconds(1);

    let created = create(&app, &token, "c002", "收银台无法打印").await;
    assert_eq!(created["customerId"], "c002");
    assert_eq!(created["customer"]["id"], "c002");
    assert_eq!(created["customerName"], created["customer"]["name"]);
    assert_eq!(created["title"], "收银台无法打印");
    assert_eq!(created["content"], "门店收银台无法打印小票。");
    assert_eq!(created["type"], "SYSTEM_ISSUE");
    assert_eq!(created["status"], "OPEN");
    assert_eq!(created["escalationStatus"], "NORMAL");
    assert_eq!(created["serviceProviderId"], "sp001");
    assert_eq!(created["serviceProviderName"], provider.as_str());
    for field in ["resolvedAt", "resolution", "escalationReason", "escalatedAt"] {
        assert!(created[field].is_null(), "no {field} yet: {created}");
    }
    let created_at = time(&created, "createdAt");
    assert!(created_at >= started && created_at <= Utc::now(), "created just now: {created_at}");
    assert_eq!(created["updatedAt"], created["createdAt"]);
    assert_eq!(actions(&created), ["create"]);
    let entry = last_entry(&created);
    assert_eq!(entry["operatorId"], "sp001");
    assert_eq!(entry["operatorName"], provider.as_str());
    assert_eq!(entry["timestamp"], created["createdAt"]);
    assert_eq!(created["lastProcessor"], provider.as_str());

    let id = str_of(&created, "id");
    assert_eq!(ticket(&app, &token, id).await, created, "stored as returned");
    assert_eq!(ticket_total(&app, &token).await, before + 1);
    let open = list(&app, &token, json!({ "status": "OPEN", "customerId": "c002", "pageSize": 100 })).await;
    assert!(ids(items(&open)).contains(&id.to_owned()), "listed among c002's open tickets");
}

#[tokio::test]
async fn the_first_reply_moves_an_open_ticket_to_processing_with_the_reply_in_its_history() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let provider = provider_name(&app, &token).await;
    let created = create(&app, &token, "c003", "库存数量不对").await;
    let id = str_of(&created, "id");

    let replied = reply(&app, &token, id, "  请先重新盘点一次。  ").await;
    assert_eq!(replied["ticketId"], id);
    assert_eq!(replied["content"], "请先重新盘点一次。", "the reply is trimmed");
    assert_eq!(replied["operatorId"], "sp001");
    assert_eq!(replied["operatorName"], provider.as_str());
    let after = &replied["ticket"];
    assert_eq!(after["status"], "PROCESSING");
    assert_eq!(actions(after), ["create", "reply"]);
    let entry = last_entry(after);
    assert_eq!(entry["id"], replied["replyId"], "the reply id names the history entry");
    assert_eq!(entry["content"], "请先重新盘点一次。");
    assert_eq!(entry["timestamp"], replied["timestamp"]);
    assert_eq!(after["updatedAt"], replied["timestamp"]);
    assert_eq!(after["lastProcessor"], provider.as_str());
    assert_eq!(&ticket(&app, &token, id).await, after, "stored as returned");
}

#[tokio::test]
async fn a_further_reply_keeps_the_ticket_processing_and_adds_another_entry() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let created = create(&app, &token, "c004", "扫码枪没反应").await;
    let id = str_of(&created, "id");
    reply(&app, &token, id, "请检查扫码枪模式。").await;
    let second = reply(&app, &token, id, "已远程设置为键盘模式。").await;
    assert_eq!(second["ticket"]["status"], "PROCESSING");
    assert_eq!(actions(&second["ticket"]), ["create", "reply", "reply"]);
    let contents: Vec<&str> = history(&second["ticket"]).iter().skip(1).map(|e| str_of(e, "content")).collect();
    assert_eq!(contents, ["请检查扫码枪模式。", "已远程设置为键盘模式。"]);
}

#[tokio::test]
async fn resolving_records_the_resolution_and_when_it_was_resolved() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let created = create(&app, &token, "c005", "报表导出失败").await;
    let id = str_of(&created, "id");
    reply(&app, &token, id, "正在排查。").await;

    let resolved = resolve(&app, &token, id, Some("已升级到最新版本，导出恢复正常")).await;
    assert_eq!(resolved["status"], "RESOLVED");
    assert_eq!(resolved["resolution"], "已升级到最新版本，导出恢复正常");
    let resolved_at = time(&resolved, "resolvedAt");
    assert!(resolved_at >= time(&created, "createdAt"));
    assert_eq!(resolved["resolvedAt"], resolved["updatedAt"]);
    assert_eq!(actions(&resolved), ["create", "reply", "resolve"]);
    assert_eq!(last_entry(&resolved)["content"], "已升级到最新版本，导出恢复正常");
    assert_eq!(last_entry(&resolved)["timestamp"], resolved["resolvedAt"]);
    assert_eq!(ticket(&app, &token, id).await, resolved, "stored as returned");
}

#[tokio::test]
async fn an_open_ticket_can_be_resolved_without_a_resolution_text() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for resolution in [None, Some(""), Some("   ")] {
        let created = create(&app, &token, "c006", "续费发票").await;
        let resolved = resolve(&app, &token, str_of(&created, "id"), resolution).await;
        assert_eq!(resolved["status"], "RESOLVED", "{resolution:?}");
        assert!(resolved["resolution"].is_null(), "no resolution for {resolution:?}: {resolved}");
        assert_eq!(resolved["resolvedAt"], resolved["updatedAt"]);
        assert_eq!(actions(&resolved), ["create", "resolve"]);
        assert!(has_chinese(str_of(last_entry(&resolved), "content")), "the entry says it was resolved: {resolved}");
    }
}

#[tokio::test]
async fn a_reply_to_a_resolved_ticket_reopens_it() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let created = create(&app, &token, "c007", "打印模板错乱").await;
    let id = str_of(&created, "id");
    resolve(&app, &token, id, Some("已重置模板")).await;

    let replied = reply(&app, &token, id, "客户反馈问题又出现了。").await;
    let reopened = &replied["ticket"];
    assert_eq!(reopened["status"], "PROCESSING");
    assert!(reopened["resolvedAt"].is_null(), "resolvedAt is cleared: {reopened}");
    assert!(reopened["resolution"].is_null(), "resolution is cleared: {reopened}");
    assert_eq!(actions(reopened), ["create", "resolve", "reopen", "reply"]);
    assert_eq!(last_entry(reopened)["id"], replied["replyId"]);
    assert_eq!(last_entry(reopened)["content"], "客户反馈问题又出现了。");
    assert_eq!(&ticket(&app, &token, id).await, reopened, "stored as returned");

    // Once reopened it can be resolved again.
    let again = resolve(&app, &token, id, Some("已彻底修复")).await;
    assert_eq!(again["status"], "RESOLVED");
    assert_eq!(again["resolution"], "已彻底修复");
}

/// What happened to a ticket before the change a conflict test tries.
enum Done {
    Resolved(Option<&'static str>),
    Escalated(&'static str),
}

#[tokio::test]
async fn a_change_that_does_not_apply_to_the_tickets_state_is_a_conflict_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    // (the case, the customer and title of a new ticket, what is done to it first, the change tried)
    let cases = [
        (
            "resolving a resolved ticket",
            "c008",
            "登录失败",
            Done::Resolved(Some("已重置密码")),
            resolve_query(),
            json!({ "resolution": "再次解决" }),
        ),
        (
            "escalating an escalated ticket",
            "c010",
            "系统很慢",
            Done::Escalated("第一次升级"),
            escalate_query(),
            json!({ "reason": "第二次升级" }),
        ),
        (
            "escalating a resolved ticket",
            "c011",
            "无法开票",
            Done::Resolved(None),
            escalate_query(),
            json!({ "reason": "客户不满意" }),
        ),
    ];
    for (case, customer, title, done, query, mut variables) in cases {
        let created = create(&app, &token, customer, title).await;
        let id = str_of(&created, "id");
        match done {
            Done::Resolved(resolution) => {
                resolve(&app, &token, id, resolution).await;
            }
            Done::Escalated(reason) => {
                escalate(&app, &token, id, reason).await;
            }
        }
        let before = ticket(&app, &token, id).await;
        if let Done::Escalated(reason) = done {
            assert_eq!(before["escalationReason"], reason, "{case}");
        }
        let updates = ticket_updates(&app, &token).await;

        variables["id"] = json!(id);
        let body = app.graphql(Some(&token), &query, variables).await;
        assert_eq!(error_code(&body), "CONFLICT", "{case}: {body}");
        assert!(body["data"].is_null(), "{case}: no data: {body}");
        assert!(has_chinese(&error_message(&body)), "{case}: {body}");
        assert_eq!(ticket(&app, &token, id).await, before, "{case}: the ticket is unchanged");
        assert_eq!(ticket_updates(&app, &token).await, updates, "{case}: no notification");
    }
}

#[tokio::test]
async fn escalating_sets_the_escalation_status_with_the_reason_in_the_history() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let provider = provider_name(&app, &token).await;
    let created = create(&app, &token, "c009", "数据同步失败").await;
    let id = str_of(&created, "id");

    let escalation = escalate(&app, &token, id, "需要二线技术支持排查数据库").await;
    assert_eq!(escalation["ticketId"], id);
    assert_eq!(escalation["escalationStatus"], "ESCALATED");
    assert_eq!(escalation["reason"], "需要二线技术支持排查数据库");
    assert_eq!(escalation["notificationSent"], false, "no PC customer-service system is configured here");
    let after = &escalation["ticket"];
    assert_eq!(after["escalationStatus"], "ESCALATED");
    assert_eq!(after["escalationReason"], "需要二线技术支持排查数据库");
    assert_eq!(after["escalatedAt"], escalation["escalatedAt"]);
    assert!(time(after, "escalatedAt") >= time(&created, "createdAt"));
    assert_eq!(after["status"], "OPEN", "escalating leaves the status as it was");
    assert_eq!(actions(after), ["create", "escalate"]);
    let entry = last_entry(after);
    assert!(str_of(entry, "content").contains("需要二线技术支持排查数据库"), "the reason is in the history: {entry}");
    assert_eq!(entry["operatorName"], provider.as_str());
    assert_eq!(entry["timestamp"], after["escalatedAt"]);
    assert_eq!(&ticket(&app, &token, id).await, after, "stored as returned");
}

// --- what follows a change ---

#[tokio::test]
async fn every_ticket_change_creates_exactly_one_ticket_update_notification_naming_the_ticket() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;

    let before = ticket_updates(&app, &token).await;
    let created = create(&app, &token, "c012", "退货入口找不到").await;
    let id = str_of(&created, "id").to_owned();
    let after = ticket_updates(&app, &token).await;
    assert_one_notification_for(&before, &after, &created);

    let steps: [(&str, Value); 4] = [
        ("reply", json!({ "content": "请查看售后菜单。" })),
        ("escalate", json!({ "reason": "需要产品经理确认" })),
        ("resolve", json!({ "resolution": "已恢复退货入口" })),
        ("reopen", json!({ "content": "客户又找不到了。" })),
    ];
    for (step, mut variables) in steps {
        variables["id"] = json!(id);
        let query = match step {
            "reply" | "reopen" => reply_query(),
            "escalate" => escalate_query(),
            _ => resolve_query(),
        };
        let before = ticket_updates(&app, &token).await;
        let body = app.graphql(Some(&token), &query, variables).await;
        assert!(body.get("errors").is_none(), "{step}: {body}");
        let after = ticket_updates(&app, &token).await;
        assert_one_notification_for(&before, &after, &created);
    }
}

#[tokio::test]
async fn a_ticket_change_does_not_notify_another_provider() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let before_b = ticket_updates(&app, &token_b).await;
    let created = create(&app, &token_a, "c013", "客服响应慢").await;
    let id = str_of(&created, "id");
    reply(&app, &token_a, id, "已安排专人跟进。").await;
    assert_eq!(ticket_updates(&app, &token_b).await, before_b);
}

#[tokio::test]
async fn a_customers_unresolved_issues_follow_its_tickets_through_the_lifecycle() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let customer = "c014";
    let base = unresolved_issues(&app, &token, customer).await;

    let created = create(&app, &token, customer, "库存预警不生效").await;
    let id = str_of(&created, "id");
    assert_eq!(unresolved_issues(&app, &token, customer).await, base + 1, "opening adds one");
    assert_eq!(created["customer"]["unresolvedIssues"].as_u64(), Some(base + 1), "as the ticket's customer shows");

    reply(&app, &token, id, "请确认预警阈值。").await;
    assert_eq!(unresolved_issues(&app, &token, customer).await, base + 1, "processing is still unresolved");

    escalate(&app, &token, id, "疑似程序缺陷").await;
    assert_eq!(unresolved_issues(&app, &token, customer).await, base + 1, "escalated is still unresolved");

    resolve(&app, &token, id, Some("已修复")).await;
    assert_eq!(unresolved_issues(&app, &token, customer).await, base, "resolving takes it away");

    reply(&app, &token, id, "客户说又不生效了。").await;
    assert_eq!(unresolved_issues(&app, &token, customer).await, base + 1, "reopening adds it back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_replies_sent_at_once_all_land_in_the_history() {
    let app = Arc::new(TestApp::spawn().await);
    let token = app.login(DEMO_A).await;
    let created = create(&app, &token, "c015", "多人同时回复").await;
    let id = str_of(&created, "id").to_owned();
    let updates = total(&ticket_updates(&app, &token).await);

    let mut replies = tokio::task::JoinSet::new();
    for n in 0..10 {
        let (app, token, id) = (Arc::clone(&app), token.clone(), id.clone());
        replies.spawn(async move {
            let variables = json!({ "id": id, "content": format!("并发回复 {n}") });
            app.graphql(Some(&token), &reply_query(), variables).await
        });
    }
    let mut reply_ids = HashSet::new();
    while let Some(body) = replies.join_next().await {
        let body = body.expect("the reply task finishes");
        assert!(body.get("errors").is_none(), "no reply fails: {body}");
        reply_ids.insert(str_of(&body["data"]["replyTicket"], "replyId").to_owned());
    }
    assert_eq!(reply_ids.len(), 10, "ten distinct history entries");

    let stored = ticket(&app, &token, &id).await;
    let entries: Vec<&Value> = history(&stored).iter().filter(|e| e["action"] == "reply").collect();
    assert_eq!(entries.len(), 10, "all ten replies are in the history: {stored}");
    let contents: HashSet<&str> = entries.iter().map(|e| str_of(e, "content")).collect();
    let expected: HashSet<String> = (0..10).map(|n| format!("并发回复 {n}")).collect();
    assert_eq!(contents, expected.iter().map(String::as_str).collect::<HashSet<_>>());
    let stored_ids: HashSet<String> = entries.iter().map(|e| str_of(e, "id").to_owned()).collect();
    assert_eq!(stored_ids, reply_ids, "each reply's id names its stored entry");
    assert_eq!(stored["status"], "PROCESSING");
    assert_eq!(total(&ticket_updates(&app, &token).await), updates + 10, "one notification per reply");
}

// --- batching ---

#[tokio::test]
async fn listing_tickets_with_their_customers_costs_the_same_few_store_calls_for_ten_and_a_hundred() {
    // The count is the whole process's: the scheduled jobs (first run at start-up) would add theirs.
    let app = TestApp::spawn_configured(&[("JOB_INTERVAL_SECONDS", "0")]).await;
    let token = app.login(DEMO_A).await;
    let query = "query($size: Int!) {
        tickets(pageSize: $size) { items { id customer { id name unresolvedIssues } serviceProviderName } }
    }";
    let mut costs = Vec::new();
    for size in [10, 100] {
        // A loader sends what it has gathered 1 ms after its first key: on a loaded machine a page
        // can straddle that and take one call more. The fewest of three shows what the page needs.
        let mut fewest = u64::MAX;
        let mut data = Value::Null;
        for _ in 0..3 {
            let before = app.store_round_trips();
            data = app.data(&token, query, json!({ "size": size })).await;
            fewest = fewest.min(app.store_round_trips() - before);
        }
        costs.push(fewest);
        let found = items(&data["tickets"]);
        let customers: HashSet<&str> = found.iter().map(|t| str_of(&t["customer"], "id")).collect();
        assert!(found.len() as u64 >= size.min(36), "a full page of {size}: {} tickets", found.len());
        assert!(customers.len() > 1, "tickets of several customers");
        assert!(found.iter().all(|t| !str_of(t, "serviceProviderName").is_empty()));
    }
    assert_eq!(costs[0], costs[1], "a page of a hundred costs what a page of ten does: {costs:?}");
    assert!(costs[1] <= 4, "at most four store calls: {costs:?}");
}

// --- the provider boundary ---

#[tokio::test]
async fn another_providers_ticket_and_customer_are_not_found() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_B).await;
    let body = app.graphql(Some(&token), &detail_query(), json!({ "id": "t001" })).await;
    assert_error(&body, "NOT_FOUND");
    let body = app.graphql(Some(&token), &list_query(), json!({ "customerId": "c001" })).await;
    assert_error(&body, "NOT_FOUND");
    // Its own it does see.
    assert_eq!(ticket(&app, &token, "t037").await["serviceProviderId"], "sp002");
}

#[tokio::test]
async fn another_provider_cannot_reply_resolve_or_escalate_a_ticket_and_it_stays_unchanged() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let target = an_open_normal_ticket(&app, &token_a).await;
    let id = str_of(&target, "id");
    let before = ticket(&app, &token_a, id).await;
    let updates_a = ticket_updates(&app, &token_a).await;
    let updates_b = ticket_updates(&app, &token_b).await;

    let attempts = [
        (reply_query(), json!({ "id": id, "content": "越权回复" })),
        (resolve_query(), json!({ "id": id, "resolution": "越权解决" })),
        (escalate_query(), json!({ "id": id, "reason": "越权升级" })),
    ];
    for (query, variables) in attempts {
        let body = app.graphql(Some(&token_b), &query, variables).await;
        assert_error(&body, "NOT_FOUND");
    }
    assert_eq!(ticket(&app, &token_a, id).await, before, "the ticket is unchanged");
    assert_eq!(ticket_updates(&app, &token_a).await, updates_a, "no notification for its provider");
    assert_eq!(ticket_updates(&app, &token_b).await, updates_b, "no notification for the other one");
}

#[tokio::test]
async fn another_provider_cannot_open_a_ticket_for_a_customer_not_its_own() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let (total_a, total_b) = (ticket_total(&app, &token_a).await, ticket_total(&app, &token_b).await);
    let unresolved = unresolved_issues(&app, &token_a, "c001").await;

    let variables = json!({ "customerId": "c001", "title": "越权工单", "content": "不应创建", "type": "COMPLAINT" });
    let body = app.graphql(Some(&token_b), &create_query(), variables).await;
    assert_error(&body, "NOT_FOUND");
    assert_eq!(ticket_total(&app, &token_a).await, total_a);
    assert_eq!(ticket_total(&app, &token_b).await, total_b);
    assert_eq!(unresolved_issues(&app, &token_a, "c001").await, unresolved);
}

// --- bad input ---

#[tokio::test]
async fn an_empty_or_over_long_title_or_content_is_bad_input_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = ticket_total(&app, &token).await;
    let long_title = "标".repeat(101);
    let long_content = "内".repeat(5001);
    let cases = [
        ("", "内容", "title"),
        ("   ", "内容", "title"),
        (long_title.as_str(), "内容", "title"),
        ("标题", "", "content"),
        ("标题", "\n\t", "content"),
        ("标题", long_content.as_str(), "content"),
    ];
    for (title, content, field) in cases {
        let variables = json!({ "customerId": "c001", "title": title, "content": content, "type": "SYSTEM_ISSUE" });
        let body = app.graphql(Some(&token), &create_query(), variables).await;
        let context = format!("title of {} chars, content of {}", title.chars().count(), content.chars().count());
        assert_bad_input(&body, &context);
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{context}");
    }
    assert_eq!(ticket_total(&app, &token).await, before, "nothing was created");

    // At the limits it is accepted.
    let variables = json!({ "customerId": "c001", "title": "标".repeat(100), "content": "内".repeat(5000), "type": "SYSTEM_ISSUE" });
    let created = app.data(&token, &create_query(), variables).await["createTicket"].clone();
    assert_eq!(str_of(&created, "title").chars().count(), 100);
    assert_eq!(ticket_total(&app, &token).await, before + 1);
}

#[tokio::test]
async fn malformed_ticket_and_customer_ids_are_bad_input_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before_total = ticket_total(&app, &token).await;
    let before_t001 = ticket(&app, &token, "t001").await;
    let too_long = "t".repeat(65);
    for id in ["", "t001; DROP TABLE tickets", "工单一", "t 001", too_long.as_str()] {
        let attempts = [
            (detail_query(), json!({ "id": id })),
            (reply_query(), json!({ "id": id, "content": "回复" })),
            (resolve_query(), json!({ "id": id, "resolution": "解决" })),
            (escalate_query(), json!({ "id": id, "reason": "升级" })),
        ];
        for (query, variables) in attempts {
            let body = app.graphql(Some(&token), &query, variables).await;
            assert_bad_input(&body, &format!("ticket id {id:?}"));
            assert_eq!(body["errors"][0]["extensions"]["field"], "id", "{body}");
        }
        let variables = json!({ "customerId": id, "title": "标题", "content": "内容", "type": "SYSTEM_ISSUE" });
        let body = app.graphql(Some(&token), &create_query(), variables).await;
        assert_bad_input(&body, &format!("customer id {id:?}"));
        assert_eq!(body["errors"][0]["extensions"]["field"], "customerId", "{body}");
        let body = app.graphql(Some(&token), &list_query(), json!({ "customerId": id })).await;
        assert_bad_input(&body, &format!("customer filter {id:?}"));
    }
    assert_eq!(ticket_total(&app, &token).await, before_total, "nothing was created");
    assert_eq!(ticket(&app, &token, "t001").await, before_t001, "nothing was changed");
}

#[tokio::test]
async fn blank_or_over_long_replies_resolutions_and_reasons_are_bad_input_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let target = an_open_normal_ticket(&app, &token).await;
    let id = str_of(&target, "id");
    let before = ticket(&app, &token, id).await;
    let updates = ticket_updates(&app, &token).await;
    let attempts = [
        (reply_query(), json!({ "id": id, "content": "" }), "content"),
        (reply_query(), json!({ "id": id, "content": " \n " }), "content"),
        (reply_query(), json!({ "id": id, "content": "回".repeat(5001) }), "content"),
        (resolve_query(), json!({ "id": id, "resolution": "解".repeat(2001) }), "resolution"),
        (escalate_query(), json!({ "id": id, "reason": "" }), "reason"),
        (escalate_query(), json!({ "id": id, "reason": "升".repeat(1001) }), "reason"),
    ];
    for (query, variables, field) in attempts {
        let body = app.graphql(Some(&token), &query, variables).await;
        assert_bad_input(&body, field);
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(ticket(&app, &token, id).await, before, "the ticket is unchanged");
    assert_eq!(ticket_updates(&app, &token).await, updates, "no notification");
}

#[tokio::test]
async fn page_zero_and_page_sizes_outside_one_to_one_hundred_are_bad_input() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for (page, page_size, field) in [(0, 10, "page"), (-1, 10, "page"), (1, 0, "pageSize"), (1, 101, "pageSize")] {
        let body = app.graphql(Some(&token), &list_query(), json!({ "page": page, "pageSize": page_size })).await;
        assert_bad_input(&body, &format!("page {page}, pageSize {page_size}"));
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
}

// --- signing in ---

#[tokio::test]
async fn tickets_need_a_signed_in_provider() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before_total = ticket_total(&app, &token).await;
    let before_t001 = ticket(&app, &token, "t001").await;
    for bearer in [None, Some("not-a-token")] {
        let attempts = [
            (list_query(), json!({})),
            (detail_query(), json!({ "id": "t001" })),
            (create_query(), json!({ "customerId": "c001", "title": "标题", "content": "内容", "type": "COMPLAINT" })),
            (reply_query(), json!({ "id": "t001", "content": "回复" })),
            (resolve_query(), json!({ "id": "t001", "resolution": "解决" })),
            (escalate_query(), json!({ "id": "t001", "reason": "升级" })),
        ];
        for (query, variables) in attempts {
            let body = app.graphql(bearer, &query, variables).await;
            assert_error(&body, "UNAUTHENTICATED");
        }
    }
    assert_eq!(ticket_total(&app, &token).await, before_total, "nothing was created");
    assert_eq!(ticket(&app, &token, "t001").await, before_t001, "nothing was changed");
}
