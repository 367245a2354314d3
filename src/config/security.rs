//! Security settings: rate limits, IP blocking and bans, sign-in throttling, the GraphQL limits,
//! CORS, the request timeout, and the JWT secret's minimum length.
//!
//! Every limit has a default that a normal client (and the test suite, many requests from
//! 127.0.0.1) never meets, so a deployment that sets nothing is still protected; the README's
//! "Security" section lists them all.

use super::reader::{ConfigError, Reader};
use super::realtime;
use std::net::IpAddr;
use std::time::Duration;

/// The shortest `JWT_SECRET` accepted: HS256 needs at least 256 bits of key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A rate: `per_minute` requests on average, up to `burst` at once (GCRA). `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

/// `GRAPHQL_INTROSPECTION`: who may introspect the schema and get "did you mean" suggestions.
///
/// Anonymous clients have no use for the schema (the playground signs in first), and giving it
/// away maps the API for whoever probes it; signed-in sessions (the playground, tooling with a
/// token) keep both by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspection {
    /// `public`: everyone, signed in or not.
    Public,
    /// `signed-in` (the default): only requests with a valid bearer token.
    SignedIn,
    /// `off`: no one.
    Off,
}

impl Introspection {
    /// `public`, `signed-in` or `off`; the old boolean spellings keep their meaning
    /// (`true`/`1`/`yes` was introspection for everyone: `public`; `false`/`0`/`no`: `off`).
    pub fn parse(value: &str) -> Option<Introspection> {
        match value.trim().to_ascii_lowercase().as_str() {
            "public" | "true" | "1" | "yes" => Some(Introspection::Public),
            "signed-in" | "signed_in" | "signedin" => Some(Introspection::SignedIn),
            "off" | "false" | "0" | "no" => Some(Introspection::Off),
            _ => None,
        }
    }

    /// Whether a caller, signed in or not, may introspect and get suggestions.
    pub fn allows(self, signed_in: bool) -> bool {
        match self {
            Introspection::Public => true,
            Introspection::SignedIn => signed_in,
            Introspection::Off => false,
        }
    }
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

/// What a client's limits, bans and connection caps are kept under: an IPv4 address itself, an
/// IPv6 address's /64 (its other 64 bits zeroed). One host, home or phone gets a whole /64 and can
/// pick any address in it, so keying by the full address would let it reset every limit at will.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// What protects the server from abuse (see the module documentation).
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
    /// `LOGIN_MAX_FAILURES_PER_USERNAME`: from this many failures of the username from one
    /// address, sign-ins of the username from that address are refused (429) until the window has
    /// passed; other addresses are not (so knowing a username does not lock its provider out).
    pub login_max_failures_per_username: u32,
    /// `LOGIN_KNOWN_ADDRESS_DAYS`: how long an address a provider signed in from stays known to
    /// it; the right password from a known address skips the username's slow-down. 0: never.
    pub login_known_address_for: Duration,
    /// `REFRESH_REUSE_GRACE_SECONDS`: how long after a refresh token was used the same client
    /// presenting it again (a lost answer retried) gets the same new pair instead of the family
    /// being revoked. 0 turns the grace off.
    pub refresh_reuse_grace: Duration,
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
    /// `limits::BadRequest`) within `AUTO_BAN_WINDOW_SECONDS` is banned the same way.
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
    /// `GRAPHQL_INTROSPECTION`: who gets introspection and "did you mean" suggestions.
    pub graphql_introspection: Introspection,
    /// `WS_MAX_SUBSCRIPTIONS`: subscriptions one WebSocket connection may run at once.
    pub ws_max_subscriptions: usize,
    /// `WS_PING_SECONDS`: how often the server pings an open WebSocket connection (so mobile
    /// networks and proxies keep it open) and checks that its session is still signed in (so a
    /// session ended elsewhere, say by `provider-desk reset-password`, loses its connections too).
    pub ws_ping_interval: Duration,
    /// `EVENT_REPLAY_MAX_EVENTS`, `EVENT_REPLAY_MAX_AGE_HOURS`: how far back a subscription may resume.
    pub replay_window: realtime::ReplayWindow,
    /// `CORS_ALLOWED_ORIGINS`: origins a browser may call the API from (none by default; `*` is
    /// refused, since requests carry credentials).
    pub cors_allowed_origins: Vec<String>,
    /// `REQUEST_TIMEOUT_MS`: the most one HTTP request, or one query or mutation over a WebSocket,
    /// may take (not a WebSocket connection or its subscriptions).
    pub request_timeout: Duration,
    /// `JSON_MAX_DEPTH`: how deeply a request body's JSON may nest.
    pub json_max_depth: usize,
    /// `MEMORY_LIMITER_MAX_KEYS`: the most entries the in-process limiter holds (no `REDIS_URL`).
    pub memory_limiter_max_keys: usize,
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
            login_known_address_for: Duration::from_secs(30 * 24 * 3600),
            refresh_reuse_grace: Duration::from_secs(30),
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
            graphql_introspection: Introspection::SignedIn,
            ws_max_subscriptions: realtime::DEFAULT_WS_MAX_SUBSCRIPTIONS,
            ws_ping_interval: realtime::DEFAULT_WS_PING_INTERVAL,
            replay_window: realtime::ReplayWindow::default(),
            cors_allowed_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
            json_max_depth: 32,
            memory_limiter_max_keys: 200_000,
        }
    }
}

/// The longest ban, ban window and sign-in failure window: a week.
const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;

