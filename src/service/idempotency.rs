//! The rule of a retried request (the IETF Idempotency-Key draft): a request that carries a key
//! the provider used before is answered, byte for byte, with the first successful answer, if it is
//! the same request (its fingerprint); the same key with another request is a CONFLICT.
//!
//! The answer is kept apart from the write, recorded only after the mutation succeeded: a request
//! whose answer was lost before it was recorded (a crash, a concurrent retry) runs the mutation
//! again, and the write's own claim of the key in its transaction replays what was stored instead
//! of storing it twice. What an answer and a fingerprint are is the caller's business (the GraphQL
//! layer: the resolved field and a hash of the request as sent); here they are opaque text.

use crate::domain::{now, Id};
use crate::error::{AppError, AppResult};
use crate::store::{IdempotencyStore, SharedStore};
use std::future::Future;
use std::sync::Arc;

/// A request's key, as the provider chose it, and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    pub provider: Id,
    pub key: Id,
    pub fingerprint: String,
}

#[derive(Clone)]
pub struct IdempotencyService {
    store: Arc<dyn IdempotencyStore>,
}

impl IdempotencyService {
    pub fn new(store: &SharedStore) -> IdempotencyService {
        IdempotencyService { store: store.clone() }
    }

    /// Answers the request once: the stored answer if its key answered the same request before;
    /// CONFLICT if it answered another; else runs `mutation` and records what it answers. A
    /// failure, or a mutation that answers nothing (`None`), is not recorded: a retry runs again.
    pub async fn answer_once<E, F>(&self, request: &KeyedRequest, mutation: F) -> Result<Option<String>, E>
    where
        E: From<AppError>,
        F: Future<Output = Result<Option<String>, E>>,
    {
        let KeyedRequest { provider, key, fingerprint } = request;
        if let Some(stored) = self.store.stored_answer(provider, key).await? {
            return same_request(&stored.fingerprint, fingerprint).map(|()| Some(stored.answer)).map_err(E::from);
        }
        let Some(answer) = mutation.await? else { return Ok(None) };
        let stored = self.store.record_answer(provider, key, fingerprint, &answer, now()).await?;
        // A concurrent request with the same key answered first: both give its answer.
        same_request(&stored.fingerprint, fingerprint).map_err(E::from)?;
        Ok(Some(stored.answer))
    }
}

fn same_request(stored: &str, fingerprint: &str) -> AppResult<()> {
    if stored == fingerprint {
        Ok(())
    } else {
        Err(AppError::Conflict("该幂等键已用于内容不同的请求，请为新的请求使用新的幂等键".to_owned()))
    }
}
