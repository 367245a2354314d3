//! The retention port: deleting the rows of the tables that every request adds to and nothing
//! else removes (the event log, idempotency keys, the token tables), for the prune jobs
//! (`crate::service::jobs`).
//!
//! One method over an enum of the retained tables rather than a method per area: the jobs treat
//! every table alike (a cut-off time, batches, a count for the metric), and one method keeps the
//! token and event ports, which other work changes, untouched. Each call deletes at most one batch
//! in one short write, so a large backlog never holds the SQLite writer or a MongoDB operation
//! long; the job calls again until a batch comes back short.

use crate::domain::Timestamp;
use crate::error::AppResult;
use async_trait::async_trait;

/// A table (MongoDB: collection) that is pruned, and what its cut-off time is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retained {
    /// The event log, by the time an event was logged. Each provider's newest event is kept
    /// whatever its age: on SQLite it is what the provider's next cursor is counted from, and a
    /// reconnecting subscriber's cursor must never be reused.
    Events,
    /// Idempotency keys, by the time the key was first used.
    IdempotencyKeys,
    /// Revoked access tokens, by the time the token expires (after that it is refused anyway).
    RevokedAccessTokens,
    /// Refresh tokens, by the time they expire.
    RefreshTokens,
    /// Refresh-token families, by the time their last token expires (MongoDB keeps it in the
    /// family); on SQLite, which keeps no expiry in the family, families with no refresh token left.
    TokenFamilies,
}

impl Retained {
    pub const ALL: [Retained; 5] = [
        Retained::Events,
        Retained::IdempotencyKeys,
        Retained::RevokedAccessTokens,
        Retained::RefreshTokens,
        Retained::TokenFamilies,
    ];

    /// The table's SQLite name, the `table` label of `retention_pruned_total`.
    pub fn table(self) -> &'static str {
        match self {
            Retained::Events => "events",
            Retained::IdempotencyKeys => "idempotency_keys",
            Retained::RevokedAccessTokens => "revoked_access_tokens",
            Retained::RefreshTokens => "refresh_tokens",
            Retained::TokenFamilies => "token_families",
        }
    }
}

#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Deletes at most `batch` rows of `table` whose time (see [`Retained`]) is before `before`;
    /// answers how many it deleted (fewer than `batch`: nothing more is due).
    async fn prune(&self, table: Retained, before: Timestamp, batch: u32) -> AppResult<u64>;
}
