//! The GraphQL object types: views of domain values, named as the spec names their fields.

use super::attachments::AttachmentObject;
use super::loaders::{CustomerLoader, ProviderLoader};
use super::scalars::DateTime;
use super::ticket_objects::TicketObject;
use super::ContextExt;
use crate::domain::usage::{Level, MeasureAssessment, UsageAssessment};
use crate::domain::{
    now, AuditEntry, ChatMessage, ChatSender, ChatStatus, Customer, CustomerStatus, Id, Notification, NotificationType,
    Page, ReadStatus, ServiceProvider,
};
use crate::error::AppError;
use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, ErrorExtensions, Object, OutputType, ResultExt, SimpleObject, ID};

pub(super) fn id(id: &Id) -> ID {
    ID(id.to_string())
}

/// A page of a list, with the size of the whole list.
#[derive(SimpleObject)]
#[graphql(concrete(name = "CustomerPage", params(CustomerObject)))]
#[graphql(concrete(name = "TicketPage", params(TicketObject)))]
#[graphql(concrete(name = "AuditEntryPage", params(AuditEntryObject)))]
pub struct PageObject<T: OutputType> {
    pub items: Vec<T>,
    /// Items in the whole list, over all pages.
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

impl<T: OutputType> PageObject<T> {
    pub fn from_page<D>(page: Page<D>, view: impl FnMut(D) -> T) -> PageObject<T> {
        let request = page.request;
        PageObject {
            items: page.items.into_iter().map(view).collect(),
            total: page.total,
            page: request.page(),
            page_size: request.page_size(),
        }
    }
}

/// A page of notifications, with the provider's unread count.
#[derive(SimpleObject)]
#[graphql(complex, name = "NotificationPage")]
pub struct NotificationPageObject {
    pub items: Vec<NotificationObject>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

#[ComplexObject]
impl NotificationPageObject {
    /// Unread notifications of the provider, over all pages and filters.
    async fn unread_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        ctx.services().notifications.unread_count(ctx.session()?).await.extend()
    }
}

pub struct ProviderObject(pub ServiceProvider);

/// A service provider: the signed-in user of the mini-program.
#[Object(name = "ServiceProvider")]
impl ProviderObject {
    async fn id(&self) -> ID {
        id(&self.0.id)
    }
    async fn username(&self) -> &str {
        &self.0.username
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn contact_person(&self) -> &str {
        &self.0.contact_person
    }
    async fn phone(&self) -> &str {
        &self.0.phone
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn region(&self) -> &str {
        &self.0.region
    }
    /// `active` or `inactive`.
    async fn status(&self) -> &str {
        self.0.status.as_str()
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
}

/// The four usage measures of a customer, 0 to 100 each.
#[derive(SimpleObject)]
pub struct UsageScoreDetails {
    pub login_frequency: u8,
    pub feature_usage: u8,
    pub data_input: u8,
    pub training_completion: u8,
}

pub struct CustomerObject(pub Customer);

/// A customer of the provider.
#[Object(name = "Customer")]
impl CustomerObject {
    async fn id(&self) -> ID {
        id(&self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn contact_person(&self) -> &str {
        &self.0.contact_person
    }
    async fn phone(&self) -> &str {
        &self.0.phone
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn region(&self) -> &str {
        &self.0.region
    }
    async fn software_version(&self) -> &str {
        &self.0.software_version
    }
    async fn port_count(&self) -> u32 {
        self.0.port_count
    }
    async fn purchase_date(&self) -> DateTime {
        self.0.purchase_date.into()
    }
    async fn expiry_date(&self) -> DateTime {
        self.0.expiry_date.into()
    }
    /// Derived from the expiry date: expired once past it, expiring within 30 days of it.
    async fn status(&self) -> CustomerStatus {
        self.0.status_at(now())
    }
    async fn service_provider_id(&self) -> ID {
        id(&self.0.service_provider_id)
    }
    async fn service_provider_name(&self) -> &str {
        &self.0.service_provider_name
    }
    /// The total usage score, 0 to 100 (see `usageReport` for how it is made up).
    async fn usage_score(&self) -> u8 {
        self.0.usage_score()
    }
    async fn usage_score_details(&self) -> UsageScoreDetails {
        let usage = &self.0.usage;
        UsageScoreDetails {
            login_frequency: usage.login_frequency,
            feature_usage: usage.feature_usage,
            data_input: usage.data_input,
            training_completion: usage.training_completion,
        }
    }
    /// Open and processing tickets of this customer.
    async fn unresolved_issues(&self) -> u32 {
        self.0.unresolved_issues
    }
    async fn last_active_time(&self) -> DateTime {
        self.0.last_active_time.into()
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
}

/// The assessment of one usage measure.
#[derive(SimpleObject)]
#[graphql(name = "UsageMeasure")]
pub struct MeasureObject {
    pub score: u8,
    /// 高, 中高, 中 or 低.
    pub level: &'static str,
    pub description: &'static str,
}

impl From<MeasureAssessment> for MeasureObject {
    fn from(m: MeasureAssessment) -> Self {
        MeasureObject { score: m.score, level: m.level.label(), description: m.description }
    }
}

/// The four measures, assessed.
#[derive(SimpleObject)]
pub struct UsageScoreBreakdown {
    pub login_frequency: MeasureObject,
    pub feature_usage: MeasureObject,
    pub data_input: MeasureObject,
    pub training_completion: MeasureObject,
}

/// How deeply a customer uses the software, with what to do about it.
#[derive(SimpleObject)]
pub struct UsageReport {
    pub customer_id: ID,
    pub customer_name: String,
    pub total_score: u8,
    /// 高, 中高, 中 or 低.
    pub score_level: &'static str,
    pub score_details: UsageScoreBreakdown,
    pub suggestions: Vec<&'static str>,
    /// When the measures were last updated.
    pub updated_at: DateTime,
}

impl UsageReport {
    pub fn new(customer: Customer, assessment: UsageAssessment) -> UsageReport {
        let level: Level = assessment.level;
        UsageReport {
            customer_id: id(&customer.id),
            customer_name: customer.name,
            total_score: assessment.total_score,
            score_level: level.label(),
            score_details: UsageScoreBreakdown {
                login_frequency: assessment.login_frequency.into(),
                feature_usage: assessment.feature_usage.into(),
                data_input: assessment.data_input.into(),
                training_completion: assessment.training_completion.into(),
            },
            suggestions: assessment.suggestions,
            updated_at: customer.usage_updated_at.into(),
        }
    }
}

pub(super) async fn load_customer(ctx: &Context<'_>, customer: &Id) -> async_graphql::Result<CustomerObject> {
    let loader = ctx.data::<DataLoader<CustomerLoader>>()?;
    match loader.load_one(customer.clone()).await {
        Ok(Some(customer)) => Ok(CustomerObject(customer)),
        Ok(None) => Err(AppError::NotFound("客户").extend()),
        Err(error) => Err(error.extend()),
    }
}

pub(super) async fn load_provider_name(ctx: &Context<'_>, provider: &Id) -> async_graphql::Result<String> {
    let loader = ctx.data::<DataLoader<ProviderLoader>>()?;
    match loader.load_one(provider.clone()).await {
        Ok(Some(provider)) => Ok(provider.name),
        Ok(None) => Err(AppError::NotFound("服务商").extend()),
        Err(error) => Err(error.extend()),
    }
}

pub struct NotificationObject(pub Notification);

/// A notification to the provider (the spec's "message").
#[Object(name = "Notification")]
impl NotificationObject {
    async fn id(&self) -> ID {
        id(&self.0.id)
    }
    async fn service_provider_id(&self) -> ID {
        id(&self.0.service_provider_id)
    }
    #[graphql(name = "type")]
    async fn notification_type(&self) -> NotificationType {
        self.0.notification_type
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn related_customer_id(&self) -> Option<ID> {
        self.0.related_customer_id.as_ref().map(id)
    }
    async fn related_customer_name(&self) -> Option<&str> {
        self.0.related_customer_name.as_deref()
    }
    async fn related_ticket_id(&self) -> Option<ID> {
        self.0.related_ticket_id.as_ref().map(id)
    }
    async fn read_status(&self) -> ReadStatus {
        self.0.read_status
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When it was first read; null while unread.
    async fn read_at(&self) -> Option<DateTime> {
        self.0.read_at.map(DateTime)
    }
}

/// The outcome of marking every notification read.
#[derive(SimpleObject)]
pub struct MarkAllReadPayload {
    pub success: bool,
    /// How many notifications were unread and are now read.
    pub marked_count: u64,
    pub updated_at: DateTime,
}

pub struct ChatMessageObject(pub ChatMessage);

/// A message of the conversation between the provider and a customer.
#[Object(name = "ChatMessage")]
impl ChatMessageObject {
    async fn id(&self) -> ID {
        id(&self.0.id)
    }
    async fn customer_id(&self) -> ID {
        id(&self.0.customer_id)
    }
    async fn customer_name(&self) -> &str {
        &self.0.customer_name
    }
    /// The customer, loaded in one batch for a whole page of messages.
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<CustomerObject> {
        load_customer(ctx, &self.0.customer_id).await
    }
    async fn service_provider_id(&self) -> ID {
        id(&self.0.service_provider_id)
    }
    async fn service_provider_name(&self) -> &str {
        &self.0.service_provider_name
    }
    async fn sender_type(&self) -> ChatSender {
        self.0.sender_type
    }
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn timestamp(&self) -> DateTime {
        self.0.timestamp.into()
    }
    async fn status(&self) -> ChatStatus {
        self.0.status
    }
    /// The files the message carries (at most nine), with signed URLs.
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AttachmentObject>> {
        super::attachments::attachments_of(ctx, &self.0.id).await
    }
}

/// What signing in returns.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// The access token, for `Authorization: Bearer <token>`.
    pub token: String,
    /// Trades for a new token pair at `refreshToken`; single use.
    pub refresh_token: String,
    pub expires_at: DateTime,
    pub user_info: ProviderObject,
}

/// A fresh token pair.
#[derive(SimpleObject)]
pub struct TokenPair {
    pub token: String,
    pub refresh_token: String,
    pub expires_at: DateTime,
}

/// The outcome of signing out.
#[derive(SimpleObject)]
pub struct LogoutPayload {
    pub success: bool,
}

pub struct AuditEntryObject(pub AuditEntry);

/// One audited action: a mutation or a sign-in attempt, over GraphQL or REST.
#[Object(name = "AuditEntry")]
impl AuditEntryObject {
    async fn id(&self) -> ID {
        id(&self.0.id)
    }
    /// When the action finished.
    async fn at(&self) -> DateTime {
        self.0.at.into()
    }
    /// The provider who acted (or whose account a sign-in tried).
    async fn service_provider_id(&self) -> Option<ID> {
        self.0.provider_id.as_ref().map(id)
    }
    /// The username a sign-in tried.
    async fn username(&self) -> Option<&str> {
        self.0.username.as_deref()
    }
    /// The mutation: `login`, `createTicket`, `replyTicket`, ...
    async fn operation(&self) -> &str {
        &self.0.operation
    }
    /// The entity acted on (a ticket, notification or customer id; the provider for sign-ins).
    async fn target_id(&self) -> Option<&str> {
        self.0.target_id.as_deref()
    }
    /// The client's address.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
    /// `ok`, or the error code the client got.
    async fn result(&self) -> &str {
        &self.0.result
    }
    /// The request's `x-request-id`.
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
}
