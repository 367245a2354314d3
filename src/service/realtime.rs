//! Live events for subscriptions: published after the write that logged them, followed by
//! subscribers with no gap and no duplicate, resumed from a cursor after a disconnect.
//!
//! Every write a provider may watch is logged with a gapless per-provider cursor (see
//! [`crate::domain::EventRecord`]) before it is published here. A subscriber remembers the last
//! cursor it has passed and expects the next one:
//! - a live event with that cursor is delivered (if the subscription wants it);
//! - one it has already passed is a duplicate, dropped (the seam between replay and live);
//! - one further on means something was missed (published out of order, or this subscriber fell
//!   behind its bounded buffer): the subscriber reads the log from its cursor, then goes on live.
//!
//! A subscription that passes `after` first replays the log after that cursor, if the cursor is
//! within the [`ReplayWindow`] (`EVENT_REPLAY_MAX_EVENTS` behind the newest, none of what it missed
//! older than `EVENT_REPLAY_MAX_AGE_HOURS`, none of it deleted from the log): an older cursor is
//! refused (BAD_USER_INPUT on `after`, telling the client to reload), so no subscription reads an
//! unbounded stretch of the log. Events from other
//! processes arrive through a [`RemoteBus`] (Redis when configured), which delivers records only;
//! this process reads what they name from the store once and hands it to all its subscribers.

pub use super::ports::RemoteBus;
use super::Session;
use crate::config::ReplayWindow;
use crate::domain::{ChatMessage, Cursor, EventKind, EventRecord, Id, Notification, Ticket};
use crate::error::{AppError, AppResult};
use crate::metrics::{self, GaugeGuard};
use crate::store::{ChatStore, EventStore, NotificationStore, SharedStore, TicketStore};
use futures_util::stream::{self, Stream, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// How many events a subscriber may fall behind the live stream before it reads from the log
/// instead; also how many log entries one catch-up read fetches.
const BUFFERED_EVENTS: usize = 256;
/// How long a hole in the log may stay open (a write that took its cursor but has not committed
/// yet) before the subscriber stops waiting for it.
const HOLE_PATIENCE: Duration = Duration::from_secs(2);
const HOLE_RECHECK: Duration = Duration::from_millis(25);
/// How many of a catch-up's events other than chat messages are read from the store at once.
const CONCURRENT_READS: usize = 8;

/// What an event carries to its subscribers.
#[derive(Debug, Clone)]
pub enum Payload {
    ChatMessage(ChatMessage),
    /// The message whose status moved, as it is now.
    ChatStatus(ChatMessage),
    Notification {
        notification: Notification,
        unread_count: u64,
    },
    Ticket(Ticket),
    /// One of the inbox's numbers moved (a notification read, a conversation marked unread);
    /// the numbers are read by whoever follows them.
    Inbox,
}

#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub record: EventRecord,
    pub payload: Payload,
}

/// Which of a provider's events a subscription wants.
#[derive(Debug, Clone)]
pub enum EventFilter {
    /// New chat messages, of one conversation or of all.
    ChatMessages {
        customer: Option<Id>,
    },
    /// Status changes of chat messages, of one conversation or of all.
    ChatStatus {
        customer: Option<Id>,
    },
    Notifications,
    /// Changes to one ticket or to any.
    Tickets {
        ticket: Option<Id>,
    },
    /// Every event that may move the badges: chat messages and statuses, notifications, inbox.
    Badges,
}

impl EventFilter {
    fn wants(&self, record: &EventRecord) -> bool {
        let same = |wanted: &Option<Id>, actual: Option<&Id>| wanted.as_ref().is_none_or(|w| Some(w) == actual);
        match self {
            EventFilter::ChatMessages { customer } => {
                record.kind == EventKind::ChatMessage && same(customer, record.customer_id.as_ref())
            }
            EventFilter::ChatStatus { customer } => {
                record.kind == EventKind::ChatStatus && same(customer, record.customer_id.as_ref())
            }
            EventFilter::Notifications => record.kind == EventKind::Notification,
            EventFilter::Tickets { ticket } => {
                record.kind == EventKind::Ticket && same(ticket, Some(&record.subject_id))
            }
            EventFilter::Badges => record.kind != EventKind::Ticket,
        }
    }
}

