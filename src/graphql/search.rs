//! The search's GraphQL types: a page of typed hits, each with its snippet and, loaded on demand,
//! its customer (through the request's customer loader) and, for a ticket hit, its ticket.

use super::objects::CustomerObject;
use super::scalars::DateTime;
use super::ticket_objects::TicketObject;
use super::ContextExt;
use crate::domain::SearchKind;
use crate::service::search::{Found, ShownHit};
use async_graphql::{Context, Enum, Object, ResultExt, SimpleObject, ID};

/// What a search looks at, and what a hit is.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "SearchKind", remote = "SearchKind")]
pub enum SearchKindObject {
    /// A customer's name, contact person or the last 4 digits of the phone number.
    Customer,
    /// A ticket's title, content or one of its replies.
    Ticket,
    /// A chat message's content.
    Chat,
}

/// A page of search hits, newest first. A search counts and pages through its first 1,000 hits.
#[derive(SimpleObject)]
#[graphql(name = "SearchHitPage")]
pub struct SearchHitPageObject {
    pub items: Vec<SearchHitObject>,
    /// The number of hits over all pages, at most 1,000 (see `totalIsExact`).
    pub total: u64,
    /// False when more than 1,000 hits matched: `total` then reads 1,000, pages past it are
    /// empty, and the query wants narrowing.
    pub total_is_exact: bool,
    pub page: u32,
    pub page_size: u32,
}

impl SearchHitPageObject {
    pub fn from_found(found: Found) -> SearchHitPageObject {
        let request = found.page.request;
        SearchHitPageObject {
            items: found.page.items.into_iter().map(SearchHitObject).collect(),
            total: found.page.total,
            total_is_exact: found.total_is_exact,
            page: request.page(),
            page_size: request.page_size(),
        }
    }
}

pub struct SearchHitObject(pub ShownHit);

/// A customer, ticket or chat message whose text holds the query.
#[Object(name = "SearchHit")]
impl SearchHitObject {
    async fn kind(&self) -> SearchKindObject {
        self.0.hit.kind.into()
    }
    /// The customer's, the ticket's or the chat message's id.
    async fn id(&self) -> ID {
        ID(self.0.hit.id.to_string())
    }
    /// The customer the hit belongs to (the customer itself for a customer hit).
    async fn customer_id(&self) -> ID {
        ID(self.0.hit.customer_id.to_string())
    }
    /// A short piece of the matching text around the query, `…` where it was cut.
    async fn snippet(&self) -> &str {
        &self.0.snippet
    }
    /// A customer's or ticket's last update, a chat message's time: the hits' order.
    async fn at(&self) -> DateTime {
        self.0.hit.at.into()
    }
    /// The hit's customer (masked as in the list).
    async fn customer(&self, ctx: &Context<'_>) -> async_graphql::Result<CustomerObject> {
        super::objects::load_customer(ctx, &self.0.hit.customer_id).await
    }
    /// The ticket of a TICKET hit; null for the other kinds.
    async fn ticket(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TicketObject>> {
        if self.0.hit.kind != SearchKind::Ticket {
            return Ok(None);
        }
        let ticket = ctx.services().tickets.get(ctx.session()?, &self.0.hit.id).await.extend()?;
        Ok(Some(TicketObject(ticket)))
    }
}
