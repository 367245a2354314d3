//! The customers port: a provider's customers, the SaaS sync that writes them, and the status job
//! that moves a customer's stored status to what its expiry date gives (compare-and-set on the
//! stored status, with the alert in the same unit).

use crate::domain::{
    Customer, CustomerStatus, EventRecord, Id, Notification, OutboxDraft, Page, PageRequest, Timestamp,
};
use crate::error::AppResult;
use async_trait::async_trait;

/// Which customers to list.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Only customers whose expiry date is after this time.
    pub expiry_after: Option<Timestamp>,
    /// Only customers whose expiry date is at or before this time.
    pub expiry_until: Option<Timestamp>,
    /// A substring of the name or of the contact person, matched literally.
    pub keyword: Option<String>,
}

/// A customer's stored status moving to what its expiry date gives now (the status job), with
/// the alert that announces it, if any, and the deliveries that alert causes.
#[derive(Debug, Clone)]
pub struct CustomerStatusChange {
    pub provider_id: Id,
    pub customer_id: Id,
    /// The stored status the change was computed from: the store applies the change only if the
    /// customer still has it (compare-and-set), so two runs cannot both announce it.
    pub from: CustomerStatus,
    pub to: CustomerStatus,
    /// The `customer_alert` notification. Its id is derived from the customer, the status and
    /// the expiry date, and the store writes it only if no notification with that id exists, so
    /// a customer is alerted once per status per expiry date.
    pub alert: Option<Notification>,
    pub outbox: Vec<OutboxDraft>,
}

#[async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    async fn insert_customer(&self, customer: &Customer) -> AppResult<()>;
    /// Customers of a provider, most recently updated first, with `unresolved_issues` counted.
    async fn list_customers(
        &self,
        provider: &Id,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> AppResult<Page<Customer>>;
    /// Those of the given customers that belong to the provider, in no particular order.
    async fn customers_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Customer>>;
    /// The given customers, whichever provider they belong to (for the integrations, which act
    /// for no provider), in no particular order.
    async fn customers_anywhere(&self, ids: &[Id]) -> AppResult<Vec<Customer>>;
    /// Inserts or updates customers synced from the SaaS system: every field the SaaS system owns
    /// (contact data, version, ports, dates, usage measures, `updated_at`, `usage_updated_at`,
    /// `last_active_time`). A new customer is stored whole; an existing one keeps its id,
    /// provider, creation time and stored status. Answers, per customer, whether it was saved:
    /// `false` when the id belongs to another provider's customer.
    async fn save_customers(&self, customers: &[Customer]) -> AppResult<Vec<bool>>;
    /// Up to `limit` customers (of any provider) whose stored status is not the one their expiry
    /// date gives at `now`.
    async fn customers_with_stale_status(&self, now: Timestamp, limit: u32) -> AppResult<Vec<Customer>>;
    /// Applies a status change if the stored status is still `from`, with its alert (unless one
    /// with the alert's id exists) and the alert's event and deliveries; `None` if the status had
    /// changed in between.
    async fn apply_customer_status(&self, change: &CustomerStatusChange) -> AppResult<Option<Vec<EventRecord>>>;
    /// Rewrites any stored copy of the usage score that differs from the score the stored usage
    /// measures give; answers how many were rewritten.
    async fn reconcile_usage_scores(&self) -> AppResult<u64>;
}
