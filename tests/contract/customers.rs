//! Customers: listed most recently updated first with their open tickets counted, filtered and
//! paged; synced from the SaaS system; their status moved by compare-and-set; scoped by provider.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(store: customers_are_listed_most_recently_updated_first_in_pages_with_the_whole_total,
    customer_filters_combine_with_paging_and_match_keywords_literally,
    listed_customers_count_their_open_and_processing_tickets_as_unresolved,
    provider_b_cannot_read_list_sync_over_or_change_the_status_of_provider_a_customers,
    a_status_change_from_a_stale_status_answers_none_and_changes_nothing,
    a_status_change_stores_its_alert_once_with_its_event_and_its_deliveries,
    synced_customers_take_the_saas_fields_but_keep_their_stored_status_and_creation_time,
    customers_whose_stored_status_the_expiry_date_contradicts_are_found_as_stale);

fn customer_ids(page: &Page<Customer>) -> Vec<Id> {
    ids(&page.items, |c| &c.id)
}

pub async fn customers_are_listed_most_recently_updated_first_in_pages_with_the_whole_total(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let mut stored = Vec::new();
    for minute in [30, 10, 50, 20, 40] {
        stored.push(stored_customer(&store, &provider, &format!("客户{minute}"), minute).await);
    }
    stored.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
    let newest_first = ids(&stored, |c| &c.id);
    let list = |number, size| {
        let store = store.clone();
        let provider = provider.clone();
        async move { store.list_customers(&provider, &CustomerFilter::default(), page(number, size)).await.unwrap() }
    };

    let first = list(1, 2).await;
    assert_eq!((first.total, customer_ids(&first)), (5, newest_first[0..2].to_vec()), "page 1");
    let last = list(3, 2).await;
    assert_eq!((last.total, customer_ids(&last)), (5, newest_first[4..].to_vec()), "the last page");
    let past = list(4, 2).await;
    assert_eq!((past.total, customer_ids(&past)), (5, vec![]), "past the end");
    let single = list(2, 1).await;
    assert_eq!(customer_ids(&single), newest_first[1..2].to_vec(), "page size 1");
    let whole = list(1, 100).await;
    assert_eq!((whole.total, customer_ids(&whole)), (5, newest_first), "page size 100");
}

pub async fn customer_filters_combine_with_paging_and_match_keywords_literally(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let mut soon = customer(&provider, "科技一号", 1);
    soon.expiry_date = at(60 * 24 * 10);
    let mut late = customer(&provider, "科技二号", 2);
    late.expiry_date = at(60 * 24 * 100);
    let mut by_contact = customer(&provider, "商贸三号", 3);
    by_contact.contact_person = "科技联系人".to_owned();
    let percent = customer(&provider, "折扣100%公司", 4);
    let digits = customer(&provider, "折扣1000公司", 5);
    for c in [&soon, &late, &by_contact, &percent, &digits] {
        store.insert_customer(c).await.unwrap();
    }
    let list = |filter: CustomerFilter, number, size| {
        let (store, provider) = (store.clone(), provider.clone());
        async move { store.list_customers(&provider, &filter, page(number, size)).await.unwrap() }
    };
    let keyword = |text: &str| CustomerFilter { keyword: Some(text.to_owned()), ..CustomerFilter::default() };

    let first = list(keyword("科技"), 1, 2).await;
    assert_eq!((first.total, customer_ids(&first)), (3, vec![by_contact.id.clone(), late.id.clone()]));
    let second = list(keyword("科技"), 2, 2).await;
    assert_eq!((second.total, customer_ids(&second)), (3, vec![soon.id.clone()]));

    let expiring_soon = CustomerFilter { expiry_until: Some(at(60 * 24 * 30)), ..keyword("科技") };
    let found = list(expiring_soon, 1, 10).await;
    assert_eq!((found.total, customer_ids(&found)), (1, vec![soon.id.clone()]));
    let later = CustomerFilter { expiry_after: Some(at(60 * 24 * 30)), ..keyword("科技") };
    let found = list(later, 1, 1).await;
    assert_eq!((found.total, customer_ids(&found)), (2, vec![by_contact.id.clone()]));

    let literal = list(keyword("100%"), 1, 10).await;
    assert_eq!((literal.total, customer_ids(&literal)), (1, vec![percent.id.clone()]), "% is no wildcard");
    let underscore = list(keyword("折扣_"), 1, 10).await;
    assert_eq!(underscore.total, 0, "_ is no wildcard");
}

