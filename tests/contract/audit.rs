//! The audit log: entries listed per provider, newest first, paged.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::store::*;

contract_tests!(store: audit_entries_are_listed_newest_first_in_pages_per_provider);

pub async fn audit_entries_are_listed_newest_first_in_pages_per_provider(store: SharedStore) {
    let (a, b) = (stored_provider(&store).await, stored_provider(&store).await);
    let mut written = Vec::new();
    for minute in [3, 1, 4, 2, 5] {
        let entry = audit_entry(&a, &format!("op{minute}"), minute);
        store.insert_audit_entry(&entry).await.unwrap();
        written.push(entry);
    }
    store.insert_audit_entry(&audit_entry(&b, "other", 9)).await.unwrap();

    let first = store.list_audit_entries(&a, page(1, 2)).await.unwrap();
    assert_eq!(first.total, 5);
    let operations =
        |items: &[provider_desk::domain::AuditEntry]| items.iter().map(|e| e.operation.clone()).collect::<Vec<_>>();
    assert_eq!(operations(&first.items), ["op5", "op4"]);
    let last = store.list_audit_entries(&a, page(3, 2)).await.unwrap();
    assert_eq!(operations(&last.items), ["op1"]);
    let past = store.list_audit_entries(&a, page(4, 2)).await.unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.total, 5);

    let whole = store.list_audit_entries(&a, page(1, 100)).await.unwrap();
    let stored = whole.items.iter().find(|e| e.operation == "op3").unwrap();
    assert_eq!(stored, written.iter().find(|e| e.operation == "op3").unwrap(), "stored as written");

    let of_b = store.list_audit_entries(&b, page(1, 100)).await.unwrap();
    assert_eq!((of_b.total, operations(&of_b.items)), (1, vec!["other".to_owned()]), "B sees only its own");
    let of_nobody = store.list_audit_entries(&id("sp"), page(1, 100)).await.unwrap();
    assert_eq!((of_nobody.total, of_nobody.items.len()), (0, 0));
}
