//! Store settings: where the data lives (the SQLite file in `DATA_DIR`, or MongoDB), where tokens
//! live (Redis, if set), and how to show their connection URLs without their secrets.
//!
//! The URIs themselves are taken as they are: the drivers parse them, and `check-config` shows
//! what they make of them. Only the settings this program adds on top are checked here.

use super::reader::{ConfigError, Reader};
use std::time::Duration;

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

/// The range of every store timeout, in milliseconds: up to ten minutes.
const TIMEOUT_MILLIS: std::ops::RangeInclusive<u64> = 1..=600_000;

impl MongoSettings {
    pub(super) fn read(env: &Reader) -> Result<MongoSettings, ConfigError> {
        Ok(MongoSettings {
            database: env.parsed(
                "MONGODB_DB",
                "provider_desk".to_owned(),
                "expected 1 to 63 letters, digits, _ or -",
                |name| valid_database_name(name).then(|| name.to_owned()),
            )?,
            write_concern: env.optional_parsed(
                "MONGODB_WRITE_CONCERN",
                "expected majority or a number of members (1 or more); unacknowledged writes are refused",
                |value| match value {
                    "majority" => Some(WriteConcernSetting::Majority),
                    nodes => nodes.parse().ok().filter(|&nodes| nodes >= 1).map(WriteConcernSetting::Nodes),
                },
            )?,
            max_pool_size: env.optional_number_in("MONGODB_MAX_POOL_SIZE", 1..=1000)?,
            connect_timeout: env.optional_millis("MONGODB_CONNECT_TIMEOUT_MS", TIMEOUT_MILLIS)?,
            server_selection_timeout: env.optional_millis("MONGODB_SERVER_SELECTION_TIMEOUT_MS", TIMEOUT_MILLIS)?,
            operation_timeout: env.millis("MONGODB_OPERATION_TIMEOUT_MS", TIMEOUT_MILLIS, Duration::from_secs(10))?,
        })
    }
}

/// `REDIS_TIMEOUT_MS`: how long a Redis command or connection attempt may take (default 2 s).
pub(super) fn redis_timeout(env: &Reader) -> Result<Duration, ConfigError> {
    env.millis("REDIS_TIMEOUT_MS", TIMEOUT_MILLIS, Duration::from_secs(2))
}

/// A database name MongoDB accepts on every platform, kept to a safe subset.
fn valid_database_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
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
