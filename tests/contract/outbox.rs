//! The outbox: deliveries queued in the same unit as the change that causes them, claimed under a
//! lease one at a time per ordering key, completed, retried, set aside as dead letters, replayed,
//! counted and pruned; ephemeral deliveries queued on their own, dropped once sent or expired.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(store: a_ticket_change_queues_its_deliveries_and_a_stale_one_queues_nothing,
    a_chat_message_queues_its_deliveries_under_the_cursor_of_its_event,
    a_second_delivery_of_an_ordering_key_is_not_claimed_while_the_first_is_pending,
    a_claimed_delivery_is_leased_to_its_claimer_until_the_lease_runs_out,
    a_failed_delivery_is_retried_at_its_time_then_becomes_a_dead_letter_that_can_be_replayed,
    delivered_deliveries_are_counted_and_pruned_before_a_time,
    an_expiring_delivery_is_claimed_apart_from_its_conversation_and_leaves_no_row_once_dropped,
    an_expiring_delivery_not_sent_by_its_expiry_is_deleted_and_never_claimed);

fn claimed_ids(entries: &[OutboxEntry]) -> Vec<Id> {
    let mut claimed = ids(entries, |e| &e.draft.id);
    claimed.sort();
    claimed
}

fn sorted(mut ids: Vec<Id>) -> Vec<Id> {
    ids.sort();
    ids
}

pub async fn a_ticket_change_queues_its_deliveries_and_a_stale_one_queues_nothing(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let ticket = stored_ticket(&store, &customer, 2).await;
    let mut stale = ticket.clone();
    stale.version = 7;
    let lost = ticket_change(&stale, TicketStatus::Resolved, 3, vec![draft(&customer, 3)]);
    assert!(store.apply_ticket_change(&lost).await.unwrap().is_none());
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts::default());
    assert!(store.claim_deliveries("w", at(10), at(11), 10).await.unwrap().is_empty(), "nothing queued");

    let deliveries = vec![draft(&customer, 3), wechat_draft(&customer, 3)];
    let change = ticket_change(&ticket, TicketStatus::Resolved, 3, deliveries.clone());
    let events = store.apply_ticket_change(&change).await.unwrap().expect("the change applies");
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 2, delivered: 0, dead: 0 });
    let claimed = store.claim_deliveries("w", at(10), at(11), 10).await.unwrap();
    assert_eq!(claimed_ids(&claimed), sorted(ids(&deliveries, |d| &d.id)));
    for entry in &claimed {
        let queued = deliveries.iter().find(|d| d.id == entry.draft.id).unwrap();
        assert_eq!(&entry.draft, queued, "stored as queued");
        assert_eq!((entry.sequence, entry.status, entry.attempts), (events[0].cursor, DeliveryStatus::Pending, 0));
        assert_eq!((entry.next_attempt_at, entry.last_error.as_deref()), (at(3), None));
    }
}

pub async fn a_chat_message_queues_its_deliveries_under_the_cursor_of_its_event(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    stored_chat(&store, &customer, ChatSender::Customer, 1).await;
    let delivery = draft(&customer, 2);
    let message = chat(&customer, ChatSender::ServiceProvider, 2);
    let written = store.insert_chat_message(&message, None, std::slice::from_ref(&delivery)).await.unwrap();
    let Written::Created(_, events) = written else { panic!("a new message is created") };
    let claimed = store.claim_deliveries("w", at(2), at(3), 10).await.unwrap();
    assert_eq!(claimed_ids(&claimed), vec![delivery.id.clone()]);
    assert_eq!((claimed[0].sequence, events[0].cursor), (2, 2));
}

