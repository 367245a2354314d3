//! The audit log (spec 6.3): who did what to which entity, from where, how it ended, and when.

use super::{Id, Timestamp};

/// One audited action: a mutation or a sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: Id,
    pub at: Timestamp,
    /// The provider who acted, or whose account a sign-in tried; `None` for a sign-in with an
    /// unknown username, or an action without a valid token.
    pub provider_id: Option<Id>,
    /// The username a sign-in tried (sign-ins only).
    pub username: Option<String>,
    /// The GraphQL mutation (`login`, `createTicket`, ...), whether it came over GraphQL or REST.
    pub operation: String,
    /// The entity acted on: a ticket, notification or customer id, or the provider for sign-ins.
    pub target_id: Option<String>,
    /// The client's address, as the server determined it (see `TRUSTED_PROXIES`).
    pub ip: Option<String>,
    /// `ok`, or the error code the client got (`BAD_USER_INPUT`, `UNAUTHENTICATED`, ...).
    pub result: String,
    /// The request's `x-request-id`, to find its log lines.
    pub request_id: Option<String>,
}

impl AuditEntry {
    pub const OK: &'static str = "ok";
}
