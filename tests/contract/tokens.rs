//! The token port: refresh tokens used up once, reuse detected, families revoked with their access
//! tokens, on whichever token stores the backend gives (SQLite; MongoDB and Redis).

use crate::contract_tests;
use crate::fixtures::*;
use provider_desk::domain::*;
use provider_desk::store::*;

contract_tests!(tokens: a_refresh_token_is_fresh_once_then_reused_and_an_unknown_one_is_unknown,
    a_revoked_family_refuses_its_refresh_tokens_and_its_access_tokens,
    a_revoked_access_token_is_refused_and_no_other,
    of_concurrent_uses_of_one_refresh_token_exactly_one_is_fresh_and_the_others_reused);

fn hour_from_now() -> Timestamp {
    now() + chrono::Duration::hours(1)
}

async fn stored_token(tokens: &SharedTokenStore, family: &str, provider: &Id) -> RefreshTokenRecord {
    let record = RefreshTokenRecord {
        token_hash: id("hash").to_string(),
        family_id: family.to_owned(),
        provider_id: provider.clone(),
        expires_at: now() + chrono::Duration::days(1),
    };
    tokens.insert_refresh_token(&record).await.expect("the refresh token is stored");
    record
}

pub async fn a_refresh_token_is_fresh_once_then_reused_and_an_unknown_one_is_unknown(
    tokens: SharedTokenStore,
    provider: Id,
) {
    let family = id("f").to_string();
    let record = stored_token(&tokens, &family, &provider).await;
    match tokens.use_refresh_token(&record.token_hash, now()).await.unwrap() {
        RefreshTokenUse::Fresh(found) => {
            assert_eq!((found.family_id, found.provider_id), (family.clone(), provider.clone()));
            assert_eq!(found.token_hash, record.token_hash);
        }
        other => panic!("the first use is fresh, got {other:?}"),
    }
    match tokens.use_refresh_token(&record.token_hash, now()).await.unwrap() {
        RefreshTokenUse::Reused(found) => assert_eq!(found.family_id, family),
        other => panic!("the second use is a reuse, got {other:?}"),
    }
    let unknown = tokens.use_refresh_token(&id("hash").to_string(), now()).await.unwrap();
    assert!(matches!(unknown, RefreshTokenUse::Unknown), "{unknown:?}");
}

pub async fn a_revoked_family_refuses_its_refresh_tokens_and_its_access_tokens(tokens: SharedTokenStore, provider: Id) {
    let (revoked, kept) = (id("f").to_string(), id("f").to_string());
    let used = stored_token(&tokens, &revoked, &provider).await;
    tokens.use_refresh_token(&used.token_hash, now()).await.unwrap();
    let unused = stored_token(&tokens, &revoked, &provider).await;
    let other = stored_token(&tokens, &kept, &provider).await;
    let mut families = tokens.provider_token_families(&provider).await.unwrap();
    families.sort();
    let mut both = vec![revoked.clone(), kept.clone()];
    both.sort();
    assert_eq!(families, both, "the provider's signed-in sessions");

    tokens.revoke_token_family(&revoked, now()).await.unwrap();
    for record in [&used, &unused] {
        let outcome = tokens.use_refresh_token(&record.token_hash, now()).await.unwrap();
        assert!(matches!(outcome, RefreshTokenUse::Revoked), "{outcome:?}");
    }
    assert!(tokens.is_access_revoked(&id("jti").to_string(), &revoked).await.unwrap(), "its access tokens too");
    assert!(!tokens.is_access_revoked(&id("jti").to_string(), &kept).await.unwrap());
    assert!(matches!(tokens.use_refresh_token(&other.token_hash, now()).await.unwrap(), RefreshTokenUse::Fresh(_)));
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

pub async fn of_concurrent_uses_of_one_refresh_token_exactly_one_is_fresh_and_the_others_reused(
    tokens: SharedTokenStore,
    provider: Id,
) {
    for _ in 0..5 {
        let record = stored_token(&tokens, &id("f").to_string(), &provider).await;
        let uses: Vec<_> = (0..4)
            .map(|_| {
                let (tokens, hash) = (tokens.clone(), record.token_hash.clone());
                tokio::spawn(async move { tokens.use_refresh_token(&hash, now()).await.unwrap() })
            })
            .collect();
        let (mut fresh, mut reused) = (0, 0);
        for used in uses {
            match used.await.unwrap() {
                RefreshTokenUse::Fresh(_) => fresh += 1,
                RefreshTokenUse::Reused(_) => reused += 1,
                other => panic!("a concurrent use is fresh or reused, got {other:?}"),
            }
        }
        assert_eq!((fresh, reused), (1, 3));
    }
}
