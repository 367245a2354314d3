//! Customers (spec 3.2): the list with its filters and paging, one customer's detail, the usage
//! score, and the provider boundary, through the real GraphQL endpoint.

use crate::support::*;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// Every field the spec lists for a customer in the list.
const LIST_FIELDS: [&str; 13] = [
    "id",
    "name",
    "contactPerson",
    "phone",
    "email",
    "region",
    "softwareVersion",
    "portCount",
    "status",
    "usageScore",
    "unresolvedIssues",
    "lastActiveTime",
    "expiryDate",
];

const LIST: &str = "query($page: Int = 1, $pageSize: Int = 10, $status: CustomerStatus, $keyword: String) {
    customers(page: $page, pageSize: $pageSize, status: $status, keyword: $keyword) {
        total page pageSize
        items {
            id name contactPerson phone email region softwareVersion portCount status usageScore
            unresolvedIssues lastActiveTime expiryDate
            usageScoreDetails { loginFrequency featureUsage dataInput trainingCompletion }
        }
    }
}";

const DETAIL: &str = "query($id: ID!) {
    customer(id: $id) {
        id name contactPerson phone email region softwareVersion portCount purchaseDate expiryDate status
        serviceProviderId serviceProviderName usageScore
        usageScoreDetails { loginFrequency featureUsage dataInput trainingCompletion }
        unresolvedIssues lastActiveTime createdAt updatedAt
    }
}";

const USAGE: &str = "query($id: ID!) {
    usageScore(customerId: $id) {
        customerId customerName totalScore scoreLevel suggestions updatedAt
        scoreDetails {
            loginFrequency { score level description }
            featureUsage { score level description }
            dataInput { score level description }
            trainingCompletion { score level description }
        }
    }
}";

const TICKET_TOTAL: &str = "query($customer: ID, $status: TicketStatus) {
    tickets(customerId: $customer, status: $status, pageSize: 100) { total }
}";

const MEASURES: [&str; 4] = ["loginFrequency", "featureUsage", "dataInput", "trainingCompletion"];
const LEVELS: [&str; 4] = ["高", "中高", "中", "低"];

/// The `customers` page for the given variables (which must succeed).
async fn list(app: &TestApp, token: &str, variables: Value) -> Value {
    app.data(token, LIST, variables).await["customers"].clone()
}

/// All of the provider's customers, in one page.
async fn all_customers(app: &TestApp, token: &str) -> Vec<Value> {
    let page = list(app, token, json!({ "pageSize": 100 })).await;
    page["items"].as_array().expect("items").clone()
}

fn ids(page: &Value) -> Vec<String> {
    items(page).iter().map(|c| c["id"].as_str().expect("an id").to_owned()).collect()
}

/// The status the spec derives from an expiry date at `now`.
fn status_for(expiry: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
    if expiry <= now {
        "EXPIRED"
    } else if expiry <= now + Duration::days(30) {
        "EXPIRING"
    } else {
        "ACTIVE"
    }
}

/// The weighted total of the four measures (20% / 40% / 30% / 10%), rounded.
fn weighted_total(details: &Value) -> u64 {
    let score = |field: &str| details[field].as_u64().unwrap_or_else(|| panic!("{field} in {details}"));
    let weighted = 20 * score("loginFrequency")
        + 40 * score("featureUsage")
        + 30 * score("dataInput")
        + 10 * score("trainingCompletion");
    (weighted as f64 / 100.0).round() as u64
}

fn assert_bad_input(body: &Value) {
    assert_error(body, "BAD_USER_INPUT");
    assert!(has_chinese(&error_message(body)), "a message in Chinese: {body}");
}

async fn ticket_total(app: &TestApp, token: &str, customer: &str, status: &str) -> u64 {
    let data = app.data(token, TICKET_TOTAL, json!({ "customer": customer, "status": status })).await;
    data["tickets"]["total"].as_u64().expect("a total")
}

