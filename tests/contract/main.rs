//! The storage port's contract: one suite that holds every adapter to the same behaviour, calling
//! the store directly (no HTTP, no services in between).
//!
//! Each test is an async fn over the port ([`SharedStore`] or [`SharedTokenStore`]), written once;
//! [`contract_tests!`] turns it into a `#[tokio::test]` that runs it against the backend
//! `TEST_BACKEND` selects: unset or `sqlite`, a fresh SQLite file in a temporary directory; `mongo`,
//! the MongoDB adapter on `TEST_MONGODB_URI` with a fresh database (`pdtest_contract_<random>`,
//! dropped afterwards), and for the token tests the Redis token store on `TEST_REDIS_URL` as well
//! as the MongoDB one. Every test gets its own empty store, so counts start at zero.
//!
//! It shares the harness of the other test binaries (`tests/support`: the backend `TEST_BACKEND`
//! selects), but opens adapters, not servers.

#[path = "../support/mod.rs"]
mod support;

mod fixtures;

mod attachments;
mod audit;
mod canned_replies;
mod chat;
mod conversations;
mod customer_status_totals;
mod customers;
mod events;
mod idempotency;
mod leases;
mod notifications;
mod outbox;
mod providers;
mod query_plans;
mod retention;
mod search;
mod ticket_sla;
mod tickets;
mod tokens;
mod totals;

use provider_desk::config::MongoSettings;
use provider_desk::redis::RedisTokenStore;
use provider_desk::store::mongo::MongoStore;
use provider_desk::store::sqlite::SqliteStore;
use provider_desk::store::*;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use support::Backend;

/// One fresh store, and what must be cleaned up after it.
/// The settings of a contract test's MongoDB store on `database`: patient with a loaded server.
fn mongo_settings(database: &str) -> MongoSettings {
    MongoSettings {
        database: database.to_owned(),
        write_concern: None,
        max_pool_size: None,
        connect_timeout: None,
        server_selection_timeout: None,
        operation_timeout: Duration::from_secs(30),
    }
}

struct Fresh {
    store: SharedStore,
    /// The token stores the backend gives: the store's own, and Redis with MongoDB.
    token_stores: Vec<SharedTokenStore>,
    mongo: Option<Arc<MongoStore>>,
    _directory: Option<tempfile::TempDir>,
}

impl Fresh {
    async fn open() -> Fresh {
        match Backend::from_env() {
            Backend::Sqlite => {
                let directory = tempfile::tempdir().expect("a temporary directory");
                let store = Arc::new(SqliteStore::open(directory.path()).expect("the SQLite store opens"));
                Fresh { store: store.clone(), token_stores: vec![store], mongo: None, _directory: Some(directory) }
            }
            Backend::Mongo { mongodb_uri, redis_url } => {
                let settings = mongo_settings(&format!("pdtest_contract_{}", fixtures::random_suffix()));
                let store =
                    Arc::new(MongoStore::connect(&mongodb_uri, &settings).await.expect("the MongoDB store connects"));
                let redis = RedisTokenStore::connect(&redis_url, &settings.database, Duration::from_secs(5))
                    .await
                    .expect("the Redis token store connects");
                Fresh {
                    store: store.clone(),
                    token_stores: vec![Arc::new(redis), store.clone()],
                    mongo: Some(store),
                    _directory: None,
                }
            }
        }
    }

    async fn close(self) {
        if let Some(mongo) = &self.mongo {
            mongo.database().drop().await.expect("the test database is dropped");
        }
    }
}

/// Runs a store test on a fresh store of the selected backend, cleaning up even if it fails.
pub async fn run_store<F, Fut>(test: F)
where
    F: FnOnce(SharedStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fresh = Fresh::open().await;
    let outcome = tokio::spawn(test(fresh.store.clone())).await;
    fresh.close().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Runs a token test on every token store the selected backend gives, with a provider the data
/// store holds (the SQLite tables refer to it).
pub async fn run_tokens<F, Fut>(test: F)
where
    F: Fn(SharedTokenStore, provider_desk::domain::Id) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fresh = Fresh::open().await;
    let provider = fixtures::stored_provider(&fresh.store).await;
    let mut outcome = Ok(());
    for tokens in &fresh.token_stores {
        let backend = tokens.backend();
        outcome = tokio::spawn(test(tokens.clone(), provider.clone())).await.map_err(|error| (backend, error));
        if outcome.is_err() {
            break;
        }
    }
    fresh.close().await;
    if let Err((backend, error)) = outcome {
        eprintln!("failed on the {backend} token store");
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Runs a test on a fresh store of the selected backend together with that store's own token
/// adapter (not Redis): for what the store does to the token tables it holds.
pub async fn run_store_tokens<F, Fut>(test: F)
where
    F: FnOnce(SharedStore, SharedTokenStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fresh = Fresh::open().await;
    let own_tokens = fresh.token_stores.last().expect("the store's own token adapter").clone();
    let outcome = tokio::spawn(test(fresh.store.clone(), own_tokens)).await;
    fresh.close().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Declares `#[tokio::test]`s (in a submodule `on_backend`) that run the named async fns of the
/// module with [`run_store`] (`store: ...`), [`run_tokens`] (`tokens: ...`) or [`run_store_tokens`]
/// (`store_tokens: ...`, in `on_own_token_store`, so a module may use it beside one of the others).
#[macro_export]
macro_rules! contract_tests {
    (store: $($test:ident),+ $(,)?) => {
        mod on_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::run_store(super::$test).await;
                }
            )+
        }
    };
    (store_tokens: $($test:ident),+ $(,)?) => {
        mod on_own_token_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::run_store_tokens(super::$test).await;
                }
            )+
        }
    };
    (tokens: $($test:ident),+ $(,)?) => {
        mod on_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::run_tokens(super::$test).await;
                }
            )+
        }
    };
}
