//! Integration settings: the webhooks in and out, the outbox's delivery schedule, WeChat
//! subscribe messages, and the scheduled jobs.
//!
//! Every integration is off until its variables are set, and the settings that only make sense
//! together are checked together here (a webhook URL without its secret, WeChat's three
//! variables, a lease shorter than a delivery), so a half-configured integration stops start-up
//! instead of failing at its first delivery.

use super::reader::{ConfigError, Reader};
use super::retention::RetentionSettings;
use std::time::Duration;

/// The shortest webhook secret accepted.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 16;

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
    /// `OUTBOUND_CA_FILE`: a private CA trusted by the outbound `https://` requests besides the
    /// public web PKI roots compiled in.
    pub outbound_ca: Option<OutboundCa>,
    pub outbox: OutboxSettings,
    /// `WECHAT_*`: subscribe messages to the mini-program user.
    pub wechat: Option<WechatSettings>,
    /// `JOB_INTERVAL_SECONDS`: how often the scheduled jobs run; `None` (0) runs them only on
    /// demand (`provider-desk run-jobs`).
    pub job_interval: Option<Duration>,
    /// What the prune jobs keep of the tables that would otherwise grow forever.
    pub retention: RetentionSettings,
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

/// A private certificate authority for the outbound requests, as read at start-up.
#[derive(Debug, Clone)]
pub struct OutboundCa {
    /// The file's path, as `OUTBOUND_CA_FILE` gives it.
    pub path: String,
    /// Its PEM text: one or more `CERTIFICATE` blocks (parsed, and checked, by the HTTP client).
    pub pem: Vec<u8>,
}

impl OutboundCa {
    pub const VARIABLE: &'static str = "OUTBOUND_CA_FILE";

    fn read(env: &Reader) -> Result<Option<OutboundCa>, ConfigError> {
        let Some((path, pem)) = env.file(Self::VARIABLE)? else { return Ok(None) };
        if !pem.windows(CERTIFICATE_PEM.len()).any(|window| window == CERTIFICATE_PEM) {
            return Err(ConfigError::new(
                Self::VARIABLE,
                path,
                "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
        Ok(Some(OutboundCa { path, pem }))
    }
}

const CERTIFICATE_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// The WeChat subscribe-message adapter.
#[derive(Debug, Clone)]
pub struct WechatSettings {
    /// `WECHAT_API_BASE`: the WeChat API (`https://api.weixin.qq.com`), or a gateway in front of
    /// it.
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

impl IntegrationSettings {
    pub(super) fn read(env: &Reader) -> Result<IntegrationSettings, ConfigError> {
        let cs_secret = env.secret("CS_WEBHOOK_SECRET", MIN_WEBHOOK_SECRET_BYTES)?;
        let cs_webhook_url = env.http_url("CS_WEBHOOK_URL")?;
        if let (Some(value), None) = (&cs_webhook_url, &cs_secret) {
            return Err(ConfigError::new(
                "CS_WEBHOOK_URL",
                value.clone(),
                "needs CS_WEBHOOK_SECRET: outbound webhooks are always signed",
            ));
        }
        let webhook_timeout = env.millis("WEBHOOK_TIMEOUT_MS", 100..=600_000, Duration::from_secs(10))?;
        let job_interval = Some(env.secs("JOB_INTERVAL_SECONDS", 0..=604_800, Duration::from_secs(3_600))?)
            .filter(|interval| !interval.is_zero());
        Ok(IntegrationSettings {
            cs_secret,
            cs_webhook_url,
            saas_secret: env.secret("SAAS_WEBHOOK_SECRET", MIN_WEBHOOK_SECRET_BYTES)?,
            signature_tolerance: env.secs("WEBHOOK_TOLERANCE_SECONDS", 1..=86_400, Duration::from_secs(300))?,
            outbox: OutboxSettings::read(env, webhook_timeout)?,
            webhook_timeout,
            outbound_ca: OutboundCa::read(env)?,
            wechat: WechatSettings::read(env)?,
            job_interval,
            retention: RetentionSettings::read(env)?,
        })
    }
}

impl OutboxSettings {
    fn read(env: &Reader, webhook_timeout: Duration) -> Result<OutboxSettings, ConfigError> {
        let lease = env.secs("OUTBOX_LEASE_SECONDS", 1..=86_400, Duration::from_secs(60))?;
        if lease <= webhook_timeout {
            return Err(ConfigError::new(
                "OUTBOX_LEASE_SECONDS",
                lease.as_secs().to_string(),
                "must be longer than WEBHOOK_TIMEOUT_MS, or a slow delivery would be taken over while it runs",
            ));
        }
        let base_delay = env.millis("OUTBOX_BASE_DELAY_MS", 1..=3_600_000, Duration::from_secs(1))?;
        let max_delay = env.millis("OUTBOX_MAX_DELAY_MS", 1..=86_400_000, Duration::from_secs(600))?;
        Ok(OutboxSettings {
            max_attempts: env.number_in("OUTBOX_MAX_ATTEMPTS", 1..=1_000, 20)?,
            base_delay,
            max_delay: max_delay.max(base_delay),
            poll_interval: env.millis("OUTBOX_POLL_INTERVAL_MS", 10..=600_000, Duration::from_secs(1))?,
            lease,
            retention: env.days("OUTBOX_RETENTION_DAYS", 1..=3_650, Duration::from_secs(7 * 86_400))?,
        })
    }
}

impl WechatSettings {
    /// `None` when none of the three variables it needs is set.
    fn read(env: &Reader) -> Result<Option<WechatSettings>, ConfigError> {
        const TOGETHER: &str = "WECHAT_API_BASE, WECHAT_APP_ID and WECHAT_APP_SECRET are needed together";
        if ["WECHAT_API_BASE", "WECHAT_APP_ID", "WECHAT_APP_SECRET"].iter().all(|name| env.optional(name).is_none()) {
            return Ok(None);
        }
        env.required("WECHAT_API_BASE", TOGETHER)?;
        let api_base = env.http_url("WECHAT_API_BASE")?.unwrap_or_default().trim_end_matches('/').to_owned();
        let miniprogram_state = env.parsed(
            "WECHAT_MINIPROGRAM_STATE",
            "formal".to_owned(),
            "expected formal, trial or developer",
            |state| matches!(state, "formal" | "trial" | "developer").then(|| state.to_owned()),
        )?;
        Ok(Some(WechatSettings {
            api_base,
            app_id: env.required("WECHAT_APP_ID", TOGETHER)?,
            app_secret: env.required("WECHAT_APP_SECRET", TOGETHER)?,
            chat_template: env.optional("WECHAT_TEMPLATE_CHAT"),
            alert_template: env.optional("WECHAT_TEMPLATE_ALERT"),
            page: env.string("WECHAT_PAGE", "pages/index/index"),
            miniprogram_state,
        }))
    }
}
