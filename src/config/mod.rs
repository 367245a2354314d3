//! Configuration: one typed struct read from the environment (and `.env`, if present).
//!
//! Names and defaults follow the project conventions (`BIND`, `PORT`, `DATA_DIR`, `JWT_SECRET`,
//! `SEED_DEMO`, ...). A bad value stops start-up with a message that names the variable.
//!
//! Every variable is read through one [`Reader`] (`reader.rs`), which owns the parsing of each kind
//! of value and its error; each settings area has its own file (`store`, `security`,
//! `integrations`, `realtime`, `logging`) holding its structs, defaults and the checks between its
//! variables. This module is a leaf: it imports nothing of the rest of the crate, so every layer
//! may read its settings from here. [`Config::from_lookup`] takes the lookup as an argument, so
//! tests build a configuration from a map instead of the process environment.

mod connections;
mod exposure;
mod integrations;
mod logging;
mod reader;
mod realtime;
mod retention;
mod security;
mod sla;
mod store;
mod uploads;

pub use connections::ConnectionSettings;
pub use exposure::{
    demo_seeding, is_loopback, DemoSeeding, MetricsAccess, MetricsSettings, SeedDemo, MIN_METRICS_TOKEN_BYTES,
};
pub use integrations::{IntegrationSettings, OutboundCa, OutboxSettings, WechatSettings, MIN_WEBHOOK_SECRET_BYTES};
pub use logging::LogFormat;
pub use reader::{ConfigError, Number, Reader};
pub use realtime::ReplayWindow;
pub use retention::RetentionSettings;
pub use security::{canonical, limit_key, Introspection, IpNet, Rate, SecuritySettings, MIN_JWT_SECRET_BYTES};
pub use sla::SlaSettings;
pub use store::{redact_url, MongoSettings, WriteConcernSetting};
pub use uploads::{UploadSettings, DEFAULT_UPLOAD_MAX_BYTES};

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
    /// `SEED_DEMO` as set; [`Config::demo_seeding`] applies the rule of the bind address to it.
    pub seed_demo: SeedDemo,
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
    /// Who may read `/metrics` (`METRICS_TOKEN`, `METRICS_BIND`).
    pub metrics: MetricsSettings,
    /// Header, body and idle timeouts of a connection; connections per address.
    pub connections: ConnectionSettings,
    /// Service-level targets per ticket type and the chat wait alert (see [`SlaSettings`]).
    pub sla: SlaSettings,
    /// Uploads and attachments (`UPLOAD_MAX_BYTES`, `ATTACHMENT_URL_TTL_SECONDS`, ...).
    pub uploads: UploadSettings,
}

/// How long requests in flight may take to finish after SIGTERM, unless `SHUTDOWN_TIMEOUT_SECS`
/// says otherwise (Docker waits 10 s before SIGKILL by default; the compose file gives 30 s).
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 20;

