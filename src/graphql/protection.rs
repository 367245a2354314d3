//! The schema's guard rails, as an async-graphql extension:
//!
//! - **Shape limits** checked right after parsing, before anything else walks the document: aliases and root fields per
//!   operation, and the work of expanding fragments (a document whose fragments multiply each
//!   other is refused before anything walks it in full). Depth, complexity and directives are
//!   async-graphql's own limits (see [`super::build_schema`]).
//! - **Introspection and suggestions for those `GRAPHQL_INTROSPECTION` allows** (by default signed-in
//!   sessions only): a document that selects `__schema` or `__type` from anyone else is refused
//!   whole (FORBIDDEN, the caller may not do this; the request itself is well formed), and the
//!   request is also run with introspection disabled in case anything slipped past. "Did you mean"
//!   suggestions are cut from their validation errors: async-graphql can switch them off only for
//!   the whole schema, and a second schema for anonymous callers would double what every front
//!   door (POST, WebSocket, REST shim) has to choose between, where this one extension sees them all.
//! - **Errors that tell nothing inside**: parse and validation errors become `BAD_USER_INPUT` (in
//!   Chinese where ours); an error with no code from inside execution (not one of ours, so possibly
//!   naming internals) becomes `INTERNAL` with the generic message, its text logged; every error
//!   carries the request's `requestId`.
//! - **The audit log**: every mutation (but `login`, which the auth service records itself, since
//!   only it knows whose account was tried) is recorded when it finishes, with its result.
//!
//! The REST endpoints' queries, documents of the server's own, run without it
//! ([`super::OwnDocuments`]), which settles their errors with [`settle_errors`].

use super::idempotency::IdempotentMutations;
use super::RequestAuth;
use crate::config::Introspection;
use crate::error::{AppError, ErrorCode};
use crate::service::{ClientInfo, Services};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest, NextResolve,
    NextValidation, ResolveInfo,
};
use async_graphql::parser::types::{ExecutableDocument, FragmentDefinition, Selection, SelectionSet};
use async_graphql::{
    Name, Positioned, Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most fields a document may expand to (fragments inlined), whatever the other limits say.
const MAX_EXPANDED_FIELDS: usize = 5_000;
/// How deeply fields and fragment spreads may nest while the document is walked.
const MAX_WALK_DEPTH: usize = 64;

/// What the resolvers of one request tell the audit log beyond what the extension sees: the
/// entity acted on, and who acted when the request carried no token (refresh, logout by token).
#[derive(Default)]
pub struct AuditNote(Mutex<(Option<String>, Option<crate::domain::Id>)>);

impl AuditNote {
    pub fn target(&self, target: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0 = Some(target.to_owned());
    }

    pub fn actor(&self, actor: &crate::domain::Id) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1 = Some(actor.clone());
    }

    fn take(&self) -> (Option<String>, Option<crate::domain::Id>) {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Protection {
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub introspection: Introspection,
}

/// The text async-graphql puts before the names it suggests, always at the end of the message
/// (no GraphQL name can hold a space, so it cannot come from the document).
const SUGGESTION: &str = " Did you mean ";

/// The fields that introspect the schema (`__typename` tells nothing beyond a type's name the
/// client already asked for, and clients rely on it).
fn introspects(name: &str) -> bool {
    name == "__schema" || name == "__type"
}

impl ExtensionFactory for Protection {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ProtectionExtension { settings: *self, idempotent: IdempotentMutations::default() })
    }
}

/// One request's protection; it also answers retried mutations ([`IdempotentMutations`]), as
/// one extension rather than two: async-graphql calls every extension's `resolve` for every
/// field, and only root mutation fields need either.
struct ProtectionExtension {
    settings: Protection,
    idempotent: IdempotentMutations,
}

fn bad_input(message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadUserInput.as_str());
    error
}

/// A parse-time error: BAD_USER_INPUT, in Chinese.
fn parse_error(mut error: ServerError) -> ServerError {
    error.message = if error.message.starts_with("The recursion depth") {
        over_limits();
        "查询嵌套层数过多".to_owned()
    } else if error.message.starts_with("The number of directives") {
        over_limits();
        "字段上的指令过多".to_owned()
    } else if error.message.starts_with("查询") {
        error.message
    } else {
        format!("查询语句无法解析：{}", error.message)
    };
    error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadUserInput.as_str());
    error
}

fn code_of(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(Value::String(code)) => Some(code.as_str()),
        _ => None,
    }
}

/// The document is over the GraphQL limits, which no working client's queries come near: counted
/// toward a ban.
fn over_limits() {
    crate::context::note_bad_request(crate::context::BadRequest::GraphqlLimits);
}

