//! Configuration: one typed struct read from the environment (and `.env`, if present).
//!
//! Names and defaults follow the project conventions (`BIND`, `PORT`, `DATA_DIR`, `JWT_SECRET`,
//! `SEED_DEMO`, ...). A bad value stops start-up with a message that names the variable.

use crate::telemetry::LogFormat;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    /// `None`: use (or create) the secret kept in `DATA_DIR`.
    pub jwt_secret: Option<String>,
    pub seed_demo: bool,
    pub bcrypt_cost: u32,
    /// `Some`: the data lives in MongoDB (see [`MongoSettings`]) instead of the SQLite file.
    pub mongodb_uri: Option<String>,
    pub mongo: MongoSettings,
    /// `Some`: tokens (revocations, refresh-token families) live in Redis.
    pub redis_url: Option<String>,
    /// How long a Redis command or connection attempt may take before it counts as unreachable.
    pub redis_timeout: Duration,
    /// `LOG_FORMAT`: `text` (the default) or `json`.
    pub log_format: LogFormat,
    /// `SHUTDOWN_TIMEOUT_SECS`: after SIGTERM, how long requests in flight may take to finish before
    /// the process exits anyway.
    pub shutdown_timeout: Duration,
    /// The integration layer: webhooks in and out, the outbox, WeChat, scheduled jobs.
    pub integrations: IntegrationSettings,
    /// Rate limits, IP blocking, GraphQL limits and request hygiene (see [`SecuritySettings`]).
    pub security: SecuritySettings,
}

/// A rate: `per_minute` requests on average, up to `burst` at once (GCRA). `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

/// An IP network: one address, or a CIDR block such as `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub address: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<IpNet> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.address), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:1.2.3.4`) is that IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What protects the server from abuse. Every value has a default that a normal client (and the
/// test suite, many requests from 127.0.0.1) never meets; the README's "Security" section lists
/// them all.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// `RATE_LIMIT_IP_PER_MINUTE` / `RATE_LIMIT_IP_BURST`: every request of one client IP.
    pub ip_rate: Option<Rate>,
    /// `RATE_LIMIT_WEBHOOK_PER_MINUTE` / `RATE_LIMIT_WEBHOOK_BURST`: every request of one client IP
    /// to the inbound webhooks (`/integrations/...`), instead of `ip_rate`: a partner system sends
    /// everything from one address.
    pub webhook_ip_rate: Option<Rate>,
    /// `RATE_LIMIT_PROVIDER_PER_MINUTE` / `RATE_LIMIT_PROVIDER_BURST`: every request signed in as
    /// one provider, from wherever.
    pub provider_rate: Option<Rate>,
    /// `LOGIN_FAILURE_WINDOW_SECONDS`: how long a failed sign-in counts.
    pub login_failure_window: Duration,
    /// `LOGIN_SLOW_AFTER_FAILURES`: from this many failures of one username, each further attempt
    /// waits `LOGIN_FAILURE_DELAY_MS` longer (at most 5 s).
    pub login_slow_after: u32,
    pub login_failure_delay: Duration,
    /// `LOGIN_MAX_FAILURES_PER_USERNAME`: from this many, sign-ins of the username are refused
    /// (429) until the window has passed.
    pub login_max_failures_per_username: u32,
    /// `LOGIN_MAX_FAILURES_PER_IP`: the same for every username tried from one IP.
    pub login_max_failures_per_ip: u32,
    /// `TRUSTED_PROXIES`: the proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// `IP_DENY_LIST`: clients refused outright (403).
    pub deny_list: Vec<IpNet>,
    /// `AUTO_BAN_AFTER_REFUSALS`: a client refused this many times within `AUTO_BAN_WINDOW_SECONDS`
    /// is banned for `AUTO_BAN_SECONDS`. 0 turns bans off.
    pub auto_ban_after: u32,
    /// `AUTO_BAN_AFTER_BAD_REQUESTS`: a client that sends this many malformed requests (see
    /// [`crate::limits::BadRequest`]) within `AUTO_BAN_WINDOW_SECONDS` is banned the same way.
    /// 0 turns it off.
    pub auto_ban_after_bad_requests: u32,
    pub auto_ban_window: Duration,
    pub auto_ban_duration: Duration,
    /// `GRAPHQL_MAX_DEPTH`, `GRAPHQL_MAX_COMPLEXITY`, `GRAPHQL_MAX_ALIASES`,
    /// `GRAPHQL_MAX_ROOT_FIELDS`, `GRAPHQL_MAX_BATCH`, `GRAPHQL_MAX_DIRECTIVES`.
    pub graphql_max_depth: usize,
    pub graphql_max_complexity: usize,
    pub graphql_max_aliases: usize,
    pub graphql_max_root_fields: usize,
    pub graphql_max_batch: usize,
    pub graphql_max_directives: usize,
    /// `GRAPHQL_INTROSPECTION`: introspection and "did you mean" suggestions (off in production).
    pub graphql_introspection: bool,
    /// `WS_MAX_SUBSCRIPTIONS`: subscriptions one WebSocket connection may run at once.
    pub ws_max_subscriptions: usize,
    /// `WS_PING_SECONDS`: how often the server pings an open WebSocket connection (so mobile
    /// networks and proxies keep it open) and checks that its session is still signed in (so a
    /// session ended elsewhere, say by `provider-desk reset-password`, loses its connections too).
    pub ws_ping_interval: Duration,
    /// `CORS_ALLOWED_ORIGINS`: origins a browser may call the API from (none by default; `*` is
    /// refused, since requests carry credentials).
    pub cors_allowed_origins: Vec<String>,
    /// `REQUEST_TIMEOUT_MS`: the most one HTTP request may take (not WebSocket connections).
    pub request_timeout: Duration,
    /// `JSON_MAX_DEPTH`: how deeply a request body's JSON may nest.
    pub json_max_depth: usize,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            ip_rate: Some(Rate { per_minute: 1200, burst: 600 }),
            webhook_ip_rate: Some(Rate { per_minute: 12_000, burst: 2_000 }),
            provider_rate: Some(Rate { per_minute: 1200, burst: 600 }),
            login_failure_window: Duration::from_secs(15 * 60),
            login_slow_after: 3,
            login_failure_delay: Duration::from_millis(500),
            login_max_failures_per_username: 10,
            login_max_failures_per_ip: 50,
            trusted_proxies: Vec::new(),
            deny_list: Vec::new(),
            auto_ban_after: 100,
            auto_ban_after_bad_requests: 50,
            auto_ban_window: Duration::from_secs(10 * 60),
            auto_ban_duration: Duration::from_secs(15 * 60),
            graphql_max_depth: 16,
            graphql_max_complexity: 2000,
            graphql_max_aliases: 30,
            graphql_max_root_fields: 20,
            graphql_max_batch: 10,
            graphql_max_directives: 10,
            graphql_introspection: true,
            ws_max_subscriptions: 20,
            ws_ping_interval: Duration::from_secs(20),
            cors_allowed_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
            json_max_depth: 32,
        }
    }
}

