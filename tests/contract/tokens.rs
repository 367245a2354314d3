//! The token port: refresh tokens rotated once (the successor stored in the same step), reuse
//! detected with what a retry needs to know, families revoked with their access tokens, on
//! whichever token stores the backend gives (SQLite; MongoDB and Redis).

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(tokens: a_refresh_token_rotates_once_to_its_successor_then_is_reused_and_an_unknown_one_is_unknown,
    a_reused_token_says_whether_the_successor_presented_is_its_own_and_unused,
    an_expired_refresh_token_is_unknown_and_rotates_to_nothing,
    a_revoked_family_refuses_its_refresh_tokens_and_its_access_tokens,
    a_revoked_access_token_is_refused_and_no_other,
    of_concurrent_rotations_of_one_refresh_token_exactly_one_is_fresh_and_stores_its_successor);

fn hour_from_now() -> Timestamp {
    now() + chrono::Duration::hours(1)
}

async fn stored_token(tokens: &SharedTokenStore, family: &str, provider: &Id) -> RefreshTokenRecord {
    stored_token_until(tokens, family, provider, now() + chrono::Duration::days(1)).await
}

async fn stored_token_until(
    tokens: &SharedTokenStore,
    family: &str,
    provider: &Id,
    expires_at: Timestamp,
) -> RefreshTokenRecord {
    let record = RefreshTokenRecord {
        token_hash: id("hash").to_string(),
        family_id: family.to_owned(),
        provider_id: provider.clone(),
        expires_at,
    };
    tokens.insert_refresh_token(&record).await.expect("the refresh token is stored");
    record
}

fn successor() -> Successor {
    Successor { token_hash: id("hash").to_string(), expires_at: now() + chrono::Duration::days(2) }
}

async fn rotate(tokens: &SharedTokenStore, token_hash: &str, successor: &Successor) -> RefreshTokenUse {
    tokens.rotate_refresh_token(token_hash, successor, now()).await.expect("the token store answers")
}

pub async fn a_refresh_token_rotates_once_to_its_successor_then_is_reused_and_an_unknown_one_is_unknown(
    tokens: SharedTokenStore,
    provider: Id,
) {
    let family = id("f").to_string();
    let record = stored_token(&tokens, &family, &provider).await;
    let next = successor();
    let used_at = now();
    match tokens.rotate_refresh_token(&record.token_hash, &next, used_at).await.unwrap() {
        RefreshTokenUse::Fresh(found) => {
            assert_eq!((found.family_id, found.provider_id), (family.clone(), provider.clone()));
            assert_eq!(found.token_hash, record.token_hash);
        }
        other => panic!("the first use is fresh, got {other:?}"),
    }
    match rotate(&tokens, &record.token_hash, &successor()).await {
        RefreshTokenUse::Reused { record: found, used_at: first, .. } => {
            assert_eq!(found.family_id, family);
            assert_eq!(first, used_at, "the time of the first use");
        }
        other => panic!("the second use is a reuse, got {other:?}"),
    }
    match rotate(&tokens, &next.token_hash, &successor()).await {
        RefreshTokenUse::Fresh(found) => {
            assert_eq!((found.family_id, found.provider_id), (family.clone(), provider.clone()), "in the family");
        }
        other => panic!("the successor was stored with the rotation and is fresh, got {other:?}"),
    }
    assert_eq!(tokens.provider_token_families(&provider).await.unwrap(), vec![family]);
    let unknown = rotate(&tokens, &id("hash").to_string(), &successor()).await;
    assert!(matches!(unknown, RefreshTokenUse::Unknown), "{unknown:?}");
}

pub async fn a_reused_token_says_whether_the_successor_presented_is_its_own_and_unused(
    tokens: SharedTokenStore,
    provider: Id,
) {
    let record = stored_token(&tokens, &id("f").to_string(), &provider).await;
    let next = successor();
    assert!(matches!(rotate(&tokens, &record.token_hash, &next).await, RefreshTokenUse::Fresh(_)));
    let retried = rotate(&tokens, &record.token_hash, &next).await;
    assert!(
        matches!(retried, RefreshTokenUse::Reused { successor_unused: true, .. }),
        "its own successor, unused: {retried:?}"
    );
    let another = rotate(&tokens, &record.token_hash, &successor()).await;
    assert!(matches!(another, RefreshTokenUse::Reused { successor_unused: false, .. }), "{another:?}");
    assert!(matches!(rotate(&tokens, &next.token_hash, &successor()).await, RefreshTokenUse::Fresh(_)));
    let later = rotate(&tokens, &record.token_hash, &next).await;
    assert!(
        matches!(later, RefreshTokenUse::Reused { successor_unused: false, .. }),
        "its successor has been used since: {later:?}"
    );
}

