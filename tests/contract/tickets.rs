//! Tickets: stored with their history and notification, changed by compare-and-set on the version,
//! replayed under an idempotency key, listed most recently updated first, scoped by provider.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::error::AppError;
use provider_desk::store::*;

contract_tests!(store: a_stored_ticket_reads_back_with_its_history_and_its_notification,
    a_change_from_a_stale_version_answers_none_and_changes_nothing,
    of_two_concurrent_changes_from_the_same_version_exactly_one_wins,
    a_ticket_written_again_under_a_used_key_is_replayed_and_nothing_more_is_stored,
    a_key_used_for_a_chat_message_is_a_conflict_for_a_ticket,
    tickets_are_listed_most_recently_updated_first_in_pages_with_filters_combined,
    provider_b_cannot_read_list_or_change_provider_a_tickets,
    a_ticket_with_two_thousand_maximum_size_replies_still_reads_lists_and_changes);

fn ticket_ids(page: &Page<Ticket>) -> Vec<Id> {
    ids(&page.items, |t| &t.id)
}

pub async fn a_stored_ticket_reads_back_with_its_history_and_its_notification(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let ticket = ticket(&customer, 2);
    let notification = ticket_notification(&ticket, 2);
    let written = store.insert_ticket(&ticket, &notification, None, &[]).await.unwrap();
    let Written::Created(_, events) = written else { panic!("a new ticket is created") };
    let kinds: Vec<_> = events.iter().map(|e| (e.cursor, e.kind)).collect();
    assert_eq!(kinds, [(1, EventKind::Ticket), (2, EventKind::Notification)]);

    let read = store.ticket(&provider, &ticket.id).await.unwrap().expect("the ticket reads back");
    assert_eq!((read.title.as_str(), read.status, read.version), ("无法登录", TicketStatus::Open, 0));
    assert_eq!(read.history, ticket.history);
    assert!(store.notification(&provider, &notification.id).await.unwrap().is_some());

    let change = ticket_change(&read, TicketStatus::Processing, 3, vec![]);
    assert_eq!(store.apply_ticket_change(&change).await.unwrap().map(|e| e.len()), Some(2));
    let changed = store.ticket(&provider, &ticket.id).await.unwrap().unwrap();
    assert_eq!((changed.status, changed.version, changed.updated_at), (TicketStatus::Processing, 1, at(3)));
    assert_eq!(changed.history.len(), 2, "the appended entry follows the first");
    assert_eq!(changed.history[1], change.appended_history[0]);
}

pub async fn a_change_from_a_stale_version_answers_none_and_changes_nothing(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let original = stored_ticket(&store, &customer, 2).await;
    store.apply_ticket_change(&ticket_change(&original, TicketStatus::Processing, 3, vec![])).await.unwrap().unwrap();
    let before = store.ticket(&provider, &original.id).await.unwrap().unwrap();
    let cursor = store.latest_cursor(&provider).await.unwrap();

    let stale = ticket_change(&original, TicketStatus::Resolved, 4, vec![draft(&customer, 4)]);
    assert!(store.apply_ticket_change(&stale).await.unwrap().is_none());
    let after = store.ticket(&provider, &original.id).await.unwrap().unwrap();
    assert_eq!((after.status, after.version, after.history.len()), (before.status, before.version, 2));
    assert_eq!(store.latest_cursor(&provider).await.unwrap(), cursor, "no event");
    assert!(store.notification(&provider, &stale.notification.id).await.unwrap().is_none(), "no notification");
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts::default(), "no delivery");
}