/// The integration layer's settings. Every integration is off until its variables are set.
#[derive(Debug, Clone)]
pub struct IntegrationSettings {
    /// `CS_WEBHOOK_SECRET`: the secret shared with the PC customer-service system. Turns on
    /// `POST /integrations/cs/messages` and signs the outbound webhooks.
    pub cs_secret: Option<String>,
    /// `CS_WEBHOOK_URL`: where the PC customer-service system takes events (needs the secret).
    pub cs_webhook_url: Option<String>,
    /// `SAAS_WEBHOOK_SECRET`: the secret shared with the SaaS system. Turns on
    /// `POST /integrations/saas/customers`.
    pub saas_secret: Option<String>,
    /// `WEBHOOK_TOLERANCE_SECONDS`: how far a signed request's timestamp may be from now.
    pub signature_tolerance: Duration,
    /// `WEBHOOK_TIMEOUT_MS`: how long one outbound delivery may take.
    pub webhook_timeout: Duration,
    pub outbox: OutboxSettings,
    /// `WECHAT_*`: subscribe messages to the mini-program user.
    pub wechat: Option<WechatSettings>,
    /// `JOB_INTERVAL_SECONDS`: how often the scheduled jobs run; `None` (0) runs them only on
    /// demand (`provider-desk run-jobs`).
    pub job_interval: Option<Duration>,
}

/// How the dispatcher delivers the outbox.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// `OUTBOX_MAX_ATTEMPTS`: attempts before a delivery becomes a dead letter.
    pub max_attempts: u32,
    /// `OUTBOX_BASE_DELAY_MS`: the wait after the first failure, doubled after each further one.
    pub base_delay: Duration,
    /// `OUTBOX_MAX_DELAY_MS`: the longest wait between attempts.
    pub max_delay: Duration,
    /// `OUTBOX_POLL_INTERVAL_MS`: how often the dispatcher looks for due deliveries when nothing
    /// wakes it (a write in this process wakes it at once).
    pub poll_interval: Duration,
    /// `OUTBOX_LEASE_SECONDS`: how long a claimed delivery stays with its process; another process
    /// takes it over after that (the first one died).
    pub lease: Duration,
    /// `OUTBOX_RETENTION_DAYS`: how long delivered entries are kept (the prune job).
    pub retention: Duration,
}

/// The WeChat subscribe-message adapter.
#[derive(Debug, Clone)]
pub struct WechatSettings {
    /// `WECHAT_API_BASE`: the WeChat API, or a gateway in front of it (`http://` in this build).
    pub api_base: String,
    /// `WECHAT_APP_ID`, `WECHAT_APP_SECRET`: the mini-program's credentials.
    pub app_id: String,
    pub app_secret: String,
    /// `WECHAT_TEMPLATE_CHAT`: the template of "a customer wrote to you"; none: not sent.
    pub chat_template: Option<String>,
    /// `WECHAT_TEMPLATE_ALERT`: the template of customer alerts (expiring, expired); none: not sent.
    pub alert_template: Option<String>,
    /// `WECHAT_PAGE`: the mini-program page a message opens.
    pub page: String,
    /// `WECHAT_MINIPROGRAM_STATE`: `formal`, `trial` or `developer`.
    pub miniprogram_state: String,
}

