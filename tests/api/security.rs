//! The security suite (spec 6): whatever an attacker sends — malformed JSON, wrong types, huge
//! and deeply nested bodies, depth, alias, fragment and directive bombs, injection strings in
//! every parameter of every REST endpoint, forged, expired and `alg: none` tokens — is answered
//! with a clear 4xx (never a 5xx), the server keeps serving, and no data changes. Also: errors
//! never show internals and always carry the request id; every answer carries the security
//! headers; CORS only for configured origins; contact details masked in lists (6.2).

use crate::support::*;
use base64::Engine;
use serde_json::{json, Map, Value};

const ME: &str = "{ me { id } }";

/// A GET, or a POST of `body` exactly as written (declared as JSON).
async fn send(app: &TestApp, method: &str, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Answer {
    let method = match method {
        "GET" => "GET",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        _ => "POST",
    };
    let mut request = Request::new(method, path);
    if let Some(body) = body {
        request = request.raw(body);
    }
    app.send(token, &request).await
}

/// A client error: 4xx, never 5xx.
fn assert_4xx(answer: &Answer, context: &str) {
    assert!((400..500).contains(&answer.status), "{context}: a 4xx, not {}: {}", answer.status, answer.text);
}

/// A GraphQL answer refusing the operation as the client's fault: no data, and a code that is
/// not INTERNAL (the HTTP status is 200 for GraphQL errors, 4xx for what the edge refuses).
fn assert_graphql_refused(answer: &Answer, context: &str) {
    assert!(answer.status < 500, "{context}: {} {}", answer.status, answer.text);
    if answer.status == 200 {
        assert!(answer.body["data"].is_null(), "{context}: no data: {}", answer.text);
        let code = answer.body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default();
        assert!(!code.is_empty() && code != "INTERNAL", "{context}: a client error code: {}", answer.text);
    }
}

async fn assert_alive_and_unchanged(app: &TestApp, token: &str, before: &Value) {
    assert_eq!(app.data(token, ME, json!({})).await["me"]["id"], "sp001", "the server still serves");
    assert_eq!(&app.snapshot(token).await, before, "no data changed");
}

fn json_bytes(value: Value) -> Option<Vec<u8>> {
    Some(value.to_string().into_bytes())
}

/// Every REST endpoint, from the served OpenAPI document: (method, path template, path
/// parameters, query parameters, body fields).
struct Endpoint {
    method: String,
    path: String,
    path_params: Vec<String>,
    query_params: Vec<String>,
    body_fields: Vec<String>,
}

async fn endpoints(app: &TestApp) -> Vec<Endpoint> {
    let document: Value =
        reqwest::get(format!("{}/api/openapi.json", app.address)).await.unwrap().json().await.unwrap();
    let mut found = Vec::new();
    for (path, methods) in document["paths"].as_object().expect("paths") {
        for (method, operation) in methods.as_object().unwrap() {
            // The upload takes a file, not JSON: tests/api/uploads.rs sends it what it refuses.
            if operation["requestBody"]["content"].get("multipart/form-data").is_some() {
                continue;
            }
            let names = |location: &str| -> Vec<String> {
                operation["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["in"] == location).map(|p| str_of(p, "name").to_owned()).collect())
                    .unwrap_or_default()
            };
            let body_fields = operation["requestBody"]["content"]["application/json"]["schema"]["properties"]
                .as_object()
                .map(|fields| fields.keys().cloned().collect())
                .unwrap_or_default();
            found.push(Endpoint {
                method: method.to_uppercase(),
                path: path.clone(),
                path_params: names("path"),
                query_params: names("query"),
                body_fields,
            });
        }
    }
    let documents = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rest_compat"))
        .expect("rest_compat/ is readable")
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "graphql")))
        .count();
    assert_eq!(found.len(), documents, "every endpoint: one a document of rest_compat/");
    found
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const INJECTIONS: [&str; 14] = [
    "' OR '1'='1",
    "1; DROP TABLE customers; --",
    "\" OR \"\"=\"",
    "{\"$gt\": \"\"}",
    "{\"$where\": \"sleep(1000)\"}",
    ".*",
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "${jndi:ldap://127.0.0.1/a}",
    "{{7*7}}",
    "c001\u{0}",
    "c001\r\nx-injected: 1",
    "%00%27",
    "\u{1d54f}\u{202e}gnp.exe",
];

