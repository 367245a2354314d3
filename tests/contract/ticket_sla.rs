//! Tickets' service-level timers: stored and read back with the ticket, changed with it, the list
//! filtered by status against a "now" given by the caller (most overdue first), and the breach
//! job's read of the tickets owed an alert, across providers; and the once-only notification both
//! alert jobs write; and the lookups by id alone that the PC system's events need.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(store: a_tickets_timers_read_back_and_change_with_it,
    the_list_filtered_by_sla_status_compares_the_stored_marks_with_the_now_given,
    tickets_owed_an_alert_are_read_across_providers_until_the_alert_is_marked,
    a_ticket_stored_without_timers_has_no_sla_and_matches_no_sla_filter,
    a_notification_stored_once_is_not_stored_again_under_its_id,
    a_ticket_is_found_by_id_alone_whatever_its_provider,
    chat_messages_are_found_by_id_alone_across_providers);

/// A ticket created at `created` (minutes), with an hour to respond and a day to resolve.
fn timed_ticket(customer: &Customer, created: i64) -> Ticket {
    let targets = SlaTargets { first_response: chrono::Duration::hours(1), resolution: chrono::Duration::days(1) };
    Ticket { sla: TicketSla::starting(at(created), targets), ..ticket(customer, created) }
}

async fn store_ticket(store: &SharedStore, ticket: &Ticket) {
    store.insert_ticket(ticket, &ticket_notification(ticket, 0), None, &[]).await.expect("the ticket is stored");
}

async fn listed(store: &SharedStore, provider: &Id, status: SlaStatus, now: i64) -> Vec<Id> {
    let filter = TicketFilter { sla: Some(SlaFilter { status, now: at(now) }), ..TicketFilter::default() };
    let page = store.list_tickets(provider, &filter, page(1, 50)).await.unwrap();
    assert_eq!(page.total, page.items.len() as u64, "{status:?} at {now}: the total counts what is listed");
    ids(&page.items, |t| &t.id)
}

pub async fn a_tickets_timers_read_back_and_change_with_it(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let ticket = timed_ticket(&customer, 2);
    store_ticket(&store, &ticket).await;
    let read = store.ticket(&provider, &ticket.id).await.unwrap().unwrap();
    assert_eq!(read.sla, ticket.sla);
    assert_eq!(read.sla.first_response_due_at, Some(at(62)));

    let mut change = ticket_change(&read, TicketStatus::Processing, 30, vec![]);
    change.ticket.sla.first_responded_at = Some(at(30));
    change.ticket.sla.resolution_alerted = true;
    store.apply_ticket_change(&change).await.unwrap().expect("the change applies");
    let changed = store.ticket(&provider, &ticket.id).await.unwrap().unwrap();
    assert_eq!(changed.sla, change.ticket.sla);
    let listed = store.list_tickets(&provider, &TicketFilter::default(), page(1, 10)).await.unwrap();
    assert_eq!(listed.items[0].sla, change.ticket.sla, "the list reads the timers too");
}

pub async fn the_list_filtered_by_sla_status_compares_the_stored_marks_with_the_now_given(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let (early, late) = (timed_ticket(&customer, 0), timed_ticket(&customer, 30));
    store_ticket(&store, &early).await;
    store_ticket(&store, &late).await;
    let mut answered = timed_ticket(&customer, 10);
    answered.sla.first_responded_at = Some(at(20));
    answered.resolved_at = Some(at(25));
    answered.status = TicketStatus::Resolved;
    store_ticket(&store, &answered).await;

    assert_eq!(listed(&store, &provider, SlaStatus::OnTrack, 5).await, [early.id.clone(), late.id.clone()]);
    assert_eq!(
        listed(&store, &provider, SlaStatus::AtRisk, 50).await,
        vec![early.id.clone()],
        "in the last 12 minutes"
    );
    assert_eq!(listed(&store, &provider, SlaStatus::Breached, 61).await, vec![early.id.clone()]);
    assert_eq!(listed(&store, &provider, SlaStatus::Breached, 200).await, [early.id.clone(), late.id.clone()]);
    assert_eq!(listed(&store, &provider, SlaStatus::Met, 200).await, vec![answered.id.clone()]);
    assert!(listed(&store, &provider, SlaStatus::Breached, 60).await.is_empty(), "due at 60, not yet late");
    for ticket in [&early, &late, &answered] {
        let read = store.ticket(&provider, &ticket.id).await.unwrap().unwrap();
        let expected = if ticket.id == answered.id { SlaStatus::Met } else { SlaStatus::Breached };
        assert_eq!(read.sla_status(at(200)), Some(expected), "the rules agree with the filter");
    }
    let other = stored_provider(&store).await;
    assert!(listed(&store, &other, SlaStatus::Breached, 200).await.is_empty(), "scoped by provider");
}

