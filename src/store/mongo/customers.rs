//! The customers port on MongoDB.

use super::documents::{date, Fields, ReadResult};
use super::failures::{bad_document, is_duplicate_key};
use super::notifications::{notification_document, notification_event};
use super::search::{customer_keyword, customer_search};
use super::MongoStore;
use super::{collect, ids_bson, read};
use crate::domain::{
    usage, Customer, CustomerStatus, EventRecord, Id, Page, PageRequest, TicketStatus, Timestamp, UsageMetrics,
};
use crate::error::AppResult;
use crate::store::CustomerStore;
use crate::store::{CustomerFilter, CustomerStatusChange};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use std::collections::HashMap;

impl MongoStore {
    /// The open and processing tickets of each of the given customers (of one provider, or of
    /// any with `None`).
    pub(super) async fn unresolved_counts(
        &self,
        provider: Option<&Id>,
        customers: &[Id],
    ) -> mongodb::error::Result<HashMap<String, u32>> {
        let mut counts = HashMap::new();
        if customers.is_empty() {
            return Ok(counts);
        }
        let filter = unresolved_query(provider, customers);
        let pipeline =
            vec![doc! { "$match": filter }, doc! { "$group": { "_id": "$customerId", "count": { "$sum": 1 } } }];
        let mut cursor = self.tickets.aggregate(pipeline).await?;
        while cursor.advance().await? {
            let row = cursor.deserialize_current()?;
            let count = match row.get("count") {
                Some(Bson::Int32(n)) => (*n).max(0) as u32,
                Some(Bson::Int64(n)) => (*n).max(0) as u32,
                _ => 0,
            };
            if let Ok(id) = row.get_str("_id") {
                counts.insert(id.to_owned(), count);
            }
        }
        Ok(counts)
    }
}

/// The tickets of `customers` not yet resolved (of one provider, or of any with `None`).
pub(super) fn unresolved_query(provider: Option<&Id>, customers: &[Id]) -> Document {
    let mut filter = doc! {
        "customerId": { "$in": ids_bson(customers) },
        "status": { "$ne": TicketStatus::Resolved.as_str() },
    };
    if let Some(provider) = provider {
        filter.insert("serviceProviderId", provider.as_str());
    }
    filter
}

/// The customer list's filter; its order is [`customer_order`].
pub(super) fn customer_query(provider: &Id, filter: &CustomerFilter) -> Document {
    let mut query = doc! { "serviceProviderId": provider.as_str() };
    let mut expiry = Document::new();
    if let Some(after) = &filter.expiry_after {
        expiry.insert("$gt", date(after));
    }
    if let Some(until) = &filter.expiry_until {
        expiry.insert("$lte", date(until));
    }
    if !expiry.is_empty() {
        query.insert("expiryDate", expiry);
    }
    if let Some(keyword) = &filter.keyword {
        query.extend(customer_keyword(keyword));
    }
    query
}

/// Most recently updated first.
pub(super) fn customer_order() -> Document {
    doc! { "updatedAt": -1, "id": 1 }
}