#[tokio::test]
async fn injection_strings_in_every_parameter_of_every_rest_endpoint_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = app.snapshot(&token).await;
    let long = "A".repeat(10_000);
    let mut injections: Vec<String> = INJECTIONS.iter().map(|s| s.to_string()).collect();
    injections.push(long);
    let mut tried = 0;
    for endpoint in endpoints(&app).await {
        let no_parameters =
            endpoint.path_params.is_empty() && endpoint.query_params.is_empty() && endpoint.body_fields.is_empty();
        if no_parameters {
            continue; // e.g. read-all: nothing to inject into
        }
        for injection in &injections {
            let mut path = endpoint.path.clone();
            for name in &endpoint.path_params {
                path = path.replace(&format!("{{{name}}}"), &percent_encode(injection));
            }
            let query: Vec<String> =
                endpoint.query_params.iter().map(|name| format!("{name}={}", percent_encode(injection))).collect();
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            let body = (endpoint.method != "GET").then(|| {
                let fields: Map<String, Value> =
                    endpoint.body_fields.iter().map(|name| (name.clone(), json!(injection))).collect();
                Value::Object(fields).to_string().into_bytes()
            });
            let answer = send(&app, &endpoint.method, &path, Some(&token), body).await;
            let context = format!("{} {} with {injection:?}", endpoint.method, endpoint.path);
            assert_4xx(&answer, &context);
            assert_eq!(answer.body["code"], answer.status, "{context}: the envelope: {}", answer.text);
            assert!(answer.body["data"].is_null(), "{context}: {}", answer.text);
            assert!(!answer.text.contains("<script>"), "{context}: nothing reflected as markup: {}", answer.text);
            tried += 1;
        }
    }
    assert!(tried > 200, "{tried} requests");
    // One parameter at a time beside valid ones: the GET filters match nothing, never misbehave;
    // a keyword holding a control character is refused (tests/api/keywords.rs).
    for injection in &injections {
        let path =
            format!("/api/customers?keyword={}", percent_encode(&injection.chars().take(50).collect::<String>()));
        let answer = send(&app, "GET", &path, Some(&token), None).await;
        if injection.chars().any(char::is_control) {
            assert_eq!(answer.status, 400, "{injection:?}: {}", answer.text);
            continue;
        }
        assert_eq!(answer.status, 200, "{injection:?}: {}", answer.text);
        assert_eq!(answer.body["data"]["total"], 0, "{injection:?} matches nothing literally: {}", answer.text);
    }
    assert_alive_and_unchanged(&app, &token, &before).await;
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_client_errors_on_every_endpoint() {
    // Each answer is looked at here, so the ban these requests earn is off (tests/limits.rs has it).
    let app = TestApp::spawn_configured(&[("AUTO_BAN_AFTER_BAD_REQUESTS", "0")]).await;
    let token = app.login(DEMO_A).await;
    let before = app.snapshot(&token).await;
    let malformed: [&[u8]; 9] = [
        b"{",
        b"not json",
        b"[1, 2]",
        b"null",
        b"\"text\"",
        b"{\"a\":}",
        b"{\"title\": \"\xff\xfe\"}",
        b"\xef\xbb\xbf{}",
        b"{}}",
    ];
    for endpoint in endpoints(&app).await.iter().filter(|e| e.method != "GET") {
        if endpoint.body_fields.is_empty() {
            continue; // a body it does not read is no attack on it (mark-all-read, a DELETE)
        }
        let (method, path) = (endpoint.method.as_str(), endpoint.path.replace("{id}", "t001"));
        for body in malformed {
            let answer = send(&app, method, &path, Some(&token), Some(body.to_vec())).await;
            assert_4xx(&answer, &format!("{method} {path} with {:?}", String::from_utf8_lossy(body)));
        }
        for wrong in [json!(42), json!(true), json!([1, 2]), json!({ "$ne": null }), json!(1e308), json!(-1)] {
            let fields: Map<String, Value> =
                endpoint.body_fields.iter().map(|name| (name.clone(), wrong.clone())).collect();
            if fields.is_empty() {
                continue;
            }
            let answer = send(&app, method, &path, Some(&token), json_bytes(Value::Object(fields))).await;
            assert_4xx(&answer, &format!("{method} {path} with every field {wrong}"));
        }
    }
    for query in ["page=abc", "page=1e999", "page=-1", "pageSize=99999999999999999999", "page=0x10", "status=ACTIVE%00"]
    {
        let answer = send(&app, "GET", &format!("/api/customers?{query}"), Some(&token), None).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.text);
    }
    for body in malformed {
        let answer = send(&app, "POST", "/graphql", Some(&token), Some(body.to_vec())).await;
        assert_4xx(&answer, &format!("/graphql with {:?}", String::from_utf8_lossy(body)));
    }
    for wrong in
        [json!({ "query": 42 }), json!({ "query": ME, "variables": [] }), json!({ "query": ME, "operationName": 7 })]
    {
        let answer = send(&app, "POST", "/graphql", Some(&token), json_bytes(wrong.clone())).await;
        assert!(answer.status < 500, "{wrong}: {}", answer.text);
    }
    assert_alive_and_unchanged(&app, &token, &before).await;
}

