//! The outbox dispatcher: delivers what the writes queued, at least once, in order per
//! conversation, with exponential backoff and jitter, surviving restarts and sharing the work
//! with other processes.
//!
//! Each pass claims (with a lease of `OUTBOX_LEASE_SECONDS`) the deliveries that are due and first
//! in their conversation, sends them concurrently (they belong to different conversations), and
//! records each outcome: delivered; or failed, due again after [`backoff`]; or, after
//! `OUTBOX_MAX_ATTEMPTS` attempts or a refusal for good, a dead letter. All of that state is in the
//! store, so a restarted process picks up where the last one stopped, and a delivery whose process
//! died while sending it is taken over by any process once its lease runs out (it is then sent
//! again, with the same delivery id: at least once, not exactly once).
//!
//! A pass runs when a write of this process queued something ([`Outbound::queued`] wakes the
//! dispatcher at once), and otherwise every `OUTBOX_POLL_INTERVAL_MS` (deliveries queued by other
//! processes, retries falling due, leases running out).
//!
//! An ephemeral delivery (queued with an expiry, see `crate::domain::outbox`) is deleted once
//! sent, and deleted instead of retried when its next attempt would fall after its expiry or when
//! it is refused: it never becomes a dead letter.

use super::{Delivery, Transport};
use crate::config::OutboxSettings;
use crate::domain::outbox::{backoff, random_fraction};
use crate::domain::{after, OutboxEntry, OutboxTarget};
use crate::error::AppResult;
use crate::service::attachments::AttachmentService;
use crate::service::outbound::Outbound;
use crate::store::SharedStore;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How many deliveries (of different conversations) one pass sends at most.
const BATCH: u32 = 32;

pub struct Dispatcher {
    store: SharedStore,
    transports: HashMap<OutboxTarget, Arc<dyn Transport>>,
    settings: OutboxSettings,
    /// This process, as the owner of the leases it takes.
    owner: String,
    outbound: Arc<Outbound>,
    /// Signs the attachment URLs a payload lists again at each attempt.
    attachments: AttachmentService,
}

impl Dispatcher {
    pub fn new(
        store: SharedStore,
        transports: HashMap<OutboxTarget, Arc<dyn Transport>>,
        settings: OutboxSettings,
        owner: String,
        outbound: Arc<Outbound>,
        attachments: AttachmentService,
    ) -> Dispatcher {
        Dispatcher { store, transports, settings, owner, outbound, attachments }
    }

    /// Runs passes until `stop` turns true; the pass in progress is finished first, so no
    /// delivery is left leased to a process that is gone.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut failures = 0u32;
            while !*stop.borrow() {
                let sent = match self.pass().await {
                    Ok(sent) => {
                        failures = 0;
                        sent
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        if failures == 1 || failures.is_multiple_of(60) {
                            tracing::warn!(%error, failures, "the outbox could not be read; trying again");
                        }
                        0
                    }
                };
                if sent > 0 {
                    continue;
                }
                tokio::select! {
                    () = self.outbound.woken() => {}
                    () = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
        })
    }

    /// Claims what is due and sends it; answers how many deliveries were attempted.
    pub async fn pass(&self) -> AppResult<usize> {
        let now = Utc::now();
        let lease_until = after(now, self.settings.lease);
        let claimed = self.store.claim_deliveries(&self.owner, now, lease_until, BATCH).await?;
        let attempts = claimed.iter().map(|entry| self.attempt(entry));
        futures_util::future::join_all(attempts).await;
        Ok(claimed.len())
    }

    async fn attempt(&self, entry: &OutboxEntry) {
        let draft = &entry.draft;
        let outcome = match self.transports.get(&draft.target) {
            Some(transport) => match self.attachments.with_fresh_urls(&draft.payload) {
                Some(payload) => {
                    let mut fresh = entry.clone();
                    fresh.draft.payload = payload;
                    transport.deliver(&fresh).await
                }
                None => transport.deliver(entry).await,
            },
            None => Delivery::Retry(format!("no {} transport is configured", draft.target.as_str())),
        };
        let now = Utc::now();
        let attempts = entry.attempts + 1;
        let retry_at = match &outcome {
            Delivery::Retry(_) if attempts < self.settings.max_attempts => {
                let wait = backoff(attempts, self.settings.base_delay, self.settings.max_delay, random_fraction());
                Some((after(now, wait), wait))
            }
            _ => None,
        };
        let expired = |retry: &Option<(chrono::DateTime<Utc>, std::time::Duration)>| match entry.expires_at {
            Some(expires_at) => retry.is_none_or(|(retry_at, _)| retry_at >= expires_at),
            None => false,
        };
        let (label, recorded) = match (&outcome, retry_at) {
            (Delivery::Delivered, _) if entry.expires_at.is_some() => {
                ("delivered", self.store.drop_delivery(&draft.id).await)
            }
            (Delivery::Delivered, _) => ("delivered", self.store.complete_delivery(&draft.id, now).await),
            (Delivery::Retry(_) | Delivery::Refused(_), retry) if expired(&retry) => {
                tracing::debug!(delivery = %draft.id, event = %draft.event_type, attempts, "an ephemeral delivery was dropped unsent");
                ("expired", self.store.drop_delivery(&draft.id).await)
            }
            (Delivery::Retry(error), Some((retry_at, wait))) => {
                tracing::info!(delivery = %draft.id, attempts, %error, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
                ("retry", self.store.fail_delivery(&draft.id, &self.owner, error, Some(retry_at), now).await)
            }
            (Delivery::Retry(error) | Delivery::Refused(error), _) => {
                tracing::warn!(delivery = %draft.id, event = %draft.event_type, attempts, %error, "delivery is now a dead letter");
                ("dead_letter", self.store.fail_delivery(&draft.id, &self.owner, error, None, now).await)
            }
        };
        count_attempt(draft.target, &outcome, label);
        if let Err(error) = recorded {
            // The lease runs out and the delivery is sent again: a duplicate, never a loss.
            tracing::warn!(delivery = %draft.id, %error, "the outcome of a delivery could not be recorded");
        }
    }
}

/// Records an attempt in `outbox_deliveries_total` and `outbox_failure_streak`: a failure that may
/// pass (the receiver down, 5xx, a timeout) lengthens the target's streak; an answer, even a
/// refusal for good, ends it, since the receiver is working. `label` is the outcome as counted: `delivered`, `retry`, `dead_letter`, or `expired` (an
/// ephemeral delivery dropped unsent).
fn count_attempt(target: OutboxTarget, outcome: &Delivery, label: &'static str) {
    let target = target.as_str();
    crate::metrics::counter("outbox_deliveries_total", &[("target", target), ("outcome", label)]).inc();
    let streak = crate::metrics::gauge("outbox_failure_streak", &[("target", target)]);
    match outcome {
        Delivery::Retry(_) => streak.inc(),
        Delivery::Delivered | Delivery::Refused(_) => streak.set(0),
    }
}
