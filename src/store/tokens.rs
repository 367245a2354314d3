//! The token port: what sign-in, sign-out and refresh need to remember. It is its own port so that
//! tokens can live in Redis (`REDIS_URL`) while the data lives elsewhere; without Redis the main
//! store's adapter implements it too.

use crate::domain::{Id, Timestamp};
use crate::error::AppResult;
use async_trait::async_trait;

/// A refresh token as stored: only the hash of the token itself is kept.
#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub provider_id: Id,
    pub expires_at: Timestamp,
}

/// The refresh token a rotation replaces the presented one with: stored in the presented token's
/// family, for its provider, only if the presented token is fresh. Only its hash is given.
#[derive(Debug, Clone)]
pub struct Successor {
    pub token_hash: String,
    pub expires_at: Timestamp,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone)]
pub enum RefreshTokenUse {
    /// The token was valid and unused; it is now used up, and its successor stored.
    Fresh(RefreshTokenRecord),
    /// The token had been used before: a lost answer retried, or a sign that it was stolen.
    Reused {
        record: RefreshTokenRecord,
        /// When it was first used (as the rotation was given it).
        used_at: Timestamp,
        /// Whether the successor presented now is the one the first use stored, and is still
        /// unused: what a retry of a lost answer (same token, same client) finds.
        successor_unused: bool,
    },
    /// The token's family was revoked (logout or an earlier reuse).
    Revoked,
    /// No such token, or it has expired.
    Unknown,
}

/// The token port: what sign-in, sign-out and refresh need to remember. It is its own port so that
/// tokens can live in Redis (`REDIS_URL`) while the data lives elsewhere; without Redis the main
/// store's adapter implements it too.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// What holds the tokens, for the readiness report (`sqlite`, `mongodb`, `redis`).
    fn backend(&self) -> &'static str;
    /// Whether only this process revokes the tokens held here (the embedded store: one server per
    /// data directory), so that a token found unrevoked may be trusted until this process revokes
    /// it, without asking again on every request.
    fn revoked_only_here(&self) -> bool {
        false
    }
    /// Checks that the token store answers.
    async fn ping_tokens(&self) -> AppResult<()>;
    /// Refuses an access token until `expires_at`.
    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> AppResult<()>;
    /// Whether the access token or its whole family has been revoked.
    async fn is_access_revoked(&self, jti: &str, family_id: &str) -> AppResult<bool>;
    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> AppResult<()>;
    /// Rotates a refresh token in one atomic step: a fresh token is marked used (at `at`, with the
    /// successor's hash) and the successor is stored in its family, together, so a crash loses
    /// neither half. Of two concurrent rotations of one token, one is `Fresh`, the other `Reused`.
    /// Nothing is written unless the token is `Fresh`.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: &Successor,
        at: Timestamp,
    ) -> AppResult<RefreshTokenUse>;
    /// Revokes a refresh-token family, and with it every access token issued in it.
    async fn revoke_token_family(&self, family_id: &str, at: Timestamp) -> AppResult<()>;
    /// The families of the provider's refresh tokens that are not revoked: its signed-in sessions.
    async fn provider_token_families(&self, provider: &Id) -> AppResult<Vec<String>>;
}
