//! The SQL plumbing every area's queries share: error mapping, placeholders and values, and the
//! provider-scoped WHERE clause with its paging.

use super::expiry_days::{kept_range_total, EXPIRY_RANGE_TOTAL_SQL};
use super::totals::{kept_total, KEPT_TOTAL_SQL};
use crate::domain::{Id, PageRequest};
use crate::error::AppError;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension};

pub(super) fn sql_error(error: rusqlite::Error) -> AppError {
    sql_error_of(&error)
}

pub(super) fn sql_error_of(error: &rusqlite::Error) -> AppError {
    match error {
        rusqlite::Error::SqliteFailure(code, _)
            if matches!(code.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            AppError::Unavailable(error.to_string())
        }
        _ => AppError::Internal(format!("sqlite: {error}")),
    }
}

/// Whether the database has a table of that name (a store opened by an older release may not).
pub(super) fn table_exists(connection: &Connection, name: &str) -> rusqlite::Result<bool> {
    connection.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)", [name], |r| {
        r.get(0)
    })
}

/// `?, ?, ?` for `count` parameters.
pub(super) fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

pub(super) fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

pub(super) fn id_values(ids: &[Id]) -> Vec<Value> {
    ids.iter().map(|id| text(id.as_str())).collect()
}

/// A `WHERE` clause built from optional conditions, with its parameters in order.
#[derive(Default)]
pub(super) struct Conditions {
    pub(super) clauses: Vec<&'static str>,
    pub(super) values: Vec<Value>,
}

impl Conditions {
    /// Rows of one provider: every tenant's query starts here.
    pub(super) fn of_provider(provider: &Id) -> Conditions {
        let mut conditions = Conditions::default();
        conditions.push("service_provider_id = ?", [text(provider.as_str())]);
        conditions
    }

    pub(super) fn push(&mut self, clause: &'static str, values: impl IntoIterator<Item = Value>) {
        self.clauses.push(clause);
        self.values.extend(values);
    }

    pub(super) fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

/// One of a provider's lists: the rows its conditions select, in its order. Its two statements
/// ([`count_sql`](ListQuery::count_sql), [`list_sql`](ListQuery::list_sql)) are built here only,
/// so the query-plan check ([`super::query_plans`]) explains exactly what a page runs.
pub(super) struct ListQuery {
    pub(super) table: &'static str,
    pub(super) columns: &'static str,
    pub(super) order: &'static str,
    pub(super) conditions: Conditions,
}

impl ListQuery {
    /// The list's total: kept by the store where it keeps it ([`super::totals`], or summed from
    /// the kept days of an expiry range, [`super::expiry_days`]), else counted over the list's
    /// index; its parameters are [`count_values`](ListQuery::count_values).
    pub(super) fn count_sql(&self) -> String {
        match self.kept() {
            Some((sql, _)) => sql.to_owned(),
            None => format!("SELECT COUNT(*) FROM {} WHERE {}", self.table, self.conditions.sql()),
        }
    }

    pub(super) fn count_values(&self) -> Vec<Value> {
        self.kept().map_or_else(|| self.conditions.values.clone(), |(_, values)| values)
    }

    /// The statement and parameters of a kept total, when the store keeps this one.
    fn kept(&self) -> Option<(&'static str, Vec<Value>)> {
        kept_total(self.table, &self.conditions)
            .map(|values| (KEPT_TOTAL_SQL, values))
            .or_else(|| kept_range_total(self.table, &self.conditions).map(|values| (EXPIRY_RANGE_TOTAL_SQL, values)))
    }

    /// The page's rows; its last two parameters are [`page_values`].
    pub(super) fn list_sql(&self) -> String {
        format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
            self.columns,
            self.table,
            self.conditions.sql(),
            self.order
        )
    }

    /// Counts the matching rows and reads one page of them.
    pub(super) fn page<T>(
        self,
        connection: &Connection,
        page: PageRequest,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<(Vec<T>, u64)> {
        let total = self.total(connection)?;
        Ok((self.items(connection, page, map)?, total))
    }

    /// The number of matching rows.
    pub(super) fn total(&self, connection: &Connection) -> rusqlite::Result<u64> {
        let total: i64 = connection
            .prepare_cached(&self.count_sql())?
            .query_row(params_from_iter(self.count_values()), |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        Ok(total.max(0) as u64)
    }

    /// One page of the matching rows.
    pub(super) fn items<T>(
        &self,
        connection: &Connection,
        page: PageRequest,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let values = self.conditions.values.iter().cloned().chain(page_values(page));
        connection.prepare_cached(&self.list_sql())?.query_map(params_from_iter(values), map)?.collect()
    }
}

/// The `LIMIT ? OFFSET ?` parameters of a page.
pub(super) fn page_values(page: PageRequest) -> [Value; 2] {
    [Value::Integer(i64::from(page.page_size())), Value::Integer(page.offset() as i64)]
}
