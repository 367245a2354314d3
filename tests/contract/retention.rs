//! Retention: a prune deletes at most one batch of what is due in a table and keeps everything
//! newer; after the event log is pruned a provider's cursors still only go up; a pruned idempotency
//! key is free again; expired tokens and the families they leave go; and Redis, which the prune
//! jobs never touch, expires every token key by itself.

use crate::contract_tests;
use crate::fixtures::*;
use chrono::{Duration, Utc};
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(store: old_events_are_pruned_in_batches_and_recent_ones_and_the_cursor_stay,
    a_pruned_idempotency_key_is_free_again_and_a_recent_one_still_replays);

contract_tests!(store_tokens: expired_tokens_revocations_and_their_families_are_pruned_and_live_ones_stay);

mod in_redis {
    pub use super::every_token_key_in_redis_expires_with_its_token;
    crate::contract_tests!(tokens: every_token_key_in_redis_expires_with_its_token);
}

/// A ticket of `customer` created at `created`, stored with its notification (two events).
async fn ticket_at(store: &SharedStore, customer: &Customer, created: Timestamp, key: Option<&Id>) -> Written<Ticket> {
    let mut ticket = ticket(customer, 0);
    (ticket.created_at, ticket.updated_at) = (created, created);
    ticket.history[0].timestamp = created;
    let mut notification = ticket_notification(&ticket, 0);
    notification.created_at = created;
    store.insert_ticket(&ticket, &notification, key, &[]).await.expect("the ticket is stored")
}

pub async fn old_events_are_pruned_in_batches_and_recent_ones_and_the_cursor_stay(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    for minute in [1, 2, 3] {
        ticket_at(&store, &customer, at(minute), None).await;
    }
    let recent = Utc::now() - Duration::minutes(5);
    ticket_at(&store, &customer, recent, None).await;
    // A provider whose whole log is old.
    let quiet = stored_provider(&store).await;
    ticket_at(&store, &stored_customer(&store, &quiet, "老客户", 1).await, at(4), None).await;
    let cut_off = Utc::now() - Duration::days(1);

    let mut batches = Vec::new();
    loop {
        let deleted = store.prune(Retained::Events, cut_off, 4).await.unwrap();
        batches.push(deleted);
        if deleted < 4 {
            break;
        }
    }
    assert!(batches.iter().all(|deleted| *deleted <= 4), "never more than a batch: {batches:?}");
    let pruned: u64 = batches.iter().sum();
    // SQLite keeps each provider's newest event (its cursors count from it); MongoDB counts them apart.
    assert!((7..=8).contains(&pruned), "the six old events of the first provider and the quiet one's: {batches:?}");
    assert_eq!(store.prune(Retained::Events, cut_off, 4).await.unwrap(), 0, "nothing more is due");

    let left = store.events_after(&provider, 0, 100).await.unwrap();
    assert_eq!(left.iter().map(|e| e.cursor).collect::<Vec<_>>(), [7, 8], "the recent ticket's two events");
    assert_eq!(store.latest_cursor(&provider).await.unwrap(), 8);
    let Written::Created(_, events) = ticket_at(&store, &customer, Utc::now(), None).await else { panic!("created") };
    assert_eq!(events.iter().map(|e| e.cursor).collect::<Vec<_>>(), [9, 10], "cursors go on");
    let Written::Created(_, events) =
        ticket_at(&store, &stored_customer(&store, &quiet, "又一个", 1).await, Utc::now(), None).await
    else {
        panic!("created")
    };
    assert_eq!(events[0].cursor, 3, "a provider whose old log was pruned never gets a cursor again");
}

pub async fn a_pruned_idempotency_key_is_free_again_and_a_recent_one_still_replays(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let customer = stored_customer(&store, &provider, "客户", 1).await;
    let (old_key, recent_key) = (id("k"), id("k"));
    ticket_at(&store, &customer, at(1), Some(&old_key)).await;
    let first = ticket_at(&store, &customer, Utc::now(), Some(&recent_key)).await;

    let cut_off = Utc::now() - Duration::hours(24);
    assert_eq!(store.prune(Retained::IdempotencyKeys, cut_off, 10).await.unwrap(), 1);
    assert_eq!(store.prune(Retained::IdempotencyKeys, cut_off, 10).await.unwrap(), 0);

    let retried = ticket_at(&store, &customer, Utc::now(), Some(&recent_key)).await;
    assert!(matches!(&retried, Written::Replayed(t) if t.id == first.value().id), "the recent key replays");
    let reused = ticket_at(&store, &customer, Utc::now(), Some(&old_key)).await;
    assert!(matches!(reused, Written::Created(..)), "the pruned key is a new request");
}

