//! A sweep of bad input: whatever a client sends, the server answers it as the client's mistake
//! (a 4xx for a broken request, a GraphQL error that is not INTERNAL for a bad operation), creates
//! nothing, and keeps serving.

use crate::support::*;
use serde_json::{json, Value};

const ME: &str = "{ me { id } }";

/// Asserts our own validation refused the operation: BAD_USER_INPUT, no data, a Chinese message.
fn assert_bad_input(body: &Value, context: &str) {
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{context}: {body}");
    assert!(body["data"].is_null(), "{context}: no data on error: {body}");
    assert!(has_chinese(&error_message(body)), "{context}: a message in Chinese: {body}");
}

/// Asserts the operation failed as the client's mistake: errors, no data, nothing INTERNAL.
fn assert_refused_not_internal(body: &Value, context: &str) {
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{context}: errors expected: {body}"));
    assert!(!errors.is_empty(), "{context}: {body}");
    for error in errors {
        assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "{context}: a message: {body}");
        assert_ne!(error["extensions"]["code"], "INTERNAL", "{context}: {body}");
    }
    assert!(body["data"].is_null(), "{context}: no data: {body}");
}

/// The server still answers a signed-in request.
async fn assert_still_serving(app: &TestApp, token: &str) {
    let data = app.data(token, ME, json!({})).await;
    assert_eq!(data["me"]["id"], "sp001");
}

async fn post_raw(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .post(format!("{}/graphql", app.address))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers")
}

async fn total(app: &TestApp, token: &str, query: &str, field: &str) -> u64 {
    let data = app.data(token, query, json!({})).await;
    data[field]["total"].as_u64().unwrap_or_else(|| panic!("a total: {data}"))
}

// --- broken requests ---

#[tokio::test]
async fn a_body_that_is_not_json_is_a_client_error_and_one_over_256_kib_is_refused_as_too_large() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let too_large = json!({ "query": ME, "variables": { "padding": "x".repeat(257 * 1024) } }).to_string();
    // (the body, the status it gets: `None` for any 4xx)
    let mut cases: Vec<(String, Option<u16>)> =
        ["{ me { id } }", "{\"query\": ", "not json at all", "", "[1, 2", "{\"query\": 42}"]
            .into_iter()
            .map(|body| (body.to_owned(), None))
            .collect();
    cases.push((too_large, Some(413)));
    for (body, expected) in cases {
        let shown: String = body.chars().take(40).collect();
        let status = post_raw(&app, body).await.status();
        match expected {
            Some(expected) => assert_eq!(status.as_u16(), expected, "{shown:?}"),
            None => assert!(status.is_client_error(), "{shown:?} gets a 4xx, not {status}"),
        }
    }
    assert_still_serving(&app, &token).await;
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_served() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let body = app.graphql(Some(&token), ME, json!({ "padding": "x".repeat(200 * 1024) })).await;
    assert!(body.get("errors").is_none(), "no errors: {}", body["errors"]);
    assert_eq!(body["data"]["me"]["id"], "sp001");
}

#[tokio::test]
async fn a_query_that_is_not_graphql_is_refused_without_an_internal_error() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for query in ["{ me { id ", "SELECT * FROM customers", "{ nosuchfield }", "{ me { password } }", ""] {
        let body = app.graphql(Some(&token), query, json!({})).await;
        assert_refused_not_internal(&body, query);
    }
    assert_still_serving(&app, &token).await;
}

// --- enums and types ---

#[tokio::test]
async fn unknown_enum_values_are_refused_for_every_enum_argument() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let cases = [
        ("query($v: CustomerStatus) { customers(status: $v) { total } }", "customers status"),
        ("query($v: TicketStatus) { tickets(status: $v) { total } }", "tickets status"),
        ("query($v: TicketType) { tickets(type: $v) { total } }", "tickets type"),
        ("query($v: NotificationType) { notifications(type: $v) { total } }", "notifications type"),
        ("query($v: ReadStatus) { notifications(readStatus: $v) { total } }", "notifications readStatus"),
        (
            "mutation($v: TicketType!) { createTicket(customerId: \"c001\", title: \"标题\", content: \"内容\", type: $v) { id } }",
            "createTicket type",
        ),
    ];
    let before = total(&app, &token, "{ tickets { total } }", "tickets").await;
    for (query, context) in cases {
        for value in [json!("BOGUS"), json!("active"), json!(""), json!(1), json!(["OPEN"]), json!({ "a": 1 })] {
            let body = app.graphql(Some(&token), query, json!({ "v": value })).await;
            assert_refused_not_internal(&body, &format!("{context} = {value}"));
        }
    }
    assert_eq!(total(&app, &token, "{ tickets { total } }", "tickets").await, before, "no ticket created");
    assert_still_serving(&app, &token).await;
}