/// The shortest webhook secret accepted.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 16;

/// How to use MongoDB. A value left `None` comes from the URI if it names one, else from the
/// adapter's default (see `store::mongo`).
#[derive(Debug, Clone)]
pub struct MongoSettings {
    /// `MONGODB_DB`, default `provider_desk`.
    pub database: String,
    /// `MONGODB_WRITE_CONCERN`: `majority` (the default) or a number of members, 1 or more.
    pub write_concern: Option<WriteConcernSetting>,
    /// `MONGODB_MAX_POOL_SIZE`: connections per server.
    pub max_pool_size: Option<u32>,
    /// `MONGODB_CONNECT_TIMEOUT_MS`.
    pub connect_timeout: Option<Duration>,
    /// `MONGODB_SERVER_SELECTION_TIMEOUT_MS`: how long an operation waits for a usable server.
    pub server_selection_timeout: Option<Duration>,
    /// `MONGODB_OPERATION_TIMEOUT_MS`: the most one store call may take, retries included.
    pub operation_timeout: Duration,
}

/// A write concern as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteConcernSetting {
    Majority,
    Nodes(u32),
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// How long requests in flight may take to finish after SIGTERM, unless `SHUTDOWN_TIMEOUT_SECS`
/// says otherwise (Docker waits 10 s before SIGKILL by default; the compose file gives 30 s).
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 20;

/// The shortest `JWT_SECRET` accepted: HS256 needs at least 256 bits of key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

