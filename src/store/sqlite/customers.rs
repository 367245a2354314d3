//! The customers port on SQLite.

use super::notifications::notification_event;
use super::outbox::queue_outbox;
use super::rows::{id, parse_time, parse_value, percent, time_text};
use super::search::{count_matches, index_customer, match_expression, Fields};
use super::sql::{id_values, placeholders, text, Conditions, ListQuery};
use super::SqliteStore;
use crate::domain::{
    Customer, CustomerStatus, EventRecord, Id, Page, PageRequest, SearchKind, SearchQuery, Timestamp, UsageMetrics,
};
use crate::error::AppResult;
use crate::store::CustomerStore;
use crate::store::{CustomerFilter, CustomerStatusChange};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Row};

/// The customer fields the SaaS system owns, in the order of the upsert's parameters.
pub(super) const SYNCED_CUSTOMER_COLUMNS: [&str; 16] = [
    "service_provider_name",
    "name",
    "contact_person",
    "phone",
    "email",
    "region",
    "software_version",
    "port_count",
    "purchase_date",
    "expiry_date",
    "login_frequency",
    "feature_usage",
    "data_input",
    "training_completion",
    "usage_updated_at",
    "last_active_time",
];

/// Inserts a whole customer: who it is and when, then the fields of [`SYNCED_CUSTOMER_COLUMNS`];
/// the parameters are [`customer_values`].
pub(super) fn customer_insert_sql() -> String {
    format!(
        "INSERT INTO customers (id, service_provider_id, status, created_at, updated_at, {synced}) VALUES ({values})",
        synced = SYNCED_CUSTOMER_COLUMNS.join(", "),
        values = placeholders(5 + SYNCED_CUSTOMER_COLUMNS.len()),
    )
}

/// The parameters of [`customer_insert_sql`], in its column order.
pub(super) fn customer_values(c: &Customer) -> Vec<Value> {
    vec![
        text(c.id.as_str()),
        text(c.service_provider_id.as_str()),
        text(c.stored_status.as_str()),
        Value::Text(time_text(&c.created_at)),
        Value::Text(time_text(&c.updated_at)),
        text(&c.service_provider_name),
        text(&c.name),
        text(&c.contact_person),
        text(&c.phone),
        text(&c.email),
        text(&c.region),
        text(&c.software_version),
        Value::Integer(c.port_count.into()),
        Value::Text(time_text(&c.purchase_date)),
        Value::Text(time_text(&c.expiry_date)),
        Value::Integer(c.usage.login_frequency.into()),
        Value::Integer(c.usage.feature_usage.into()),
        Value::Integer(c.usage.data_input.into()),
        Value::Integer(c.usage.training_completion.into()),
        Value::Text(time_text(&c.usage_updated_at)),
        Value::Text(time_text(&c.last_active_time)),
    ]
}

#[async_trait]
impl CustomerStore for SqliteStore {
    async fn insert_customer(&self, c: &Customer) -> AppResult<()> {
        let (values, id) = (customer_values(c), c.id.clone());
        self.write(move |t| {
            t.prepare_cached(&customer_insert_sql())?.execute(params_from_iter(values))?;
            index_customer(t, id.as_str())
        })
        .await
    }

    async fn list_customers(
        &self,
        provider: &Id,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> AppResult<Page<Customer>> {
        let (list, in_order) = (customer_list(provider, filter), customer_list_in_order(provider, filter));
        let everyone = customer_list(provider, &CustomerFilter::default());
        // A keyword alone is counted in the index: its scope is the provider's customers already.
        let keyword_only = filter.expiry_after.is_none() && filter.expiry_until.is_none();
        let keyword_total = filter.keyword.as_ref().filter(|_| keyword_only).map(|k| keyword_expression(provider, k));
        let (items, total) = self
            .read(move |c| {
                let total = match &keyword_total {
                    Some(expression) => count_matches(c, expression)?,
                    None => list.total(c)?,
                };
                let Some(in_order) = in_order else { return Ok((list.items(c, page, customer_from_row)?, total)) };
                // Read in list order, a page is found after about (offset + size) × all / matching
                // rows; narrowed by the range, all the matching rows are read and sorted.
                let reads_in_order = (page.offset() + u64::from(page.page_size())) * everyone.total(c)?;
                let chosen = if reads_in_order < total.saturating_mul(total) { &in_order } else { &list };
                Ok((chosen.items(c, page, customer_from_row)?, total))
            })
            .await?;
        Ok(Page { items, total, request: page })
    }

    async fn customers_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Customer>> {
        let (provider, ids) = (provider.clone(), ids.to_vec());
        self.read(move |c| {
            let sql = customers_by_ids_sql(ids.len());
            let mut values = vec![text(provider.as_str())];
            values.extend(id_values(&ids));
            c.prepare_cached(&sql)?.query_map(params_from_iter(values), customer_from_row)?.collect()
        })
        .await
    }

    async fn customers_anywhere(&self, ids: &[Id]) -> AppResult<Vec<Customer>> {
        let ids = ids.to_vec();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |c| {
            c.prepare(&customers_anywhere_sql(ids.len()))?
                .query_map(params_from_iter(id_values(&ids)), customer_from_row)?
                .collect()
        })
        .await
    }