/// The process's hub of live events.
pub struct Realtime {
    chat: Arc<dyn ChatStore>,
    events: Arc<dyn EventStore>,
    notifications: Arc<dyn NotificationStore>,
    tickets: Arc<dyn TicketStore>,
    channels: Mutex<HashMap<Id, broadcast::Sender<Arc<LiveEvent>>>>,
    remote: Option<Arc<dyn RemoteBus>>,
    replay_window: ReplayWindow,
}

impl Realtime {
    pub fn new(store: &SharedStore, remote: Option<Arc<dyn RemoteBus>>, replay_window: ReplayWindow) -> Realtime {
        Realtime {
            replay_window,
            chat: store.clone(),
            events: store.clone(),
            notifications: store.clone(),
            tickets: store.clone(),
            channels: Mutex::new(HashMap::new()),
            remote,
        }
    }

    /// Hands logged events to this process's subscribers and to the other processes. Never
    /// fails the write that logged them: a subscriber that misses one reads it from the log.
    pub async fn publish(&self, records: Vec<EventRecord>) {
        self.publish_known(records, |_| None).await;
    }

    /// Like [`Realtime::publish`], for a write that already holds what its events name: a record
    /// for which `known` gives the payload reaches this process's subscribers without being read
    /// back from the store (one store call less between the commit and the subscribers).
    pub async fn publish_known(&self, records: Vec<EventRecord>, known: impl Fn(&EventRecord) -> Option<Payload>) {
        for record in records {
            published(&record, "local");
            if let Some(remote) = &self.remote {
                if let Err(error) = remote.publish(&record).await {
                    tracing::warn!(%error, cursor = record.cursor, "event not sent to the other processes");
                }
            }
            match known(&record) {
                Some(payload) => self.hand_out(LiveEvent { record, payload }),
                None => self.deliver(record).await,
            }
        }
    }

    /// The bus to the other processes, if there is one (typing signals travel on it too).
    pub fn remote(&self) -> Option<Arc<dyn RemoteBus>> {
        self.remote.clone()
    }

    /// Hands an event record published by another process to this process's subscribers.
    pub async fn deliver_remote(&self, record: EventRecord) {
        published(&record, "remote");
        self.deliver(record).await;
    }