impl Config {
    /// Reads the configuration from the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Config, ConfigError> {
        let _ = dotenvy::dotenv();
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let bind = match get("BIND") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(value) => value.parse().map_err(|_| ConfigError {
                variable: "BIND",
                value,
                reason: "expected an IP address such as 127.0.0.1 or 0.0.0.0",
            })?,
        };
        let port = match get("PORT") {
            None => 8080,
            Some(value) => value.parse().map_err(|_| ConfigError {
                variable: "PORT",
                value,
                reason: "expected a port number from 0 to 65535",
            })?,
        };
        let seed_demo = match get("SEED_DEMO").as_deref() {
            None | Some("true") | Some("1") | Some("yes") => true,
            Some("false") | Some("0") | Some("no") => false,
            Some(other) => {
                return Err(ConfigError {
                    variable: "SEED_DEMO",
                    value: other.to_owned(),
                    reason: "expected true or false",
                })
            }
        };
        let bcrypt_cost = match get("BCRYPT_COST") {
            None => 10,
            Some(value) => value.parse().ok().filter(|c| (4..=16).contains(c)).ok_or(ConfigError {
                variable: "BCRYPT_COST",
                value,
                reason: "expected a whole number from 4 to 16",
            })?,
        };
        let jwt_secret = get("JWT_SECRET");
        if let Some(secret) = &jwt_secret {
            if secret.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError {
                    variable: "JWT_SECRET",
                    value: "<hidden>".to_owned(),
                    reason: "must be at least 32 bytes long",
                });
            }
        }
        let millis = |variable: &'static str| -> Result<Option<Duration>, ConfigError> {
            match get(variable) {
                None => Ok(None),
                Some(value) => match value.parse::<u64>() {
                    Ok(ms) if (1..=600_000).contains(&ms) => Ok(Some(Duration::from_millis(ms))),
                    _ => Err(ConfigError { variable, value, reason: "expected milliseconds from 1 to 600000" }),
                },
            }
        };
        let write_concern =
            match get("MONGODB_WRITE_CONCERN") {
                None => None,
                Some(value) if value == "majority" => Some(WriteConcernSetting::Majority),
                Some(value) => match value.parse::<u32>() {
                    Ok(nodes) if nodes >= 1 => Some(WriteConcernSetting::Nodes(nodes)),
                    _ => return Err(ConfigError {
                        variable: "MONGODB_WRITE_CONCERN",
                        value,
                        reason:
                            "expected majority or a number of members (1 or more); unacknowledged writes are refused",
                    }),
                },
            };
        let max_pool_size = match get("MONGODB_MAX_POOL_SIZE") {
            None => None,
            Some(value) => Some(value.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or(ConfigError {
                variable: "MONGODB_MAX_POOL_SIZE",
                value,
                reason: "expected a whole number from 1 to 1000",
            })?),
        };
        let mongo = MongoSettings {
            database: match get("MONGODB_DB") {
                None => "provider_desk".to_owned(),
                Some(name) if valid_database_name(&name) => name,
                Some(value) => {
                    return Err(ConfigError {
                        variable: "MONGODB_DB",
                        value,
                        reason: "expected 1 to 63 letters, digits, _ or -",
                    })
                }
            },
            write_concern,
            max_pool_size,
            connect_timeout: millis("MONGODB_CONNECT_TIMEOUT_MS")?,
            server_selection_timeout: millis("MONGODB_SERVER_SELECTION_TIMEOUT_MS")?,
            operation_timeout: millis("MONGODB_OPERATION_TIMEOUT_MS")?.unwrap_or(Duration::from_secs(10)),
        };
        let redis_timeout = millis("REDIS_TIMEOUT_MS")?.unwrap_or(Duration::from_secs(2));
        let log_format = match get("LOG_FORMAT") {
            None => LogFormat::Text,
            Some(value) => LogFormat::parse(&value).ok_or(ConfigError {
                variable: "LOG_FORMAT",
                value,
                reason: "expected text or json",
            })?,
        };
        let shutdown_timeout =
            match get("SHUTDOWN_TIMEOUT_SECS") {
                None => Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
                Some(value) => value.parse().ok().filter(|s| (1..=3600).contains(s)).map(Duration::from_secs).ok_or(
                    ConfigError { variable: "SHUTDOWN_TIMEOUT_SECS", value, reason: "expected seconds from 1 to 3600" },
                )?,
            };
        let integrations = integration_settings(&get)?;
        let security = security_settings(&get)?;
        Ok(Config {
            bind,
            port,
            data_dir: PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".to_owned())),
            jwt_secret,
            seed_demo,
            bcrypt_cost,
            mongodb_uri: get("MONGODB_URI"),
            mongo,
            redis_url: get("REDIS_URL"),
            redis_timeout,
            log_format,
            shutdown_timeout,
            integrations,
            security,
        })
    }

    pub fn listen_address(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The effective settings by variable name, secrets hidden (for `provider-desk check-config`).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let millis = |duration: Option<Duration>, default: &str| {
            duration.map_or_else(|| format!("{default} (default)"), |d| d.as_millis().to_string())
        };
        let mut settings = vec![
            ("BIND", self.bind.to_string()),
            ("PORT", self.port.to_string()),
            ("DATA_DIR", self.data_dir.display().to_string()),
            (
                "JWT_SECRET",
                match &self.jwt_secret {
                    Some(secret) => format!("<hidden: {} bytes>", secret.len()),
                    None => "not set: kept in DATA_DIR/jwt-secret".to_owned(),
                },
            ),
            ("SEED_DEMO", self.seed_demo.to_string()),
            ("BCRYPT_COST", self.bcrypt_cost.to_string()),
            ("LOG_FORMAT", self.log_format.as_str().to_owned()),
            ("SHUTDOWN_TIMEOUT_SECS", self.shutdown_timeout.as_secs().to_string()),
            (
                "MONGODB_URI",
                self.mongodb_uri.as_deref().map_or_else(|| "not set: SQLite in DATA_DIR".to_owned(), redact_url),
            ),
        ];
        if self.mongodb_uri.is_some() {
            let mongo = &self.mongo;
            settings.extend([
                ("MONGODB_DB", mongo.database.clone()),
                (
                    "MONGODB_WRITE_CONCERN",
                    match mongo.write_concern {
                        None => "majority (default, unless the URI says otherwise)".to_owned(),
                        Some(WriteConcernSetting::Majority) => "majority".to_owned(),
                        Some(WriteConcernSetting::Nodes(n)) => n.to_string(),
                    },
                ),
                (
                    "MONGODB_MAX_POOL_SIZE",
                    mongo.max_pool_size.map_or_else(|| "20 (default)".to_owned(), |n| n.to_string()),
                ),
                ("MONGODB_CONNECT_TIMEOUT_MS", millis(mongo.connect_timeout, "5000")),
                ("MONGODB_SERVER_SELECTION_TIMEOUT_MS", millis(mongo.server_selection_timeout, "5000")),
                ("MONGODB_OPERATION_TIMEOUT_MS", mongo.operation_timeout.as_millis().to_string()),
            ]);
        }
        settings.push((
            "REDIS_URL",
            self.redis_url.as_deref().map_or_else(|| "not set: tokens in the main store".to_owned(), redact_url),
        ));
        if self.redis_url.is_some() {
            settings.push(("REDIS_TIMEOUT_MS", self.redis_timeout.as_millis().to_string()));
        }
        settings
    }
}

/// A connection URL with its secrets hidden: the password of `user:password@`, and the value of
/// every query option whose name mentions a password, secret, token or credential.
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (url, None),
    };
    let mut out = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            // The user information ends at the last `@` before the path.
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((user_info, hosts)) => {
                    let user = match user_info.split_once(':') {
                        Some((user, _password)) => format!("{user}:<hidden>"),
                        None => user_info.to_owned(),
                    };
                    format!("{scheme}://{user}@{hosts}{path}")
                }
                None => before_query.to_owned(),
            }
        }
        None => before_query.to_owned(),
    };
    if let Some(query) = query {
        let options: Vec<String> = query
            .split('&')
            .map(|option| match option.split_once('=') {
                Some((name, _)) if secret_option(name) => format!("{name}=<hidden>"),
                _ => option.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&options.join("&"));
    }
    out
}

