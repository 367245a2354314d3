//! The server's own GraphQL documents (the REST endpoints'), their queries run on a copy of the
//! schema with no extension installed.
//!
//! Once a schema has any extension, async-graphql resolves every field through the extensions'
//! hook chain: a `ResolveInfo` and a boxed future per extension for each field of each row, a
//! fifth of a REST customer list's time, although the hooks act only on root mutation fields.
//! The REST endpoints' queries are documents of the server's own (`rest_compat/`, checked against
//! the schema at start-up), so nothing the extensions guard a client's document against can be in
//! them: shape limits, introspection, idempotency and the audit (mutations only). What the
//! extensions do for every operation is done here around the run, by the same functions: the
//! omitted variables, the errors' codes and `requestId`, and the operation metrics. Anything a
//! client writes (`/graphql`, WebSocket) and every mutation runs on the schema with the extensions.

use super::{metrics, omitted_variables, protection, AppSchema};
use crate::service::Services;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Request, Response};
use std::time::Instant;

/// Runs the server's own documents: a query on the schema without extensions, anything else on
/// the schema with them.
#[derive(Clone)]
pub struct OwnDocuments {
    guarded: AppSchema,
    bare: AppSchema,
}

impl OwnDocuments {
    /// Beside `guarded` (the schema of [`super::build_schema`]), the same schema with the same
    /// limits and no extension.
    pub fn new(guarded: AppSchema, services: Services) -> OwnDocuments {
        let bare = super::limited_schema(services).disable_introspection().disable_suggestions().finish();
        OwnDocuments { guarded, bare }
    }

    /// The schema's SDL.
    pub fn sdl(&self) -> String {
        self.guarded.sdl()
    }

    /// Runs one operation of the server's own, `document` (parsed once, at start-up), with the
    /// request's variables. A query is counted and its errors settled here, as the extensions do
    /// for the rest.
    pub async fn execute(&self, document: &ExecutableDocument, mut request: Request) -> Response {
        let queries_only = document.operations.iter().all(|(_, operation)| operation.node.ty == OperationType::Query);
        if !queries_only {
            request.set_parsed_query(document.clone());
            return self.guarded.execute(request).await;
        }
        let started = Instant::now();
        let operation = request.operation_name.clone();
        omitted_variables::set_document_without_omitted(&mut request, document);
        let mut response = self.bare.execute(request).await;
        protection::settle_errors(&mut response);
        metrics::record(operation.as_deref(), &response, None, started);
        response
    }
}
