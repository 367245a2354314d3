//! Chat: messages stored with their event, replayed under an idempotency key, paged from the latest
//! (each page oldest to newest) or read by keyset next to a message, moved forward through their
//! statuses, scoped by provider.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::error::AppError;
use provider_desk::store::*;

contract_tests!(store: a_message_written_again_under_a_used_key_is_replayed_and_nothing_more_is_stored,
    a_key_used_for_a_ticket_is_a_conflict_for_a_chat_message,
    the_first_chat_page_holds_the_latest_messages_and_every_page_runs_oldest_to_newest,
    chat_statuses_move_forward_only_for_the_senders_messages_with_an_event_for_each,
    provider_b_cannot_read_list_or_advance_provider_a_chat_messages,
    a_window_before_a_message_holds_the_latest_older_ones_in_list_order_and_says_whether_more_remain,
    a_window_after_a_message_holds_the_earliest_newer_ones_in_list_order_and_says_whether_more_remain,
    walking_back_one_message_at_a_time_visits_the_whole_conversation_even_within_one_second,
    a_cursor_that_is_not_a_message_of_the_conversation_of_the_provider_finds_no_window);

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

/// A conversation of seven messages, three of them in the same second, beside another customer's;
/// answers the provider, the customer and the conversation in list order (oldest first).
async fn conversation_with_a_busy_second(store: &SharedStore) -> (Id, Customer, Vec<Id>) {
    let provider = stored_provider(store).await;
    let customer = stored_customer(store, &provider, "客户", 1).await;
    let other = stored_customer(store, &provider, "别的客户", 1).await;
    for minute in [1, 2, 3, 3, 3, 4, 5] {
        stored_chat(store, &customer, ChatSender::Customer, minute).await;
        stored_chat(store, &other, ChatSender::Customer, minute).await;
    }
    let everything = store.list_chat_messages(&provider, &customer.id, page(1, 100)).await.unwrap();
    assert_eq!(everything.items.len(), 7);
    (provider, customer, message_ids(&everything))
}

async fn window(store: &SharedStore, provider: &Id, customer: &Customer, cursor: ChatCursor, limit: u32) -> ChatWindow {
    let found = store.chat_window(provider, &customer.id, &cursor, limit).await.unwrap();
    found.unwrap_or_else(|| panic!("{cursor:?} is a message of the conversation"))
}

fn window_ids(window: &ChatWindow) -> (Vec<Id>, bool) {
    (ids(&window.items, |m| &m.id), window.has_more)
}

pub async fn a_window_before_a_message_holds_the_latest_older_ones_in_list_order_and_says_whether_more_remain(
    store: SharedStore,
) {
    let (provider, customer, all) = conversation_with_a_busy_second(&store).await;
    let before = |i: usize| ChatCursor::Before(all[i].clone());
    let newest = window(&store, &provider, &customer, before(6), 2).await;
    assert_eq!(newest.total, 7, "the whole conversation's size");
    assert_eq!(window_ids(&newest), (all[4..6].to_vec(), true), "the two before the newest, oldest first");
    let busy = window(&store, &provider, &customer, before(4), 2).await;
    assert_eq!(window_ids(&busy), (all[2..4].to_vec(), true), "within one second, in the order stored");
    let second = window(&store, &provider, &customer, before(1), 2).await;
    assert_eq!(window_ids(&second), (all[..1].to_vec(), false), "only the first is older: none left");
    let exact = window(&store, &provider, &customer, before(2), 2).await;
    assert_eq!(window_ids(&exact), (all[..2].to_vec(), false), "a window that ends at the first");
    let first = window(&store, &provider, &customer, before(0), 2).await;
    assert_eq!(window_ids(&first), (vec![], false), "nothing is older than the first");
    let one = window(&store, &provider, &customer, before(6), 1).await;
    assert_eq!(window_ids(&one), (all[5..6].to_vec(), true), "limit 1");
    let hundred = window(&store, &provider, &customer, before(6), 100).await;
    assert_eq!(window_ids(&hundred), (all[..6].to_vec(), false), "limit 100");
}