#[tokio::test]
async fn unknown_enum_literals_in_the_query_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for query in [
        "{ customers(status: BOGUS) { total } }",
        "{ tickets(type: system_issue) { total } }",
        "{ notifications(readStatus: UNKNOWN) { total } }",
    ] {
        let body = app.graphql(Some(&token), query, json!({})).await;
        assert_refused_not_internal(&body, query);
    }
}

#[tokio::test]
async fn variables_of_the_wrong_type_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let query = "query($page: Int = 1, $pageSize: Int = 10, $keyword: String) {
        customers(page: $page, pageSize: $pageSize, keyword: $keyword) { total }
    }";
    for variables in [
        json!({ "page": "one" }),
        json!({ "page": 1.5 }),
        json!({ "pageSize": true }),
        json!({ "pageSize": [10] }),
        json!({ "keyword": 42 }),
        json!({ "keyword": { "$ne": null } }),
    ] {
        let body = app.graphql(Some(&token), query, variables.clone()).await;
        assert_refused_not_internal(&body, &variables.to_string());
    }
    let body = app.graphql(Some(&token), "query($id: ID!) { customer(id: $id) { id } }", json!({ "id": null })).await;
    assert_refused_not_internal(&body, "a null id");
    assert_still_serving(&app, &token).await;
}

// --- paging extremes ---

#[tokio::test]
async fn extreme_page_numbers_and_sizes_are_bad_input() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let lists = [
        "query($p: Int, $s: Int) { customers(page: $p, pageSize: $s) { total } }",
        "query($p: Int, $s: Int) { tickets(page: $p, pageSize: $s) { total } }",
        "query($p: Int, $s: Int) { notifications(page: $p, pageSize: $s) { total } }",
        "query($p: Int, $s: Int) { chatMessages(customerId: \"c001\", page: $p, pageSize: $s) { total } }",
    ];
    let extremes = [
        (json!(i64::MAX), json!(10)),
        (json!(i64::MIN), json!(10)),
        (json!(-1), json!(10)),
        (json!(1), json!(i64::MAX)),
        (json!(1), json!(i64::MIN)),
        (json!(1), json!(-10)),
        (json!(u32::MAX as i64 + 1), json!(10)),
    ];
    for query in lists {
        for (page, size) in &extremes {
            let body = app.graphql(Some(&token), query, json!({ "p": page, "s": size })).await;
            assert_bad_input(&body, &format!("{query} page {page} pageSize {size}"));
        }
    }
    assert_still_serving(&app, &token).await;
}

#[tokio::test]
async fn numbers_beyond_sixty_four_bits_are_refused_without_an_internal_error() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let literal = app.graphql(Some(&token), "{ customers(page: 99999999999999999999) { total } }", json!({})).await;
    assert_refused_not_internal(&literal, "a literal beyond i64");
    let response = post_raw(
        &app,
        r#"{"query": "query($p: Int) { customers(page: $p) { total } }", "variables": {"p": 99999999999999999999}}"#,
    )
    .await;
    assert!(!response.status().is_server_error(), "{}", response.status());
    if response.status().is_success() {
        let body: Value = response.json().await.expect("JSON");
        assert_refused_not_internal(&body, "a variable beyond i64");
    }
    assert_still_serving(&app, &token).await;
}

#[tokio::test]
async fn the_largest_page_number_is_an_empty_page_not_an_error() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = app
        .data(
            &token,
            "query($p: Int) { customers(page: $p, pageSize: 100) { total items { id } } }",
            json!({ "p": u32::MAX }),
        )
        .await;
    assert_eq!(data["customers"]["total"], 30);
    assert_eq!(data["customers"]["items"], json!([]));
}

// --- long strings in every mutation ---