impl SecuritySettings {
    pub(super) fn read(env: &Reader) -> Result<SecuritySettings, ConfigError> {
        let defaults = SecuritySettings::default();
        Ok(SecuritySettings {
            ip_rate: env.rate("RATE_LIMIT_IP_PER_MINUTE", "RATE_LIMIT_IP_BURST", defaults.ip_rate)?,
            webhook_ip_rate: env.rate(
                "RATE_LIMIT_WEBHOOK_PER_MINUTE",
                "RATE_LIMIT_WEBHOOK_BURST",
                defaults.webhook_ip_rate,
            )?,
            provider_rate: env.rate(
                "RATE_LIMIT_PROVIDER_PER_MINUTE",
                "RATE_LIMIT_PROVIDER_BURST",
                defaults.provider_rate,
            )?,
            login_failure_window: env.secs(
                "LOGIN_FAILURE_WINDOW_SECONDS",
                1..=MAX_WINDOW_SECS,
                defaults.login_failure_window,
            )?,
            login_slow_after: env.number_in("LOGIN_SLOW_AFTER_FAILURES", 0..=1000, defaults.login_slow_after)?,
            login_failure_delay: env.millis("LOGIN_FAILURE_DELAY_MS", 0..=5000, defaults.login_failure_delay)?,
            login_max_failures_per_username: env.number_in(
                "LOGIN_MAX_FAILURES_PER_USERNAME",
                0..=100_000,
                defaults.login_max_failures_per_username,
            )?,
            login_max_failures_per_ip: env.number_in(
                "LOGIN_MAX_FAILURES_PER_IP",
                0..=1_000_000,
                defaults.login_max_failures_per_ip,
            )?,
            login_known_address_for: Duration::from_secs(
                24 * 3600
                    * env.number_in(
                        "LOGIN_KNOWN_ADDRESS_DAYS",
                        0..=365,
                        defaults.login_known_address_for.as_secs() / (24 * 3600),
                    )?,
            ),
            refresh_reuse_grace: env.secs("REFRESH_REUSE_GRACE_SECONDS", 0..=300, defaults.refresh_reuse_grace)?,
            trusted_proxies: env.networks("TRUSTED_PROXIES")?,
            deny_list: env.networks("IP_DENY_LIST")?,
            auto_ban_after: env.number_in("AUTO_BAN_AFTER_REFUSALS", 0..=1_000_000, defaults.auto_ban_after)?,
            auto_ban_after_bad_requests: env.number_in(
                "AUTO_BAN_AFTER_BAD_REQUESTS",
                0..=1_000_000,
                defaults.auto_ban_after_bad_requests,
            )?,
            auto_ban_window: env.secs("AUTO_BAN_WINDOW_SECONDS", 1..=MAX_WINDOW_SECS, defaults.auto_ban_window)?,
            auto_ban_duration: env.secs("AUTO_BAN_SECONDS", 1..=MAX_WINDOW_SECS, defaults.auto_ban_duration)?,
            graphql_max_depth: env.number_in("GRAPHQL_MAX_DEPTH", 2..=100, defaults.graphql_max_depth)?,
            graphql_max_complexity: env.number_in(
                "GRAPHQL_MAX_COMPLEXITY",
                10..=1_000_000,
                defaults.graphql_max_complexity,
            )?,
            graphql_max_aliases: env.number_in("GRAPHQL_MAX_ALIASES", 0..=10_000, defaults.graphql_max_aliases)?,
            graphql_max_root_fields: env.number_in(
                "GRAPHQL_MAX_ROOT_FIELDS",
                1..=10_000,
                defaults.graphql_max_root_fields,
            )?,
            graphql_max_batch: env.number_in("GRAPHQL_MAX_BATCH", 1..=1000, defaults.graphql_max_batch)?,
            graphql_max_directives: env.number_in(
                "GRAPHQL_MAX_DIRECTIVES",
                1..=1000,
                defaults.graphql_max_directives,
            )?,
            graphql_introspection: env.parsed(
                "GRAPHQL_INTROSPECTION",
                defaults.graphql_introspection,
                "expected public, signed-in or off",
                Introspection::parse,
            )?,
            ws_max_subscriptions: realtime::ws_max_subscriptions(env)?,
            ws_ping_interval: realtime::ws_ping_interval(env)?,
            replay_window: realtime::replay_window(env)?,
            cors_allowed_origins: cors_allowed_origins(env)?,
            request_timeout: env.millis("REQUEST_TIMEOUT_MS", 100..=600_000, defaults.request_timeout)?,
            json_max_depth: env.number_in("JSON_MAX_DEPTH", 2..=128, defaults.json_max_depth)?,
            memory_limiter_max_keys: env.number_in(
                "MEMORY_LIMITER_MAX_KEYS",
                1_000..=100_000_000,
                defaults.memory_limiter_max_keys,
            )?,
        })
    }
}

/// `CORS_ALLOWED_ORIGINS`: each an `http(s)://host[:port]` that can be sent back in a header as
/// it is (no trailing slash, no path, no `*`).
fn cors_allowed_origins(env: &Reader) -> Result<Vec<String>, ConfigError> {
    let origins: Vec<String> = env
        .list("CORS_ALLOWED_ORIGINS")
        .into_iter()
        .map(|origin| origin.trim_end_matches('/').to_owned())
        .filter(|origin| !origin.is_empty())
        .collect();
    for origin in &origins {
        // What a header value may hold: the rule of `http::HeaderValue::from_str`, which the
        // CORS layer applies to these origins (no control characters).
        let header_safe = origin.bytes().all(|byte| byte == b'\t' || (byte >= b' ' && byte != 0x7f));
        let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
            && header_safe
            && !origin[origin.find("//").map_or(0, |i| i + 2)..].contains('/');
        if !valid {
            return Err(ConfigError::new(
                "CORS_ALLOWED_ORIGINS",
                origin.clone(),
                "expected origins such as https://app.example.com separated by commas (no paths, no *)",
            ));
        }
    }
    Ok(origins)
}