fn secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "credential", "authmechanismproperties"].iter().any(|word| name.contains(word))
}

/// Reads the integration layer's variables through `get` (trimmed, empty meaning unset).
fn integration_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<IntegrationSettings, ConfigError> {
    let number =
        |variable: &'static str, default: u64, range: std::ops::RangeInclusive<u64>, reason: &'static str| match get(
            variable,
        ) {
            None => Ok(default),
            Some(value) => match value.parse::<u64>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(ConfigError { variable, value, reason }),
            },
        };
    let secret = |variable: &'static str| -> Result<Option<String>, ConfigError> {
        match get(variable) {
            Some(secret) if secret.len() < MIN_WEBHOOK_SECRET_BYTES => {
                Err(ConfigError { variable, value: "<hidden>".to_owned(), reason: "must be at least 16 bytes long" })
            }
            other => Ok(other),
        }
    };
    let url = |variable: &'static str| -> Result<Option<String>, ConfigError> {
        match get(variable) {
            None => Ok(None),
            Some(value) if value.starts_with("https://") => Err(ConfigError {
                variable,
                value,
                reason: "https:// needs TLS, which this build's HTTP client leaves out; send through a local \
                         TLS-terminating proxy (http://127.0.0.1:...) instead",
            }),
            Some(value) if value.starts_with("http://") && reqwest::Url::parse(&value).is_ok() => Ok(Some(value)),
            Some(value) => Err(ConfigError { variable, value, reason: "expected an http:// URL" }),
        }
    };
    let cs_secret = secret("CS_WEBHOOK_SECRET")?;
    let cs_webhook_url = url("CS_WEBHOOK_URL")?;
    if let (Some(value), None) = (&cs_webhook_url, &cs_secret) {
        return Err(ConfigError {
            variable: "CS_WEBHOOK_URL",
            value: value.clone(),
            reason: "needs CS_WEBHOOK_SECRET: outbound webhooks are always signed",
        });
    }
    let webhook_timeout = Duration::from_millis(number(
        "WEBHOOK_TIMEOUT_MS",
        10_000,
        100..=600_000,
        "expected milliseconds from 100 to 600000",
    )?);
    let lease =
        Duration::from_secs(number("OUTBOX_LEASE_SECONDS", 60, 1..=86_400, "expected seconds from 1 to 86400")?);
    if lease <= webhook_timeout {
        return Err(ConfigError {
            variable: "OUTBOX_LEASE_SECONDS",
            value: lease.as_secs().to_string(),
            reason: "must be longer than WEBHOOK_TIMEOUT_MS, or a slow delivery would be taken over while it runs",
        });
    }
    let base_delay = Duration::from_millis(number(
        "OUTBOX_BASE_DELAY_MS",
        1_000,
        1..=3_600_000,
        "expected milliseconds from 1 to 3600000",
    )?);
    let max_delay = Duration::from_millis(number(
        "OUTBOX_MAX_DELAY_MS",
        600_000,
        1..=86_400_000,
        "expected milliseconds from 1 to 86400000",
    )?);
    let outbox = OutboxSettings {
        max_attempts: number("OUTBOX_MAX_ATTEMPTS", 20, 1..=1_000, "expected a whole number from 1 to 1000")? as u32,
        base_delay,
        max_delay: max_delay.max(base_delay),
        poll_interval: Duration::from_millis(number(
            "OUTBOX_POLL_INTERVAL_MS",
            1_000,
            10..=600_000,
            "expected milliseconds from 10 to 600000",
        )?),
        lease,
        retention: Duration::from_secs(
            86_400 * number("OUTBOX_RETENTION_DAYS", 7, 1..=3_650, "expected days from 1 to 3650")?,
        ),
    };
    let wechat = match (get("WECHAT_API_BASE"), get("WECHAT_APP_ID"), get("WECHAT_APP_SECRET")) {
        (None, None, None) => None,
        (base, app_id, app_secret) => {
            let missing = |variable: &'static str| ConfigError {
                variable,
                value: String::new(),
                reason: "WECHAT_API_BASE, WECHAT_APP_ID and WECHAT_APP_SECRET are needed together",
            };
            base.as_ref().ok_or_else(|| missing("WECHAT_API_BASE"))?;
            let api_base = url("WECHAT_API_BASE")?.unwrap_or_default().trim_end_matches('/').to_owned();
            let state = get("WECHAT_MINIPROGRAM_STATE").unwrap_or_else(|| "formal".to_owned());
            if !matches!(state.as_str(), "formal" | "trial" | "developer") {
                return Err(ConfigError {
                    variable: "WECHAT_MINIPROGRAM_STATE",
                    value: state,
                    reason: "expected formal, trial or developer",
                });
            }
            Some(WechatSettings {
                api_base,
                app_id: app_id.ok_or_else(|| missing("WECHAT_APP_ID"))?,
                app_secret: app_secret.ok_or_else(|| missing("WECHAT_APP_SECRET"))?,
                chat_template: get("WECHAT_TEMPLATE_CHAT"),
                alert_template: get("WECHAT_TEMPLATE_ALERT"),
                page: get("WECHAT_PAGE").unwrap_or_else(|| "pages/index/index".to_owned()),
                miniprogram_state: state,
            })
        }
    };
    let job_interval = match number("JOB_INTERVAL_SECONDS", 3_600, 0..=604_800, "expected seconds from 0 to 604800")? {
        0 => None,
        seconds => Some(Duration::from_secs(seconds)),
    };
    Ok(IntegrationSettings {
        cs_secret,
        cs_webhook_url,
        saas_secret: secret("SAAS_WEBHOOK_SECRET")?,
        signature_tolerance: Duration::from_secs(number(
            "WEBHOOK_TOLERANCE_SECONDS",
            300,
            1..=86_400,
            "expected seconds from 1 to 86400",
        )?),
        webhook_timeout,
        outbox,
        wechat,
        job_interval,
    })
}

