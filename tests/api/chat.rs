//! Live chat (spec 3.5): the conversation with a customer and its paging, the provider's messages,
//! escalating a conversation into a ticket, and the provider boundary, through the real GraphQL
//! endpoint.

use crate::support::*;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashSet;

const MESSAGE_FIELDS: &str = "id customerId customerName customer { id name } serviceProviderId serviceProviderName \
    senderType content timestamp status";

const TICKET_FIELDS: &str = "id customerId customerName title content type status escalationStatus escalationReason \
    escalatedAt serviceProviderId resolvedAt createdAt updatedAt \
    processingHistory { id operatorId operatorName action content timestamp }";

/// The title every ticket escalated from a chat carries.
const ESCALATED_TITLE: &str = "聊天升级工单";

fn messages_query() -> String {
    format!(
        "query($customerId: ID!, $page: Int = 1, $pageSize: Int = 20) {{
            chatMessages(customerId: $customerId, page: $page, pageSize: $pageSize) {{
                total page pageSize items {{ {MESSAGE_FIELDS} }}
            }}
        }}"
    )
}

fn send_query() -> String {
    format!(
        "mutation($customerId: ID!, $content: String!) {{
            sendChatMessage(customerId: $customerId, content: $content) {{ {MESSAGE_FIELDS} }}
        }}"
    )
}

fn escalate_query() -> String {
    format!(
        "mutation($customerId: ID!, $content: String!, $reason: String!) {{
            escalateChat(customerId: $customerId, content: $content, reason: $reason) {{ {TICKET_FIELDS} }}
        }}"
    )
}

const TICKETS: &str =
    "query($customerId: ID) { tickets(customerId: $customerId, pageSize: 100) { total items { id } } }";
const CUSTOMER: &str = "query($id: ID!) { customer(id: $id) { name unresolvedIssues } }";
const TICKET_UPDATES: &str = "{
    notifications(type: TICKET_UPDATE, pageSize: 100) {
        total unreadCount items { id type relatedCustomerId relatedTicketId readStatus }
    }
}";

// --- helpers ---

/// A page of the conversation with `customer` (which must succeed).
async fn messages(app: &TestApp, token: &str, customer: &str, page: i64, page_size: i64) -> Value {
    let variables = json!({ "customerId": customer, "page": page, "pageSize": page_size });
    app.data(token, &messages_query(), variables).await["chatMessages"].clone()
}

/// The whole conversation with `customer`, oldest first, from one page.
async fn conversation(app: &TestApp, token: &str, customer: &str) -> Vec<Value> {
    let page = messages(app, token, customer, 1, 100).await;
    assert_eq!(total(&page), items(&page).len() as u64, "one page of a hundred holds the conversation");
    items(&page).clone()
}

async fn chat_total(app: &TestApp, token: &str, customer: &str) -> u64 {
    total(&messages(app, token, customer, 1, 1).await)
}

async fn send(app: &TestApp, token: &str, customer: &str, content: &str) -> Value {
    let variables = json!({ "customerId": customer, "content": content });
    app.data(token, &send_query(), variables).await["sendChatMessage"].clone()
}

async fn escalate(app: &TestApp, token: &str, customer: &str, content: &str, reason: &str) -> Value {
    let variables = json!({ "customerId": customer, "content": content, "reason": reason });
    app.data(token, &escalate_query(), variables).await["escalateChat"].clone()
}

async fn tickets(app: &TestApp, token: &str, customer: Option<&str>) -> Value {
    app.data(token, TICKETS, json!({ "customerId": customer })).await["tickets"].clone()
}

async fn customer(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(token, CUSTOMER, json!({ "id": id })).await["customer"].clone()
}

async fn ticket_updates(app: &TestApp, token: &str) -> Value {
    app.data(token, TICKET_UPDATES, json!({})).await["notifications"].clone()
}

/// Everything a chat request could have changed for a customer of demo-a.
async fn snapshot(app: &TestApp, token: &str, customer_id: &str) -> Value {
    json!({
        "conversation": conversation(app, token, customer_id).await,
        "tickets": tickets(app, token, None).await,
        "customer": customer(app, token, customer_id).await,
        "updates": ticket_updates(app, token).await,
    })
}

