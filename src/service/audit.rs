//! The audit log (spec 6.3): every mutation and every sign-in attempt, with who, what, which
//! entity, from which address, how it ended and when. Mutations are recorded by the GraphQL layer
//! as each one finishes (so REST calls, running the same operations, are recorded alike);
//! sign-ins by [`super::auth::AuthService::login`], which alone knows whose account was tried.
//! A provider pages through its own entries, newest first.

use super::{ClientInfo, Session};
use crate::domain::{AuditEntry, Id, Page, PageRequest};
use std::sync::atomic::{AtomicU32, Ordering};

/// Orders the entries one process writes within a millisecond.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// An entry id that sorts in the order this process wrote its entries: the time in milliseconds,
/// then a counter (entries sort by time in seconds, then by id).
fn entry_id(at: &chrono::DateTime<chrono::Utc>) -> Id {
    let millis = at.timestamp_millis().max(0) as u64;
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    Id::from_stored(format!("au{millis:012x}{sequence:08x}"))
}
use crate::error::AppResult;
use crate::store::{AuditStore, SharedStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct AuditService {
    entries: Arc<dyn AuditStore>,
}

impl AuditService {
    pub fn new(store: &SharedStore) -> AuditService {
        AuditService { entries: store.clone() }
    }

    /// Records an action. A store that cannot take the entry does not undo the action (it has
    /// happened); the failure is logged with the entry, so nothing is lost silently.
    pub async fn record(
        &self,
        operation: &str,
        provider: Option<&Id>,
        username: Option<&str>,
        target: Option<&str>,
        client: &ClientInfo,
        result: &str,
    ) {
        let at = chrono::Utc::now();
        let entry = AuditEntry {
            id: entry_id(&at),
            at: chrono::SubsecRound::trunc_subsecs(at, 0),
            provider_id: provider.cloned(),
            username: username.map(|u| u.chars().take(64).collect()),
            operation: operation.to_owned(),
            target_id: target.map(|t| t.chars().take(64).collect()),
            ip: client.ip.map(|ip| crate::config::canonical(ip).to_string()),
            result: result.to_owned(),
            request_id: client.request_id.as_deref().map(str::to_owned),
        };
        if let Err(error) = self.entries.insert_audit_entry(&entry).await {
            tracing::error!(%error, ?entry, "could not store an audit entry");
        }
    }

    /// The signed-in provider's entries, newest first.
    pub async fn list(&self, session: &Session, page: PageRequest) -> AppResult<Page<AuditEntry>> {
        self.entries.list_audit_entries(&session.provider_id, page).await
    }
}