pub async fn tickets_owed_an_alert_are_read_across_providers_until_the_alert_is_marked(store: SharedStore) {
    let (one, two) = (stored_provider(&store).await, stored_provider(&store).await);
    let first = timed_ticket(&stored_customer(&store, &one, "客户一", 1).await, 0);
    let second = timed_ticket(&stored_customer(&store, &two, "客户二", 1).await, 5);
    store_ticket(&store, &first).await;
    store_ticket(&store, &second).await;
    let owed = |minutes| {
        let store = store.clone();
        async move { ids(&store.tickets_owed_sla_alerts(at(minutes), 10).await.unwrap(), |t| &t.id) }
    };
    assert!(owed(60).await.is_empty(), "nothing is late yet");
    assert_eq!(owed(61).await, vec![first.id.clone()]);
    assert_eq!(owed(100).await, [first.id.clone(), second.id.clone()], "longest owed first");

    let stored = store.ticket(&one, &first.id).await.unwrap().unwrap();
    let mut change = ticket_change(&stored, TicketStatus::Open, 0, vec![]);
    change.appended_history.clear();
    change.ticket.mark_alerted(SlaTarget::FirstResponse);
    store.apply_ticket_change(&change).await.unwrap().expect("the alert is marked");
    assert!(store.apply_ticket_change(&change).await.unwrap().is_none(), "a second run loses the compare-and-set");
    assert_eq!(owed(100).await, vec![second.id.clone()], "the first ticket owes nothing until its resolution is late");
    let both = [second.id.clone(), first.id.clone()];
    assert_eq!(owed(24 * 60 + 1).await, both, "the second's first response is owed since minute 65");
}

pub async fn a_ticket_stored_without_timers_has_no_sla_and_matches_no_sla_filter(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let old = stored_ticket(&store, &customer, 0).await;
    let read = store.ticket(&provider, &old.id).await.unwrap().unwrap();
    assert_eq!((read.sla.clone(), read.sla_status(at(100_000))), (TicketSla::default(), None));
    for status in SlaStatus::ALL {
        assert!(listed(&store, &provider, *status, 100_000).await.is_empty(), "{status:?}");
    }
    assert!(store.tickets_owed_sla_alerts(at(100_000), 10).await.unwrap().is_empty());
}

pub async fn a_notification_stored_once_is_not_stored_again_under_its_id(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let alert = notification(&provider, NotificationType::CustomerAlert, 5);
    let push = wechat_draft(&customer, 5);
    let event = store
        .insert_notification_once(&alert, std::slice::from_ref(&push))
        .await
        .unwrap()
        .expect("stored the first time");
    assert_eq!(event.kind, EventKind::Notification);
    let claimed = store.claim_deliveries("w", at(10), at(11), 10).await.unwrap();
    assert_eq!(claimed.iter().map(|e| (&e.draft.id, e.sequence)).collect::<Vec<_>>(), [(&push.id, event.cursor)]);
    let cursor = store.latest_cursor(&provider).await.unwrap();
    let again = Notification { title: "另一条".to_owned(), ..alert.clone() };
    let second_push = wechat_draft(&customer, 6);
    assert!(store.insert_notification_once(&again, &[second_push]).await.unwrap().is_none(), "the id is taken");
    assert_eq!(store.latest_cursor(&provider).await.unwrap(), cursor, "no event");
    assert_eq!(store.outbox_counts().await.unwrap().pending, 1, "nor a second delivery");
    let stored = store.notification(&provider, &alert.id).await.unwrap().expect("the first stays");
    assert_eq!(stored.title, alert.title);
}

pub async fn a_ticket_is_found_by_id_alone_whatever_its_provider(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let ticket = stored_ticket(&store, &customer, 2).await;
    let found = store.ticket_anywhere(&ticket.id).await.unwrap().expect("found without its provider");
    assert_eq!((found.service_provider_id.clone(), found.history.clone()), (provider, ticket.history));
    assert!(store.ticket_anywhere(&Id::parse("t-missing").unwrap()).await.unwrap().is_none());
}

pub async fn chat_messages_are_found_by_id_alone_across_providers(store: SharedStore) {
    let (one, two) = (stored_provider(&store).await, stored_provider(&store).await);
    let first =
        stored_chat(&store, &stored_customer(&store, &one, "客户一", 1).await, ChatSender::ServiceProvider, 2).await;
    let second = stored_chat(&store, &stored_customer(&store, &two, "客户二", 1).await, ChatSender::Customer, 3).await;
    let missing = Id::parse("cm-missing").unwrap();
    let mut found = store.chat_messages_anywhere(&[first.id.clone(), second.id.clone(), missing]).await.unwrap();
    found.sort_by_key(|m| m.timestamp);
    assert_eq!(ids(&found, |m| &m.id), vec![first.id.clone(), second.id.clone()]);
    assert_eq!(found[0].service_provider_id, one);
    assert!(store.chat_messages_anywhere(&[]).await.unwrap().is_empty());
}
