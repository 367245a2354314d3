//! The scheduled jobs (spec 7.3, 定时同步). Each is idempotent (a second run right after the first
//! changes nothing) and runs in one process at a time, under a lease in the store. They run every
//! `JOB_INTERVAL_SECONDS` in the server (`crate::integration::scheduler`) and on demand with
//! `provider-desk run-jobs`.
//!
//! | job | what it does |
//! | --- | --- |
//! | `customer-status` | moves each customer's stored status to what its expiry date gives now; a customer entering `expiring` or `expired` gets the provider a `customer_alert` notification (and a WeChat message, when configured and the provider is not connected), once per customer per status per expiry date |
//! | `unresolved-issues` | nothing to do: `unresolvedIssues` is counted from the tickets whenever a customer is read, never stored, so it cannot drift; the job only says so |
//! | `usage-scores` | rewrites stored copies of the usage score that differ from what the stored measures give (MongoDB keeps one, `usageScore`, for readers of the raw data; SQLite keeps none, the score is computed at read time) |
//! | `sla-breaches` | announces each ticket's breached service-level target once: a `ticket_update` notification, a `ticket.sla_breached` webhook and a WeChat message (when configured and the provider is not connected), per ticket and target (see [`super::sla`]); runs as of the server's clock |
//! | `chat-wait-alerts` | a customer waiting longer than `CHAT_WAIT_ALERT_MINUTES` for a reply in a chat gets the provider one `customer_alert` notification per waiting episode (see [`super::chat_wait`]) |
//! | `outbox-prune` | deletes outbox entries delivered more than `OUTBOX_RETENTION_DAYS` ago (dead letters are kept until replayed) |
//! | `events-prune` | deletes events logged more than `EVENT_RETENTION_DAYS` ago (on SQLite, each provider's newest stays) |
//! | `idempotency-keys-prune` | deletes idempotency keys first used more than `IDEMPOTENCY_KEY_RETENTION_HOURS` ago |
//! | `revoked-access-tokens-prune` | deletes access-token revocations expired more than `EXPIRED_TOKEN_RETENTION_HOURS` ago |
//! | `refresh-tokens-prune` | deletes refresh tokens expired more than `EXPIRED_TOKEN_RETENTION_HOURS` ago |
//! | `token-families-prune` | deletes token families whose last token expired more than `EXPIRED_TOKEN_RETENTION_HOURS` ago |
//! | `attachments-orphans` | deletes attachments no message, reply or ticket used within `ATTACHMENT_ORPHAN_HOURS` of their upload, and each blob no other attachment names |
//!
//! The prune jobs delete in batches of `RETENTION_BATCH_SIZE`, one short write each, and count
//! what they delete in `retention_pruned_total{table}`. A job per table, not one for all, so that
//! `run-jobs` reports and runs each table on its own; the token jobs run after the refresh-token
//! one, since a family goes with its last token.

use super::attachments::AttachmentService;
use super::chat_wait::ChatWaitAlerts;
use super::outbound::Outbound;
use super::realtime::Realtime;
use super::sla::BreachAlerts;
use crate::config::{OutboxSettings, RetentionSettings, SlaSettings};
use crate::domain::{after, format_time, now, Clock, Customer, CustomerStatus, Id, Notification, Timestamp};
use crate::error::AppResult;
use crate::store::{
    CustomerStatusChange, CustomerStore, LeaseStore, OutboxStore, ProviderStore, Retained, RetentionStore, SharedStore,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Customers read per batch by the status job.
const STATUS_BATCH: u32 = 200;
/// How long a run started on demand may hold its job's lease, at most.
const ON_DEMAND_LEASE: Duration = Duration::from_secs(600);

/// One of the scheduled jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    CustomerStatus,
    UnresolvedIssues,
    UsageScores,
    SlaBreaches,
    ChatWaitAlerts,
    OutboxPrune,
    /// Deletes the rows of a retained table that are past their retention.
    Prune(Retained),
    AttachmentOrphans,
}

impl Job {
    pub const ALL: [Job; 12] = [
        Job::CustomerStatus,
        Job::UnresolvedIssues,
        Job::UsageScores,
        Job::SlaBreaches,
        Job::ChatWaitAlerts,
        Job::OutboxPrune,
        Job::Prune(Retained::Events),
        Job::Prune(Retained::IdempotencyKeys),
        Job::Prune(Retained::RevokedAccessTokens),
        Job::Prune(Retained::RefreshTokens),
        Job::Prune(Retained::TokenFamilies),
        Job::AttachmentOrphans,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::CustomerStatus => "customer-status",
            Job::UnresolvedIssues => "unresolved-issues",
            Job::UsageScores => "usage-scores",
            Job::SlaBreaches => "sla-breaches",
            Job::ChatWaitAlerts => "chat-wait-alerts",
            Job::OutboxPrune => "outbox-prune",
            Job::Prune(Retained::Events) => "events-prune",
            Job::Prune(Retained::IdempotencyKeys) => "idempotency-keys-prune",
            Job::Prune(Retained::RevokedAccessTokens) => "revoked-access-tokens-prune",
            Job::Prune(Retained::RefreshTokens) => "refresh-tokens-prune",
            Job::Prune(Retained::TokenFamilies) => "token-families-prune",
            Job::AttachmentOrphans => "attachments-orphans",
        }
    }

    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|job| job.name() == name)
    }

    fn lease(self) -> String {
        format!("job:{}", self.name())
    }
}

