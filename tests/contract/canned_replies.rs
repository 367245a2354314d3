//! Canned replies: stored as written, listed by short code and paged, counted; a short code once
//! per provider (a Conflict otherwise, on insert and on update); updates compare-and-set on the
//! version; deleted once; scoped by provider.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::error::AppError;
use provider_desk::store::*;

contract_tests!(store: canned_replies_are_stored_as_written_and_listed_by_short_code_in_pages,
    a_short_code_the_provider_already_has_is_a_conflict_while_another_provider_may_use_it,
    an_update_applies_only_to_the_version_it_was_computed_from_and_a_delete_only_once,
    provider_b_cannot_read_list_update_delete_or_count_provider_a_canned_replies);

fn canned_reply(provider: &Id, short_code: &str, minutes: i64) -> CannedReply {
    CannedReply {
        id: id("cr"),
        service_provider_id: provider.clone(),
        short_code: short_code.to_owned(),
        title: format!("标题 {short_code}"),
        content: "您好 {customerName}，我是 {providerName} 的 {contactPerson}。".to_owned(),
        created_at: at(minutes),
        updated_at: at(minutes),
        version: 0,
    }
}

async fn stored_canned_reply(store: &SharedStore, provider: &Id, short_code: &str, minutes: i64) -> CannedReply {
    let reply = canned_reply(provider, short_code, minutes);
    store.insert_canned_reply(&reply).await.unwrap();
    reply
}

fn short_codes(page: &Page<CannedReply>) -> Vec<&str> {
    page.items.iter().map(|r| r.short_code.as_str()).collect()
}

fn is_conflict<T: std::fmt::Debug>(result: &Result<T, AppError>) -> bool {
    matches!(result, Err(AppError::Conflict(_)))
}

pub async fn canned_replies_are_stored_as_written_and_listed_by_short_code_in_pages(store: SharedStore) {
    let provider = stored_provider(&store).await;
    assert_eq!(store.count_canned_replies(&provider).await.unwrap(), 0);
    assert_eq!(store.canned_replies(&provider, page(1, 10)).await.unwrap().total, 0, "none yet");
    let mut written = Vec::new();
    // Written newest code last, oldest first: the list follows the code, not the time.
    for (minute, code) in [(1, "renew"), (2, "greet"), (3, "thanks"), (4, "bye"), (5, "price")] {
        written.push(stored_canned_reply(&store, &provider, code, minute).await);
    }

    let stored = store.canned_reply(&provider, &written[0].id).await.unwrap().unwrap();
    assert_eq!(stored, written[0], "stored as written, placeholders unfilled");
    assert!(store.canned_reply(&provider, &id("cr")).await.unwrap().is_none(), "unknown id");
    assert_eq!(store.count_canned_replies(&provider).await.unwrap(), 5);

    let list = |number, size| {
        let (store, provider) = (store.clone(), provider.clone());
        async move { store.canned_replies(&provider, page(number, size)).await.unwrap() }
    };
    let whole = list(1, 100).await;
    assert_eq!((whole.total, short_codes(&whole)), (5, vec!["bye", "greet", "price", "renew", "thanks"]));
    let first = list(1, 2).await;
    assert_eq!((first.total, short_codes(&first)), (5, vec!["bye", "greet"]));
    let last = list(3, 2).await;
    assert_eq!((last.total, short_codes(&last)), (5, vec!["thanks"]), "the last page holds the rest");
    let past = list(4, 2).await;
    assert_eq!((past.total, short_codes(&past)), (5, vec![]), "past the end: empty, with the total");
    let single = list(3, 1).await;
    assert_eq!(short_codes(&single), ["price"]);
    let exact = list(1, 5).await;
    assert_eq!(exact.items.len(), 5, "a page exactly the size of the list");
}

