//! Shared test setup: the real application on a random port against a fresh SQLite file, and a
//! small GraphQL client that talks to it over HTTP like the mini-program would.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use provider_desk::app::Application;
use provider_desk::config::Config;
use provider_desk::service::Services;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The demo accounts every seeded store has.
pub const DEMO_A: &str = "demo-a";
pub const DEMO_B: &str = "demo-b";
pub const DEMO_PASSWORD: &str = "demo12345";
/// The JWT secret the test servers use, so tests can forge tokens the way an attacker would not.
pub const TEST_JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub services: Services,
    pub data_dir: PathBuf,
    /// Removes the data directory when the test ends (None when the caller owns the directory).
    _temp: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// A server with demo data on a fresh store.
    pub async fn spawn() -> TestApp {
        let temp = tempfile::tempdir().expect("a temporary directory");
        let data_dir = temp.path().to_path_buf();
        let mut app = TestApp::spawn_in(&data_dir, true).await;
        app._temp = Some(temp);
        app
    }

    /// A server on the store in `data_dir` (which may already hold data from an earlier server).
    pub async fn spawn_in(data_dir: &Path, seed_demo: bool) -> TestApp {
        let dir = data_dir.to_string_lossy().into_owned();
        let seed = if seed_demo { "true" } else { "false" };
        let config = Config::from_lookup(|name| match name {
            "PORT" => Some("0".to_owned()),
            "DATA_DIR" => Some(dir.clone()),
            "SEED_DEMO" => Some(seed.to_owned()),
            "BCRYPT_COST" => Some("4".to_owned()),
            "JWT_SECRET" => Some(TEST_JWT_SECRET.to_owned()),
            _ => None,
        })
        .expect("test configuration is valid");
        let application = Application::build(config).await.expect("the application starts");
        let address = format!("http://{}", application.local_addr());
        let services = application.services().clone();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            application
                .run_until(async {
                    let _ = stop.await;
                })
                .await
                .expect("the server runs");
        });
        TestApp {
            address,
            client: reqwest::Client::new(),
            services,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// How many store round trips the server has made so far.
    pub fn store_round_trips(&self) -> u64 {
        self.services.store.round_trips()
    }

    /// Sends a GraphQL operation and returns the whole response body (`data` and `errors`).
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        assert!(response.status().is_success(), "GraphQL answers 200 even for errors, got {}", response.status());
        response.json().await.expect("GraphQL answers JSON")
    }

    /// Sends an operation that must succeed and returns its `data`.
    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.graphql(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Signs in and returns the access token.
    pub async fn login(&self, username: &str) -> String {
        self.login_pair(username).await.0
    }

    /// Signs in and returns the access token and the refresh token.
    pub async fn login_pair(&self, username: &str) -> (String, String) {
        let body = self
            .graphql(
                None,
                "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token refreshToken } }",
                json!({ "u": username, "p": DEMO_PASSWORD }),
            )
            .await;
        let login = &body["data"]["login"];
        (
            login["token"].as_str().unwrap_or_else(|| panic!("login failed: {body}")).to_owned(),
            login["refreshToken"].as_str().expect("a refresh token").to_owned(),
        )
    }

    /// The path of the SQLite file, for tests that look at or tamper with what is stored.
    pub fn database_file(&self) -> PathBuf {
        self.data_dir.join("provider-desk.sqlite3")
    }
}

/// The `extensions.code` of the first error of a response, panicking if there is none.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {body}"))
        .to_owned()
}

/// The message of the first error of a response.
pub fn error_message(body: &Value) -> String {
    body["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
}

/// Asserts that a response failed with `code` and produced no data.
pub fn assert_error(body: &Value, code: &str) {
    assert_eq!(error_code(body), code, "{body}");
    assert!(body["data"].is_null(), "no data on error: {body}");
}

/// The items of a page (`{ items total page pageSize }`).
pub fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap_or_else(|| panic!("a page with items: {page}"))
}

/// The total of a page.
pub fn total(page: &Value) -> u64 {
    page["total"].as_u64().unwrap_or_else(|| panic!("a total: {page}"))
}

pub fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("{field} is a string in {value}"))
}

/// A time field, which must be RFC 3339 in UTC with `Z`.
pub fn time(value: &Value, field: &str) -> DateTime<Utc> {
    let text = str_of(value, field);
    assert!(text.ends_with('Z'), "{field} is UTC with Z: {text}");
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{field} is RFC 3339 ({e}): {text}"))
        .with_timezone(&Utc)
}

/// Whether a text holds Chinese characters, as every message of our own validation does.
pub fn has_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}