pub async fn of_two_concurrent_changes_from_the_same_version_exactly_one_wins(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let original = stored_ticket(&store, &customer, 2).await;
    let contenders = [TicketStatus::Processing, TicketStatus::Resolved].map(|status| {
        let (store, change) = (store.clone(), ticket_change(&original, status, 3, vec![draft(&customer, 3)]));
        tokio::spawn(async move { store.apply_ticket_change(&change).await.unwrap().is_some().then_some(status) })
    });
    let mut winners = Vec::new();
    for contender in contenders {
        winners.extend(contender.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one change applies");
    let after = store.ticket(&provider, &original.id).await.unwrap().unwrap();
    assert_eq!((after.status, after.version, after.history.len()), (winners[0], 1, 2));
    assert_eq!(store.latest_cursor(&provider).await.unwrap(), 4, "the insert's two events and the winner's two");
    assert_eq!(store.outbox_counts().await.unwrap().pending, 1, "only the winner's delivery");
}

pub async fn a_ticket_written_again_under_a_used_key_is_replayed_and_nothing_more_is_stored(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let key = id("k");
    let first = ticket(&customer, 2);
    let written =
        store.insert_ticket(&first, &ticket_notification(&first, 2), Some(&key), &[draft(&customer, 2)]).await;
    assert!(matches!(written.unwrap(), Written::Created(..)));
    let count = |store: SharedStore, provider: Id| async move {
        let tickets = store.list_tickets(&provider, &TicketFilter::default(), page(1, 1)).await.unwrap().total;
        let notes = store.list_notifications(&provider, &NotificationFilter::default(), page(1, 1)).await.unwrap();
        (tickets, notes.total, store.latest_cursor(&provider).await.unwrap(), store.outbox_counts().await.unwrap())
    };
    let before = count(store.clone(), provider.clone()).await;

    let mut retry = ticket(&customer, 5);
    retry.title = "重试".to_owned();
    let replayed =
        store.insert_ticket(&retry, &ticket_notification(&retry, 5), Some(&key), &[draft(&customer, 5)]).await.unwrap();
    let Written::Replayed(answer) = replayed else { panic!("a used key is replayed") };
    assert_eq!((&answer.id, answer.title.as_str()), (&first.id, "无法登录"), "the first request's ticket");
    assert_eq!(count(store.clone(), provider.clone()).await, before, "nothing more is stored");
    assert!(store.ticket(&provider, &retry.id).await.unwrap().is_none());

    let elsewhere = ticket(&stored_customer(&store, &stored_provider(&store).await, "别家", 1).await, 6);
    let other = store.insert_ticket(&elsewhere, &ticket_notification(&elsewhere, 6), Some(&key), &[]).await.unwrap();
    assert!(matches!(other, Written::Created(..)), "keys are per provider");
}

pub async fn a_key_used_for_a_chat_message_is_a_conflict_for_a_ticket(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let key = id("k");
    store.insert_chat_message(&chat(&customer, ChatSender::Customer, 1), Some(&key), &[]).await.unwrap();
    let ticket = ticket(&customer, 2);
    let outcome = store.insert_ticket(&ticket, &ticket_notification(&ticket, 2), Some(&key), &[]).await;
    assert!(matches!(outcome, Err(AppError::Conflict(_))), "{outcome:?}");
    assert!(store.ticket(&provider, &ticket.id).await.unwrap().is_none());
}

pub async fn tickets_are_listed_most_recently_updated_first_in_pages_with_filters_combined(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let one = stored_customer(&store, &provider, "一", 1).await;
    let two = stored_customer(&store, &provider, "二", 1).await;
    let mut written = Vec::new();
    for (minute, customer, ticket_type) in [
        (10, &one, TicketType::SystemIssue),
        (20, &two, TicketType::Complaint),
        (30, &one, TicketType::Complaint),
        (40, &one, TicketType::SystemIssue),
        (50, &two, TicketType::SystemIssue),
    ] {
        let ticket = Ticket { ticket_type, ..ticket(customer, minute) };
        store.insert_ticket(&ticket, &ticket_notification(&ticket, minute), None, &[]).await.unwrap();
        written.push(ticket);
    }
    // Changing the oldest makes it the most recently updated.
    store
        .apply_ticket_change(&ticket_change(&written[0], TicketStatus::Processing, 60, vec![]))
        .await
        .unwrap()
        .unwrap();
    let order = |indexes: &[usize]| indexes.iter().map(|i| written[*i].id.clone()).collect::<Vec<_>>();
    let list = |filter: TicketFilter, number, size| {
        let (store, provider) = (store.clone(), provider.clone());
        async move { store.list_tickets(&provider, &filter, page(number, size)).await.unwrap() }
    };

    let first = list(TicketFilter::default(), 1, 2).await;
    assert_eq!((first.total, ticket_ids(&first)), (5, order(&[0, 4])));
    assert!(!first.items[1].history.is_empty(), "listed with their history");
    let last = list(TicketFilter::default(), 3, 2).await;
    assert_eq!((last.total, ticket_ids(&last)), (5, order(&[1])));
    let past = list(TicketFilter::default(), 4, 2).await;
    assert_eq!((past.total, ticket_ids(&past)), (5, vec![]));
    let single = list(TicketFilter::default(), 3, 1).await;
    assert_eq!(ticket_ids(&single), order(&[3]));
    let whole = list(TicketFilter::default(), 1, 100).await;
    assert_eq!(ticket_ids(&whole), order(&[0, 4, 3, 2, 1]));

    let of_one = TicketFilter { customer_id: Some(one.id.clone()), ..TicketFilter::default() };
    let paged = list(of_one.clone(), 2, 1).await;
    assert_eq!((paged.total, ticket_ids(&paged)), (3, order(&[3])));
    let issues_of_one = TicketFilter { ticket_type: Some(TicketType::SystemIssue), ..of_one.clone() };
    let found = list(issues_of_one, 1, 10).await;
    assert_eq!((found.total, ticket_ids(&found)), (2, order(&[0, 3])));
    let open_issues =
        TicketFilter { status: Some(TicketStatus::Open), ticket_type: Some(TicketType::SystemIssue), ..of_one };
    let found = list(open_issues, 1, 10).await;
    assert_eq!((found.total, ticket_ids(&found)), (1, order(&[3])));
}

pub async fn provider_b_cannot_read_list_or_change_provider_a_tickets(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let customer = stored_customer(&store, &a, "甲的客户", 1).await;
    let theirs = stored_ticket(&store, &customer, 2).await;
    let mut hijack = ticket_change(&theirs, TicketStatus::Resolved, 3, vec![]);
    hijack.ticket.service_provider_id = b.clone();
    hijack.notification.service_provider_id = b.clone();
    let by_customer = TicketFilter { customer_id: Some(customer.id.clone()), ..TicketFilter::default() };

    let observed: Vec<(&str, bool)> = vec![
        ("ticket", store.ticket(&b, &theirs.id).await.unwrap().is_some()),
        ("list_tickets", store.list_tickets(&b, &TicketFilter::default(), page(1, 10)).await.unwrap().total > 0),
        ("list_tickets by customer", store.list_tickets(&b, &by_customer, page(1, 10)).await.unwrap().total > 0),
        ("apply_ticket_change", store.apply_ticket_change(&hijack).await.unwrap().is_some()),
    ];
    for (call, leaked) in observed {
        assert!(!leaked, "{call} let provider B reach provider A's ticket");
    }
    let kept = store.ticket(&a, &theirs.id).await.unwrap().unwrap();
    assert_eq!((kept.status, kept.version), (TicketStatus::Open, 0));
    assert_eq!(store.latest_cursor(&b).await.unwrap(), 0, "B's log is untouched");
}

/// On MongoDB a history embedded in the ticket's document reached the 16 MB document limit after
/// about 1,100 replies of 5,000 three-byte characters, and every later change failed.
pub async fn a_ticket_with_two_thousand_maximum_size_replies_still_reads_lists_and_changes(store: SharedStore) {
    const REPLIES: u64 = 2_000;
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let mut current = stored_ticket(&store, &customer, 2).await;
    let mut written = current.history.clone();
    for reply in 0..REPLIES {
        let minute = 3 + reply as i64;
        let mut change = ticket_change(&current, TicketStatus::Processing, minute, vec![]);
        let entry = &mut change.appended_history[0];
        entry.action = "reply".to_owned();
        entry.content = format!("{reply:04}{}", "回".repeat(4_996));
        written.push(entry.clone());
        let applied = store.apply_ticket_change(&change).await;
        assert!(matches!(applied, Ok(Some(_))), "reply {reply}: {applied:?}");
        current = change.ticket;
        current.version += 1;
    }

    let read = store.ticket(&provider, &current.id).await.unwrap().expect("the ticket reads back");
    assert_eq!(read.version, REPLIES);
    assert_eq!(read.history.len(), written.len(), "the creation and every reply");
    assert!(read.history == written, "every entry, in the order written");
    assert_eq!(read.history[REPLIES as usize].content.chars().count(), 5_000);

    let resolve = ticket_change(&read, TicketStatus::Resolved, 3 + REPLIES as i64, vec![]);
    assert!(store.apply_ticket_change(&resolve).await.unwrap().is_some(), "a later change still applies");
    let listed = store.list_tickets(&provider, &TicketFilter::default(), page(1, 10)).await.unwrap();
    assert_eq!(ticket_ids(&listed), vec![current.id.clone()]);
    let after = &listed.items[0];
    assert_eq!(
        (after.status, after.version, after.history.len()),
        (TicketStatus::Resolved, REPLIES + 1, written.len() + 1)
    );
    assert_eq!(after.history.last(), resolve.appended_history.last());
}