fn security_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<SecuritySettings, ConfigError> {
    let defaults = SecuritySettings::default();
    let number = |variable: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| match get(variable) {
        None => Ok(default),
        Some(value) => match value.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError {
                variable,
                value,
                reason: "expected a whole number in the allowed range (see the README)",
            }),
        },
    };
    let rate =
        |per_minute: &'static str, burst: &'static str, default: Option<Rate>| -> Result<Option<Rate>, ConfigError> {
            let default = default.unwrap_or(Rate { per_minute: 0, burst: 0 });
            let per_minute = number(per_minute, u64::from(default.per_minute), 0..=1_000_000)? as u32;
            let burst = number(burst, u64::from(default.burst), 1..=1_000_000)? as u32;
            Ok((per_minute > 0).then_some(Rate { per_minute, burst }))
        };
    let networks = |variable: &'static str| -> Result<Vec<IpNet>, ConfigError> {
        get(variable).map_or(Ok(Vec::new()), |value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| {
                    IpNet::parse(item).ok_or(ConfigError {
                        variable,
                        value: value.clone(),
                        reason:
                            "expected IP addresses or CIDR blocks separated by commas, e.g. 10.0.0.1,192.168.0.0/16",
                    })
                })
                .collect()
        })
    };
    let seconds = |variable: &'static str, default: Duration| -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(number(variable, default.as_secs(), 1..=7 * 24 * 3600)?))
    };
    let introspection = match get("GRAPHQL_INTROSPECTION").as_deref() {
        None | Some("true") | Some("1") | Some("yes") => true,
        Some("false") | Some("0") | Some("no") => false,
        Some(other) => {
            return Err(ConfigError {
                variable: "GRAPHQL_INTROSPECTION",
                value: other.to_owned(),
                reason: "expected true or false",
            })
        }
    };
    let origins: Vec<String> = get("CORS_ALLOWED_ORIGINS")
        .map(|value| {
            value.split(',').map(|o| o.trim().trim_end_matches('/').to_owned()).filter(|o| !o.is_empty()).collect()
        })
        .unwrap_or_default();
    for origin in &origins {
        let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
            && axum::http::HeaderValue::from_str(origin).is_ok()
            && !origin[origin.find("//").map_or(0, |i| i + 2)..].contains('/');
        if !valid {
            return Err(ConfigError {
                variable: "CORS_ALLOWED_ORIGINS",
                value: origin.clone(),
                reason: "expected origins such as https://app.example.com separated by commas (no paths, no *)",
            });
        }
    }
    Ok(SecuritySettings {
        ip_rate: rate("RATE_LIMIT_IP_PER_MINUTE", "RATE_LIMIT_IP_BURST", defaults.ip_rate)?,
        webhook_ip_rate: rate("RATE_LIMIT_WEBHOOK_PER_MINUTE", "RATE_LIMIT_WEBHOOK_BURST", defaults.webhook_ip_rate)?,
        provider_rate: rate("RATE_LIMIT_PROVIDER_PER_MINUTE", "RATE_LIMIT_PROVIDER_BURST", defaults.provider_rate)?,
        login_failure_window: seconds("LOGIN_FAILURE_WINDOW_SECONDS", defaults.login_failure_window)?,
        login_slow_after: number("LOGIN_SLOW_AFTER_FAILURES", u64::from(defaults.login_slow_after), 0..=1000)? as u32,
        login_failure_delay: Duration::from_millis(number(
            "LOGIN_FAILURE_DELAY_MS",
            defaults.login_failure_delay.as_millis() as u64,
            0..=5000,
        )?),
        login_max_failures_per_username: number(
            "LOGIN_MAX_FAILURES_PER_USERNAME",
            u64::from(defaults.login_max_failures_per_username),
            0..=100_000,
        )? as u32,
        login_max_failures_per_ip: number(
            "LOGIN_MAX_FAILURES_PER_IP",
            u64::from(defaults.login_max_failures_per_ip),
            0..=1_000_000,
        )? as u32,
        trusted_proxies: networks("TRUSTED_PROXIES")?,
        deny_list: networks("IP_DENY_LIST")?,
        auto_ban_after: number("AUTO_BAN_AFTER_REFUSALS", u64::from(defaults.auto_ban_after), 0..=1_000_000)? as u32,
        auto_ban_after_bad_requests: number(
            "AUTO_BAN_AFTER_BAD_REQUESTS",
            u64::from(defaults.auto_ban_after_bad_requests),
            0..=1_000_000,
        )? as u32,
        auto_ban_window: seconds("AUTO_BAN_WINDOW_SECONDS", defaults.auto_ban_window)?,
        auto_ban_duration: seconds("AUTO_BAN_SECONDS", defaults.auto_ban_duration)?,
        graphql_max_depth: number("GRAPHQL_MAX_DEPTH", defaults.graphql_max_depth as u64, 2..=100)? as usize,
        graphql_max_complexity: number(
            "GRAPHQL_MAX_COMPLEXITY",
            defaults.graphql_max_complexity as u64,
            10..=1_000_000,
        )? as usize,
        graphql_max_aliases: number("GRAPHQL_MAX_ALIASES", defaults.graphql_max_aliases as u64, 0..=10_000)? as usize,
        graphql_max_root_fields: number("GRAPHQL_MAX_ROOT_FIELDS", defaults.graphql_max_root_fields as u64, 1..=10_000)?
            as usize,
        graphql_max_batch: number("GRAPHQL_MAX_BATCH", defaults.graphql_max_batch as u64, 1..=1000)? as usize,
        graphql_max_directives: number("GRAPHQL_MAX_DIRECTIVES", defaults.graphql_max_directives as u64, 1..=1000)?
            as usize,
        graphql_introspection: introspection,
        ws_max_subscriptions: number("WS_MAX_SUBSCRIPTIONS", defaults.ws_max_subscriptions as u64, 1..=10_000)?
            as usize,
        ws_ping_interval: Duration::from_secs(number("WS_PING_SECONDS", defaults.ws_ping_interval.as_secs(), 1..=300)?),
        cors_allowed_origins: origins,
        request_timeout: Duration::from_millis(number(
            "REQUEST_TIMEOUT_MS",
            defaults.request_timeout.as_millis() as u64,
            100..=600_000,
        )?),
        json_max_depth: number("JSON_MAX_DEPTH", defaults.json_max_depth as u64, 2..=128)? as usize,
    })
}

