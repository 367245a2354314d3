//! List totals and lists at scale: every list's `total` is exactly the number of its items, under
//! every filter a page can set, through inserts, status changes, re-syncs, marks read and a second
//! provider (the SQLite adapter keeps the totals rather than counting, so they must not drift); a
//! SQLite database from before the kept totals gains them at start-up, exact; and a status (expiry
//! range) lists the same pages whichever way the adapter chooses to read it.

use crate::contract_tests;
use crate::fixtures::*;
use crate::support::Backend;
use provider_desk::domain::*;
use provider_desk::store::sqlite::SqliteStore;
use provider_desk::store::*;
use std::sync::Arc;

contract_tests!(store: every_list_total_is_its_number_of_items_under_every_filter_through_changes,
    an_expiry_range_lists_the_same_pages_whether_it_holds_most_customers_or_few);

const TICKET_STATUSES: [TicketStatus; 3] = [TicketStatus::Open, TicketStatus::Processing, TicketStatus::Resolved];
const TICKET_TYPES: [TicketType; 2] = [TicketType::SystemIssue, TicketType::Complaint];

/// Asserts that each of the provider's lists, under every filter combination, totals what it lists.
async fn assert_totals_exact(store: &SharedStore, provider: &Id, customers: &[Customer]) {
    let all = page(1, 100);
    let listed = store.list_customers(provider, &CustomerFilter::default(), all).await.unwrap();
    assert_eq!(listed.total, listed.items.len() as u64, "customers");
    let customer_choices: Vec<Option<Id>> =
        [None].into_iter().chain(customers.iter().map(|c| Some(c.id.clone()))).collect();
    for customer_id in &customer_choices {
        for status in [None].into_iter().chain(TICKET_STATUSES.map(Some)) {
            for ticket_type in [None].into_iter().chain(TICKET_TYPES.map(Some)) {
                let filter = TicketFilter { customer_id: customer_id.clone(), status, ticket_type, sla: None };
                let listed = store.list_tickets(provider, &filter, all).await.unwrap();
                assert_eq!(listed.total, listed.items.len() as u64, "tickets {filter:?}");
            }
        }
    }
    for notification_type in [None, Some(NotificationType::TicketUpdate), Some(NotificationType::CustomerAlert)] {
        for read_status in [None, Some(ReadStatus::Unread), Some(ReadStatus::Read)] {
            let filter = NotificationFilter { notification_type, read_status };
            let listed = store.list_notifications(provider, &filter, all).await.unwrap();
            assert_eq!(listed.total, listed.items.len() as u64, "notifications {filter:?}");
        }
    }
    let unread = NotificationFilter { read_status: Some(ReadStatus::Unread), ..NotificationFilter::default() };
    let unread_listed = store.list_notifications(provider, &unread, all).await.unwrap().items.len() as u64;
    assert_eq!(store.unread_count(provider).await.unwrap(), unread_listed, "the unread count");
    for customer in customers {
        let listed = store.list_chat_messages(provider, &customer.id, all).await.unwrap();
        assert_eq!(listed.total, listed.items.len() as u64, "the conversation of {}", customer.id);
    }
}

/// Two customers' tickets of both types moved through every status, alerts and announcements
/// marked read one and then all at once, chat in two conversations, the customers re-synced; the
/// same for a second provider, whose rows count only for it.
async fn write_a_season(store: &SharedStore, provider: &Id) -> Vec<Customer> {
    let one = stored_customer(store, provider, "一", 1).await;
    let two = stored_customer(store, provider, "二", 2).await;
    let mut tickets = Vec::new();
    for (minute, customer, ticket_type) in [
        (10, &one, TicketType::SystemIssue),
        (11, &two, TicketType::Complaint),
        (12, &one, TicketType::Complaint),
        (13, &two, TicketType::SystemIssue),
        (14, &one, TicketType::SystemIssue),
    ] {
        let ticket = Ticket { ticket_type, ..ticket(customer, minute) };
        store.insert_ticket(&ticket, &ticket_notification(&ticket, minute), None, &[]).await.unwrap();
        tickets.push(ticket);
    }
    for (minute, (ticket, status)) in
        tickets.iter().zip([TicketStatus::Processing, TicketStatus::Resolved, TicketStatus::Processing]).enumerate()
    {
        let change = ticket_change(ticket, status, 20 + minute as i64, vec![]);
        store.apply_ticket_change(&change).await.unwrap().expect("the change applies");
    }
    let resolved = store.ticket(provider, &tickets[0].id).await.unwrap().unwrap();
    store.apply_ticket_change(&ticket_change(&resolved, TicketStatus::Resolved, 30, vec![])).await.unwrap().unwrap();
    for minute in 40..43 {
        store.insert_notification(&notification(provider, NotificationType::CustomerAlert, minute)).await.unwrap();
    }
    let first = store.list_notifications(provider, &NotificationFilter::default(), page(1, 1)).await.unwrap();
    store.mark_notification_read(provider, &first.items[0].id, at(50)).await.unwrap().unwrap();
    for minute in 60..63 {
        stored_chat(store, &one, ChatSender::Customer, minute).await;
    }
    stored_chat(store, &two, ChatSender::ServiceProvider, 63).await;
    let resynced = Customer { updated_at: at(70), ..one.clone() };
    store.save_customers(&[resynced, customer(provider, "三", 71)]).await.unwrap();
    let third = store.list_customers(provider, &CustomerFilter::default(), page(1, 1)).await.unwrap().items;
    [vec![one, two], third].concat()
}

