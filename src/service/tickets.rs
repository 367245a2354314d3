//! Tickets (spec 3.3): the lifecycle and its history.
//!
//! | action | allowed when | status after | history entry |
//! | --- | --- | --- | --- |
//! | create | customer is the provider's | open | `create` |
//! | reply | always | processing (a resolved ticket is reopened: resolvedAt and resolution cleared); the first sets firstRespondedAt | `reopen` if it was resolved, then `reply` |
//! | resolve | not resolved (else CONFLICT) | resolved, resolvedAt and resolution recorded | `resolve` |
//! | escalate | not resolved and not yet escalated (else CONFLICT) | unchanged, escalationStatus escalated | `escalate` |
//!
//! A change made with an idempotency key claims the key in its own transaction (kind
//! `ticket_<action>`, subject the history entry it appends last); a retry finds the claim and
//! answers the ticket with that entry instead of changing it again.
//!
//! Every change is written together with a `ticket_update` notification for the provider, and with
//! the deliveries to the PC customer-service system it causes (a creation, a reply, an escalation,
//! a resolution, a chat escalated into a ticket; see [`super::outbound`]). Its times come from the
//! server's [`Clock`], and a new ticket is given the due times of its type's service-level targets
//! ([`super::sla`]). Changes to one ticket made through this service queue behind each other, and
//! each is compare-and-set on the ticket's version (retried if another writer won), so concurrent
//! replies all land.

use super::canned_replies::{CannedReplyService, Compose};
use super::outbound::Outbound;
use super::realtime::Realtime;
use super::{acting_provider, provider_customer, Session};
use crate::config::SlaSettings;
use crate::domain::{
    new_id, Clock, EscalationStatus, HistoryAction, HistoryEntry, Id, Notification, NotificationType, OutboxDraft,
    Page, PageRequest, ReadStatus, ServiceProvider, Text, TextLimit, Ticket, TicketSla, TicketStatus, TicketType,
    Timestamp,
};
use crate::error::{AppError, AppResult};
use crate::store::{
    CustomerStore, IdempotencyStore, KeyClaim, ProviderStore, SharedStore, TicketChange, TicketFilter, TicketStore,
    Written,
};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use tokio::sync::Mutex;

/// How often a change is recomputed when another writer changes the same ticket in between.
const MAX_CHANGE_ATTEMPTS: usize = 8;
/// Locks that queue the changes to one ticket (a ticket's lock is picked by its id's hash).
const CHANGE_LOCKS: usize = 64;

/// What a new ticket holds.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub customer_id: Id,
    pub title: Text,
    pub content: Text,
    pub ticket_type: TicketType,
    /// Set when the ticket is born escalated (a chat escalation), with the reason.
    pub escalation_reason: Option<Text>,
    /// A client-chosen key: a retried request with the same key answers the first ticket.
    pub idempotency_key: Option<Id>,
}

/// The outcome of an escalation: the ticket after it, and whether the notification of the PC
/// customer-service system was queued in the outbox with it (in the same transaction, so it will be
/// delivered at least once or end as a dead letter; false when no PC system is configured).
#[derive(Debug, Clone)]
pub struct Escalation {
    pub ticket: Ticket,
    pub notification_queued: bool,
}

/// The outcome of a reply: the ticket after it, and the history entry that holds the reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub ticket: Ticket,
    pub entry: HistoryEntry,
}

#[derive(Clone)]
pub struct TicketService {
    customers: Arc<dyn CustomerStore>,
    providers: Arc<dyn ProviderStore>,
    canned_replies: CannedReplyService,
    tickets: Arc<dyn TicketStore>,
    idempotency: Arc<dyn IdempotencyStore>,
    realtime: Arc<Realtime>,
    outbound: Arc<Outbound>,
    /// Without them, many concurrent changes to one ticket could each lose the compare-and-set
    /// more often than [`MAX_CHANGE_ATTEMPTS`] allows and fail with CONFLICT.
    change_locks: Arc<[Mutex<()>]>,
    /// The time of every change, and the service-level targets a new ticket is given.
    clock: Clock,
    sla: SlaSettings,
}

impl TicketService {
    pub fn new(
        store: &SharedStore,
        canned_replies: CannedReplyService,
        realtime: Arc<Realtime>,
        outbound: Arc<Outbound>,
    ) -> TicketService {
        let change_locks = (0..CHANGE_LOCKS).map(|_| Mutex::new(())).collect();
        TicketService {
            customers: store.clone(),
            providers: store.clone(),
            canned_replies,
            tickets: store.clone(),
            idempotency: store.clone(),
            realtime,
            outbound,
            change_locks,
            clock: Clock::system(),
            sla: SlaSettings::default(),
        }
    }