/// The cut-off lies in the future, so "old" tokens have not expired yet when the test runs and
/// MongoDB's TTL monitor cannot delete them first.
pub async fn expired_tokens_revocations_and_their_families_are_pruned_and_live_ones_stay(
    store: SharedStore,
    tokens: SharedTokenStore,
) {
    let provider = stored_provider(&store).await;
    let now = Utc::now();
    let (soon, cut_off, later) = (now + Duration::days(1), now + Duration::days(2), now + Duration::days(3));
    let refresh = |hash: &str, family: &str, expires_at| RefreshTokenRecord {
        token_hash: format!("{hash}-{}", random_suffix()),
        family_id: format!("{family}-{}", random_suffix()),
        provider_id: provider.clone(),
        expires_at,
    };
    let (old, live) = (refresh("old", "f-old", soon), refresh("live", "f-live", later));
    for record in [&old, &live] {
        tokens.insert_refresh_token(record).await.unwrap();
    }
    let (old_jti, live_jti) = (format!("j-old-{}", random_suffix()), format!("j-live-{}", random_suffix()));
    tokens.revoke_access_token(&old_jti, soon).await.unwrap();
    tokens.revoke_access_token(&live_jti, later).await.unwrap();

    assert_eq!(store.prune(Retained::RevokedAccessTokens, cut_off, 10).await.unwrap(), 1);
    assert_eq!(store.prune(Retained::RefreshTokens, cut_off, 10).await.unwrap(), 1);
    assert_eq!(store.prune(Retained::TokenFamilies, cut_off, 10).await.unwrap(), 1, "the family its token left");
    for table in [Retained::RevokedAccessTokens, Retained::RefreshTokens, Retained::TokenFamilies] {
        assert_eq!(store.prune(table, cut_off, 10).await.unwrap(), 0, "{table:?}: nothing more is due");
    }

    assert!(tokens.is_access_revoked(&live_jti, "no-family").await.unwrap(), "a live revocation stays");
    assert!(!tokens.is_access_revoked(&old_jti, "no-family").await.unwrap());
    assert!(matches!(
        tokens.rotate_refresh_token(&old.token_hash, &successor_of(&old), now).await.unwrap(),
        RefreshTokenUse::Unknown
    ));
    assert_eq!(tokens.provider_token_families(&provider).await.unwrap(), vec![live.family_id.clone()]);
    assert!(matches!(
        tokens.rotate_refresh_token(&live.token_hash, &successor_of(&live), now).await.unwrap(),
        RefreshTokenUse::Fresh(_)
    ));
}

/// A successor for `record`, as a rotation stores it.
fn successor_of(record: &RefreshTokenRecord) -> Successor {
    Successor { token_hash: format!("{}-next", record.token_hash), expires_at: record.expires_at }
}

/// Redis needs no prune job: each key is written with the expiry of what it holds. (The other
/// token stores are pruned by the jobs, as tested above.)
pub async fn every_token_key_in_redis_expires_with_its_token(tokens: SharedTokenStore, provider: Id) {
    let Some(redis_url) = crate::support::Backend::redis_url_from_env() else { return };
    if tokens.backend() != "redis" {
        return;
    }
    let expires_at = Utc::now() + Duration::hours(1);
    let record = RefreshTokenRecord {
        token_hash: format!("hash-{}", random_suffix()),
        family_id: format!("family-{}", random_suffix()),
        provider_id: provider.clone(),
        expires_at,
    };
    tokens.insert_refresh_token(&record).await.unwrap();
    let jti = format!("jti-{}", random_suffix());
    tokens.revoke_access_token(&jti, expires_at).await.unwrap();
    tokens.revoke_token_family(&record.family_id, Utc::now()).await.unwrap();

    let client = redis::Client::open(redis_url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    // The keys are named after the store (`pd:{store}:`); the test finds each by its own part.
    for own in [
        format!("refresh:{}", record.token_hash),
        format!("family:{}", record.family_id),
        format!("provider-families:{provider}"),
        format!("revoked:{jti}"),
    ] {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("pd:*:{own}")).query_async(&mut connection).await.unwrap();
        let [key] = keys.as_slice() else { panic!("one key ends in {own}: {keys:?}") };
        let seconds: i64 = redis::cmd("TTL").arg(key).query_async(&mut connection).await.unwrap();
        assert!((3_500..=3_600).contains(&seconds), "{key} expires with its token: TTL {seconds}");
    }
}