fn ids(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| str_of(m, "id").to_owned()).collect()
}

fn timestamps(messages: &[Value]) -> Vec<DateTime<Utc>> {
    messages.iter().map(|m| time(m, "timestamp")).collect()
}

fn assert_bad_input(body: &Value, context: &str) {
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{context}: {body}");
    assert!(body["data"].is_null(), "{context}: no data on error: {body}");
    assert!(has_chinese(&error_message(body)), "{context}: a message in Chinese: {body}");
}

// --- the conversation ---

#[tokio::test]
async fn the_conversation_defaults_to_the_first_page_of_twenty() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = app
        .data(&token, "{ chatMessages(customerId: \"c001\") { total page pageSize items { id } } }", json!({}))
        .await;
    let page = &data["chatMessages"];
    assert_eq!(page["page"], 1);
    assert_eq!(page["pageSize"], 20);
    assert!(total(page) > 0, "the demo data has a conversation with c001");
    assert_eq!(items(page).len() as u64, total(page).min(20));
}

#[tokio::test]
async fn every_message_has_every_field_with_times_in_utc() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let me = app.data(&token, "{ me { name } }", json!({})).await;
    let name = customer(&app, &token, "c001").await["name"].clone();
    let found = conversation(&app, &token, "c001").await;
    assert!(!found.is_empty());
    let mut senders = HashSet::new();
    for message in &found {
        assert!(!str_of(message, "id").is_empty(), "{message}");
        assert_eq!(message["customerId"], "c001");
        assert_eq!(message["customerName"], name);
        assert_eq!(message["customer"]["id"], "c001");
        assert_eq!(message["customer"]["name"], name);
        assert_eq!(message["serviceProviderId"], "sp001");
        assert_eq!(message["serviceProviderName"], me["me"]["name"]);
        assert!(!str_of(message, "content").is_empty(), "{message}");
        assert!(["SENT", "DELIVERED", "READ"].contains(&str_of(message, "status")), "{message}");
        time(message, "timestamp");
        senders.insert(str_of(message, "senderType"));
    }
    assert_eq!(senders, HashSet::from(["CUSTOMER", "SERVICE_PROVIDER"]), "both sides speak");
}

#[tokio::test]
async fn messages_run_oldest_to_newest_within_a_page() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for customer in ["c001", "c002", "c003"] {
        let times = timestamps(&conversation(&app, &token, customer).await);
        assert!(times.len() > 1, "{customer} has a conversation");
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{customer}: oldest first: {times:?}");
        assert!(times.first() < times.last(), "{customer}: the conversation spans some time: {times:?}");
        let page = messages(&app, &token, customer, 1, 2).await;
        let times = timestamps(items(&page));
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{customer}: a small page too: {times:?}");
    }
}

#[tokio::test]
async fn page_one_holds_the_latest_messages() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = conversation(&app, &token, "c001").await;
    assert!(everything.len() >= 4, "enough messages for two pages of two");
    let first = messages(&app, &token, "c001", 1, 2).await;
    let second = messages(&app, &token, "c001", 2, 2).await;
    assert_eq!(items(&first), &everything[everything.len() - 2..], "page 1 is the last two, in order");
    assert_eq!(items(&second), &everything[everything.len() - 4..everything.len() - 2]);
    let oldest_on_first = timestamps(items(&first)).into_iter().min().expect("messages");
    let newest_on_second = timestamps(items(&second)).into_iter().max().expect("messages");
    assert!(newest_on_second <= oldest_on_first, "page 2 is older than page 1");
}

