//! The inbox: a summary a conversation, kept by the chat writes themselves (a message stored,
//! statuses moved to read, marked read or unread) with the provider's totals; listed all / unread
//! by last message and waiting by how long, by page and after a key; scoped by provider.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;
use std::sync::Arc;

/// A read that queues nothing.
fn no_notice() -> ReadNotice {
    Arc::new(|_| None)
}

contract_tests!(store: a_conversation_sums_up_its_messages_as_they_are_stored,
    reading_and_marking_keep_the_summary_and_the_totals_in_step,
    a_read_queues_the_notice_of_the_messages_it_read_in_its_own_transaction,
    the_lists_order_by_last_message_or_by_waiting_and_page_by_number_and_after_a_key,
    provider_b_sees_none_of_provider_a_conversations_and_cannot_mark_them);

fn customers_of(page: &Page<Conversation>) -> Vec<Id> {
    page.items.iter().map(|c| c.customer_id.clone()).collect()
}

pub async fn a_conversation_sums_up_its_messages_as_they_are_stored(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "华联超市", 0).await;
    assert!(store.conversation(&provider, &customer.id).await.unwrap().is_none(), "no message, no conversation");
    assert_eq!(store.inbox_totals(&provider).await.unwrap(), InboxTotals::default());

    let first = stored_chat(&store, &customer, ChatSender::Customer, 1).await;
    stored_chat(&store, &customer, ChatSender::Customer, 2).await;
    let third = stored_chat(&store, &customer, ChatSender::Customer, 3).await;
    let summary = store.conversation(&provider, &customer.id).await.unwrap().expect("a conversation");
    assert_eq!(summary.unread_count(), 3);
    assert_eq!(summary.waiting_since, Some(first.timestamp), "waiting since the first unanswered");
    assert_eq!(summary.last_message.id, third.id);
    assert_eq!(summary.last_message.sender, ChatSender::Customer);
    let totals = store.inbox_totals(&provider).await.unwrap();
    assert_eq!(
        totals,
        InboxTotals { conversations: 1, unread_conversations: 1, waiting_conversations: 1, unread_messages: 3 }
    );

    let reply = stored_chat(&store, &customer, ChatSender::ServiceProvider, 4).await;
    let summary = store.conversation(&provider, &customer.id).await.unwrap().unwrap();
    assert_eq!(summary.waiting_since, None, "the provider answered last");
    assert_eq!(summary.unread_count(), 3, "answering reads nothing");
    assert_eq!(summary.last_message.id, reply.id);
    assert_eq!(store.inbox_totals(&provider).await.unwrap().waiting_conversations, 0);

    // A message dated before the last one (a sender's clock) is counted, but is not the last.
    let late = chat(&customer, ChatSender::Customer, 0);
    store.insert_chat_message(&late, None, &[]).await.unwrap();
    let summary = store.conversation(&provider, &customer.id).await.unwrap().unwrap();
    assert_eq!(summary.last_message.id, reply.id);
    assert_eq!(summary.unread_count(), 4);
    assert_eq!(summary.waiting_since, Some(late.timestamp));
}