/// `text` as a regular expression that matches it literally: every ASCII character that is not a
/// letter or digit is escaped (PCRE reads a backslash before such a character as that character),
/// so user input can never be a pattern.
pub(super) fn literal_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() * 2);
    for ch in text.chars() {
        if ch.is_ascii() && !ch.is_ascii_alphanumeric() {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern
}

#[async_trait]
impl CustomerStore for MongoStore {
    async fn insert_customer(&self, customer: &Customer) -> AppResult<()> {
        let document = customer_document(customer);
        self.op(async {
            match self.customers.insert_one(&document).await {
                // The driver retried an insert whose first attempt had committed (a server that
                // does not deduplicate retried writes): the stored customer is this one.
                Err(error) if is_duplicate_key(&error) => {
                    let stored = self.customers.find_one(doc! { "id": customer.id.as_str() }).await?;
                    let same = stored.is_some_and(|mut stored| {
                        stored.remove("_id");
                        stored == document
                    });
                    if same {
                        Ok(())
                    } else {
                        Err(error)
                    }
                }
                other => other.map(drop),
            }
        })
        .await
    }

    async fn list_customers(
        &self,
        provider: &Id,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> AppResult<Page<Customer>> {
        let query = customer_query(provider, filter);
        let (documents, total, counts) = self
            .op(async {
                let (documents, total) = self.page(&self.customers, query, customer_order(), page).await?;
                let ids: Vec<Id> = documents
                    .iter()
                    .filter_map(|d| d.get_str("id").ok())
                    .map(|id| Id::from_stored(id.into()))
                    .collect();
                let counts = self.unresolved_counts(Some(provider), &ids).await?;
                Ok((documents, total, counts))
            })
            .await?;
        let items = read(&documents, |d| {
            let unresolved = d.get_str("id").ok().and_then(|id| counts.get(id)).copied().unwrap_or(0);
            customer_from(d, unresolved)
        })?;
        Ok(Page { items, total, request: page })
    }

    async fn customers_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Customer>> {
        let query = doc! { "serviceProviderId": provider.as_str(), "id": { "$in": ids_bson(ids) } };
        let (documents, counts) = self
            .op(async {
                let find = async { collect(self.customers.find(query).await?).await };
                tokio::try_join!(find, self.unresolved_counts(Some(provider), ids))
            })
            .await?;
        read(&documents, |d| {
            let unresolved = d.get_str("id").ok().and_then(|id| counts.get(id)).copied().unwrap_or(0);
            customer_from(d, unresolved)
        })
    }

    async fn customers_anywhere(&self, ids: &[Id]) -> AppResult<Vec<Customer>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let query = doc! { "id": { "$in": ids_bson(ids) } };
        let (documents, counts) = self
            .op(async {
                let find = async { collect(self.customers.find(query).await?).await };
                tokio::try_join!(find, self.unresolved_counts(None, ids))
            })
            .await?;
        read(&documents, |d| {
            let unresolved = d.get_str("id").ok().and_then(|id| counts.get(id)).copied().unwrap_or(0);
            customer_from(d, unresolved)
        })
    }

    async fn save_customers(&self, customers: &[Customer]) -> AppResult<Vec<bool>> {
        let mut saved = Vec::with_capacity(customers.len());
        for c in customers {
            // Matching on the provider too: an id of another provider's customer makes the upsert
            // insert a second document with that id, which the unique index refuses.
            let filter = doc! { "id": c.id.as_str(), "serviceProviderId": c.service_provider_id.as_str() };
            // An insert takes `id` and `serviceProviderId` from the filter.
            let update = doc! {
                "$set": synced_customer_fields(c),
                "$setOnInsert": { "status": c.stored_status.as_str(), "createdAt": date(&c.created_at) },
            };
            let outcome = self
                .op(async {
                    match self.customers.update_one(filter, update).upsert(true).await {
                        Ok(_) => Ok(true),
                        Err(error) if is_duplicate_key(&error) => Ok(false),
                        Err(error) => Err(error),
                    }
                })
                .await?;
            saved.push(outcome);
        }
        Ok(saved)
    }

    async fn customers_with_stale_status(&self, now: Timestamp, limit: u32) -> AppResult<Vec<Customer>> {
        let mut documents = Vec::new();
        for status in CustomerStatus::ALL {
            let left = i64::from(limit) - documents.len() as i64;
            if left <= 0 {
                break;
            }
            let (after, until) = status.expiry_range(now);
            let mut query = doc! { "status": { "$ne": status.as_str() } };
            let mut expiry = Document::new();
            if let Some(after) = &after {
                expiry.insert("$gt", date(after));
            }
            if let Some(until) = &until {
                expiry.insert("$lte", date(until));
            }
            if !expiry.is_empty() {
                query.insert("expiryDate", expiry);
            }
            let found = self
                .op(async {
                    collect(self.customers.find(query).sort(doc! { "expiryDate": 1, "id": 1 }).limit(left).await?).await
                })
                .await?;
            documents.extend(found);
        }
        let ids: Vec<Id> =
            documents.iter().filter_map(|d| d.get_str("id").ok()).map(|id| Id::from_stored(id.into())).collect();
        let counts = self.op(self.unresolved_counts(None, &ids)).await?;
        read(&documents, |d| {
            let unresolved = d.get_str("id").ok().and_then(|id| counts.get(id)).copied().unwrap_or(0);
            customer_from(d, unresolved)
        })
    }

    async fn apply_customer_status(&self, change: &CustomerStatusChange) -> AppResult<Option<Vec<EventRecord>>> {
        let filter = doc! {
            "id": change.customer_id.as_str(),
            "serviceProviderId": change.provider_id.as_str(),
            "status": change.from.as_str(),
        };
        let update = doc! { "$set": { "status": change.to.as_str() } };
        let alert = change.alert.as_ref().map(|n| (n.id.to_string(), notification_document(n), notification_event(n)));
        self.op(in_transaction!(self, |session| {
            let updated = self.customers.update_one(filter.clone(), update.clone()).session(&mut session).await?;
            if updated.matched_count == 0 {
                return Ok(None);
            }
            let Some((alert_id, document, event)) = &alert else { return Ok(Some(Vec::new())) };
            let exists = self.notifications.count_documents(doc! { "id": alert_id }).session(&mut session).await?;
            if exists > 0 {
                return Ok(Some(Vec::new()));
            }
            self.notifications.insert_one(document).session(&mut session).await?;
            let events = self.log_events(&mut session, alert_id, vec![event.clone()]).await?;
            self.queue_outbox(&mut session, &change.outbox, &events).await?;
            Ok(Some(events))
        }))
        .await
    }

    async fn reconcile_usage_scores(&self) -> AppResult<u64> {
        let projection = doc! { "_id": 0, "id": 1, "usageScore": 1, "usageMetrics": 1 };
        let documents =
            self.op(async { collect(self.customers.find(doc! {}).projection(projection).await?).await }).await?;
        let mut rewritten = 0;
        for document in documents {
            let (Ok(id), Ok(measures)) = (document.get_str("id"), document.get_document("usageMetrics")) else {
                continue;
            };
            let metrics: UsageMetrics = usage_metrics_from(&document).map_err(bad_document)?;
            let score = i64::from(usage::total_score(&metrics));
            let stored = match document.get("usageScore") {
                Some(Bson::Int32(n)) => Some(i64::from(*n)),
                Some(Bson::Int64(n)) => Some(*n),
                Some(Bson::Double(n)) if n.fract() == 0.0 => Some(*n as i64),
                _ => None,
            };
            if stored == Some(score) {
                continue;
            }
            // Only if the measures are still those the score was computed from.
            let filter = doc! { "id": id, "usageMetrics": measures.clone() };
            let update = doc! { "$set": { "usageScore": score as i32 } };
            rewritten += self.op(self.customers.update_one(filter, update)).await?.modified_count;
        }
        Ok(rewritten)
    }
}

/// The customer as stored. `usageScore` is written for readers of the raw data (it follows from
/// the four measures, which never change apart from it); `unresolvedIssues` is not stored at all,
/// it is counted from the tickets whenever a customer is read.
pub(super) fn customer_document(c: &Customer) -> Document {
    doc! {
        "id": c.id.as_str(),
        "serviceProviderId": c.service_provider_id.as_str(),
        "serviceProviderName": &c.service_provider_name,
        "name": &c.name,
        "contactPerson": &c.contact_person,
        "phone": &c.phone,
        "email": &c.email,
        "region": &c.region,
        "softwareVersion": &c.software_version,
        "portCount": i64::from(c.port_count),
        "purchaseDate": date(&c.purchase_date),
        "expiryDate": date(&c.expiry_date),
        "status": c.stored_status.as_str(),
        "usageScore": i32::from(usage::total_score(&c.usage)),
        "usageMetrics": {
            "loginFrequency": i32::from(c.usage.login_frequency),
            "featureUsage": i32::from(c.usage.feature_usage),
            "dataInput": i32::from(c.usage.data_input),
            "trainingCompletion": i32::from(c.usage.training_completion),
        },
        "usageUpdatedAt": date(&c.usage_updated_at),
        "lastActiveTime": date(&c.last_active_time),
        "createdAt": date(&c.created_at),
        "updatedAt": date(&c.updated_at),
        "search": customer_search(c),
    }
}

/// The fields of a customer that the SaaS system owns (see `Store::save_customers`), with the
/// usage score that follows from its measures.
pub(super) fn synced_customer_fields(c: &Customer) -> Document {
    let mut fields = customer_document(c);
    for owned_here in ["id", "serviceProviderId", "status", "createdAt"] {
        fields.remove(owned_here);
    }
    fields
}

/// The usage measures of a customer document (`usageMetrics`).
pub(super) fn usage_metrics_from(doc: &Document) -> ReadResult<UsageMetrics> {
    let f = Fields::new(doc, "customer");
    let usage = doc.get_document("usageMetrics").map_err(|e| f.fail("usageMetrics", e))?;
    Ok(UsageMetrics {
        login_frequency: f.percent(usage, "loginFrequency")?,
        feature_usage: f.percent(usage, "featureUsage")?,
        data_input: f.percent(usage, "dataInput")?,
        training_completion: f.percent(usage, "trainingCompletion")?,
    })
}

pub(super) fn customer_from(doc: &Document, unresolved_issues: u32) -> ReadResult<Customer> {
    let f = Fields::new(doc, "customer");
    let usage = doc.get_document("usageMetrics").map_err(|e| f.fail("usageMetrics", e))?;
    let port_count = f.number("portCount")?;
    Ok(Customer {
        id: f.id("id")?,
        service_provider_id: f.id("serviceProviderId")?,
        service_provider_name: f.text("serviceProviderName")?,
        name: f.text("name")?,
        contact_person: f.text("contactPerson")?,
        phone: f.text("phone")?,
        email: f.text("email")?,
        region: f.text("region")?,
        software_version: f.text("softwareVersion")?,
        port_count: u32::try_from(port_count).map_err(|_| f.fail("portCount", "out of range"))?,
        purchase_date: f.time("purchaseDate")?,
        expiry_date: f.time("expiryDate")?,
        stored_status: f.value("status", CustomerStatus::parse)?,
        usage: UsageMetrics {
            login_frequency: f.percent(usage, "loginFrequency")?,
            feature_usage: f.percent(usage, "featureUsage")?,
            data_input: f.percent(usage, "dataInput")?,
            training_completion: f.percent(usage, "trainingCompletion")?,
        },
        usage_updated_at: f.time("usageUpdatedAt")?,
        unresolved_issues,
        last_active_time: f.time("lastActiveTime")?,
        created_at: f.time("createdAt")?,
        updated_at: f.time("updatedAt")?,
    })
}

#[cfg(test)]
mod tests {
    use super::literal_pattern;

    #[test]
    fn user_text_matches_literally() {
        assert_eq!(literal_pattern("科技"), "科技");
        assert_eq!(literal_pattern("a.b*c"), "a\\.b\\*c");
        assert_eq!(literal_pattern("(x|y)[z]{2}^$\\"), "\\(x\\|y\\)\\[z\\]\\{2\\}\\^\\$\\\\");
        assert_eq!(literal_pattern("张 三"), "张\\ 三");
    }
}
