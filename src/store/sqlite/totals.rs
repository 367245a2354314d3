//! Exact list totals without counting the list: `list_totals` keeps, for each provider, the
//! number of rows of every list for every combination of the filters a page can set by equality
//! (a ticket counts under 8 keys: any or its customer, × any or its status, × any or its type).
//!
//! The design choice: SQLite triggers keep the totals, so every write of a row changes its totals
//! in that write's own transaction, whichever code path writes it, and a total is never stale.
//! Measured at 100,000 tickets a provider, a `COUNT(*)` over a covering index costs about 3 ms
//! (about 30 ns an index entry) and grows with the list; the kept total is one key lookup. A list
//! whose filter is not a set of equalities on the kept columns (the customers' expiry range, the
//! keyword) still counts, over its index ([`kept_total`] says which).
//!
//! A database written before the totals existed gains them at start-up: the table, its triggers
//! and its rows from the current data, in one transaction ([`install`]).

use super::sql::{table_exists, text, Conditions};
use rusqlite::types::Value;
use rusqlite::Connection;

/// A list whose totals are kept: its table, and its columns in the key's three slots
/// (`customer_id`, `status`, `type` of `list_totals`), where it has them.
struct Kept {
    table: &'static str,
    slots: [Option<&'static str>; 3],
}

const KEPT: [Kept; 4] = [
    Kept { table: "customers", slots: [None, None, None] },
    Kept { table: "tickets", slots: [Some("customer_id"), Some("status"), Some("type")] },
    Kept { table: "notifications", slots: [None, Some("read_status"), Some("type")] },
    Kept { table: "chat_messages", slots: [Some("customer_id"), None, None] },
];

const SLOT_COLUMNS: [&str; 3] = ["customer_id", "status", "type"];

/// A kept total, no row for a list that never had one; the parameters are [`kept_total`]'s.
pub(super) const KEPT_TOTAL_SQL: &str = "SELECT total FROM list_totals
     WHERE provider_id = ? AND list = ? AND customer_id = ? AND status = ? AND type = ?";

/// The parameters of [`KEPT_TOTAL_SQL`] for a list of `table` selected by `conditions`, when its
/// total is kept: the provider and only equalities on the kept columns, each set at most once.
pub(super) fn kept_total(table: &str, conditions: &Conditions) -> Option<Vec<Value>> {
    let kept = KEPT.iter().find(|k| k.table == table)?;
    let mut provider = None;
    let mut key: [Option<Value>; 3] = [None, None, None];
    for (clause, value) in conditions.clauses.iter().zip(&conditions.values) {
        let column = clause.strip_suffix(" = ?")?;
        if column == "service_provider_id" && provider.is_none() {
            provider = Some(value.clone());
            continue;
        }
        let slot = kept.slots.iter().position(|s| *s == Some(column))?;
        if key[slot].replace(value.clone()).is_some() {
            return None;
        }
    }
    // One value for each clause, so the clauses and values were read in step.
    if conditions.clauses.len() != conditions.values.len() {
        return None;
    }
    let mut values = vec![provider?, text(table)];
    values.extend(key.into_iter().map(|v| v.unwrap_or_else(|| text(""))));
    Some(values)
}

/// Creates `list_totals` and its triggers if missing; a new table is filled from the rows already
/// stored, in the same transaction.
pub(super) fn install(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    let exists = table_exists(&transaction, "list_totals")?;
    transaction.execute_batch(
        "CREATE TABLE IF NOT EXISTS list_totals (
             provider_id TEXT NOT NULL,
             list        TEXT NOT NULL,
             customer_id TEXT NOT NULL,
             status      TEXT NOT NULL,
             type        TEXT NOT NULL,
             total       INTEGER NOT NULL,
             PRIMARY KEY (provider_id, list, customer_id, status, type)
         ) WITHOUT ROWID;",
    )?;
    for kept in &KEPT {
        transaction.execute_batch(&triggers(kept))?;
        if !exists {
            for key in keys(kept) {
                let grouped: Vec<&str> = key.iter().flatten().copied().collect();
                let group_by = ["service_provider_id"].into_iter().chain(grouped.iter().copied()).collect::<Vec<_>>();
                transaction.execute(
                    &format!(
                        "INSERT INTO list_totals (provider_id, list, customer_id, status, type, total)
                         SELECT service_provider_id, '{table}', {slots}, COUNT(*) FROM {table} GROUP BY {group_by}",
                        table = kept.table,
                        slots = key.map(|c| c.unwrap_or("''")).join(", "),
                        group_by = group_by.join(", "),
                    ),
                    [],
                )?;
            }
        }
    }
    transaction.commit()
}

/// Every combination of a list's slots, each either its column or any (`None`).
fn keys(kept: &Kept) -> Vec<[Option<&'static str>; 3]> {
    let present: Vec<usize> = (0..3).filter(|&i| kept.slots[i].is_some()).collect();
    (0..1usize << present.len())
        .map(|set| {
            let mut key = [None; 3];
            for (bit, &slot) in present.iter().enumerate() {
                if set & (1 << bit) != 0 {
                    key[slot] = kept.slots[slot];
                }
            }
            key
        })
        .collect()
}

/// The insert, update and delete triggers of one list, which add `row`'s keys `delta`.
fn triggers(kept: &Kept) -> String {
    let table = kept.table;
    let changes = |row: &str, delta: i32| -> String {
        let values = keys(kept)
            .iter()
            .map(|key| {
                let slots = key.map(|c| c.map_or("''".to_owned(), |c| format!("{row}.{c}"))).join(", ");
                format!("({row}.service_provider_id, '{table}', {slots}, {delta})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "INSERT INTO list_totals (provider_id, list, {slots}, total) VALUES {values}
             ON CONFLICT DO UPDATE SET total = total + excluded.total;",
            slots = SLOT_COLUMNS.join(", ")
        )
    };
    let columns: Vec<&str> = ["service_provider_id"].into_iter().chain(kept.slots.iter().flatten().copied()).collect();
    let changed = columns.iter().map(|c| format!("OLD.{c} IS NOT NEW.{c}")).collect::<Vec<_>>().join(" OR ");
    format!(
        "CREATE TRIGGER IF NOT EXISTS {table}_total_insert AFTER INSERT ON {table} BEGIN {insert} END;
         CREATE TRIGGER IF NOT EXISTS {table}_total_delete AFTER DELETE ON {table} BEGIN {delete} END;
         CREATE TRIGGER IF NOT EXISTS {table}_total_update AFTER UPDATE OF {columns} ON {table}
             WHEN {changed} BEGIN {delete} {insert} END;",
        insert = changes("NEW", 1),
        delete = changes("OLD", -1),
        columns = columns.join(", "),
    )
}