/// async-graphql's English messages for its limits, in Chinese like every message of ours.
fn translated(message: &str) -> Option<&'static str> {
    if message.starts_with("Query is nested too deep") {
        Some("查询嵌套层数过多")
    } else if message.starts_with("Query is too complex") {
        Some("查询过于复杂")
    } else {
        None
    }
}

#[async_trait::async_trait]
impl Extension for ProtectionExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        settle_errors(&mut response);
        response
    }

    /// Parses the query (once: async-graphql keeps the parsed document) and checks its shape
    /// before anything else walks it: async-graphql's own parse-time checks (recursion depth,
    /// directives) follow fragment spreads without a budget, so a document whose fragments spread
    /// each other twice over would keep them busy for hours.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let signed_in = match request.data.get(&std::any::TypeId::of::<RequestAuth>()) {
            Some(auth) => auth.downcast_ref::<RequestAuth>().is_some_and(RequestAuth::signed_in),
            None => ctx.data_opt::<RequestAuth>().is_some_and(RequestAuth::signed_in),
        };
        let document = request.parsed_query().map_err(|error| parse_error(error.clone()))?;
        self.settings.check_shape(document).inspect_err(|_| over_limits())?;
        if !self.settings.introspection.allows(signed_in) {
            let asks = document.operations.iter().any(|(_, operation)| {
                selects_introspection(&operation.node.selection_set.node, &document.fragments, &mut Vec::new())
            });
            if asks {
                return Err(self.settings.introspection_refused());
            }
            request = request.disable_introspection();
        }
        super::omitted_variables::drop_omitted_arguments(&mut request)?;
        self.idempotent.capture(&request);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(parse_error)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let suggest =
            self.settings.introspection.allows(ctx.data_opt::<RequestAuth>().is_some_and(RequestAuth::signed_in));
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|mut error| {
                    if !suggest {
                        if let Some(at) = error.message.find(SUGGESTION) {
                            error.message.truncate(at);
                        }
                    }
                    if let Some(chinese) = translated(&error.message) {
                        over_limits();
                        error.message = chinese.to_owned();
                    }
                    error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadUserInput.as_str());
                    error
                })
                .collect()
        })
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let mutation = ctx.schema_env.registry.mutation_type.as_deref();
        if Some(info.parent_type) != mutation || info.path_node.parent.is_some() {
            return next.run(ctx, info).await;
        }
        // Boxed apart, so that the future of every other field stays small (this hook runs for
        // each field of each row, and a mutation's future is large).
        Box::pin(self.root_mutation(ctx, info, next)).await
    }
}

/// Gives every error of a finished request a code and the request's `requestId`: one without a
/// code is the client's (BAD_USER_INPUT) when it is about the request or its input, else not one
/// of ours and possibly naming internals, so it is logged and told as INTERNAL with the generic
/// message.
pub(super) fn settle_errors(response: &mut Response) {
    let request_id = crate::context::current_request_id();
    for error in &mut response.errors {
        if code_of(error).is_none() {
            let client_error = error.path.is_empty()
                || error.message.starts_with("Failed to parse")
                || error.message.starts_with("Invalid value")
                || error.message.starts_with("Expected input type");
            if client_error {
                error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::BadUserInput.as_str());
            } else {
                tracing::error!(request_id = request_id.as_deref(), detail = %error.message, path = ?error.path,
                    "request failed with an error that is not ours");
                error.message = AppError::Internal(String::new()).to_string();
                error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::Internal.as_str());
            }
        }
        if let Some(id) = &request_id {
            error.extensions.get_or_insert_with(Default::default).set("requestId", id.to_string());
        }
    }
}

impl ProtectionExtension {
    /// Resolves a root mutation field, once per idempotency key, and records its audit entry
    /// (but for `login`'s, which its service records, and `typing`'s: a signal sent while composing,
    /// up to once a keystroke, that changes nothing would bury the log).
    async fn root_mutation(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.name == "login" || info.name == "typing" {
            return self.idempotent.resolve(ctx, info, next).await;
        }
        let operation = info.name.to_owned();
        if let Some(note) = ctx.data_opt::<AuditNote>() {
            note.take();
        }
        let result = self.idempotent.resolve(ctx, info, next).await;
        let outcome = match &result {
            Ok(_) => crate::domain::AuditEntry::OK.to_owned(),
            Err(error) => code_of(error).unwrap_or(ErrorCode::BadUserInput.as_str()).to_owned(),
        };
        if let Some(services) = ctx.data_opt::<Services>() {
            let (target, actor) = ctx.data_opt::<AuditNote>().map(AuditNote::take).unwrap_or_default();
            let session = match ctx.data_opt::<RequestAuth>() {
                Some(RequestAuth(Ok(session))) => Some(session.provider_id.clone()),
                _ => None,
            };
            let provider = actor.or(session);
            let client = ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default();
            services.audit.record(&operation, provider.as_ref(), None, target.as_deref(), &client, &outcome).await;
        }
        result
    }
}