/// What a run of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub job: Job,
    /// How many things it changed (customers, scores, entries).
    pub changed: u64,
    pub summary: String,
}

/// What the jobs need to know besides the store.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub outbox: OutboxSettings,
    pub retention: RetentionSettings,
    /// The service-level targets of new tickets (read by the ticket service).
    pub sla: SlaSettings,
    /// The time the breach job runs as of: the server's clock, or `run-jobs --at`.
    pub clock: Clock,
}

#[derive(Clone)]
pub struct JobService {
    customers: Arc<dyn CustomerStore>,
    leases: Arc<dyn LeaseStore>,
    outbox: Arc<dyn OutboxStore>,
    providers: Arc<dyn ProviderStore>,
    retention: Arc<dyn RetentionStore>,
    realtime: Arc<Realtime>,
    outbound: Arc<Outbound>,
    breaches: BreachAlerts,
    chat_waits: ChatWaitAlerts,
    settings: JobSettings,
    /// The orphan job's work, once the attachments are configured.
    attachments: Option<AttachmentService>,
}

impl JobService {
    pub fn new(
        store: &SharedStore,
        realtime: Arc<Realtime>,
        outbound: Arc<Outbound>,
        settings: JobSettings,
    ) -> JobService {
        JobService {
            customers: store.clone(),
            leases: store.clone(),
            outbox: store.clone(),
            providers: store.clone(),
            retention: store.clone(),
            chat_waits: ChatWaitAlerts::new(
                store,
                realtime.clone(),
                outbound.clone(),
                settings.clock.clone(),
                settings.sla.chat_wait_alert_minutes,
            ),
            breaches: BreachAlerts::new(store, realtime.clone(), outbound.clone(), settings.clock.clone()),
            realtime,
            outbound,
            settings,
            attachments: None,
        }
    }

    /// The jobs, with the attachments the orphan job deletes from.
    pub fn with_attachments(mut self, attachments: AttachmentService) -> JobService {
        self.attachments = Some(attachments);
        self
    }

    /// Runs the job now unless another run of it (in any process) is in progress; `None` if one
    /// is. Runs hold the job's lease (`job:<name>`) while they last.
    pub async fn run_now(&self, job: Job, owner: &str) -> AppResult<Option<JobReport>> {
        let at = now();
        if !self.leases.acquire_lease(&job.lease(), owner, after(at, ON_DEMAND_LEASE), at).await? {
            return Ok(None);
        }
        let report = self.run(job).await;
        self.leases.release_lease(&job.lease(), owner).await?;
        report.map(Some)
    }

    /// Runs the job if `interval` has passed since any process last ran it on schedule; `None` if
    /// it was not due (or a run is in progress). The interval is a second lease
    /// (`job:<name>:interval`), taken under a name of this run and kept after it: only its expiry
    /// makes the job due again, in this process or another. A run that fails gives it back, so the
    /// next look tries again.
    pub async fn run_scheduled(&self, job: Job, owner: &str, interval: Duration) -> AppResult<Option<JobReport>> {
        let at = now();
        let (spacing, this_run) = (format!("{}:interval", job.lease()), format!("{owner}@{}", at.timestamp_millis()));
        if !self.leases.acquire_lease(&spacing, &this_run, after(at, interval), at).await? {
            return Ok(None);
        }
        match self.run_now(job, owner).await {
            Ok(Some(report)) => Ok(Some(report)),
            other => {
                let _ = self.leases.release_lease(&spacing, &this_run).await;
                other
            }
        }
    }

