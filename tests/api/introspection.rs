//! Who may read the schema (`GRAPHQL_INTROSPECTION`): by default signed-in sessions get
//! introspection and "did you mean" suggestions and anonymous requests get neither; `public` gives
//! both to everyone, `off` to no one. And a batch costs the provider's rate one request per
//! operation, so batching does not multiply it.

use crate::support::*;
use serde_json::{json, Value};

const SCHEMA: &str = "{ __schema { types { name } } }";
const TYPE: &str = "{ __type(name: \"Customer\") { fields { name } } }";
const TYPO: &str = "{ custmers { total } }";

fn assert_schema_given(body: &Value, who: &str) {
    assert!(body.get("errors").is_none(), "{who}: no errors: {body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap_or_else(|| panic!("{who}: the types: {body}"));
    assert!(types.iter().any(|t| t["name"] == "Customer"), "{who}: {body}");
}

fn assert_introspection_refused(body: &Value, who: &str) {
    assert_eq!(error_code(body), "FORBIDDEN", "{who}: {body}");
    assert!(body["data"].is_null(), "{who}: no data: {body}");
    assert!(error_message(body).contains("内省"), "{who}: says why: {body}");
}

fn assert_suggests(body: &Value, suggests: bool, who: &str) {
    assert_error(body, "BAD_USER_INPUT");
    assert!(error_message(body).contains("custmers"), "{who}: names the unknown field: {body}");
    assert_eq!(body.to_string().contains("Did you mean"), suggests, "{who}: {body}");
}

#[tokio::test]
async fn by_default_anonymous_requests_get_no_schema_and_no_suggestions_and_signed_in_ones_do() {
    let app = TestApp::spawn().await;
    assert_introspection_refused(&app.graphql(None, SCHEMA, json!({})).await, "anonymous __schema");
    assert_introspection_refused(&app.graphql(None, TYPE, json!({})).await, "anonymous __type");
    let in_a_fragment = "query { ...Peek } fragment Peek on QueryRoot { __schema { queryType { name } } }";
    assert_introspection_refused(&app.graphql(None, in_a_fragment, json!({})).await, "through a fragment");
    assert_suggests(&app.graphql(None, TYPO, json!({})).await, false, "anonymous typo");
    let typename = app.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(typename["data"]["__typename"], "QueryRoot", "__typename is no introspection: {typename}");

    let token = app.login(DEMO_A).await;
    assert_schema_given(&app.graphql(Some(&token), SCHEMA, json!({})).await, "signed in");
    let body = app.graphql(Some(&token), TYPE, json!({})).await;
    assert!(body["data"]["__type"]["fields"].as_array().is_some_and(|f| !f.is_empty()), "{body}");
    assert_suggests(&app.graphql(Some(&token), TYPO, json!({})).await, true, "signed-in typo");

    let bad_token = app.graphql(Some("not-a-token"), SCHEMA, json!({})).await;
    assert_introspection_refused(&bad_token, "an invalid token is no sign-in");
}

#[tokio::test]
async fn public_introspection_is_for_everyone() {
    let app = TestApp::spawn_configured(&[("GRAPHQL_INTROSPECTION", "public")]).await;
    assert_schema_given(&app.graphql(None, SCHEMA, json!({})).await, "anonymous");
    assert_suggests(&app.graphql(None, TYPO, json!({})).await, true, "anonymous typo");
}

#[tokio::test]
async fn with_introspection_off_no_one_gets_the_schema_or_suggestions() {
    let app = TestApp::spawn_configured(&[("GRAPHQL_INTROSPECTION", "off")]).await;
    let token = app.login(DEMO_A).await;
    for (who, token) in [("anonymous", None), ("signed in", Some(token.as_str()))] {
        assert_introspection_refused(&app.graphql(token, SCHEMA, json!({})).await, who);
        assert_introspection_refused(&app.graphql(token, TYPE, json!({})).await, who);
        assert_suggests(&app.graphql(token, TYPO, json!({})).await, false, who);
    }
    app.data(&token, "{ me { id } }", json!({})).await;
}

#[tokio::test]
async fn the_old_false_still_turns_introspection_off() {
    let app = TestApp::spawn_configured(&[("GRAPHQL_INTROSPECTION", "false")]).await;
    let token = app.login(DEMO_A).await;
    assert_introspection_refused(&app.graphql(Some(&token), SCHEMA, json!({})).await, "signed in");
}

#[tokio::test]
async fn a_batch_costs_the_providers_rate_one_request_per_operation() {
    // One request a minute after a burst of five: nothing refills while the test runs.
    let app = TestApp::spawn_configured(&[
        ("RATE_LIMIT_PROVIDER_PER_MINUTE", "1"),
        ("RATE_LIMIT_PROVIDER_BURST", "5"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    let batch = |n: usize| json!(vec![json!({ "query": "{ me { id } }" }); n]);
    let three = app.post(Some(&token), "/graphql", batch(3)).await;
    assert_eq!(three.body.as_array().map(Vec::len), Some(3), "three run: {}", three.body);
    let again = app.post(Some(&token), "/graphql", batch(3)).await;
    assert_eq!(again.status, 429, "3 + 3 is over 5: {}", again.body);
    assert_eq!(again.body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{}", again.body);
    let two = app.post(Some(&token), "/graphql", batch(2)).await;
    assert_eq!(two.body.as_array().map(Vec::len), Some(2), "3 + 2 is not: {}", two.body);
    let one = app.post(Some(&token), "/graphql", json!({ "query": "{ me { id } }" })).await;
    assert_eq!(
        (one.status, &one.body["errors"][0]["extensions"]["code"]),
        (429, &json!("RATE_LIMITED")),
        "the five are used"
    );
}

#[tokio::test]
async fn an_anonymous_caller_cannot_batch_and_a_signed_in_one_can() {
    let app = TestApp::spawn().await;
    let logins =
        json!(vec![json!({ "query": "mutation { login(username: \"demo-a\", password: \"wrong-1\") { token } }" }); 2]);
    let anonymous = app.post(None, "/graphql", logins).await;
    assert_eq!(anonymous.status, 400, "{}", anonymous.body);
    assert_eq!(anonymous.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{}", anonymous.body);
    assert_eq!(anonymous.body["errors"][0]["message"], "批量请求须先登录", "{}", anonymous.body);
    let token = app.login(DEMO_A).await;
    let batch = app.post(Some(&token), "/graphql", json!(vec![json!({ "query": "{ me { id } }" }); 2])).await;
    assert_eq!(batch.body.as_array().map(Vec::len), Some(2), "{}", batch.body);
}
