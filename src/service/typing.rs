//! Typing indicators, both ways: the provider's (`typing` mutation, `POST /api/chat/typing`) goes
//! out to the PC customer-service system as a `chat.typing` webhook event; the customer's (signed
//! `POST /integrations/cs/typing`) goes to the `typing` subscription of the customer's provider.
//!
//! The design choice: a typing indicator is a signal, not data. It is never written to the event
//! log (no cursor, no replay: a subscriber sees only what arrives while it is connected) nor kept
//! in the outbox's history (its delivery expires after [`TYPING_TTL`] and its row is deleted once
//! sent or expired, see `crate::domain::outbox`). Each direction is throttled to one signal a
//! [`TYPING_INTERVAL`] per conversation through the rate limiter, so with Redis the throttle
//! holds across processes; a signal within the interval is accepted and not forwarded (the
//! answer says so), never refused, so a client may signal on every keystroke. Signals reach other
//! processes' subscribers over the [`RemoteBus`], on a channel of their own.

use super::outbound::Outbound;
use super::ports::RemoteBus;
use super::{provider_customer, Session};
use crate::domain::{after, now, Id, Timestamp};
use crate::error::{AppError, AppResult};
use crate::limits::Guard;
use crate::store::{CustomerStore, OutboxStore, SharedStore};
use futures_util::stream::{self, Stream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// At most one typing signal a conversation forwards in each direction within this long.
pub const TYPING_INTERVAL: Duration = Duration::from_secs(1);
/// How long a `chat.typing` delivery may wait to be sent before it is dropped: a stale "is
/// typing" is worse than none.
pub const TYPING_TTL: Duration = Duration::from_secs(10);
/// How many signals a subscriber may fall behind; the older ones are skipped, not caught up.
const BUFFERED_SIGNALS: usize = 16;

/// A customer typing, as it reaches the provider's subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct TypingSignal {
    pub provider_id: Id,
    pub customer_id: Id,
    pub at: Timestamp,
}

/// The process's subscribers of typing signals, a broadcast channel per provider watched.
#[derive(Default)]
pub struct TypingHub {
    channels: Mutex<HashMap<Id, broadcast::Sender<TypingSignal>>>,
}

impl TypingHub {
    /// Hands a signal to its provider's subscribers on this process, if it has any.
    pub fn hand_out(&self, signal: TypingSignal) {
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let provider = signal.provider_id.clone();
        if let Some(sender) = channels.get(&provider) {
            if sender.send(signal).is_err() {
                channels.remove(&provider);
            }
        }
    }

    /// The provider's signals from now on, of one customer or of all.
    fn follow(&self, provider: &Id, customer: Option<Id>) -> impl Stream<Item = TypingSignal> + use<> {
        let receiver = {
            let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // Channels whose subscribers all left go when the next one is made: the map holds
            // only providers being watched.
            channels.retain(|_, sender| sender.receiver_count() > 0);
            channels.entry(provider.clone()).or_insert_with(|| broadcast::channel(BUFFERED_SIGNALS).0).subscribe()
        };
        stream::unfold((receiver, customer), |(mut receiver, customer)| async move {
            loop {
                match receiver.recv().await {
                    Ok(signal) if customer.as_ref().is_none_or(|c| *c == signal.customer_id) => {
                        return Some((signal, (receiver, customer)));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}

/// What became of a customer's typing signal.
#[derive(Debug, Clone)]
pub struct CustomerTyping {
    pub provider_id: Id,
    /// Whether it went to the provider's subscribers (false: within a second of the last one).
    pub forwarded: bool,
}

#[derive(Clone)]
pub struct TypingService {
    customers: Arc<dyn CustomerStore>,
    outbox: Arc<dyn OutboxStore>,
    guard: Arc<Guard>,
    outbound: Arc<Outbound>,
    remote: Option<Arc<dyn RemoteBus>>,
    hub: Arc<TypingHub>,
}

impl TypingService {
    pub fn new(
        store: &SharedStore,
        guard: Arc<Guard>,
        outbound: Arc<Outbound>,
        remote: Option<Arc<dyn RemoteBus>>,
    ) -> TypingService {
        TypingService {
            customers: store.clone(),
            outbox: store.clone(),
            guard,
            outbound,
            remote,
            hub: Arc::new(TypingHub::default()),
        }
    }

    /// The hub the remote bus hands other processes' signals to.
    pub fn hub(&self) -> Arc<TypingHub> {
        Arc::clone(&self.hub)
    }

    /// The provider is typing to one of its customers: queued as a `chat.typing` delivery to the
    /// PC customer-service system when that is configured. Answers whether the signal was
    /// accepted for forwarding (false: within [`TYPING_INTERVAL`] of the last one, dropped).
    pub async fn provider_typing(&self, session: &Session, customer: &Id) -> AppResult<bool> {
        let customer = provider_customer(self.customers.as_ref(), session, customer).await?;
        let key = format!("typing-out:{}:{}", session.provider_id, customer.id);
        if !self.guard.throttle(&key, TYPING_INTERVAL).await {
            counted("out", "throttled");
            return Ok(false);
        }
        counted("out", "forwarded");
        let at = now();
        if let Some(draft) = self.outbound.chat_typing(&session.provider_id, &customer.id, at) {
            self.outbox.queue_expiring_delivery(&draft, after(at, TYPING_TTL)).await?;
            self.outbound.queued(1);
        }
        Ok(true)
    }

    /// A customer is typing (from the PC customer-service system): handed to the subscribers of
    /// the customer's provider, here and on the other processes.
    pub async fn customer_typing(&self, customer: &Id) -> AppResult<CustomerTyping> {
        let customer = self
            .customers
            .customers_anywhere(std::slice::from_ref(customer))
            .await?
            .pop()
            .ok_or(AppError::NotFound("客户"))?;
        let provider_id = customer.service_provider_id.clone();
        let key = format!("typing-in:{}", customer.id);
        if !self.guard.throttle(&key, TYPING_INTERVAL).await {
            counted("in", "throttled");
            return Ok(CustomerTyping { provider_id, forwarded: false });
        }
        counted("in", "forwarded");
        let signal = TypingSignal { provider_id: provider_id.clone(), customer_id: customer.id, at: now() };
        if let Some(remote) = &self.remote {
            if let Err(error) = remote.publish_typing(&signal).await {
                tracing::debug!(%error, "a typing signal did not reach the other processes");
            }
        }
        self.hub.hand_out(signal);
        Ok(CustomerTyping { provider_id, forwarded: true })
    }

    /// The customers' typing signals for the session's provider, of one customer (which must be
    /// the provider's: another's is NOT_FOUND) or of all, live only: nothing is replayed.
    pub async fn follow(
        &self,
        session: &Session,
        customer: Option<Id>,
    ) -> AppResult<impl Stream<Item = TypingSignal> + use<>> {
        if let Some(customer) = &customer {
            provider_customer(self.customers.as_ref(), session, customer).await?;
        }
        Ok(self.hub.follow(&session.provider_id, customer))
    }
}

/// Counts a typing signal in `typing_signals_total`.
fn counted(direction: &'static str, outcome: &'static str) {
    crate::metrics::counter("typing_signals_total", &[("direction", direction), ("outcome", outcome)]).inc();
}