impl Config {
    /// Reads the configuration from the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Config, ConfigError> {
        let _ = dotenvy::dotenv();
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Reader::new(&lookup);
        Ok(Config {
            bind: env.parsed(
                "BIND",
                IpAddr::from([127, 0, 0, 1]),
                "expected an IP address such as 127.0.0.1 or 0.0.0.0",
                |value| value.parse().ok(),
            )?,
            port: env.number_in("PORT", 0..=u16::MAX, 8080)?,
            data_dir: PathBuf::from(env.string("DATA_DIR", "./data")),
            jwt_secret: env.secret("JWT_SECRET", MIN_JWT_SECRET_BYTES)?,
            seed_demo: SeedDemo::read(&env)?,
            bcrypt_cost: env.number_in("BCRYPT_COST", 4..=16, 10)?,
            mongodb_uri: env.optional("MONGODB_URI"),
            mongo: MongoSettings::read(&env)?,
            redis_url: env.optional("REDIS_URL"),
            redis_timeout: store::redis_timeout(&env)?,
            log_format: LogFormat::read(&env)?,
            shutdown_timeout: env.secs(
                "SHUTDOWN_TIMEOUT_SECS",
                1..=3600,
                Duration::from_secs(DEFAULT_SHUTDOWN_TIMEOUT_SECS),
            )?,
            integrations: IntegrationSettings::read(&env)?,
            security: SecuritySettings::read(&env)?,
            metrics: MetricsSettings::read(&env)?,
            connections: ConnectionSettings::read(&env)?,
            sla: SlaSettings::read(&env)?,
            uploads: UploadSettings::read(&env)?,
        })
    }

    pub fn listen_address(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// Whether to seed the demo accounts, by the bind address and `SEED_DEMO` (see [`demo_seeding`]).
    pub fn demo_seeding(&self) -> DemoSeeding {
        demo_seeding(self.bind, self.seed_demo)
    }

    /// How the main listener answers `/metrics` (see [`MetricsSettings::access`]).
    pub fn metrics_access(&self) -> MetricsAccess {
        self.metrics.access(self.bind)
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
            ("SEED_DEMO", format!("{}: {}", self.seed_demo.as_str(), self.demo_seeding().explain())),
            ("BCRYPT_COST", self.bcrypt_cost.to_string()),
            ("LOG_FORMAT", self.log_format.as_str().to_owned()),
            ("SHUTDOWN_TIMEOUT_SECS", self.shutdown_timeout.as_secs().to_string()),
            (
                "METRICS_TOKEN",
                self.metrics
                    .token
                    .as_ref()
                    .map_or_else(|| "not set".to_owned(), |t| format!("<hidden: {} bytes>", t.len())),
            ),
            (
                "METRICS_BIND",
                self.metrics
                    .bind
                    .map_or_else(|| "not set: /metrics on the main listener".to_owned(), |a| a.to_string()),
            ),
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
        let uploads = &self.uploads;
        settings.extend([
            ("UPLOAD_MAX_BYTES", uploads.max_bytes.to_string()),
            ("ATTACHMENT_URL_TTL_SECONDS", uploads.url_ttl.as_secs().to_string()),
            ("ATTACHMENT_ORPHAN_HOURS", (uploads.orphan_after.as_secs() / 3_600).to_string()),
            (
                "PUBLIC_BASE_URL",
                uploads.public_base_url.clone().unwrap_or_else(|| "not set: relative attachment URLs".to_owned()),
            ),
        ]);
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
        assert_eq!(config.seed_demo, SeedDemo::Unset);
        assert_eq!(config.demo_seeding(), DemoSeeding::OnLoopback);
        assert_eq!(config.metrics_access(), MetricsAccess::Open);
        assert!(config.jwt_secret.is_none());
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(config(&[("PORT", "eighty")]).unwrap_err().variable, "PORT");
        assert_eq!(config(&[("BIND", "localhost:1")]).unwrap_err().variable, "BIND");
        assert_eq!(config(&[("SEED_DEMO", "maybe")]).unwrap_err().variable, "SEED_DEMO");
        assert_eq!(config(&[("JWT_SECRET", "short")]).unwrap_err().variable, "JWT_SECRET");
        assert_eq!(config(&[("SEED_DEMO", "false")]).unwrap().seed_demo, SeedDemo::False);
        assert_eq!(config(&[("SEED_DEMO", "yes")]).unwrap().seed_demo, SeedDemo::True);
        assert_eq!(config(&[("METRICS_TOKEN", "short")]).unwrap_err().variable, "METRICS_TOKEN");
        assert_eq!(config(&[("METRICS_TOKEN", "a token with spaces")]).unwrap_err().variable, "METRICS_TOKEN");
        assert_eq!(config(&[("METRICS_BIND", "127.0.0.1")]).unwrap_err().variable, "METRICS_BIND");
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
        assert_eq!(config(&https).unwrap().integrations.cs_webhook_url.as_deref(), Some("https://cs.example.com/hook"));
        assert_eq!(config(&[("OUTBOUND_CA_FILE", "/no/such/ca.pem")]).unwrap_err().variable, "OUTBOUND_CA_FILE");
        assert_eq!(config(&[("OUTBOUND_CA_FILE", "Cargo.toml")]).unwrap_err().variable, "OUTBOUND_CA_FILE");
        assert_eq!(config(&[("OUTBOX_LEASE_SECONDS", "5")]).unwrap_err().variable, "OUTBOX_LEASE_SECONDS");
        assert_eq!(config(&[("WECHAT_APP_ID", "wx123")]).unwrap_err().variable, "WECHAT_API_BASE");
        assert_eq!(config(&[("JOB_INTERVAL_SECONDS", "-1")]).unwrap_err().variable, "JOB_INTERVAL_SECONDS");
        assert_eq!(config(&[("IP_DENY_LIST", "1.2.3.4,nope")]).unwrap_err().variable, "IP_DENY_LIST");
        assert_eq!(config(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err().variable, "TRUSTED_PROXIES");
        assert_eq!(config(&[("CORS_ALLOWED_ORIGINS", "*")]).unwrap_err().variable, "CORS_ALLOWED_ORIGINS");
        assert_eq!(config(&[("GRAPHQL_INTROSPECTION", "maybe")]).unwrap_err().variable, "GRAPHQL_INTROSPECTION");
        assert_eq!(config(&[("RATE_LIMIT_IP_BURST", "0")]).unwrap_err().variable, "RATE_LIMIT_IP_BURST");
        assert_eq!(config(&[("HTTP_HEADER_TIMEOUT_MS", "0")]).unwrap_err().variable, "HTTP_HEADER_TIMEOUT_MS");
        let idle_over_header = [("HTTP_HEADER_TIMEOUT_MS", "2000"), ("HTTP_IDLE_TIMEOUT_MS", "3000")];
        assert_eq!(config(&idle_over_header).unwrap_err().variable, "HTTP_IDLE_TIMEOUT_MS");
        let short_header = config(&[("HTTP_HEADER_TIMEOUT_MS", "2000")]).unwrap().connections;
        assert_eq!(
            short_header.idle_timeout,
            Duration::from_secs(2),
            "the idle default follows a shorter header timeout"
        );
    }

    #[test]
    fn introspection_is_for_signed_in_sessions_unless_set_and_the_old_booleans_keep_their_meaning() {
        let introspection =
            |value: &str| config(&[("GRAPHQL_INTROSPECTION", value)]).unwrap().security.graphql_introspection;
        assert_eq!(config(&[]).unwrap().security.graphql_introspection, Introspection::SignedIn);
        assert_eq!(introspection("public"), Introspection::Public);
        assert_eq!(introspection("Signed-In"), Introspection::SignedIn);
        assert_eq!(introspection("off"), Introspection::Off);
        assert_eq!(introspection("true"), Introspection::Public);
        assert_eq!(introspection("false"), Introspection::Off);
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
