//! Service-level targets of a ticket: the rules, as pure functions of the ticket and the time.
//!
//! A ticket stores its due times when it is created (from the targets of its type then), so a
//! change of the settings never moves a stored ticket's targets; tickets stored before due times
//! existed have none, and no SLA (`sla` null) rather than targets made up after the fact.
//!
//! Each target is met when its deed is done by its due time (the first response: the provider's
//! first reply, or a reply from the PC system, or resolving; the resolution: resolving, which
//! stops the clock; reopening starts it again against the same due time). A target not yet met is
//! `AT_RISK` in the last 20% of its time and `BREACHED` after it; one met late stays `BREACHED`.
//! The ticket's `sla` is the worst of its targets, `MET` only when both are met.
//!
//! So that the store can filter by status with one indexed comparison against "now", the adapters
//! keep three times that [`Ticket::sla_marks`] derives: when the ticket is at risk, when it is
//! breached, and when the breach job owes it an alert.

use super::{SlaStatus, Ticket, Timestamp};

/// The time a ticket of some type is given for each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTargets {
    pub first_response: chrono::Duration,
    pub resolution: chrono::Duration,
}

/// A ticket's service-level timers as stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketSla {
    pub first_response_due_at: Option<Timestamp>,
    pub resolution_due_at: Option<Timestamp>,
    /// The provider's first reply (or the PC system's, or the resolution, whichever came first).
    pub first_responded_at: Option<Timestamp>,
    /// Set once the breach of the target has been announced: one alert per ticket and target.
    pub first_response_alerted: bool,
    pub resolution_alerted: bool,
}

impl TicketSla {
    /// The timers of a ticket created at `created_at` under `targets`.
    pub fn starting(created_at: Timestamp, targets: SlaTargets) -> TicketSla {
        TicketSla {
            first_response_due_at: Some(created_at + targets.first_response),
            resolution_due_at: Some(created_at + targets.resolution),
            ..TicketSla::default()
        }
    }
}

/// One of the two targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaTarget {
    FirstResponse,
    Resolution,
}

impl SlaTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaTarget::FirstResponse => "first_response",
            SlaTarget::Resolution => "resolution",
        }
    }
}

/// The times the store keeps beside a ticket to filter it by status against "now".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlaMarks {
    /// From then on the ticket is at risk (or worse); `None` when nothing is pending or late.
    pub risk_at: Option<Timestamp>,
    /// From then on the ticket is breached; `None` when no target is pending or late.
    pub breach_at: Option<Timestamp>,
    /// From then on the breach job owes the ticket an alert; `None` when none will be owed.
    pub alert_at: Option<Timestamp>,
}

/// One target of a ticket as the rules see it.
#[derive(Debug, Clone, Copy)]
struct Timer {
    target: SlaTarget,
    due: Timestamp,
    done: Option<Timestamp>,
    alerted: bool,
}

impl Timer {
    /// The start of the last 20% of the target's time.
    fn risk_at(&self, created: Timestamp) -> Timestamp {
        let span = self.due - created;
        self.due - span / 5
    }

    fn status(&self, created: Timestamp, now: Timestamp) -> SlaStatus {
        match self.done {
            Some(done) if done <= self.due => SlaStatus::Met,
            Some(_) => SlaStatus::Breached,
            None if now > self.due => SlaStatus::Breached,
            None if now >= self.risk_at(created) => SlaStatus::AtRisk,
            None => SlaStatus::OnTrack,
        }
    }

    /// When the target is at risk and when breached; `None` for a target met in time.
    fn watch(&self, created: Timestamp) -> Option<(Timestamp, Timestamp)> {
        match self.done {
            Some(done) if done <= self.due => None,
            Some(_) => Some((self.due, self.due)),
            None => Some((self.risk_at(created), self.due)),
        }
    }
}

/// A status at a strict `>` (breached after the due time) is the comparison `breach_at < now`;
/// the store compares `<=`, so its mark is the first second after the due time.
fn first_breached_second(due: Timestamp) -> Timestamp {
    due + chrono::Duration::seconds(1)
}

