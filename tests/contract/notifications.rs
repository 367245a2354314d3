//! Notifications: listed newest first, filtered by type and read status, paged; marked read one at
//! a time or all at once; counted unread; scoped by provider.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(store: notifications_are_listed_newest_first_in_pages_with_filters_combined,
    marking_one_read_keeps_its_first_read_time_and_marking_all_changes_only_the_unread,
    provider_b_cannot_read_list_mark_read_or_count_provider_a_notifications);

fn notification_ids(page: &Page<Notification>) -> Vec<Id> {
    ids(&page.items, |n| &n.id)
}

pub async fn notifications_are_listed_newest_first_in_pages_with_filters_combined(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let mut written = Vec::new();
    for (minute, kind) in [
        (10, NotificationType::SystemNotification),
        (50, NotificationType::CustomerAlert),
        (30, NotificationType::CustomerAlert),
        (20, NotificationType::TicketUpdate),
        (40, NotificationType::CustomerAlert),
    ] {
        let n = notification(&provider, kind, minute);
        store.insert_notification(&n).await.unwrap();
        written.push(n);
    }
    store.mark_notification_read(&provider, &written[2].id, at(60)).await.unwrap().unwrap();
    let order = |indexes: &[usize]| indexes.iter().map(|i| written[*i].id.clone()).collect::<Vec<_>>();
    let list = |filter: NotificationFilter, number, size| {
        let (store, provider) = (store.clone(), provider.clone());
        async move { store.list_notifications(&provider, &filter, page(number, size)).await.unwrap() }
    };

    let first = list(NotificationFilter::default(), 1, 2).await;
    assert_eq!((first.total, notification_ids(&first)), (5, order(&[1, 4])), "newest first");
    let last = list(NotificationFilter::default(), 3, 2).await;
    assert_eq!((last.total, notification_ids(&last)), (5, order(&[0])));
    let past = list(NotificationFilter::default(), 4, 2).await;
    assert_eq!((past.total, notification_ids(&past)), (5, vec![]));
    let single = list(NotificationFilter::default(), 2, 1).await;
    assert_eq!(notification_ids(&single), order(&[4]));
    let whole = list(NotificationFilter::default(), 1, 100).await;
    assert_eq!(notification_ids(&whole), order(&[1, 4, 2, 3, 0]));

    let alerts = NotificationFilter { notification_type: Some(NotificationType::CustomerAlert), read_status: None };
    let paged = list(alerts.clone(), 2, 2).await;
    assert_eq!((paged.total, notification_ids(&paged)), (3, order(&[2])));
    let unread_alerts = NotificationFilter { read_status: Some(ReadStatus::Unread), ..alerts };
    let found = list(unread_alerts, 1, 1).await;
    assert_eq!((found.total, notification_ids(&found)), (2, order(&[1])));
    let read = NotificationFilter { read_status: Some(ReadStatus::Read), notification_type: None };
    let found = list(read, 1, 10).await;
    assert_eq!((found.total, notification_ids(&found)), (1, order(&[2])));
}

pub async fn marking_one_read_keeps_its_first_read_time_and_marking_all_changes_only_the_unread(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let notes: Vec<_> = (1..=3).map(|minute| notification(&provider, NotificationType::TicketUpdate, minute)).collect();
    for n in &notes {
        store.insert_notification(n).await.unwrap();
    }
    assert_eq!(store.unread_count(&provider).await.unwrap(), 3);

    let (read, event) = store.mark_notification_read(&provider, &notes[0].id, at(10)).await.unwrap().unwrap();
    assert_eq!((read.read_status, read.read_at), (ReadStatus::Read, Some(at(10))));
    let event = event.expect("the unread count moved: an inbox event");
    assert_eq!((event.kind, &event.subject_id), (EventKind::Inbox, &notes[0].id));
    assert_eq!(store.events_after(&provider, event.cursor - 1, 10).await.unwrap(), vec![event], "logged");
    let (again, event) = store.mark_notification_read(&provider, &notes[0].id, at(20)).await.unwrap().unwrap();
    assert_eq!(again.read_at, Some(at(10)), "the first read time is kept");
    assert_eq!(event, None, "read already: nothing moved, nothing logged");
    assert!(store.mark_notification_read(&provider, &id("m"), at(20)).await.unwrap().is_none(), "unknown id");
    assert_eq!(store.unread_count(&provider).await.unwrap(), 2);

    let (marked, event) = store.mark_all_notifications_read(&provider, at(30)).await.unwrap();
    assert_eq!((marked, event.map(|e| e.kind)), (2, Some(EventKind::Inbox)));
    assert_eq!(store.unread_count(&provider).await.unwrap(), 0);
    let (marked, event) = store.mark_all_notifications_read(&provider, at(40)).await.unwrap();
    assert_eq!((marked, event), (0, None), "none left unread, nothing logged");
    let first = store.notification(&provider, &notes[0].id).await.unwrap().unwrap();
    assert_eq!(first.read_at, Some(at(10)), "marking all leaves those read before alone");
    let second = store.notification(&provider, &notes[1].id).await.unwrap().unwrap();
    assert_eq!((second.read_status, second.read_at), (ReadStatus::Read, Some(at(30))));
}

pub async fn provider_b_cannot_read_list_mark_read_or_count_provider_a_notifications(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let theirs = notification(&a, NotificationType::SystemNotification, 1);
    store.insert_notification(&theirs).await.unwrap();
    let all = NotificationFilter::default();

    let observed: Vec<(&str, bool)> = vec![
        ("notification", store.notification(&b, &theirs.id).await.unwrap().is_some()),
        ("list_notifications", store.list_notifications(&b, &all, page(1, 10)).await.unwrap().total > 0),
        ("unread_count", store.unread_count(&b).await.unwrap() > 0),
        ("mark_notification_read", store.mark_notification_read(&b, &theirs.id, at(2)).await.unwrap().is_some()),
        ("mark_all_notifications_read", store.mark_all_notifications_read(&b, at(2)).await.unwrap().0 > 0),
    ];
    for (call, leaked) in observed {
        assert!(!leaked, "{call} let provider B reach provider A's notification");
    }
    let kept = store.notification(&a, &theirs.id).await.unwrap().unwrap();
    assert_eq!((kept.read_status, kept.read_at), (ReadStatus::Unread, None));
    assert_eq!(store.unread_count(&a).await.unwrap(), 1);
}
