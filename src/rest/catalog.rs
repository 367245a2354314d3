//! The REST endpoints, read from the documents in `rest_compat/`.
//!
//! Each document is one GraphQL operation under a header of three lines:
//!
//! ```text
//! # route: GET /api/customers/:id/tickets
//! # summary: 获取客户的工单列表
//! # message: 获取成功
//! query listCustomerTickets($id: ID!, $page: Int! = 1) { data: tickets(customerId: $id, page: $page) { ... } }
//! ```
//!
//! A line `# auth: none` marks an endpoint callable without a token (login, refresh), and a line
//! `# addition: <why>` an endpoint that is not one of the spec's twenty routes: the OpenAPI
//! document marks it (`x-addition`) and says why, so a reader of the spec knows what is extra.
//! Likewise a line `# added-parameter: <name>: <why>` (one per parameter) marks a parameter added
//! to one of the spec's routes.
//!
//! The methods are GET, POST, PUT and DELETE. Each variable is a parameter of the same name: from
//! the path when the route has `:name`; the variable `$idempotencyKey` from the standard
//! `Idempotency-Key` request header; else from the query string (GET) or the JSON body (POST, PUT,
//! DELETE). A variable that is non-null and has no
//! default is required; a default is the parameter's default. The operation's one root field
//! (aliased `data`) becomes the envelope's `data`; aliases inside shape it into the spec's names.

use super::rules::{rule_of, Rule};
use super::shape::{SchemaIndex, Shape, ShapeKind};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection};
use axum::http::Method;
use serde_json::Value;

include!(concat!(env!("OUT_DIR"), "/rest_documents.rs"));

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Body,
    /// A request header: only [`IDEMPOTENCY_KEY_HEADER`], for the variable [`IDEMPOTENCY_KEY_VARIABLE`].
    Header,
}

/// The variable a header fills, and the header: the IETF Idempotency-Key draft's.
pub const IDEMPOTENCY_KEY_VARIABLE: &str = "idempotencyKey";
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    pub location: Location,
    pub shape: Shape,
    pub required: bool,
    pub default: Option<Value>,
    /// What the server enforces beyond the type (see [`super::rules`]); `None` for enums and lists.
    pub rule: Option<Rule>,
    /// Why the parameter was added to a spec route (`# added-parameter: name: ...`).
    pub addition: Option<String>,
}

/// One REST endpoint: its route, its parameters, and the GraphQL operation it runs.
#[derive(Debug)]
pub struct Endpoint {
    /// The operation's name, also the OpenAPI operationId.
    pub operation_id: String,
    pub method: Method,
    /// As the spec writes it, with `:name` for path parameters.
    pub path: String,
    pub summary: String,
    /// The envelope's message on success.
    pub message: String,
    /// False for the endpoints that need no token (`# auth: none`).
    pub needs_token: bool,
    /// Why the endpoint was added beyond the spec's routes (`# addition: ...`); `None` for the spec's.
    pub addition: Option<String>,
    pub query: String,
    pub document: ExecutableDocument,
    pub parameters: Vec<Parameter>,
    /// The response key of the root field whose value becomes `data`.
    pub data_key: String,
    pub data: Shape,
}

impl Endpoint {
    /// The path in axum's syntax: `/api/tickets/{id}`.
    pub fn router_path(&self) -> String {
        self.path
            .split('/')
            .map(|segment| match segment.strip_prefix(':') {
                Some(name) => format!("{{{name}}}"),
                None => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The path in OpenAPI's syntax, which is axum's.
    pub fn openapi_path(&self) -> String {
        self.router_path()
    }
}

/// Every endpoint of `rest_compat/`, checked against the schema.
pub fn load(schema_sdl: &str) -> Result<Vec<Endpoint>, String> {
    let index = SchemaIndex::from_sdl(schema_sdl)?;
    DOCUMENTS
        .iter()
        .map(|(file, text)| endpoint(&index, text).map_err(|e| format!("rest_compat/{file}: {e}")))
        .collect()
}

fn header<'a>(text: &'a str, key: &str) -> Result<&'a str, String> {
    text.lines()
        .map_while(|line| line.strip_prefix('#'))
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix(':').map(str::trim))
        .ok_or_else(|| format!("the header has no `# {key}:` line"))
}