impl Ticket {
    fn timers(&self) -> Vec<Timer> {
        let sla = &self.sla;
        let first = sla.first_response_due_at.map(|due| Timer {
            target: SlaTarget::FirstResponse,
            due,
            done: sla.first_responded_at,
            alerted: sla.first_response_alerted,
        });
        let resolution = sla.resolution_due_at.map(|due| Timer {
            target: SlaTarget::Resolution,
            due,
            done: self.resolved_at,
            alerted: sla.resolution_alerted,
        });
        first.into_iter().chain(resolution).collect()
    }

    /// Where one target stands at `now`; `None` for a ticket without that target.
    pub fn target_status(&self, target: SlaTarget, now: Timestamp) -> Option<SlaStatus> {
        self.timers().into_iter().find(|t| t.target == target).map(|t| t.status(self.created_at, now))
    }

    /// Where the ticket stands at `now`: the worst of its targets; `None` without targets.
    pub fn sla_status(&self, now: Timestamp) -> Option<SlaStatus> {
        let statuses: Vec<SlaStatus> = self.timers().iter().map(|t| t.status(self.created_at, now)).collect();
        if statuses.is_empty() {
            return None;
        }
        let worst = [SlaStatus::Breached, SlaStatus::AtRisk, SlaStatus::OnTrack];
        Some(worst.into_iter().find(|s| statuses.contains(s)).unwrap_or(SlaStatus::Met))
    }

    /// The marks the store keeps (see [`SlaMarks`]); consistent with [`Ticket::sla_status`]:
    /// breached iff `breach_at <= now`, at risk iff `risk_at <= now < breach_at`, on track iff
    /// `now < risk_at`, met iff the ticket has targets and no `breach_at`.
    pub fn sla_marks(&self) -> SlaMarks {
        let timers = self.timers();
        let watched: Vec<(Timestamp, Timestamp)> = timers.iter().filter_map(|t| t.watch(self.created_at)).collect();
        let alert_at = timers.iter().filter(|t| !t.alerted && t.watch(self.created_at).is_some()).map(|t| t.due).min();
        SlaMarks {
            risk_at: watched.iter().map(|(risk, _)| *risk).min(),
            breach_at: watched.iter().map(|(_, breach)| first_breached_second(*breach)).min(),
            alert_at: alert_at.map(first_breached_second),
        }
    }

    /// The targets breached at `now` whose breach has not been announced yet.
    pub fn unalerted_breaches(&self, now: Timestamp) -> Vec<SlaTarget> {
        self.timers()
            .into_iter()
            .filter(|t| !t.alerted && t.status(self.created_at, now) == SlaStatus::Breached)
            .map(|t| t.target)
            .collect()
    }

