//! What goes out to the other systems, decided here and queued in the outbox with the write that
//! causes it (see `crate::domain::outbox`):
//!
//! | event type | when | to |
//! | --- | --- | --- |
//! | `chat.message` | a provider replies in a chat (spec 5.2.6 step 9) | the PC customer-service system |
//! | `ticket.escalated` | a ticket is escalated (5.2.5 step 6) | the PC customer-service system |
//! | `chat.escalated` | a chat is escalated into a ticket (5.2.6 step 16) | the PC customer-service system |
//! | `ticket.resolved` | a ticket is resolved | the PC customer-service system |
//! | `chat.typing` | the provider is typing to a customer (`typing`), at most once a second | the PC customer-service system, within 10 s or never |
//! | `wechat.chat_message` | a customer writes while the provider is not connected | the provider's WeChat |
//! | `wechat.customer_alert` | a customer becomes expiring or expired, the provider not connected | the provider's WeChat |
//! | `ticket.created` | a ticket is created (not born escalated: that is `chat.escalated`) | the PC customer-service system |
//! | `ticket.replied` | the provider replies to a ticket | the PC customer-service system |
//! | `chat.read` | the provider reads a conversation (the inbox's mark-read) | the PC customer-service system |
//! | `ticket.sla_breached` | a ticket's service-level target is breached (the `sla-breaches` job), once per ticket and target | the PC customer-service system |
//! | `wechat.sla_alert` | the same breach, the provider not connected (the alert template) | the provider's WeChat |
//! | `wechat.wait_alert` | a customer has waited past `CHAT_WAIT_ALERT_MINUTES` for a reply in a chat (the `chat-wait-alerts` job), once per waiting episode, the provider not connected (the alert template) | the provider's WeChat |
//!
//! Nothing is queued for a system that is not configured (`CS_WEBHOOK_URL`; `WECHAT_*` with the
//! template of that kind), nor a WeChat message for a provider who has not bound the mini-program
//! user's openid (`bindWechat`).

use crate::config::WechatSettings;
use crate::domain::{
    format_time, new_id, ChatMessage, Customer, CustomerStatus, Id, OutboxDraft, OutboxTarget, ServiceProvider,
    SlaTarget, Ticket, Timestamp,
};
use crate::store::ProviderStore;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::realtime::Realtime;

/// The PC customer-service system's event types.
pub const CHAT_MESSAGE: &str = "chat.message";
pub const TICKET_ESCALATED: &str = "ticket.escalated";
pub const CHAT_ESCALATED: &str = "chat.escalated";
pub const TICKET_RESOLVED: &str = "ticket.resolved";
pub const TICKET_SLA_BREACHED: &str = "ticket.sla_breached";
pub const TICKET_CREATED: &str = "ticket.created";
pub const TICKET_REPLIED: &str = "ticket.replied";
pub const CHAT_READ: &str = "chat.read";
/// Ephemeral: queued on its own with an expiry, never kept (see `super::typing`).
pub const CHAT_TYPING: &str = "chat.typing";
/// The WeChat message kinds.
pub const WECHAT_CHAT_MESSAGE: &str = "wechat.chat_message";
pub const WECHAT_CUSTOMER_ALERT: &str = "wechat.customer_alert";
pub const WECHAT_SLA_ALERT: &str = "wechat.sla_alert";
pub const WECHAT_WAIT_ALERT: &str = "wechat.wait_alert";

/// The longest text WeChat takes in a `thing` field of a subscribe message.
const WECHAT_THING_CHARS: usize = 20;

/// The outbound policy, and the bell that wakes the dispatcher after a write queued something.
pub struct Outbound {
    customer_service: bool,
    wechat: Option<WechatSettings>,
    bell: Notify,
}

impl Outbound {
    /// `customer_service`: whether `CS_WEBHOOK_URL` is set.
    pub fn new(customer_service: bool, wechat: Option<WechatSettings>) -> Outbound {
        Outbound { customer_service, wechat, bell: Notify::new() }
    }

    /// Whether events go to the PC customer-service system.
    pub fn to_customer_service(&self) -> bool {
        self.customer_service
    }

    /// Whether WeChat subscribe messages are sent at all (bindWechat works).
    pub fn wechat_enabled(&self) -> bool {
        self.wechat.is_some()
    }

