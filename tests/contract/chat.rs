//! Chat: messages stored with their event, replayed under an idempotency key, paged from the latest
//! (each page oldest to newest), moved forward through their statuses, scoped by provider.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::error::AppError;
use provider_desk::store::*;

contract_tests!(store: a_message_written_again_under_a_used_key_is_replayed_and_nothing_more_is_stored,
    a_key_used_for_a_ticket_is_a_conflict_for_a_chat_message,
    the_first_chat_page_holds_the_latest_messages_and_every_page_runs_oldest_to_newest,
    chat_statuses_move_forward_only_for_the_senders_messages_with_an_event_for_each,
    provider_b_cannot_read_list_or_advance_provider_a_chat_messages);

fn message_ids(page: &Page<ChatMessage>) -> Vec<Id> {
    ids(&page.items, |m| &m.id)
}

pub async fn a_message_written_again_under_a_used_key_is_replayed_and_nothing_more_is_stored(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let key = id("k");
    let first = chat(&customer, ChatSender::ServiceProvider, 2);
    let written = store.insert_chat_message(&first, Some(&key), &[draft(&customer, 2)]).await.unwrap();
    let Written::Created(_, events) = written else { panic!("a new message is created") };
    assert_eq!(events.iter().map(|e| (e.cursor, e.kind)).collect::<Vec<_>>(), [(1, EventKind::ChatMessage)]);
    let count = |store: SharedStore, provider: Id, customer: Id| async move {
        let messages = store.list_chat_messages(&provider, &customer, page(1, 1)).await.unwrap().total;
        (messages, store.latest_cursor(&provider).await.unwrap(), store.outbox_counts().await.unwrap())
    };
    let before = count(store.clone(), provider.clone(), customer.id.clone()).await;

    let mut retry = chat(&customer, ChatSender::ServiceProvider, 3);
    retry.content = "重试".to_owned();
    let replayed = store.insert_chat_message(&retry, Some(&key), &[draft(&customer, 3)]).await.unwrap();
    let Written::Replayed(answer) = replayed else { panic!("a used key is replayed") };
    assert_eq!((&answer.id, &answer.content, answer.timestamp), (&first.id, &first.content, first.timestamp));
    assert_eq!(count(store.clone(), provider.clone(), customer.id.clone()).await, before, "nothing more stored");
    assert!(store.chat_message(&provider, &retry.id).await.unwrap().is_none());
}

pub async fn a_key_used_for_a_ticket_is_a_conflict_for_a_chat_message(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let key = id("k");
    let ticket = ticket(&customer, 1);
    store.insert_ticket(&ticket, &ticket_notification(&ticket, 1), Some(&key), &[]).await.unwrap();
    let message = chat(&customer, ChatSender::Customer, 2);
    let outcome = store.insert_chat_message(&message, Some(&key), &[]).await;
    assert!(matches!(outcome, Err(AppError::Conflict(_))), "{outcome:?}");
    assert!(store.chat_message(&provider, &message.id).await.unwrap().is_none());
}

pub async fn the_first_chat_page_holds_the_latest_messages_and_every_page_runs_oldest_to_newest(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let other = stored_customer(&store, &provider, "别的客户", 1).await;
    let mut written = Vec::new();
    for minute in [1, 2, 3, 4, 5] {
        let sender = if minute % 2 == 0 { ChatSender::ServiceProvider } else { ChatSender::Customer };
        written.push(stored_chat(&store, &customer, sender, minute).await);
        stored_chat(&store, &other, sender, minute).await;
    }
    let order = |indexes: &[usize]| indexes.iter().map(|i| written[*i].id.clone()).collect::<Vec<_>>();
    let list = |number, size| {
        let (store, provider, customer) = (store.clone(), provider.clone(), customer.id.clone());
        async move { store.list_chat_messages(&provider, &customer, page(number, size)).await.unwrap() }
    };

    let first = list(1, 2).await;
    assert_eq!((first.total, message_ids(&first)), (5, order(&[3, 4])), "the latest, oldest first");
    let second = list(2, 2).await;
    assert_eq!(message_ids(&second), order(&[1, 2]));
    let last = list(3, 2).await;
    assert_eq!((last.total, message_ids(&last)), (5, order(&[0])));
    let past = list(4, 2).await;
    assert_eq!((past.total, message_ids(&past)), (5, vec![]));
    assert_eq!(message_ids(&list(1, 1).await), order(&[4]), "page size 1");
    assert_eq!(message_ids(&list(1, 100).await), order(&[0, 1, 2, 3, 4]), "page size 100");
}

