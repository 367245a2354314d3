//! Answers a retried mutation with its first answer, byte for byte.
//!
//! Not an extension of its own: the protection extension ([`super::protection`]) calls it for
//! root mutation fields, so that a read's every field passes one extension hook fewer (each is a
//! boxed future per field). It wraps the resolution of every root mutation field that carries an `idempotencyKey`
//! argument (a literal or a variable) in [`IdempotencyService::answer_once`]: the first request's
//! resolved field value, serialized, is stored under the key with a fingerprint of the request,
//! and a retry gets that value back instead of running the resolver. The design choice: the
//! fingerprint is a SHA-256 of the request *as sent* (query text, operation name, variables, and
//! the field's response key), not of its meaning; a retry is a resend, and the REST shim always
//! sends its endpoint's one operation, so the same REST body under the same key has the same
//! fingerprint. Resolvers stay as they are: they pass the key to their service, whose write
//! claims it in its own transaction, so a retry whose answer was never recorded is still stored
//! once.

use super::RequestAuth;
use crate::error::AppError;
use crate::service::idempotency::{IdempotencyService, KeyedRequest};
use crate::service::{input, Services};
use async_graphql::extensions::{ExtensionContext, NextResolve, ResolveInfo};
use async_graphql::{ErrorExtensions, PathSegment, Request, ServerError, ServerResult, Value, Variables};
use sha2::{Digest, Sha256};
use std::sync::Mutex;

/// The argument that names a mutation's idempotency key.
const KEY_ARGUMENT: &str = "idempotencyKey";

/// The request as sent, captured before anything else reads it (extensions are per request).
#[derive(Default)]
struct SentRequest {
    query: String,
    operation_name: Option<String>,
    variables: Variables,
}

/// One request's idempotent root mutations.
#[derive(Default)]
pub(super) struct IdempotentMutations {
    sent: Mutex<SentRequest>,
}

/// Why an idempotent resolution failed: the rule's refusal, or the resolver's own error.
enum Failure {
    App(AppError),
    Resolver(ServerError),
}

impl From<AppError> for Failure {
    fn from(error: AppError) -> Failure {
        Failure::App(error)
    }
}

impl IdempotentMutations {
    /// Keeps the request as sent, before anything else reads it (called once per request).
    pub(super) fn capture(&self, request: &Request) {
        // A GraphQL name cannot be escaped: a query whose text does not name the argument has no
        // field that carries it, and nothing needs the copy (most requests, every read).
        if !request.query.contains(KEY_ARGUMENT) {
            return;
        }
        *self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = SentRequest {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
        };
    }

    /// Resolves a root mutation field once per idempotency key, when it carries one.
    pub(super) async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let (position, path) = (info.field.name.pos, info.path_node.to_string_vec());
        let refused = |error: AppError| {
            error.extend().into_server_error(position).with_path(path.iter().cloned().map(PathSegment::Field).collect())
        };
        let raw_key = self.key_argument(info.field);
        let (Some(raw_key), Some(services), Some(RequestAuth(Ok(session)))) =
            (raw_key, ctx.data_opt::<Services>(), ctx.data_opt::<RequestAuth>())
        else {
            // No key, or no signed-in provider to keep it for (the resolver refuses that).
            return next.run(ctx, info).await;
        };
        let key = match input::idempotency_key(Some(&raw_key)) {
            Ok(Some(key)) => key,
            Ok(None) => return next.run(ctx, info).await,
            Err(error) => return Err(refused(error)),
        };
        let request = KeyedRequest {
            provider: session.provider_id.clone(),
            key,
            fingerprint: self.fingerprint(info.field.response_key().node.as_str()),
        };
        let idempotency: &IdempotencyService = &services.idempotency;
        let resolved = async {
            let value = next.run(ctx, info).await.map_err(Failure::Resolver)?;
            value
                .map(|value| serde_json::to_string(&value))
                .transpose()
                .map_err(|e| Failure::App(AppError::internal(format!("an answer could not be serialized: {e}"))))
        };
        match idempotency.answer_once(&request, resolved).await {
            Ok(None) => Ok(None),
            Ok(Some(answer)) => serde_json::from_str(&answer)
                .map(Some)
                .map_err(|e| refused(AppError::internal(format!("a stored answer does not parse: {e}")))),
            Err(Failure::App(error)) => Err(refused(error)),
            Err(Failure::Resolver(error)) => Err(error),
        }
    }

    /// The field's `idempotencyKey`, read from the request's variables if it names one; `None`
    /// when absent or null.
    fn key_argument(&self, field: &async_graphql::parser::types::Field) -> Option<String> {
        let (_, value) = field.arguments.iter().find(|(name, _)| name.node.as_str() == KEY_ARGUMENT)?;
        let sent = self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match value.node.clone().into_const_with(|name| sent.variables.get(&name).cloned().ok_or(())) {
            Ok(Value::String(key)) => Some(key),
            _ => None,
        }
    }

    /// SHA-256 of the request as sent and the field's response key, each part length-prefixed
    /// so that no two requests run together into the same bytes.
    fn fingerprint(&self, response_key: &str) -> String {
        let sent = self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let variables = serde_json::to_string(&sent.variables).unwrap_or_default();
        let mut hash = Sha256::new();
        for part in [sent.query.as_str(), sent.operation_name.as_deref().unwrap_or(""), &variables, response_key] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
    }
}
