//! The OpenAPI document the server serves is valid OpenAPI 3, as a real validator
//! (`openapi-spec-validator`, which `scripts/test` installs) judges it, it tells the spec's
//! routes from the ones added beyond it, and the limits it states are the ones the server
//! enforces: each is read from the domain's constant here and tried at the limit and one past it.

use crate::support::*;
use provider_desk::domain::{Id, TextLimit, MAX_PAGE_SIZE};
use provider_desk::rest::rules::{Rule, RULES};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// The validator: `OPENAPI_SPEC_VALIDATOR`, or the one `scripts/test` installs, or one on PATH.
fn validator() -> PathBuf {
    if let Some(path) = std::env::var_os("OPENAPI_SPEC_VALIDATOR") {
        return PathBuf::from(path);
    }
    let installed = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/provider-desk/venv/bin/openapi-spec-validator"));
    match installed {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("openapi-spec-validator"),
    }
}

#[tokio::test]
async fn the_served_openapi_document_passes_an_openapi_3_validator() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(format!("{}/api/openapi.json", app.address)).await.expect("the server answers");
    assert!(response.status().is_success());
    let document = response.text().await.expect("a body");
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), &document).expect("the document is written");

    let output = Command::new(validator()).arg(file.path()).output().unwrap_or_else(|error| {
        panic!("openapi-spec-validator cannot run ({error}); scripts/test installs it into ~/.cache/provider-desk/venv")
    });
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the validator refused the document:\n{printed}");
    assert!(printed.contains("OK"), "the validator says OK: {printed}");
}

/// The spec's twenty routes (section 3 of the API design), as OpenAPI writes their paths.
const SPEC_ROUTES: [(&str, &str); 20] = [
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/refresh"),
    ("get", "/api/customers"),
    ("get", "/api/customers/{id}"),
    ("get", "/api/customers/{id}/tickets"),
    ("get", "/api/customers/{id}/usage-score"),
    ("get", "/api/tickets"),
    ("get", "/api/tickets/{id}"),
    ("post", "/api/tickets"),
    ("post", "/api/tickets/{id}/reply"),
    ("post", "/api/tickets/{id}/resolve"),
    ("post", "/api/tickets/{id}/escalate"),
    ("get", "/api/messages"),
    ("get", "/api/messages/{id}"),
    ("post", "/api/messages/{id}/read"),
    ("post", "/api/messages/read-all"),
    ("get", "/api/chat/messages"),
    ("post", "/api/chat/send"),
    ("post", "/api/chat/escalate"),
];

#[tokio::test]
async fn the_spec_routes_are_not_marked_and_every_other_route_is_marked_an_addition_saying_why() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(format!("{}/api/openapi.json", app.address)).await.expect("the server answers");
    let document: serde_json::Value = response.json().await.expect("JSON");
    let mut additions = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let route = format!("{} {path}", method.to_uppercase());
            let marked = operation.get("x-addition");
            if SPEC_ROUTES.contains(&(method.as_str(), path.as_str())) {
                assert!(marked.is_none(), "{route} is the spec's, not an addition: {operation}");
                continue;
            }
            assert_eq!(marked, Some(&serde_json::json!(true)), "{route} is no spec route: marked an addition");
            let description = operation["description"].as_str().unwrap_or_default();
            let why = description.strip_prefix("规范之外的新增接口：").unwrap_or_else(|| {
                panic!("{route}: the description starts with 规范之外的新增接口： ({description:?})")
            });
            assert!(!why.trim().is_empty(), "{route} says why it was added");
            additions.push(route);
        }
    }
    for route in [
        "GET /api/search",
        "GET /api/canned-replies",
        "POST /api/canned-replies",
        "GET /api/canned-replies/{id}",
        "PUT /api/canned-replies/{id}",
        "DELETE /api/canned-replies/{id}",
    ] {
        assert!(additions.iter().any(|addition| addition == route), "{route} is served as an addition: {additions:?}");
    }
}

/// One parameter whose limit the document states: where to send it, and a request it is valid in.
struct Limited {
    /// The GraphQL root field and argument, as `src/rest/rules.rs` names the rule.
    rule: (&'static str, &'static str),
    method: &'static str,
    path: String,
    parameter: &'static str,
    /// The body the parameter is put in (`None`: the query string).
    body: Option<Value>,
    /// The most characters the server takes, from the domain's constant.
    limit: usize,
    /// A character the parameter may hold.
    fill: char,
}

/// The documented path a concrete path is served by (`{name}` segments match any segment).
fn documented_path<'a>(document: &'a Value, path: &str) -> &'a str {
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document["paths"].as_object().expect("paths");
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(part, segment)| part.starts_with('{') || part == segment)
    };
    let mut candidates: Vec<&String> = paths.keys().filter(|template| matches(template)).collect();
    // A literal segment wins over a `{name}` one (`/api/messages/read-all` over `/api/messages/{id}`).
    candidates.sort_by_key(|template| template.matches('{').count());
    candidates.first().unwrap_or_else(|| panic!("{path} is documented"))
}