#[tokio::test]
async fn pages_do_not_overlap_and_together_hold_every_message() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for n in 1..=5 {
        send(&app, &token, "c002", &format!("补充说明第{n}条")).await;
    }
    let everything = conversation(&app, &token, "c002").await;
    let count = everything.len() as u64;
    assert!(count > 8, "more messages than two pages of four hold: {count}");

    let pages = count.div_ceil(4) as i64;
    let mut joined = Vec::new();
    // The highest page holds the oldest messages, so reading back from it gives the whole conversation.
    for page in (1..=pages).rev() {
        let found = messages(&app, &token, "c002", page, 4).await;
        assert_eq!(total(&found), count, "page {page}");
        assert_eq!(found["page"], page);
        assert!(!items(&found).is_empty() && items(&found).len() <= 4, "page {page}");
        joined.extend(ids(items(&found)));
    }
    let unique: HashSet<&String> = joined.iter().collect();
    assert_eq!(unique.len(), joined.len(), "no message on two pages");
    assert_eq!(joined, ids(&everything), "the pages hold every message, in order");

    let past = messages(&app, &token, "c002", pages + 1, 4).await;
    assert!(items(&past).is_empty(), "a page past the end is empty");
    assert_eq!(total(&past), count);
}

#[tokio::test]
async fn a_customer_without_a_conversation_has_an_empty_one() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    // The demo data holds conversations with the first eight customers only.
    let page = messages(&app, &token, "c030", 1, 20).await;
    assert_eq!(total(&page), 0);
    assert!(items(&page).is_empty());
}

// --- sending ---

#[tokio::test]
async fn a_sent_message_is_stored_from_the_provider_and_shows_last_on_page_one() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = chat_total(&app, &token, "c003").await;
    let started = Utc::now() - chrono::Duration::seconds(1);

    let sent = send(&app, &token, "c003", "  您好，工程师下午两点上门。  ").await;
    assert_eq!(sent["senderType"], "SERVICE_PROVIDER");
    assert_eq!(sent["content"], "您好，工程师下午两点上门。", "the content is trimmed");
    assert_eq!(sent["customerId"], "c003");
    assert_eq!(sent["serviceProviderId"], "sp001");
    assert_eq!(sent["status"], "SENT");
    let at = time(&sent, "timestamp");
    assert!(at >= started && at <= Utc::now(), "sent just now: {at}");

    let page = messages(&app, &token, "c003", 1, 20).await;
    assert_eq!(total(&page), before + 1);
    assert_eq!(items(&page).last(), Some(&sent), "the newest message, as it was returned");
}

#[tokio::test]
async fn messages_sent_in_a_row_keep_their_order() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut sent = Vec::new();
    for content in ["第一条", "第二条", "第三条"] {
        sent.push(send(&app, &token, "c004", content).await);
    }
    let everything = conversation(&app, &token, "c004").await;
    assert_eq!(&everything[everything.len() - 3..], &sent[..], "in the order they were sent");
}

// --- escalating ---

#[tokio::test]
async fn escalating_a_chat_opens_an_escalated_ticket_with_the_summary_and_the_reason() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let name = customer(&app, &token, "c005").await["name"].clone();
    let started = Utc::now() - chrono::Duration::seconds(1);

    let ticket = escalate(&app, &token, "c005", "客户反复反馈扫码枪无法入库", "需要上门实施").await;
    assert_eq!(ticket["type"], "ISSUE_ESCALATION");
    assert_eq!(ticket["escalationStatus"], "ESCALATED");
    assert_eq!(ticket["title"], ESCALATED_TITLE);
    assert_eq!(ticket["content"], "客户反复反馈扫码枪无法入库");
    assert_eq!(ticket["escalationReason"], "需要上门实施");
    assert_eq!(ticket["status"], "OPEN");
    assert_eq!(ticket["customerId"], "c005");
    assert_eq!(ticket["customerName"], name);
    assert_eq!(ticket["serviceProviderId"], "sp001");
    assert!(ticket["resolvedAt"].is_null());
    let created = time(&ticket, "createdAt");
    assert!(created >= started && created <= Utc::now(), "created just now: {created}");
    assert_eq!(ticket["escalatedAt"], ticket["createdAt"]);

    let history = ticket["processingHistory"].as_array().expect("a history");
    let actions: Vec<&str> = history.iter().map(|e| str_of(e, "action")).collect();
    assert_eq!(actions, ["create", "escalate"]);
    assert!(str_of(&history[1], "content").contains("需要上门实施"), "the reason is in the history: {ticket}");
    assert!(history.iter().all(|e| e["operatorId"] == "sp001"), "{ticket}");

    let stored = app
        .data(
            &token,
            &format!("query($id: ID!) {{ ticket(id: $id) {{ {TICKET_FIELDS} }} }}"),
            json!({ "id": ticket["id"] }),
        )
        .await;
    assert_eq!(stored["ticket"], ticket, "stored as returned");
}