pub async fn reading_and_marking_keep_the_summary_and_the_totals_in_step(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "华联超市", 0).await;
    let other = stored_customer(&store, &provider, "永辉商贸", 0).await;
    let first = stored_chat(&store, &customer, ChatSender::Customer, 1).await;
    stored_chat(&store, &customer, ChatSender::Customer, 2).await;
    stored_chat(&store, &other, ChatSender::Customer, 3).await;

    // An acknowledgement to READ reads; to DELIVERED does not.
    let ids = [first.id.clone()];
    store
        .advance_chat_status(&provider, &customer.id, &ids, ChatSender::Customer, ChatStatus::Delivered)
        .await
        .unwrap();
    assert_eq!(store.conversation(&provider, &customer.id).await.unwrap().unwrap().unread_count(), 2);
    store.advance_chat_status(&provider, &customer.id, &ids, ChatSender::Customer, ChatStatus::Read).await.unwrap();
    assert_eq!(store.conversation(&provider, &customer.id).await.unwrap().unwrap().unread_count(), 1);
    assert_eq!(store.inbox_totals(&provider).await.unwrap().unread_messages, 2);

    let marked =
        store.mark_conversation_read(&provider, &customer.id, no_notice()).await.unwrap().expect("a conversation");
    assert_eq!(marked.read.len(), 1, "only the message still unread");
    assert!(marked.read.iter().all(|m| m.status == ChatStatus::Read));
    assert_eq!(marked.events.len(), 1);
    assert!(marked
        .events
        .iter()
        .all(|e| e.kind == EventKind::ChatStatus && e.customer_id.as_ref() == Some(&customer.id)));
    assert_eq!(marked.conversation.unread_count(), 0);
    assert!(marked.conversation.waiting_since.is_some(), "reading is not answering");
    let history = store.list_chat_messages(&provider, &customer.id, page(1, 10)).await.unwrap();
    assert!(history.items.iter().all(|m| m.status == ChatStatus::Read), "every message read");
    let again = store.mark_conversation_read(&provider, &customer.id, no_notice()).await.unwrap().unwrap();
    assert!(again.events.is_empty() && again.read.is_empty(), "nothing left to read: nothing logged");

    let unread = store.mark_conversation_unread(&provider, &customer.id).await.unwrap().unwrap();
    assert_eq!((unread.conversation.unread_count(), unread.conversation.marked_unread), (1, true));
    assert_eq!(unread.events.len(), 1);
    assert_eq!(unread.events[0].kind, EventKind::Inbox);
    assert!(store.mark_conversation_unread(&provider, &customer.id).await.unwrap().unwrap().events.is_empty());
    let totals = store.inbox_totals(&provider).await.unwrap();
    assert_eq!((totals.unread_conversations, totals.unread_messages), (2, 2), "the other's 1 and the mark's 1");

    let read = store.mark_conversation_read(&provider, &customer.id, no_notice()).await.unwrap().unwrap();
    assert!(!read.conversation.marked_unread);
    assert_eq!(read.events.len(), 1, "the mark alone moved: one inbox event");
    assert_eq!(read.events[0].kind, EventKind::Inbox);
    let totals = store.inbox_totals(&provider).await.unwrap();
    assert_eq!((totals.unread_conversations, totals.unread_messages), (1, 1));
    assert_eq!(store.mark_conversation_read(&provider, &id("c"), no_notice()).await.unwrap().map(|m| m.events), None);
}

pub async fn a_read_queues_the_notice_of_the_messages_it_read_in_its_own_transaction(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "华联超市", 0).await;
    let first = stored_chat(&store, &customer, ChatSender::Customer, 1).await;
    let second = stored_chat(&store, &customer, ChatSender::Customer, 2).await;
    stored_chat(&store, &customer, ChatSender::ServiceProvider, 3).await;
    let whose = customer.clone();
    let notice: ReadNotice = Arc::new(move |read: &[ChatMessage]| {
        let mut delivery = draft(&whose, 4);
        delivery.payload = serde_json::json!({ "messageIds": read.iter().map(|m| m.id.as_str()).collect::<Vec<_>>() });
        Some(delivery)
    });

    let marked = store.mark_conversation_read(&provider, &customer.id, notice.clone()).await.unwrap().unwrap();
    let claimed = store.claim_deliveries("w", at(10), at(11), 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "one notice for the read");
    let mut listed: Vec<&str> =
        claimed[0].draft.payload["messageIds"].as_array().unwrap().iter().filter_map(|id| id.as_str()).collect();
    listed.sort_unstable();
    let mut read = vec![first.id.as_str(), second.id.as_str()];
    read.sort_unstable();
    assert_eq!(listed, read, "the customer's messages it read, not the provider's");
    assert_eq!(claimed[0].sequence, marked.events[0].cursor, "under the cursor of the read's first event");

    let again = store.mark_conversation_read(&provider, &customer.id, notice).await.unwrap().unwrap();
    assert!(again.read.is_empty());
    assert_eq!(store.outbox_counts().await.unwrap().pending, 1, "nothing read: no notice");
}