pub async fn a_second_delivery_of_an_ordering_key_is_not_claimed_while_the_first_is_pending(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let other = stored_customer(&store, &provider, "别的客户", 1).await;
    let (first, second, elsewhere) = (draft(&customer, 1), draft(&customer, 1), draft(&other, 1));
    for (delivery, conversation) in [(&first, &customer), (&second, &customer), (&elsewhere, &other)] {
        let message = chat(conversation, ChatSender::ServiceProvider, 1);
        store.insert_chat_message(&message, None, std::slice::from_ref(delivery)).await.unwrap();
    }

    let claimed = store.claim_deliveries("w", at(1), at(20), 10).await.unwrap();
    assert_eq!(claimed_ids(&claimed), sorted(vec![first.id.clone(), elsewhere.id.clone()]), "heads of each key");
    assert!(store.claim_deliveries("w2", at(3), at(4), 10).await.unwrap().iter().all(|e| e.draft.id != second.id));

    store.fail_delivery(&first.id, "w", "timeout", Some(at(10)), at(5)).await.unwrap();
    let waiting = store.claim_deliveries("w", at(6), at(7), 10).await.unwrap();
    assert!(!claimed_ids(&waiting).contains(&second.id), "a first delivery waiting to retry still holds it up");
    assert!(!claimed_ids(&waiting).contains(&first.id), "not due before its retry time");

    let retried = store.claim_deliveries("w", at(10), at(11), 10).await.unwrap();
    assert!(claimed_ids(&retried).contains(&first.id) && !claimed_ids(&retried).contains(&second.id));
    store.complete_delivery(&first.id, at(10)).await.unwrap();
    let next = store.claim_deliveries("w", at(10), at(11), 10).await.unwrap();
    assert!(claimed_ids(&next).contains(&second.id), "claimable once the first is delivered");
}

pub async fn a_claimed_delivery_is_leased_to_its_claimer_until_the_lease_runs_out(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let delivery = draft(&customer, 0);
    let message = chat(&customer, ChatSender::ServiceProvider, 0);
    store.insert_chat_message(&message, None, std::slice::from_ref(&delivery)).await.unwrap();

    assert_eq!(
        claimed_ids(&store.claim_deliveries("one", at(0), at(10), 10).await.unwrap()),
        vec![delivery.id.clone()]
    );
    assert!(store.claim_deliveries("two", at(9), at(20), 10).await.unwrap().is_empty(), "leased to one");
    assert_eq!(
        claimed_ids(&store.claim_deliveries("two", at(10), at(20), 10).await.unwrap()),
        vec![delivery.id.clone()]
    );

    store.fail_delivery(&delivery.id, "one", "late", None, at(11)).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap().pending, 1, "a lost lease's failure does nothing");
    assert!(store.claim_deliveries("three", at(12), at(30), 10).await.unwrap().is_empty(), "still leased to two");
    store.complete_delivery(&delivery.id, at(13)).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 0, delivered: 1, dead: 0 });
    assert!(store.claim_deliveries("three", at(40), at(50), 10).await.unwrap().is_empty(), "delivered is done");
}

pub async fn a_failed_delivery_is_retried_at_its_time_then_becomes_a_dead_letter_that_can_be_replayed(
    store: SharedStore,
) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let (delivery, other) = (draft(&customer, 0), draft(&stored_customer(&store, &provider, "乙", 1).await, 0));
    for d in [&delivery, &other] {
        let message = chat(&customer, ChatSender::ServiceProvider, 0);
        store.insert_chat_message(&message, None, std::slice::from_ref(d)).await.unwrap();
    }
    store.claim_deliveries("w", at(0), at(1), 10).await.unwrap();
    store.fail_delivery(&delivery.id, "w", "HTTP 503", Some(at(5)), at(0)).await.unwrap();
    store.complete_delivery(&other.id, at(0)).await.unwrap();
    assert!(store.claim_deliveries("w", at(4), at(6), 10).await.unwrap().is_empty(), "not before its retry time");
    let retry = store.claim_deliveries("w", at(5), at(6), 10).await.unwrap();
    assert_eq!(claimed_ids(&retry), vec![delivery.id.clone()]);
    assert_eq!((retry[0].attempts, retry[0].last_error.as_deref()), (1, Some("HTTP 503")));
    assert_eq!(retry[0].next_attempt_at, at(5));

    store.fail_delivery(&delivery.id, "w", "HTTP 400", None, at(5)).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 0, delivered: 1, dead: 1 });
    assert!(store.claim_deliveries("w", at(100), at(101), 10).await.unwrap().is_empty(), "a dead letter waits");
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(claimed_ids(&dead), vec![delivery.id.clone()]);
    assert_eq!((dead[0].status, dead[0].attempts, dead[0].dead_at), (DeliveryStatus::Dead, 2, Some(at(5))));
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 400"));

    assert_eq!(store.replay_dead_letters(Some(std::slice::from_ref(&other.id)), at(6)).await.unwrap(), 0, "not dead");
    assert_eq!(store.replay_dead_letters(Some(&[]), at(6)).await.unwrap(), 0);
    assert_eq!(store.replay_dead_letters(None, at(6)).await.unwrap(), 1);
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 1, delivered: 1, dead: 0 });
    let replayed = store.claim_deliveries("w", at(6), at(7), 10).await.unwrap();
    assert_eq!(claimed_ids(&replayed), vec![delivery.id.clone()]);
    assert_eq!((replayed[0].attempts, replayed[0].dead_at), (0, None), "a fresh set of attempts");
}

