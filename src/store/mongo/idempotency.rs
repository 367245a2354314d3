//! Idempotency keys inside a write's transaction: a key used before answers the first write's
//! subject instead of writing again. And the [`IdempotencyStore`] port: the first answer given
//! under a key, kept in the key's document (`fingerprint`, `answer`).

use super::documents::date;
use super::failures::is_duplicate_key;
use super::MongoStore;
use crate::domain::{EventKind, Id, Timestamp};
use crate::error::AppResult;
use crate::store::{IdempotencyStore, KeyClaim, KeyedWrite, StoredAnswer, ANSWER_ONLY_KIND};
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::ClientSession;

impl MongoStore {
    /// Checks an idempotency key inside a transaction: `Some` if it was used (the write must not
    /// happen), else records it for the subject about to be created.
    pub(super) async fn claim_key(
        &self,
        session: &mut ClientSession,
        provider: &Id,
        key: Option<&Id>,
        kind: EventKind,
        subject: &Id,
        at: &Timestamp,
    ) -> mongodb::error::Result<Option<KeyedWrite>> {
        let Some(key) = key else { return Ok(None) };
        let query = doc! { "providerId": provider.as_str(), "key": key.as_str() };
        if let Some(used) = self.idempotency_keys.find_one(query.clone()).session(&mut *session).await? {
            return Ok(Some(keyed_replay(&used)));
        }
        let record = doc! {
            "providerId": provider.as_str(),
            "key": key.as_str(),
            "kind": kind.as_str(),
            "subjectId": subject.as_str(),
            "createdAt": date(at),
        };
        self.idempotency_keys.insert_one(record).session(&mut *session).await?;
        Ok(None)
    }

    /// Whether a key was claimed (or holds an answer) already, inside a transaction.
    pub(super) async fn key_is_used(
        &self,
        session: &mut ClientSession,
        provider: &Id,
        key: &Id,
    ) -> mongodb::error::Result<bool> {
        let query = doc! { "providerId": provider.as_str(), "key": key.as_str() };
        Ok(self.idempotency_keys.find_one(query).session(&mut *session).await?.is_some())
    }

    /// Claims a key for a change applied in the same transaction. A concurrent claim of the same
    /// key fails the transaction on the unique index.
    pub(super) async fn claim_change_key(
        &self,
        session: &mut ClientSession,
        provider: &Id,
        key: &Id,
        claim: &KeyClaim,
        at: &Timestamp,
    ) -> mongodb::error::Result<()> {
        let record = doc! {
            "providerId": provider.as_str(),
            "key": key.as_str(),
            "kind": &claim.kind,
            "subjectId": claim.subject.as_str(),
            "createdAt": date(at),
        };
        self.idempotency_keys.insert_one(record).session(&mut *session).await.map(drop)
    }

    /// After a keyed write failed on a unique index: the write of a concurrent request with the
    /// same key, if that is what it met.
    pub(super) async fn key_taken(
        &self,
        provider: &Id,
        key: Option<&Id>,
    ) -> mongodb::error::Result<Option<KeyedWrite>> {
        let Some(key) = key else { return Ok(None) };
        let query = doc! { "providerId": provider.as_str(), "key": key.as_str() };
        Ok(self.idempotency_keys.find_one(query).await?.map(|used| keyed_replay(&used)))
    }
}

pub(super) fn keyed_replay(used: &Document) -> KeyedWrite {
    KeyedWrite::Replayed {
        kind: used.get_str("kind").unwrap_or_default().to_owned(),
        subject: Id::from_stored(used.get_str("subjectId").unwrap_or_default().to_owned()),
    }
}

fn stored_answer_of(document: &Document) -> Option<StoredAnswer> {
    let answer = document.get_str("answer").ok()?.to_owned();
    let fingerprint = document.get_str("fingerprint").unwrap_or_default().to_owned();
    Some(StoredAnswer { fingerprint, answer })
}

#[async_trait]
impl IdempotencyStore for MongoStore {
    async fn key_claim(&self, provider: &Id, key: &Id) -> AppResult<Option<KeyClaim>> {
        let query = doc! { "providerId": provider.as_str(), "key": key.as_str() };
        let used = self.op(async { self.idempotency_keys.find_one(query).await }).await?;
        Ok(used.and_then(|used| match keyed_replay(&used) {
            KeyedWrite::Replayed { kind, subject } if kind != ANSWER_ONLY_KIND => Some(KeyClaim { kind, subject }),
            _ => None,
        }))
    }

    async fn stored_answer(&self, provider: &Id, key: &Id) -> AppResult<Option<StoredAnswer>> {
        let query = doc! { "providerId": provider.as_str(), "key": key.as_str() };
        let used = self.op(async { self.idempotency_keys.find_one(query).await }).await?;
        Ok(used.as_ref().and_then(stored_answer_of))
    }

    async fn record_answer(
        &self,
        provider: &Id,
        key: &Id,
        fingerprint: &str,
        answer: &str,
        at: Timestamp,
    ) -> AppResult<StoredAnswer> {
        let query = doc! { "providerId": provider.as_str(), "key": key.as_str() };
        let unanswered = doc! { "providerId": provider.as_str(), "key": key.as_str(), "answer": { "$exists": false } };
        let answered = doc! { "$set": { "fingerprint": fingerprint, "answer": answer } };
        let answer_only = doc! {
            "providerId": provider.as_str(),
            "key": key.as_str(),
            "kind": ANSWER_ONLY_KIND,
            "subjectId": "",
            "createdAt": date(&at),
            "fingerprint": fingerprint,
            "answer": answer,
        };
        let stored = self
            .op(async {
                let updated = self.idempotency_keys.update_one(unanswered, answered).await?;
                if updated.matched_count == 0 {
                    // No claim row, or one already answered: a concurrent request may insert first.
                    match self.idempotency_keys.insert_one(answer_only).await {
                        Err(error) if !is_duplicate_key(&error) => return Err(error),
                        _ => {}
                    }
                }
                self.idempotency_keys.find_one(query).await
            })
            .await?;
        let recorded = StoredAnswer { fingerprint: fingerprint.to_owned(), answer: answer.to_owned() };
        Ok(stored.as_ref().and_then(stored_answer_of).unwrap_or(recorded))
    }
}