#[tokio::test]
async fn ten_thousand_characters_in_any_mutation_text_are_bad_input_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let long = "长".repeat(10_000);
    let before = app.snapshot(&token).await;
    let cases: [(&str, Value, &str); 9] = [
        (
            "mutation($t: String!, $c: String!) { createTicket(customerId: \"c001\", title: $t, content: $c, type: SYSTEM_ISSUE) { id } }",
            json!({ "t": long, "c": "正常内容" }),
            "title",
        ),
        (
            "mutation($t: String!, $c: String!) { createTicket(customerId: \"c001\", title: $t, content: $c, type: SYSTEM_ISSUE) { id } }",
            json!({ "t": "正常标题", "c": long }),
            "content",
        ),
        ("mutation($c: String!) { replyTicket(id: \"t001\", content: $c) { replyId } }", json!({ "c": long }), "content"),
        (
            "mutation($r: String) { resolveTicket(id: \"t001\", resolution: $r) { id } }",
            json!({ "r": long }),
            "resolution",
        ),
        (
            "mutation($r: String!) { escalateTicket(id: \"t001\", reason: $r) { ticketId } }",
            json!({ "r": long }),
            "reason",
        ),
        (
            "mutation($c: String!) { sendChatMessage(customerId: \"c001\", content: $c) { id } }",
            json!({ "c": long }),
            "content",
        ),
        (
            "mutation($c: String!, $r: String!) { escalateChat(customerId: \"c001\", content: $c, reason: $r) { id } }",
            json!({ "c": long, "r": "客户问题无法解决" }),
            "content",
        ),
        (
            "mutation($c: String!, $r: String!) { escalateChat(customerId: \"c001\", content: $c, reason: $r) { id } }",
            json!({ "c": "聊天摘要", "r": long }),
            "reason",
        ),
        (
            "mutation($p: String!) { login(username: \"demo-a\", password: $p) { token } }",
            json!({ "p": long }),
            "password",
        ),
    ];
    for (query, variables, field) in cases {
        let body = app.graphql(Some(&token), query, variables).await;
        assert_bad_input(&body, query);
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{query}");
    }
    assert_eq!(app.snapshot(&token).await, before, "nothing was created or changed");
    assert_still_serving(&app, &token).await;
}

#[tokio::test]
async fn a_ten_thousand_character_username_is_bad_input() {
    let app = TestApp::spawn().await;
    let body = app
        .graphql(
            None,
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
            json!({ "u": "u".repeat(10_000), "p": DEMO_PASSWORD }),
        )
        .await;
    assert_bad_input(&body, "a long username");
    assert_eq!(body["errors"][0]["extensions"]["field"], "username");
}

#[tokio::test]
async fn texts_just_over_their_limits_are_bad_input_and_at_their_limits_are_accepted() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let create = "mutation($t: String!) { createTicket(customerId: \"c001\", title: $t, content: \"内容\", type: SYSTEM_ISSUE) { id title } }";
    let over = app.graphql(Some(&token), create, json!({ "t": "题".repeat(101) })).await;
    assert_bad_input(&over, "a title of 101 characters");
    let at = app.data(&token, create, json!({ "t": "题".repeat(100) })).await;
    assert_eq!(at["createTicket"]["title"].as_str().map(|t| t.chars().count()), Some(100));
}

#[tokio::test]
async fn blank_texts_in_mutations_are_bad_input() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = app.snapshot(&token).await;
    for (query, variables) in [
        (
            "mutation($t: String!) { createTicket(customerId: \"c001\", title: $t, content: \"内容\", type: SYSTEM_ISSUE) { id } }",
            json!({ "t": "   " }),
        ),
        ("mutation($c: String!) { replyTicket(id: \"t001\", content: $c) { replyId } }", json!({ "c": "\n\t " })),
        ("mutation($r: String!) { escalateTicket(id: \"t001\", reason: $r) { ticketId } }", json!({ "r": "" })),
        ("mutation($c: String!) { sendChatMessage(customerId: \"c001\", content: $c) { id } }", json!({ "c": " " })),
    ] {
        let body = app.graphql(Some(&token), query, variables).await;
        assert_bad_input(&body, query);
    }
    assert_eq!(app.snapshot(&token).await, before, "nothing was created or changed");
}

// --- injection-looking input ---

const INJECTIONS: [&str; 6] = [
    "' OR '1'='1",
    "c001' OR 1=1 --",
    "'; DROP TABLE customers; --",
    "\" OR \"\"=\"",
    "%' OR 'x' LIKE '%",
    "\\'; SELECT * FROM providers; --",
];

