//! Omitted variables read as the GraphQL spec reads them: an argument given a nullable variable
//! without a default that the request leaves out is an argument not given, so the argument's own
//! default applies (`customers(page: $page)` with `$page: Int` omitted is the first page).
//! async-graphql reads such a variable as `null` instead, and `null` for `page: Int! = 1` failed
//! inside execution, where it surfaced as an internal error.
//!
//! The choice: the arguments naming such a variable are dropped from the parsed document once,
//! before it runs, so every argument of every field (each list's `page` and `pageSize` among them)
//! is covered without a resolver knowing. A variable inside a list or an object is left as it is.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Request, ServerResult};
use std::collections::HashSet;

/// Drops the arguments that name a variable the request omits (nullable, no default) from the
/// request's parsed document; a request that omits none is left untouched.
pub(super) fn drop_omitted_arguments(request: &mut Request) -> ServerResult<()> {
    // Held apart while the parsed document is borrowed (every request comes through here: no copy).
    let variables = std::mem::take(&mut request.variables);
    let operation_name = request.operation_name.take();
    let omitted =
        request.parsed_query().map(|document| omitted_variables(document, &variables, operation_name.as_deref()));
    request.variables = variables;
    request.operation_name = operation_name;
    let omitted = omitted?;
    if omitted.is_empty() {
        return Ok(());
    }
    let mut document: ExecutableDocument = request.parsed_query()?.clone();
    drop_arguments(&mut document, &omitted, request.operation_name.as_deref());
    request.set_parsed_query(document);
    Ok(())
}

/// `document` without the arguments that name a variable `request` omits, as the request's
/// parsed document: the server's own documents, parsed once, are copied once a request here.
pub(super) fn set_document_without_omitted(request: &mut Request, document: &ExecutableDocument) {
    let omitted = omitted_variables(document, &request.variables, request.operation_name.as_deref());
    let mut document = document.clone();
    if !omitted.is_empty() {
        drop_arguments(&mut document, &omitted, request.operation_name.as_deref());
    }
    request.set_parsed_query(document);
}

/// Drops the arguments naming one of the `omitted` variables from the operation that runs and
/// every fragment, and the definitions of the variables no argument names any more.
fn drop_arguments(document: &mut ExecutableDocument, omitted: &HashSet<String>, operation_name: Option<&str>) {
    let mut still_used = Vec::new();
    for fragment in document.fragments.values_mut() {
        drop_in(&mut fragment.node.selection_set.node, omitted, &mut still_used);
    }
    let operation = match &mut document.operations {
        DocumentOperations::Single(operation) => Some(operation),
        DocumentOperations::Multiple(operations) => {
            operation_name.and_then(|name| operations.get_mut(&Name::new(name)))
        }
    };
    if let Some(operation) = operation {
        drop_in(&mut operation.node.selection_set.node, omitted, &mut still_used);
        // Validation refuses a variable defined and not used: the definitions of those whose
        // every use was dropped go too.
        operation.node.variable_definitions.retain(|definition| {
            let text = format!("${}", definition.node.name.node);
            !omitted.contains(&text) || names(&still_used, &text)
        });
    }
}

/// The variables of the operation that runs which the request omits (nullable, no default), each
/// as its text form, `$page`.
fn omitted_variables(
    document: &ExecutableDocument,
    variables: &async_graphql::Variables,
    operation_name: Option<&str>,
) -> HashSet<String> {
    let Some(operation) = chosen_operation(&document.operations, operation_name) else { return HashSet::new() };
    operation
        .node
        .variable_definitions
        .iter()
        .map(|definition| &definition.node)
        .filter(|definition| definition.var_type.node.nullable && definition.default_value.is_none())
        .filter(|definition| !variables.contains_key(&definition.name.node))
        .map(|definition| format!("${}", definition.name.node))
        .collect()
}

/// The operation that runs: the only one, or the one named.
fn chosen_operation<'a>(
    operations: &'a DocumentOperations,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match operations {
        DocumentOperations::Single(operation) => Some(operation),
        DocumentOperations::Multiple(operations) => operations.get(&Name::new(name?)),
    }
}

/// Drops the arguments of the fields in `selection_set` whose value is a variable of `omitted`
/// (each held as its text form, `$page`: async-graphql does not re-export the parser's value type
/// to match its `Variable` case on, and a variable's text is exactly that), and notes in
/// `still_used` the texts of the arguments and directives left.
fn drop_in(selection_set: &mut SelectionSet, omitted: &HashSet<String>, still_used: &mut Vec<String>) {
    for selection in &mut selection_set.items {
        match &mut selection.node {
            Selection::Field(field) => {
                field.node.arguments.retain(|(_, value)| !omitted.contains(&value.node.to_string()));
                let arguments = field.node.arguments.iter().map(|(_, value)| value);
                let directives = field.node.directives.iter().flat_map(|d| d.node.arguments.iter().map(|(_, v)| v));
                for value in arguments.chain(directives) {
                    note_variables(&value.node, still_used);
                }
                drop_in(&mut field.node.selection_set.node, omitted, still_used);
            }
            Selection::InlineFragment(fragment) => {
                for directive in &fragment.node.directives {
                    for (_, value) in &directive.node.arguments {
                        note_variables(&value.node, still_used);
                    }
                }
                drop_in(&mut fragment.node.selection_set.node, omitted, still_used);
            }
            Selection::FragmentSpread(spread) => {
                for directive in &spread.node.directives {
                    for (_, value) in &directive.node.arguments {
                        note_variables(&value.node, still_used);
                    }
                }
            }
        }
    }
}

/// Notes the text of a value left in the document (a variable inside it reads `$name`).
fn note_variables(value: &impl std::fmt::Display, left: &mut Vec<String>) {
    left.push(value.to_string());
}

/// Whether one of the texts names the variable `$name` (not merely a longer one, `$pageSize` for
/// `$page`).
fn names(texts: &[String], variable: &str) -> bool {
    texts.iter().any(|text| {
        text.match_indices(variable)
            .any(|(at, _)| !text[at + variable.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
    })
}
