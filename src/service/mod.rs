//! The service layer: every business rule of the spec, one module per area.
//!
//! Services take typed, already-parsed input (see [`input`]) and a [`Session`] naming the provider
//! on whose behalf they act; everything they read or write is scoped to that provider, so another
//! provider's ids simply are not found. Resolvers and the REST shim hold no rules of their own.

pub mod attachments;
pub mod audit;
pub mod auth;
mod auth_cache;
mod blob_holds;
pub mod canned_replies;
pub mod chat;
pub mod chat_wait;
pub mod customers;
pub mod idempotency;
pub mod inbox;
pub mod input;
pub mod integrations;
pub mod jobs;
pub mod notifications;
pub mod outbound;
pub mod ports;
pub mod read_sync;
pub mod realtime;
pub mod receipts;
pub mod search;
pub mod sla;
pub mod ticket_events;
pub mod tickets;
pub mod typing;
mod upload_files;

use self::ports::WechatLogin;
use crate::domain::{Customer, Id, ServiceProvider, Timestamp};
use crate::error::{AppError, AppResult};
use crate::limits::Guard;
use crate::store::{CustomerStore, ProviderStore, SharedStore, SharedTokenStore};
use std::net::IpAddr;
use std::sync::Arc;

/// Where a request comes from, as the HTTP layer found out: for the audit log, the sign-in
/// limits and the log lines.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address (the socket's, or a trusted proxy's `X-Forwarded-For`).
    pub ip: Option<IpAddr>,
    /// The request's `x-request-id` (shared with the request's context: not copied per request).
    pub request_id: Option<Arc<str>>,
}

/// The signed-in provider a request acts for, from a verified, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Session {
    pub provider_id: Id,
    /// The access token's id (`jti`), for revocation.
    pub token_id: String,
    /// The refresh-token family the access token was issued in.
    pub family_id: String,
    pub expires_at: Timestamp,
}

/// All services, built once and shared.
#[derive(Clone)]
pub struct Services {
    pub store: SharedStore,
    /// Where tokens live: the main store, or Redis.
    pub tokens: SharedTokenStore,
    pub auth: Arc<auth::AuthService>,
    pub customers: customers::CustomerService,
    pub tickets: tickets::TicketService,
    pub notifications: notifications::NotificationService,
    pub chat: chat::ChatService,
    pub inbox: inbox::InboxService,
    pub canned_replies: canned_replies::CannedReplyService,
    pub search: search::SearchService,
    /// The first answer to a request with an idempotency key, given again to its retries.
    pub idempotency: idempotency::IdempotencyService,
    pub realtime: Arc<realtime::Realtime>,
    /// What goes out to the other systems, and the dispatcher's bell.
    pub outbound: Arc<outbound::Outbound>,
    pub integrations: integrations::IntegrationService,
    /// Typing indicators, both ways: never stored.
    pub typing: typing::TypingService,
    pub jobs: jobs::JobService,
    pub audit: audit::AuditService,
    /// Rate limits, sign-in limits and bans.
    pub guard: Arc<Guard>,
    /// The clock of ticket times, service-level timers and jobs (tests move it).
    pub clock: crate::domain::Clock,
    /// Ticket changes made in the PC customer-service system.
    pub ticket_events: ticket_events::TicketEventService,
    /// Delivery and read receipts from the PC customer-service system.
    pub receipts: receipts::ReceiptService,
    /// Uploads, signed download URLs and the orphan job's work.
    pub attachments: attachments::AttachmentService,
}

impl Services {
    pub fn new(
        store: SharedStore,
        auth: auth::AuthService,
        realtime: Arc<realtime::Realtime>,
        outbound: Arc<outbound::Outbound>,
        wechat: Option<Arc<dyn WechatLogin>>,
        job_settings: jobs::JobSettings,
        guard: Arc<Guard>,
    ) -> Services {
        let canned_replies = canned_replies::CannedReplyService::new(&store);
        let clock = job_settings.clock.clone();
        let tickets = tickets::TicketService::new(&store, canned_replies.clone(), realtime.clone(), outbound.clone())
            .with_timers(job_settings.clock.clone(), job_settings.sla.clone());
        let tokens = auth.tokens().clone();
        let ticket_events = ticket_events::TicketEventService::new(&store, tickets.clone());
        let receipts = receipts::ReceiptService::new(&store, realtime.clone());
        Services {
            tokens,
            auth: Arc::new(auth),
            customers: customers::CustomerService::new(&store),
            inbox: inbox::InboxService::new(&store, customers::CustomerService::new(&store), realtime.clone())
                .with_read_sync(read_sync::ReadSync::new(outbound.clone())),
            notifications: notifications::NotificationService::new(&store, realtime.clone()),
            search: search::SearchService::new(&store),
            chat: chat::ChatService::new(
                &store,
                canned_replies.clone(),
                tickets.clone(),
                realtime.clone(),
                outbound.clone(),
            ),
            canned_replies,
            idempotency: idempotency::IdempotencyService::new(&store),
            tickets,
            integrations: integrations::IntegrationService::new(&store, realtime.clone(), outbound.clone(), wechat),
            jobs: jobs::JobService::new(&store, realtime.clone(), outbound.clone(), job_settings),
            typing: typing::TypingService::new(&store, guard.clone(), outbound.clone(), realtime.remote()),
            outbound,
            realtime,
            audit: audit::AuditService::new(&store),
            guard,
            clock,
            ticket_events,
            receipts,
            attachments: attachments::AttachmentService::new(&store, attachments::AttachmentSettings::unconfigured()),
            store,
        }
    }
}

impl Services {
    /// The services with the attachments' settings (the URL key, the limits, the upload directory).
    pub fn with_attachments(mut self, settings: attachments::AttachmentSettings) -> Services {
        self.attachments = attachments::AttachmentService::new(&self.store, settings);
        self.jobs = self.jobs.with_attachments(self.attachments.clone());
        self.chat = self.chat.with_attachment_urls(self.attachments.clone());
        self
    }
}

/// One of the session's provider's customers; another provider's is NOT_FOUND, like a missing one.
async fn provider_customer(store: &dyn CustomerStore, session: &Session, id: &Id) -> AppResult<Customer> {
    store
        .customers_by_ids(&session.provider_id, std::slice::from_ref(id))
        .await?
        .pop()
        .ok_or(AppError::NotFound("客户"))
}

/// The provider behind a session, who signs the history entries and chat messages it writes.
async fn acting_provider(store: &dyn ProviderStore, session: &Session) -> AppResult<ServiceProvider> {
    store
        .providers_by_ids(std::slice::from_ref(&session.provider_id))
        .await?
        .pop()
        .ok_or(AppError::Unauthenticated("账号不存在或已停用，请重新登录"))
}
