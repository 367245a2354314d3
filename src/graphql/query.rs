//! The query root: everything a provider reads.

use super::chat_history::ChatMessagePageObject;
use super::inbox::{BadgesObject, ConversationFilterObject, ConversationObject, ConversationPageObject};
use super::objects::{
    AuditEntryObject, CustomerObject, NotificationObject, NotificationPageObject, PageObject, ProviderObject,
    UsageReport,
};
use super::search::{SearchHitPageObject, SearchKindObject};
use super::ticket_objects::TicketObject;
use super::ContextExt;
use crate::domain::{CustomerStatus, NotificationType, ReadStatus, SearchKind, SlaStatus, TicketStatus, TicketType};
use crate::error::AppError;
use crate::service::chat::ChatQuery;
use crate::service::inbox::InboxQuery;
use crate::service::input;
use crate::store::{NotificationFilter, SlaFilter, TicketFilter};
use async_graphql::{Context, ErrorExtensions, Object, ResultExt, ID};

type Result<T> = async_graphql::Result<T>;

/// The query root's core part; [`super::QueryRoot`] merges it with the areas' parts.
#[derive(Default)]
pub struct CoreQuery;

#[Object]
impl CoreQuery {
    /// The signed-in provider.
    async fn me(&self, ctx: &Context<'_>) -> Result<ProviderObject> {
        let session = ctx.session()?;
        let found = ctx.services().store.providers_by_ids(std::slice::from_ref(&session.provider_id)).await.extend()?;
        found.into_iter().next().map(ProviderObject).ok_or_else(|| AppError::NotFound("服务商").extend())
    }

