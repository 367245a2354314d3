//! Abuse protection (spec 6.3): rate limits, slowed and refused sign-ins, IP bans.
//!
//! The [`Limiter`] port counts; [`Guard`] holds the policy. Adapters: [`memory`] (one process, the
//! default) and `crate::redis::limiter` (`REDIS_URL`: every process sharing the Redis shares the counts, under
//! keys named after the store, so deployments sharing one Redis stay apart).
//!
//! - **Rate limits** are GCRA (a leaky bucket kept as one "theoretical arrival time" per key): a
//!   client may send `burst` requests at once and then one every `60 / per_minute` seconds.
//!   Per client IP on every request, and per provider on every signed-in request.
//! - **Sign-in** ([`login`]): failures are counted per (username, address), per address and per
//!   username over a window. The first two refuse (RATE_LIMITED, `Retry-After`) once over their
//!   maximum, until the window has passed; the per-username count only slows answers down, and
//!   the right password from an address the provider signed in from lately is not slowed.
//! - **Bans**: a client refused `AUTO_BAN_AFTER_REFUSALS` times within the window, or sending
//!   `AUTO_BAN_AFTER_BAD_REQUESTS` malformed requests ([`BadRequest`]) within it, is banned for
//!   `AUTO_BAN_SECONDS` (logged at warn); `IP_DENY_LIST` refuses clients outright.
//!
//! A limiter that cannot answer (Redis down) lets the request through and logs it: the limits
//! protect availability, and refusing everyone while Redis is away would defeat them. After a
//! failure the limiter is not asked again for [`LIMITER_BACKOFF`], so an outage does not add a
//! timeout to every request.

mod login;
pub mod memory;

pub use crate::context::BadRequest;

use crate::config::SecuritySettings;
use crate::domain::Id;
use crate::error::{AppError, AppResult};
use async_trait::async_trait;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The limiter as the application holds it.
pub type SharedLimiter = Arc<dyn Limiter>;

/// A GCRA rate in the units the adapters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// The time one request uses up.
    pub interval: Duration,
    /// How far ahead of now a key's allowance may be spent (`interval * (burst - 1)`).
    pub tolerance: Duration,
}

impl Gcra {
    pub fn new(rate: crate::config::Rate) -> Gcra {
        let interval = Duration::from_secs(60) / rate.per_minute.max(1);
        Gcra { interval, tolerance: interval * rate.burst.saturating_sub(1) }
    }

    /// `operations` requests taken at once, as one take the adapters already know how to do: it
    /// uses up `operations` intervals and is allowed only when the last of them would have been.
    /// `None` when more than the burst: such a batch can never pass.
    pub fn times(self, operations: u32) -> Option<Gcra> {
        let extra = self.interval * operations.saturating_sub(1);
        let tolerance = self.tolerance.checked_sub(extra)?;
        Some(Gcra { interval: self.interval * operations.max(1), tolerance })
    }
}

/// The counting port: what the policy needs from wherever the counts are kept.
#[async_trait]
pub trait Limiter: Send + Sync + 'static {
    /// Takes one request from the key's allowance: `None` if allowed, else how long until one is.
    async fn take(&self, key: &str, rate: Gcra) -> AppResult<Option<Duration>>;
    /// Counts one event in a window that starts with the key's first event: the count so far and
    /// the time left in the window.
    async fn hit(&self, key: &str, window: Duration) -> AppResult<(u64, Duration)>;
    /// The count of a window and the time it has left, without counting (`None`: no window open).
    async fn peek(&self, key: &str) -> AppResult<Option<(u64, Duration)>>;
    /// Sets a flag for a while (a ban).
    async fn set_for(&self, key: &str, duration: Duration) -> AppResult<()>;
    /// Forgets a key.
    async fn clear(&self, key: &str) -> AppResult<()>;
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client's address is on `IP_DENY_LIST`.
    Denied,
    /// Too many requests (or banned for a while): try again after this long.
    Limited { retry_after: Duration },
}

/// A refusal as the client hears it: FORBIDDEN, or RATE_LIMITED with the wait.
impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> AppError {
        match refusal {
            Refusal::Denied => AppError::Forbidden("访问被拒绝"),
            Refusal::Limited { retry_after } => AppError::rate_limited(retry_after),
        }
    }
}

/// How long the limiter is left alone after it failed to answer.
pub const LIMITER_BACKOFF: Duration = Duration::from_secs(5);

/// The policy over the limiter.
pub struct Guard {
    limiter: SharedLimiter,
    settings: SecuritySettings,
    /// Until when (milliseconds after `started`) the limiter is skipped after a failure.
    skip_until: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
}

