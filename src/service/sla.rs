//! Service-level timers: the targets a new ticket is given, and the `sla-breaches` job that
//! announces each breach once.
//!
//! Exactly one alert per ticket and target, across job runs, processes and restarts: the alert is
//! a ticket change that sets the target's `alerted` flag, compare-and-set on the ticket's version
//! and written in one transaction with its `ticket_update` notification and its deliveries (the
//! `ticket.sla_breached` webhook, the WeChat message). Two runs that find the same breach both
//! compute the change; the store applies only the first, and the second finds the version moved
//! and the flag set. The change leaves `updatedAt` as it was, so an alert does not reorder the
//! provider's ticket list.

use super::outbound::Outbound;
use super::realtime::Realtime;
use crate::config::SlaSettings;
use crate::domain::{
    new_id, Clock, Notification, NotificationType, ReadStatus, SlaTarget, SlaTargets, Ticket, TicketType,
};
use crate::error::AppResult;
use crate::store::{ProviderStore, SharedStore, TicketChange, TicketStore};
use std::sync::Arc;

/// Tickets read per batch by the breach job.
const ALERT_BATCH: u32 = 200;

/// The targets a new ticket of `ticket_type` is given under `settings`.
pub fn targets(settings: &SlaSettings, ticket_type: TicketType) -> SlaTargets {
    let (first, resolution) = settings.minutes(ticket_type.as_str());
    let minutes = |m: u64| chrono::Duration::minutes(i64::try_from(m).unwrap_or(i64::MAX / 120_000));
    SlaTargets { first_response: minutes(first), resolution: minutes(resolution) }
}

/// The `sla-breaches` job.
#[derive(Clone)]
pub struct BreachAlerts {
    tickets: Arc<dyn TicketStore>,
    providers: Arc<dyn ProviderStore>,
    realtime: Arc<Realtime>,
    outbound: Arc<Outbound>,
    clock: Clock,
}

impl BreachAlerts {
    pub fn new(store: &SharedStore, realtime: Arc<Realtime>, outbound: Arc<Outbound>, clock: Clock) -> BreachAlerts {
        BreachAlerts { tickets: store.clone(), providers: store.clone(), realtime, outbound, clock }
    }

    /// Announces every breach not announced yet; answers how many alerts were written.
    pub async fn run(&self) -> AppResult<u64> {
        let at = self.clock.now();
        let mut alerts = 0;
        loop {
            let owed = self.tickets.tickets_owed_sla_alerts(at, ALERT_BATCH).await?;
            let mut progressed = false;
            for ticket in &owed {
                if self.alert(ticket, at).await? {
                    progressed = true;
                    alerts += 1;
                }
            }
            if !progressed || (owed.len() as u32) < ALERT_BATCH {
                return Ok(alerts);
            }
        }
    }

    /// One alert for the targets of `ticket` breached and not yet announced; false if there are
    /// none or another run announced them first.
    async fn alert(&self, ticket: &Ticket, at: crate::domain::Timestamp) -> AppResult<bool> {
        let breached = ticket.unalerted_breaches(at);
        if breached.is_empty() {
            return Ok(false);
        }
        let mut next = ticket.clone();
        let mut outbox = Vec::new();
        for target in &breached {
            next.mark_alerted(*target);
            outbox.extend(self.outbound.ticket_sla_breached(ticket, *target, at));
            let (providers, realtime) = (self.providers.as_ref(), self.realtime.as_ref());
            outbox.extend(self.outbound.wechat_sla_alert(providers, realtime, ticket, *target, at).await);
        }
        // The outbox schedules by real time; the job's time may be moved (tests, `run-jobs --at`).
        let queued_at = crate::domain::now();
        outbox.iter_mut().for_each(|draft| draft.created_at = queued_at);
        let what: Vec<&str> = breached.iter().map(|target| breach_phrase(*target)).collect();
        let notification = Notification {
            id: new_id("m"),
            service_provider_id: ticket.service_provider_id.clone(),
            notification_type: NotificationType::TicketUpdate,
            title: "工单超时提醒".to_owned(),
            content: format!("客户{}的工单\"{}\"{}", ticket.customer_name, ticket.title, what.join("，")),
            related_customer_id: Some(ticket.customer_id.clone()),
            related_customer_name: Some(ticket.customer_name.clone()),
            related_ticket_id: Some(ticket.id.clone()),
            read_status: ReadStatus::Unread,
            created_at: at,
            read_at: None,
        };
        let change = TicketChange { ticket: next, appended_history: Vec::new(), notification, outbox, claim: None };
        match self.tickets.apply_ticket_change(&change).await? {
            Some(events) => {
                self.outbound.queued(change.outbox.len());
                self.realtime.publish(events).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn breach_phrase(target: SlaTarget) -> &'static str {
    match target {
        SlaTarget::FirstResponse => "已超过首次响应时限，尚未回复",
        SlaTarget::Resolution => "已超过解决时限，尚未解决",
    }
}
