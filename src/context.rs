//! The context of the HTTP request being handled: its id, the provider it acts for once known,
//! and what (if anything) made it malformed in a way that counts toward a ban.
//!
//! The HTTP edge opens the context around each request ([`RequestContext::scope`]) as a tokio
//! task-local, so every log line and every error built while serving it can name the request
//! without passing it around: [`current_request_id`]; whatever learns who the caller is says so
//! ([`note_provider`]: token verification, sign-in), and whatever finds the request malformed
//! notes why ([`note_bad_request`]) for the edge to count once the request is answered.
//! This module is a leaf (it knows only [`domain`](crate::domain)), so errors, services and the
//! GraphQL layer can all reach it. Nothing here ever sees a token or a password: only ids.

use crate::domain::Id;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// What is known about the request being handled.
#[derive(Debug)]
pub struct RequestContext {
    pub request_id: Arc<str>,
    provider: Mutex<Option<Id>>,
    bad_request: Mutex<Option<BadRequest>>,
}

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

impl RequestContext {
    pub fn new(request_id: Arc<str>) -> Arc<RequestContext> {
        Arc::new(RequestContext { request_id, provider: Mutex::new(None), bad_request: Mutex::new(None) })
    }

    /// Runs `future` (the handling of one request) with this context as the current one.
    pub async fn scope<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// The provider the request acts for, once known.
    pub fn provider(&self) -> Option<Id> {
        self.provider.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// What made the request malformed, if something did.
    pub fn bad_request(&self) -> Option<BadRequest> {
        *self.bad_request.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Records that the current request acts for `provider` (no-op outside a request).
pub fn note_provider(provider: &Id) {
    let _ = CURRENT.try_with(|context| {
        *context.provider.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(provider.clone());
    });
}

/// Records that the current request is malformed in a way no working client's is (no-op outside
/// a request); the edge counts it toward a ban once the request is answered.
pub fn note_bad_request(what: BadRequest) {
    let _ = CURRENT.try_with(|context| {
        *context.bad_request.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(what);
    });
}

/// What made the current request malformed, if something did.
pub fn current_bad_request() -> Option<BadRequest> {
    CURRENT.try_with(|context| context.bad_request()).ok().flatten()
}

/// The provider the current request acts for, once known.
pub fn current_provider() -> Option<Id> {
    CURRENT.try_with(|context| context.provider()).ok().flatten()
}

/// The current request's id, if there is one.
pub fn current_request_id() -> Option<Arc<str>> {
    CURRENT.try_with(|context| Arc::clone(&context.request_id)).ok()
}

/// Whether an incoming `x-request-id` may be echoed: 1 to 64 of `A-Z a-z 0-9 - _ . :`, so it
/// cannot forge log lines or carry anything but an id.
pub fn acceptable_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new request id: 32 hex digits (time-ordered, then random).
pub fn generate_request_id() -> Arc<str> {
    let random = next_random().to_be_bytes();
    let millis = chrono::Utc::now().timestamp_millis() as u64;
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (i, byte) in millis.to_be_bytes().iter().chain(random.iter()).enumerate() {
        hex[2 * i] = DIGITS[usize::from(byte >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
    }
    Arc::from(std::str::from_utf8(&hex).expect("hex digits are ASCII"))
}

/// 64 random bits for a request id, from a generator per thread seeded once from the operating
/// system (a request id must be unique, not secret: a system call per request bought nothing).
fn next_random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_ne_bytes(seed)
        });
    }
    // wyrand: a 64-bit step and a 128-bit multiply.
    STATE.with(|state| {
        let next = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(next);
        let product = u128::from(next) * u128::from(next ^ 0xe703_7ed1_a0b4_28db);
        ((product >> 64) as u64) ^ (product as u64)
    })
}

/// A request no working client sends: what counts toward a ban for malformed requests. Ordinary
/// mistakes (a missing parameter, a title too long, an unknown GraphQL field, an expired token)
/// are not among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// A body over the route's size limit.
    BodyTooLarge,
    /// A body that cannot be read, is not JSON, or is not the JSON the route takes.
    MalformedBody,
    /// JSON nested deeper than `JSON_MAX_DEPTH`.
    JsonTooDeep,
    /// A GraphQL document over the depth, complexity, alias, root-field or directive limits, or
    /// whose fragments cycle or expand without end.
    GraphqlLimits,
    /// A bearer token that is not a token this server could have issued: not a JWT, or one with
    /// another algorithm (`none` among them). A well-formed token whose signature does not match
    /// is not counted, since after a `JWT_SECRET` rotation every client still holds one.
    ForgedToken,
    /// An inbound webhook whose signature is missing, malformed, stale or wrong: a partner system
    /// signs every call, so this is someone guessing (or a partner with the wrong secret, which
    /// its operators see as 401s and as this reason in `bad_requests_total`).
    BadSignature,
}

impl BadRequest {
    /// The `reason` label of `bad_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            BadRequest::BodyTooLarge => "body_too_large",
            BadRequest::MalformedBody => "malformed_body",
            BadRequest::JsonTooDeep => "json_too_deep",
            BadRequest::GraphqlLimits => "graphql_limits",
            BadRequest::ForgedToken => "forged_token",
            BadRequest::BadSignature => "bad_signature",
        }
    }
}
