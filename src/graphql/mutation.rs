//! The mutation root: signing in and out, and every change a provider makes.
//!
//! Every mutation that creates or changes something takes an optional `idempotencyKey`: the
//! idempotency extension (`super::idempotency`) answers a retry with the first answer, and the
//! resolvers pass the key on to the service, whose write claims it in its transaction.

use super::inbox::ConversationObject;
use super::objects::{
    AuthPayload, ChatMessageObject, LogoutPayload, MarkAllReadPayload, NotificationObject, ProviderObject, TokenPair,
};
use super::scalars::DateTime;
use super::ticket_objects::{EscalationObject, ReplyObject, TicketObject};
use super::ContextExt;
use crate::domain::{ChatStatus, TextLimit, TicketType};
use crate::error::AppError;
use crate::service::attachments::{attachment_id_list, compose_with_attachments};
use crate::service::input;
use crate::service::tickets::NewTicket;
use async_graphql::{Context, Object, ResultExt, ID};

type Result<T> = async_graphql::Result<T>;

/// The mutation root's core part; [`super::MutationRoot`] merges it with the areas' parts.
#[derive(Default)]
pub struct CoreMutation;

#[Object]
impl CoreMutation {
    /// Signs in with username and password.
    async fn login(&self, ctx: &Context<'_>, username: String, password: String) -> Result<AuthPayload> {
        let (provider, tokens) = ctx.services().auth.login(&username, &password, &ctx.client()).await.extend()?;
        Ok(AuthPayload {
            token: tokens.token,
            refresh_token: tokens.refresh_token,
            expires_at: DateTime(tokens.expires_at),
            user_info: ProviderObject(provider),
        })
    }

