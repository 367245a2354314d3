//! Customers (spec 3.2): the provider's list, one customer's detail and its usage assessment.
//!
//! Contact details are masked everywhere but the customer's own detail ([`CustomerService::get`],
//! [`CustomerService::usage`]): the list and a ticket's or chat message's customer show
//! `138****5678` and `s***@example.com` (the rule: `domain::masking`).
//!
//! Status is never read from the stored value: a status filter becomes a range of expiry dates
//! (see [`CustomerStatus::expiry_range`]) and the shown status is derived from the expiry date.

use super::{provider_customer, Session};
use crate::domain::{now, usage, Customer, CustomerStatus, Id, Page, PageRequest, Text};
use crate::error::AppResult;
use crate::store::{CustomerFilter, CustomerStore, SharedStore};
use std::sync::Arc;

#[derive(Clone)]
pub struct CustomerService {
    customers: Arc<dyn CustomerStore>,
}

impl CustomerService {
    pub fn new(store: &SharedStore) -> CustomerService {
        CustomerService { customers: store.clone() }
    }

    /// The provider's customers, filtered by status (as the expiry date gives it) and by a keyword
    /// found in the name or the contact person.
    pub async fn list(
        &self,
        session: &Session,
        status: Option<CustomerStatus>,
        keyword: Option<Text>,
        page: PageRequest,
    ) -> AppResult<Page<Customer>> {
        let (expiry_after, expiry_until) = status.map_or((None, None), |s| s.expiry_range(now()));
        let filter = CustomerFilter { expiry_after, expiry_until, keyword: keyword.map(Text::into_string) };
        let mut found = self.customers.list_customers(&session.provider_id, &filter, page).await?;
        found.items = found.items.into_iter().map(Customer::masked).collect();
        Ok(found)
    }

    /// Customers shown beside something else (a ticket's, a chat message's), masked as in the list.
    pub async fn related(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Customer>> {
        Ok(self.customers.customers_by_ids(provider, ids).await?.into_iter().map(Customer::masked).collect())
    }

    /// One of the provider's customers; another provider's customer is not found.
    pub async fn get(&self, session: &Session, id: &Id) -> AppResult<Customer> {
        provider_customer(self.customers.as_ref(), session, id).await
    }

    /// A customer with the assessment of its usage.
    pub async fn usage(&self, session: &Session, id: &Id) -> AppResult<(Customer, usage::UsageAssessment)> {
        let customer = self.get(session, id).await?;
        let assessment = usage::assess(&customer.usage, &customer.software_version);
        Ok((customer, assessment))
    }
}
