//! The search's GraphQL types: a page of typed hits, each with its snippet and, loaded on demand,
//! its customer (through the request's customer loader) and, for a ticket hit, its ticket.

use super::objects::{CustomerObject, TicketObject};
use super::scalars::DateTime;
use super::ContextExt;
use crate::domain::{Page, SearchKind};
use crate::service::search::ShownHit;
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

/// A page of search hits, newest first, with the number of hits over all pages.
#[derive(SimpleObject)]
#[graphql(name = "SearchHitPage")]
pub struct SearchHitPageObject {
    pub items: Vec<SearchHitObject>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

impl SearchHitPageObject {
    pub fn from_page(page: Page<ShownHit>) -> SearchHitPageObject {
        let request = page.request;
        SearchHitPageObject {
            items: page.items.into_iter().map(SearchHitObject).collect(),
            total: page.total,
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