/// Sets a customer's stored status directly in the store.
async fn store_status(app: &TestApp, customer: &str, status: &str) {
    app.set_stored_customer_status(customer, status).await;
}

// --- the list ---

#[tokio::test]
async fn the_list_defaults_to_the_first_ten_of_all_thirty_customers() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = app.data(&token, "{ customers { total page pageSize items { id } } }", json!({})).await;
    let page = &data["customers"];
    assert_eq!(page["page"], 1);
    assert_eq!(page["pageSize"], 10);
    assert_eq!(page["total"], 30);
    assert_eq!(items(page).len(), 10);
}

#[tokio::test]
async fn every_listed_customer_has_every_field_of_the_spec_with_times_in_utc() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let page = list(&app, &token, json!({})).await;
    for customer in items(&page) {
        for field in LIST_FIELDS {
            assert!(!customer[field].is_null(), "{field} is present in {customer}");
        }
        for field in ["id", "name", "contactPerson", "phone", "email", "region", "softwareVersion"] {
            assert!(!str_of(customer, field).is_empty(), "{field} is not empty in {customer}");
        }
        assert!(customer["portCount"].as_u64().is_some_and(|n| n > 0), "{customer}");
        assert!(customer["usageScore"].as_u64().is_some_and(|n| n <= 100), "{customer}");
        assert!(customer["unresolvedIssues"].as_u64().is_some(), "{customer}");
        assert!(["ACTIVE", "EXPIRING", "EXPIRED"].contains(&str_of(customer, "status")), "{customer}");
        time(customer, "lastActiveTime");
        time(customer, "expiryDate");
    }
}

#[tokio::test]
async fn each_status_filter_returns_only_customers_whose_expiry_date_gives_that_status() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut sum = 0;
    for status in ["ACTIVE", "EXPIRING", "EXPIRED"] {
        let page = list(&app, &token, json!({ "status": status, "pageSize": 100 })).await;
        let now = Utc::now();
        let found = items(&page);
        assert!(!found.is_empty(), "the demo data has {status} customers");
        assert_eq!(page["total"].as_u64(), Some(found.len() as u64), "{status}");
        for customer in found {
            assert_eq!(customer["status"], status, "{customer}");
            assert_eq!(status_for(time(customer, "expiryDate"), now), status, "expiry agrees: {customer}");
        }
        sum += found.len();
    }
    assert_eq!(sum, 30, "the three statuses cover every customer");
}

#[tokio::test]
async fn an_expired_customer_stays_expired_whatever_the_stored_status_says() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let expired = list(&app, &token, json!({ "status": "EXPIRED", "pageSize": 1 })).await;
    let id = ids(&expired)[0].clone();
    store_status(&app, &id, "active").await;

    let detail = app.data(&token, DETAIL, json!({ "id": id })).await;
    assert_eq!(detail["customer"]["status"], "EXPIRED");
    let still_expired = list(&app, &token, json!({ "status": "EXPIRED", "pageSize": 100 })).await;
    assert!(ids(&still_expired).contains(&id), "{id} is still listed as expired");
    let active = list(&app, &token, json!({ "status": "ACTIVE", "pageSize": 100 })).await;
    assert!(!ids(&active).contains(&id), "{id} is not listed as active");
}

#[tokio::test]
async fn a_customer_far_from_expiry_stays_active_whatever_the_stored_status_says() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let active = list(&app, &token, json!({ "status": "ACTIVE", "pageSize": 100 })).await;
    let now = Utc::now();
    let far = items(&active)
        .iter()
        .find(|c| time(c, "expiryDate") > now + Duration::days(60))
        .expect("an active customer far from expiry");
    let id = str_of(far, "id").to_owned();
    store_status(&app, &id, "expired").await;

    let detail = app.data(&token, DETAIL, json!({ "id": id })).await;
    assert_eq!(detail["customer"]["status"], "ACTIVE");
    let listed = list(&app, &token, json!({ "pageSize": 100 })).await;
    let shown = items(&listed).iter().find(|c| c["id"] == id.as_str()).expect("listed");
    assert_eq!(shown["status"], "ACTIVE");
    let still_active = list(&app, &token, json!({ "status": "ACTIVE", "pageSize": 100 })).await;
    assert!(ids(&still_active).contains(&id), "{id} is still listed as active");
    let expired = list(&app, &token, json!({ "status": "EXPIRED", "pageSize": 100 })).await;
    assert!(!ids(&expired).contains(&id), "{id} is not listed as expired");
}