fn schema_of<'a>(document: &'a Value, limited: &Limited) -> &'a Value {
    let path = documented_path(document, limited.path.split('?').next().unwrap_or_default());
    let operation = &document["paths"][path][limited.method.to_lowercase()];
    match limited.body {
        Some(_) => &operation["requestBody"]["content"]["application/json"]["schema"]["properties"][limited.parameter],
        None => {
            let parameters = operation["parameters"].as_array().unwrap_or_else(|| panic!("{path}: parameters"));
            &parameters.iter().find(|p| p["name"] == limited.parameter).expect("the parameter is documented")["schema"]
        }
    }
}

async fn send_with(app: &TestApp, token: &str, limited: &Limited, length: usize) -> Answer {
    let value: String = std::iter::repeat_n(limited.fill, length).collect();
    let request = match &limited.body {
        Some(body) => {
            let mut body = body.clone();
            body[limited.parameter] = json!(value);
            Request::new(limited.method, limited.path.clone()).json(body)
        }
        None => Request::get(format!("{}&{}={value}", limited.path, limited.parameter)),
    };
    app.send(Some(token), &request).await
}

#[tokio::test]
async fn every_text_limit_the_server_enforces_is_the_documents_max_length_counted_in_characters() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let document: Value =
        reqwest::get(format!("{}/api/openapi.json", app.address)).await.unwrap().json().await.unwrap();
    let created = app
        .post(
            Some(&token),
            "/api/tickets",
            json!({ "customerId": "c001", "title": "限长", "content": "限长", "type": "complaint" }),
        )
        .await;
    let ticket =
        created.body["data"]["ticketId"].as_str().unwrap_or_else(|| panic!("a ticket: {}", created.text)).to_owned();
    let reply = app
        .post(Some(&token), "/api/canned-replies", json!({ "shortCode": "limits", "title": "限长", "content": "限长" }))
        .await;
    let canned =
        reply.body["data"]["id"].as_str().unwrap_or_else(|| panic!("a canned reply: {}", reply.text)).to_owned();

    let ticket_body = json!({ "customerId": "c001", "title": "限长", "content": "限长", "type": "complaint" });
    let chat_escalation = json!({ "customerId": "c001", "content": "限长", "reason": "限长" });
    let canned_body = json!({ "shortCode": "limits2", "title": "限长", "content": "限长" });
    let update = json!({ "version": 1 });
    let body =
        |route: (&'static str, &'static str), method, path: String, parameter, base: &Value, limit: TextLimit, fill| {
            Limited { rule: route, method, path, parameter, body: Some(base.clone()), limit: limit.max_chars, fill }
        };
    let cases = [
        body(
            ("createTicket", "title"),
            "POST",
            "/api/tickets".into(),
            "title",
            &ticket_body,
            TextLimit::TICKET_TITLE,
            '字',
        ),
        body(
            ("createTicket", "content"),
            "POST",
            "/api/tickets".into(),
            "content",
            &ticket_body,
            TextLimit::TICKET_CONTENT,
            '字',
        ),
        body(
            ("replyTicket", "content"),
            "POST",
            format!("/api/tickets/{ticket}/reply"),
            "content",
            &json!({}),
            TextLimit::REPLY_CONTENT,
            '字',
        ),
        body(
            ("escalateTicket", "reason"),
            "POST",
            format!("/api/tickets/{ticket}/escalate"),
            "reason",
            &json!({}),
            TextLimit::REASON,
            '字',
        ),
        body(
            ("resolveTicket", "resolution"),
            "POST",
            format!("/api/tickets/{ticket}/resolve"),
            "resolution",
            &json!({}),
            TextLimit::RESOLUTION,
            '字',
        ),
        body(
            ("sendChatMessage", "content"),
            "POST",
            "/api/chat/send".into(),
            "content",
            &json!({ "customerId": "c001" }),
            TextLimit::CHAT_CONTENT,
            '字',
        ),
        body(
            ("escalateChat", "content"),
            "POST",
            "/api/chat/escalate".into(),
            "content",
            &chat_escalation,
            TextLimit::TICKET_CONTENT,
            '字',
        ),
        body(
            ("escalateChat", "reason"),
            "POST",
            "/api/chat/escalate".into(),
            "reason",
            &chat_escalation,
            TextLimit::REASON,
            '字',
        ),
        body(
            ("createCannedReply", "shortCode"),
            "POST",
            "/api/canned-replies".into(),
            "shortCode",
            &canned_body,
            TextLimit::CANNED_SHORT_CODE,
            'k',
        ),
        body(
            ("createCannedReply", "title"),
            "POST",
            "/api/canned-replies".into(),
            "title",
            &canned_body,
            TextLimit::CANNED_TITLE,
            '字',
        ),
        body(
            ("createCannedReply", "content"),
            "POST",
            "/api/canned-replies".into(),
            "content",
            &canned_body,
            TextLimit::CANNED_CONTENT,
            '字',
        ),
        body(
            ("updateCannedReply", "shortCode"),
            "PUT",
            format!("/api/canned-replies/{canned}"),
            "shortCode",
            &update,
            TextLimit::CANNED_SHORT_CODE,
            'u',
        ),
        body(
            ("updateCannedReply", "title"),
            "PUT",
            format!("/api/canned-replies/{canned}"),
            "title",
            &update,
            TextLimit::CANNED_TITLE,
            '字',
        ),
        body(
            ("updateCannedReply", "content"),
            "PUT",
            format!("/api/canned-replies/{canned}"),
            "content",
            &update,
            TextLimit::CANNED_CONTENT,
            '字',
        ),
        body(
            ("login", "username"),
            "POST",
            "/api/auth/login".into(),
            "username",
            &json!({ "password": "wrong-password" }),
            TextLimit::USERNAME,
            '字',
        ),
        Limited {
            rule: ("customers", "keyword"),
            method: "GET",
            path: "/api/customers?page=1".into(),
            parameter: "keyword",
            body: None,
            limit: TextLimit::KEYWORD.max_chars,
            fill: '字',
        },
        Limited {
            rule: ("search", "query"),
            method: "GET",
            path: "/api/search?page=1".into(),
            parameter: "q",
            body: None,
            limit: TextLimit::KEYWORD.max_chars,
            fill: '字',
        },
    ];
    for (field, argument, rule) in RULES {
        let bounded = matches!(
            rule,
            Rule::Text(_) | Rule::OptionalText(_) | Rule::ShortCode | Rule::Keyword { .. } | Rule::Username
        );
        assert!(
            !bounded || cases.iter().any(|case| case.rule == (*field, *argument)),
            "{field}({argument}) has a text limit this test does not try"
        );
    }
    for case in &cases {
        let route = format!("{} {} {}", case.method, case.path, case.parameter);
        assert_eq!(
            schema_of(&document, case)["maxLength"],
            json!(case.limit),
            "{route}: the document's maxLength is the domain's limit"
        );
        // Too long first: a request at the limit may change what the next one finds (a resolved ticket).
        let over = send_with(&app, &token, case, case.limit + 1).await;
        assert_eq!(over.status, 400, "{route}: {} characters are refused: {}", case.limit + 1, over.text);
        let at = send_with(&app, &token, case, case.limit).await;
        assert_ne!(at.status, 400, "{route}: {} characters are taken: {}", case.limit, at.text);
    }
}