pub async fn every_list_total_is_its_number_of_items_under_every_filter_through_changes(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let customers_a = write_a_season(&store, &a).await;
    let customers_b = write_a_season(&store, &b).await;
    assert_totals_exact(&store, &a, &customers_a).await;
    assert_totals_exact(&store, &b, &customers_b).await;
    let listed = store.list_customers(&a, &CustomerFilter::default(), page(1, 100)).await.unwrap();
    assert_eq!(listed.total, 3, "a re-synced customer is not counted twice");
    let tickets = store.list_tickets(&a, &TicketFilter::default(), page(1, 1)).await.unwrap();
    assert_eq!(tickets.total, 5, "only the provider's own tickets");

    store.mark_all_notifications_read(&a, at(80)).await.unwrap();
    assert_totals_exact(&store, &a, &customers_a).await;
    assert_eq!(store.unread_count(&a).await.unwrap(), 0);
    assert!(store.unread_count(&b).await.unwrap() > 0, "the other provider's stay unread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_from_before_the_kept_totals_gains_them_exact_at_start_up() {
    if !matches!(Backend::from_env(), Backend::Sqlite) {
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (provider, customers) = {
        let store: SharedStore = Arc::new(SqliteStore::open(directory.path()).expect("the store opens"));
        let provider = stored_provider(&store).await;
        let customers = write_a_season(&store, &provider).await;
        (provider, customers)
    };
    // What today's release wrote: the same rows, no totals and no triggers keeping them.
    let connection = rusqlite::Connection::open(SqliteStore::database_path(directory.path())).unwrap();
    let triggers: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_total_%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(triggers.len(), 12, "an insert, update and delete trigger for each of four lists");
    for trigger in &triggers {
        connection.execute_batch(&format!("DROP TRIGGER {trigger}")).unwrap();
    }
    connection.execute_batch("DROP TABLE list_totals").unwrap();
    drop(connection);

    let store: SharedStore = Arc::new(SqliteStore::open(directory.path()).expect("the older database opens"));
    assert_totals_exact(&store, &provider, &customers).await;
    let more = stored_ticket(&store, &customers[0], 90).await;
    let listed = store.list_tickets(&provider, &TicketFilter::default(), page(1, 100)).await.unwrap();
    assert_eq!((listed.total, listed.items[0].id.clone()), (6, more.id), "and keeps them from then on");
}

/// Twenty of 24 customers expire late and four soon: small pages of the large range are read in
/// list order by the SQLite adapter, the small range and large pages through the expiry index.
pub async fn an_expiry_range_lists_the_same_pages_whether_it_holds_most_customers_or_few(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let mut late = Vec::new();
    let mut soon = Vec::new();
    for n in 0..24 {
        // Updated in an order unrelated to expiry, so neither order can pass for the other.
        let updated = (n * 7) % 24;
        let mut c = customer(&provider, &format!("客户{n}"), updated);
        if n % 6 == 0 {
            c.expiry_date = at(60 * 24 * 10 + n);
            soon.push(c.clone());
        } else {
            c.expiry_date = at(60 * 24 * 100 + n);
            late.push(c.clone());
        }
        store.insert_customer(&c).await.unwrap();
    }
    let window = at(60 * 24 * 30);
    for (filter, mut expected) in [
        (CustomerFilter { expiry_after: Some(window), ..CustomerFilter::default() }, late),
        (CustomerFilter { expiry_until: Some(window), ..CustomerFilter::default() }, soon),
    ] {
        expected.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.as_str().cmp(b.id.as_str())));
        let expected = ids(&expected, |c| &c.id);
        for size in [2, 3, 100] {
            let mut listed = Vec::new();
            for number in 1..=(expected.len() as i64 / size + 1) {
                let page = store.list_customers(&provider, &filter, page(number, size)).await.unwrap();
                assert_eq!(page.total, expected.len() as u64, "{filter:?}");
                listed.extend(ids(&page.items, |c| &c.id));
            }
            assert_eq!(listed, expected, "{filter:?}, pages of {size}");
        }
    }
}