    /// Signs out: the access token (given here, or else the one the request carries) and its
    /// refresh token stop working at once.
    async fn logout(&self, ctx: &Context<'_>, token: Option<String>) -> Result<LogoutPayload> {
        let auth = &ctx.services().auth;
        let session = match token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            Some(token) => auth.authenticate(token).await.extend()?,
            None => ctx.session()?.clone(),
        };
        ctx.audit_actor(&session.provider_id);
        ctx.audit_target(&session.provider_id.to_string());
        auth.logout(&session).await.extend()?;
        Ok(LogoutPayload { success: true })
    }

    /// Trades a refresh token for a new token pair. Each refresh token works once.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<TokenPair> {
        let tokens = ctx.services().auth.refresh(&refresh_token, &ctx.client()).await.extend()?;
        ctx.audit_actor(&tokens.provider_id);
        ctx.audit_target(&tokens.provider_id.to_string());
        Ok(TokenPair {
            token: tokens.token,
            refresh_token: tokens.refresh_token,
            expires_at: DateTime(tokens.expires_at),
        })
    }

    /// Opens a ticket for a customer.
    // The spec's fields and the attachments, as GraphQL arguments.
    #[allow(clippy::too_many_arguments)]
    async fn create_ticket(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        title: String,
        content: String,
        #[graphql(name = "type")] ticket_type: TicketType,
        #[graphql(
            desc = "A client-chosen key (1 to 64 letters, digits, _ or -): a retry of the same request with it gets the first answer again and changes nothing; the same key with another request is a CONFLICT. REST: the Idempotency-Key header."
        )]
        idempotency_key: Option<String>,
        #[graphql(desc = "Files uploaded with POST /api/uploads (at most 9, the provider's own).")]
        attachment_ids: Option<Vec<ID>>,
    ) -> Result<TicketObject> {
        let session = ctx.session()?;
        ctx.audit_target(&customer_id);
        let attachment_ids = attachment_id_list(attachment_ids.iter().flatten().map(|id| id.0.as_str())).extend()?;
        let new = NewTicket {
            customer_id: input::id(&customer_id, "customerId", "客户ID").extend()?,
            title: input::text(&title, TextLimit::TICKET_TITLE).extend()?,
            content: input::text(&content, TextLimit::TICKET_CONTENT).extend()?,
            ticket_type,
            escalation_reason: None,
            idempotency_key: input::idempotency_key(idempotency_key.as_deref()).extend()?,
        };
        let services = ctx.services();
        let ticket =
            services.attachments.create_ticket(&services.tickets, session, new, &attachment_ids).await.extend()?;
        ctx.audit_target(ticket.id.as_str());
        Ok(TicketObject(ticket))
    }

    /// Replies to a ticket: with `content`, or with one of the provider's canned replies
    /// (`cannedReplyId`), its placeholders filled for the ticket's customer. Exactly one of the two.
    async fn reply_ticket(
        &self,
        ctx: &Context<'_>,
        id: ID,
        content: Option<String>,
        #[graphql(desc = "One of the provider's canned replies to send instead of `content`.")] canned_reply_id: Option<
            ID,
        >,
        #[graphql(
            desc = "A client-chosen key (1 to 64 letters, digits, _ or -): a retry of the same request with it gets the first answer again and changes nothing; the same key with another request is a CONFLICT. REST: the Idempotency-Key header."
        )]
        idempotency_key: Option<String>,
        #[graphql(
            desc = "Files uploaded with POST /api/uploads (at most 9, the provider's own); content may then be empty."
        )]
        attachment_ids: Option<Vec<ID>>,
    ) -> Result<ReplyObject> {
        let session = ctx.session()?;
        ctx.audit_target(&id);
        let id = input::id(&id, "id", "工单ID").extend()?;
        let attachment_ids = attachment_id_list(attachment_ids.iter().flatten().map(|id| id.0.as_str())).extend()?;
        let content = compose_with_attachments(
            content.as_deref(),
            canned_reply_id.as_deref().map(String::as_str),
            TextLimit::REPLY_CONTENT,
            !attachment_ids.is_empty(),
        )
        .extend()?;
        let key = input::idempotency_key(idempotency_key.as_deref()).extend()?;
        let services = ctx.services();
        let reply = services.attachments.reply_ticket(&services.tickets, session, &id, content, &attachment_ids, key);
        reply.await.map(ReplyObject).extend()
    }

    /// Marks a ticket resolved.
    async fn resolve_ticket(
        &self,
        ctx: &Context<'_>,
        id: ID,
        resolution: Option<String>,
        #[graphql(
            desc = "A client-chosen key (1 to 64 letters, digits, _ or -): a retry of the same request with it gets the first answer again and changes nothing; the same key with another request is a CONFLICT. REST: the Idempotency-Key header."
        )]
        idempotency_key: Option<String>,
    ) -> Result<TicketObject> {
        let session = ctx.session()?;
        ctx.audit_target(&id);
        let id = input::id(&id, "id", "工单ID").extend()?;
        let resolution = input::optional_text(resolution.as_deref(), TextLimit::RESOLUTION).extend()?;
        let key = input::idempotency_key(idempotency_key.as_deref()).extend()?;
        ctx.services().tickets.resolve(session, &id, resolution, key).await.map(TicketObject).extend()
    }

    /// Escalates a ticket to a higher level of support.
    async fn escalate_ticket(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
        #[graphql(
            desc = "A client-chosen key (1 to 64 letters, digits, _ or -): a retry of the same request with it gets the first answer again and changes nothing; the same key with another request is a CONFLICT. REST: the Idempotency-Key header."
        )]
        idempotency_key: Option<String>,
    ) -> Result<EscalationObject> {
        let session = ctx.session()?;
        ctx.audit_target(&id);
        let id = input::id(&id, "id", "工单ID").extend()?;
        let reason = input::text(&reason, TextLimit::REASON).extend()?;
        let key = input::idempotency_key(idempotency_key.as_deref()).extend()?;
        ctx.services().tickets.escalate(session, &id, reason, key).await.map(EscalationObject).extend()
    }

    /// Marks a notification read. Naturally idempotent (marking a read notification read again
    /// changes nothing), so it takes no idempotency key.
    async fn mark_notification_read(&self, ctx: &Context<'_>, id: ID) -> Result<NotificationObject> {
        let session = ctx.session()?;
        ctx.audit_target(&id);
        let id = input::id(&id, "id", "消息ID").extend()?;
        ctx.services().notifications.mark_read(session, &id).await.map(NotificationObject).extend()
    }

    /// Marks every unread notification read. Naturally idempotent (a retry finds nothing left to
    /// mark and answers a count of 0), so it takes no idempotency key.
    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> Result<MarkAllReadPayload> {
        let session = ctx.session()?;
        let (marked_count, at) = ctx.services().notifications.mark_all_read(session).await.extend()?;
        Ok(MarkAllReadPayload { success: true, marked_count, updated_at: DateTime(at) })
    }

    /// Sends a chat message to a customer: `content`, or one of the provider's canned replies
    /// (`cannedReplyId`), its placeholders filled for this customer. Exactly one of the two.
    async fn send_chat_message(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        content: Option<String>,
        #[graphql(desc = "One of the provider's canned replies to send instead of `content`.")] canned_reply_id: Option<
            ID,
        >,
        #[graphql(
            desc = "A client-chosen key (1 to 64 letters, digits, _ or -): a retry of the same request with it gets the first answer again and changes nothing; the same key with another request is a CONFLICT. REST: the Idempotency-Key header."
        )]
        idempotency_key: Option<String>,
        #[graphql(
            desc = "Files uploaded with POST /api/uploads (at most 9, the provider's own); content may then be empty."
        )]
        attachment_ids: Option<Vec<ID>>,
    ) -> Result<ChatMessageObject> {
        let session = ctx.session()?;
        ctx.audit_target(&customer_id);
        let customer = input::id(&customer_id, "customerId", "客户ID").extend()?;
        let attachment_ids = attachment_id_list(attachment_ids.iter().flatten().map(|id| id.0.as_str())).extend()?;
        let content = compose_with_attachments(
            content.as_deref(),
            canned_reply_id.as_deref().map(String::as_str),
            TextLimit::CHAT_CONTENT,
            !attachment_ids.is_empty(),
        )
        .extend()?;
        let key = input::idempotency_key(idempotency_key.as_deref()).extend()?;
        let chat = &ctx.services().chat;
        chat.send_with_attachments(session, &customer, content, &attachment_ids, key)
            .await
            .map(ChatMessageObject)
            .extend()
    }

    /// Acknowledges the customer's messages as delivered to the provider's phone, or read there.
    /// Statuses only move forward; answers the messages whose status moved. Naturally idempotent
    /// (a retry moves nothing further), so it takes no idempotency key.
    async fn acknowledge_chat_messages(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        message_ids: Vec<ID>,
        status: ChatStatus,
    ) -> Result<Vec<ChatMessageObject>> {
        let session = ctx.session()?;
        ctx.audit_target(&customer_id);
        let customer = input::id(&customer_id, "customerId", "客户ID").extend()?;
        let ids = message_ids
            .iter()
            .map(|id| input::id(id, "messageIds", "消息ID"))
            .collect::<std::result::Result<Vec<_>, AppError>>()
            .extend()?;
        let moved = ctx.services().chat.acknowledge(session, &customer, &ids, status).await.extend()?;
        Ok(moved.into_iter().map(ChatMessageObject).collect())
    }

    /// Marks every message of the customer read (each one's `chatMessageStatus` event goes out as
    /// an acknowledgement's does) and clears an unread mark. Naturally idempotent.
    async fn mark_conversation_read(&self, ctx: &Context<'_>, customer_id: ID) -> Result<ConversationObject> {
        let session = ctx.session()?;
        ctx.audit_target(&customer_id);
        let customer = input::id(&customer_id, "customerId", "客户ID").extend()?;
        ctx.services().inbox.mark_read(session, &customer).await.map(ConversationObject).extend()
    }

    /// Brings a conversation back as unread for the provider (its unread count at least 1) until
    /// it is marked read. Naturally idempotent.
    async fn mark_conversation_unread(&self, ctx: &Context<'_>, customer_id: ID) -> Result<ConversationObject> {
        let session = ctx.session()?;
        ctx.audit_target(&customer_id);
        let customer = input::id(&customer_id, "customerId", "客户ID").extend()?;
        ctx.services().inbox.mark_unread(session, &customer).await.map(ConversationObject).extend()
    }

    /// Tells the customer's side that the provider is typing: call it while composing, as often
    /// as on every keystroke. At most one call a second per customer is forwarded (as a
    /// `chat.typing` event to the PC customer-service system, when that is configured; dropped if
    /// not sent within 10 s); the answer is false for a call within a second of the last
    /// forwarded one (not forwarded, too soon; not an error, there is nothing to retry) and true
    /// otherwise. Nothing is stored, so it takes no idempotency key and leaves no audit entry.
    async fn typing(&self, ctx: &Context<'_>, customer_id: ID) -> Result<bool> {
        let session = ctx.session()?;
        let customer = input::id(&customer_id, "customerId", "客户ID").extend()?;
        ctx.services().typing.provider_typing(session, &customer).await.extend()
    }

    /// Binds the WeChat account of the mini-program user to the signed-in provider, from the code
    /// `wx.login` gave the mini-program, so that WeChat subscribe messages reach it while the app
    /// is not connected. False when this server sends no WeChat messages (nothing is bound).
    async fn bind_wechat(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The code from the mini-program's wx.login.")] code: String,
        #[graphql(
            desc = "A client-chosen key (1 to 64 letters, digits, _ or -): a retry of the same request with it gets the first answer again and changes nothing; the same key with another request is a CONFLICT. REST: the Idempotency-Key header."
        )]
        idempotency_key: Option<String>,
    ) -> Result<bool> {
        let session = ctx.session()?;
        // The answer is what a retry needs (a wx.login code works once): the extension keeps it.
        input::idempotency_key(idempotency_key.as_deref()).extend()?;
        ctx.services().integrations.bind_wechat(session, &code).await.extend()
    }

    /// Turns a chat the provider cannot settle into an escalated ticket.
    async fn escalate_chat(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        #[graphql(desc = "The ticket's content: a summary of the conversation.")] content: String,
        reason: String,
        #[graphql(
            desc = "A client-chosen key (1 to 64 letters, digits, _ or -): a retry of the same request with it gets the first answer again and changes nothing; the same key with another request is a CONFLICT. REST: the Idempotency-Key header."
        )]
        idempotency_key: Option<String>,
    ) -> Result<TicketObject> {
        let session = ctx.session()?;
        ctx.audit_target(&customer_id);
        let customer = input::id(&customer_id, "customerId", "客户ID").extend()?;
        let content = input::text(&content, TextLimit::TICKET_CONTENT).extend()?;
        let reason = input::text(&reason, TextLimit::REASON).extend()?;
        let key = input::idempotency_key(idempotency_key.as_deref()).extend()?;
        let ticket = ctx.services().chat.escalate(session, &customer, content, reason, key).await.extend()?;
        ctx.audit_target(ticket.id.as_str());
        Ok(TicketObject(ticket))
    }
}