pub async fn the_lists_order_by_last_message_or_by_waiting_and_page_by_number_and_after_a_key(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let mut customers = Vec::new();
    for name in ["甲", "乙", "丙", "丁", "戊"] {
        customers.push(stored_customer(&store, &provider, name, 0).await);
    }
    // Customers 0..5 write at minutes 10, 20, ...; 1 and 3 are answered; 2 is read.
    for (i, customer) in customers.iter().enumerate() {
        stored_chat(&store, customer, ChatSender::Customer, 10 * (i as i64 + 1)).await;
    }
    for i in [1, 3] {
        stored_chat(&store, &customers[i], ChatSender::ServiceProvider, 100 + i as i64).await;
    }
    store.mark_conversation_read(&provider, &customers[2].id, no_notice()).await.unwrap();
    let ids = |indexes: &[usize]| indexes.iter().map(|&i| customers[i].id.clone()).collect::<Vec<_>>();

    let all = store.conversations(&provider, ConversationFilter::All, None, page(1, 10)).await.unwrap();
    assert_eq!(customers_of(&all), ids(&[3, 1, 4, 2, 0]), "the latest message first");
    assert_eq!(all.total, 5);
    let unread = store.conversations(&provider, ConversationFilter::Unread, None, page(1, 10)).await.unwrap();
    assert_eq!(customers_of(&unread), ids(&[3, 1, 4, 0]));
    assert_eq!(unread.total, 4);
    let waiting = store.conversations(&provider, ConversationFilter::Waiting, None, page(1, 10)).await.unwrap();
    assert_eq!(customers_of(&waiting), ids(&[0, 2, 4]), "the longest waiting first");
    assert_eq!(waiting.total, 3);

    for filter in [ConversationFilter::All, ConversationFilter::Unread, ConversationFilter::Waiting] {
        let whole = store.conversations(&provider, filter, None, page(1, 10)).await.unwrap();
        let second = store.conversations(&provider, filter, None, page(2, 2)).await.unwrap();
        assert_eq!(customers_of(&second), customers_of(&whole).into_iter().skip(2).take(2).collect::<Vec<_>>());
        let mut walked = Vec::new();
        let mut after: Option<ConversationKey> = None;
        loop {
            let found = store.conversations(&provider, filter, after.as_ref(), page(1, 2)).await.unwrap();
            assert_eq!(found.total, whole.total, "{filter:?}: the whole list's total");
            walked.extend(customers_of(&found));
            match found.items.last() {
                Some(last) if found.items.len() == 2 => after = Some(ConversationKey::of(last, filter)),
                _ => break,
            }
        }
        assert_eq!(walked, customers_of(&whole), "{filter:?}: after a key, neither repeated nor skipped");
    }
}

pub async fn provider_b_sees_none_of_provider_a_conversations_and_cannot_mark_them(store: SharedStore) {
    let a = stored_provider(&store).await;
    let b = stored_provider(&store).await;
    let customer = stored_customer(&store, &a, "华联超市", 0).await;
    stored_chat(&store, &customer, ChatSender::Customer, 1).await;
    assert!(store.conversations(&b, ConversationFilter::All, None, page(1, 10)).await.unwrap().items.is_empty());
    assert_eq!(store.inbox_totals(&b).await.unwrap(), InboxTotals::default());
    assert!(store.conversation(&b, &customer.id).await.unwrap().is_none());
    assert!(store.mark_conversation_read(&b, &customer.id, no_notice()).await.unwrap().is_none());
    assert!(store.mark_conversation_unread(&b, &customer.id).await.unwrap().is_none());
    let summary = store.conversation(&a, &customer.id).await.unwrap().unwrap();
    assert_eq!((summary.unread_count(), summary.marked_unread), (1, false), "untouched");
}

/// A MongoDB database of a release before the inbox (no summaries, no totals, no marker) gains its
/// summaries from the messages when the store opens, once.
#[tokio::test]
async fn a_mongodb_database_written_before_the_inbox_gains_its_summaries_when_the_store_opens() {
    use mongodb::bson::{doc, Document};
    use provider_desk::store::mongo::MongoStore;
    use std::sync::Arc;

    let crate::support::Backend::Mongo { mongodb_uri, .. } = crate::support::Backend::from_env() else { return };
    let fresh = crate::Fresh::open().await;
    let (store, database) = (fresh.store.clone(), fresh.mongo.clone().expect("the MongoDB store").database().clone());
    let provider = stored_provider(&store).await;
    let (waiting, answered) =
        (stored_customer(&store, &provider, "甲", 0).await, stored_customer(&store, &provider, "乙", 0).await);
    let first = stored_chat(&store, &waiting, ChatSender::Customer, 1).await;
    stored_chat(&store, &waiting, ChatSender::Customer, 2).await;
    stored_chat(&store, &answered, ChatSender::Customer, 3).await;
    let reply = stored_chat(&store, &answered, ChatSender::ServiceProvider, 4).await;
    let kept = store.conversations(&provider, ConversationFilter::All, None, page(1, 10)).await.unwrap();
    let totals = store.inbox_totals(&provider).await.unwrap();

    for name in ["conversations", "inboxTotals", "migrations"] {
        database.collection::<Document>(name).delete_many(doc! {}).await.unwrap();
    }
    assert_eq!(store.inbox_totals(&provider).await.unwrap(), InboxTotals::default(), "an older release's database");
    let settings = crate::mongo_settings(database.name());
    for _ in 0..2 {
        let reopened: SharedStore =
            Arc::new(MongoStore::connect(&mongodb_uri, &settings).await.expect("the store opens again"));
        let built = reopened.conversations(&provider, ConversationFilter::All, None, page(1, 10)).await.unwrap();
        assert_eq!(built.items, kept.items, "the summaries the writes kept, built again from the messages");
        assert_eq!(reopened.inbox_totals(&provider).await.unwrap(), totals, "counted once, not twice");
        assert_eq!(built.items[0].last_message.id, reply.id);
        assert_eq!(built.items[1].waiting_since, Some(first.timestamp));
    }
    fresh.close().await;
}