    async fn save_customers(&self, customers: &[Customer]) -> AppResult<Vec<bool>> {
        let customers = customers.to_vec();
        self.write(move |t| {
            let updates = SYNCED_CUSTOMER_COLUMNS.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>();
            let sql = format!(
                "{insert}
                 ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, {updates}
                 WHERE customers.service_provider_id = excluded.service_provider_id",
                insert = customer_insert_sql(),
                updates = updates.join(", "),
            );
            let mut saved = Vec::with_capacity(customers.len());
            for c in &customers {
                let changed = t.prepare_cached(&sql)?.execute(params_from_iter(customer_values(c)))?;
                if changed == 1 {
                    index_customer(t, c.id.as_str())?;
                }
                saved.push(changed == 1);
            }
            Ok(saved)
        })
        .await
    }

    async fn customers_with_stale_status(&self, now: Timestamp, limit: u32) -> AppResult<Vec<Customer>> {
        self.read(move |c| {
            let mut stale = Vec::new();
            for status in CustomerStatus::ALL {
                let (after, until) = status.expiry_range(now);
                let mut conditions = Conditions::default();
                conditions.push("status <> ?", [text(status.as_str())]);
                if let Some(after) = after {
                    conditions.push("expiry_date > ?", [Value::Text(time_text(&after))]);
                }
                if let Some(until) = until {
                    conditions.push("expiry_date <= ?", [Value::Text(time_text(&until))]);
                }
                let left = i64::from(limit) - stale.len() as i64;
                if left <= 0 {
                    break;
                }
                conditions.values.push(Value::Integer(left));
                let sql = format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE {} ORDER BY expiry_date, id LIMIT ?",
                    conditions.sql()
                );
                let found = c
                    .prepare_cached(&sql)?
                    .query_map(params_from_iter(&conditions.values), customer_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                stale.extend(found);
            }
            Ok(stale)
        })
        .await
    }

    async fn apply_customer_status(&self, change: &CustomerStatusChange) -> AppResult<Option<Vec<EventRecord>>> {
        let change = change.clone();
        self.write(move |t| {
            let updated = t
                .prepare_cached(
                    "UPDATE customers SET status = ? WHERE id = ? AND service_provider_id = ? AND status = ?",
                )?
                .execute(params![
                    change.to.as_str(),
                    change.customer_id.as_str(),
                    change.provider_id.as_str(),
                    change.from.as_str()
                ])?;
            if updated == 0 {
                return Ok(None);
            }
            let Some(alert) = &change.alert else { return Ok(Some(Vec::new())) };
            let exists: bool = t
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM notifications WHERE id = ?)")?
                .query_row([alert.id.as_str()], |row| row.get(0))?;
            if exists {
                return Ok(Some(Vec::new()));
            }
            let event = notification_event(t, alert)?;
            queue_outbox(t, &change.outbox, event.cursor)?;
            Ok(Some(vec![event]))
        })
        .await
    }

    /// The embedded store keeps no copy of the usage score: it is computed from the stored
    /// measures whenever a customer is read, so there is nothing to rewrite.
    async fn reconcile_usage_scores(&self) -> AppResult<u64> {
        Ok(0)
    }
}

/// A provider's customers that `filter` selects, most recently updated first.
pub(super) fn customer_list(provider: &Id, filter: &CustomerFilter) -> ListQuery {
    let mut conditions = Conditions::of_provider(provider);
    if let Some(after) = &filter.expiry_after {
        conditions.push("expiry_date > ?", [Value::Text(time_text(after))]);
    }
    if let Some(until) = &filter.expiry_until {
        conditions.push("expiry_date <= ?", [Value::Text(time_text(until))]);
    }
    let Some(keyword) = &filter.keyword else {
        return ListQuery { table: "customers", columns: CUSTOMER_COLUMNS, order: "updated_at DESC, id", conditions };
    };
    // A keyword list is read from the search index (name or contact person holding the keyword),
    // newest first by the index's key, which is the customer's update time.
    conditions.push("search_index MATCH ?", [Value::Text(keyword_expression(provider, keyword))]);
    ListQuery { table: KEYWORD_TABLES, columns: CUSTOMER_COLUMNS, order: "search_index.rowid DESC", conditions }
}

