//! Subscriptions: live chat messages, chat status changes, notifications, ticket changes and the
//! badges; and customers' typing signals, which are live only (not logged, so no cursor and no
//! `after`).
//!
//! Every event carries a `cursor`. A client that lost its connection subscribes again with the
//! last cursor it saw as `after` and first receives what it missed, then live events, with no gap
//! and no duplicate (see `service::realtime`).

use super::inbox::BadgesEventObject;
use super::objects::{ChatMessageObject, NotificationObject};
use super::scalars::DateTime;
use super::ticket_objects::TicketObject;
use super::ContextExt;
use crate::domain::{Cursor, Id};
use crate::error::AppError;
use crate::service::input;
use crate::service::realtime::{EventFilter, LiveEvent, Payload};
use crate::service::typing::TypingSignal;
use async_graphql::{Context, ErrorExtensions, Object, Result, ResultExt, Subscription, ID};
use futures_util::{Stream, StreamExt};
use std::sync::Arc;

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// New chat messages, of one customer's conversation or of all (either side's messages).
    async fn chat_messages(
        &self,
        ctx: &Context<'_>,
        customer_id: Option<ID>,
        #[graphql(desc = "The last cursor seen: events after it are replayed first.")] after: Option<String>,
    ) -> Result<impl Stream<Item = Result<ChatMessageEvent>>> {
        let customer = own_customer(ctx, customer_id.as_ref()).await?;
        follow(ctx, EventFilter::ChatMessages { customer }, after, ChatMessageEvent).await
    }

    /// Status changes of chat messages (sent → delivered → read), of one conversation or of all.
    async fn chat_message_status(
        &self,
        ctx: &Context<'_>,
        customer_id: Option<ID>,
        #[graphql(desc = "The last cursor seen: events after it are replayed first.")] after: Option<String>,
    ) -> Result<impl Stream<Item = Result<ChatStatusEvent>>> {
        let customer = own_customer(ctx, customer_id.as_ref()).await?;
        follow(ctx, EventFilter::ChatStatus { customer }, after, ChatStatusEvent).await
    }

    /// New notifications, each with the provider's unread count after it.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The last cursor seen: events after it are replayed first.")] after: Option<String>,
    ) -> Result<impl Stream<Item = Result<NotificationEvent>>> {
        follow(ctx, EventFilter::Notifications, after, NotificationEvent).await
    }

    /// Changes to one ticket or to any: creation, replies, resolution, escalation.
    async fn ticket_updates(
        &self,
        ctx: &Context<'_>,
        ticket_id: Option<ID>,
        #[graphql(desc = "The last cursor seen: events after it are replayed first.")] after: Option<String>,
    ) -> Result<impl Stream<Item = Result<TicketEvent>>> {
        let ticket = optional_id(ticket_id.as_ref(), "ticketId", "工单ID")?;
        if let Some(ticket) = &ticket {
            // Another provider's ticket is NOT_FOUND, like a missing one, rather than a silent wait.
            ctx.services().tickets.get(ctx.session()?, ticket).await.extend()?;
        }
        follow(ctx, EventFilter::Tickets { ticket }, after, TicketEvent).await
    }

    /// The badges (unread notifications, unread chat messages, waiting conversations) each time
    /// one of them moves. With `after`, what moved meanwhile comes first, as one push of the
    /// numbers of now. Read the `badges` query once at start, then follow this.
    async fn badges(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The last cursor seen: events after it are replayed first.")] after: Option<String>,
    ) -> Result<impl Stream<Item = Result<BadgesEventObject>>> {
        let session = ctx.session()?;
        let after = after.as_deref().map(parse_cursor).transpose().extend()?;
        let updates = ctx.services().inbox.follow_badges(session, after).await.extend()?;
        Ok(updates.map(|update| update.map(BadgesEventObject::from).extend()))
    }

    /// Customers typing (from the PC customer-service system), of one conversation or of all, at
    /// most one signal a second per customer. Live only: typing is never stored, so a
    /// subscription sees what arrives while it is connected and nothing is replayed (no cursor,
    /// no `after`).
    async fn typing(&self, ctx: &Context<'_>, customer_id: Option<ID>) -> Result<impl Stream<Item = TypingEvent>> {
        let customer = optional_id(customer_id.as_ref(), "customerId", "客户ID")?;
        let signals = ctx.services().typing.follow(ctx.session()?, customer).await.extend()?;
        Ok(signals.map(TypingEvent))
    }
}

