//! Every query shape the adapter's lists, lookups and counts send, built by the same functions
//! the adapter uses, each naming the index of [`super::indexes`] that serves it: what the
//! query-plan check in `tests/contract/query_plans.rs` holds against the created indexes and the
//! server's `explain`.
//!
//! A list whose filter is built from a port filter appears once for every combination of the
//! filter's fields, and each list's count (the same filter, no order) beside it.

use super::audit::audit_order;
use super::canned_replies::canned_reply_order;
use super::chat::{
    chat_cursor_query, chat_messages_anywhere_query, chat_window_order, chat_window_queries, conversation_order,
    conversation_query,
};
use super::conversations::{self, conversation_page_query, unread_from_customer_query};
use super::customers::{customer_order, customer_query, unresolved_query};
use super::events::{cursor_order, events_after_query};
use super::notifications::{notification_order, notification_query, unread_query};
use super::providers::providers_order;
use super::search::{
    chat_search_order, chat_search_query, customer_search_order, customer_search_query, reply_search_query,
    ticket_search_order, ticket_search_query,
};
use super::ticket_history::{histories_query, history_order};
use super::ticket_sla::{owed_alerts_order, owed_alerts_query};
use super::tickets::{ticket_order, ticket_order_of, ticket_query};
use crate::domain::{ConversationFilter, ConversationKey, Id, SearchQuery};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, DateTime, Document};

pub use crate::store::read_shapes::ReadShape;
use crate::store::read_shapes::{customer_filter, fields, notification_filter, sla_ticket_filters, ticket_filter};

/// One query the adapter sends.
#[derive(Debug, Clone)]
pub struct QueryShape {
    /// Which port call sends it and, for a filtered list, which filter fields are set.
    pub name: String,
    pub shape: ReadShape,
    pub collection: &'static str,
    pub filter: Document,
    /// The order of a list (`None` for a lookup or a count).
    pub sort: Option<Document>,
    /// The name of the index that serves it, as `indexes.rs` creates it.
    pub index: &'static str,
    /// The filter fields set on a list, beyond the provider every query is scoped to.
    pub filters: Vec<&'static str>,
}