    /// The clock of the ticket times (the server's; tests move it).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// This service with the server's clock and service-level targets.
    pub fn with_timers(self, clock: Clock, sla: SlaSettings) -> TicketService {
        TicketService { clock, sla, ..self }
    }

    pub async fn list(&self, session: &Session, filter: &TicketFilter, page: PageRequest) -> AppResult<Page<Ticket>> {
        if let Some(customer) = &filter.customer_id {
            provider_customer(self.customers.as_ref(), session, customer).await?;
        }
        self.tickets.list_tickets(&session.provider_id, filter, page).await
    }

    pub async fn get(&self, session: &Session, id: &Id) -> AppResult<Ticket> {
        self.tickets.ticket(&session.provider_id, id).await?.ok_or(AppError::NotFound("工单"))
    }

    /// Opens a ticket for one of the provider's customers. A ticket born escalated is a chat
    /// escalated into a ticket, which the PC customer-service system hears about.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, customer = %new.customer_id))]
    pub async fn create(&self, session: &Session, new: NewTicket) -> AppResult<Ticket> {
        self.create_with(session, new, |drafts| drafts).await
    }

    /// [`Self::create`], with `on_deliveries` adding to the PC system's deliveries what the
    /// ticket carries beside its text (its attachments).
    pub async fn create_with(
        &self,
        session: &Session,
        new: NewTicket,
        on_deliveries: impl FnOnce(Vec<OutboxDraft>) -> Vec<OutboxDraft>,
    ) -> AppResult<Ticket> {
        let customer_name = provider_customer(self.customers.as_ref(), session, &new.customer_id).await?.name;
        let provider = acting_provider(self.providers.as_ref(), session).await?;
        let at = self.clock.now();
        let mut history = vec![entry(&provider, HistoryAction::Create, format!("{}创建了工单", provider.name), at)];
        let escalated = new.escalation_reason.is_some();
        if let Some(reason) = &new.escalation_reason {
            history.push(entry(&provider, HistoryAction::Escalate, format!("工单已升级：{}", reason.as_str()), at));
        }
        let ticket = Ticket {
            id: new_id("t"),
            service_provider_id: session.provider_id.clone(),
            customer_id: new.customer_id,
            customer_name,
            title: new.title.into_string(),
            content: new.content.into_string(),
            ticket_type: new.ticket_type,
            status: TicketStatus::Open,
            escalation_status: if escalated { EscalationStatus::Escalated } else { EscalationStatus::Normal },
            escalation_reason: new.escalation_reason.map(Text::into_string),
            escalated_at: escalated.then_some(at),
            assignee_id: None,
            assignee_name: None,
            resolution: None,
            resolved_at: None,
            created_at: at,
            updated_at: at,
            history,
            version: 0,
            sla: TicketSla::starting(at, super::sla::targets(&self.sla, new.ticket_type)),
        };
        let headline = if escalated { "已升级" } else { "已创建" };
        let notification = ticket_notification(
            &ticket,
            "新工单",
            format!("客户{}的工单\"{}\"{}", ticket.customer_name, ticket.title, headline),
        );
        let outbox = on_deliveries(if escalated {
            self.outbound.chat_escalated(&ticket)
        } else {
            self.outbound.ticket_created(&ticket)
        });
        match self.tickets.insert_ticket(&ticket, &notification, new.idempotency_key.as_ref(), &outbox).await? {
            Written::Created(ticket, events) => {
                self.outbound.queued(outbox.len());
                self.realtime.publish(events).await;
                Ok(ticket)
            }
            Written::Replayed(first) => Ok(first),
        }
    }

    /// Adds a reply: the text given, or one of the provider's canned replies filled for the
    /// ticket's customer. The first reply moves an open ticket to processing; a reply to a resolved
    /// ticket reopens it, since the conversation evidently is not over.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, ticket = %id))]
    pub async fn reply(&self, session: &Session, id: &Id, content: Compose, key: Option<Id>) -> AppResult<Reply> {
        self.reply_with(session, id, content, key, |drafts| drafts).await
    }

