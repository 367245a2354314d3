//! Building the application: the one place that wires configuration, store, services, schema and
//! router together. `main.rs`, the tests and the benchmarks all start the server through
//! [`Application::build`], so they run exactly the same thing.

use crate::config::{
    Config, ConnectionSettings, DemoSeeding, IntegrationSettings, IpNet, MetricsAccess, MIN_JWT_SECRET_BYTES,
};
use crate::domain::{new_id, OutboxTarget};
use crate::error::AppError;
use crate::graphql::build_schema;
use crate::http::connections;
use crate::http::metrics::MetricsEndpoint;
use crate::http::quiet;
use crate::http::{metrics_router, router, AppState};
use crate::integration::dispatcher::Dispatcher;
use crate::integration::http_client;
use crate::integration::webhook::CsWebhook;
use crate::integration::wechat::WechatClient;
use crate::integration::{scheduler, Transport, WechatLogin};
use crate::limits::memory::MemoryLimiter;
use crate::limits::{Guard, SharedLimiter};
use crate::redis::{RedisBus, RedisLimiter, RedisTokenStore};
use crate::seed;
use crate::service::attachments::AttachmentSettings;
use crate::service::auth::{random_token, AuthService};
use crate::service::jobs::JobSettings;
use crate::service::outbound::Outbound;
use crate::service::realtime::{Realtime, RemoteBus};
use crate::service::Services;
use crate::store::mongo::MongoStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{ProviderStore, SharedStore, SharedTokenStore};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    /// The store, or a service over it, failed while being prepared.
    #[error("cannot prepare the store: {}", .0.operator_detail())]
    Store(#[from] AppError),
    /// The JWT secret kept in the data directory cannot be read or written.
    #[error("cannot prepare the store: {}: {source}", path.display())]
    SecretFile { path: std::path::PathBuf, source: std::io::Error },
    /// The JWT secret kept in the data directory is too short to sign with.
    #[error("cannot prepare the store: {} is shorter than 32 bytes", .0.display())]
    SecretTooShort(std::path::PathBuf),
    #[error("a REST endpoint document is broken: {0}")]
    RestDocument(String),
    #[error("cannot use {backend}: {}", source.operator_detail())]
    Backend { backend: &'static str, source: AppError },
}

/// The wired services, before any socket is opened (used by the CLI's offline commands too).
///
/// `MONGODB_URI` selects MongoDB for the data (and for tokens, unless Redis holds them), else the
/// SQLite file under `DATA_DIR`; `REDIS_URL` selects Redis for tokens. A backend that is configured
/// but unusable stops the start-up with a message naming it.
pub async fn build_services(config: &Config) -> Result<Services, StartupError> {
    Ok(wire(config).await?.0)
}

/// The outbox's transports, by target: the adapters the dispatcher delivers through.
type Transports = HashMap<OutboxTarget, Arc<dyn Transport>>;

/// The services, and the transports of the integrations that are configured.
async fn wire(config: &Config) -> Result<(Services, Transports), StartupError> {
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
    let store_name = store_name(config);
    let tokens: SharedTokenStore = match &config.redis_url {
        Some(url) => {
            let redis = RedisTokenStore::connect(url, &store_name, config.redis_timeout)
                .await
                .map_err(|e| backend_error("Redis", e))?;
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
    let limiter: SharedLimiter = match &config.redis_url {
        Some(url) => Arc::new(
            RedisLimiter::connect(url, &store_name, config.redis_timeout)
                .await
                .map_err(|e| backend_error("Redis", e))?,
        ),
        None => Arc::new(MemoryLimiter::with_max_keys(config.security.memory_limiter_max_keys)),
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
    let realtime = Arc::new(Realtime::new(&store, remote, config.security.replay_window));
    let (outbound, transports, wechat) = integrations(&config.integrations)?;
    let jobs = JobSettings {
        outbox: config.integrations.outbox.clone(),
        retention: config.integrations.retention.clone(),
        sla: config.sla.clone(),
        clock: crate::domain::Clock::system(),
    };
    let attachments = AttachmentSettings::new(config.uploads.clone(), secret.as_bytes(), &config.data_dir);
    let services = Services::new(store, auth, realtime, outbound, wechat, jobs, guard).with_attachments(attachments);
    if let Some(bus) = bus {
        tracing::info!("using Redis pub/sub between server processes");
        bus.start(services.realtime.clone(), services.auth.clone(), services.typing.hub());
    }
    Ok((services, transports))
}

/// The outbound policy and the adapters of the integrations that are configured, sharing one
/// HTTP client (a private CA that cannot be used stops start-up here).
fn integrations(settings: &IntegrationSettings) -> Result<Integrations, StartupError> {
    let client = http_client::build(settings.outbound_ca.as_ref(), settings.webhook_timeout)?;
    let mut transports: Transports = HashMap::new();
    if let (Some(url), Some(secret)) = (&settings.cs_webhook_url, &settings.cs_secret) {
        tracing::info!(url = %url, "events go to the PC customer-service system");
        transports.insert(OutboxTarget::CustomerService, Arc::new(CsWebhook::new(client.clone(), url, secret)));
    }
    let mut login: Option<Arc<dyn WechatLogin>> = None;
    if let Some(wechat) = &settings.wechat {
        tracing::info!(api = %wechat.api_base, "WeChat subscribe messages are on");
        let client = Arc::new(WechatClient::new(client, wechat.clone()));
        transports.insert(OutboxTarget::Wechat, client.clone());
        login = Some(client);
    }
    let outbound = Arc::new(Outbound::new(settings.cs_webhook_url.is_some(), settings.wechat.clone()));
    Ok((outbound, transports, login))
}

/// The outbound policy, the transports, and WeChat's login port when WeChat is configured.
type Integrations = (Arc<Outbound>, Transports, Option<Arc<dyn WechatLogin>>);

fn backend_error(backend: &'static str, error: AppError) -> StartupError {
    StartupError::Backend { backend, source: error }
}

/// A server bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    router: axum::Router,
    shutdown_timeout: Duration,
    transports: Transports,
    config: Config,
    /// `METRICS_BIND`: the listener that serves `/metrics` alone, and its router.
    metrics_listener: Option<(TcpListener, axum::Router)>,
}

impl Application {
    /// Opens the store, seeds demo data into an empty one (by the rule of [`Config::demo_seeding`]:
    /// on a loopback bind unless `SEED_DEMO=false`, on a public one only with `SEED_DEMO=true`),
    /// and binds the listening sockets (port 0 picks a free one): the main one, and the
    /// `METRICS_BIND` one when set.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let (services, transports) = wire(&config).await?;
        crate::metrics::watch_disk(&config.data_dir);
        let seeding = config.demo_seeding();
        match seeding {
            DemoSeeding::OnPublicAddress => tracing::warn!(bind = %config.bind, "{}", seeding.explain()),
            DemoSeeding::NotOnPublicAddress => tracing::info!(bind = %config.bind, "{}", seeding.explain()),
            DemoSeeding::OnLoopback | DemoSeeding::TurnedOff => {}
        }
        if seeding.seeds() {
            seed::seed_demo_if_empty(&services).await?;
        }
        let address = config.listen_address();
        let listener = TcpListener::bind(address).await.map_err(|source| StartupError::Listen { address, source })?;
        let metrics = MetricsEndpoint::new(config.metrics_access(), services.store.clone());
        let metrics_listener = match config.metrics.bind {
            Some(address) => {
                let listener =
                    TcpListener::bind(address).await.map_err(|source| StartupError::Listen { address, source })?;
                Some((listener, metrics_router(metrics.with_access(config.metrics.own_listener_access()))))
            }
            None => None,
        };
        match config.metrics_access() {
            MetricsAccess::Refused => tracing::info!(
                bind = %config.bind,
                "/metrics answers 403: the server listens on a public address and neither METRICS_TOKEN nor METRICS_BIND is set"
            ),
            MetricsAccess::Token(_) => tracing::info!("/metrics needs METRICS_TOKEN as a bearer token"),
            MetricsAccess::NotServed | MetricsAccess::Open => {}
        }
        let schema = build_schema(services.clone());
        let state = AppState::new(services, schema);
        let router = router(state.clone(), &config.integrations, metrics).map_err(StartupError::RestDocument)?;
        let shutdown_timeout = config.shutdown_timeout;
        Ok(Application { listener, state, router, shutdown_timeout, transports, config, metrics_listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn services(&self) -> &Services {
        &self.state.services
    }

    /// Serves until `signal` completes, then shuts down gracefully: stops accepting connections,
    /// lets the requests in flight finish, closes every WebSocket with 1001 (going away) and waits
    /// for them to close, all within the shutdown timeout (`SHUTDOWN_TIMEOUT_SECS`), after which
    /// it returns anyway. Meanwhile the outbox dispatcher (when an outbound integration is
    /// configured) and the job scheduler (with `JOB_INTERVAL_SECONDS`) run beside it; they finish
    /// what they are doing and stop with it.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(address = %self.local_addr(), "provider-desk listening");
        let (stop, stopped) = watch::channel(false);
        // This process, as the owner of the leases it takes in the store.
        let owner = new_id("p").to_string();
        let services = &self.state.services;
        let mut background = Vec::new();
        if !self.transports.is_empty() {
            let outbox = self.config.integrations.outbox.clone();
            let dispatcher = Dispatcher::new(
                services.store.clone(),
                self.transports,
                outbox,
                owner.clone(),
                services.outbound.clone(),
                services.attachments.clone(),
            );
            background.push(dispatcher.spawn(stopped.clone()));
        }
        if let Some(interval) = self.config.integrations.job_interval {
            background.push(scheduler::spawn(services.jobs.clone(), interval, owner, stopped.clone()));
        }
        background.push(quiet::spawn(stopped.clone()));
        if let Some((listener, router)) = self.metrics_listener {
            let settings = (self.config.connections.clone(), self.config.security.trusted_proxies.clone());
            background.push(serve_metrics(listener, router, settings, stopped));
        }
        // A delivery in progress ends within the webhook timeout; a job may take longer, and is
        // then cut off (it is idempotent and runs again next time).
        let patience = self.config.integrations.webhook_timeout + Duration::from_secs(1);
        let stop_background = || async move {
            let _ = stop.send(true);
            for task in background {
                let abort = task.abort_handle();
                if tokio::time::timeout(patience, task).await.is_err() {
                    abort.abort();
                }
            }
        };

        let shutdown = Arc::clone(&self.state.shutdown);
        let begin = Arc::clone(&shutdown);
        let serve = connections::serve(
            self.listener,
            self.router,
            self.config.connections.clone(),
            self.config.security.trusted_proxies.clone(),
            async move {
                signal.await;
                tracing::info!(
                    open_websockets = begin.open_connections(),
                    "shutting down: no new connections; finishing requests in flight, closing WebSockets"
                );
                begin.begin();
            },
        );
        let deadline = {
            let shutdown = Arc::clone(&shutdown);
            let timeout = self.shutdown_timeout;
            async move {
                shutdown.stopped().await;
                tokio::time::sleep(timeout).await;
            }
        };
        tokio::select! {
            served = serve => served?,
            () = deadline => {
                tracing::warn!(timeout_secs = self.shutdown_timeout.as_secs(), "requests still in flight at the shutdown timeout; stopping anyway");
                stop_background().await;
                return Ok(());
            }
        }
        let began = shutdown.began_at().unwrap_or_else(std::time::Instant::now);
        let left = self.shutdown_timeout.saturating_sub(began.elapsed());
        if tokio::time::timeout(left, shutdown.all_closed()).await.is_err() {
            tracing::warn!(
                open_websockets = shutdown.open_connections(),
                "WebSockets still open at the shutdown timeout"
            );
        }
        stop_background().await;
        tracing::info!("shut down");
        Ok(())
    }
}

/// Serves the `METRICS_BIND` listener until `stop` turns true.
fn serve_metrics(
    listener: TcpListener,
    router: axum::Router,
    (settings, trusted_proxies): (ConnectionSettings, Vec<IpNet>),
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "metrics listening");
    }
    let serve = connections::serve(listener, router, settings, trusted_proxies, async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    });
    tokio::spawn(async move {
        if let Err(error) = serve.await {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    })
}

const JWT_SECRET_FILE: &str = "jwt-secret";

/// What checking one backend found (`provider-desk check-config`).
#[derive(Debug)]
pub struct BackendCheck {
    /// `store`, `secret` or `tokens`.
    pub what: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl BackendCheck {
    fn ok(what: &'static str, detail: String) -> BackendCheck {
        BackendCheck { what, ok: true, detail }
    }

    fn failed(what: &'static str, detail: String) -> BackendCheck {
        BackendCheck { what, ok: false, detail }
    }
}

/// What Redis keys and channels are named after (`pd:{store}:...`), so deployments sharing one
/// Redis stay apart: the MongoDB database, or the SQLite data directory.
fn store_name(config: &Config) -> String {
    match &config.mongodb_uri {
        Some(_) => config.mongo.database.clone(),
        None => std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone()).display().to_string(),
    }
}

/// Checks what the server would need at start-up, changing nothing that the server would not
/// (MongoDB: the same connection checks as `serve`, and its idempotent index creation; SQLite:
/// the file is opened read-only, or the data directory is checked to be writable).
pub async fn check_backends(config: &Config) -> Vec<BackendCheck> {
    let mut checks = Vec::new();
    match &config.mongodb_uri {
        Some(uri) => {
            checks.push(match MongoStore::connect(uri, &config.mongo).await {
                Ok(store) => match store.count_providers().await {
                    Ok(count) => BackendCheck::ok(
                        "store",
                        format!("MongoDB database {} answers ({count} providers)", config.mongo.database),
                    ),
                    Err(error) => BackendCheck::failed("store", format!("MongoDB: {}", error_detail(error))),
                },
                Err(error) => BackendCheck::failed("store", format!("MongoDB: {}", error_detail(error))),
            });
            checks.push(match &config.jwt_secret {
                Some(_) => BackendCheck::ok("secret", "JWT_SECRET is set".to_owned()),
                None => BackendCheck::failed("secret", "JWT_SECRET must be set with MONGODB_URI".to_owned()),
            });
        }
        None => {
            checks.push(check_sqlite(&config.data_dir));
            checks.push(match &config.jwt_secret {
                Some(_) => BackendCheck::ok("secret", "JWT_SECRET is set".to_owned()),
                None => check_kept_secret(&config.data_dir),
            });
        }
    }
    checks.push(match &config.redis_url {
        Some(url) => match RedisTokenStore::connect(url, &store_name(config), config.redis_timeout).await {
            Ok(_) => BackendCheck::ok("tokens", "Redis answers".to_owned()),
            Err(error) => BackendCheck::failed("tokens", format!("Redis: {}", error_detail(error))),
        },
        None => BackendCheck::ok("tokens", "kept in the main store".to_owned()),
    });
    checks
}

fn error_detail(error: AppError) -> String {
    error.operator_detail().into_owned()
}

fn check_sqlite(data_dir: &Path) -> BackendCheck {
    let path = SqliteStore::database_path(data_dir);
    if path.exists() {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let count = rusqlite::Connection::open_with_flags(&path, flags)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM providers", [], |row| row.get::<_, i64>(0)));
        let writable = std::fs::OpenOptions::new().append(true).open(&path);
        return match (count, writable) {
            (Ok(count), Ok(_)) => {
                BackendCheck::ok("store", format!("SQLite file {} ({count} providers)", path.display()))
            }
            (Err(error), _) => BackendCheck::failed("store", format!("SQLite file {}: {error}", path.display())),
            (_, Err(error)) => {
                BackendCheck::failed("store", format!("SQLite file {} is not writable: {error}", path.display()))
            }
        };
    }
    // No database yet: the nearest existing directory must let the server create it.
    let existing = data_dir.ancestors().find(|dir| dir.is_dir()).unwrap_or(Path::new("."));
    let probe = existing.join(format!(".provider-desk-check-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            BackendCheck::ok("store", format!("SQLite file {} will be created at the first start", path.display()))
        }
        Err(error) => BackendCheck::failed(
            "store",
            format!("cannot create {}: {} is not writable ({error})", path.display(), existing.display()),
        ),
    }
}

fn check_kept_secret(data_dir: &Path) -> BackendCheck {
    let path = data_dir.join(JWT_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= MIN_JWT_SECRET_BYTES => {
            BackendCheck::ok("secret", format!("JWT secret kept in {}", path.display()))
        }
        Ok(_) => BackendCheck::failed("secret", format!("{} is shorter than 32 bytes", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => BackendCheck::ok(
            "secret",
            format!("a JWT secret will be generated into {} at the first start", path.display()),
        ),
        Err(error) => BackendCheck::failed("secret", format!("{}: {error}", path.display())),
    }
}

/// The secret kept in the data directory, created on first use so tokens survive restarts.
fn kept_jwt_secret(data_dir: &Path) -> Result<String, StartupError> {
    let path = data_dir.join(JWT_SECRET_FILE);
    let io_error = |source: std::io::Error| StartupError::SecretFile { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= MIN_JWT_SECRET_BYTES => return Ok(secret.trim().to_owned()),
        Ok(_) => return Err(StartupError::SecretTooShort(path)),
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
