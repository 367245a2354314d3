//! Exact totals of a range of customers' expiry dates (the customer list by status) without counting
//! the range: `customer_expiry_days` keeps, for each provider, the number of customers expiring on
//! each UTC day.
//!
//! The design choice: the same as [`super::totals`]'s, SQLite triggers keep the counts in the
//! transaction of the customer's insert, update or delete, so no code path leaves one stale. A
//! status is a range relative to now, which no fixed key can hold, so the total of `(after, until]`
//! is the sum of the kept days wholly inside it (a few hundred rows at most) plus the rows of its
//! two edge days, counted over `customers_by_provider_expiry`. Measured at 100,000 customers a
//! provider, counting 70,000 active ones costs about 3.5 ms; the sum 0.06 ms (BENCHMARKS.md, scale).
//!
//! A database written before the table existed gains it at start-up, filled from the stored
//! customers in the same transaction ([`install`]).

use super::rows::time_text;
use super::sql::{table_exists, text, Conditions};
use crate::domain::Timestamp;
use chrono::Duration;
use rusqlite::types::Value;
use rusqlite::Connection;

/// The total of an expiry range; the parameters are [`kept_range_total`]'s: the lower edge day's
/// rows after the range's start, the upper edge day's rows up to the range's end, then the kept
/// days strictly between the two edge days.
pub(super) const EXPIRY_RANGE_TOTAL_SQL: &str = "SELECT COALESCE(SUM(total), 0)
   + (SELECT COUNT(*) FROM customers WHERE service_provider_id = ? AND expiry_date > ? AND expiry_date < ?)
   + (SELECT COUNT(*) FROM customers WHERE service_provider_id = ? AND expiry_date >= ? AND expiry_date <= ?)
   FROM customer_expiry_days WHERE provider_id = ? AND day > ? AND day < ?";

/// Past every stored date and day (which start with a digit): a range with no end.
const NO_END: &str = "~";

/// The parameters of [`EXPIRY_RANGE_TOTAL_SQL`] for a list of customers selected by `conditions`,
/// when they are the provider and an expiry range (`expiry_date > ?`, `expiry_date <= ?`, either
/// or both, each at most once) and nothing else.
pub(super) fn kept_range_total(table: &str, conditions: &Conditions) -> Option<Vec<Value>> {
    if table != "customers" || conditions.clauses.len() != conditions.values.len() {
        return None;
    }
    let (mut provider, mut after, mut until) = (None, None, None);
    for (clause, value) in conditions.clauses.iter().zip(&conditions.values) {
        let Value::Text(value) = value else { return None };
        match *clause {
            "service_provider_id = ?" if provider.is_none() => provider = Some(value.clone()),
            "expiry_date > ?" if after.is_none() => after = Some(parse_time(value)?),
            "expiry_date <= ?" if until.is_none() => until = Some(parse_time(value)?),
            _ => return None,
        }
    }
    if after.is_none() && until.is_none() {
        return None;
    }
    let provider = text(&provider?);
    // The whole days: after the start's day and before the end's day.
    let whole = (after.map_or(String::new(), |a| day_text(&a)), until.map_or(NO_END.to_owned(), |u| day_text(&u)));
    // Stored times are whole seconds, so `<= until` is `< until + 1 s`: the lower edge (the start's
    // day after the start) ends at the next day or past the end, whichever comes first, and holds
    // the whole range when it lies within one day.
    let lower = match after {
        Some(a) => {
            let next_day = day_start(&a) + Duration::days(1);
            let end = until.map_or(next_day, |u| next_day.min(u + Duration::seconds(1)));
            (time_text(&a), time_text(&end))
        }
        None => (String::new(), String::new()),
    };
    // The upper edge: the end's day up to the end, when that day is after the start's.
    let upper = match until {
        Some(u) if after.is_none_or(|a| day_start(&u) > a) => (time_text(&day_start(&u)), time_text(&u)),
        _ => (NO_END.to_owned(), NO_END.to_owned()),
    };
    Some(vec![
        provider.clone(),
        text(&lower.0),
        text(&lower.1),
        provider.clone(),
        text(&upper.0),
        text(&upper.1),
        provider,
        text(&whole.0),
        text(&whole.1),
    ])
}

/// The day a stored time falls on, as the kept rows name it: the first ten characters of its text.
const DAY_SQL: &str = "substr(expiry_date, 1, 10)";

fn day_text(time: &Timestamp) -> String {
    time_text(time)[..10].to_owned()
}

fn day_start(time: &Timestamp) -> Timestamp {
    time.date_naive().and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

fn parse_time(value: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(value).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// Creates `customer_expiry_days` and its triggers if missing; a new table is filled from the
/// customers already stored, in the same transaction.
pub(super) fn install(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    let exists = table_exists(&transaction, "customer_expiry_days")?;
    let change = |row: &str, delta: i32| {
        format!(
            "INSERT INTO customer_expiry_days (provider_id, day, total)
             VALUES ({row}.service_provider_id, substr({row}.expiry_date, 1, 10), {delta})
             ON CONFLICT DO UPDATE SET total = total + excluded.total;"
        )
    };
    transaction.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS customer_expiry_days (
             provider_id TEXT NOT NULL,
             day         TEXT NOT NULL,
             total       INTEGER NOT NULL,
             PRIMARY KEY (provider_id, day)
         ) WITHOUT ROWID;
         CREATE TRIGGER IF NOT EXISTS customers_expiry_day_insert AFTER INSERT ON customers BEGIN {insert} END;
         CREATE TRIGGER IF NOT EXISTS customers_expiry_day_delete AFTER DELETE ON customers BEGIN {delete} END;
         CREATE TRIGGER IF NOT EXISTS customers_expiry_day_update AFTER UPDATE OF service_provider_id, expiry_date
             ON customers
             WHEN OLD.service_provider_id IS NOT NEW.service_provider_id OR OLD.expiry_date IS NOT NEW.expiry_date
             BEGIN {delete} {insert} END;",
        insert = change("NEW", 1),
        delete = change("OLD", -1),
    ))?;
    if !exists {
        transaction.execute(
            &format!(
                "INSERT INTO customer_expiry_days (provider_id, day, total)
                 SELECT service_provider_id, {DAY_SQL}, COUNT(*) FROM customers GROUP BY service_provider_id, {DAY_SQL}"
            ),
            [],
        )?;
    }
    transaction.commit()
}