/// The MATCH expression of a keyword: the provider's customers whose name or contact person holds it.
fn keyword_expression(provider: &Id, keyword: &str) -> String {
    match_expression(provider, &[SearchKind::Customer], &SearchQuery::new(keyword), Fields::Texts)
}

/// The same list as [`customer_list`] of an expiry range (no keyword), read in list order from
/// `customers_by_provider_updated` with the range tested on each row (the unary `+` keeps the
/// expiry index out): cheaper than the range's index when the range holds most customers, which
/// `list_customers` judges from the range's count. `None` for other filters.
pub(super) fn customer_list_in_order(provider: &Id, filter: &CustomerFilter) -> Option<ListQuery> {
    if filter.keyword.is_some() || (filter.expiry_after.is_none() && filter.expiry_until.is_none()) {
        return None;
    }
    let mut conditions = Conditions::of_provider(provider);
    if let Some(after) = &filter.expiry_after {
        conditions.push("+expiry_date > ?", [Value::Text(time_text(after))]);
    }
    if let Some(until) = &filter.expiry_until {
        conditions.push("+expiry_date <= ?", [Value::Text(time_text(until))]);
    }
    Some(ListQuery { table: "customers", columns: CUSTOMER_COLUMNS, order: "updated_at DESC, id", conditions })
}

/// The customers a keyword finds: the search index, what its rows show, and the customers.
const KEYWORD_TABLES: &str =
    "search_index JOIN search_docs ON search_docs.key = search_index.rowid JOIN customers ON customers.id = search_docs.entity_id";

/// `count` customers of one provider by id; the parameters are the provider, then the ids. The
/// unary `+` keeps the provider out of the index choice: without it SQLite reads the provider's
/// every customer through a provider index and filters them by id.
pub(super) fn customers_by_ids_sql(count: usize) -> String {
    format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE +service_provider_id = ? AND id IN ({})",
        placeholders(count)
    )
}

/// `count` customers by id, whoever their provider.
pub(super) fn customers_anywhere_sql(count: usize) -> String {
    format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id IN ({})", placeholders(count))
}

/// A customer's columns, and its unresolved tickets from the kept totals: one key lookup for open
/// and one for processing (an `IN` list would cost SQLite a temporary b-tree each time the
/// statement runs).
pub(super) const CUSTOMER_COLUMNS: &str =
    "id, service_provider_id, service_provider_name, name, contact_person, phone, \
     email, region, software_version, port_count, purchase_date, expiry_date, status, login_frequency, \
     feature_usage, data_input, training_completion, usage_updated_at, last_active_time, created_at, updated_at, \
     (SELECT COALESCE(SUM(total), 0) FROM list_totals kept WHERE kept.provider_id = customers.service_provider_id \
      AND kept.list = 'tickets' AND kept.customer_id = customers.id AND kept.status = 'open' AND kept.type = '') + \
     (SELECT COALESCE(SUM(total), 0) FROM list_totals kept WHERE kept.provider_id = customers.service_provider_id \
      AND kept.list = 'tickets' AND kept.customer_id = customers.id AND kept.status = 'processing' AND kept.type = '') \
     AS unresolved_issues";

pub(super) fn customer_from_row(row: &Row<'_>) -> rusqlite::Result<Customer> {
    Ok(Customer {
        id: id(row, 0)?,
        service_provider_id: id(row, 1)?,
        service_provider_name: row.get(2)?,
        name: row.get(3)?,
        contact_person: row.get(4)?,
        phone: row.get(5)?,
        email: row.get(6)?,
        region: row.get(7)?,
        software_version: row.get(8)?,
        port_count: row.get(9)?,
        purchase_date: parse_time(row, 10)?,
        expiry_date: parse_time(row, 11)?,
        stored_status: parse_value(row, 12, CustomerStatus::parse)?,
        usage: UsageMetrics {
            login_frequency: percent(row, 13)?,
            feature_usage: percent(row, 14)?,
            data_input: percent(row, 15)?,
            training_completion: percent(row, 16)?,
        },
        usage_updated_at: parse_time(row, 17)?,
        last_active_time: parse_time(row, 18)?,
        created_at: parse_time(row, 19)?,
        updated_at: parse_time(row, 20)?,
        unresolved_issues: row.get(21)?,
    })
}
