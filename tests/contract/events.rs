//! The event log: every watched write appends under the provider's next cursor, so a provider's
//! cursors run 1, 2, 3, ... with no hole and no duplicate, even with writers racing.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;
use std::collections::BTreeSet;

contract_tests!(store: after_writes_of_several_kinds_the_cursors_run_from_one_to_n_per_provider,
    events_after_a_cursor_with_a_limit_page_through_the_log,
    concurrent_writers_leave_no_hole_and_no_duplicate_in_the_cursors);

fn cursors(events: &[EventRecord]) -> Vec<Cursor> {
    events.iter().map(|e| e.cursor).collect()
}

pub async fn after_writes_of_several_kinds_the_cursors_run_from_one_to_n_per_provider(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let customer = stored_customer(&store, &a, "客户", 1).await;
    let ticket = stored_ticket(&store, &customer, 2).await;
    let b_customer = stored_customer(&store, &b, "乙的客户", 1).await;
    stored_chat(&store, &b_customer, ChatSender::Customer, 2).await;
    store.apply_ticket_change(&ticket_change(&ticket, TicketStatus::Processing, 3, vec![])).await.unwrap().unwrap();
    let message = stored_chat(&store, &customer, ChatSender::Customer, 4).await;
    store.insert_notification(&notification(&a, NotificationType::SystemNotification, 5)).await.unwrap();
    store.insert_notification(&notification(&b, NotificationType::SystemNotification, 5)).await.unwrap();
    let ids = [message.id.clone()];
    store.advance_chat_status(&a, &customer.id, &ids, ChatSender::Customer, ChatStatus::Read).await.unwrap();

    let of_a = store.events_after(&a, 0, 1000).await.unwrap();
    assert_eq!(cursors(&of_a), (1..=7).collect::<Vec<_>>());
    let kinds: Vec<_> = of_a.iter().map(|e| e.kind).collect();
    let expected = [EventKind::Ticket, EventKind::Notification, EventKind::Ticket, EventKind::Notification];
    assert_eq!(kinds[..4], expected);
    assert_eq!(kinds[4..], [EventKind::ChatMessage, EventKind::Notification, EventKind::ChatStatus]);
    assert!(of_a.iter().all(|e| e.provider_id == a));
    assert_eq!((&of_a[4].subject_id, of_a[4].customer_id.as_ref()), (&message.id, Some(&customer.id)));
    assert_eq!(store.latest_cursor(&a).await.unwrap(), 7);

    let of_b = store.events_after(&b, 0, 1000).await.unwrap();
    assert_eq!(cursors(&of_b), [1, 2], "each provider counts from 1");
    assert!(of_b.iter().all(|e| e.provider_id == b), "B reads none of A's events");
    assert_eq!(store.latest_cursor(&b).await.unwrap(), 2);
    let nobody = id("sp");
    assert_eq!(store.latest_cursor(&nobody).await.unwrap(), 0);
    assert!(store.events_after(&nobody, 0, 1000).await.unwrap().is_empty());
}

pub async fn events_after_a_cursor_with_a_limit_page_through_the_log(store: SharedStore) {
    let provider = stored_provider(&store).await;
    for minute in 1..=10 {
        store.insert_notification(&notification(&provider, NotificationType::TicketUpdate, minute)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.events_after(&provider, after, 3).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 3);
        after = batch.last().unwrap().cursor;
        seen.push(cursors(&batch));
    }
    assert_eq!(seen, [vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9], vec![10]]);
    assert_eq!(cursors(&store.events_after(&provider, 4, 2).await.unwrap()), [5, 6]);
    assert!(store.events_after(&provider, 10, 5).await.unwrap().is_empty(), "nothing after the latest");
}

pub async fn concurrent_writers_leave_no_hole_and_no_duplicate_in_the_cursors(store: SharedStore) {
    const WRITERS: usize = 4;
    const WRITES: usize = 8;
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let a_customer = stored_customer(&store, &a, "甲的客户", 1).await;
    let b_customer = stored_customer(&store, &b, "乙的客户", 1).await;
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        for customer in [a_customer.clone(), b_customer.clone()] {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let mut subjects = Vec::new();
                for write in 0..WRITES {
                    let minute = (writer * WRITES + write) as i64;
                    if write % 2 == 0 {
                        subjects.push(stored_chat(&store, &customer, ChatSender::Customer, minute).await.id);
                    } else {
                        let n = notification(&customer.service_provider_id, NotificationType::CustomerAlert, minute);
                        store.insert_notification(&n).await.unwrap();
                        subjects.push(n.id);
                    }
                }
                (customer.service_provider_id, subjects)
            }));
        }
    }
    let mut written: Vec<(Id, BTreeSet<Id>)> = vec![(a.clone(), BTreeSet::new()), (b.clone(), BTreeSet::new())];
    for writer in writers {
        let (provider, subjects) = writer.await.unwrap();
        written.iter_mut().find(|(p, _)| *p == provider).unwrap().1.extend(subjects);
    }

    for (provider, subjects) in written {
        let events = store.events_after(&provider, 0, 1000).await.unwrap();
        let n = (WRITERS * WRITES) as Cursor;
        assert_eq!(cursors(&events), (1..=n).collect::<Vec<_>>(), "cursors 1..={n}, in order, no hole");
        let logged: BTreeSet<Id> = events.iter().map(|e| e.subject_id.clone()).collect();
        assert_eq!(logged.len(), events.len(), "no subject logged twice");
        assert_eq!(logged, subjects, "every write logged once");
        assert_eq!(store.latest_cursor(&provider).await.unwrap(), n);
    }
}
