//! One search over the provider's customers, tickets and chat messages (the query parsed as the
//! customer list's keyword is, the hits' snippets cut here), always scoped to the session's
//! provider: the store's port takes the provider, and the service passes only the session's.

use super::{input, Session};
use crate::domain::search::{snippet, SEARCH_HIT_LIMIT};
use crate::domain::{Page, PageRequest, SearchHit, SearchKind, SearchQuery};
use crate::error::{AppError, AppResult};
use crate::store::{SearchStore, SharedStore};
use std::sync::Arc;

/// A hit as shown: what was found, and a short piece of the text around the match.
#[derive(Debug, Clone)]
pub struct ShownHit {
    pub hit: SearchHit,
    pub snippet: String,
}

/// A page of hits, with the total as far as a search counts.
#[derive(Debug, Clone)]
pub struct Found {
    /// The page; its total is at most [`SEARCH_HIT_LIMIT`].
    pub page: Page<ShownHit>,
    /// Whether the total is every hit; false when more than [`SEARCH_HIT_LIMIT`] matched (the
    /// total then reads the limit, and pages past it are empty: the query wants narrowing).
    pub total_is_exact: bool,
}

#[derive(Clone)]
pub struct SearchService {
    search: Arc<dyn SearchStore>,
}

impl SearchService {
    pub fn new(store: &SharedStore) -> SearchService {
        SearchService { search: store.clone() }
    }

    /// The provider's hits of the kinds asked for (all when none), newest first, the first
    /// [`SEARCH_HIT_LIMIT`] of them. The query is 1 to 50 characters after trimming, without
    /// control characters (as the customer keyword).
    pub async fn search(
        &self,
        session: &Session,
        raw_query: &str,
        kinds: Option<Vec<SearchKind>>,
        page: PageRequest,
    ) -> AppResult<Found> {
        let query =
            input::keyword(Some(raw_query))?.ok_or_else(|| AppError::bad_input("query", "搜索关键词不能为空"))?;
        let query = SearchQuery::new(query.as_str());
        let mut kinds = kinds.unwrap_or_else(|| SearchKind::ALL.to_vec());
        if kinds.is_empty() {
            return Err(AppError::bad_input("kinds", "搜索范围不能为空"));
        }
        kinds.sort();
        kinds.dedup();
        let mut found = self.search.search(&session.provider_id, &query, &kinds, page).await?;
        let total_is_exact = found.total <= SEARCH_HIT_LIMIT;
        found.total = found.total.min(SEARCH_HIT_LIMIT);
        let page = found.map(|hit| ShownHit { snippet: snippet(&hit.matched_text, &query), hit });
        Ok(Found { page, total_is_exact })
    }
}