/// A customer typing.
pub struct TypingEvent(TypingSignal);

#[Object]
impl TypingEvent {
    async fn customer_id(&self) -> ID {
        ID(self.0.customer_id.to_string())
    }
    /// When the signal reached this server.
    async fn at(&self) -> DateTime {
        DateTime(self.0.at)
    }
}

fn optional_id(raw: Option<&ID>, field: &'static str, label: &str) -> Result<Option<Id>> {
    raw.map(|raw| input::id(raw, field, label)).transpose().extend()
}

/// The `customerId` of a subscription, which must be one of the provider's customers: another
/// provider's is NOT_FOUND, like a missing one, rather than a subscription that never delivers.
async fn own_customer(ctx: &Context<'_>, raw: Option<&ID>) -> Result<Option<Id>> {
    let customer = optional_id(raw, "customerId", "客户ID")?;
    if let Some(customer) = &customer {
        ctx.services().customers.get(ctx.session()?, customer).await.extend()?;
    }
    Ok(customer)
}

async fn follow<T>(
    ctx: &Context<'_>,
    filter: EventFilter,
    after: Option<String>,
    wrap: fn(Arc<LiveEvent>) -> T,
) -> Result<impl Stream<Item = Result<T>> + use<T>> {
    let session = ctx.session()?;
    let after = after.as_deref().map(parse_cursor).transpose().extend()?;
    let events = ctx.services().realtime.follow(session, filter, after).await.extend()?;
    Ok(events.map(move |event| event.map(wrap).extend()))
}

fn parse_cursor(raw: &str) -> Result<Cursor, AppError> {
    raw.trim().parse().map_err(|_| AppError::bad_input("after", "游标格式不正确"))
}

fn mismatch() -> async_graphql::Error {
    AppError::internal("an event reached a subscription of another kind").extend()
}

/// A new chat message.
pub struct ChatMessageEvent(Arc<LiveEvent>);

#[Object]
impl ChatMessageEvent {
    /// Pass as `after` when subscribing again to resume after this event.
    async fn cursor(&self) -> String {
        self.0.record.cursor.to_string()
    }
    async fn message(&self) -> Result<ChatMessageObject> {
        match &self.0.payload {
            Payload::ChatMessage(message) => Ok(ChatMessageObject(message.clone())),
            _ => Err(mismatch()),
        }
    }
}

/// A chat message whose status moved.
pub struct ChatStatusEvent(Arc<LiveEvent>);

#[Object]
impl ChatStatusEvent {
    /// Pass as `after` when subscribing again to resume after this event.
    async fn cursor(&self) -> String {
        self.0.record.cursor.to_string()
    }
    /// The message, with the status it moved to.
    async fn message(&self) -> Result<ChatMessageObject> {
        match &self.0.payload {
            Payload::ChatStatus(message) => Ok(ChatMessageObject(message.clone())),
            _ => Err(mismatch()),
        }
    }
}

/// A new notification.
pub struct NotificationEvent(Arc<LiveEvent>);

#[Object]
impl NotificationEvent {
    /// Pass as `after` when subscribing again to resume after this event.
    async fn cursor(&self) -> String {
        self.0.record.cursor.to_string()
    }
    async fn notification(&self) -> Result<NotificationObject> {
        match &self.0.payload {
            Payload::Notification { notification, .. } => Ok(NotificationObject(notification.clone())),
            _ => Err(mismatch()),
        }
    }
    /// The provider's unread notifications once this one arrived.
    async fn unread_count(&self) -> Result<u64> {
        match &self.0.payload {
            Payload::Notification { unread_count, .. } => Ok(*unread_count),
            _ => Err(mismatch()),
        }
    }
}

/// A change to a ticket.
pub struct TicketEvent(Arc<LiveEvent>);

#[Object]
impl TicketEvent {
    /// Pass as `after` when subscribing again to resume after this event.
    async fn cursor(&self) -> String {
        self.0.record.cursor.to_string()
    }
    /// The ticket as it is now, with its whole history.
    async fn ticket(&self) -> Result<TicketObject> {
        match &self.0.payload {
            Payload::Ticket(ticket) => Ok(TicketObject(ticket.clone())),
            _ => Err(mismatch()),
        }
    }
}