#[tokio::test]
async fn an_escalated_chat_is_listed_counts_as_unresolved_and_is_notified() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let all_before = tickets(&app, &token, None).await;
    let customer_before = tickets(&app, &token, Some("c006")).await;
    let unresolved = customer(&app, &token, "c006").await["unresolvedIssues"].as_u64().expect("a count");
    let updates = ticket_updates(&app, &token).await;

    let ticket = escalate(&app, &token, "c006", "客户要求退款", "客户情绪激动，需要主管处理").await;
    let id = ticket["id"].clone();

    let all_after = tickets(&app, &token, None).await;
    assert_eq!(total(&all_after), total(&all_before) + 1);
    assert!(items(&all_after).iter().any(|t| t["id"] == id), "in the tickets list");
    let customer_after = tickets(&app, &token, Some("c006")).await;
    assert_eq!(total(&customer_after), total(&customer_before) + 1);
    assert!(items(&customer_after).iter().any(|t| t["id"] == id), "among the customer's tickets");
    let escalated =
        app.data(&token, "{ tickets(type: ISSUE_ESCALATION, pageSize: 100) { items { id } } }", json!({})).await;
    assert!(items(&escalated["tickets"]).iter().any(|t| t["id"] == id), "among the escalation tickets");

    assert_eq!(customer(&app, &token, "c006").await["unresolvedIssues"].as_u64(), Some(unresolved + 1));

    let after = ticket_updates(&app, &token).await;
    assert_eq!(total(&after), total(&updates) + 1, "one ticket_update notification");
    assert_eq!(after["unreadCount"].as_u64(), updates["unreadCount"].as_u64().map(|n| n + 1));
    let known: HashSet<&str> = items(&updates).iter().map(|n| str_of(n, "id")).collect();
    let new: Vec<&Value> = items(&after).iter().filter(|n| !known.contains(str_of(n, "id"))).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["relatedTicketId"], id);
    assert_eq!(new[0]["relatedCustomerId"], "c006");
    assert_eq!(new[0]["readStatus"], "UNREAD");
}

// --- the provider boundary ---

#[tokio::test]
async fn another_provider_cannot_read_a_conversation() {
    let app = TestApp::spawn().await;
    let token_b = app.login(DEMO_B).await;
    let body = app.graphql(Some(&token_b), &messages_query(), json!({ "customerId": "c001" })).await;
    assert_error(&body, "NOT_FOUND");
    // Its own conversations it does see.
    let own = conversation(&app, &token_b, "c031").await;
    assert!(!own.is_empty());
    assert!(own.iter().all(|m| m["serviceProviderId"] == "sp002" && m["customerId"] == "c031"), "{own:?}");
}

#[tokio::test]
async fn another_provider_cannot_send_to_or_escalate_for_a_customer_not_its_own_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let before_a = snapshot(&app, &token_a, "c001").await;
    let before_b = (tickets(&app, &token_b, None).await, ticket_updates(&app, &token_b).await);

    let body = app.graphql(Some(&token_b), &send_query(), json!({ "customerId": "c001", "content": "越权消息" })).await;
    assert_error(&body, "NOT_FOUND");
    let variables = json!({ "customerId": "c001", "content": "越权升级", "reason": "越权" });
    let body = app.graphql(Some(&token_b), &escalate_query(), variables).await;
    assert_error(&body, "NOT_FOUND");

    assert_eq!(snapshot(&app, &token_a, "c001").await, before_a, "nothing changed for demo-a");
    let after_b = (tickets(&app, &token_b, None).await, ticket_updates(&app, &token_b).await);
    assert_eq!(after_b, before_b, "nothing changed for demo-b");
}

#[tokio::test]
async fn an_unknown_customer_is_not_found() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let body = app.graphql(Some(&token), &messages_query(), json!({ "customerId": "c999" })).await;
    assert_error(&body, "NOT_FOUND");
    let body = app.graphql(Some(&token), &send_query(), json!({ "customerId": "c999", "content": "你好" })).await;
    assert_error(&body, "NOT_FOUND");
    let variables = json!({ "customerId": "c999", "content": "总结", "reason": "原因" });
    let body = app.graphql(Some(&token), &escalate_query(), variables).await;
    assert_error(&body, "NOT_FOUND");
}