    /// Marks the breach of `target` as announced.
    pub fn mark_alerted(&mut self, target: SlaTarget) {
        match target {
            SlaTarget::FirstResponse => self.sla.first_response_alerted = true,
            SlaTarget::Resolution => self.sla.resolution_alerted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EscalationStatus, Id, TicketStatus, TicketType};
    use chrono::{Duration, TimeZone};

    fn created() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 1, 29, 10, 0, 0).unwrap()
    }

    fn ticket(targets: Option<SlaTargets>) -> Ticket {
        Ticket {
            id: Id::from_stored("t1".into()),
            service_provider_id: Id::from_stored("p1".into()),
            customer_id: Id::from_stored("c1".into()),
            customer_name: "客户".into(),
            title: "标题".into(),
            content: "内容".into(),
            ticket_type: TicketType::Complaint,
            status: TicketStatus::Open,
            escalation_status: EscalationStatus::Normal,
            escalation_reason: None,
            escalated_at: None,
            assignee_id: None,
            assignee_name: None,
            resolution: None,
            resolved_at: None,
            created_at: created(),
            updated_at: created(),
            history: Vec::new(),
            version: 0,
            sla: targets.map(|t| TicketSla::starting(created(), t)).unwrap_or_default(),
        }
    }

    fn hours(first: i64, resolution: i64) -> Option<SlaTargets> {
        Some(SlaTargets { first_response: Duration::hours(first), resolution: Duration::hours(resolution) })
    }

    fn at(minutes: i64) -> Timestamp {
        created() + Duration::minutes(minutes)
    }

    /// The store's view: the status the marks give at `now`.
    fn by_marks(ticket: &Ticket, now: Timestamp) -> Option<SlaStatus> {
        let marks = ticket.sla_marks();
        ticket.sla.resolution_due_at?;
        Some(match (marks.risk_at, marks.breach_at) {
            (_, None) => SlaStatus::Met,
            (_, Some(breach)) if breach <= now => SlaStatus::Breached,
            (Some(risk), _) if risk <= now => SlaStatus::AtRisk,
            _ => SlaStatus::OnTrack,
        })
    }

    #[test]
    fn a_ticket_without_due_times_has_no_sla() {
        let old = ticket(None);
        assert_eq!(old.sla_status(at(10_000)), None);
        assert_eq!(old.sla_marks(), SlaMarks::default());
        assert!(old.unalerted_breaches(at(10_000)).is_empty());
    }

    #[test]
    fn an_unanswered_ticket_is_on_track_then_at_risk_in_the_last_fifth_then_breached_after_the_due_time() {
        let t = ticket(hours(10, 100));
        assert_eq!(t.sla_status(at(0)), Some(SlaStatus::OnTrack));
        assert_eq!(t.sla_status(at(7 * 60 + 59)), Some(SlaStatus::OnTrack));
        assert_eq!(t.sla_status(at(8 * 60)), Some(SlaStatus::AtRisk));
        assert_eq!(t.sla_status(at(10 * 60)), Some(SlaStatus::AtRisk), "due at the due time, not yet late");
        assert_eq!(t.sla_status(at(10 * 60 + 1)), Some(SlaStatus::Breached));
        assert_eq!(t.unalerted_breaches(at(10 * 60 + 1)), vec![SlaTarget::FirstResponse]);
    }

    #[test]
    fn a_reply_in_time_meets_the_first_response_and_resolving_in_time_makes_the_ticket_met() {
        let mut t = ticket(hours(10, 100));
        t.sla.first_responded_at = Some(at(60));
        assert_eq!(t.target_status(SlaTarget::FirstResponse, at(10_000)), Some(SlaStatus::Met));
        assert_eq!(t.sla_status(at(61)), Some(SlaStatus::OnTrack), "the resolution is still running");
        t.resolved_at = Some(at(120));
        assert_eq!(t.sla_status(at(100_000)), Some(SlaStatus::Met), "resolving stops the clock");
        assert_eq!(t.sla_marks().breach_at, None);
        assert_eq!(t.sla_marks().alert_at, None);
    }

    #[test]
    fn a_target_met_late_stays_breached_and_its_alert_is_owed_once() {
        let mut t = ticket(hours(1, 100));
        t.sla.first_responded_at = Some(at(90));
        assert_eq!(t.sla_status(at(91)), Some(SlaStatus::Breached));
        assert_eq!(t.unalerted_breaches(at(91)), vec![SlaTarget::FirstResponse]);
        t.mark_alerted(SlaTarget::FirstResponse);
        assert!(t.unalerted_breaches(at(91)).is_empty());
        assert_eq!(t.sla_marks().alert_at, Some(created() + Duration::hours(100) + Duration::seconds(1)));
    }

    #[test]
    fn the_marks_give_the_same_status_as_the_rules_at_every_minute() {
        let mut variants = vec![ticket(hours(2, 5))];
        let mut replied = ticket(hours(2, 5));
        replied.sla.first_responded_at = Some(at(30));
        variants.push(replied.clone());
        let mut late = ticket(hours(2, 5));
        late.sla.first_responded_at = Some(at(150));
        variants.push(late);
        let mut resolved = replied;
        resolved.resolved_at = Some(at(200));
        variants.push(resolved);
        for t in &variants {
            // From the last deed on: a ticket is never read before what it records.
            let deeds = [t.sla.first_responded_at, t.resolved_at];
            let from = deeds.iter().flatten().map(|done| (*done - created()).num_minutes()).max().unwrap_or(0);
            for minute in (from..400).step_by(7) {
                assert_eq!(by_marks(t, at(minute)), t.sla_status(at(minute)), "minute {minute} of {:?}", t.sla);
            }
        }
    }
}