/// Every list, lookup and count the adapter's reads send.
pub fn query_shapes() -> Vec<QueryShape> {
    let provider = Id::from_stored("p-plan".to_owned());
    let customer = Id::from_stored("c-plan".to_owned());
    let ids = || vec![Id::from_stored("a".to_owned()), Id::from_stored("b".to_owned())];
    let by_id = || doc! { "serviceProviderId": provider.as_str(), "id": "x" };
    let mut shapes = Vec::new();

    for set in 0..8 {
        let filters = fields(set, &["expiry_after", "expiry_until", "keyword"]);
        let filter = customer_filter(set);
        // The list's order comes from `provider_updated`, or with a keyword from `provider_search`
        // (one gram of it); a range on the expiry date cannot give it.
        let index = if filters.contains(&"keyword") { "provider_search" } else { "provider_updated" };
        let list = List { port_call: "list_customers", collection: "customers", index };
        list.push(&mut shapes, filters, customer_query(&provider, &filter), customer_order());
    }
    for set in 0..8 {
        let filters = fields(set, &["customer_id", "status", "ticket_type"]);
        let index = match filters.first().copied() {
            Some("customer_id") => "provider_customer_updated",
            Some("status") => "provider_status_updated_id",
            Some(_) => "provider_type_updated",
            None => "provider_updated",
        };
        let list = List { port_call: "list_tickets", collection: "tickets", index };
        list.push(&mut shapes, filters, ticket_query(&provider, &ticket_filter(set)), ticket_order());
    }
    let by_sla = List { port_call: "list_tickets", collection: "tickets", index: "provider_sla_breach" };
    for (filters, filter) in sla_ticket_filters() {
        by_sla.push(&mut shapes, filters, ticket_query(&provider, &filter), ticket_order_of(&filter));
    }
    shapes.push(QueryShape {
        name: "tickets_owed_sla_alerts".to_owned(),
        shape: ReadShape::List,
        collection: "tickets",
        filter: owed_alerts_query(&crate::domain::now()),
        sort: Some(owed_alerts_order()),
        index: "sla_alert",
        filters: Vec::new(),
    });
    for set in 0..4 {
        let filters = fields(set, &["notification_type", "read_status"]);
        let index = match filters.first().copied() {
            Some("notification_type") => "provider_type_created",
            Some(_) => "provider_read_created_id",
            None => "provider_created",
        };
        let list = List { port_call: "list_notifications", collection: "notifications", index };
        list.push(&mut shapes, filters, notification_query(&provider, &notification_filter(set)), notification_order());
    }
    let plain_lists = [
        (
            "list_chat_messages",
            "chatMessages",
            "conversation_time",
            conversation_query(&provider, &customer),
            conversation_order(),
        ),
        (
            "canned_replies",
            "cannedReplies",
            "provider_short_code",
            doc! { "serviceProviderId": provider.as_str() },
            canned_reply_order(),
        ),
        (
            "list_audit_entries",
            "auditLog",
            "provider_at",
            doc! { "serviceProviderId": provider.as_str() },
            audit_order(),
        ),
    ];
    for (port_call, collection, index, filter, sort) in plain_lists {
        List { port_call, collection, index }.push(&mut shapes, Vec::new(), filter, sort);
    }

    // A keyset window's two ranges: the rest of the cursor's second, then the seconds beyond it.
    let (at, key) = (Bson::DateTime(DateTime::now()), Bson::ObjectId(ObjectId::new()));
    for (direction, older) in [("before", true), ("after", false)] {
        let [same_second, beyond] = chat_window_queries(&provider, &customer, &at, &key, older);
        for (part, filter) in [("the cursor's second", same_second), ("the seconds beyond", beyond)] {
            shapes.push(QueryShape {
                name: format!("chat_window [{direction}] ({part})"),
                shape: ReadShape::List,
                collection: "chatMessages",
                filter,
                sort: Some(chat_window_order(older)),
                index: "conversation_time",
                filters: Vec::new(),
            });
        }
    }

    // The inbox's lists (their totals are kept, not counted), from the start and after a key.
    let key = ConversationKey { at: chrono::Utc::now(), customer_id: customer.clone() };
    for (filter, index, mut filters) in [
        (ConversationFilter::All, "provider_last", vec![]),
        (ConversationFilter::Unread, "provider_unread_last", vec!["unread"]),
        (ConversationFilter::Waiting, "provider_waiting", vec!["waiting"]),
    ] {
        for after in [None, Some(&key)] {
            if after.is_some() {
                filters.push("after");
            }
            let (query, order) = conversation_page_query(&provider, filter, after);
            shapes.push(QueryShape {
                name: format!("conversations [{}]", filters.join(", ")),
                shape: ReadShape::List,
                collection: "conversations",
                filter: query,
                sort: Some(order),
                index,
                filters: filters.clone(),
            });
        }
    }

    // A search reads each kind by one gram of the query, its count beside it; a ticket search of
    // three or more characters first finds the tickets whose replies match.
    let searches = [
        ("库", ["search customers [1 character]", "search tickets [1 character]", "search chat [1 character]"]),
        ("商贸", ["search customers [2 characters]", "search tickets [2 characters]", "search chat [2 characters]"]),
        (
            "云仓商贸",
            ["search customers [4 characters]", "search tickets [4 characters]", "search chat [4 characters]"],
        ),
    ];
    for (query, [customers, tickets, chat]) in searches {
        let query = SearchQuery::new(query);
        let replied = ["t1".to_owned()];
        let kinds = [
            (customers, "customers", customer_search_query(&provider, &query), customer_search_order()),
            (tickets, "tickets", ticket_search_query(&provider, &query, &replied), ticket_search_order()),
            (chat, "chatMessages", chat_search_query(&provider, &query), chat_search_order()),
        ];
        for (port_call, collection, filter, sort) in kinds {
            List { port_call, collection, index: "provider_search" }.push(&mut shapes, vec!["query"], filter, sort);
        }
        shapes.push(QueryShape {
            name: format!("search ticket replies [{}]", query.as_str()),
            shape: ReadShape::Lookup,
            collection: "ticketHistory",
            filter: reply_search_query(&provider, &query),
            sort: None,
            index: "provider_search",
            filters: vec!["query"],
        });
    }

    let sorted_lookups = [
        ("ticket histories", "ticketHistory", "ticket_order", histories_query(&ids()), history_order()),
        ("events_after", "events", "provider_cursor", events_after_query(&provider, 0), cursor_order()),
        ("all_providers", "providers", "created_username", Document::new(), providers_order()),
    ];
    for (name, collection, index, filter, sort) in sorted_lookups {
        shapes.push(QueryShape {
            name: name.to_owned(),
            shape: ReadShape::List,
            collection,
            filter,
            sort: Some(sort),
            index,
            filters: Vec::new(),
        });
    }
    let lookups = [
        (
            "customers_by_ids",
            "customers",
            "id_unique",
            doc! { "serviceProviderId": provider.as_str(), "id": { "$in": ["a", "b"] } },
        ),
        ("customers_anywhere", "customers", "id_unique", doc! { "id": { "$in": ["a", "b"] } }),
        ("unresolved_counts", "tickets", "provider_customer_status", unresolved_query(Some(&provider), &ids())),
        ("unresolved_counts (any provider)", "tickets", "customer_status", unresolved_query(None, &ids())),
        ("ticket", "tickets", "id_unique", by_id()),
        ("ticket_anywhere", "tickets", "id_unique", doc! { "id": "x" }),
        ("chat_message", "chatMessages", "id_unique", by_id()),
        ("chat_messages_anywhere", "chatMessages", "id_unique", chat_messages_anywhere_query(&ids())),
        (
            "chat_window (cursor)",
            "chatMessages",
            "id_unique",
            chat_cursor_query(&provider, &customer, &Id::from_stored("m".to_owned())),
        ),
        ("notification", "notifications", "id_unique", by_id()),
        ("canned_reply", "cannedReplies", "id_unique", by_id()),
        ("conversation", "conversations", "provider_customer", conversations::conversation_query(&provider, &customer)),
        ("inbox_totals", "inboxTotals", "_id_", doc! { "_id": provider.as_str() }),
        (
            "mark_conversation_read (unread messages)",
            "chatMessages",
            "conversation_unread",
            unread_from_customer_query(&provider, &customer),
        ),
        ("provider_credentials", "providers", "username_unique", doc! { "username": "demo-a" }),
        ("providers_by_ids", "providers", "id_unique", doc! { "id": { "$in": ["a", "b"] } }),
        ("wechat_openid", "wechatBindings", "provider_unique", doc! { "providerId": provider.as_str() }),
        ("latest_cursor", "eventCounters", "_id_", doc! { "_id": provider.as_str() }),
    ];
    for (name, collection, index, filter) in lookups {
        shapes.push(QueryShape {
            name: name.to_owned(),
            shape: ReadShape::Lookup,
            collection,
            filter,
            sort: None,
            index,
            filters: Vec::new(),
        });
    }
    let counts = [
        ("unread_count", "notifications", "provider_read_created_id", unread_query(&provider)),
        (
            "count_canned_replies",
            "cannedReplies",
            "provider_short_code",
            doc! { "serviceProviderId": provider.as_str() },
        ),
    ];
    for (name, collection, index, filter) in counts {
        shapes.push(QueryShape {
            name: name.to_owned(),
            shape: ReadShape::Count,
            collection,
            filter,
            sort: None,
            index,
            filters: Vec::new(),
        });
    }
    shapes
}

/// A list of the port: its page (filter and order) and its count (the filter) use one index.
struct List {
    port_call: &'static str,
    collection: &'static str,
    index: &'static str,
}

impl List {
    fn push(&self, shapes: &mut Vec<QueryShape>, filters: Vec<&'static str>, filter: Document, sort: Document) {
        let name = if filters.is_empty() {
            self.port_call.to_owned()
        } else {
            format!("{} [{}]", self.port_call, filters.join(", "))
        };
        let shape = |name: String, shape, sort| QueryShape {
            name,
            shape,
            collection: self.collection,
            filter: filter.clone(),
            sort,
            index: self.index,
            filters: filters.clone(),
        };
        shapes.push(shape(format!("{name} (count)"), ReadShape::Count, None));
        shapes.push(shape(name, ReadShape::List, Some(sort)));
    }
}
