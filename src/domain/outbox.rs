//! The outbox: what is to be sent to another system (the PC customer-service system, WeChat),
//! written in the same transaction as the change that caused it, then delivered at least once by
//! the dispatcher (see `crate::integration::dispatcher`).
//!
//! Deliveries that share an ordering key (one conversation: a provider and one of its customers)
//! are delivered one after the other in `sequence` order; the sequence is the provider's event
//! cursor of the write that queued the delivery, so it follows commit order (see
//! [`super::EventRecord`]). A delivery that keeps failing is retried with exponential backoff and
//! jitter ([`backoff`]) and, after the configured number of attempts, set aside as a dead letter,
//! which no longer holds up its conversation and can be replayed.
//!
//! A delivery queued with an expiry (an ephemeral signal such as `chat.typing`, whose late arrival
//! is worse than none) is the exception: it is never retried past its expiry, never becomes a dead
//! letter and is never kept once sent. Its row is deleted when delivered, when it expires unsent
//! (the dispatcher's claim sweeps those away) or when it is refused, so the outbox's history holds
//! none of them.

use super::{Cursor, Id, Timestamp};
use std::time::Duration;

/// Who a delivery goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxTarget {
    /// The PC customer-service system's webhook (`CS_WEBHOOK_URL`).
    CustomerService,
    /// A WeChat subscribe message to the mini-program user.
    Wechat,
}

impl OutboxTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxTarget::CustomerService => "cs",
            OutboxTarget::Wechat => "wechat",
        }
    }

    pub fn parse(text: &str) -> Option<OutboxTarget> {
        match text {
            "cs" => Some(OutboxTarget::CustomerService),
            "wechat" => Some(OutboxTarget::Wechat),
            _ => None,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its turn, or for its next attempt.
    Pending,
    /// The receiver acknowledged it (HTTP 2xx, or WeChat `errcode` 0).
    Delivered,
    /// Given up on after the last attempt, or refused for good; replayable.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
}

/// A delivery as the service layer queues it, before the store gives it its sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxDraft {
    /// The delivery id, sent with every attempt (`X-PD-Delivery`) so the receiver can drop
    /// duplicates.
    pub id: Id,
    pub target: OutboxTarget,
    /// What happened: `chat.message`, `ticket.escalated`, `chat.escalated`, `ticket.resolved`,
    /// `wechat.chat_message`, `wechat.customer_alert`.
    pub event_type: String,
    pub provider_id: Id,
    pub customer_id: Option<Id>,
    /// Deliveries with the same key go out one at a time, in sequence order.
    pub ordering_key: String,
    /// The event's data, as JSON.
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
}

impl OutboxDraft {
    /// The ordering key of a conversation with the PC customer-service system.
    pub fn conversation_key(provider: &Id, customer: &Id) -> String {
        format!("cs:{provider}:{customer}")
    }

    /// The ordering key of a conversation's ephemeral signals to the PC customer-service system:
    /// apart from [`OutboxDraft::conversation_key`], so a typing signal never waits behind (or
    /// holds up) a chat message.
    pub fn signal_key(provider: &Id, customer: &Id) -> String {
        format!("cs-signal:{provider}:{customer}")
    }

    /// The ordering key of WeChat messages to one provider.
    pub fn wechat_key(provider: &Id) -> String {
        format!("wechat:{provider}")
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub draft: OutboxDraft,
    /// The provider's event cursor of the write that queued it: increasing within an ordering key.
    pub sequence: Cursor,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub dead_at: Option<Timestamp>,
    /// For an ephemeral delivery: when it is dropped if not sent by then (see the module doc).
    pub expires_at: Option<Timestamp>,
}

/// How long to wait before attempt `attempts + 1`, after `attempts` failed ones: `base`
/// doubled per failure, capped at `max`, then "equal jitter" (half of it fixed, half random), so
/// that many senders retrying after one outage spread out. `random` is a number in `[0, 1)`.
pub fn backoff(attempts: u32, base: Duration, max: Duration, random: f64) -> Duration {
    let exponent = attempts.saturating_sub(1).min(30);
    let delay = base.saturating_mul(1u32 << exponent).min(max);
    let half = delay / 2;
    half + half.mul_f64(random.clamp(0.0, 1.0))
}

/// A number in `[0, 1)` for a jitter, from the operating system's random source (0.5 if it
/// cannot answer: a jitter is worth no failure).
pub fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered_within_half() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(backoff(1, base, max, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, base, max, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, base, max, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(4, base, max, 0.5), Duration::from_secs(6));
        assert_eq!(backoff(20, base, max, 1.0), max);
        assert_eq!(backoff(200, base, max, 0.0), max / 2);
    }

    #[test]
    fn targets_and_statuses_read_back_from_their_spelling() {
        for target in [OutboxTarget::CustomerService, OutboxTarget::Wechat] {
            assert_eq!(OutboxTarget::parse(target.as_str()), Some(target));
        }
        for status in [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Dead] {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
    }
}
