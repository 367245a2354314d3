//! The tokens port on MongoDB.

use super::documents::{date, Fields, ReadResult};
use super::failures::{bad_document, is_duplicate_key};
use super::MongoStore;
use super::{collect, ORPHAN_FAMILY_DAYS};
use crate::domain::{Id, Timestamp};
use crate::error::AppResult;
use crate::store::StoreHealth;
use crate::store::{RefreshTokenRecord, RefreshTokenUse, TokenStore};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};

#[async_trait]
impl TokenStore for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn ping_tokens(&self) -> AppResult<()> {
        StoreHealth::ping(self).await
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> AppResult<()> {
        let update = doc! { "$setOnInsert": { "jti": jti, "expiresAt": date(&expires_at) } };
        self.op(self.revoked_tokens.update_one(doc! { "jti": jti }, update).upsert(true)).await.map(drop)
    }

    async fn is_access_revoked(&self, jti: &str, family_id: &str) -> AppResult<bool> {
        let (token, family) = self
            .op(async {
                tokio::try_join!(
                    self.revoked_tokens.count_documents(doc! { "jti": jti }).limit(1),
                    self.token_families
                        .count_documents(doc! { "id": family_id, "revokedAt": { "$ne": Bson::Null } })
                        .limit(1),
                )
            })
            .await?;
        Ok(token > 0 || family > 0)
    }

    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> AppResult<()> {
        let expires_at = date(&record.expires_at);
        // The family first (an upsert, so doing it twice is harmless), then the token: a token
        // never exists without its family. The family lives as long as its newest token.
        let family = doc! {
            "$setOnInsert": { "id": &record.family_id, "revokedAt": Bson::Null },
            "$max": { "expiresAt": expires_at },
        };
        let token = doc! {
            "tokenHash": &record.token_hash,
            "familyId": &record.family_id,
            "providerId": record.provider_id.as_str(),
            "expiresAt": expires_at,
            "usedAt": Bson::Null,
        };
        self.op(async {
            self.token_families.update_one(doc! { "id": &record.family_id }, family).upsert(true).await?;
            self.refresh_tokens.insert_one(token).await.map(drop)
        })
        .await
    }

    async fn use_refresh_token(&self, token_hash: &str, at: Timestamp) -> AppResult<RefreshTokenUse> {
        let outcome = self
            .op(async {
                // Marking it used only if unused is atomic: of two concurrent uses, one wins.
                let fresh = self
                    .refresh_tokens
                    .find_one_and_update(
                        doc! { "tokenHash": token_hash, "usedAt": Bson::Null },
                        doc! { "$set": { "usedAt": date(&at) } },
                    )
                    .await?;
                let (document, first_use) = match fresh {
                    Some(document) => (document, true),
                    None => match self.refresh_tokens.find_one(doc! { "tokenHash": token_hash }).await? {
                        Some(document) => (document, false),
                        None => return Ok(None),
                    },
                };
                let family = document.get_str("familyId").unwrap_or_default().to_owned();
                let revoked = self
                    .token_families
                    .count_documents(doc! { "id": family, "revokedAt": { "$ne": Bson::Null } })
                    .limit(1)
                    .await?;
                Ok(Some((document, first_use, revoked > 0)))
            })
            .await?;
        let Some((document, first_use, revoked)) = outcome else {
            return Ok(RefreshTokenUse::Unknown);
        };
        if revoked {
            return Ok(RefreshTokenUse::Revoked);
        }
        let (family_id, provider_id, expires_at, _) = refresh_token_from(&document).map_err(bad_document)?;
        let record = RefreshTokenRecord { token_hash: token_hash.to_owned(), family_id, provider_id, expires_at };
        Ok(if first_use { RefreshTokenUse::Fresh(record) } else { RefreshTokenUse::Reused(record) })
    }

    async fn revoke_token_family(&self, family_id: &str, at: Timestamp) -> AppResult<()> {
        let keep_until = at + chrono::Duration::days(ORPHAN_FAMILY_DAYS);
        // A pipeline update keeps the first revocation time; the upsert covers a family never seen.
        let update = vec![doc! { "$set": {
            "id": family_id,
            "revokedAt": { "$ifNull": ["$revokedAt", date(&at)] },
            "expiresAt": { "$ifNull": ["$expiresAt", date(&keep_until)] },
        } }];
        self.op(async {
            match self.token_families.update_one(doc! { "id": family_id }, update).upsert(true).await {
                // Two revocations raced to create the family: the other one stored it.
                Err(error) if is_duplicate_key(&error) => Ok(()),
                other => other.map(drop),
            }
        })
        .await
    }

    async fn provider_token_families(&self, provider: &Id) -> AppResult<Vec<String>> {
        let tokens = doc! { "providerId": provider.as_str(), "expiresAt": { "$gt": date(&crate::domain::now()) } };
        let projection = doc! { "_id": 0, "familyId": 1 };
        let found =
            self.op(async { collect(self.refresh_tokens.find(tokens).projection(projection).await?).await }).await?;
        let mut families: Vec<&str> = found.iter().filter_map(|d| d.get_str("familyId").ok()).collect();
        families.sort_unstable();
        families.dedup();
        if families.is_empty() {
            return Ok(Vec::new());
        }
        let open = doc! { "id": { "$in": &families }, "revokedAt": Bson::Null };
        let projection = doc! { "_id": 0, "id": 1 };
        let open =
            self.op(async { collect(self.token_families.find(open).projection(projection).await?).await }).await?;
        Ok(open.iter().filter_map(|d| d.get_str("id").ok().map(str::to_owned)).collect())
    }
}

/// Reads a refresh-token document's fields back (`familyId`, `providerId`, `expiresAt`).
pub(super) fn refresh_token_from(doc: &Document) -> ReadResult<(String, Id, Timestamp, bool)> {
    let f = Fields::new(doc, "refresh token");
    Ok((f.text("familyId")?, f.id("providerId")?, f.time("expiresAt")?, f.optional_time("usedAt")?.is_some()))
}