pub async fn listed_customers_count_their_open_and_processing_tickets_as_unresolved(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let busy = stored_customer(&store, &provider, "忙", 2).await;
    let idle = stored_customer(&store, &provider, "闲", 1).await;
    stored_ticket(&store, &busy, 1).await;
    let processing = Ticket { status: TicketStatus::Processing, ..ticket(&busy, 2) };
    let resolved = Ticket { status: TicketStatus::Resolved, resolved_at: Some(at(3)), ..ticket(&busy, 3) };
    for t in [&processing, &resolved] {
        store.insert_ticket(t, &ticket_notification(t, 3), None, &[]).await.unwrap();
    }
    let idle_ticket = stored_ticket(&store, &idle, 4).await;
    let resolving = ticket_change(&idle_ticket, TicketStatus::Resolved, 5, vec![]);
    store.apply_ticket_change(&resolving).await.unwrap().expect("the change applies");

    let listed = store.list_customers(&provider, &CustomerFilter::default(), page(1, 10)).await.unwrap();
    let count = |customer: &Customer| listed.items.iter().find(|c| c.id == customer.id).unwrap().unresolved_issues;
    assert_eq!(count(&busy), 2, "open and processing count, resolved does not");
    assert_eq!(count(&idle), 0, "a ticket resolved by a change no longer counts");
}

pub async fn provider_b_cannot_read_list_sync_over_or_change_the_status_of_provider_a_customers(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let theirs = stored_customer(&store, &a, "甲的客户", 1).await;
    let mut takeover = theirs.clone();
    takeover.service_provider_id = b.clone();
    takeover.name = "被改名".to_owned();
    let status_change = CustomerStatusChange {
        provider_id: b.clone(),
        customer_id: theirs.id.clone(),
        from: CustomerStatus::Active,
        to: CustomerStatus::Expired,
        alert: None,
        outbox: vec![],
    };

    let observed: Vec<(&str, bool)> = vec![
        ("customers_by_ids", !store.customers_by_ids(&b, std::slice::from_ref(&theirs.id)).await.unwrap().is_empty()),
        ("list_customers", store.list_customers(&b, &CustomerFilter::default(), page(1, 10)).await.unwrap().total > 0),
        ("save_customers", store.save_customers(&[takeover]).await.unwrap() != vec![false]),
        ("apply_customer_status", store.apply_customer_status(&status_change).await.unwrap().is_some()),
    ];
    for (call, leaked) in observed {
        assert!(!leaked, "{call} let provider B reach provider A's customer");
    }
    let kept = store.customers_by_ids(&a, std::slice::from_ref(&theirs.id)).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].name.as_str(), kept[0].stored_status), ("甲的客户", CustomerStatus::Active));
    assert_eq!(kept[0].service_provider_id, a);
    assert_eq!(
        store.customers_anywhere(std::slice::from_ref(&theirs.id)).await.unwrap().len(),
        1,
        "found for no provider"
    );
}

pub async fn a_status_change_from_a_stale_status_answers_none_and_changes_nothing(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let stored = stored_customer(&store, &provider, "客户", 1).await;
    let alert = Notification::customer_alert(id("m"), &stored, "已过期", "客户已过期".to_owned(), at(2));
    let stale = CustomerStatusChange {
        provider_id: provider.clone(),
        customer_id: stored.id.clone(),
        from: CustomerStatus::Expiring,
        to: CustomerStatus::Expired,
        alert: Some(alert.clone()),
        outbox: vec![draft(&stored, 2)],
    };
    assert!(store.apply_customer_status(&stale).await.unwrap().is_none());
    let kept = store.customers_by_ids(&provider, std::slice::from_ref(&stored.id)).await.unwrap();
    assert_eq!(kept[0].stored_status, CustomerStatus::Active);
    assert!(store.notification(&provider, &alert.id).await.unwrap().is_none(), "no alert");
    assert_eq!(store.latest_cursor(&provider).await.unwrap(), 0, "no event");
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts::default(), "no delivery");
}