// --- the keyword ---

#[tokio::test]
async fn a_keyword_finds_customers_by_part_of_their_name() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everyone = all_customers(&app, &token).await;
    // The company prefix (the third and fourth characters, after the city) of the first customer.
    let keyword: String = str_of(&everyone[0], "name").chars().skip(2).take(2).collect();
    let expected: Vec<&str> = everyone
        .iter()
        .filter(|c| str_of(c, "name").contains(&keyword) || str_of(c, "contactPerson").contains(&keyword))
        .map(|c| str_of(c, "id"))
        .collect();
    assert!(expected.len() < 30, "the keyword {keyword} narrows the list");

    let page = list(&app, &token, json!({ "keyword": keyword, "pageSize": 100 })).await;
    assert_eq!(page["total"].as_u64(), Some(expected.len() as u64), "keyword {keyword}");
    let mut found = ids(&page);
    found.sort();
    let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
    expected.sort();
    assert_eq!(found, expected, "keyword {keyword}");
}

#[tokio::test]
async fn a_keyword_finds_customers_by_part_of_their_contact_person() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everyone = all_customers(&app, &token).await;
    // A given name that appears in no company name, so only the contact person can match it.
    let keyword = everyone
        .iter()
        .map(|c| str_of(c, "contactPerson").chars().skip(1).collect::<String>())
        .find(|given| !given.is_empty() && everyone.iter().all(|c| !str_of(c, "name").contains(given.as_str())))
        .expect("a given name that is in no company name");
    let expected = everyone.iter().filter(|c| str_of(c, "contactPerson").contains(&keyword)).count();

    let page = list(&app, &token, json!({ "keyword": keyword, "pageSize": 100 })).await;
    assert_eq!(page["total"].as_u64(), Some(expected as u64), "keyword {keyword}");
    assert_eq!(items(&page).len(), expected);
    for customer in items(&page) {
        assert!(str_of(customer, "contactPerson").contains(&keyword), "{customer}");
    }
}

#[tokio::test]
async fn keywords_match_literally_and_a_blank_one_filters_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let fifty = "客".repeat(50);
    // (the case, its keywords, how many of the thirty customers each one finds)
    let cases: [(&str, Vec<&str>, u64); 4] = [
        // Unescaped, these would match everything, or be refused by the database as bad patterns.
        (
            "regular expression characters match literally",
            vec![".", ".*", "^", "$", "(", "[", "\\", "|", "a|", ".+?", "(?i)", "{1}"],
            0,
        ),
        ("percent and underscore match literally", vec!["%", "_", "%%", "_%_"], 0),
        ("a keyword of exactly fifty characters is accepted", vec![fifty.as_str()], 0),
        ("a blank keyword filters nothing", vec!["", "   ", "\t\n"], 30),
    ];
    for (case, keywords, expected) in cases {
        for keyword in keywords {
            let page = list(&app, &token, json!({ "keyword": keyword })).await;
            assert_eq!(page["total"], expected, "{case}: keyword {keyword:?}: {page}");
            assert_eq!(items(&page).len() as u64, expected.min(10), "{case}: keyword {keyword:?}: the first page");
        }
    }
}

#[tokio::test]
async fn a_keyword_longer_than_fifty_characters_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let body = app.graphql(Some(&token), LIST, json!({ "keyword": "客".repeat(51) })).await;
    assert_bad_input(&body);
    assert_eq!(body["errors"][0]["extensions"]["field"], "keyword");
}

