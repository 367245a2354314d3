//! Idempotency keys inside a write's transaction: a key used before answers the first write's
//! subject instead of writing again.

use super::documents::date;
use super::MongoStore;
use crate::domain::{EventKind, Id, Timestamp};
use crate::store::KeyedWrite;
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