    /// [`Self::reply`], with `on_deliveries` adding to the PC system's deliveries what the reply
    /// carries beside its text (its attachments).
    pub async fn reply_with(
        &self,
        session: &Session,
        id: &Id,
        content: Compose,
        key: Option<Id>,
        on_deliveries: impl Fn(Vec<OutboxDraft>) -> Vec<OutboxDraft>,
    ) -> AppResult<Reply> {
        let provider = acting_provider(self.providers.as_ref(), session).await?;
        let content = match content {
            Compose::Text(text) => text,
            canned => {
                let ticket = self.get(session, id).await?;
                let customer = provider_customer(self.customers.as_ref(), session, &ticket.customer_id).await?;
                self.canned_replies.compose(session, canned, &customer, &provider, TextLimit::REPLY_CONTENT).await?
            }
        };
        let keyed = key.map(|key| (key, HistoryAction::Reply));
        let replied = |t: &Ticket| on_deliveries(self.outbound.ticket_replied(t, &provider, content.as_str()));
        let (ticket, appended, _) = self
            .change(session, id, keyed, replied, |ticket, at| {
                let mut next = ticket.clone();
                let mut appended = Vec::new();
                if ticket.status == TicketStatus::Resolved {
                    appended.push(entry(&provider, HistoryAction::Reopen, "工单已重新打开".to_owned(), at));
                    next.resolved_at = None;
                    next.resolution = None;
                }
                next.status = TicketStatus::Processing;
                next.sla.first_responded_at.get_or_insert(at);
                appended.push(entry(&provider, HistoryAction::Reply, content.as_str().to_owned(), at));
                let message = match ticket.status {
                    TicketStatus::Open => "状态已更新为处理中".to_owned(),
                    TicketStatus::Processing => "有新的回复".to_owned(),
                    TicketStatus::Resolved => "已重新打开，状态已更新为处理中".to_owned(),
                };
                Ok((next, appended, "工单状态更新", message))
            })
            .await?;
        let entry = appended.last().cloned().ok_or_else(|| AppError::internal("a reply appends an entry"))?;
        Ok(Reply { ticket, entry })
    }

    /// Marks a ticket resolved, with an optional explanation.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, ticket = %id))]
    pub async fn resolve(
        &self,
        session: &Session,
        id: &Id,
        resolution: Option<Text>,
        key: Option<Id>,
    ) -> AppResult<Ticket> {
        let provider = acting_provider(self.providers.as_ref(), session).await?;
        let resolution = resolution.map(Text::into_string);
        let outbound = &self.outbound;
        let (ticket, _, _) = self
            .change(
                session,
                id,
                key.map(|key| (key, HistoryAction::Resolve)),
                |t| outbound.ticket_resolved(t),
                |ticket, at| {
                    if ticket.status == TicketStatus::Resolved {
                        return Err(AppError::Conflict("工单已是已解决状态，无需重复标记".to_owned()));
                    }
                    let mut next = ticket.clone();
                    next.status = TicketStatus::Resolved;
                    next.resolved_at = Some(at);
                    next.sla.first_responded_at.get_or_insert(at);
                    next.resolution = resolution.clone();
                    let content = resolution.clone().unwrap_or_else(|| "工单已标记为已解决".to_owned());
                    let appended = vec![entry(&provider, HistoryAction::Resolve, content, at)];
                    Ok((next, appended, "工单状态更新", "状态已更新为已解决".to_owned()))
                },
            )
            .await?;
        Ok(ticket)
    }

    /// Hands a ticket to a higher level of support, and tells the PC customer-service system.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, ticket = %id))]
    pub async fn escalate(&self, session: &Session, id: &Id, reason: Text, key: Option<Id>) -> AppResult<Escalation> {
        let provider = acting_provider(self.providers.as_ref(), session).await?;
        let outbound = &self.outbound;
        let (ticket, _, queued) = self
            .change(
                session,
                id,
                key.map(|key| (key, HistoryAction::Escalate)),
                |t| outbound.ticket_escalated(t),
                |ticket, at| {
                    if ticket.status == TicketStatus::Resolved {
                        return Err(AppError::Conflict(
                            "已解决的工单不能升级，如问题仍存在请先回复以重新打开".to_owned(),
                        ));
                    }
                    if ticket.escalation_status == EscalationStatus::Escalated {
                        return Err(AppError::Conflict("工单已升级，无需重复升级".to_owned()));
                    }
                    let mut next = ticket.clone();
                    next.escalation_status = EscalationStatus::Escalated;
                    next.escalation_reason = Some(reason.as_str().to_owned());
                    next.escalated_at = Some(at);
                    let content = format!("工单已升级：{}", reason.as_str());
                    let appended = vec![entry(&provider, HistoryAction::Escalate, content, at)];
                    Ok((next, appended, "工单已升级", "已升级到更高层级的支持".to_owned()))
                },
            )
            .await?;
        Ok(Escalation { ticket, notification_queued: queued > 0 })
    }

