//! The client side of every HTTP call a test makes: [`Api`] (a server's address and one
//! `reqwest` client, with the GraphQL and REST helpers), [`Request`] (one REST call, built up
//! from its parts) and [`Answer`] (what came back). Both kinds of server a test starts, the
//! in-process [`TestApp`](super::TestApp) and the [`ServerProcess`](super::ServerProcess),
//! dereference to an `Api`, so `app.graphql(..)`, `server.login(..)` and `app.send(..)` read the
//! same whichever one a test holds.

use super::DEMO_PASSWORD;
use serde_json::{json, Value};

/// A server to talk to over HTTP: its address (`http://host:port`) and the client that calls it.
#[derive(Clone)]
pub struct Api {
    pub address: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(address: String) -> Api {
        Api { address, client: reqwest::Client::new() }
    }

    /// The absolute URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends one REST (or any HTTP) request, with `token` as the bearer token if given.
    pub async fn send(&self, token: Option<&str>, request: &Request) -> Answer {
        let url = self.url(&request.path);
        let mut builder = match request.method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json"),
            method => {
                let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
                self.client.request(method, url).header(reqwest::header::CONTENT_TYPE, "application/json")
            }
        };
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        if let Some(client) = &request.forwarded_for {
            builder = builder.header("x-forwarded-for", client);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        builder = match &request.body {
            Body::Empty => builder,
            Body::Json(value) => builder.body(value.to_string()),
            Body::Raw(bytes) => builder.body(bytes.clone()),
        };
        let context = format!("{} {}", request.method, request.path);
        let response = builder.send().await.unwrap_or_else(|e| panic!("{context}: the server answers: {e}"));
        Answer::read(response).await
    }

    /// A GET of `path`.
    pub async fn get(&self, token: Option<&str>, path: &str) -> Answer {
        self.send(token, &Request::get(path)).await
    }

    /// A POST of `body` as JSON to `path`.
    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> Answer {
        self.send(token, &Request::post(path, body)).await
    }

    /// Sends a GraphQL operation and returns the whole response body (`data` and `errors`).
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let answer = self.post(token, "/graphql", json!({ "query": query, "variables": variables })).await;
        assert!(answer.status == 200, "GraphQL answers 200 even for errors, got {}: {}", answer.status, answer.text);
        assert!(answer.is_json(), "GraphQL answers JSON: {}", answer.text);
        answer.body
    }

    /// The answer to `{ customers { total } }` with `token` once it is refused with `code`, or the
    /// last one after 5 s: a server may trust a token, and a provider's status, it read a moment
    /// ago for up to 2 s each (see the README), so the answers in between may differ.
    pub async fn once_refused_with(&self, token: &str, code: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let body = self.graphql(Some(token), "{ customers { total } }", json!({})).await;
            if body["errors"][0]["extensions"]["code"] == code || std::time::Instant::now() > deadline {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Sends an operation that must succeed and returns its `data`.
    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.graphql(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Signs in (with the demo password) and returns the access token.
    pub async fn login(&self, username: &str) -> String {
        self.login_pair(username).await.0
    }

    /// Signs in (with the demo password) and returns the access token and the refresh token.
    pub async fn login_pair(&self, username: &str) -> (String, String) {
        self.login_with(username, DEMO_PASSWORD).await
    }

    /// Signs in and returns the access token and the refresh token.
    pub async fn login_with(&self, username: &str, password: &str) -> (String, String) {
        let body = self
            .graphql(
                None,
                "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token refreshToken } }",
                json!({ "u": username, "p": password }),
            )
            .await;
        let login = &body["data"]["login"];
        (
            login["token"].as_str().unwrap_or_else(|| panic!("login failed: {body}")).to_owned(),
            login["refreshToken"].as_str().expect("a refresh token").to_owned(),
        )
    }

    /// What a refused request could have changed: counts of tickets, chat messages, customers and
    /// notifications, and the state of ticket t001; compared before and after.
    pub async fn snapshot(&self, token: &str) -> Value {
        self.data(
            token,
            "{
                tickets(pageSize: 1) { total }
                ticket(id: \"t001\") { status escalationStatus resolution processingHistory { id } }
                chatMessages(customerId: \"c001\", pageSize: 1) { total }
                customers(pageSize: 1) { total }
                notifications(pageSize: 1) { total unreadCount }
            }",
            json!({}),
        )
        .await
    }

    /// The `/metrics` text, checked to be served as the Prometheus text format.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.expect("the server answers");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "Prometheus text: {content_type}");
        response.text().await.expect("a text body")
    }
}

/// The body of a [`Request`].
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    /// A JSON value, serialized.
    Json(Value),
    /// Bytes sent as written (declared as JSON like every POST), for malformed or huge bodies.
    Raw(Vec<u8>),
}

/// One HTTP request: GET (with its query string in `path`) or POST (always declared as JSON).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub body: Body,
    /// Sent as `X-Forwarded-For`, to say which client a trusted proxy forwarded the call for.
    pub forwarded_for: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A request with `method` (`GET`, `POST`, `PUT`, `DELETE`) and no body.
    pub fn new(method: &'static str, path: impl Into<String>) -> Request {
        Request { method, path: path.into(), body: Body::Empty, forwarded_for: None, headers: Vec::new() }
    }

    pub fn get(path: impl Into<String>) -> Request {
        Request::new("GET", path)
    }

    /// A POST of `body` as JSON.
    pub fn post(path: impl Into<String>, body: Value) -> Request {
        Request::new("POST", path).json(body)
    }

    /// A POST of `body` exactly as written.
    pub fn post_raw(path: impl Into<String>, body: impl Into<Vec<u8>>) -> Request {
        Request::new("POST", path).raw(body)
    }

    pub fn json(mut self, body: Value) -> Request {
        self.body = Body::Json(body);
        self
    }

    pub fn raw(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Body::Raw(body.into());
        self
    }

    pub fn forwarded_for(mut self, client: &str) -> Request {
        self.forwarded_for = Some(client.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// What the server answered: the status, the headers, the body as text and as JSON (`Null` when
/// the body is not JSON; [`Answer::is_json`] tells the two apart).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
    json: bool,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let parsed = serde_json::from_str::<Value>(&text).ok();
        Answer { status, headers, json: parsed.is_some(), body: parsed.unwrap_or(Value::Null), text }
    }

    /// Whether the body was JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// The value of header `name`, if it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `Retry-After` header in seconds, panicking if there is none.
    pub fn retry_after(&self) -> u64 {
        self.header("retry-after")
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("a Retry-After header in seconds: {:?} {}", self.headers, self.text))
    }
}
