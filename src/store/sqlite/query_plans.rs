//! Every read the adapter's lists, lookups and counts make, as the very SQL text the adapter runs
//! (each area builds it with the same function it uses itself), with representative parameters,
//! for the query-plan check in `tests/contract/query_plans.rs` to run `EXPLAIN QUERY PLAN` on.
//!
//! A list whose statement is built from a filter appears once for every combination of the
//! filter's fields, so a shape the port accepts cannot go unexplained.

use super::audit::audit_list;
use super::canned_replies::{canned_reply_list, canned_reply_sql, CANNED_REPLY_COUNT_SQL};
use super::chat::{chat_message_sql, chat_messages_anywhere_sql, chat_window_sql, conversation_list, CHAT_CURSOR_SQL};
use super::conversations::{conversation_page_sql, conversation_sql, INBOX_TOTALS_SQL, UNREAD_FROM_CUSTOMER_SQL};
use super::customers::{customer_list, customer_list_in_order, customers_anywhere_sql, customers_by_ids_sql};
use super::events::{events_after_sql, LATEST_CURSOR_SQL};
use super::notifications::{notification_list, notification_sql, unread_list};
use super::providers::{all_providers_sql, provider_credentials_sql, providers_by_ids_sql, WECHAT_OPENID_SQL};
use super::search::{
    match_expression, reply_match_expression, ticket_replies_expression, Fields, FIRST_MATCHING_REPLY_SQL, HIT_SQL,
    MATCH_COUNT_SQL, OWN_KEYS_SQL, REPLIED_TICKET_KEYS_SQL,
};
use super::sql::{page_values, text, ListQuery};
use super::ticket_sla::{owed_alerts_sql, ticket_anywhere_sql};
use super::tickets::{histories_sql, ticket_list, ticket_sql};
use crate::domain::{ConversationFilter, Id, PageRequest, SearchKind, SearchQuery};
use rusqlite::types::Value;

pub use crate::store::read_shapes::ReadShape;
use crate::store::read_shapes::{
    customer_filter, fields, has, notification_filter, sla_ticket_filters, subsets, ticket_filter,
};

/// One statement the adapter runs, ready to explain.
#[derive(Debug, Clone)]
pub struct PlannedRead {
    /// Which port call runs it and, for a filtered list, which filter fields are set.
    pub name: String,
    pub shape: ReadShape,
    pub sql: String,
    pub params: Vec<Value>,
    /// The filter fields set on a list, beyond the provider every read is scoped to.
    pub filters: Vec<&'static str>,
}

