//! The customer list by status (a range of expiry dates) totals exactly what it lists: ranges that
//! start and end on a day boundary, a second before or after one, mid-day, within one day, empty,
//! open at either end; after the SaaS sync moves customers' expiry across days; for two providers
//! whose customers expire on the same days. The SQLite adapter sums kept counts per expiry day
//! plus the two edge days, so each of those edges must come out exact; a SQLite database from
//! before the kept days gains them at start-up.

use crate::contract_tests;
use crate::fixtures::*;
use crate::support::Backend;
use chrono::Duration;
use provider_desk::domain::*;
use provider_desk::store::sqlite::SqliteStore;
use provider_desk::store::*;
use std::sync::Arc;

contract_tests!(store: every_expiry_range_totals_its_customers_across_day_boundaries_syncs_and_providers);

const MINUTES_A_DAY: i64 = 60 * 24;

/// Customers expiring over four days: at midnight, a second after it, mid-day and a second before
/// the next midnight.
fn expiring_customers(provider: &Id) -> Vec<Customer> {
    let mut customers = Vec::new();
    for day in 0..4 {
        for (n, seconds) in [0, 1, 12 * 3600, 86_399].into_iter().enumerate() {
            let mut c = customer(provider, &format!("客户{day}-{n}"), day * 4 + n as i64);
            c.expiry_date = at(day * MINUTES_A_DAY) + Duration::seconds(seconds);
            customers.push(c);
        }
    }
    customers
}

/// Range ends worth testing: every midnight, a second on either side of it, mid-day, none.
fn range_ends() -> Vec<Option<Timestamp>> {
    let mut ends = vec![None];
    for day in -1..5 {
        let midnight = at(day * MINUTES_A_DAY);
        for seconds in [-1, 0, 1, 12 * 3600] {
            ends.push(Some(midnight + Duration::seconds(seconds)));
        }
    }
    ends
}

/// Asserts that every range's pages list exactly the provider's customers inside it, and total them.
async fn assert_ranges_exact(store: &SharedStore, provider: &Id, customers: &[Customer]) {
    let ends = range_ends();
    for after in &ends {
        for until in &ends {
            if after.is_none() && until.is_none() {
                continue;
            }
            let filter = CustomerFilter { expiry_after: *after, expiry_until: *until, keyword: None };
            let listed = store.list_customers(provider, &filter, page(1, 100)).await.unwrap();
            let mut expected: Vec<Id> = customers
                .iter()
                .filter(|c| after.is_none_or(|a| c.expiry_date > a) && until.is_none_or(|u| c.expiry_date <= u))
                .map(|c| c.id.clone())
                .collect();
            let mut found = ids(&listed.items, |c| &c.id);
            expected.sort();
            found.sort();
            assert_eq!(found, expected, "{after:?} .. {until:?}");
            assert_eq!(listed.total, expected.len() as u64, "{after:?} .. {until:?}");
        }
    }
}

/// Both providers' customers expire on the same days; then the sync moves some of a's a day on,
/// one within its day and one across several, and adds one.
async fn write_and_resync(store: &SharedStore) -> [(Id, Vec<Customer>); 2] {
    let (a, b) = (stored_provider(store).await, stored_provider(store).await);
    let (mut customers_a, customers_b) = (expiring_customers(&a), expiring_customers(&b));
    store.save_customers(&customers_a).await.unwrap();
    store.save_customers(&customers_b[..10]).await.unwrap();
    for c in &customers_b[10..] {
        store.insert_customer(c).await.unwrap();
    }
    assert_ranges_exact(store, &a, &customers_a).await;
    assert_ranges_exact(store, &b, &customers_b).await;

    let moves = [(0, Duration::days(1)), (5, Duration::seconds(-1)), (7, Duration::hours(1)), (9, Duration::days(-3))];
    let mut resynced = Vec::new();
    for (index, by) in moves {
        let c = &mut customers_a[index];
        c.expiry_date += by;
        c.updated_at += Duration::minutes(100);
        resynced.push(c.clone());
    }
    let mut added = customer(&a, "新客户", 200);
    added.expiry_date = at(2 * MINUTES_A_DAY);
    resynced.push(added.clone());
    customers_a.push(added);
    store.save_customers(&resynced).await.unwrap();
    [(a, customers_a), (b, customers_b)]
}

pub async fn every_expiry_range_totals_its_customers_across_day_boundaries_syncs_and_providers(store: SharedStore) {
    let [(a, customers_a), (b, customers_b)] = write_and_resync(&store).await;
    assert_ranges_exact(&store, &a, &customers_a).await;
    assert_ranges_exact(&store, &b, &customers_b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_from_before_the_kept_expiry_days_gains_them_exact_at_start_up() {
    if !matches!(Backend::from_env(), Backend::Sqlite) {
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let [(a, customers_a), (b, customers_b)] = {
        let store: SharedStore = Arc::new(SqliteStore::open(directory.path()).expect("the store opens"));
        write_and_resync(&store).await
    };
    // What the release before wrote: the same customers, no kept days and no triggers keeping them.
    let connection = rusqlite::Connection::open(SqliteStore::database_path(directory.path())).unwrap();
    connection
        .execute_batch(
            "DROP TRIGGER customers_expiry_day_insert;
             DROP TRIGGER customers_expiry_day_delete;
             DROP TRIGGER customers_expiry_day_update;
             DROP TABLE customer_expiry_days;",
        )
        .unwrap();
    drop(connection);

    let store: SharedStore = Arc::new(SqliteStore::open(directory.path()).expect("the older database opens"));
    assert_ranges_exact(&store, &a, &customers_a).await;
    assert_ranges_exact(&store, &b, &customers_b).await;
    let mut later = customer(&a, "之后", 300);
    later.expiry_date = at(MINUTES_A_DAY) + Duration::seconds(5);
    store.insert_customer(&later).await.unwrap();
    let customers_a = [customers_a, vec![later]].concat();
    assert_ranges_exact(&store, &a, &customers_a).await;
}