/// A database name MongoDB accepts on every platform, kept to a safe subset.
fn valid_database_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_conventions() {
        let config = config(&[]).unwrap();
        assert_eq!(config.listen_address().to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert!(config.seed_demo);
        assert!(config.jwt_secret.is_none());
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(config(&[("PORT", "eighty")]).unwrap_err().variable, "PORT");
        assert_eq!(config(&[("BIND", "localhost:1")]).unwrap_err().variable, "BIND");
        assert_eq!(config(&[("SEED_DEMO", "maybe")]).unwrap_err().variable, "SEED_DEMO");
        assert_eq!(config(&[("JWT_SECRET", "short")]).unwrap_err().variable, "JWT_SECRET");
        assert!(!config(&[("SEED_DEMO", "false")]).unwrap().seed_demo);
        assert_eq!(config(&[("MONGODB_WRITE_CONCERN", "0")]).unwrap_err().variable, "MONGODB_WRITE_CONCERN");
        assert_eq!(config(&[("MONGODB_DB", "a.b")]).unwrap_err().variable, "MONGODB_DB");
        assert_eq!(config(&[("MONGODB_MAX_POOL_SIZE", "0")]).unwrap_err().variable, "MONGODB_MAX_POOL_SIZE");
        assert_eq!(config(&[("REDIS_TIMEOUT_MS", "soon")]).unwrap_err().variable, "REDIS_TIMEOUT_MS");
        assert_eq!(config(&[("LOG_FORMAT", "xml")]).unwrap_err().variable, "LOG_FORMAT");
        assert_eq!(config(&[("SHUTDOWN_TIMEOUT_SECS", "0")]).unwrap_err().variable, "SHUTDOWN_TIMEOUT_SECS");
        assert_eq!(config(&[("LOG_FORMAT", "JSON")]).unwrap().log_format, LogFormat::Json);
        assert_eq!(config(&[("CS_WEBHOOK_SECRET", "short")]).unwrap_err().variable, "CS_WEBHOOK_SECRET");
        assert_eq!(config(&[("CS_WEBHOOK_URL", "http://127.0.0.1:9/hook")]).unwrap_err().variable, "CS_WEBHOOK_URL");
        let https = [("CS_WEBHOOK_SECRET", "0123456789abcdef"), ("CS_WEBHOOK_URL", "https://cs.example.com/hook")];
        assert_eq!(config(&https).unwrap_err().variable, "CS_WEBHOOK_URL");
        assert_eq!(config(&[("OUTBOX_LEASE_SECONDS", "5")]).unwrap_err().variable, "OUTBOX_LEASE_SECONDS");
        assert_eq!(config(&[("WECHAT_APP_ID", "wx123")]).unwrap_err().variable, "WECHAT_API_BASE");
        assert_eq!(config(&[("JOB_INTERVAL_SECONDS", "-1")]).unwrap_err().variable, "JOB_INTERVAL_SECONDS");
        assert_eq!(config(&[("IP_DENY_LIST", "1.2.3.4,nope")]).unwrap_err().variable, "IP_DENY_LIST");
        assert_eq!(config(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err().variable, "TRUSTED_PROXIES");
        assert_eq!(config(&[("CORS_ALLOWED_ORIGINS", "*")]).unwrap_err().variable, "CORS_ALLOWED_ORIGINS");
        assert_eq!(config(&[("GRAPHQL_INTROSPECTION", "off")]).unwrap_err().variable, "GRAPHQL_INTROSPECTION");
        assert_eq!(config(&[("RATE_LIMIT_IP_BURST", "0")]).unwrap_err().variable, "RATE_LIMIT_IP_BURST");
    }

    #[test]
    fn security_settings_parse_networks_rates_and_origins() {
        let config = config(&[
            ("IP_DENY_LIST", "203.0.113.7, 10.0.0.0/8,::1"),
            ("RATE_LIMIT_IP_PER_MINUTE", "0"),
            ("CORS_ALLOWED_ORIGINS", "https://mp.example.com/, http://localhost:3000"),
        ])
        .unwrap();
        let deny = &config.security.deny_list;
        assert!(deny[0].contains("203.0.113.7".parse().unwrap()));
        assert!(deny[1].contains("10.200.3.4".parse().unwrap()));
        assert!(deny[1].contains("::ffff:10.1.1.1".parse().unwrap()), "IPv4-mapped IPv6 is the IPv4 address");
        assert!(!deny[1].contains("11.0.0.1".parse().unwrap()));
        assert!(deny[2].contains("::1".parse().unwrap()));
        assert_eq!(config.security.ip_rate, None, "0 turns the limit off");
        assert!(config.security.provider_rate.is_some());
        assert_eq!(config.security.cors_allowed_origins, ["https://mp.example.com", "http://localhost:3000"]);
    }

    #[test]
    fn integrations_are_off_until_configured() {
        let integrations = config(&[]).unwrap().integrations;
        assert!(integrations.cs_secret.is_none() && integrations.cs_webhook_url.is_none());
        assert!(integrations.saas_secret.is_none() && integrations.wechat.is_none());
        assert_eq!(integrations.signature_tolerance, Duration::from_secs(300));
        assert_eq!(integrations.job_interval, Some(Duration::from_secs(3600)));
        assert_eq!(config(&[("JOB_INTERVAL_SECONDS", "0")]).unwrap().integrations.job_interval, None);
    }

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(redact_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact_url("redis://:s3cret@cache:6379/0"), "redis://:<hidden>@cache:6379/0");
        assert_eq!(
            redact_url("mongodb://app:p%40ss@db1:27017,db2:27017/desk?replicaSet=rs0&tlsCertificateKeyFilePassword=x"),
            "mongodb://app:<hidden>@db1:27017,db2:27017/desk?replicaSet=rs0&tlsCertificateKeyFilePassword=<hidden>"
        );
        assert_eq!(redact_url("mongodb://app@db1/?authSource=admin"), "mongodb://app@db1/?authSource=admin");
        let config =
            config(&[("JWT_SECRET", "a-secret-that-is-long-enough-for-hs256!!"), ("REDIS_URL", "redis://:pw@r/0")])
                .unwrap();
        let described = format!("{:?}", config.describe());
        assert!(!described.contains("a-secret") && !described.contains(":pw@"), "{described}");
    }

    #[test]
    fn mongodb_settings_default_to_majority_writes_in_provider_desk() {
        let config = config(&[("MONGODB_URI", "mongodb://127.0.0.1:27017")]).unwrap();
        assert_eq!(config.mongo.database, "provider_desk");
        assert_eq!(config.mongo.write_concern, None, "majority, unless the URI says otherwise");
        let config = self::config(&[("MONGODB_WRITE_CONCERN", "majority"), ("MONGODB_DB", "desk_prod")]).unwrap();
        assert_eq!(config.mongo.write_concern, Some(WriteConcernSetting::Majority));
        assert_eq!(config.mongo.database, "desk_prod");
        let config = self::config(&[("MONGODB_WRITE_CONCERN", "2")]).unwrap();
        assert_eq!(config.mongo.write_concern, Some(WriteConcernSetting::Nodes(2)));
    }
}