    /// The provider's customers, most recently updated first.
    async fn customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i64,
        #[graphql(default = 10)] page_size: i64,
        status: Option<CustomerStatus>,
        #[graphql(desc = "Matches a part of the customer's name or contact person.")] keyword: Option<String>,
    ) -> Result<PageObject<CustomerObject>> {
        let session = ctx.session()?;
        let page = input::page(page, page_size).extend()?;
        let keyword = input::keyword(keyword.as_deref()).extend()?;
        let customers = ctx.services().customers.list(session, status, keyword, page).await.extend()?;
        Ok(PageObject::from_page(customers, CustomerObject))
    }

    /// One search over the provider's customers (name, contact person, the phone number's last 4
    /// digits), tickets (title, content, replies) and chat messages, newest first. The query is
    /// 1 to 50 characters, matched literally; `kinds` defaults to all three.
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        kinds: Option<Vec<SearchKindObject>>,
        #[graphql(default = 1)] page: i64,
        #[graphql(default = 10)] page_size: i64,
    ) -> Result<SearchHitPageObject> {
        let session = ctx.session()?;
        let page = input::page(page, page_size).extend()?;
        let kinds = kinds.map(|kinds| kinds.into_iter().map(SearchKind::from).collect());
        let hits = ctx.services().search.search(session, &query, kinds, page).await.extend()?;
        Ok(SearchHitPageObject::from_found(hits))
    }

    /// One of the provider's customers.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<CustomerObject> {
        let session = ctx.session()?;
        let id = input::id(&id, "id", "客户ID").extend()?;
        ctx.services().customers.get(session, &id).await.map(CustomerObject).extend()
    }

    /// How deeply a customer uses the software.
    async fn usage_score(&self, ctx: &Context<'_>, customer_id: ID) -> Result<UsageReport> {
        let session = ctx.session()?;
        let id = input::id(&customer_id, "customerId", "客户ID").extend()?;
        let (customer, assessment) = ctx.services().customers.usage(session, &id).await.extend()?;
        Ok(UsageReport::new(customer, assessment))
    }

    /// The provider's tickets, most recently updated first; `customerId` narrows to one customer.
    #[allow(clippy::too_many_arguments)]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i64,
        #[graphql(default = 10)] page_size: i64,
        status: Option<TicketStatus>,
        #[graphql(name = "type")] ticket_type: Option<TicketType>,
        customer_id: Option<ID>,
        #[graphql(desc = "Only tickets in this service-level status now (most overdue first).")] sla: Option<SlaStatus>,
    ) -> Result<PageObject<TicketObject>> {
        let session = ctx.session()?;
        let page = input::page(page, page_size).extend()?;
        let customer_id = customer_id.map(|id| input::id(&id, "customerId", "客户ID")).transpose().extend()?;
        let sla = sla.map(|status| SlaFilter { status, now: ctx.services().clock.now() });
        let filter = TicketFilter { customer_id, status, ticket_type, sla };
        let tickets = ctx.services().tickets.list(session, &filter, page).await.extend()?;
        Ok(PageObject::from_page(tickets, TicketObject))
    }

    /// One of the provider's tickets, with its history.
    async fn ticket(&self, ctx: &Context<'_>, id: ID) -> Result<TicketObject> {
        let session = ctx.session()?;
        let id = input::id(&id, "id", "工单ID").extend()?;
        ctx.services().tickets.get(session, &id).await.map(TicketObject).extend()
    }

    /// The provider's notifications, newest first, with the unread count.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i64,
        #[graphql(default = 10)] page_size: i64,
        #[graphql(name = "type")] notification_type: Option<NotificationType>,
        read_status: Option<ReadStatus>,
    ) -> Result<NotificationPageObject> {
        let session = ctx.session()?;
        let page = input::page(page, page_size).extend()?;
        let filter = NotificationFilter { notification_type, read_status };
        let found = ctx.services().notifications.list(session, &filter, page).await.extend()?;
        Ok(NotificationPageObject {
            total: found.total,
            page: found.request.page(),
            page_size: found.request.page_size(),
            items: found.items.into_iter().map(NotificationObject).collect(),
        })
    }

    /// One of the provider's notifications.
    async fn notification(&self, ctx: &Context<'_>, id: ID) -> Result<NotificationObject> {
        let session = ctx.session()?;
        let id = input::id(&id, "id", "消息ID").extend()?;
        ctx.services().notifications.get(session, &id).await.map(NotificationObject).extend()
    }

    /// The conversation with a customer, each page oldest to newest: by page number, page 1
    /// holding the latest messages; or by keyset, the `pageSize` messages just before or just
    /// after one of its messages, which messages sent meanwhile never shift.
    async fn chat_messages(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        #[graphql(default = 1)] page: i64,
        #[graphql(default = 20)] page_size: i64,
        #[graphql(desc = "The messages older than this message of the conversation (page must be 1).")] before: Option<
            ID,
        >,
        #[graphql(desc = "The messages newer than this message of the conversation (page must be 1).")] after: Option<
            ID,
        >,
    ) -> Result<ChatMessagePageObject> {
        let session = ctx.session()?;
        let customer = input::id(&customer_id, "customerId", "客户ID").extend()?;
        let page = input::page(page, page_size).extend()?;
        let before = before.map(|id| input::id(&id, "before", "消息ID")).transpose().extend()?;
        let after = after.map(|id| input::id(&id, "after", "消息ID")).transpose().extend()?;
        let query = ChatQuery { page, before, after };
        let messages = ctx.services().chat.messages(session, &customer, query).await.extend()?;
        Ok(messages.into())
    }

    /// The provider's inbox: one conversation per customer who wrote or was written to. `ALL`
    /// and `UNREAD` by last message, newest first; `WAITING` (a customer waits for a reply) by
    /// how long, longest first. By page number, or the page after a conversation's `cursor`.
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ConversationFilterObject::All")] filter: ConversationFilterObject,
        #[graphql(default = 1)] page: i64,
        #[graphql(default = 20)] page_size: i64,
        #[graphql(desc = "The `cursor` of the last conversation seen: the page after it (page must be 1).")]
        after: Option<String>,
    ) -> Result<ConversationPageObject> {
        let session = ctx.session()?;
        let page = input::page(page, page_size).extend()?;
        let query = InboxQuery { filter: filter.into(), page, after };
        Ok(ctx.services().inbox.conversations(session, query).await.extend()?.into())
    }

    /// The conversation with one customer (NOT_FOUND if there is no message yet).
    async fn conversation(&self, ctx: &Context<'_>, customer_id: ID) -> Result<ConversationObject> {
        let session = ctx.session()?;
        let customer = input::id(&customer_id, "customerId", "客户ID").extend()?;
        ctx.services().inbox.conversation(session, &customer).await.map(ConversationObject).extend()
    }

    /// The numbers of the mini-program's tabs: unread notifications, unread chat messages, and
    /// conversations waiting for a reply (the `badges` subscription pushes their changes).
    async fn badges(&self, ctx: &Context<'_>) -> Result<BadgesObject> {
        let session = ctx.session()?;
        Ok(ctx.services().inbox.badges(session).await.extend()?.into())
    }

    /// The provider's own audit log, newest first: every mutation and sign-in attempt made on its
    /// account, with the operation, target, client address and result.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i64,
        #[graphql(default = 20)] page_size: i64,
    ) -> Result<PageObject<AuditEntryObject>> {
        let session = ctx.session()?;
        let page = input::page(page, page_size).extend()?;
        let entries = ctx.services().audit.list(session, page).await.extend()?;
        Ok(PageObject::from_page(entries, AuditEntryObject))
    }
}