pub async fn an_expired_refresh_token_is_unknown_and_rotates_to_nothing(tokens: SharedTokenStore, provider: Id) {
    let family = id("f").to_string();
    let expired = stored_token_until(&tokens, &family, &provider, now() - chrono::Duration::seconds(5)).await;
    let next = successor();
    let outcome = rotate(&tokens, &expired.token_hash, &next).await;
    assert!(matches!(outcome, RefreshTokenUse::Unknown), "{outcome:?}");
    let outcome = rotate(&tokens, &next.token_hash, &successor()).await;
    assert!(matches!(outcome, RefreshTokenUse::Unknown), "no successor was stored: {outcome:?}");
}

pub async fn a_revoked_family_refuses_its_refresh_tokens_and_its_access_tokens(tokens: SharedTokenStore, provider: Id) {
    let (revoked, kept) = (id("f").to_string(), id("f").to_string());
    let used = stored_token(&tokens, &revoked, &provider).await;
    rotate(&tokens, &used.token_hash, &successor()).await;
    let unused = stored_token(&tokens, &revoked, &provider).await;
    let other = stored_token(&tokens, &kept, &provider).await;
    let mut families = tokens.provider_token_families(&provider).await.unwrap();
    families.sort();
    let mut both = vec![revoked.clone(), kept.clone()];
    both.sort();
    assert_eq!(families, both, "the provider's signed-in sessions");

    tokens.revoke_token_family(&revoked, now()).await.unwrap();
    for record in [&used, &unused] {
        let outcome = rotate(&tokens, &record.token_hash, &successor()).await;
        assert!(matches!(outcome, RefreshTokenUse::Revoked), "{outcome:?}");
    }
    assert!(tokens.is_access_revoked(&id("jti").to_string(), &revoked).await.unwrap(), "its access tokens too");
    assert!(!tokens.is_access_revoked(&id("jti").to_string(), &kept).await.unwrap());
    assert!(matches!(rotate(&tokens, &other.token_hash, &successor()).await, RefreshTokenUse::Fresh(_)));
    assert_eq!(tokens.provider_token_families(&provider).await.unwrap(), vec![kept]);
}

pub async fn a_revoked_access_token_is_refused_and_no_other(tokens: SharedTokenStore, provider: Id) {
    let family = id("f").to_string();
    stored_token(&tokens, &family, &provider).await;
    let (revoked, other) = (id("jti").to_string(), id("jti").to_string());
    tokens.revoke_access_token(&revoked, hour_from_now()).await.unwrap();
    assert!(tokens.is_access_revoked(&revoked, &family).await.unwrap());
    assert!(!tokens.is_access_revoked(&other, &family).await.unwrap());
    assert!(
        !tokens.is_access_revoked(&other, &id("f").to_string()).await.unwrap(),
        "an unknown family is no revocation"
    );
}

pub async fn of_concurrent_rotations_of_one_refresh_token_exactly_one_is_fresh_and_stores_its_successor(
    tokens: SharedTokenStore,
    provider: Id,
) {
    for _ in 0..5 {
        let record = stored_token(&tokens, &id("f").to_string(), &provider).await;
        let successors: Vec<Successor> = (0..4).map(|_| successor()).collect();
        let uses: Vec<_> = successors
            .iter()
            .map(|next| {
                let (tokens, hash, next) = (tokens.clone(), record.token_hash.clone(), next.clone());
                tokio::spawn(async move { rotate(&tokens, &hash, &next).await })
            })
            .collect();
        let (mut fresh, mut reused) = (Vec::new(), 0);
        for (used, next) in uses.into_iter().zip(&successors) {
            match used.await.unwrap() {
                RefreshTokenUse::Fresh(_) => fresh.push(next.clone()),
                RefreshTokenUse::Reused { successor_unused: false, .. } => reused += 1,
                other => panic!("a concurrent rotation is fresh, or a reuse naming another successor, got {other:?}"),
            }
        }
        assert_eq!((fresh.len(), reused), (1, 3));
        let winner = rotate(&tokens, &fresh[0].token_hash, &successor()).await;
        assert!(matches!(winner, RefreshTokenUse::Fresh(_)), "the winner's successor is stored: {winner:?}");
    }
}
