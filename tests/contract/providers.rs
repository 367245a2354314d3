//! Providers: stored with a password hash, found by username and by id, counted.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::store::*;

contract_tests!(store: inserted_providers_are_counted_and_found_by_username_and_by_id,
    a_new_password_hash_replaces_the_old_one_only_for_an_existing_username);

pub async fn inserted_providers_are_counted_and_found_by_username_and_by_id(store: SharedStore) {
    assert_eq!(store.count_providers().await.unwrap(), 0);
    let (a, b) = (id("sp"), id("sp"));
    store.insert_provider(&provider(&a, "alpha"), "hash-a").await.unwrap();
    store.insert_provider(&provider(&b, "beta"), "hash-b").await.unwrap();
    assert_eq!(store.count_providers().await.unwrap(), 2);

    let (found, hash) = store.provider_credentials("alpha").await.unwrap().expect("alpha is found");
    assert_eq!((found.id, found.username.as_str(), hash.as_str()), (a.clone(), "alpha", "hash-a"));
    assert!(store.provider_credentials("nobody").await.unwrap().is_none());

    let mut by_ids = ids(&store.providers_by_ids(&[b.clone(), id("sp")]).await.unwrap(), |p| &p.id);
    by_ids.sort();
    assert_eq!(by_ids, vec![b]);
}

pub async fn a_new_password_hash_replaces_the_old_one_only_for_an_existing_username(store: SharedStore) {
    store.insert_provider(&provider(&id("sp"), "alpha"), "old").await.unwrap();
    assert!(store.set_password_hash("alpha", "new", at(5)).await.unwrap());
    assert!(!store.set_password_hash("nobody", "new", at(5)).await.unwrap());
    let (_, hash) = store.provider_credentials("alpha").await.unwrap().unwrap();
    assert_eq!(hash, "new");
}
