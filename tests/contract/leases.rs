//! Leases of the scheduled jobs: one owner at a time, renewable by it, free once run out or given up.

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::store::*;

contract_tests!(store: a_lease_is_renewed_by_its_owner_and_refused_to_another_until_it_runs_out,
    a_released_lease_is_free_for_another_owner_but_only_its_owner_can_release_it);

pub async fn a_lease_is_renewed_by_its_owner_and_refused_to_another_until_it_runs_out(store: SharedStore) {
    assert!(store.acquire_lease("job", "one", at(10), at(0)).await.unwrap(), "a free lease is taken");
    assert!(store.acquire_lease("job", "one", at(20), at(5)).await.unwrap(), "its owner renews it");
    assert!(!store.acquire_lease("job", "two", at(30), at(15)).await.unwrap(), "refused while it runs");
    assert!(store.acquire_lease("other-job", "two", at(30), at(15)).await.unwrap(), "leases are per name");
    assert!(!store.acquire_lease("job", "two", at(30), at(19)).await.unwrap(), "the renewal moved the end");
    assert!(store.acquire_lease("job", "two", at(30), at(20)).await.unwrap(), "taken once it ran out");
    assert!(!store.acquire_lease("job", "one", at(40), at(25)).await.unwrap(), "the old owner lost it");
}

pub async fn a_released_lease_is_free_for_another_owner_but_only_its_owner_can_release_it(store: SharedStore) {
    assert!(store.acquire_lease("job", "one", at(10), at(0)).await.unwrap());
    store.release_lease("job", "two").await.unwrap();
    assert!(!store.acquire_lease("job", "two", at(10), at(1)).await.unwrap(), "another owner cannot release it");
    store.release_lease("job", "one").await.unwrap();
    assert!(store.acquire_lease("job", "two", at(10), at(1)).await.unwrap(), "free once released");
}
