//! The OpenAPI document the server serves is valid OpenAPI 3, as a real validator
//! (`openapi-spec-validator`, which `scripts/test` installs) judges it, and it tells the spec's
//! routes from the ones added beyond it.

use crate::support::*;
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