impl Protection {
    fn introspection_refused(&self) -> ServerError {
        let message = match self.introspection {
            Introspection::Off => "本服务不提供架构查询（内省）",
            _ => "登录后才能查询架构（内省）",
        };
        let mut error = ServerError::new(message, None);
        error.extensions.get_or_insert_with(Default::default).set("code", ErrorCode::Forbidden.as_str());
        error
    }

    /// Counts the aliases and root fields of each operation, expanding fragments, within a budget.
    fn check_shape(&self, document: &ExecutableDocument) -> ServerResult<()> {
        let fragments = &document.fragments;
        for (_, operation) in document.operations.iter() {
            let mut count = Count::default();
            let root = &operation.node.selection_set.node;
            // The walk is bounded, and expands at least what counting the root fields expands.
            walk(root, fragments, &mut count, &mut Vec::new(), 0)?;
            count.root_fields = root_fields(root, fragments, &mut Vec::new());
            if count.aliases > self.max_aliases {
                return Err(bad_input(format!("查询中的别名过多（最多{}个）", self.max_aliases)));
            }
            if count.root_fields > self.max_root_fields {
                return Err(bad_input(format!("一次查询的顶层字段过多（最多{}个）", self.max_root_fields)));
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Count {
    aliases: usize,
    root_fields: usize,
    expanded: usize,
}

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

fn walk<'a>(
    set: &'a SelectionSet,
    fragments: &'a Fragments,
    count: &mut Count,
    open: &mut Vec<&'a Name>,
    depth: usize,
) -> ServerResult<()> {
    if depth > MAX_WALK_DEPTH {
        return Err(bad_input("查询嵌套层数过多"));
    }
    for selection in &set.items {
        count.expanded += 1;
        if count.expanded > MAX_EXPANDED_FIELDS {
            return Err(bad_input("查询过于复杂"));
        }
        match &selection.node {
            Selection::Field(field) => {
                if field.node.alias.is_some() {
                    count.aliases += 1;
                }
                walk(&field.node.selection_set.node, fragments, count, open, depth + 1)?;
            }
            Selection::InlineFragment(fragment) => {
                walk(&fragment.node.selection_set.node, fragments, count, open, depth + 1)?
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                // GraphQL forbids cycles; refused here, before anything follows one for ever.
                if open.contains(&name) {
                    return Err(bad_input(format!("片段{name}循环引用了自身")));
                }
                if let Some(fragment) = fragments.get(name) {
                    open.push(name);
                    walk(&fragment.node.selection_set.node, fragments, count, open, depth + 1)?;
                    open.pop();
                }
            }
        }
    }
    Ok(())
}

/// Whether a selection, its fragments included, selects `__schema` or `__type` anywhere (after
/// [`Protection::check_shape`], so the document is known to be of bounded size and without cycles).
fn selects_introspection<'a>(set: &'a SelectionSet, fragments: &'a Fragments, open: &mut Vec<&'a Name>) -> bool {
    set.items.iter().any(|selection| match &selection.node {
        Selection::Field(field) => {
            introspects(&field.node.name.node) || selects_introspection(&field.node.selection_set.node, fragments, open)
        }
        Selection::InlineFragment(fragment) => {
            selects_introspection(&fragment.node.selection_set.node, fragments, open)
        }
        Selection::FragmentSpread(spread) => {
            let name = &spread.node.fragment_name.node;
            match fragments.get(name) {
                Some(fragment) if !open.contains(&name) => {
                    open.push(name);
                    let found = selects_introspection(&fragment.node.selection_set.node, fragments, open);
                    open.pop();
                    found
                }
                _ => false,
            }
        }
    })
}

/// The fields an operation's root selects, counting those of its fragments.
fn root_fields<'a>(set: &'a SelectionSet, fragments: &'a Fragments, open: &mut Vec<&'a Name>) -> usize {
    set.items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => root_fields(&fragment.node.selection_set.node, fragments, open),
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                match fragments.get(name) {
                    Some(fragment) if !open.contains(&name) => {
                        open.push(name);
                        let n = root_fields(&fragment.node.selection_set.node, fragments, open);
                        open.pop();
                        n
                    }
                    _ => 0,
                }
            }
        })
        .sum()
}
