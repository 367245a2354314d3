//! Idempotency keys: a ticket change claims its key in its own transaction, so a change retried
//! under a claimed key applies nothing; a ticket born escalated under a key is stored and queued
//! once; the first answer recorded under a key stays, on its claim's row or a row of its own.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(store: a_change_under_a_claimed_key_applies_nothing_and_the_claim_names_its_entry,
    of_two_concurrent_changes_under_one_key_at_most_one_applies,
    an_escalated_ticket_written_again_under_its_key_queues_its_delivery_once,
    the_first_answer_recorded_under_a_key_stays_and_completes_the_claim,
    an_answer_under_a_key_no_write_claimed_is_kept_without_a_claim);

fn keyed(change: TicketChange, key: &Id, kind: &str) -> TicketChange {
    let subject = change.appended_history.last().unwrap().id.clone();
    TicketChange { claim: Some((key.clone(), KeyClaim { kind: kind.to_owned(), subject })), ..change }
}

pub async fn a_change_under_a_claimed_key_applies_nothing_and_the_claim_names_its_entry(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let original = stored_ticket(&store, &customer, 2).await;
    let key = id("key");
    assert_eq!(store.key_claim(&provider, &key).await.unwrap(), None);

    let first = keyed(ticket_change(&original, TicketStatus::Processing, 3, vec![]), &key, "ticket_reply");
    assert!(store.apply_ticket_change(&first).await.unwrap().is_some());
    let claim = store.key_claim(&provider, &key).await.unwrap().expect("the change claimed its key");
    assert_eq!((claim.kind.as_str(), &claim.subject), ("ticket_reply", &first.appended_history[0].id));

    // The retry, computed from the ticket as it is now (so its version matches), is not applied.
    let changed = store.ticket(&provider, &original.id).await.unwrap().unwrap();
    let cursor = store.latest_cursor(&provider).await.unwrap();
    let retry =
        keyed(ticket_change(&changed, TicketStatus::Processing, 4, vec![draft(&customer, 4)]), &key, "ticket_reply");
    assert!(store.apply_ticket_change(&retry).await.unwrap().is_none());
    let after = store.ticket(&provider, &original.id).await.unwrap().unwrap();
    assert_eq!((after.version, after.history.len()), (changed.version, changed.history.len()));
    assert_eq!(store.latest_cursor(&provider).await.unwrap(), cursor, "no event");
    assert!(store.notification(&provider, &retry.notification.id).await.unwrap().is_none(), "no notification");
    assert_eq!(store.outbox_counts().await.unwrap().pending, 0, "no delivery");
}

pub async fn of_two_concurrent_changes_under_one_key_at_most_one_applies(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let tickets = [stored_ticket(&store, &customer, 2).await, stored_ticket(&store, &customer, 2).await];
    let key = id("key");
    // Two tickets, so the versions do not decide: only the key does.
    let contenders = tickets.clone().map(|ticket| {
        let change = keyed(ticket_change(&ticket, TicketStatus::Processing, 3, vec![]), &key, "ticket_reply");
        let store = store.clone();
        tokio::spawn(async move { store.apply_ticket_change(&change).await.unwrap().is_some() })
    });
    let mut applied = 0;
    for contender in contenders {
        applied += usize::from(contender.await.unwrap());
    }
    assert_eq!(applied, 1, "exactly one change applies");
    let mut versions = Vec::new();
    for ticket in &tickets {
        versions.push(store.ticket(&provider, &ticket.id).await.unwrap().unwrap().version);
    }
    versions.sort();
    assert_eq!(versions, [0, 1]);
}

pub async fn an_escalated_ticket_written_again_under_its_key_queues_its_delivery_once(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let key = id("key");
    let first = ticket(&customer, 2);
    let written =
        store.insert_ticket(&first, &ticket_notification(&first, 2), Some(&key), &[draft(&customer, 2)]).await.unwrap();
    assert!(matches!(written, Written::Created(..)));
    // The retry is a new ticket with new ids, as the service computes it again.
    let retry = ticket(&customer, 3);
    let written =
        store.insert_ticket(&retry, &ticket_notification(&retry, 3), Some(&key), &[draft(&customer, 3)]).await.unwrap();
    let Written::Replayed(replayed) = written else { panic!("the retry is replayed") };
    assert_eq!(replayed.id, first.id);
    assert!(store.ticket(&provider, &retry.id).await.unwrap().is_none());
    assert_eq!(store.outbox_counts().await.unwrap().pending, 1, "one delivery");
}

pub async fn the_first_answer_recorded_under_a_key_stays_and_completes_the_claim(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let key = id("key");
    let ticket = ticket(&customer, 2);
    store.insert_ticket(&ticket, &ticket_notification(&ticket, 2), Some(&key), &[]).await.unwrap();
    assert_eq!(store.stored_answer(&provider, &key).await.unwrap(), None, "a claim holds no answer yet");

    let first = store.record_answer(&provider, &key, "fp-1", "{\"id\":1}", at(3)).await.unwrap();
    assert_eq!((first.fingerprint.as_str(), first.answer.as_str()), ("fp-1", "{\"id\":1}"));
    let second = store.record_answer(&provider, &key, "fp-2", "{\"id\":2}", at(4)).await.unwrap();
    assert_eq!(second, first, "the first answer stays and is answered");
    assert_eq!(store.stored_answer(&provider, &key).await.unwrap(), Some(first));
    let claim = store.key_claim(&provider, &key).await.unwrap().expect("the claim is still there");
    assert_eq!((claim.kind.as_str(), claim.subject), ("ticket", ticket.id));
    // Another provider's key of the same spelling is another key.
    let other = stored_provider(&store).await;
    assert_eq!(store.stored_answer(&other, &key).await.unwrap(), None);
}

pub async fn an_answer_under_a_key_no_write_claimed_is_kept_without_a_claim(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let key = id("key");
    let recorded = store.record_answer(&provider, &key, "fp", "true", at(1)).await.unwrap();
    assert_eq!(store.stored_answer(&provider, &key).await.unwrap(), Some(recorded));
    assert_eq!(store.key_claim(&provider, &key).await.unwrap(), None, "an answer alone claims nothing");
    // A write under that key afterwards is refused: the key is taken.
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let ticket = ticket(&customer, 2);
    let written = store.insert_ticket(&ticket, &ticket_notification(&ticket, 2), Some(&key), &[]).await;
    assert!(matches!(written, Err(provider_desk::error::AppError::Conflict(_))), "{written:?}");
    assert!(store.ticket(&provider, &ticket.id).await.unwrap().is_none());
}