/// Streams `size` bytes as a chunked body (no Content-Length) over a raw connection, stopping when
/// the server answers; returns the answer's status.
async fn chunked_upload(app: &TestApp, path: &str, token: &str, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let mut sent = 0;
    while sent < size {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server answered and closed
        }
        sent += 64 * 1024;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 1024];
    let read = stream.read(&mut answer).await.unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("an answer: {text:?}"))
}

#[tokio::test]
async fn huge_and_deeply_nested_bodies_are_refused_before_they_are_parsed() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = app.snapshot(&token).await;
    let huge = vec![b' '; 1024 * 1024];
    for path in ["/graphql", "/api/tickets", "/api/auth/login"] {
        let answer = send(&app, "POST", path, Some(&token), Some(huge.clone())).await;
        assert_eq!(answer.status, 413, "{path}: {}", answer.text);
    }
    // Without a Content-Length (chunked), the limit holds as the body streams in.
    assert_eq!(chunked_upload(&app, "/api/tickets", &token, 4 * 1024 * 1024).await, 413);
    assert_eq!(chunked_upload(&app, "/graphql", &token, 4 * 1024 * 1024).await, 413);

    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let graphql = format!(r#"{{"query": "{{ me {{ id }} }}", "variables": {{ "x": {} }}}}"#, deep(10_000));
    let answer = send(&app, "POST", "/graphql", Some(&token), Some(graphql.into_bytes())).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{}", answer.text);
    let rest =
        format!(r#"{{"customerId": "c001", "title": "t", "content": "c", "type": "system_issue", "x": {}}}"#, deep(40));
    let answer = send(&app, "POST", "/api/tickets", Some(&token), Some(rest.into_bytes())).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.body["code"], 400);
    // Within the limit, nesting is fine.
    let fine = format!(r#"{{"query": "{{ me {{ id }} }}", "variables": {{ "x": {} }}}}"#, deep(20));
    assert_eq!(send(&app, "POST", "/graphql", Some(&token), Some(fine.into_bytes())).await.status, 200);
    // Deep nesting inside the GraphQL text itself meets the parser's recursion limit.
    let nested_query = format!("{{ me {} }}", "{ id ".repeat(20_000));
    let answer = send(&app, "POST", "/graphql", Some(&token), json_bytes(json!({ "query": nested_query }))).await;
    assert_graphql_refused(&answer, "20,000 nested selection sets");
    let nested_value = format!("{{ customers(keyword: {}) {{ total }} }}", "[".repeat(20_000));
    let answer = send(&app, "POST", "/graphql", Some(&token), json_bytes(json!({ "query": nested_value }))).await;
    assert_graphql_refused(&answer, "20,000 nested list values");
    assert_alive_and_unchanged(&app, &token, &before).await;
}

#[tokio::test]
async fn depth_alias_fragment_and_directive_bombs_are_refused_with_the_default_limits() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = app.snapshot(&token).await;
    let graphql = |query: String| {
        let app = &app;
        let token = token.clone();
        async move { send(app, "POST", "/graphql", Some(&token), json_bytes(json!({ "query": query }))).await }
    };
    let mut depth = String::from("name");
    for _ in 0..20 {
        depth = format!("fields {{ type {{ {depth} }} }}");
    }
    let answer = graphql(format!("{{ __type(name: \"Customer\") {{ {depth} }} }}")).await;
    assert_graphql_refused(&answer, "a 40-deep introspection query");
    assert!(has_chinese(answer.body["errors"][0]["message"].as_str().unwrap_or_default()), "{}", answer.text);

    let aliases: String = (0..1000).map(|n| format!("a{n}: me {{ id }} ")).collect();
    let answer = graphql(format!("{{ {aliases} }}")).await;
    assert_graphql_refused(&answer, "1000 aliases");

    let roots: String = (0..100).map(|_| "me { id } ").collect();
    assert_graphql_refused(&graphql(format!("{{ {roots} }}")).await, "100 root fields");

    // Each fragment spreads the next twice: 2^30 fields if expanded.
    let mut fragments = String::new();
    for n in 0..30 {
        fragments.push_str(&format!("fragment F{n} on ServiceProvider {{ id ...F{m} ...F{m} }} ", m = n + 1));
    }
    fragments.push_str("fragment F30 on ServiceProvider { id }");
    let started = std::time::Instant::now();
    let answer = graphql(format!("{{ me {{ ...F0 }} }} {fragments}")).await;
    assert_graphql_refused(&answer, "a fragment bomb");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused quickly: {:?}", started.elapsed());

    let directives: String = (0..100).map(|_| "@include(if: true) ").collect();
    assert_graphql_refused(&graphql(format!("{{ me {directives} {{ id }} }}")).await, "100 directives on a field");

    let wide: String = (0..300).map(|n| format!("c{n}: customers(pageSize: 100) {{ items {{ id name }} }} ")).collect();
    assert_graphql_refused(&graphql(format!("{{ {wide} }}")).await, "300 list queries");

    let cycle = "{ me { ...A } } fragment A on ServiceProvider { id ...B } fragment B on ServiceProvider { ...A }";
    assert_graphql_refused(&graphql(cycle.to_owned()).await, "a fragment cycle");
    assert_alive_and_unchanged(&app, &token, &before).await;
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims(sub: &str, issued: i64, expires: i64) -> Value {
    json!({
        "sub": sub, "jti": format!("forged{issued}"), "fam": "forged-family",
        "iss": "provider-desk", "aud": "provider-desk-api", "iat": issued, "nbf": issued, "exp": expires,
    })
}

fn sign(claims: &Value, algorithm: jsonwebtoken::Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_expired_and_unsigned_tokens_are_refused_on_rest_graphql_and_websocket() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = app.snapshot(&token).await;
    let now = chrono::Utc::now().timestamp();
    let valid = claims("sp001", now, now + 3600);
    let unsigned_header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(valid.to_string().as_bytes());
    let real_parts: Vec<&str> = token.split('.').collect();
    let tokens = [
        (
            "signed with another secret",
            sign(&valid, jsonwebtoken::Algorithm::HS256, "another-secret-long-enough-for-hs256!!"),
        ),
        ("expired", sign(&claims("sp001", now - 90_000, now - 3600), jsonwebtoken::Algorithm::HS256, TEST_JWT_SECRET)),
        (
            "not yet valid",
            sign(&claims("sp001", now + 3600, now + 7200), jsonwebtoken::Algorithm::HS256, TEST_JWT_SECRET),
        ),
        ("HS512 with the right secret", sign(&valid, jsonwebtoken::Algorithm::HS512, TEST_JWT_SECRET)),
        ("alg none, empty signature", format!("{unsigned_header}.{payload}.")),
        ("alg none, no signature", format!("{unsigned_header}.{payload}")),
        ("alg none, the real signature", format!("{unsigned_header}.{payload}.{}", real_parts[2])),
        ("another payload, the real signature", format!("{}.{payload}.{}", real_parts[0], real_parts[2])),
        (
            "an injected subject",
            sign(&claims("' OR 1=1 --", now, now + 3600), jsonwebtoken::Algorithm::HS256, TEST_JWT_SECRET),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("huge", "a".repeat(8 * 1024)),
    ];
    for (what, forged) in &tokens {
        let rest = send(&app, "GET", "/api/customers", Some(forged), None).await;
        assert_eq!(rest.status, 401, "{what}: {}", rest.text);
        let create =
            json_bytes(json!({ "customerId": "c001", "title": "伪造", "content": "伪造", "type": "system_issue" }));
        assert_eq!(send(&app, "POST", "/api/tickets", Some(forged), create).await.status, 401, "{what}");
        let graphql = send(&app, "POST", "/graphql", Some(forged), json_bytes(json!({ "query": ME }))).await;
        let code = graphql.body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned();
        assert_eq!(code, "UNAUTHENTICATED", "{what}: {}", graphql.text);
        assert!(graphql.body["data"].is_null(), "{what}");
    }
    // The control: the same claims signed properly work.
    let control = sign(&valid, jsonwebtoken::Algorithm::HS256, TEST_JWT_SECRET);
    assert_eq!(send(&app, "GET", "/api/customers", Some(&control), None).await.status, 200);
    // Over WebSocket, a forged token is refused at connection_init (4403).
    let mut socket = WsClient::open(&app, TRANSPORT_WS).await;
    socket.init_with(json!({ "Authorization": format!("Bearer {}", tokens[4].1) })).await;
    assert_eq!(socket.expect_close().await, 4403);
    assert_alive_and_unchanged(&app, &token, &before).await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_every_error_names_it() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let chosen = app
        .client
        .get(format!("{}/api/customers/c999", app.address))
        .bearer_auth(&token)
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.headers()["x-request-id"], "client-chosen-42", "a sane incoming id is echoed");
    let body: Value = chosen.json().await.unwrap();
    assert_eq!((body["code"].clone(), body["requestId"].clone()), (json!(404), json!("client-chosen-42")), "{body}");

    for bad in ["has spaces in it", &"x".repeat(65), "new\tline"] {
        let answer =
            app.client.get(format!("{}/healthz", app.address)).header("x-request-id", bad).send().await.unwrap();
        let id = answer.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(id, bad, "an unusable incoming id is replaced");
        assert_eq!(id.len(), 32, "{id}");
    }
    let graphql =
        send(&app, "POST", "/graphql", Some(&token), json_bytes(json!({ "query": "{ ticket(id: \"nope\") { id } }" })))
            .await;
    let id = graphql.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(graphql.body["errors"][0]["extensions"]["requestId"], id.as_str(), "{}", graphql.text);
    let parse_error = send(&app, "POST", "/graphql", Some(&token), json_bytes(json!({ "query": "{ me { " }))).await;
    assert_eq!(parse_error.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{}", parse_error.text);
    assert!(parse_error.body["errors"][0]["extensions"]["requestId"].is_string(), "{}", parse_error.text);
    for path in ["/api/nope", "/playground", "/api/docs", "/api/openapi.json", "/healthz"] {
        let answer = send(&app, "GET", path, None, None).await;
        assert!(answer.headers.contains_key("x-request-id"), "{path}");
    }
}

#[tokio::test]
async fn an_internal_failure_shows_the_client_nothing_but_a_generic_message_and_the_request_id() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    // A stored ticket whose type is outside the value set: reading it fails inside the store.
    match &app.backend {
        Backend::Sqlite => {
            let connection = rusqlite::Connection::open(app.database_file()).unwrap();
            connection.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            connection.execute("UPDATE tickets SET type = 'sqlite-secret-bogus' WHERE id = 't002'", []).unwrap();
        }
        Backend::Mongo { mongodb_uri, .. } => {
            use mongodb::bson::{doc, Document};
            let client = mongodb::Client::with_uri_str(mongodb_uri).await.unwrap();
            let tickets = client.database(&database_name(&app.data_dir)).collection::<Document>("tickets");
            tickets
                .update_one(doc! { "id": "t002" }, doc! { "$set": { "type": "sqlite-secret-bogus" } })
                .await
                .unwrap();
        }
    }
    let rest = send(&app, "GET", "/api/tickets/t002", Some(&token), None).await;
    assert_eq!(rest.status, 500, "{}", rest.text);
    assert_eq!(rest.body["message"], "服务器内部错误");
    let request_id = rest.headers["x-request-id"].to_str().unwrap();
    assert_eq!(rest.body["requestId"], request_id);
    let graphql = send(
        &app,
        "POST",
        "/graphql",
        Some(&token),
        json_bytes(json!({ "query": "{ ticket(id: \"t002\") { type } }" })),
    )
    .await;
    assert_eq!(graphql.body["errors"][0]["extensions"]["code"], "INTERNAL", "{}", graphql.text);
    assert_eq!(graphql.body["errors"][0]["message"], "服务器内部错误");
    for answer in [&rest, &graphql] {
        for secret in ["bogus", "sqlite", "mongo", "SELECT", "document", "field"] {
            assert!(!answer.text.to_lowercase().contains(&secret.to_lowercase()), "{secret} leaked: {}", answer.text);
        }
    }
    assert_eq!(app.data(&token, ME, json!({})).await["me"]["id"], "sp001", "the server still serves");
}

#[tokio::test]
async fn security_headers_are_on_every_answer_and_the_pages_keep_their_own_policy() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let answers = [
        ("/api/customers", send(&app, "GET", "/api/customers", Some(&token), None).await),
        ("/graphql", send(&app, "POST", "/graphql", Some(&token), json_bytes(json!({ "query": ME }))).await),
        ("/api/nope", send(&app, "GET", "/api/nope", None, None).await),
        ("/playground", send(&app, "GET", "/playground", None, None).await),
        ("/api/docs", send(&app, "GET", "/api/docs", None, None).await),
        ("/healthz", send(&app, "GET", "/healthz", None, None).await),
    ];
    for (path, answer) in &answers {
        let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors"), "{path}: {csp}");
        if path.starts_with("/playground") {
            assert_eq!(header("x-frame-options"), "SAMEORIGIN", "{path}");
            assert!(csp.contains("script-src 'self'"), "the playground's own policy: {csp}");
        } else if path.starts_with("/api/docs") {
            assert_eq!(header("x-frame-options"), "DENY", "{path}");
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"), "the docs' own policy: {csp}");
        } else {
            assert_eq!(header("x-frame-options"), "DENY", "{path}");
            assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        }
    }
    assert_eq!(answers[1].1.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn cross_origin_calls_are_allowed_only_for_configured_origins() {
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/api/customers", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let closed = TestApp::spawn().await;
    let answer = preflight(&closed, "https://mp.example.com").await.unwrap();
    assert!(answer.headers().get("access-control-allow-origin").is_none(), "no origin by default");

    let open = TestApp::spawn_configured(&[("CORS_ALLOWED_ORIGINS", "https://mp.example.com")]).await;
    let answer = preflight(&open, "https://mp.example.com").await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(answer.headers()["access-control-allow-origin"], "https://mp.example.com");
    let allowed = answer.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("idempotency-key"), "{allowed}");
    let answer = preflight(&open, "https://evil.example.net").await.unwrap();
    assert!(answer.headers().get("access-control-allow-origin").is_none(), "another origin is not allowed");
    let token = open.login(DEMO_A).await;
    let answer = open
        .client
        .get(format!("{}/api/customers", open.address))
        .bearer_auth(&token)
        .header("origin", "https://mp.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["access-control-allow-origin"], "https://mp.example.com");
    let exposed = answer.headers()["access-control-expose-headers"].to_str().unwrap().to_lowercase();
    assert!(exposed.contains("x-request-id") && exposed.contains("retry-after"), "{exposed}");
}

// --- data masking (spec 6.2) ---

fn is_masked_phone(phone: &str) -> bool {
    phone.contains("****") && phone.chars().filter(char::is_ascii_digit).count() <= 7
}

fn is_masked_email(email: &str) -> bool {
    email.split_once('@').is_some_and(|(local, _)| local.ends_with("***") && local.chars().count() <= 4)
}

#[tokio::test]
async fn contact_details_are_masked_in_the_rest_list_and_full_in_the_detail() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let list = send(&app, "GET", "/api/customers?pageSize=100", Some(&token), None).await;
    let customers = list.body["data"]["customers"].as_array().expect("customers").clone();
    assert_eq!(customers.len(), 30);
    for customer in &customers {
        assert!(is_masked_phone(str_of(customer, "phone")), "{customer}");
        assert!(is_masked_email(str_of(customer, "email")), "{customer}");
    }
    let detail = send(&app, "GET", "/api/customers/c001", Some(&token), None).await;
    let (phone, email) = (str_of(&detail.body["data"], "phone"), str_of(&detail.body["data"], "email"));
    assert!(!phone.contains('*') && phone.len() == 11, "{phone}");
    assert!(!email.contains('*') && email.contains('@'), "{email}");
    let listed = customers.iter().find(|c| c["id"] == "c001").unwrap();
    assert_eq!(str_of(listed, "phone"), format!("{}****{}", &phone[..3], &phone[7..]), "138****5678 style");
    let (local, domain) = email.split_once('@').unwrap();
    assert_eq!(str_of(listed, "email"), format!("{}***@{domain}", local.chars().next().unwrap()));
}

#[tokio::test]
async fn contact_details_are_masked_in_the_graphql_list_and_beside_tickets_and_full_in_the_detail() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = app
        .data(
            &token,
            "{ customers(pageSize: 100) { items { id phone email } }
               tickets(pageSize: 5) { items { customer { phone email } } }
               chatMessages(customerId: \"c001\", pageSize: 1) { items { customer { phone email } } }
               customer(id: \"c001\") { phone email }
               usageScore(customerId: \"c001\") { customerId } }",
            json!({}),
        )
        .await;
    let mut shown: Vec<&Value> = items(&data["customers"]).iter().collect();
    shown.extend(items(&data["tickets"]).iter().map(|t| &t["customer"]));
    shown.extend(items(&data["chatMessages"]).iter().map(|m| &m["customer"]));
    for customer in shown {
        assert!(is_masked_phone(str_of(customer, "phone")), "{customer}");
        assert!(is_masked_email(str_of(customer, "email")), "{customer}");
    }
    let detail = &data["customer"];
    assert!(!str_of(detail, "phone").contains('*') && !str_of(detail, "email").contains('*'), "{detail}");
    let listed = items(&data["customers"]).iter().find(|c| c["id"] == "c001").unwrap();
    assert_eq!(
        listed["phone"],
        json!(provider_desk::domain::masking::mask_phone(str_of(detail, "phone"))),
        "the list shows the detail's number masked"
    );
}
