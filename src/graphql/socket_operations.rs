//! Queries and mutations sent over `/graphql/ws` meet what an HTTP request meets: each one is
//! taken from the signed-in provider's rate (`RATE_LIMIT_PROVIDER_*`) and runs under the request
//! deadline (`REQUEST_TIMEOUT_MS`).
//!
//! The design choice: an async-graphql extension on the `execute` step, which async-graphql runs
//! for every query and mutation whichever front door it came through. It acts only on operations
//! of a WebSocket connection, whose data carries [`OverWebSocket`] (over HTTP the edge already
//! took the rate and set the deadline, and counting there twice would halve the rate), and not on
//! a subscription: async-graphql runs `execute` once per event a subscription delivers, and a
//! subscription lives as long as the client wants (its replay is bounded elsewhere). Which kind
//! the operation is is read from the document in `prepare_request`, once per operation.

use super::RequestAuth;
use crate::error::{AppError, ErrorCode, REQUEST_TIMED_OUT};
use crate::service::{ClientInfo, Services};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest};
use async_graphql::parser::types::OperationType;
use async_graphql::{ErrorExtensions, Request, Response, ServerError, ServerResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Marks the data of a WebSocket connection: its operations are limited here.
pub struct OverWebSocket;

/// Adds the rate and the deadline to the operations of WebSocket connections.
pub struct SocketOperations;

impl ExtensionFactory for SocketOperations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OneOperation::default())
    }
}

/// The extension's view of one operation.
#[derive(Default)]
struct OneOperation {
    subscription: AtomicBool,
}

#[async_trait::async_trait]
impl Extension for OneOperation {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let name = request.operation_name.clone();
        if let Ok(document) = request.parsed_query() {
            let subscription = document.operations.iter().any(|(operation_name, operation)| {
                let chosen = name.is_none() || operation_name.map(|n| n.as_str()) == name.as_deref();
                chosen && operation.node.ty == OperationType::Subscription
            });
            self.subscription.store(subscription, Ordering::Relaxed);
        }
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let limited = !self.subscription.load(Ordering::Relaxed) && ctx.data_opt::<OverWebSocket>().is_some();
        let (true, Some(services)) = (limited, ctx.data_opt::<Services>()) else {
            return next.run(ctx, operation_name).await;
        };
        if let Some(RequestAuth(Ok(session))) = ctx.data_opt::<RequestAuth>() {
            let ip = ctx.data_opt::<ClientInfo>().and_then(|client| client.ip);
            if let Err(refusal) = services.guard.check_provider(&session.provider_id, ip, 1).await {
                return Response::from_errors(vec![AppError::from(refusal)
                    .extend()
                    .into_server_error(Default::default())]);
            }
        }
        let timeout = services.guard.settings().request_timeout;
        match tokio::time::timeout(timeout, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(operation = operation_name.unwrap_or_default(), "a WebSocket operation timed out");
                let mut error = ServerError::new(REQUEST_TIMED_OUT, None);
                error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::Unavailable.as_str());
                Response::from_errors(vec![error])
            }
        }
    }
}
