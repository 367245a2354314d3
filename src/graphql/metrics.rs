//! The schema extension that counts GraphQL operations and running subscriptions.
//!
//! Every query and mutation — posted to `/graphql` or run by a REST endpoint — is counted in
//! `graphql_operations_total{operation, outcome}` and timed in
//! `graphql_operation_duration_seconds{operation}`. The operation is the request's operation name
//! (or the document's only operation's name), `anonymous` without one, `invalid` when the name is
//! not a GraphQL name of at most 64 characters. The outcome is `ok`, the first error's
//! `extensions.code`, `GRAPHQL_PARSE_FAILED` / `GRAPHQL_VALIDATION_FAILED` for a document that
//! does not parse or validate, or `ERROR` for an error without a code. Subscriptions are counted
//! in `graphql_subscriptions_active` while they run. The REST endpoints' own queries run
//! without extensions ([`super::OwnDocuments`]) and are counted by [`record`] the same way.

use crate::metrics::{self, GaugeGuard};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest, NextSubscribe, NextValidation,
};
use async_graphql::parser::types::DocumentOperations;
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult, Value};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Adds the operation metrics to a schema.
pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationMetricsExtension::default())
    }
}

#[derive(Default)]
struct Seen {
    operation: Option<String>,
    failed_phase: Option<&'static str>,
}

/// One request's (or one subscription's) view.
#[derive(Default)]
struct OperationMetricsExtension {
    seen: Mutex<Seen>,
}

impl OperationMetricsExtension {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl Extension for OperationMetricsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let seen = std::mem::take(&mut *self.seen());
        record(seen.operation.as_deref(), &response, seen.failed_phase, started);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let guard: GaugeGuard = metrics::gauge("graphql_subscriptions_active", &[]).track();
        // The guard lives as long as the stream: dropped when the subscription ends or its
        // connection closes.
        next.run(ctx, stream)
            .map(move |response| {
                let _ = &guard;
                response
            })
            .boxed()
    }

    /// Reads the operation's name, parsing the document (async-graphql keeps it for the later
    /// phases) so that a document that does not parse is told from one refused later.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        {
            let mut seen = self.seen();
            seen.operation = request.operation_name.clone();
            match request.parsed_query() {
                Ok(document) => {
                    if let (None, DocumentOperations::Multiple(operations)) = (&seen.operation, &document.operations) {
                        if operations.len() == 1 {
                            seen.operation = operations.keys().next().map(|name| name.to_string());
                        }
                    }
                }
                Err(_) => seen.failed_phase = Some("GRAPHQL_PARSE_FAILED"),
            }
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        if result.is_err() {
            self.seen().failed_phase = Some("GRAPHQL_VALIDATION_FAILED");
        }
        result
    }
}

/// Counts and times one operation that ran since `started`: `failed_phase` names the phase that
/// refused its document, if one did (else the outcome is `ok` or its first error's code).
pub(super) fn record(operation: Option<&str>, response: &Response, failed_phase: Option<&str>, started: Instant) {
    let operation = operation_label(operation);
    let outcome = match (response.errors.first(), failed_phase) {
        (None, _) => "ok".to_owned(),
        (Some(_), Some(phase)) => phase.to_owned(),
        (Some(error), None) => error_code(error),
    };
    metrics::counter("graphql_operations_total", &[("operation", &operation), ("outcome", &outcome)]).inc();
    metrics::histogram("graphql_operation_duration_seconds", &[("operation", &operation)]).observe(started.elapsed());
}

/// The operation label: a GraphQL name of at most 64 characters, `anonymous`, or `invalid`.
fn operation_label(name: Option<&str>) -> String {
    match name {
        None => "anonymous".to_owned(),
        Some(name)
            if (1..=64).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit() =>
        {
            name.to_owned()
        }
        Some(_) => "invalid".to_owned(),
    }
}

/// The error's `extensions.code` when it is a plain code (capital letters and `_`), else `ERROR`.
fn error_code(error: &ServerError) -> String {
    match error.extensions.as_ref().and_then(|extensions| extensions.get("code")) {
        Some(Value::String(code))
            if (1..=40).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
        {
            code.clone()
        }
        _ => "ERROR".to_owned(),
    }
}
