//! Providers: stored with a password hash, found by username and by id, counted, listed, and
//! set inactive or active again by an operator.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::ProviderStatus;
use provider_desk::store::*;

contract_tests!(store: inserted_providers_are_counted_and_found_by_username_and_by_id,
    a_new_password_hash_replaces_the_old_one_only_for_an_existing_username,
    a_status_change_is_read_back_by_username_and_by_id_and_an_unknown_username_changes_nothing,
    every_provider_is_listed_oldest_first);

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

pub async fn a_status_change_is_read_back_by_username_and_by_id_and_an_unknown_username_changes_nothing(
    store: SharedStore,
) {
    let (a, b) = (id("sp"), id("sp"));
    store.insert_provider(&provider(&a, "alpha"), "hash-a").await.unwrap();
    store.insert_provider(&provider(&b, "beta"), "hash-b").await.unwrap();

    assert!(store.set_provider_status("alpha", ProviderStatus::Inactive, at(7)).await.unwrap());
    let (found, hash) = store.provider_credentials("alpha").await.unwrap().unwrap();
    assert_eq!((found.status, found.updated_at, hash.as_str()), (ProviderStatus::Inactive, at(7), "hash-a"));
    let by_id = store.providers_by_ids(std::slice::from_ref(&a)).await.unwrap();
    assert_eq!(by_id.iter().map(|p| p.status).collect::<Vec<_>>(), vec![ProviderStatus::Inactive]);
    let (other, _) = store.provider_credentials("beta").await.unwrap().unwrap();
    assert_eq!(other.status, ProviderStatus::Active, "only that provider changes");

    assert!(store.set_provider_status("alpha", ProviderStatus::Active, at(8)).await.unwrap());
    let (found, _) = store.provider_credentials("alpha").await.unwrap().unwrap();
    assert_eq!(found.status, ProviderStatus::Active);
    assert!(!store.set_provider_status("nobody", ProviderStatus::Inactive, at(9)).await.unwrap());
    assert_eq!(store.count_providers().await.unwrap(), 2, "an unknown username adds no provider");
}

pub async fn every_provider_is_listed_oldest_first(store: SharedStore) {
    assert!(store.all_providers().await.unwrap().is_empty());
    let (older, newer) = (id("sp"), id("sp"));
    let mut second = provider(&newer, "beta");
    second.created_at = at(3);
    store.insert_provider(&second, "hash-b").await.unwrap();
    store.insert_provider(&provider(&older, "alpha"), "hash-a").await.unwrap();
    let listed = store.all_providers().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|p| p.username.as_str()).collect();
    assert_eq!(names, vec!["alpha", "beta"]);
    assert_eq!(listed[1].created_at, at(3));
}