    /// Reads what the record names, once, for all of this process's subscribers of its provider.
    async fn deliver(&self, record: EventRecord) {
        if !self.has_subscribers(&record.provider_id) {
            return;
        }
        match self.resolve(record).await {
            Ok(Some(event)) => self.hand_out(event),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "an event could not be read; its subscribers catch up from the log"),
        }
    }

    /// Hands an event to its provider's subscribers on this process, if it has any.
    fn hand_out(&self, event: LiveEvent) {
        let provider = event.record.provider_id.clone();
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = channels.get(&provider) {
            if sender.send(Arc::new(event)).is_err() {
                channels.remove(&provider);
            }
        }
    }

    /// Whether the provider has a live subscription on this process (the WeChat push is for a
    /// provider who is not connected).
    pub fn is_watched(&self, provider: &Id) -> bool {
        self.has_subscribers(provider)
    }

    fn has_subscribers(&self, provider: &Id) -> bool {
        let channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        channels.get(provider).is_some_and(|sender| sender.receiver_count() > 0)
    }

    fn receiver(&self, provider: &Id) -> broadcast::Receiver<Arc<LiveEvent>> {
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        channels.entry(provider.clone()).or_insert_with(|| broadcast::channel(BUFFERED_EVENTS).0).subscribe()
    }

    /// Reads what a record names. `None` if it is gone.
    async fn resolve(&self, record: EventRecord) -> AppResult<Option<LiveEvent>> {
        let (provider, subject) = (&record.provider_id, &record.subject_id);
        let payload = match record.kind {
            EventKind::ChatMessage => self.chat.chat_message(provider, subject).await?.map(Payload::ChatMessage),
            EventKind::ChatStatus => self.chat.chat_message(provider, subject).await?.map(Payload::ChatStatus),
            EventKind::Ticket => self.tickets.ticket(provider, subject).await?.map(Payload::Ticket),
            EventKind::Inbox => Some(Payload::Inbox),
            EventKind::Notification => match self.notifications.notification(provider, subject).await? {
                Some(notification) => {
                    let unread_count = self.notifications.unread_count(provider).await?;
                    Some(Payload::Notification { notification, unread_count })
                }
                None => None,
            },
        };
        Ok(payload.map(|payload| LiveEvent { record, payload }))
    }

    /// Reads what a batch of one provider's records names, in their order, leaving out what is
    /// gone: the chat messages they name in one store call, the rest a few at a time.
    async fn resolve_all(&self, provider: &Id, records: Vec<EventRecord>) -> AppResult<Vec<LiveEvent>> {
        let names_message =
            |record: &EventRecord| matches!(record.kind, EventKind::ChatMessage | EventKind::ChatStatus);
        let message_ids: Vec<Id> = records.iter().filter(|r| names_message(r)).map(|r| r.subject_id.clone()).collect();
        let messages: HashMap<Id, ChatMessage> = if message_ids.is_empty() {
            HashMap::new()
        } else {
            let found = self.chat.chat_messages_anywhere(&message_ids).await?;
            found.into_iter().filter(|m| &m.service_provider_id == provider).map(|m| (m.id.clone(), m)).collect()
        };
        let mut resolved = stream::iter(records)
            .map(|record| {
                let read_already = names_message(&record).then(|| messages.get(&record.subject_id).cloned());
                async move {
                    let Some(message) = read_already else { return self.resolve(record).await };
                    let payload = match record.kind {
                        EventKind::ChatStatus => message.map(Payload::ChatStatus),
                        _ => message.map(Payload::ChatMessage),
                    };
                    Ok(payload.map(|payload| LiveEvent { record, payload }))
                }
            })
            .buffered(CONCURRENT_READS);
        let mut events = Vec::new();
        while let Some(event) = resolved.next().await {
            events.extend(event?);
        }
        Ok(events)
    }

    /// The provider's events that the filter wants: those after `after` from the log first (if
    /// given), then live ones as they come.
    pub async fn follow(
        self: &Arc<Self>,
        session: &Session,
        filter: EventFilter,
        after: Option<Cursor>,
    ) -> AppResult<impl Stream<Item = AppResult<Arc<LiveEvent>>> + use<>> {
        let provider = session.provider_id.clone();
        // Listen first, then look at the log: nothing committed in between can be missed.
        let receiver = self.receiver(&provider);
        let latest = self.events.latest_cursor(&provider).await?;
        let last = match after {
            Some(after) if after > latest => {
                return Err(AppError::bad_input("after", "游标无效：比最新的事件还新"));
            }
            Some(after) => after,
            None => latest,
        };
        let mut follower = Follower {
            hub: Arc::clone(self),
            provider,
            filter,
            last,
            receiver,
            backlog: VecDeque::new(),
            behind: false,
            behind_gauge: None,
        };
        if let Some(after) = after.filter(|after| *after < latest) {
            self.check_replay_window(&follower.provider, after, latest).await?;
            follower.fall_behind();
        }
        Ok(stream::unfold(follower, |mut follower| async move {
            let next = follower.next().await?;
            Some((next, follower))
        }))
    }
}

