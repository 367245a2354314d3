//! The one test harness every test binary includes (`#[path = "../support/mod.rs"] mod support;`):
//! [`TestApp`], the real application started in the test's process on a random port against a
//! fresh store; [`ServerProcess`], the built binary started as a process; [`Api`], [`Request`] and
//! [`Answer`], the HTTP and GraphQL client both dereference to; [`WsClient`], the WebSocket client;
//! [`Exposition`], a strict parser of the `/metrics` text; and the assertions on GraphQL errors.
//!
//! One suite, two backends. `TEST_BACKEND` picks the store every test runs against:
//! - unset (or `sqlite`): a fresh SQLite file in a temporary directory;
//! - `mongo`: MongoDB at `TEST_MONGODB_URI` with tokens in Redis at `TEST_REDIS_URL`, each server
//!   on a database of its own (named after its data directory, so a restart in the same directory
//!   finds the same data), dropped when the test ends.
//!
//! `scripts/test` runs the suite once each way, starting the servers it needs.

#![allow(dead_code)]

pub mod demo_data;
pub mod http;
pub mod mongo_servers;
pub mod process;
pub mod prometheus;
pub mod ws;

// Each binary uses part of the harness; what one does not use is no warning.
#[allow(unused_imports)]
pub use {http::*, process::*, prometheus::*, ws::*};

use chrono::{DateTime, Utc};
use provider_desk::app::Application;
use provider_desk::config::Config;
use provider_desk::service::Services;
use serde_json::Value;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

/// The demo accounts every seeded store has.
pub const DEMO_A: &str = "demo-a";
pub const DEMO_B: &str = "demo-b";
pub const DEMO_PASSWORD: &str = "demo12345";
/// The JWT secret the test servers use, so tests can forge tokens the way an attacker would not.
pub const TEST_JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";

/// The backend the suite runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Mongo { mongodb_uri: String, redis_url: String },
}

impl Backend {
    /// The backend `TEST_BACKEND` names.
    pub fn from_env() -> Backend {
        match std::env::var("TEST_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
            Ok("mongo") => {
                let required = |name: &str| {
                    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
                        panic!("TEST_BACKEND=mongo needs {name} (scripts/test sets it after starting the server)")
                    })
                };
                Backend::Mongo {
                    mongodb_uri: mongo_servers::server_of_this_thread(&required("TEST_MONGODB_URI")),
                    redis_url: required("TEST_REDIS_URL"),
                }
            }
            Ok(other) => panic!("TEST_BACKEND={other:?}: expected sqlite or mongo"),
        }
    }

    /// The Redis of the MongoDB pass, `None` on SQLite. Unlike [`Backend::from_env`] it takes no
    /// MongoDB server, so a test may ask from a task spawned off its own thread.
    pub fn redis_url_from_env() -> Option<String> {
        if std::env::var("TEST_BACKEND").as_deref() != Ok("mongo") {
            return None;
        }
        std::env::var("TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
    }

    pub fn is_mongo(&self) -> bool {
        matches!(self, Backend::Mongo { .. })
    }
}

/// The MongoDB database a server in `data_dir` uses: the same for the same directory.
pub fn database_name(data_dir: &Path) -> String {
    let mut hasher = DefaultHasher::new();
    data_dir.hash(&mut hasher);
    format!("pdtest_{:016x}", hasher.finish())
}