#[tokio::test]
async fn an_injection_looking_keyword_just_matches_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for keyword in INJECTIONS {
        let data = app
            .data(
                &token,
                "query($k: String) { customers(keyword: $k) { total items { id } } }",
                json!({ "k": keyword }),
            )
            .await;
        assert_eq!(data["customers"]["total"], 0, "{keyword}");
    }
    assert_eq!(total(&app, &token, "{ customers { total } }", "customers").await, 30, "the table is intact");
    assert_still_serving(&app, &token).await;
}

#[tokio::test]
async fn injection_looking_ids_are_bad_input_everywhere() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let by_id = [
        "query($id: ID!) { customer(id: $id) { id } }",
        "query($id: ID!) { usageScore(customerId: $id) { totalScore } }",
        "query($id: ID!) { ticket(id: $id) { id } }",
        "query($id: ID!) { tickets(customerId: $id) { total } }",
        "query($id: ID!) { notification(id: $id) { id } }",
        "query($id: ID!) { chatMessages(customerId: $id) { total } }",
        "mutation($id: ID!) { markNotificationRead(id: $id) { id } }",
        "mutation($id: ID!) { replyTicket(id: $id, content: \"回复\") { replyId } }",
        "mutation($id: ID!) { resolveTicket(id: $id) { id } }",
        "mutation($id: ID!) { escalateTicket(id: $id, reason: \"原因\") { ticketId } }",
        "mutation($id: ID!) { sendChatMessage(customerId: $id, content: \"你好\") { id } }",
        "mutation($id: ID!) { escalateChat(customerId: $id, content: \"摘要\", reason: \"原因\") { id } }",
        "mutation($id: ID!) { createTicket(customerId: $id, title: \"标题\", content: \"内容\", type: COMPLAINT) { id } }",
    ];
    let before = app.snapshot(&token).await;
    for query in by_id {
        for id in INJECTIONS {
            let body = app.graphql(Some(&token), query, json!({ "id": id })).await;
            assert_bad_input(&body, &format!("{query} with {id}"));
        }
    }
    assert_eq!(app.snapshot(&token).await, before, "nothing was created or changed");
    assert_still_serving(&app, &token).await;
}

#[tokio::test]
async fn unicode_and_control_characters_in_ids_are_bad_input() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let too_long = "c".repeat(65);
    for id in ["客户001", "c001\0", "c001\n", " c001", "c 001", "", too_long.as_str()] {
        let body = app.graphql(Some(&token), "query($id: ID!) { customer(id: $id) { id } }", json!({ "id": id })).await;
        assert_bad_input(&body, &format!("{id:?}"));
    }
    assert_still_serving(&app, &token).await;
}

/// Every list field, with its default page size.
const LISTS: [(&str, &str, u64); 5] = [
    ("customers", "customers(page: $page, pageSize: $pageSize)", 10),
    ("tickets", "tickets(page: $page, pageSize: $pageSize)", 10),
    ("notifications", "notifications(page: $page, pageSize: $pageSize)", 10),
    ("search", "search(query: \"商贸\", page: $page, pageSize: $pageSize)", 10),
    ("chatMessages", "chatMessages(customerId: \"c001\", page: $page, pageSize: $pageSize)", 20),
];

#[tokio::test]
async fn an_omitted_nullable_page_variable_is_the_default_page_and_an_explicit_null_a_bad_input() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for (field, call, default_size) in LISTS {
        let query = format!("query($page: Int, $pageSize: Int) {{ {call} {{ total page pageSize }} }}");
        let omitted = app.graphql(Some(&token), &query, json!({})).await;
        assert!(omitted["errors"].is_null(), "{field}: {omitted}");
        assert_eq!(
            (omitted["data"][field]["page"].clone(), omitted["data"][field]["pageSize"].clone()),
            (json!(1), json!(default_size)),
            "{field}: {omitted}"
        );
        let second = app.graphql(Some(&token), &query, json!({ "page": 2, "pageSize": 1 })).await;
        assert_eq!(second["data"][field]["page"], 2, "{field}: a given page still counts: {second}");

        let null = app.graphql(Some(&token), &query, json!({ "page": null })).await;
        assert_eq!(error_code(&null), "BAD_USER_INPUT", "{field}: {null}");
    }
    let through_fragment =
        "query($page: Int) { ...Tickets } fragment Tickets on QueryRoot { tickets(page: $page) { page } }";
    let answer = app.graphql(Some(&token), through_fragment, json!({})).await;
    assert_eq!(answer["data"]["tickets"]["page"], 1, "{answer}");
}