// --- unresolved issues ---

#[tokio::test]
async fn unresolved_issues_count_the_customers_open_and_processing_tickets() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everyone = all_customers(&app, &token).await;
    assert!(everyone.iter().any(|c| c["unresolvedIssues"].as_u64() > Some(0)), "some customer has open tickets");
    for customer in everyone.iter().take(12) {
        let id = str_of(customer, "id");
        let open = ticket_total(&app, &token, id, "OPEN").await;
        let processing = ticket_total(&app, &token, id, "PROCESSING").await;
        assert_eq!(customer["unresolvedIssues"].as_u64(), Some(open + processing), "customer {id}");
    }
}

#[tokio::test]
async fn opening_a_ticket_adds_one_unresolved_issue_to_its_customer() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = app.data(&token, DETAIL, json!({ "id": "c001" })).await["customer"]["unresolvedIssues"].clone();
    app.data(
        &token,
        "mutation { createTicket(customerId: \"c001\", title: \"打印机无法连接\", content: \"门店打印机连不上。\", type: SYSTEM_ISSUE) { id } }",
        json!({}),
    )
    .await;
    let after = app.data(&token, DETAIL, json!({ "id": "c001" })).await["customer"]["unresolvedIssues"].clone();
    assert_eq!(after.as_u64(), before.as_u64().map(|n| n + 1));
}

// --- one customer ---

#[tokio::test]
async fn the_detail_of_a_customer_has_every_field_and_agrees_with_the_list() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let me = app.data(&token, "{ me { name } }", json!({})).await;
    let listed = list(&app, &token, json!({})).await;
    let summary = &items(&listed)[0];
    let id = str_of(summary, "id");

    let detail = app.data(&token, DETAIL, json!({ "id": id })).await["customer"].clone();
    for field in LIST_FIELDS {
        match field {
            // The list masks contact details (spec 6.2); the detail shows them in full.
            "phone" => assert_eq!(provider_desk::domain::masking::mask_phone(str_of(&detail, field)), summary[field]),
            "email" => assert_eq!(provider_desk::domain::masking::mask_email(str_of(&detail, field)), summary[field]),
            _ => assert_eq!(detail[field], summary[field], "{field} agrees with the list"),
        }
    }
    assert_eq!(detail["serviceProviderId"], "sp001");
    assert_eq!(detail["serviceProviderName"], me["me"]["name"]);
    for field in MEASURES {
        assert!(detail["usageScoreDetails"][field].as_u64().is_some_and(|n| n <= 100), "{field}: {detail}");
    }
    let purchase = time(&detail, "purchaseDate");
    assert!(purchase < time(&detail, "expiryDate"), "bought before it expires: {detail}");
    time(&detail, "createdAt");
    time(&detail, "updatedAt");
}

#[tokio::test]
async fn the_usage_score_is_the_weighted_total_of_the_four_measures() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for customer in all_customers(&app, &token).await {
        assert_eq!(
            customer["usageScore"].as_u64(),
            Some(weighted_total(&customer["usageScoreDetails"])),
            "20% login, 40% feature, 30% data, 10% training: {customer}"
        );
    }
}

#[tokio::test]
async fn the_usage_report_explains_the_customers_score() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everyone = all_customers(&app, &token).await;
    for customer in everyone.iter().take(5) {
        let id = str_of(customer, "id");
        let report = app.data(&token, USAGE, json!({ "id": id })).await["usageScore"].clone();
        assert_eq!(report["customerId"], id);
        assert_eq!(report["customerName"], customer["name"]);
        assert_eq!(report["totalScore"], customer["usageScore"], "{report}");
        assert!(LEVELS.contains(&str_of(&report, "scoreLevel")), "{report}");
        for field in MEASURES {
            let measure = &report["scoreDetails"][field];
            assert_eq!(measure["score"], customer["usageScoreDetails"][field], "{field}: {report}");
            assert!(LEVELS.contains(&str_of(measure, "level")), "{field}: {report}");
            assert!(!str_of(measure, "description").is_empty(), "{field}: {report}");
        }
        let suggestions = report["suggestions"].as_array().expect("suggestions");
        assert!(!suggestions.is_empty(), "{report}");
        assert!(suggestions.iter().all(|s| s.as_str().is_some_and(has_chinese)), "{report}");
        time(&report, "updatedAt");
    }
}