pub async fn chat_statuses_move_forward_only_for_the_senders_messages_with_an_event_for_each(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let other = stored_customer(&store, &provider, "别的客户", 1).await;
    let theirs = [
        stored_chat(&store, &customer, ChatSender::Customer, 1).await,
        stored_chat(&store, &customer, ChatSender::Customer, 2).await,
    ];
    let ours = stored_chat(&store, &customer, ChatSender::ServiceProvider, 3).await;
    let elsewhere = stored_chat(&store, &other, ChatSender::Customer, 4).await;
    let all = [theirs[0].id.clone(), theirs[1].id.clone(), ours.id.clone(), elsewhere.id.clone()];

    let moved = store
        .advance_chat_status(&provider, &customer.id, &all, ChatSender::Customer, ChatStatus::Delivered)
        .await
        .unwrap();
    let mut moved_ids = ids(&moved, |(m, _)| &m.id);
    moved_ids.sort();
    let mut expected = vec![theirs[0].id.clone(), theirs[1].id.clone()];
    expected.sort();
    assert_eq!(moved_ids, expected, "only the customer's messages of this conversation");
    for (message, event) in &moved {
        assert_eq!(message.status, ChatStatus::Delivered);
        assert_eq!((event.kind, &event.subject_id), (EventKind::ChatStatus, &message.id));
        assert_eq!(event.customer_id.as_ref(), Some(&customer.id));
    }
    let mut cursors: Vec<_> = moved.iter().map(|(_, e)| e.cursor).collect();
    cursors.sort();
    assert_eq!(cursors, [5, 6], "one event each, after the four messages' events");

    let read = store
        .advance_chat_status(&provider, &customer.id, &all[..1], ChatSender::Customer, ChatStatus::Read)
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    let back = store
        .advance_chat_status(&provider, &customer.id, &all[..2], ChatSender::Customer, ChatStatus::Delivered)
        .await
        .unwrap();
    assert!(back.is_empty(), "never back, and not twice to the same status");
    let first = store.chat_message(&provider, &theirs[0].id).await.unwrap().unwrap();
    assert_eq!(first.status, ChatStatus::Read);
    let untouched = store.chat_message(&provider, &ours.id).await.unwrap().unwrap();
    assert_eq!(untouched.status, ChatStatus::Sent);
    assert_eq!(store.latest_cursor(&provider).await.unwrap(), 7);
}

pub async fn provider_b_cannot_read_list_or_advance_provider_a_chat_messages(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let customer = stored_customer(&store, &a, "甲的客户", 1).await;
    let theirs = stored_chat(&store, &customer, ChatSender::Customer, 1).await;
    let ids = [theirs.id.clone()];

    let observed: Vec<(&str, bool)> = vec![
        ("chat_message", store.chat_message(&b, &theirs.id).await.unwrap().is_some()),
        ("list_chat_messages", store.list_chat_messages(&b, &customer.id, page(1, 10)).await.unwrap().total > 0),
        (
            "advance_chat_status",
            !store
                .advance_chat_status(&b, &customer.id, &ids, ChatSender::Customer, ChatStatus::Read)
                .await
                .unwrap()
                .is_empty(),
        ),
    ];
    for (call, leaked) in observed {
        assert!(!leaked, "{call} let provider B reach provider A's chat message");
    }
    let kept = store.chat_message(&a, &theirs.id).await.unwrap().unwrap();
    assert_eq!(kept.status, ChatStatus::Sent);
    assert_eq!((store.latest_cursor(&a).await.unwrap(), store.latest_cursor(&b).await.unwrap()), (1, 0));
}
