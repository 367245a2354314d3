//! The OpenAPI `links` between operations: where an id one answer holds can be used next (a
//! list's first item to its detail and actions, sign-in to refresh and sign-out). Generators follow
//! them to chain requests (schemathesis's stateful phase), and readers learn which id goes where.
//!
//! The table names operations and the JSON pointer into the success answer; [`links`] checks each
//! link against the catalog (the target exists and takes the parameter, the pointer runs through
//! the answer's shape), so a renamed field or operation fails at start-up instead of silently
//! dropping the link.

use super::catalog::{Endpoint, Location};
use super::shape::{Shape, ShapeKind};
use serde_json::{json, Map, Value};

/// (from operation, to operation, [(parameter of `to`, pointer into `from`'s answer)]).
type Link = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

const LINKS: &[Link] = &[
    ("login", "refreshToken", &[("refreshToken", "/data/refreshToken")]),
    ("login", "logout", &[("token", "/data/token")]),
    ("refreshToken", "refreshToken", &[("refreshToken", "/data/refreshToken")]),
    ("listCustomers", "getCustomer", &[("id", "/data/customers/0/id")]),
    ("listCustomers", "getUsageScore", &[("id", "/data/customers/0/id")]),
    ("listCustomers", "listCustomerTickets", &[("id", "/data/customers/0/id")]),
    ("listCustomers", "listChatMessages", &[("customerId", "/data/customers/0/id")]),
    ("listCustomerTickets", "getTicket", &[("id", "/data/tickets/0/id")]),
    ("listTickets", "getTicket", &[("id", "/data/tickets/0/id")]),
    ("listTickets", "replyTicket", &[("id", "/data/tickets/0/id")]),
    ("listTickets", "resolveTicket", &[("id", "/data/tickets/0/id")]),
    ("listTickets", "escalateTicket", &[("id", "/data/tickets/0/id")]),
    ("createTicket", "getTicket", &[("id", "/data/ticketId")]),
    ("createTicket", "replyTicket", &[("id", "/data/ticketId")]),
    ("createTicket", "resolveTicket", &[("id", "/data/ticketId")]),
    ("createTicket", "escalateTicket", &[("id", "/data/ticketId")]),
    ("listMessages", "getMessage", &[("id", "/data/messages/0/id")]),
    ("listMessages", "markMessageRead", &[("id", "/data/messages/0/id")]),
    ("listConversations", "listChatMessages", &[("customerId", "/data/conversations/0/customerId")]),
    ("listConversations", "markConversationRead", &[("customerId", "/data/conversations/0/customerId")]),
    ("listConversations", "markConversationUnread", &[("customerId", "/data/conversations/0/customerId")]),
    ("listCannedReplies", "cannedReplyDetail", &[("id", "/data/cannedReplies/0/id")]),
    ("listCannedReplies", "deleteCannedReply", &[("id", "/data/cannedReplies/0/id")]),
    (
        "listCannedReplies",
        "updateCannedReply",
        &[("id", "/data/cannedReplies/0/id"), ("version", "/data/cannedReplies/0/version")],
    ),
    ("createCannedReply", "cannedReplyDetail", &[("id", "/data/id")]),
    ("createCannedReply", "updateCannedReply", &[("id", "/data/id"), ("version", "/data/version")]),
    ("createCannedReply", "deleteCannedReply", &[("id", "/data/id")]),
];

/// The `links` of `from`'s success answer, checked against the catalog.
pub fn links(from: &Endpoint, endpoints: &[Endpoint]) -> Result<Map<String, Value>, String> {
    let mut links = Map::new();
    for (_, to, bindings) in LINKS.iter().filter(|(source, _, _)| *source == from.operation_id) {
        let target = endpoints
            .iter()
            .find(|endpoint| endpoint.operation_id == *to)
            .ok_or_else(|| format!("a link from {} names no operation {to}", from.operation_id))?;
        let mut parameters = Map::new();
        let mut body = Map::new();
        for (name, pointer) in *bindings {
            let parameter = target.parameters.iter().find(|p| p.name == *name);
            let parameter = parameter.ok_or_else(|| format!("{to} takes no parameter {name}"))?;
            if !pointer.strip_prefix("/data").is_some_and(|inner| resolves(&from.data, inner)) {
                return Err(format!("{pointer} is not in the answer of {}", from.operation_id));
            }
            let expression = json!(format!("$response.body#{pointer}"));
            match parameter.location {
                Location::Body => body.insert(name.to_string(), expression),
                Location::Path => parameters.insert(format!("path.{name}"), expression),
                _ => parameters.insert(format!("query.{name}"), expression),
            };
        }
        let mut link = json!({ "operationId": to });
        if !parameters.is_empty() {
            link["parameters"] = Value::Object(parameters);
        }
        if !body.is_empty() {
            link["requestBody"] = Value::Object(body);
        }
        let mut name = to.to_string();
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        links.insert(name, link);
    }
    Ok(links)
}

/// Whether the JSON pointer runs through the shape (`0` steps into a list).
fn resolves(shape: &Shape, pointer: &str) -> bool {
    let Some(rest) = pointer.strip_prefix('/') else { return pointer.is_empty() };
    let (step, rest) = rest.split_once('/').map_or((rest, ""), |(step, rest)| (step, rest));
    let rest = if rest.is_empty() { String::new() } else { format!("/{rest}") };
    match &shape.kind {
        ShapeKind::List(item) => step == "0" && resolves(item, &rest),
        ShapeKind::Object(members) => members.iter().any(|(key, member)| key == step && resolves(member, &rest)),
        _ => false,
    }
}
