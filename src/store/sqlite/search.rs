//! The search port on sqlite: not built yet (the helper building it replaces this file).

use super::SqliteStore;
use crate::domain::{Id, Page, PageRequest, SearchHit, SearchKind, SearchQuery};
use crate::error::AppResult;
use crate::store::SearchStore;
use async_trait::async_trait;

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search(
        &self,
        _provider: &Id,
        _query: &SearchQuery,
        _kinds: &[SearchKind],
        _page: PageRequest,
    ) -> AppResult<Page<SearchHit>> {
        todo!("search on sqlite")
    }
}