    /// Wakes the dispatcher: call after a write that queued deliveries has committed.
    pub fn queued(&self, drafts: usize) {
        if drafts > 0 {
            self.bell.notify_one();
        }
    }

    /// Completes when [`Outbound::queued`] rang (or had rung since the last call).
    pub async fn woken(&self) {
        self.bell.notified().await;
    }

    fn customer_service_draft(
        &self,
        event_type: &str,
        provider: &Id,
        customer: &Id,
        payload: Value,
        at: Timestamp,
    ) -> Vec<OutboxDraft> {
        if !self.customer_service {
            return Vec::new();
        }
        vec![OutboxDraft {
            id: new_id("d"),
            target: OutboxTarget::CustomerService,
            event_type: event_type.to_owned(),
            provider_id: provider.clone(),
            customer_id: Some(customer.clone()),
            ordering_key: OutboxDraft::conversation_key(provider, customer),
            payload,
            created_at: at,
        }]
    }

    /// A provider's chat reply, synced to the PC side (5.2.6 step 9).
    pub fn chat_reply(&self, message: &ChatMessage) -> Vec<OutboxDraft> {
        let payload = json!({
            "messageId": message.id.as_str(),
            "customerId": message.customer_id.as_str(),
            "customerName": message.customer_name,
            "serviceProviderId": message.service_provider_id.as_str(),
            "serviceProviderName": message.service_provider_name,
            "senderType": message.sender_type.as_str(),
            "content": message.content,
            "timestamp": format_time(&message.timestamp),
        });
        let (provider, customer) = (&message.service_provider_id, &message.customer_id);
        self.customer_service_draft(CHAT_MESSAGE, provider, customer, payload, message.timestamp)
    }

    /// The provider is typing to a customer, if the PC customer-service system is to hear it:
    /// in an ordering key of its own, so it never waits behind the conversation's messages.
    pub fn chat_typing(&self, provider: &Id, customer: &Id, at: Timestamp) -> Option<OutboxDraft> {
        let payload = json!({
            "customerId": customer.as_str(),
            "serviceProviderId": provider.as_str(),
            "at": format_time(&at),
        });
        let mut draft = self.customer_service_draft(CHAT_TYPING, provider, customer, payload, at).pop()?;
        draft.ordering_key = OutboxDraft::signal_key(provider, customer);
        Some(draft)
    }

    /// A ticket escalated (5.2.5 step 6).
    pub fn ticket_escalated(&self, ticket: &Ticket) -> Vec<OutboxDraft> {
        self.ticket_event(TICKET_ESCALATED, ticket)
    }

    /// A chat escalated into a ticket (5.2.6 step 16).
    pub fn chat_escalated(&self, ticket: &Ticket) -> Vec<OutboxDraft> {
        self.ticket_event(CHAT_ESCALATED, ticket)
    }

    /// A ticket resolved.
    pub fn ticket_resolved(&self, ticket: &Ticket) -> Vec<OutboxDraft> {
        self.ticket_event(TICKET_RESOLVED, ticket)
    }

    /// A ticket created in the app (one born escalated goes out as `chat.escalated` instead).
    pub fn ticket_created(&self, ticket: &Ticket) -> Vec<OutboxDraft> {
        self.ticket_event(TICKET_CREATED, ticket)
    }

    /// The provider's reply to a ticket: the ticket after it, and the reply.
    pub fn ticket_replied(&self, ticket: &Ticket, provider: &ServiceProvider, content: &str) -> Vec<OutboxDraft> {
        let mut drafts = self.ticket_event(TICKET_REPLIED, ticket);
        for draft in &mut drafts {
            draft.payload["reply"] = json!({
                "content": content,
                "operatorId": provider.id.as_str(),
                "operatorName": provider.name,
                "timestamp": format_time(&ticket.updated_at),
            });
        }
        drafts
    }

    /// The provider read these messages of a customer.
    pub fn chat_read(&self, provider: &Id, customer: &Id, read: &[ChatMessage]) -> Option<OutboxDraft> {
        let at = crate::domain::now();
        let payload = json!({
            "customerId": customer.as_str(),
            "serviceProviderId": provider.as_str(),
            "messageIds": read.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            "readAt": format_time(&at),
        });
        self.customer_service_draft(CHAT_READ, provider, customer, payload, at).pop()
    }