pub async fn delivered_deliveries_are_counted_and_pruned_before_a_time(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let drafts: Vec<_> = (0..3).map(|_| wechat_draft(&customer, 0)).collect();
    for d in &drafts {
        let message = chat(&customer, ChatSender::ServiceProvider, 0);
        store.insert_chat_message(&message, None, std::slice::from_ref(d)).await.unwrap();
    }
    store.complete_delivery(&drafts[0].id, at(1)).await.unwrap();
    store.complete_delivery(&drafts[1].id, at(5)).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 1, delivered: 2, dead: 0 });

    assert_eq!(store.prune_outbox(at(5)).await.unwrap(), 1, "delivered before the time");
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 1, delivered: 1, dead: 0 });
    assert_eq!(store.prune_outbox(at(100)).await.unwrap(), 1, "pending ones are never pruned");
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 1, delivered: 0, dead: 0 });
}

/// A typing signal in `customer`'s conversation, queued at `minutes`.
fn signal(customer: &Customer, minutes: i64) -> OutboxDraft {
    OutboxDraft {
        event_type: "chat.typing".to_owned(),
        ordering_key: OutboxDraft::signal_key(&customer.service_provider_id, &customer.id),
        ..draft(customer, minutes)
    }
}

pub async fn an_expiring_delivery_is_claimed_apart_from_its_conversation_and_leaves_no_row_once_dropped(
    store: SharedStore,
) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let message = draft(&customer, 2);
    let reply = chat(&customer, ChatSender::ServiceProvider, 2);
    store.insert_chat_message(&reply, None, std::slice::from_ref(&message)).await.unwrap();
    let typing = signal(&customer, 3);
    store.queue_expiring_delivery(&typing, at(4)).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 2, delivered: 0, dead: 0 });

    let claimed = store.claim_deliveries("w", at(3), at(3) + chrono::Duration::seconds(5), 10).await.unwrap();
    assert_eq!(claimed_ids(&claimed), sorted(vec![message.id.clone(), typing.id.clone()]), "not behind the message");
    let entry = claimed.iter().find(|e| e.draft.id == typing.id).unwrap();
    assert_eq!(&entry.draft, &typing, "stored as queued");
    assert_eq!((entry.expires_at, entry.next_attempt_at, entry.status), (Some(at(4)), at(3), DeliveryStatus::Pending));
    let plain = claimed.iter().find(|e| e.draft.id == message.id).unwrap();
    assert_eq!(plain.expires_at, None, "a delivery queued with its write does not expire");

    store.drop_delivery(&typing.id).await.unwrap();
    store.complete_delivery(&message.id, at(3)).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 0, delivered: 1, dead: 0 });
    assert!(store.dead_letters(10).await.unwrap().is_empty());
}

pub async fn an_expiring_delivery_not_sent_by_its_expiry_is_deleted_and_never_claimed(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let (stale, fresh) = (signal(&customer, 1), signal(&customer, 2));
    store.queue_expiring_delivery(&stale, at(2)).await.unwrap();
    store.queue_expiring_delivery(&fresh, at(10)).await.unwrap();
    let claimed = store.claim_deliveries("w", at(1), at(1) + chrono::Duration::seconds(5), 10).await.unwrap();
    assert_eq!(claimed_ids(&claimed), vec![stale.id.clone()], "one at a time in its conversation, in order");
    store.fail_delivery(&stale.id, "w", "HTTP 503", Some(at(3)), at(1)).await.unwrap();

    let claimed = store.claim_deliveries("w", at(3), at(4), 10).await.unwrap();
    assert_eq!(claimed_ids(&claimed), vec![fresh.id.clone()], "the expired one is gone, the next goes out");
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts { pending: 1, delivered: 0, dead: 0 });
    assert!(store.claim_deliveries("w", at(11), at(12), 10).await.unwrap().is_empty());
    assert_eq!(store.outbox_counts().await.unwrap(), OutboxCounts::default(), "expired while leased: deleted too");
}
