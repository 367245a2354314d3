//! One search over a provider's customers, tickets and chat messages, through REST
//! (`GET /api/search`) and GraphQL (`search`): Chinese queries of one to many characters, found
//! at once after a write, scoped to the provider, literal whatever the characters, bounded.

use crate::support::*;
use serde_json::{json, Value};

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// The REST answer's `data` of a search that must succeed.
async fn rest_search(app: &TestApp, token: &str, query: &str, rest: &str) -> Value {
    let answer = app.get(Some(token), &format!("/api/search?q={}{rest}", encode(query))).await;
    assert_eq!(answer.status, 200, "{query:?}: {}", answer.text);
    answer.body["data"].clone()
}

const GRAPHQL_SEARCH: &str = "query($q: String!, $kinds: [SearchKind!], $page: Int! = 1, $pageSize: Int! = 10) {
    search(query: $q, kinds: $kinds, page: $page, pageSize: $pageSize) {
        items { kind id customerId snippet at customer { id name } ticket { id title } }
        total totalIsExact page pageSize } }";

async fn first_ticket(app: &TestApp, token: &str) -> String {
    let tickets = app.data(token, "{ tickets(pageSize: 1) { items { id } } }", json!({})).await;
    tickets["tickets"]["items"][0]["id"].as_str().unwrap().to_owned()
}