    /// A ticket's service-level target breached: the ticket, which target, when it was due and
    /// when the breach was seen.
    pub fn ticket_sla_breached(&self, ticket: &Ticket, target: SlaTarget, at: Timestamp) -> Vec<OutboxDraft> {
        let due = match target {
            SlaTarget::FirstResponse => ticket.sla.first_response_due_at,
            SlaTarget::Resolution => ticket.sla.resolution_due_at,
        };
        let mut drafts = self.ticket_event(TICKET_SLA_BREACHED, ticket);
        for draft in &mut drafts {
            draft.payload["target"] = json!(target.as_str());
            draft.payload["dueAt"] = json!(due.as_ref().map(format_time));
            draft.payload["breachedAt"] = json!(format_time(&at));
        }
        drafts
    }

    /// A subscribe message telling the provider a ticket's target was breached, if one is to be
    /// sent (the alert template: the customer, what was breached, the due date).
    pub async fn wechat_sla_alert(
        &self,
        providers: &dyn ProviderStore,
        realtime: &Realtime,
        ticket: &Ticket,
        target: SlaTarget,
        at: Timestamp,
    ) -> Vec<OutboxDraft> {
        let phrase = if target == SlaTarget::FirstResponse { "响应超时" } else { "解决超时" };
        let about = Alerted { customer: &ticket.customer_id, name: &ticket.customer_name, phrase, date: at };
        self.wechat_alert_message(providers, realtime, WECHAT_SLA_ALERT, &ticket.service_provider_id, about, at).await
    }

    /// A subscribe message telling the provider a customer has waited too long for a reply in a
    /// chat, if one is to be sent (the alert template: the customer, 等待回复, the day).
    pub async fn wechat_wait_alert(
        &self,
        providers: &dyn ProviderStore,
        realtime: &Realtime,
        provider: &Id,
        customer: &Id,
        customer_name: &str,
        at: Timestamp,
    ) -> Vec<OutboxDraft> {
        let about = Alerted { customer, name: customer_name, phrase: "等待回复", date: at };
        self.wechat_alert_message(providers, realtime, WECHAT_WAIT_ALERT, provider, about, at).await
    }

    /// A subscribe message of the alert template (`thing1` the customer's name, `phrase2` what
    /// happened, `date3` a day), if one is to be sent.
    async fn wechat_alert_message(
        &self,
        providers: &dyn ProviderStore,
        realtime: &Realtime,
        kind: &str,
        provider: &Id,
        about: Alerted<'_>,
        at: Timestamp,
    ) -> Vec<OutboxDraft> {
        let Some((openid, template, settings)) =
            self.wechat_recipient(providers, realtime, provider, |s| s.alert_template.as_ref()).await
        else {
            return Vec::new();
        };
        let data = json!({
            "thing1": { "value": thing(about.name) },
            "phrase2": { "value": about.phrase },
            "date3": { "value": about.date.format("%Y-%m-%d").to_string() },
        });
        vec![wechat_draft(kind, settings, provider, about.customer, openid, template, data, at)]
    }

    fn ticket_event(&self, event_type: &str, t: &Ticket) -> Vec<OutboxDraft> {
        let payload = json!({
            "ticketId": t.id.as_str(),
            "customerId": t.customer_id.as_str(),
            "customerName": t.customer_name,
            "serviceProviderId": t.service_provider_id.as_str(),
            "title": t.title,
            "content": t.content,
            "type": t.ticket_type.as_str(),
            "status": t.status.as_str(),
            "escalationStatus": t.escalation_status.as_str(),
            "escalationReason": t.escalation_reason,
            "escalatedAt": t.escalated_at.as_ref().map(format_time),
            "resolution": t.resolution,
            "resolvedAt": t.resolved_at.as_ref().map(format_time),
            "createdAt": format_time(&t.created_at),
            "updatedAt": format_time(&t.updated_at),
        });
        self.customer_service_draft(event_type, &t.service_provider_id, &t.customer_id, payload, t.updated_at)
    }