/// The configuration a test server gets: the backend's, plus `extra` (which wins).
pub fn test_config(backend: &Backend, data_dir: &Path, seed_demo: bool, extra: &[(&str, &str)]) -> Config {
    let mut settings: Vec<(String, String)> = vec![
        ("PORT".into(), "0".into()),
        ("DATA_DIR".into(), data_dir.to_string_lossy().into_owned()),
        ("SEED_DEMO".into(), if seed_demo { "true" } else { "false" }.into()),
        ("BCRYPT_COST".into(), "4".into()),
        ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        // Scheduled jobs would write alerts beside the tests; tests/integration.rs runs them itself.
        ("JOB_INTERVAL_SECONDS".into(), "0".into()),
    ];
    if let Backend::Mongo { mongodb_uri, redis_url } = backend {
        settings.push(("MONGODB_URI".into(), mongodb_uri.clone()));
        settings.push(("MONGODB_DB".into(), database_name(data_dir)));
        settings.push(("REDIS_URL".into(), redis_url.clone()));
        // SecantusDB, the test suite's MongoDB, is a Python daemon much slower than mongod: its
        // calls get more time than production's deadlines give (a test of those sets its own).
        settings.push(("MONGODB_OPERATION_TIMEOUT_MS".into(), "30000".into()));
        settings.push(("REQUEST_TIMEOUT_MS".into(), "60000".into()));
    }
    for (name, value) in extra {
        settings.retain(|(n, _)| n != name);
        settings.push((name.to_string(), value.to_string()));
    }
    Config::from_lookup(|name| settings.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
        .expect("test configuration is valid")
}

/// Runs the future `work` makes to its end on a thread and runtime of its own, so a test may call
/// it anywhere, `Drop` inside a runtime included: the driver's client belongs to the runtime it was
/// made in, and a test's runtime ends with the test.
pub fn on_own_runtime<T, F, Fut>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(work())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Drops a test database.
pub fn drop_database(mongodb_uri: &str, database: &str) {
    let (uri, name) = (mongodb_uri.to_owned(), database.to_owned());
    let dropped = on_own_runtime(move || async move {
        let client = mongodb::Client::with_uri_str(&uri).await?;
        client.database(&name).drop().await
    });
    if let Err(error) = dropped {
        eprintln!("could not drop the test database {database}: {error}");
    }
}

/// The application in this process, serving on a random port; stopped when dropped. Dereferences
/// to its [`Api`], so a test calls `app.graphql(..)`, `app.login(..)`, `app.address`.
pub struct TestApp {
    pub api: Api,
    pub services: Services,
    pub data_dir: PathBuf,
    pub backend: Backend,
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

    /// A server with demo data on a fresh store, with these settings on top of the test ones
    /// (low rate limits, a deny list, ...).
    pub async fn spawn_configured(extra: &[(&str, &str)]) -> TestApp {
        let temp = tempfile::tempdir().expect("a temporary directory");
        let backend = Backend::from_env();
        let config = test_config(&backend, temp.path(), true, extra);
        let mut app = TestApp::spawn_with(config, backend).await;
        app._temp = Some(temp);
        app
    }

    /// A server on the store in `data_dir` (which may already hold data from an earlier server).
    pub async fn spawn_in(data_dir: &Path, seed_demo: bool) -> TestApp {
        let backend = Backend::from_env();
        let config = test_config(&backend, data_dir, seed_demo, &[]);
        TestApp::spawn_with(config, backend).await
    }

    /// A server with exactly this configuration (fault tests point it at servers of their own).
    pub async fn spawn_with(config: Config, backend: Backend) -> TestApp {
        let data_dir = config.data_dir.clone();
        if config.demo_seeding().seeds() {
            demo_data::copy_demo_data_if_empty(&backend, &config.mongo.database);
        }
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
            api: Api::new(address),
            services,
            data_dir,
            backend,
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

    /// The server's clock (ticket times, service-level timers, the jobs): a test moves it with
    /// `advance` instead of sleeping through a target.
    pub fn clock(&self) -> &provider_desk::domain::Clock {
        &self.services.clock
    }

    /// How many store round trips the server has made so far.
    pub fn store_round_trips(&self) -> u64 {
        self.services.store.round_trips()
    }

    /// The path of the SQLite file, for tests that look at or tamper with what is stored.
    pub fn database_file(&self) -> PathBuf {
        self.data_dir.join("provider-desk.sqlite3")
    }

    /// Overwrites a customer's stored status directly in the store, behind the service's back,
    /// as data synced from elsewhere might.
    pub async fn set_stored_customer_status(&self, customer: &str, status: &str) {
        match &self.backend {
            Backend::Sqlite => {
                let connection = rusqlite::Connection::open(self.database_file()).expect("the database opens");
                connection.busy_timeout(std::time::Duration::from_secs(5)).expect("a busy timeout");
                let changed = connection
                    .execute("UPDATE customers SET status = ?1 WHERE id = ?2", [status, customer])
                    .expect("the update runs");
                assert_eq!(changed, 1, "customer {customer} is stored");
            }
            Backend::Mongo { mongodb_uri, .. } => {
                use mongodb::bson::{doc, Document};
                let client = mongodb::Client::with_uri_str(mongodb_uri).await.expect("MongoDB answers");
                let customers = client.database(&database_name(&self.data_dir)).collection::<Document>("customers");
                let result = customers
                    .update_one(doc! { "id": customer }, doc! { "$set": { "status": status } })
                    .await
                    .expect("the update runs");
                assert_eq!(result.matched_count, 1, "customer {customer} is stored");
            }
        }
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestApp {
    /// A test's own MongoDB database goes with its temporary directory.
    fn drop(&mut self) {
        if let (Some(_), Backend::Mongo { mongodb_uri, .. }) = (&self._temp, &self.backend) {
            drop_database(mongodb_uri, &database_name(&self.data_dir));
        }
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
