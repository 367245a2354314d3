//! The search port: one search over a provider's customers, tickets and chat messages, newest
//! first, always scoped to the provider.
//!
//! What a text is indexed by and what a query matches is `domain::search` (character n-grams, a
//! literal substring of the folded text), so both adapters find the same hits. Each adapter writes
//! a row's index entries in the same transaction as the row (a customer saved by the SaaS sync, a
//! ticket created or replied to, a chat message stored), so a hit is never stale or missing, and
//! builds the index for the rows a store written before search already holds when it opens.

use crate::domain::{Id, Page, PageRequest, SearchHit, SearchKind, SearchQuery};
use crate::error::AppResult;
use async_trait::async_trait;

#[async_trait]
pub trait SearchStore: Send + Sync + 'static {
    /// The provider's customers, tickets and chat messages of the given kinds (at least one) whose
    /// indexed texts contain the query, newest first (ties by id). A customer, ticket or message
    /// is one hit however many of its texts match; its `matched_text` is the first that does, in
    /// the order the kind lists them. Only the first [`SEARCH_HIT_LIMIT`](crate::domain::search::SEARCH_HIT_LIMIT) hits count: the total
    /// is exact up to it, and past it any number above it (the store may stop counting there);
    /// a page past it is empty.
    async fn search(
        &self,
        provider: &Id,
        query: &SearchQuery,
        kinds: &[SearchKind],
        page: PageRequest,
    ) -> AppResult<Page<SearchHit>>;
}
