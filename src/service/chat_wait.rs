//! The `chat-wait-alerts` job: a customer who has waited longer than `CHAT_WAIT_ALERT_MINUTES`
//! for the provider's reply in a chat gets the provider one alert per waiting episode.
//!
//! A waiting episode is identified by when it began (the conversation's `waiting_since`: the
//! customer's first message since the provider's last reply), so the alert's id is derived from
//! the provider, the customer and that time, and the store writes a notification with a given id
//! at most once ([`NotificationStore::insert_notification_once`]): the notification is its own
//! marker, written and checked in one transaction, so two processes or a restarted one never send
//! it twice, and the next episode (after a reply, the customer writing again) gets its own.
//! The conversations are read per provider, longest waiting first, through the inbox's own list.
//! A provider who is not connected also gets a WeChat message (the alert template), queued in the
//! notification's transaction, so it too goes out once per episode.

use super::outbound::Outbound;
use super::realtime::Realtime;
use crate::domain::{
    format_time, Clock, Conversation, ConversationFilter, ConversationKey, Id, Notification, NotificationType,
    OutboxDraft, PageRequest, ReadStatus, Timestamp,
};
use crate::error::AppResult;
use crate::store::{ConversationStore, CustomerStore, NotificationStore, ProviderStore, SharedStore};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Conversations read per page.
const PAGE: i64 = 100;

#[derive(Clone)]
pub struct ChatWaitAlerts {
    providers: Arc<dyn ProviderStore>,
    conversations: Arc<dyn ConversationStore>,
    customers: Arc<dyn CustomerStore>,
    notifications: Arc<dyn NotificationStore>,
    realtime: Arc<Realtime>,
    outbound: Arc<Outbound>,
    clock: Clock,
    wait: chrono::Duration,
}

impl ChatWaitAlerts {
    pub fn new(
        store: &SharedStore,
        realtime: Arc<Realtime>,
        outbound: Arc<Outbound>,
        clock: Clock,
        wait_minutes: u64,
    ) -> ChatWaitAlerts {
        ChatWaitAlerts {
            providers: store.clone(),
            conversations: store.clone(),
            customers: store.clone(),
            notifications: store.clone(),
            realtime,
            outbound,
            clock,
            wait: chrono::Duration::minutes(i64::try_from(wait_minutes).unwrap_or(i64::MAX / 120_000)),
        }
    }

    /// Alerts every episode waiting longer than the setting and not alerted yet; answers how many.
    pub async fn run(&self) -> AppResult<u64> {
        let waited_since = self.clock.now() - self.wait;
        let mut alerts = 0;
        for provider in self.providers.all_providers().await? {
            alerts += self.provider_alerts(&provider.id, waited_since).await?;
        }
        Ok(alerts)
    }

    async fn provider_alerts(&self, provider: &Id, waited_since: Timestamp) -> AppResult<u64> {
        let (mut alerts, mut after) = (0, None::<ConversationKey>);
        let page = PageRequest::new(1, PAGE).map_err(|_| crate::error::AppError::internal("a valid page"))?;
        loop {
            let listed = self.conversations.conversations(provider, ConversationFilter::Waiting, after.as_ref(), page);
            let waiting: Vec<Conversation> = listed.await?.items;
            let due: Vec<&Conversation> =
                waiting.iter().filter(|c| c.waiting_since.is_some_and(|since| since <= waited_since)).collect();
            let ids: Vec<Id> = due.iter().map(|c| c.customer_id.clone()).collect();
            let customers =
                if ids.is_empty() { Vec::new() } else { self.customers.customers_by_ids(provider, &ids).await? };
            for conversation in &due {
                let name = customers.iter().find(|c| c.id == conversation.customer_id).map(|c| c.name.clone());
                let Some(alert) = wait_alert(conversation, name, self.clock.now()) else { continue };
                let outbox = self.wechat_message(&alert).await;
                if let Some(event) = self.notifications.insert_notification_once(&alert, &outbox).await? {
                    alerts += 1;
                    self.outbound.queued(outbox.len());
                    self.realtime.publish(vec![event]).await;
                }
            }
            // The list is longest waiting first: past the first one not yet due, none is.
            if due.len() < waiting.len() || (waiting.len() as i64) < PAGE {
                return Ok(alerts);
            }
            after = waiting.last().map(|c| ConversationKey::of(c, ConversationFilter::Waiting));
        }
    }

    /// The WeChat message of an alert, if one is to be sent, stamped with the real time: the
    /// outbox schedules by it, and the job's clock may be moved (tests, `run-jobs --at`).
    async fn wechat_message(&self, alert: &Notification) -> Vec<OutboxDraft> {
        let Some(customer) = &alert.related_customer_id else { return Vec::new() };
        let name = alert.related_customer_name.as_deref().unwrap_or(customer.as_str());
        let (providers, realtime) = (self.providers.as_ref(), self.realtime.as_ref());
        let provider = &alert.service_provider_id;
        let mut outbox =
            self.outbound.wechat_wait_alert(providers, realtime, provider, customer, name, alert.created_at).await;
        let queued_at = crate::domain::now();
        outbox.iter_mut().for_each(|draft| draft.created_at = queued_at);
        outbox
    }
}

/// The alert of the conversation's waiting episode (none if the customer is not waiting); its id
/// is derived from the episode.
pub fn wait_alert(conversation: &Conversation, customer_name: Option<String>, at: Timestamp) -> Option<Notification> {
    let since = conversation.waiting_since?;
    let episode = format!("{}|{}|{}", conversation.provider_id, conversation.customer_id, format_time(&since));
    let digest = Sha256::digest(episode);
    let id: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let minutes = (at - since).num_minutes().max(0);
    let who = customer_name.clone().unwrap_or_else(|| conversation.customer_id.to_string());
    Some(Notification {
        id: Id::from_stored(format!("mw{id}")),
        service_provider_id: conversation.provider_id.clone(),
        notification_type: NotificationType::CustomerAlert,
        title: "客户等待回复".to_owned(),
        content: format!("客户{who}已等待{minutes}分钟，尚未收到回复"),
        related_customer_id: Some(conversation.customer_id.clone()),
        related_customer_name: customer_name,
        related_ticket_id: None,
        read_status: ReadStatus::Unread,
        created_at: at,
        read_at: None,
    })
}