/// The `# added-parameter: <name>: <why>` lines of a header.
fn added_parameters(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().map_while(|line| line.strip_prefix('#')).filter_map(|line| {
        let rest = line.trim().strip_prefix("added-parameter:")?;
        rest.split_once(':').map(|(name, why)| (name.trim(), why.trim()))
    })
}

fn endpoint(index: &SchemaIndex, text: &str) -> Result<Endpoint, String> {
    let (method, path) = header(text, "route")?.split_once(' ').ok_or("the route is `METHOD /path`")?;
    let method = match method {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        other => return Err(format!("unsupported method {other}")),
    };
    let path = path.trim().to_owned();
    let document = async_graphql::parser::parse_query(text).map_err(|e| format!("does not parse: {e}"))?;
    let (name, operation) = match &document.operations {
        DocumentOperations::Single(_) => return Err("the operation needs a name (the OpenAPI operationId)".into()),
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.iter().next().map(|(name, operation)| (name.to_string(), &operation.node)).expect("one")
        }
        DocumentOperations::Multiple(_) => return Err("one operation per document".into()),
    };
    let root = match operation.ty {
        OperationType::Query => &index.query_root,
        OperationType::Mutation => &index.mutation_root,
        OperationType::Subscription => return Err("subscriptions have no REST form".into()),
    };
    let result = index.selection_shape(root, &operation.selection_set.node)?;
    let super::shape::ShapeKind::Object(mut roots) = result.kind else { unreachable!("a selection is an object") };
    if roots.len() != 1 {
        return Err("the operation selects exactly one root field".into());
    }
    let (data_key, data) = roots.remove(0);
    let root_field = operation.selection_set.node.items.iter().find_map(|item| match &item.node {
        Selection::Field(field) => Some(&field.node),
        _ => None,
    });
    let root_field = root_field.ok_or("the operation selects exactly one root field")?;
    // The argument each variable fills, which names its rule.
    let argument_of = |variable: &str| {
        // The parser's value type is not exported; a variable prints as `$name`.
        let reference = format!("${variable}");
        root_field
            .arguments
            .iter()
            .find(|(_, value)| value.node.to_string() == reference)
            .map(|(argument, _)| argument.node.to_string())
    };

    let path_names: Vec<&str> = path.split('/').filter_map(|segment| segment.strip_prefix(':')).collect();
    let mut parameters = Vec::new();
    for variable in &operation.variable_definitions {
        let variable = &variable.node;
        let name = variable.name.node.to_string();
        let location = if path_names.contains(&name.as_str()) {
            Location::Path
        } else if name == IDEMPOTENCY_KEY_VARIABLE {
            Location::Header
        } else if method == Method::GET {
            Location::Query
        } else {
            Location::Body
        };
        let default = variable.default_value.as_ref().map(|value| value.node.clone().into_json()).transpose();
        let default = default.map_err(|e| format!("the default of ${name} is not JSON: {e}"))?;
        let shape = index.input_shape(&variable.var_type.node)?;
        let field = root_field.name.node.as_str();
        let rule = argument_of(&name).and_then(|argument| rule_of(field, &argument));
        if rule.is_none() && matches!(shape.kind, ShapeKind::Scalar(_)) {
            return Err(format!("${name} of {field} has no rule in src/rest/rules.rs"));
        }
        let addition = added_parameters(text).find(|(added, _)| *added == name).map(|(_, why)| why.to_owned());
        parameters.push(Parameter {
            addition,
            required: !variable.var_type.node.nullable && default.is_none(),
            shape,
            name,
            location,
            default,
            rule,
        });
    }
    for path_name in path_names {
        if !parameters.iter().any(|p| p.name == path_name) {
            return Err(format!("the path names :{path_name}, which is no variable"));
        }
    }
    Ok(Endpoint {
        operation_id: name,
        method,
        path,
        summary: header(text, "summary")?.to_owned(),
        message: header(text, "message")?.to_owned(),
        needs_token: header(text, "auth") != Ok("none"),
        addition: header(text, "addition").ok().map(str::to_owned),
        query: text.to_owned(),
        document,
        parameters,
        data_key,
        data,
    })
}
