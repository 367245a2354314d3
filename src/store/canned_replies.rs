//! The canned replies port: a provider's quick replies, listed by short code, each short code
//! unique per provider (the store refuses a second with a Conflict), every update compare-and-set
//! on the reply's version.
//!
//! The list is ordered by short code, not by last change: the provider picks a reply by its code,
//! so an alphabetical list is what a picker shows, and it does not reshuffle between two pages when
//! a reply is edited meanwhile; the unique `(provider, short code)` index serves it as it is.
//!
//! The cap on how many replies a provider keeps is the service's rule (it reads
//! [`CannedReplyStore::count_canned_replies`] first), not an atomic guarantee of the store: on
//! MongoDB a count-then-insert is only atomic with a transaction over a per-provider guard document
//! on every create, and the worst a race gives is one provider's own concurrent creates passing
//! the cap together, which bounds a list's size, not a tenant's boundary. Nothing here logs
//! events: nobody watches canned replies live.

use crate::domain::{CannedReply, Id, Page, PageRequest};
use crate::error::AppResult;
use async_trait::async_trait;

#[async_trait]
pub trait CannedReplyStore: Send + Sync + 'static {
    /// Stores a new reply; a Conflict error if its provider already has one with that short code.
    async fn insert_canned_reply(&self, reply: &CannedReply) -> AppResult<()>;
    /// A provider's replies, by short code.
    async fn canned_replies(&self, provider: &Id, page: PageRequest) -> AppResult<Page<CannedReply>>;
    async fn canned_reply(&self, provider: &Id, id: &Id) -> AppResult<Option<CannedReply>>;
    /// Stores the reply's short code, title, content and `updated_at` if the stored reply of that
    /// provider still has `reply.version`, and answers it as stored (its version one higher);
    /// `None` if there is no such reply or another update came first; a Conflict error if
    /// another reply of the provider has the new short code.
    async fn update_canned_reply(&self, reply: &CannedReply) -> AppResult<Option<CannedReply>>;
    /// Whether a reply of that provider with that id was there to delete.
    async fn delete_canned_reply(&self, provider: &Id, id: &Id) -> AppResult<bool>;
    async fn count_canned_replies(&self, provider: &Id) -> AppResult<u64>;
}

/// What a client is told when a short code is taken (shared by both adapters).
pub(crate) fn short_code_taken() -> crate::error::AppError {
    crate::error::AppError::Conflict("该快捷短语编码已存在，请换一个".to_owned())
}
