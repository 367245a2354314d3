//! The integration layer (spec 5.1, 集成层): the adapters that talk to the other systems, and the
//! background tasks that drive them.
//!
//! - [`http_client`]: the outbound HTTP client (rustls, web PKI roots, `OUTBOUND_CA_FILE`), and
//!   the description of its errors that never shows a query string.
//! - [`signature`]: the HMAC-SHA256 signature of every webhook, in and out.
//! - [`webhook`]: the PC customer-service system's webhook, an outbox [`Transport`].
//! - [`wechat`]: WeChat subscribe messages, an outbox [`Transport`], and the openid of a
//!   mini-program user (the service port [`WechatLogin`]).
//! - [`dispatcher`]: delivers the outbox at least once, in order per conversation.
//! - [`scheduler`]: runs the scheduled jobs (`crate::service::jobs`) at their interval.
//!
//! What goes out, and when, is decided by the service layer (`crate::service::outbound`); the
//! inbound webhooks are served by `crate::http::integrations`.

pub mod dispatcher;
pub mod http_client;
pub mod scheduler;
pub mod signature;
pub mod webhook;
pub mod wechat;

use crate::domain::{format_time, OutboxEntry};
pub use crate::service::ports::WechatLogin;
use async_trait::async_trait;
use serde_json::{json, Value};

/// How one attempt of a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver took it.
    Delivered,
    /// It failed in a way that may pass (the receiver is down, answered 5xx, timed out): try again
    /// later, up to the attempt limit.
    Retry(String),
    /// The receiver refused it for good (a WeChat user who has not subscribed): a dead letter now.
    Refused(String),
}

/// The port an outbox target is delivered through.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn deliver(&self, entry: &OutboxEntry) -> Delivery;
}

/// The JSON body of an outbound webhook: the same bytes on every attempt of one delivery.
pub fn envelope(entry: &OutboxEntry) -> Value {
    let draft = &entry.draft;
    json!({
        "deliveryId": draft.id.as_str(),
        "type": draft.event_type,
        "sequence": entry.sequence,
        "occurredAt": format_time(&draft.created_at),
        "serviceProviderId": draft.provider_id.as_str(),
        "customerId": draft.customer_id.as_ref().map(|id| id.as_str()),
        "data": draft.payload,
    })
}