pub async fn a_short_code_the_provider_already_has_is_a_conflict_while_another_provider_may_use_it(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let greet = stored_canned_reply(&store, &a, "greet", 1).await;
    let bye = stored_canned_reply(&store, &a, "bye", 2).await;

    let again = store.insert_canned_reply(&canned_reply(&a, "greet", 3)).await;
    assert!(is_conflict(&again), "a second greet of A: {again:?}");
    assert_eq!(store.count_canned_replies(&a).await.unwrap(), 2, "nothing stored");

    let of_b = stored_canned_reply(&store, &b, "greet", 4).await;
    assert_eq!(store.canned_reply(&b, &of_b.id).await.unwrap().unwrap(), of_b, "B has its own greet");

    let renamed = CannedReply { short_code: "greet".to_owned(), updated_at: at(5), ..bye.clone() };
    let taken = store.update_canned_reply(&renamed).await;
    assert!(is_conflict(&taken), "renaming bye to greet: {taken:?}");
    assert_eq!(store.canned_reply(&a, &bye.id).await.unwrap().unwrap(), bye, "bye kept as it was");

    let kept_code = CannedReply { title: "新标题".to_owned(), updated_at: at(6), ..greet.clone() };
    let updated = store.update_canned_reply(&kept_code).await.unwrap().unwrap();
    assert_eq!((updated.short_code.as_str(), updated.title.as_str()), ("greet", "新标题"), "its own code is no clash");

    store.delete_canned_reply(&a, &bye.id).await.unwrap();
    stored_canned_reply(&store, &a, "bye", 7).await;
    assert_eq!(store.count_canned_replies(&a).await.unwrap(), 2, "a deleted reply's code is free again");
}

pub async fn an_update_applies_only_to_the_version_it_was_computed_from_and_a_delete_only_once(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let reply = stored_canned_reply(&store, &provider, "greet", 1).await;

    let edited = CannedReply {
        short_code: "hello".to_owned(),
        title: "问候".to_owned(),
        content: "{customerName} 您好".to_owned(),
        updated_at: at(10),
        ..reply.clone()
    };
    let stored = store.update_canned_reply(&edited).await.unwrap().expect("applied");
    assert_eq!(stored, CannedReply { version: reply.version + 1, ..edited.clone() }, "answered as stored");
    assert_eq!(store.canned_reply(&provider, &reply.id).await.unwrap().unwrap(), stored);

    let stale = CannedReply { title: "过时".to_owned(), updated_at: at(11), ..edited.clone() };
    assert!(store.update_canned_reply(&stale).await.unwrap().is_none(), "computed from the old version");
    assert_eq!(store.canned_reply(&provider, &reply.id).await.unwrap().unwrap(), stored, "nothing changed");
    let unknown = CannedReply { id: id("cr"), ..stored.clone() };
    assert!(store.update_canned_reply(&unknown).await.unwrap().is_none(), "unknown id");

    let next = CannedReply { title: "再改".to_owned(), updated_at: at(12), ..stored.clone() };
    let again = store.update_canned_reply(&next).await.unwrap().expect("applied to the current version");
    assert_eq!((again.version, again.created_at), (reply.version + 2, reply.created_at));

    assert!(store.delete_canned_reply(&provider, &reply.id).await.unwrap());
    assert!(!store.delete_canned_reply(&provider, &reply.id).await.unwrap(), "already gone");
    assert!(store.canned_reply(&provider, &reply.id).await.unwrap().is_none());
    assert!(store.update_canned_reply(&again).await.unwrap().is_none(), "a deleted reply is not updated");
    assert_eq!(store.count_canned_replies(&provider).await.unwrap(), 0);
}

pub async fn provider_b_cannot_read_list_update_delete_or_count_provider_a_canned_replies(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let theirs = stored_canned_reply(&store, &a, "greet", 1).await;
    // B's update names B as the provider: the store must not find A's reply by its id alone.
    let as_b = CannedReply { service_provider_id: b.clone(), title: "B 的标题".to_owned(), ..theirs.clone() };

    let observed: Vec<(&str, bool)> = vec![
        ("canned_reply", store.canned_reply(&b, &theirs.id).await.unwrap().is_some()),
        ("canned_replies", store.canned_replies(&b, page(1, 10)).await.unwrap().total > 0),
        ("count_canned_replies", store.count_canned_replies(&b).await.unwrap() > 0),
        ("update_canned_reply", store.update_canned_reply(&as_b).await.unwrap().is_some()),
        ("delete_canned_reply", store.delete_canned_reply(&b, &theirs.id).await.unwrap()),
    ];
    for (call, leaked) in observed {
        assert!(!leaked, "{call} let provider B reach provider A's canned reply");
    }
    assert_eq!(store.canned_reply(&a, &theirs.id).await.unwrap().unwrap(), theirs, "A's reply untouched");
    assert_eq!(store.count_canned_replies(&a).await.unwrap(), 1);
}