pub async fn a_status_change_stores_its_alert_once_with_its_event_and_its_deliveries(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let stored = stored_customer(&store, &provider, "客户", 1).await;
    let alert = Notification::customer_alert(id("m"), &stored, "即将到期", "客户即将到期".to_owned(), at(2));
    let change = |from, to, outbox| CustomerStatusChange {
        provider_id: provider.clone(),
        customer_id: stored.id.clone(),
        from,
        to,
        alert: Some(alert.clone()),
        outbox,
    };
    let delivery = draft(&stored, 2);
    let events = store
        .apply_customer_status(&change(CustomerStatus::Active, CustomerStatus::Expiring, vec![delivery.clone()]))
        .await
        .unwrap()
        .expect("the change applies");
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].cursor, events[0].kind, &events[0].subject_id), (1, EventKind::Notification, &alert.id));
    let kept = store.customers_by_ids(&provider, std::slice::from_ref(&stored.id)).await.unwrap();
    assert_eq!(kept[0].stored_status, CustomerStatus::Expiring);
    assert!(store.notification(&provider, &alert.id).await.unwrap().is_some());
    let claimed = store.claim_deliveries("w", at(3), at(4), 10).await.unwrap();
    assert_eq!(ids(&claimed, |e| &e.draft.id), vec![delivery.id.clone()]);

    let again = store
        .apply_customer_status(&change(CustomerStatus::Expiring, CustomerStatus::Active, vec![draft(&stored, 5)]))
        .await
        .unwrap()
        .expect("the status moves back");
    assert!(again.is_empty(), "an alert with that id exists: no second alert, no event");
    assert_eq!(store.latest_cursor(&provider).await.unwrap(), 1);
    let notifications = store.list_notifications(&provider, &NotificationFilter::default(), page(1, 10)).await;
    assert_eq!(notifications.unwrap().total, 1);
    assert_eq!(store.outbox_counts().await.unwrap().pending, 1, "the alert's deliveries are not queued twice");
}

pub async fn synced_customers_take_the_saas_fields_but_keep_their_stored_status_and_creation_time(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let stored = stored_customer(&store, &provider, "旧名", 1).await;
    let mut synced = stored.clone();
    synced.name = "新名".to_owned();
    synced.port_count = 9;
    synced.updated_at = at(7);
    synced.created_at = at(6);
    synced.stored_status = CustomerStatus::Expired;
    let new = customer(&provider, "新客户", 8);
    assert_eq!(store.save_customers(&[synced, new.clone()]).await.unwrap(), vec![true, true]);

    let read = store.customers_by_ids(&provider, &[stored.id.clone(), new.id.clone()]).await.unwrap();
    let updated = read.iter().find(|c| c.id == stored.id).unwrap();
    assert_eq!((updated.name.as_str(), updated.port_count, updated.updated_at), ("新名", 9, at(7)));
    assert_eq!((updated.stored_status, updated.created_at), (CustomerStatus::Active, at(0)));
    assert!(read.iter().any(|c| c.id == new.id && c.name == "新客户"), "a new customer is stored whole");
}

pub async fn customers_whose_stored_status_the_expiry_date_contradicts_are_found_as_stale(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let current = stored_customer(&store, &provider, "正常", 1).await;
    let mut lapsed = customer(&provider, "已过期", 2);
    lapsed.expiry_date = at(-10);
    store.insert_customer(&lapsed).await.unwrap();
    let stale = store.customers_with_stale_status(at(0), 10).await.unwrap();
    assert_eq!(ids(&stale, |c| &c.id), vec![lapsed.id.clone()]);
    assert!(!stale.iter().any(|c| c.id == current.id));
}