async fn first_customer(app: &TestApp, token: &str) -> String {
    let customers = app.data(token, "{ customers(pageSize: 1) { items { id } } }", json!({})).await;
    customers["customers"]["items"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_reply_and_a_chat_message_are_found_at_once_by_queries_of_two_three_and_more_characters() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let ticket = first_ticket(&app, &token).await;
    let reply = app
        .post(
            Some(&token),
            &format!("/api/tickets/{ticket}/reply"),
            json!({ "content": "仓库盘点的库存差异已核对完毕" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    for query in ["差异", "盘点的", "库存差异已核对"] {
        let data = rest_search(&app, &token, query, "").await;
        assert_eq!(data["total"], 1, "{query}: {data}");
        assert_eq!(data["hits"][0]["kind"], "ticket", "{data}");
        assert_eq!(data["hits"][0]["id"], ticket.as_str(), "{data}");
        assert!(data["hits"][0]["snippet"].as_str().unwrap().contains(query), "{data}");
    }
    let customer = first_customer(&app, &token).await;
    let sent = app
        .post(Some(&token), "/api/chat/send", json!({ "customerId": customer, "content": "明天上门调试打印机" }))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let found = app.data(&token, GRAPHQL_SEARCH, json!({ "q": "调试打印" })).await;
    let hits = &found["search"];
    assert_eq!((&hits["total"], &hits["totalIsExact"]), (&json!(1), &json!(true)), "{found}");
    assert_eq!(hits["items"][0]["kind"], "CHAT", "{found}");
    assert_eq!(hits["items"][0]["customer"]["id"], customer.as_str(), "{found}");
    assert!(hits["items"][0]["ticket"].is_null(), "{found}");
    assert!(hits["items"][0]["snippet"].as_str().unwrap().contains("调试打印"), "{found}");

    let ticket_hit = app.data(&token, GRAPHQL_SEARCH, json!({ "q": "核对完毕", "kinds": ["TICKET"] })).await;
    assert_eq!(ticket_hit["search"]["items"][0]["ticket"]["id"], ticket.as_str(), "{ticket_hit}");
    let no_chat = app.data(&token, GRAPHQL_SEARCH, json!({ "q": "核对完毕", "kinds": ["CHAT"] })).await;
    assert_eq!(no_chat["search"]["total"], 0, "the kinds filter: {no_chat}");
    let one_char = rest_search(&app, &token, "核", "&kinds=ticket,chat").await;
    assert!(one_char["total"].as_u64().unwrap() >= 1, "a query of one character: {one_char}");
}

#[tokio::test]
async fn a_text_of_demo_b_is_not_found_by_demo_a() {
    let app = TestApp::spawn().await;
    let b = app.login(DEMO_B).await;
    let ticket = first_ticket(&app, &b).await;
    let reply = app
        .post(Some(&b), &format!("/api/tickets/{ticket}/reply"), json!({ "content": "乙方专属的冷链回访记录" }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let found = rest_search(&app, &b, "冷链回访", "").await;
    assert_eq!((&found["total"], &found["totalIsExact"]), (&json!(1), &json!(true)), "{found}");
    let a = app.login(DEMO_A).await;
    assert_eq!(rest_search(&app, &a, "冷链回访", "").await["total"], 0);
    let data = app.data(&a, GRAPHQL_SEARCH, json!({ "q": "冷链" })).await;
    assert_eq!(data["search"]["total"], 0, "{data}");
}

#[tokio::test]
async fn customers_are_found_by_name_and_the_keyword_filter_uses_the_same_matching() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let listed = app.get(Some(&token), &format!("/api/customers?keyword={}&pageSize=100", encode("商贸"))).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let customers = listed.body["data"]["customers"].as_array().unwrap().clone();
    assert!(!customers.is_empty(), "demo-a has 商贸 customers: {}", listed.text);
    assert!(customers.iter().all(|c| c["name"].as_str().unwrap().contains("商贸")
        || c["contactPerson"].as_str().unwrap_or_default().contains("商贸")));
    let found = rest_search(&app, &token, "商贸", "&kinds=customer&pageSize=100").await;
    assert_eq!(found["total"].as_u64().unwrap() as usize, customers.len(), "{found}");
    let first_page = rest_search(&app, &token, "商贸", "&kinds=customer&pageSize=1").await;
    let second_page = rest_search(&app, &token, "商贸", "&kinds=customer&pageSize=1&page=2").await;
    if customers.len() > 1 {
        assert_ne!(first_page["hits"][0]["id"], second_page["hits"][0]["id"], "paging moves on");
        assert_eq!(second_page["page"], 2);
    }
}

#[tokio::test]
async fn an_injection_looking_query_matches_only_literally_and_never_errs() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for query in ["' OR 1=1 --", "\"", "*", "NEAR(", "a OR b", "{scope} : x", "%", "_", ".*", "^$", "\\", "商贸 AND *"]
    {
        let data = rest_search(&app, &token, query, "").await;
        assert_eq!(data["total"], 0, "{query:?} is found only literally: {data}");
        let graphql = app.data(&token, GRAPHQL_SEARCH, json!({ "q": query })).await;
        assert_eq!(graphql["search"]["total"], 0, "{query:?}: {graphql}");
        let keyword = app.get(Some(&token), &format!("/api/customers?keyword={}", encode(query))).await;
        assert_eq!(
            (keyword.status, keyword.body["data"]["total"].clone()),
            (200, json!(0)),
            "{query:?}: {}",
            keyword.text
        );
    }
    let customer = first_customer(&app, &token).await;
    app.post(
        Some(&token),
        "/api/chat/send",
        json!({ "customerId": customer, "content": "折扣 100% 含 a_b 与 \"引号\"" }),
    )
    .await;
    for query in ["100%", "a_b", "\"引号\""] {
        assert_eq!(rest_search(&app, &token, query, "").await["total"], 1, "{query:?} found literally");
    }
}

#[tokio::test]
async fn a_query_of_fifty_characters_is_served_and_fifty_one_or_a_nul_is_a_bad_request() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    assert_eq!(rest_search(&app, &token, &"查".repeat(50), "").await["total"], 0);
    for refused in ["查".repeat(51), "库\u{0}存".to_owned(), " ".to_owned()] {
        let answer = app.get(Some(&token), &format!("/api/search?q={}", encode(&refused))).await;
        assert_eq!((answer.status, answer.body["code"].clone()), (400, json!(400)), "{refused:?}: {}", answer.text);
        assert!(has_chinese(answer.body["message"].as_str().unwrap_or_default()), "{}", answer.text);
        let body = app.graphql(Some(&token), GRAPHQL_SEARCH, json!({ "q": refused })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{refused:?}: {body}");
    }
    let body = app.graphql(Some(&token), GRAPHQL_SEARCH, json!({ "q": "库存", "kinds": [] })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "no kinds: {body}");
    let unknown = app.get(Some(&token), "/api/search?q=a&kinds=invoice").await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
}