    /// Loads the ticket, lets `decide` compute the change and `deliveries` what it sends out, and
    /// stores it if nobody changed the ticket in between; otherwise starts over with the fresh
    /// ticket. Answers the ticket after the change, the appended history and how many deliveries
    /// were queued. With an idempotency key (and the action it is claimed for) that a change
    /// claimed before, changes nothing and answers [`Self::replayed_change`].
    pub(super) async fn change<D, F>(
        &self,
        session: &Session,
        id: &Id,
        keyed: Option<(Id, HistoryAction)>,
        deliveries: D,
        decide: F,
    ) -> AppResult<(Ticket, Vec<HistoryEntry>, usize)>
    where
        D: Fn(&Ticket) -> Vec<OutboxDraft>,
        F: Fn(&Ticket, Timestamp) -> AppResult<(Ticket, Vec<HistoryEntry>, &'static str, String)>,
    {
        let _queued = self.change_lock(id).lock().await;
        let kind = keyed.as_ref().map(|(_, action)| format!("ticket_{}", action.as_str()));
        for _ in 0..MAX_CHANGE_ATTEMPTS {
            // Checked before deciding, since a retried change would often be refused (resolving a
            // resolved ticket); checked again in the store's transaction, for concurrent retries.
            if let (Some((key, _)), Some(kind)) = (&keyed, &kind) {
                if let Some(claim) = self.idempotency.key_claim(&session.provider_id, key).await? {
                    return self.replayed_change(session, id, kind, &claim, &deliveries).await;
                }
            }
            let current = self.get(session, id).await?;
            let at = self.clock.now();
            let (mut next, appended, title, what) = decide(&current, at)?;
            next.updated_at = at;
            let notification = ticket_notification(
                &next,
                title,
                format!("客户{}的工单\"{}\"{}", next.customer_name, next.title, what),
            );
            let outbox = deliveries(&next);
            let claim = match (&keyed, kind.clone(), appended.last()) {
                (Some((key, _)), Some(kind), Some(last)) => {
                    Some((key.clone(), KeyClaim { kind, subject: last.id.clone() }))
                }
                _ => None,
            };
            let change = TicketChange { ticket: next, appended_history: appended, notification, outbox, claim };
            if let Some(events) = self.tickets.apply_ticket_change(&change).await? {
                self.outbound.queued(change.outbox.len());
                self.realtime.publish(events).await;
                let TicketChange { mut ticket, appended_history, outbox, .. } = change;
                ticket.version += 1;
                ticket.history.extend(appended_history.iter().cloned());
                return Ok((ticket, appended_history, outbox.len()));
            }
        }
        Err(AppError::Conflict("工单正在被同时修改，请稍后重试".to_owned()))
    }

    /// A change answered again for its idempotency key: the ticket as it is now, with the history
    /// entry the first change appended last, and the deliveries that change queued. A key claimed
    /// by another kind of change, or for another ticket, is a CONFLICT.
    async fn replayed_change<D>(
        &self,
        session: &Session,
        id: &Id,
        kind: &str,
        claim: &KeyClaim,
        deliveries: D,
    ) -> AppResult<(Ticket, Vec<HistoryEntry>, usize)>
    where
        D: Fn(&Ticket) -> Vec<OutboxDraft>,
    {
        let ticket = self.get(session, id).await?;
        let entry = ticket.history.iter().find(|entry| entry.id == claim.subject).cloned();
        match entry {
            Some(entry) if claim.kind == kind => {
                let queued = deliveries(&ticket).len();
                Ok((ticket, vec![entry], queued))
            }
            _ => Err(crate::store::key_used_elsewhere()),
        }
    }

    fn change_lock(&self, ticket: &Id) -> &Mutex<()> {
        let mut hasher = DefaultHasher::new();
        ticket.hash(&mut hasher);
        &self.change_locks[(hasher.finish() % self.change_locks.len() as u64) as usize]
    }
}

fn entry(provider: &ServiceProvider, action: HistoryAction, content: String, at: Timestamp) -> HistoryEntry {
    HistoryEntry {
        id: new_id("h"),
        operator_id: provider.id.to_string(),
        operator_name: provider.name.clone(),
        action: action.as_str().to_owned(),
        content,
        timestamp: at,
    }
}

fn ticket_notification(ticket: &Ticket, title: &str, content: String) -> Notification {
    Notification {
        id: new_id("m"),
        service_provider_id: ticket.service_provider_id.clone(),
        notification_type: NotificationType::TicketUpdate,
        title: title.to_owned(),
        content,
        related_customer_id: Some(ticket.customer_id.clone()),
        related_customer_name: Some(ticket.customer_name.clone()),
        related_ticket_id: Some(ticket.id.clone()),
        read_status: ReadStatus::Unread,
        created_at: ticket.updated_at,
        read_at: None,
    }
}