    async fn run(&self, job: Job) -> AppResult<JobReport> {
        let (changed, summary) = match job {
            Job::CustomerStatus => {
                let (changed, alerts) = self.customer_status().await?;
                (changed, format!("{changed} customer statuses updated, {alerts} alerts sent"))
            }
            Job::UnresolvedIssues => {
                (0, "unresolvedIssues is counted from the tickets at read time; nothing is stored to reconcile".into())
            }
            Job::UsageScores => {
                let rewritten = self.customers.reconcile_usage_scores().await?;
                (rewritten, format!("{rewritten} stored usage scores rewritten from their measures"))
            }
            Job::SlaBreaches => {
                let alerts = self.breaches.run().await?;
                (alerts, format!("{alerts} service-level breach alerts sent"))
            }
            Job::ChatWaitAlerts => {
                let alerts = self.chat_waits.run().await?;
                (alerts, format!("{alerts} alerts of customers waiting for a reply sent"))
            }
            Job::OutboxPrune => {
                let before = now()
                    - chrono::Duration::from_std(self.settings.outbox.retention).unwrap_or(chrono::Duration::days(7));
                let pruned = self.outbox.prune_outbox(before).await?;
                crate::metrics::counter("retention_pruned_total", &[("table", "outbox")]).inc_by(pruned);
                (pruned, format!("{pruned} delivered outbox entries older than {} removed", format_time(&before)))
            }
            Job::Prune(table) => self.prune(table).await?,
            Job::AttachmentOrphans => match &self.attachments {
                Some(attachments) => {
                    let deleted = attachments.delete_orphans(self.settings.clock.now()).await?;
                    crate::metrics::counter("retention_pruned_total", &[("table", "attachments")]).inc_by(deleted);
                    (deleted, format!("{deleted} attachments never used removed"))
                }
                None => (0, "attachments are not configured".into()),
            },
        };
        Ok(JobReport { job, changed, summary })
    }

    /// Deletes what is due in `table`, a batch per write, until a batch comes back short.
    async fn prune(&self, table: Retained) -> AppResult<(u64, String)> {
        let retention = &self.settings.retention;
        let (kept, what) = match table {
            Retained::Events => (retention.events, "events logged"),
            Retained::IdempotencyKeys => (retention.idempotency_keys, "idempotency keys first used"),
            Retained::RevokedAccessTokens => (retention.expired_tokens, "access-token revocations expired"),
            Retained::RefreshTokens => (retention.expired_tokens, "refresh tokens expired"),
            Retained::TokenFamilies => (retention.expired_tokens, "token families whose tokens expired"),
        };
        let before = now() - chrono::Duration::from_std(kept).unwrap_or(chrono::Duration::days(3_650));
        let pruned_total = crate::metrics::counter("retention_pruned_total", &[("table", table.table())]);
        let mut pruned = 0;
        loop {
            let deleted = self.retention.prune(table, before, retention.batch).await?;
            pruned += deleted;
            pruned_total.inc_by(deleted);
            if deleted < u64::from(retention.batch) {
                break;
            }
        }
        Ok((pruned, format!("{pruned} {what} before {} removed from {}", format_time(&before), table.table())))
    }

    /// Brings every stored status in line with the expiry date; answers how many customers
    /// changed and how many alerts were written.
    async fn customer_status(&self) -> AppResult<(u64, u64)> {
        let at = now();
        let (mut changed, mut alerts) = (0, 0);
        loop {
            let stale = self.customers.customers_with_stale_status(at, STATUS_BATCH).await?;
            let mut progressed = false;
            for customer in &stale {
                let to = customer.status_at(at);
                let alert = (to != CustomerStatus::Active).then(|| alert_notification(customer, to, at));
                let outbox = match &alert {
                    Some(_) => {
                        self.outbound.wechat_alert(self.providers.as_ref(), &self.realtime, customer, to, at).await
                    }
                    None => Vec::new(),
                };
                let change = CustomerStatusChange {
                    provider_id: customer.service_provider_id.clone(),
                    customer_id: customer.id.clone(),
                    from: customer.stored_status,
                    to,
                    alert,
                    outbox,
                };
                // `None`: another run changed it first; it is no longer stale.
                if let Some(events) = self.customers.apply_customer_status(&change).await? {
                    progressed = true;
                    changed += 1;
                    if !events.is_empty() {
                        alerts += 1;
                        self.outbound.queued(change.outbox.len());
                    }
                    self.realtime.publish(events).await;
                }
            }
            if !progressed || (stale.len() as u32) < STATUS_BATCH {
                return Ok((changed, alerts));
            }
        }
    }
}

/// The alert of a customer entering `status`. Its id is derived from the customer, the status and
/// the expiry date: one alert per customer per status per subscription term.
pub fn alert_notification(customer: &Customer, status: CustomerStatus, at: Timestamp) -> Notification {
    let digest = Sha256::digest(format!("{}|{}|{}", customer.id, status.as_str(), format_time(&customer.expiry_date)));
    let id: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let date = customer.expiry_date.format("%Y-%m-%d");
    let (title, content) = match status {
        CustomerStatus::Expired => {
            ("客户已到期", format!("客户{}的服务已于{date}到期，请及时联系客户续费", customer.name))
        }
        _ => ("客户即将到期", format!("客户{}的服务将于{date}到期，请及时联系客户续费", customer.name)),
    };
    Notification::customer_alert(Id::from_stored(format!("ma{id}")), customer, title, content, at)
}