impl Guard {
    pub fn new(limiter: SharedLimiter, settings: SecuritySettings) -> Guard {
        Guard {
            limiter,
            settings,
            skip_until: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Whether the limiter failed a moment ago (then it is not asked: fail open, fast).
    fn backing_off(&self) -> bool {
        self.elapsed_ms() < self.skip_until.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn settings(&self) -> &SecuritySettings {
        &self.settings
    }

    /// Whether the address is on the deny list.
    pub fn deny_listed(&self, ip: IpAddr) -> bool {
        self.settings.deny_list.iter().any(|net| net.contains(ip))
    }

    /// Every request of a client: deny list, ban, then the per-IP rate of its kind of traffic.
    pub async fn check_ip(&self, ip: IpAddr, traffic: Traffic) -> Result<(), Refusal> {
        if self.deny_listed(ip) {
            tracing::warn!(%ip, "refused: the address is on IP_DENY_LIST");
            count_refusal("deny_list");
            return Err(Refusal::Denied);
        }
        let ip_key = ip_key(ip);
        if let Some((_, left)) = self.ask(self.limiter.peek(&format!("ban:{ip_key}"))).await.flatten() {
            count_refusal("ban");
            return Err(Refusal::Limited { retry_after: left.max(Duration::from_secs(1)) });
        }
        let (rate, scope) = match traffic {
            Traffic::Clients => (self.settings.ip_rate, "ip"),
            Traffic::Webhooks => (self.settings.webhook_ip_rate, "webhook"),
        };
        let Some(rate) = rate else { return Ok(()) };
        match self.ask(self.limiter.take(&format!("{scope}:{ip_key}"), Gcra::new(rate))).await.flatten() {
            None => Ok(()),
            Some(retry_after) => {
                tracing::info!(%ip, scope, "rate limited: requests per client IP");
                count_refusal(scope);
                Err(self.refused(ip, retry_after).await)
            }
        }
    }

    /// Every signed-in request: the per-provider rate, one request per operation (a batch of ten
    /// costs what ten requests cost, so batching does not multiply the rate).
    pub async fn check_provider(&self, provider: &Id, ip: Option<IpAddr>, operations: u32) -> Result<(), Refusal> {
        let Some(rate) = self.settings.provider_rate else { return Ok(()) };
        let gcra = Gcra::new(rate);
        let taken = match gcra.times(operations) {
            Some(batch) => self.ask(self.limiter.take(&format!("provider:{provider}"), batch)).await.flatten(),
            None => Some(gcra.interval * operations),
        };
        match taken {
            None => Ok(()),
            Some(retry_after) => {
                tracing::info!(%provider, "rate limited: requests per provider");
                count_refusal("provider");
                Err(match ip {
                    Some(ip) => self.refused(ip, retry_after).await,
                    None => Refusal::Limited { retry_after: retry_after.max(Duration::from_secs(1)) },
                })
            }
        }
    }

    /// One signal a `interval` per key (typing indicators): whether this one may go, counted in
    /// the same limiter as the rate limits (so across processes with Redis). Not a refusal: it
    /// counts toward no ban, and a limiter that cannot answer lets the signal go.
    pub async fn throttle(&self, key: &str, interval: Duration) -> bool {
        let once = Gcra { interval, tolerance: Duration::ZERO };
        self.ask(self.limiter.take(&format!("throttle:{key}"), once)).await.flatten().is_none()
    }

    /// Counts a refusal toward a ban, and bans a client that keeps being refused.
    async fn refused(&self, ip: IpAddr, retry_after: Duration) -> Refusal {
        let retry_after = retry_after.max(Duration::from_secs(1));
        let threshold = self.settings.auto_ban_after;
        match self.strike(ip, "refusals", threshold, "the client keeps hitting limits", "refusals").await {
            (_, Some(banned_for)) => Refusal::Limited { retry_after: banned_for },
            (_, None) => Refusal::Limited { retry_after },
        }
    }

    /// A client sent a request no working client sends (see [`BadRequest`]): counted, and a
    /// client that keeps doing it is banned.
    ///
    /// Logged at info for the first of an address's window only (at warn when it bans, at debug
    /// otherwise, and always at debug when bans are off): a client sending thousands is two lines,
    /// not thousands. The metric counts every one.
    pub async fn bad_request(&self, ip: IpAddr, what: BadRequest) {
        crate::metrics::counter("bad_requests_total", &[("reason", what.label())]).inc();
        let threshold = self.settings.auto_ban_after_bad_requests;
        let why = "the client keeps sending malformed requests";
        let (count, _) = self.strike(ip, "bad-requests", threshold, why, what.label()).await;
        if count == Some(1) {
            tracing::info!(%ip, reason = what.label(), "a malformed request");
        } else {
            tracing::debug!(%ip, reason = what.label(), "a malformed request");
        }
    }

    /// Counts one strike of a kind against a client; at `threshold` strikes within the window the
    /// client is banned. Returns the strikes counted so far in the window (`None` when not
    /// counted) and the ban's length if it banned. A threshold of 0 never bans.
    async fn strike(
        &self,
        ip: IpAddr,
        kind: &str,
        threshold: u32,
        why: &str,
        reason: &str,
    ) -> (Option<u64>, Option<Duration>) {
        if threshold == 0 {
            return (None, None);
        }
        let settings = &self.settings;
        let ip_key = ip_key(ip);
        let key = format!("{kind}:{ip_key}");
        let Some((count, _)) = self.ask(self.limiter.hit(&key, settings.auto_ban_window)).await else {
            return (None, None);
        };
        if count < u64::from(threshold) {
            return (Some(count), None);
        }
        let duration = settings.auto_ban_duration;
        tracing::warn!(%ip, strikes = count, seconds = duration.as_secs(), reason, "banned: {why}");
        crate::metrics::counter("ip_bans_total", &[]).inc();
        self.ask(self.limiter.set_for(&format!("ban:{ip_key}"), duration)).await;
        self.ask(self.limiter.clear(&key)).await;
        (Some(count), Some(duration))
    }

    /// A limiter answer, or `None` when the limiter cannot answer (logged, and then left alone for
    /// [`LIMITER_BACKOFF`]): fail open.
    async fn ask<T>(&self, call: impl std::future::Future<Output = AppResult<T>>) -> Option<T> {
        if self.backing_off() {
            return None;
        }
        match call.await {
            Ok(value) => Some(value),
            Err(error) => {
                let until = self.elapsed_ms() + LIMITER_BACKOFF.as_millis() as u64;
                self.skip_until.store(until, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(%error, "the rate limiter cannot answer; letting requests through for a while");
                None
            }
        }
    }
}

/// Whose requests a per-IP rate is counting: the API's clients, or the partner systems calling
/// the inbound webhooks (each sends everything from one address, so they have their own rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    Clients,
    Webhooks,
}

/// Counts a refused request in `rate_limit_refusals_total` under `scope`: `ip`, `webhook`,
/// `provider`, `login`, `subscriptions` (per WebSocket connection), `ban` (a banned client) or `deny_list`.
pub fn count_refusal(scope: &'static str) {
    crate::metrics::counter("rate_limit_refusals_total", &[("scope", scope)]).inc();
}

/// The key of a client's counts and bans: its IPv4 address, or its IPv6 /64 (see
/// [`crate::config::limit_key`]).
fn ip_key(ip: IpAddr) -> String {
    match crate::config::limit_key(ip) {
        IpAddr::V6(network) => format!("{network}/64"),
        v4 => v4.to_string(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::Rate;

    pub(super) fn guard(settings: SecuritySettings) -> Guard {
        Guard::new(Arc::new(memory::MemoryLimiter::new()), settings)
    }

    #[tokio::test]
    async fn a_burst_is_allowed_and_the_next_request_waits_one_interval() {
        let settings = SecuritySettings {
            ip_rate: Some(Rate { per_minute: 60, burst: 3 }),
            auto_ban_after: 0,
            ..SecuritySettings::default()
        };
        let guard = guard(settings);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(guard.check_ip(ip, Traffic::Clients).await, Ok(()));
        }
        match guard.check_ip(ip, Traffic::Clients).await {
            Err(Refusal::Limited { retry_after }) => assert!(retry_after <= Duration::from_secs(1)),
            other => panic!("refused, not {other:?}"),
        }
        assert_eq!(
            guard.check_ip("198.51.100.2".parse().unwrap(), Traffic::Clients).await,
            Ok(()),
            "another client is not"
        );
    }

    #[tokio::test]
    async fn a_batch_takes_one_request_per_operation_and_one_over_the_burst_never_passes() {
        let settings = SecuritySettings {
            provider_rate: Some(Rate { per_minute: 1, burst: 5 }),
            auto_ban_after: 0,
            ..SecuritySettings::default()
        };
        let guard = guard(settings);
        let provider = Id::parse("sp001").unwrap();
        assert_eq!(guard.check_provider(&provider, None, 3).await, Ok(()));
        assert!(guard.check_provider(&provider, None, 3).await.is_err(), "3 + 3 is over 5");
        assert_eq!(guard.check_provider(&provider, None, 2).await, Ok(()), "3 + 2 is not");
        assert!(
            guard.check_provider(&Id::parse("sp002").unwrap(), None, 6).await.is_err(),
            "6 is over 5 whatever was used"
        );
    }

    #[tokio::test]
    async fn a_throttle_lets_one_signal_a_key_through_per_interval_and_never_bans() {
        let settings = SecuritySettings { auto_ban_after: 1, ..SecuritySettings::default() };
        let guard = guard(settings);
        let hour = Duration::from_secs(3600);
        assert!(guard.throttle("typing:c001", hour).await);
        for _ in 0..5 {
            assert!(!guard.throttle("typing:c001", hour).await, "within the interval");
        }
        assert!(guard.throttle("typing:c002", hour).await, "another key is not");
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(guard.check_ip(ip, Traffic::Clients).await, Ok(()), "throttled signals are no refusals");
    }

    #[tokio::test]
    async fn repeated_refusals_ban_and_the_deny_list_refuses() {
        let settings = SecuritySettings {
            ip_rate: Some(Rate { per_minute: 1, burst: 1 }),
            auto_ban_after: 3,
            auto_ban_duration: Duration::from_secs(300),
            deny_list: vec![crate::config::IpNet::parse("192.0.2.0/24").unwrap()],
            ..SecuritySettings::default()
        };
        let guard = guard(settings);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(guard.check_ip(ip, Traffic::Clients).await, Ok(()));
        for _ in 0..2 {
            assert!(
                matches!(guard.check_ip(ip, Traffic::Clients).await, Err(Refusal::Limited { retry_after }) if retry_after < Duration::from_secs(61))
            );
        }
        assert_eq!(
            guard.check_ip(ip, Traffic::Clients).await,
            Err(Refusal::Limited { retry_after: Duration::from_secs(300) })
        );
        assert!(
            matches!(guard.check_ip(ip, Traffic::Clients).await, Err(Refusal::Limited { retry_after }) if retry_after > Duration::from_secs(200))
        );
        assert_eq!(guard.check_ip("192.0.2.9".parse().unwrap(), Traffic::Clients).await, Err(Refusal::Denied));
    }

    #[tokio::test]
    async fn a_client_that_keeps_sending_malformed_requests_is_banned_and_others_are_not() {
        let settings = SecuritySettings {
            auto_ban_after_bad_requests: 3,
            auto_ban_duration: Duration::from_secs(300),
            ..SecuritySettings::default()
        };
        let guard = guard(settings);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..2 {
            guard.bad_request(ip, BadRequest::MalformedBody).await;
        }
        assert_eq!(guard.check_ip(ip, Traffic::Clients).await, Ok(()), "two malformed requests are not yet a ban");
        guard.bad_request(ip, BadRequest::JsonTooDeep).await;
        assert!(
            matches!(guard.check_ip(ip, Traffic::Clients).await, Err(Refusal::Limited { retry_after }) if retry_after > Duration::from_secs(200))
        );
        assert_eq!(
            guard.check_ip("198.51.100.2".parse().unwrap(), Traffic::Clients).await,
            Ok(()),
            "another client is not banned"
        );
    }

    /// A limiter whose store is away: every call fails, and counts its calls.
    #[derive(Default)]
    struct Unreachable(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl Limiter for Unreachable {
        async fn take(&self, _: &str, _: Gcra) -> AppResult<Option<Duration>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(crate::error::AppError::Unavailable("redis: connection refused".into()))
        }
        async fn hit(&self, _: &str, _: Duration) -> AppResult<(u64, Duration)> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(crate::error::AppError::Unavailable("redis: connection refused".into()))
        }
        async fn peek(&self, _: &str) -> AppResult<Option<(u64, Duration)>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(crate::error::AppError::Unavailable("redis: connection refused".into()))
        }
        async fn set_for(&self, _: &str, _: Duration) -> AppResult<()> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(crate::error::AppError::Unavailable("redis: connection refused".into()))
        }
        async fn clear(&self, _: &str) -> AppResult<()> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(crate::error::AppError::Unavailable("redis: connection refused".into()))
        }
    }

    #[tokio::test]
    async fn an_unreachable_limiter_lets_requests_through_and_is_left_alone_for_a_while() {
        let limiter = Arc::new(Unreachable::default());
        let guard = Guard::new(limiter.clone(), SecuritySettings::default());
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(guard.check_ip(ip, Traffic::Clients).await, Ok(()));
            assert_eq!(guard.before_login("demo-a", Some(ip)).await, Ok(()));
        }
        assert_eq!(limiter.0.load(std::sync::atomic::Ordering::Relaxed), 1, "asked once, then backed off");
    }
}
