//! The tokens port on MongoDB. A rotation stores the successor first (an idempotent upsert) and
//! then marks the old token used with one conditional update, rather than in a transaction: the
//! successor of one token from one client is always the same token (see `service::refresh`), so
//! the conditional update alone decides, and a crash before it leaves nothing half done.

use super::documents::{date, Fields, ReadResult};
use super::failures::{bad_document, is_duplicate_key};
use super::MongoStore;
use super::{collect, ORPHAN_FAMILY_DAYS};
use crate::domain::{Id, Timestamp};
use crate::error::AppResult;
use crate::store::StoreHealth;
use crate::store::{RefreshTokenRecord, RefreshTokenUse, Successor, TokenStore};
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

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        successor: &Successor,
        at: Timestamp,
    ) -> AppResult<RefreshTokenUse> {
        let Some(document) = self.op(self.refresh_tokens.find_one(doc! { "tokenHash": token_hash })).await? else {
            return Ok(RefreshTokenUse::Unknown);
        };
        let (family_id, provider_id, expires_at, used_at) = refresh_token_from(&document).map_err(bad_document)?;
        let record = RefreshTokenRecord { token_hash: token_hash.to_owned(), family_id, provider_id, expires_at };
        if self.family_revoked(&record.family_id).await? {
            return Ok(RefreshTokenUse::Revoked);
        }
        if let Some(used_at) = used_at {
            return self.reused(record, used_at, &document, successor).await;
        }
        if record.expires_at <= at {
            return Ok(RefreshTokenUse::Unknown);
        }
        // The successor goes in first, then one conditional update marks the token used and names
        // its successor: a crash between them leaves the token unused (the retry rotates it again,
        // to the same successor, which the upsert then finds), never used without a successor. Of
        // two concurrent rotations only one update matches; the other is a reuse.
        let expires = date(&successor.expires_at);
        let family = doc! { "$max": { "expiresAt": expires } };
        let stored = doc! { "$setOnInsert": {
            "tokenHash": &successor.token_hash,
            "familyId": &record.family_id,
            "providerId": record.provider_id.as_str(),
            "expiresAt": expires,
            "usedAt": Bson::Null,
        } };
        let mark = doc! { "$set": { "usedAt": date(&at), "successorHash": &successor.token_hash } };
        let marked = self
            .op(async {
                self.token_families.update_one(doc! { "id": &record.family_id }, family).await?;
                let upsert = self.refresh_tokens.update_one(doc! { "tokenHash": &successor.token_hash }, stored);
                match upsert.upsert(true).await {
                    // Two rotations to the same successor raced to create it: it is there.
                    Err(error) if is_duplicate_key(&error) => {}
                    other => drop(other?),
                }
                let unused = doc! { "tokenHash": token_hash, "usedAt": Bson::Null };
                self.refresh_tokens.find_one_and_update(unused, mark).await
            })
            .await?;
        if marked.is_some() {
            return Ok(RefreshTokenUse::Fresh(record));
        }
        let document = self.op(self.refresh_tokens.find_one(doc! { "tokenHash": token_hash })).await?;
        let used_at = document.as_ref().map(refresh_token_from).transpose().map_err(bad_document)?;
        match (document, used_at) {
            (Some(document), Some((_, _, _, Some(used_at)))) => {
                self.reused(record, used_at, &document, successor).await
            }
            _ => Err(crate::error::AppError::Internal("mongodb: a refresh token changed during its rotation".into())),
        }
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

impl MongoStore {
    async fn family_revoked(&self, family_id: &str) -> AppResult<bool> {
        let revoked = doc! { "id": family_id, "revokedAt": { "$ne": Bson::Null } };
        Ok(self.op(self.token_families.count_documents(revoked).limit(1)).await? > 0)
    }

    /// A used token presented again: whether `successor` is the one its rotation named, unused.
    async fn reused(
        &self,
        record: RefreshTokenRecord,
        used_at: Timestamp,
        document: &Document,
        successor: &Successor,
    ) -> AppResult<RefreshTokenUse> {
        let named = document.get_str("successorHash").is_ok_and(|named| named == successor.token_hash);
        let successor_unused = named && {
            let unused = doc! { "tokenHash": &successor.token_hash, "usedAt": Bson::Null };
            self.op(self.refresh_tokens.count_documents(unused).limit(1)).await? > 0
        };
        Ok(RefreshTokenUse::Reused { record, used_at, successor_unused })
    }
}

/// Reads a refresh-token document's fields back (`familyId`, `providerId`, `expiresAt`, `usedAt`).
pub(super) fn refresh_token_from(doc: &Document) -> ReadResult<(String, Id, Timestamp, Option<Timestamp>)> {
    let f = Fields::new(doc, "refresh token");
    Ok((f.text("familyId")?, f.id("providerId")?, f.time("expiresAt")?, f.optional_time("usedAt")?))
}