#[tokio::test]
async fn the_documented_page_size_id_and_page_bounds_are_the_ones_the_server_enforces() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let document: Value =
        reqwest::get(format!("{}/api/openapi.json", app.address)).await.unwrap().json().await.unwrap();
    let parameters = document["paths"]["/api/tickets"]["get"]["parameters"].as_array().expect("parameters").clone();
    let schema = |name: &str| parameters.iter().find(|p| p["name"] == name).expect("documented")["schema"].clone();
    assert_eq!(schema("pageSize")["maximum"], json!(MAX_PAGE_SIZE));
    assert_eq!(schema("pageSize")["minimum"], json!(1));
    assert_eq!(schema("page")["minimum"], json!(1));
    for (query, status) in [
        (format!("pageSize={MAX_PAGE_SIZE}"), 200),
        (format!("pageSize={}", MAX_PAGE_SIZE + 1), 400),
        ("pageSize=0".into(), 400),
        ("page=0".into(), 400),
        ("page=1".into(), 200),
    ] {
        assert_eq!(app.get(Some(&token), &format!("/api/tickets?{query}")).await.status, status, "{query}");
    }
    let id = &document["paths"]["/api/tickets/{id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(id["maxLength"], json!(Id::MAX_LEN));
    let pattern = id["pattern"].as_str().expect("an id pattern");
    assert!(pattern.ends_with(&format!("]{{1,{}}}$", Id::MAX_LEN)), "{pattern}");
    let longest = "a".repeat(Id::MAX_LEN);
    assert_eq!(app.get(Some(&token), &format!("/api/tickets/{longest}")).await.status, 404);
    assert_eq!(app.get(Some(&token), &format!("/api/tickets/{longest}a")).await.status, 400);
    assert_eq!(app.get(Some(&token), "/api/tickets/t%C3%A9").await.status, 400, "a letter outside the pattern");
}

#[tokio::test]
async fn a_body_declared_as_another_media_type_than_json_is_refused_with_415_as_documented() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let document: Value =
        reqwest::get(format!("{}/api/openapi.json", app.address)).await.unwrap().json().await.unwrap();
    let responses = &document["paths"]["/api/tickets/{id}/reply"]["post"]["responses"];
    assert!(responses.get("415").is_some(), "documented: {responses}");
    assert_eq!(document["components"]["responses"]["415"]["content"]["application/json"]["example"]["code"], 415);
    let answer = app
        .client
        .post(format!("{}/api/tickets/t001/reply", app.address))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(r#"{"content":"你好"}"#)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(answer.status().as_u16(), 415);
    let body: Value = answer.json().await.expect("the envelope");
    assert_eq!(body["code"], 415);
    assert!(body["data"].is_null());
}