impl Realtime {
    /// Refuses a cursor outside the replay window: too many events behind the newest, the first
    /// event it missed too old, or that event gone from the log (deleted by retention).
    async fn check_replay_window(&self, provider: &Id, after: Cursor, latest: Cursor) -> AppResult<()> {
        let window = self.replay_window;
        let expired = if latest - after > window.max_events {
            true
        } else {
            let first = self.events.events_after(provider, after, 1).await?;
            let oldest_allowed = chrono::Utc::now() - chrono::Duration::from_std(window.max_age).unwrap_or_default();
            first.first().is_some_and(|first| first.cursor != after + 1 || first.at < oldest_allowed)
        };
        if expired {
            metrics::counter("realtime_replays_refused_total", &[]).inc();
            let hours = window.max_age.as_secs() / 3600;
            let message = format!(
                "游标已过期：只能补发最近{}条且{hours}小时内的事件，请重新加载数据后不带 after 重新订阅",
                window.max_events
            );
            return Err(AppError::bad_input("after", message));
        }
        Ok(())
    }
}

/// One subscription's position in its provider's event stream.
struct Follower {
    hub: Arc<Realtime>,
    provider: Id,
    filter: EventFilter,
    /// The last cursor passed, delivered or not.
    last: Cursor,
    receiver: broadcast::Receiver<Arc<LiveEvent>>,
    /// Events read from the log, waiting to be delivered.
    backlog: VecDeque<Arc<LiveEvent>>,
    /// Whether the log holds events after `last` that have not been read.
    behind: bool,
    /// One unit of `realtime_subscribers_behind`, held while `behind`.
    behind_gauge: Option<GaugeGuard>,
}

/// Counts an event handed to this process's hub.
fn published(record: &EventRecord, origin: &str) {
    metrics::counter("realtime_events_published_total", &[("kind", record.kind.as_str()), ("origin", origin)]).inc();
}

impl Follower {
    /// From now on, read the log until caught up.
    fn fall_behind(&mut self) {
        self.behind = true;
        if self.behind_gauge.is_none() {
            self.behind_gauge = Some(metrics::gauge("realtime_subscribers_behind", &[]).track());
        }
    }

    async fn next(&mut self) -> Option<AppResult<Arc<LiveEvent>>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return Some(Ok(event));
            }
            if self.behind {
                if let Err(error) = self.catch_up().await {
                    return Some(Err(error));
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(event) if event.record.cursor <= self.last => {}
                Ok(event) if event.record.cursor == self.last + 1 => {
                    self.last = event.record.cursor;
                    if self.filter.wants(&event.record) {
                        return Some(Ok(event));
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    metrics::counter("realtime_subscriber_lags_total", &[]).inc();
                    self.fall_behind();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Reads one batch of the log after `last` into the backlog. A hole (a cursor taken by a
    /// write not yet committed) is waited for, up to [`HOLE_PATIENCE`].
    async fn catch_up(&mut self) -> AppResult<()> {
        let mut waited = Duration::ZERO;
        let records = loop {
            let records = self.hub.events.events_after(&self.provider, self.last, BUFFERED_EVENTS as u32).await?;
            let gapless = records.iter().zip(self.last + 1..).all(|(record, expected)| record.cursor == expected);
            if gapless || waited >= HOLE_PATIENCE {
                break records;
            }
            tokio::time::sleep(HOLE_RECHECK).await;
            waited += HOLE_RECHECK;
        };
        self.behind = records.len() == BUFFERED_EVENTS;
        if !self.behind && self.behind_gauge.take().is_some() {
            metrics::counter("realtime_subscriber_catch_ups_total", &[]).inc();
        }
        let mut wanted = Vec::new();
        for record in records {
            if record.cursor != self.last + 1 {
                tracing::warn!(provider = %self.provider, from = self.last, to = record.cursor, "event log hole skipped");
            }
            self.last = record.cursor;
            if self.filter.wants(&record) {
                wanted.push(record);
            }
        }
        let events = self.hub.resolve_all(&self.provider, wanted).await?;
        self.backlog.extend(events.into_iter().map(Arc::new));
        Ok(())
    }
}
