//! A canned reply (a "quick reply"): text a provider saved once and sends again by its short code.
//!
//! Plain data. Its content keeps the placeholders (`{customerName}`, `{contactPerson}`,
//! `{providerName}`) as written; they are filled when a reply is sent, not when it is stored. The
//! limits (how many a provider keeps, how long the content is) are service rules; the store
//! enforces only what one index can guarantee: a short code is unique per provider.

use super::{Id, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedReply {
    pub id: Id,
    pub service_provider_id: Id,
    /// What the provider types to pick the reply (`greeting`, `renewal`); unique per provider.
    pub short_code: String,
    pub title: String,
    /// The reply's text, placeholders unfilled.
    pub content: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by the store on every update; an update names the version it was computed from
    /// (compare-and-set), so two editors cannot silently overwrite each other.
    pub version: u64,
}