pub async fn a_window_after_a_message_holds_the_earliest_newer_ones_in_list_order_and_says_whether_more_remain(
    store: SharedStore,
) {
    let (provider, customer, all) = conversation_with_a_busy_second(&store).await;
    let after = |i: usize| ChatCursor::After(all[i].clone());
    let oldest = window(&store, &provider, &customer, after(0), 2).await;
    assert_eq!(oldest.total, 7);
    assert_eq!(window_ids(&oldest), (all[1..3].to_vec(), true), "the two after the first");
    let busy = window(&store, &provider, &customer, after(2), 2).await;
    assert_eq!(window_ids(&busy), (all[3..5].to_vec(), true), "within one second, in the order stored");
    let near_end = window(&store, &provider, &customer, after(5), 2).await;
    assert_eq!(window_ids(&near_end), (all[6..].to_vec(), false), "only the newest is newer: none left");
    let exact = window(&store, &provider, &customer, after(4), 2).await;
    assert_eq!(window_ids(&exact), (all[5..].to_vec(), false), "a window that ends at the newest");
    let last = window(&store, &provider, &customer, after(6), 2).await;
    assert_eq!(window_ids(&last), (vec![], false), "nothing is newer than the newest");
    let one = window(&store, &provider, &customer, after(0), 1).await;
    assert_eq!(window_ids(&one), (all[1..2].to_vec(), true), "limit 1");
    let hundred = window(&store, &provider, &customer, after(0), 100).await;
    assert_eq!(window_ids(&hundred), (all[1..].to_vec(), false), "limit 100");
}

pub async fn walking_back_one_message_at_a_time_visits_the_whole_conversation_even_within_one_second(
    store: SharedStore,
) {
    let (provider, customer, all) = conversation_with_a_busy_second(&store).await;
    let mut walked = vec![all[6].clone()];
    loop {
        let cursor = ChatCursor::Before(walked[0].clone());
        let (found, more) = window_ids(&window(&store, &provider, &customer, cursor, 1).await);
        walked.splice(0..0, found);
        if !more {
            break;
        }
    }
    assert_eq!(walked, all, "back from the newest, one at a time");
    let mut walked = vec![all[0].clone()];
    loop {
        let cursor = ChatCursor::After(walked.last().unwrap().clone());
        let (found, more) = window_ids(&window(&store, &provider, &customer, cursor, 1).await);
        walked.extend(found);
        if !more {
            break;
        }
    }
    assert_eq!(walked, all, "forward from the first, one at a time");
}

pub async fn a_cursor_that_is_not_a_message_of_the_conversation_of_the_provider_finds_no_window(store: SharedStore) {
    let (provider, customer, all) = conversation_with_a_busy_second(&store).await;
    let neighbour = stored_customer(&store, &provider, "邻居", 1).await;
    let neighbours = stored_chat(&store, &neighbour, ChatSender::Customer, 3).await;
    let other_provider = stored_provider(&store).await;
    let stranger = stored_customer(&store, &other_provider, "别家的客户", 1).await;
    let strangers = stored_chat(&store, &stranger, ChatSender::Customer, 3).await;
    let attempts = [
        ("another customer's message", &provider, &customer.id, neighbours.id.clone()),
        ("another provider's message", &provider, &customer.id, strangers.id.clone()),
        ("no message at all", &provider, &customer.id, id("cm")),
        ("the conversation's message, asked by another provider", &other_provider, &customer.id, all[3].clone()),
        ("the message, asked in another conversation", &provider, &neighbour.id, all[3].clone()),
    ];
    for (what, provider, customer, message) in attempts {
        for cursor in [ChatCursor::Before(message.clone()), ChatCursor::After(message.clone())] {
            let found = store.chat_window(provider, customer, &cursor, 100).await.unwrap();
            assert!(found.is_none(), "{what} ({cursor:?}) opened a window: {found:?}");
        }
    }
}