// --- bad input ---

#[tokio::test]
async fn empty_or_over_long_messages_are_bad_input_and_store_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = snapshot(&app, &token, "c001").await;
    let long = "消".repeat(2001);
    for content in ["", "   ", "\n\t", long.as_str()] {
        let body = app.graphql(Some(&token), &send_query(), json!({ "customerId": "c001", "content": content })).await;
        assert_bad_input(&body, &format!("content of {} characters", content.chars().count()));
        assert_eq!(body["errors"][0]["extensions"]["field"], "content");
    }
    assert_eq!(snapshot(&app, &token, "c001").await, before, "nothing was stored");

    // At the limit it is accepted.
    let sent = send(&app, &token, "c001", &"消".repeat(2000)).await;
    assert_eq!(str_of(&sent, "content").chars().count(), 2000);
    assert_eq!(chat_total(&app, &token, "c001").await, before["conversation"].as_array().unwrap().len() as u64 + 1);
}

#[tokio::test]
async fn an_escalation_without_a_summary_or_reason_or_with_over_long_ones_is_bad_input_and_opens_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = snapshot(&app, &token, "c001").await;
    let long_content = "总".repeat(5001);
    let long_reason = "因".repeat(1001);
    let cases = [
        ("", "原因", "content"),
        ("  ", "原因", "content"),
        (long_content.as_str(), "原因", "content"),
        ("总结", "", "reason"),
        ("总结", " \n", "reason"),
        ("总结", long_reason.as_str(), "reason"),
    ];
    for (content, reason, field) in cases {
        let variables = json!({ "customerId": "c001", "content": content, "reason": reason });
        let body = app.graphql(Some(&token), &escalate_query(), variables).await;
        assert_bad_input(&body, field);
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(snapshot(&app, &token, "c001").await, before, "nothing was stored");
}

#[tokio::test]
async fn malformed_customer_ids_are_bad_input_and_store_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = snapshot(&app, &token, "c001").await;
    let too_long = "c".repeat(65);
    for id in ["", "c001' OR '1'='1", "客户", "c 001", too_long.as_str()] {
        let attempts = [
            (messages_query(), json!({ "customerId": id })),
            (send_query(), json!({ "customerId": id, "content": "你好" })),
            (escalate_query(), json!({ "customerId": id, "content": "总结", "reason": "原因" })),
        ];
        for (query, variables) in attempts {
            let body = app.graphql(Some(&token), &query, variables).await;
            assert_bad_input(&body, &format!("customer id {id:?}"));
            assert_eq!(body["errors"][0]["extensions"]["field"], "customerId", "{body}");
        }
    }
    assert_eq!(snapshot(&app, &token, "c001").await, before, "nothing was stored");
}

#[tokio::test]
async fn page_zero_and_page_sizes_outside_one_to_one_hundred_are_bad_input() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for (page, page_size, field) in [(0, 20, "page"), (-1, 20, "page"), (1, 0, "pageSize"), (1, 101, "pageSize")] {
        let variables = json!({ "customerId": "c001", "page": page, "pageSize": page_size });
        let body = app.graphql(Some(&token), &messages_query(), variables).await;
        assert_bad_input(&body, &format!("page {page}, pageSize {page_size}"));
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
}

// --- signing in ---

#[tokio::test]
async fn chat_needs_a_signed_in_provider() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = snapshot(&app, &token, "c001").await;
    for bearer in [None, Some("not-a-token")] {
        let attempts = [
            (messages_query(), json!({ "customerId": "c001" })),
            (send_query(), json!({ "customerId": "c001", "content": "你好" })),
            (escalate_query(), json!({ "customerId": "c001", "content": "总结", "reason": "原因" })),
        ];
        for (query, variables) in attempts {
            let body = app.graphql(bearer, &query, variables).await;
            assert_error(&body, "UNAUTHENTICATED");
        }
    }
    assert_eq!(snapshot(&app, &token, "c001").await, before, "nothing was stored");
}
