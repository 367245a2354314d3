//! Building the application: the one place that wires configuration, store, services, schema and
//! router together. `main.rs`, the tests and the benchmarks all start the server through
//! [`Application::build`], so they run exactly the same thing.

use crate::bus::RedisBus;
use crate::config::{Config, MIN_JWT_SECRET_BYTES};
use crate::error::AppError;
use crate::graphql::build_schema;
use crate::http::{router, AppState};
use crate::limits::memory::MemoryLimiter;
use crate::limits::redis::RedisLimiter;
use crate::limits::{Guard, SharedLimiter};
use crate::seed;
use crate::service::auth::{random_token, AuthService};
use crate::service::realtime::{Realtime, RemoteBus};
use crate::service::Services;
use crate::store::mongo::MongoStore;
use crate::store::redis::RedisTokenStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{SharedStore, SharedTokenStore};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error("cannot prepare the store: {0}")]
    Store(String),
    #[error("a REST endpoint document is broken: {0}")]
    RestDocument(String),
    #[error("cannot use {0}")]
    Backend(String),
}

impl From<AppError> for StartupError {
    fn from(error: AppError) -> Self {
        let detail = match error {
            AppError::Internal(detail) | AppError::Unavailable(detail) => detail,
            other => other.to_string(),
        };
        StartupError::Store(detail)
    }
}

/// The wired services, before any socket is opened (used by the CLI's offline commands too).
///
/// `MONGODB_URI` selects MongoDB for the data (and for tokens, unless Redis holds them), else the
/// SQLite file under `DATA_DIR`; `REDIS_URL` selects Redis for tokens. A backend that is configured
/// but unusable stops the start-up with a message naming it.
pub async fn build_services(config: &Config) -> Result<Services, StartupError> {
    let (store, main_tokens): (SharedStore, SharedTokenStore) = match &config.mongodb_uri {
        Some(uri) => {
            let store =
                Arc::new(MongoStore::connect(uri, &config.mongo).await.map_err(|e| backend_error("MongoDB", e))?);
            tracing::info!(database = %config.mongo.database, "using MongoDB");
            (store.clone(), store)
        }
        None => {
            let store = Arc::new(SqliteStore::open(&config.data_dir)?);
            (store.clone(), store)
        }
    };
    let tokens: SharedTokenStore = match &config.redis_url {
        Some(url) => {
            let redis =
                RedisTokenStore::connect(url, config.redis_timeout).await.map_err(|e| backend_error("Redis", e))?;
            tracing::info!("using Redis for tokens");
            Arc::new(redis)
        }
        None => main_tokens,
    };
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None if config.mongodb_uri.is_some() => return Err(StartupError::Unsupported(
            "JWT_SECRET must be set with MONGODB_URI: every server of a deployment has to sign with the same secret",
        )),
        None => kept_jwt_secret(&config.data_dir)?,
    };
    let store_name = match &config.mongodb_uri {
        Some(_) => config.mongo.database.clone(),
        None => std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone()).display().to_string(),
    };
    let limiter: SharedLimiter = match &config.redis_url {
        Some(url) => Arc::new(
            RedisLimiter::connect(url, &store_name, config.redis_timeout)
                .await
                .map_err(|e| backend_error("Redis", e))?,
        ),
        None => Arc::new(MemoryLimiter::new()),
    };
    let guard = Arc::new(Guard::new(limiter, config.security.clone()));
    let auth = AuthService::new(store.clone(), tokens, secret.as_bytes(), config.bcrypt_cost, guard.clone()).await?;
    let bus = match &config.redis_url {
        Some(url) => {
            let bus = RedisBus::connect(url, &store_name, config.redis_timeout).await;
            Some(Arc::new(bus.map_err(|e| backend_error("Redis", e))?))
        }
        None => None,
    };
    let remote = bus.clone().map(|bus| bus as Arc<dyn RemoteBus>);
    let realtime = Arc::new(Realtime::new(store.clone(), remote));
    let services = Services::new(store, auth, realtime, guard);
    if let Some(bus) = bus {
        tracing::info!("using Redis pub/sub between server processes");
        bus.start(services.realtime.clone(), services.auth.clone());
    }
    Ok(services)
}

fn backend_error(backend: &str, error: AppError) -> StartupError {
    let detail = match error {
        AppError::Internal(detail) | AppError::Unavailable(detail) => detail,
        other => other.to_string(),
    };
    StartupError::Backend(format!("{backend}: {detail}"))
}

/// A server bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    router: axum::Router,
}

impl Application {
    /// Opens the store, seeds demo data into an empty one (unless `SEED_DEMO=false`), and binds
    /// the listening socket (port 0 picks a free one).
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let services = build_services(&config).await?;
        if config.seed_demo {
            seed::seed_demo_if_empty(&services).await?;
        }
        let address = config.listen_address();
        let listener = TcpListener::bind(address).await.map_err(|source| StartupError::Listen { address, source })?;
        let schema = build_schema(services.clone());
        let state = AppState { services, schema };
        let router = router(state.clone()).map_err(StartupError::RestDocument)?;
        Ok(Application { listener, state, router })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn services(&self) -> &Services {
        &self.state.services
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(address = %self.local_addr(), "provider-desk listening");
        // With the peer's address, which the edge needs for the client's IP (see `http::edge`).
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, service).with_graceful_shutdown(shutdown).await
    }
}

const JWT_SECRET_FILE: &str = "jwt-secret";

/// The secret kept in the data directory, created on first use so tokens survive restarts.
fn kept_jwt_secret(data_dir: &Path) -> Result<String, StartupError> {
    let path = data_dir.join(JWT_SECRET_FILE);
    let io_error = |e: std::io::Error| StartupError::Store(format!("{}: {e}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= MIN_JWT_SECRET_BYTES => return Ok(secret.trim().to_owned()),
        Ok(_) => return Err(StartupError::Store(format!("{} is shorter than 32 bytes", path.display()))),
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(io_error(error)),
        Err(_) => {}
    }
    std::fs::create_dir_all(data_dir).map_err(io_error)?;
    let secret = random_token()?;
    write_private(&path, &secret).map_err(io_error)?;
    tracing::info!(path = %path.display(), "generated a JWT secret");
    Ok(secret)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