#[tokio::test]
async fn the_usage_report_total_is_the_rounded_weighted_sum_of_its_details() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for id in ["c001", "c002", "c007"] {
        let report = app.data(&token, USAGE, json!({ "id": id })).await["usageScore"].clone();
        let scores: Value =
            MEASURES.iter().map(|m| (m.to_string(), report["scoreDetails"][m]["score"].clone())).collect();
        assert_eq!(report["totalScore"].as_u64(), Some(weighted_total(&scores)), "{report}");
    }
}

// --- paging ---

#[tokio::test]
async fn a_page_of_one_hundred_holds_all_thirty_customers() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let page = list(&app, &token, json!({ "pageSize": 100 })).await;
    assert_eq!(page["total"], 30);
    assert_eq!(items(&page).len(), 30);
    let mut unique = ids(&page);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30, "no customer twice");
}

#[tokio::test]
async fn pages_split_the_list_without_overlap() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let mut seen = Vec::new();
    for page in 1..=3 {
        seen.extend(ids(&list(&app, &token, json!({ "page": page, "pageSize": 10 })).await));
    }
    let all = ids(&list(&app, &token, json!({ "pageSize": 100 })).await);
    assert_eq!(seen, all, "three pages of ten are the list of thirty, in order");
}

#[tokio::test]
async fn a_page_past_the_end_is_empty_but_keeps_the_total() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let page = list(&app, &token, json!({ "page": 4, "pageSize": 10 })).await;
    assert_eq!(page["total"], 30);
    assert_eq!(page["page"], 4);
    assert!(items(&page).is_empty());
}

#[tokio::test]
async fn page_numbers_below_one_and_page_sizes_outside_one_to_one_hundred_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for (page, page_size, field) in [(0, 10, "page"), (-1, 10, "page"), (1, 0, "pageSize"), (1, 101, "pageSize")] {
        let body = app.graphql(Some(&token), LIST, json!({ "page": page, "pageSize": page_size })).await;
        assert_bad_input(&body);
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "page {page}, pageSize {page_size}");
    }
}

// --- the provider boundary ---

#[tokio::test]
async fn another_providers_customer_is_not_found() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_B).await;
    let customer = app.graphql(Some(&token), DETAIL, json!({ "id": "c001" })).await;
    assert_error(&customer, "NOT_FOUND");
    let usage = app.graphql(Some(&token), USAGE, json!({ "id": "c001" })).await;
    assert_error(&usage, "NOT_FOUND");
}

#[tokio::test]
async fn a_provider_lists_only_its_own_customers() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_B).await;
    let page = list(&app, &token, json!({ "pageSize": 100 })).await;
    assert_eq!(page["total"], 30);
    let mut found = ids(&page);
    found.sort();
    let expected: Vec<String> = (31..=60).map(|n| format!("c{n:03}")).collect();
    assert_eq!(found, expected);
    // Its own customer it does see.
    let own = app.data(&token, DETAIL, json!({ "id": "c031" })).await;
    assert_eq!(own["customer"]["serviceProviderId"], "sp002");
}

#[tokio::test]
async fn malformed_customer_ids_are_bad_input_not_internal_errors() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let too_long = "c".repeat(65);
    for id in ["", "c001 OR 1=1", too_long.as_str()] {
        for query in [DETAIL, USAGE] {
            let body = app.graphql(Some(&token), query, json!({ "id": id })).await;
            assert_bad_input(&body);
        }
    }
}
