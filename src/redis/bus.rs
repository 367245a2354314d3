//! The event bus between server processes over Redis pub/sub (`REDIS_URL`), the adapter of
//! [`RemoteBus`].
//!
//! Three channels per deployment (named after its store: the MongoDB database, or the SQLite file,
//! so deployments sharing one Redis stay apart): `pd:{store}:events` carries event records (provider, cursor, kind, subject), never their
//! content, which each process reads from the shared store once for all its subscribers;
//! `pd:{store}:revocations` carries revoked token families, so a logout in one process ends the live
//! connections of that token in every process; `pd:{store}:typing` carries customers' typing
//! signals (provider, customer, time), which are in no log and reach only the subscribers
//! connected when they pass. Each message names the process that sent it, which
//! ignores its own (it delivered them already).
//!
//! Pub/sub is at-most-once. While Redis is unreachable, events still reach the subscribers of the
//! process that wrote them; the other processes' subscribers notice the missed cursors with the
//! next event that reaches them (or when they reconnect with their last cursor) and read what they
//! missed from the event log. The listener reconnects by itself.

use super::connect_redis;
use crate::domain::{format_time, new_id, Cursor, EventKind, EventRecord, Id};
use crate::error::{AppError, AppResult};
use crate::service::auth::AuthService;
use crate::service::realtime::{Realtime, RemoteBus};
use crate::service::typing::{TypingHub, TypingSignal};
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const RECONNECT_DELAY: Duration = Duration::from_secs(1);

pub struct RedisBus {
    client: redis::Client,
    publisher: ConnectionManager,
    timeout: Duration,
    /// This process, so that it can tell its own messages from the others'.
    origin: String,
    events_channel: String,
    revocations_channel: String,
    typing_channel: String,
}

impl RedisBus {
    /// Connects the bus of the deployment whose store is named `store`.
    pub async fn connect(url: &str, store: &str, timeout: Duration) -> AppResult<RedisBus> {
        let (client, publisher) = connect_redis(url, timeout).await?;
        Ok(RedisBus {
            client,
            publisher,
            timeout,
            origin: new_id("p").to_string(),
            events_channel: format!("pd:{store}:events"),
            revocations_channel: format!("pd:{store}:revocations"),
            typing_channel: format!("pd:{store}:typing"),
        })
    }

    async fn publish_message(&self, channel: &str, message: Value) -> AppResult<()> {
        let mut connection = self.publisher.clone();
        let mut command = redis::cmd("PUBLISH");
        command.arg(channel).arg(message.to_string());
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, command.query_async::<i64>(&mut connection)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(AppError::Unavailable(format!("redis publish: {error}"))),
            Err(_) => Err(AppError::Unavailable("redis publish timed out".to_owned())),
        };
        let labels = [("purpose", "publish"), ("outcome", crate::metrics::outcome(&result))];
        crate::metrics::histogram("redis_call_duration_seconds", &labels).observe(started.elapsed());
        result
    }

    /// Runs for the life of the process: hands other processes' events to `realtime` and their
    /// revocations to `auth` and their typing signals to `typing`, and sends this process's
    /// revocations to them.
    pub fn start(self: Arc<Self>, realtime: Arc<Realtime>, auth: Arc<AuthService>, typing: Arc<TypingHub>) {
        let bus = Arc::clone(&self);
        let mut local_revocations = auth.revoked_families();
        tokio::spawn(async move {
            loop {
                match local_revocations.recv().await {
                    Ok(revoked) if revoked.local => {
                        let message = json!({ "origin": bus.origin, "family": revoked.family_id });
                        if let Err(error) = bus.publish_message(&bus.revocations_channel, message).await {
                            tracing::warn!(%error, "a revocation did not reach the other processes");
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
        tokio::spawn(async move {
            loop {
                if let Err(error) = self.listen(&realtime, &auth, &typing).await {
                    tracing::warn!(%error, "the Redis event bus is down; reconnecting");
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        });
    }

    async fn listen(&self, realtime: &Realtime, auth: &AuthService, typing: &TypingHub) -> redis::RedisResult<()> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(&[&self.events_channel, &self.revocations_channel, &self.typing_channel]).await?;
        tracing::info!("listening to the Redis event bus");
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else { continue };
            let Ok(body) = serde_json::from_str::<Value>(&payload) else { continue };
            if body["origin"].as_str() == Some(self.origin.as_str()) {
                continue;
            }
            let channel = message.get_channel_name();
            if channel == self.events_channel {
                match record_from(&body) {
                    Some(record) => realtime.deliver_remote(record).await,
                    None => tracing::warn!(%payload, "an unreadable event on the bus"),
                }
            } else if channel == self.revocations_channel {
                if let Some(family) = body["family"].as_str() {
                    auth.revoked_elsewhere(family.to_owned());
                }
            } else if channel == self.typing_channel {
                if let Some(signal) = typing_from(&body) {
                    typing.hand_out(signal);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RemoteBus for RedisBus {
    async fn publish(&self, record: &EventRecord) -> AppResult<()> {
        let message = json!({
            "origin": self.origin,
            "provider": record.provider_id.as_str(),
            "cursor": record.cursor,
            "kind": record.kind.as_str(),
            "subject": record.subject_id.as_str(),
            "customer": record.customer_id.as_ref().map(Id::as_str),
            "at": format_time(&record.at),
        });
        self.publish_message(&self.events_channel, message).await
    }

    async fn publish_typing(&self, signal: &TypingSignal) -> AppResult<()> {
        let message = json!({
            "origin": self.origin,
            "provider": signal.provider_id.as_str(),
            "customer": signal.customer_id.as_str(),
            "at": format_time(&signal.at),
        });
        self.publish_message(&self.typing_channel, message).await
    }
}

fn typing_from(body: &Value) -> Option<TypingSignal> {
    Some(TypingSignal {
        provider_id: Id::parse(body["provider"].as_str()?)?,
        customer_id: Id::parse(body["customer"].as_str()?)?,
        at: chrono::DateTime::parse_from_rfc3339(body["at"].as_str()?).ok()?.with_timezone(&chrono::Utc),
    })
}

fn record_from(body: &Value) -> Option<EventRecord> {
    Some(EventRecord {
        provider_id: Id::parse(body["provider"].as_str()?)?,
        cursor: body["cursor"].as_u64()? as Cursor,
        kind: EventKind::parse(body["kind"].as_str()?)?,
        subject_id: Id::parse(body["subject"].as_str()?)?,
        customer_id: match &body["customer"] {
            Value::Null => None,
            customer => Some(Id::parse(customer.as_str()?)?),
        },
        at: chrono::DateTime::parse_from_rfc3339(body["at"].as_str()?).ok()?.with_timezone(&chrono::Utc),
    })
}