    /// The openid to send the provider a WeChat message of the kind `template` picks, if one is
    /// to be sent: WeChat configured with that template, the provider not connected to this
    /// process (no live subscription), and the mini-program user's openid bound.
    async fn wechat_recipient(
        &self,
        providers: &dyn ProviderStore,
        realtime: &Realtime,
        provider: &Id,
        template: impl Fn(&WechatSettings) -> Option<&String>,
    ) -> Option<(String, String, &WechatSettings)> {
        let settings = self.wechat.as_ref()?;
        let template = template(settings)?.clone();
        if realtime.is_watched(provider) {
            return None;
        }
        match providers.wechat_openid(provider).await {
            Ok(openid) => openid.map(|openid| (openid, template, settings)),
            Err(error) => {
                // The write goes ahead; only the push is skipped (the provider sees the message in
                // the app anyway).
                tracing::warn!(%error, "no WeChat push: the openid could not be read");
                None
            }
        }
    }

    /// A subscribe message telling the provider a customer wrote, if one is to be sent.
    pub async fn wechat_chat(
        &self,
        providers: &dyn ProviderStore,
        realtime: &Realtime,
        message: &ChatMessage,
    ) -> Vec<OutboxDraft> {
        let provider = &message.service_provider_id;
        let Some((openid, template, settings)) =
            self.wechat_recipient(providers, realtime, provider, |s| s.chat_template.as_ref()).await
        else {
            return Vec::new();
        };
        let data = json!({
            "thing1": { "value": thing(&message.customer_name) },
            "thing2": { "value": thing(&message.content) },
            "time3": { "value": wechat_time(&message.timestamp) },
        });
        vec![wechat_draft(
            WECHAT_CHAT_MESSAGE,
            settings,
            provider,
            &message.customer_id,
            openid,
            template,
            data,
            message.timestamp,
        )]
    }

    /// A subscribe message alerting the provider to a customer's status, if one is to be sent.
    pub async fn wechat_alert(
        &self,
        providers: &dyn ProviderStore,
        realtime: &Realtime,
        customer: &Customer,
        status: CustomerStatus,
        at: Timestamp,
    ) -> Vec<OutboxDraft> {
        let phrase = if status == CustomerStatus::Expired { "已到期" } else { "即将到期" };
        let about = Alerted { customer: &customer.id, name: &customer.name, phrase, date: customer.expiry_date };
        let provider = &customer.service_provider_id;
        self.wechat_alert_message(providers, realtime, WECHAT_CUSTOMER_ALERT, provider, about, at).await
    }
}

/// What an alert-template message says: about which customer, what happened, and the day.
struct Alerted<'a> {
    customer: &'a Id,
    name: &'a str,
    phrase: &'a str,
    date: Timestamp,
}

#[allow(clippy::too_many_arguments)]
fn wechat_draft(
    event_type: &str,
    settings: &WechatSettings,
    provider: &Id,
    customer: &Id,
    openid: String,
    template: String,
    data: Value,
    at: Timestamp,
) -> OutboxDraft {
    OutboxDraft {
        id: new_id("d"),
        target: OutboxTarget::Wechat,
        event_type: event_type.to_owned(),
        provider_id: provider.clone(),
        customer_id: Some(customer.clone()),
        ordering_key: OutboxDraft::wechat_key(provider),
        payload: json!({
            "touser": openid,
            "template_id": template,
            "page": format!("{}?customerId={customer}", settings.page),
            "data": data,
            "miniprogram_state": settings.miniprogram_state,
            "lang": "zh_CN",
        }),
        created_at: at,
    }
}

/// Text cut to what a `thing` field of a subscribe message takes.
fn thing(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= WECHAT_THING_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(WECHAT_THING_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// A time as a `time` field of a subscribe message shows it, in China Standard Time.
fn wechat_time(time: &Timestamp) -> String {
    let china = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    time.with_timezone(&china).format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_fields_fit_their_limits() {
        assert_eq!(thing("库存数据不同步"), "库存数据不同步");
        let long = thing(&"很".repeat(30));
        assert_eq!(long.chars().count(), WECHAT_THING_CHARS);
        assert!(long.ends_with('…'));
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-29T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(wechat_time(&at), "2026-01-29 18:00");
    }
}