/// Every list, lookup and count statement of the adapter's reads.
pub fn planned_reads() -> Vec<PlannedRead> {
    let provider = Id::from_stored("p-plan".to_owned());
    let ids = || vec![text("a"), text("b"), text("c")];
    let with_provider = |rest: Vec<Value>| [vec![text(provider.as_str())], rest].concat();
    let mut reads = Vec::new();

    for set in subsets(3) {
        let filters = fields(set, &["expiry_after", "expiry_until", "keyword"]);
        let filter = customer_filter(set);
        if let Some(in_order) = customer_list_in_order(&provider, &filter) {
            let name = format!("list_customers [{}] in list order", filters.join(", "));
            push_page(&mut reads, name, filters.clone(), &in_order);
        }
        push_list(&mut reads, "list_customers", filters, customer_list(&provider, &filter));
    }
    for set in subsets(3) {
        let filters = fields(set, &["customer_id", "status", "ticket_type"]);
        push_list(&mut reads, "list_tickets", filters, ticket_list(&provider, &ticket_filter(set)));
    }
    for (filters, filter) in sla_ticket_filters() {
        push_list(&mut reads, "list_tickets", filters, ticket_list(&provider, &filter));
    }
    reads.push(PlannedRead {
        name: "tickets_owed_sla_alerts".to_owned(),
        shape: ReadShape::List,
        sql: owed_alerts_sql(),
        params: vec![text("2026-01-29T09:00:00Z"), Value::Integer(200)],
        filters: Vec::new(),
    });
    for set in subsets(2) {
        let filters = fields(set, &["notification_type", "read_status"]);
        push_list(&mut reads, "list_notifications", filters, notification_list(&provider, &notification_filter(set)));
    }
    let customer = Id::from_stored("c-plan".to_owned());
    // The customer is the conversation, not a filter: a page is always of one conversation.
    push_list(&mut reads, "list_chat_messages", Vec::new(), conversation_list(&provider, &customer));
    for (direction, older) in [("before", true), ("after", false)] {
        let cursor = vec![text("2026-01-29T09:00:00Z"), Value::Integer(7), Value::Integer(21)];
        reads.push(PlannedRead {
            name: format!("chat_window [{direction}]"),
            shape: ReadShape::List,
            sql: chat_window_sql(older),
            params: [with_provider(vec![text(customer.as_str())]), cursor].concat(),
            filters: Vec::new(),
        });
    }
    for filter in [ConversationFilter::All, ConversationFilter::Unread, ConversationFilter::Waiting] {
        for after in [false, true] {
            let mut filters = match filter {
                ConversationFilter::All => Vec::new(),
                ConversationFilter::Unread => vec!["unread"],
                ConversationFilter::Waiting => vec!["waiting"],
            };
            let mut params = with_provider(Vec::new());
            if after {
                filters.push("after");
                params.extend([text("2026-01-29T09:00:00Z"), text("c-plan")]);
            }
            params.extend(page_values(PageRequest::new(1, 20).expect("a valid page")));
            reads.push(PlannedRead {
                name: format!("conversations [{}]", filters.join(", ")),
                shape: ReadShape::List,
                sql: conversation_page_sql(filter, after),
                params,
                filters,
            });
        }
    }
    push_list(&mut reads, "canned_replies", Vec::new(), canned_reply_list(&provider));
    push_list(&mut reads, "list_audit_entries", Vec::new(), audit_list(&provider));

    // A search of every kind set, for a query of one character (its unigram) and of more (a phrase):
    // the keys of the rows whose own texts match, newest first (a list: the index gives the order),
    // the tickets whose replies match, then each hit of the page by its key.
    for set in subsets(3).filter(|set| *set != 0) {
        let kinds: Vec<SearchKind> =
            SearchKind::ALL.into_iter().enumerate().filter(|(i, _)| has(set, *i as u32)).map(|(_, k)| k).collect();
        for query in ["库", "商贸有限"] {
            let expression = match_expression(&provider, &kinds, &SearchQuery::new(query), Fields::All);
            let filters = fields(set, &["customer", "ticket", "chat"]);
            reads.push(PlannedRead {
                name: format!("search [{}] {query}", filters.join(", ")),
                shape: ReadShape::List,
                sql: OWN_KEYS_SQL.to_owned(),
                params: vec![text(&expression), Value::Integer(1001)],
                filters: filters.clone(),
            });
            reads.push(PlannedRead {
                name: format!("keyword total [{}] {query}", filters.join(", ")),
                shape: ReadShape::Count,
                sql: MATCH_COUNT_SQL.to_owned(),
                params: vec![text(&expression)],
                filters,
            });
        }
    }
    for query in ["库", "商贸有限"] {
        let query = SearchQuery::new(query);
        let searches = [
            (
                "search replied tickets",
                REPLIED_TICKET_KEYS_SQL,
                vec![text(&reply_match_expression(&provider, &query)), Value::Integer(1001)],
            ),
            (
                "search first matching reply",
                FIRST_MATCHING_REPLY_SQL,
                vec![text(&ticket_replies_expression("t", &query))],
            ),
        ];
        reads.extend(searches.into_iter().map(|(name, sql, params)| PlannedRead {
            name: format!("{name} {}", query.as_str()),
            shape: ReadShape::Lookup,
            sql: sql.to_owned(),
            params,
            filters: Vec::new(),
        }));
    }

    let lookups = [
        ("customers_by_ids", customers_by_ids_sql(3), with_provider(ids())),
        ("customers_anywhere", customers_anywhere_sql(3), ids()),
        ("ticket", ticket_sql(), with_provider(vec![text("t")])),
        ("ticket_anywhere", ticket_anywhere_sql(), vec![text("t")]),
        ("ticket histories", histories_sql(3), ids()),
        ("chat_message", chat_message_sql(), with_provider(vec![text("m")])),
        ("chat_messages_anywhere", chat_messages_anywhere_sql(3), ids()),
        ("chat_window (cursor)", CHAT_CURSOR_SQL.to_owned(), with_provider(vec![text("c-plan"), text("m")])),
        ("notification", notification_sql(), with_provider(vec![text("n")])),
        ("canned_reply", canned_reply_sql(), with_provider(vec![text("r")])),
        ("conversation", conversation_sql(), with_provider(vec![text("c-plan")])),
        ("inbox_totals", INBOX_TOTALS_SQL.to_owned(), with_provider(Vec::new())),
        (
            "mark_conversation_read (unread messages)",
            UNREAD_FROM_CUSTOMER_SQL.to_owned(),
            with_provider(vec![text("c-plan")]),
        ),
        ("provider_credentials", provider_credentials_sql(), vec![text("demo-a")]),
        ("providers_by_ids", providers_by_ids_sql(3), ids()),
        ("wechat_openid", WECHAT_OPENID_SQL.to_owned(), with_provider(Vec::new())),
        ("events_after", events_after_sql(), with_provider(vec![Value::Integer(0), Value::Integer(100)])),
        ("search hit", HIT_SQL.to_owned(), vec![Value::Integer(1)]),
    ];
    reads.extend(lookups.into_iter().map(|(name, sql, params)| PlannedRead {
        name: name.to_owned(),
        shape: ReadShape::Lookup,
        sql,
        params,
        filters: Vec::new(),
    }));
    reads.push(PlannedRead {
        name: "all_providers".to_owned(),
        shape: ReadShape::List,
        sql: all_providers_sql(),
        params: Vec::new(),
        filters: Vec::new(),
    });

    let counts = [
        ("count_canned_replies", CANNED_REPLY_COUNT_SQL, with_provider(Vec::new())),
        ("latest_cursor", LATEST_CURSOR_SQL, with_provider(Vec::new())),
    ];
    reads.extend(counts.into_iter().map(|(name, sql, params)| PlannedRead {
        name: name.to_owned(),
        shape: ReadShape::Count,
        sql: sql.to_owned(),
        params,
        filters: Vec::new(),
    }));
    let unread = unread_list(&provider);
    reads.push(PlannedRead {
        name: "unread_count".to_owned(),
        shape: ReadShape::Count,
        sql: unread.count_sql(),
        params: unread.count_values(),
        filters: Vec::new(),
    });
    reads
}

/// A list's two statements, its count and its page, named `list_tickets [status]` and
/// `list_tickets [status] (count)` after the filter fields set.
fn push_list(reads: &mut Vec<PlannedRead>, port_call: &str, filters: Vec<&'static str>, list: ListQuery) {
    let name = if filters.is_empty() { port_call.to_owned() } else { format!("{port_call} [{}]", filters.join(", ")) };
    reads.push(PlannedRead {
        name: format!("{name} (count)"),
        shape: ReadShape::Count,
        sql: list.count_sql(),
        params: list.count_values(),
        filters: filters.clone(),
    });
    push_page(reads, name, filters, &list);
}

/// A list's page statement alone.
fn push_page(reads: &mut Vec<PlannedRead>, name: String, filters: Vec<&'static str>, list: &ListQuery) {
    let page = PageRequest::new(3, 20).expect("a valid page");
    reads.push(PlannedRead {
        name,
        shape: ReadShape::List,
        sql: list.list_sql(),
        params: [list.conditions.values.clone(), page_values(page).to_vec()].concat(),
        filters,
    });
}
