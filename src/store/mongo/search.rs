//! The search port on MongoDB: a `search` field of n-grams and folded texts on every indexed
//! document, a multikey index over the grams, and the literal match as a regex of the folded query.
//!
//! MongoDB's text index splits words by Unicode rules, which leave a Chinese sentence one word, so
//! it cannot find 商贸 inside 杭州云仓商贸有限公司. Instead each customer, ticket, reply and chat
//! message carries `search: { grams, ...folded texts }`, written by the same insert or update that
//! writes the document (inside its transaction where it has one), with `grams` the distinct
//! unigrams and bigrams of its texts ([`index_grams`]). A query is looked up by ONE of its grams
//! (`serviceProviderId, search.grams, <order>`: an equality on the multikey field, so the index
//! gives the list's order and no sort is needed), and the folded texts are matched against the
//! folded query as an escaped regex in the same filter, so the count (up to the search's limit) and
//! the pages are exact.
//!
//! Ticket replies: their texts live on their own `ticketHistory` documents (with the provider and
//! a `search` field), not on the ticket, which would bring back the 16 MB limit the history was
//! moved out for; the ticket's `search.grams` is the union of its title's, content's and replies'
//! grams (only ever added to: none of these texts changes). A query of one or two characters is its
//! own only gram, so the ticket's grams alone answer it exactly; a longer one matches the ticket's
//! own texts, or its id is among those whose replies match (one indexed read of `ticketHistory`).
//!
//! Across kinds: one query per kind, each reading the first `page × size` of its kind, merged by
//! time (newest first, ties by id); the totals are summed.
//!
//! Documents written before search existed get their `search` field at start-up
//! ([`super::search_backfill`]).

use super::customers::literal_pattern;
use super::documents::Fields;
use super::ticket_history::{embedded_history, history_from};
use super::{collect, MongoStore};
use crate::domain::search::{fold, index_grams, phone_tail, SEARCH_HIT_LIMIT};
use crate::domain::{
    Customer, HistoryAction, HistoryEntry, Id, Page, PageRequest, SearchHit, SearchKind, SearchQuery, Ticket, Timestamp,
};
use crate::error::AppResult;
use crate::store::SearchStore;
use async_trait::async_trait;
use mongodb::bson::{doc, Document};
use mongodb::Collection;
use std::collections::{HashMap, HashSet};

/// The distinct grams of several texts, in first-seen order.
pub(super) fn grams_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    texts.into_iter().flat_map(index_grams).filter(|gram| seen.insert(gram.clone())).collect()
}

pub(super) fn is_reply(entry: &HistoryEntry) -> bool {
    entry.action == HistoryAction::Reply.as_str()
}

/// A customer's `search` field: name, contact person and the phone's last digits.
pub(super) fn customer_search(c: &Customer) -> Document {
    customer_search_of(&c.name, &c.contact_person, &c.phone)
}

pub(super) fn customer_search_of(name: &str, contact_person: &str, phone: &str) -> Document {
    let tail = phone_tail(phone);
    doc! {
        "grams": grams_of([name, contact_person, tail.as_str()]),
        "name": fold(name),
        "contactPerson": fold(contact_person),
        "phoneTail": tail,
    }
}

/// A new ticket's `search` field: the grams of its title, content and the replies it starts with
/// (whose texts go to their own `ticketHistory` documents), and its own two texts.
pub(super) fn ticket_search(t: &Ticket) -> Document {
    let replies = t.history.iter().filter(|entry| is_reply(entry)).map(|entry| entry.content.as_str());
    doc! {
        "grams": grams_of([t.title.as_str(), t.content.as_str()].into_iter().chain(replies)),
        "texts": [fold(&t.title), fold(&t.content)],
    }
}

/// What a ticket change adds to the ticket's `search.grams`: the grams of the replies it appends
/// (`None` without replies).
pub(super) fn appended_reply_grams(entries: &[HistoryEntry]) -> Option<Document> {
    let grams = grams_of(entries.iter().filter(|entry| is_reply(entry)).map(|entry| entry.content.as_str()));
    (!grams.is_empty()).then(|| doc! { "$addToSet": { "search.grams": { "$each": grams } } })
}

/// What a history entry's document carries for search: for a reply, its provider and `search`
/// field; nothing for other entries.
pub(super) fn reply_search_fields(provider: &Id, entry: &HistoryEntry) -> Option<Document> {
    is_reply(entry).then(|| {
        doc! {
            "serviceProviderId": provider.as_str(),
            "search": text_search(&entry.content),
        }
    })
}

/// The `search` field of a document of one text: a chat message, a reply.
pub(super) fn text_search(content: &str) -> Document {
    doc! { "grams": grams_of([content]), "content": fold(content) }
}

/// The gram a query is looked up by in the index: of its bigrams, the first with the most
/// characters outside ASCII (a Chinese pair is rarer than a pair of Latin letters or digits); every
/// other gram is implied by the literal match that follows. `None` for an empty query.
fn lead_gram(query: &SearchQuery) -> Option<String> {
    let grams = query.grams();
    let rarity = |gram: &String| gram.chars().filter(|c| !c.is_ascii()).count();
    let best = grams.iter().map(rarity).max()?;
    grams.into_iter().find(|gram| rarity(gram) == best)
}

/// The folded query as a pattern that matches it literally, anywhere in a folded text.
fn literal(query: &SearchQuery) -> Document {
    doc! { "$regex": literal_pattern(query.as_str()) }
}

/// The documents holding the query's lead gram, narrowed to those with a field (any one of
/// `fields`) that contains the query.
fn gram_and_literal(query: &SearchQuery, fields: &[&str]) -> Document {
    let mut filter = Document::new();
    if let Some(gram) = lead_gram(query) {
        filter.insert("search.grams", gram);
    }
    let literal = literal(query);
    let mut any: Vec<Document> = fields.iter().map(|field| doc! { *field: literal.clone() }).collect();
    if any.len() == 1 {
        filter.extend(any.remove(0));
    } else {
        filter.insert("$or", any);
    }
    filter
}

/// [`gram_and_literal`] among the provider's documents.
fn provider_gram_and_literal(provider: &Id, query: &SearchQuery, fields: &[&str]) -> Document {
    let mut filter = doc! { "serviceProviderId": provider.as_str() };
    filter.extend(gram_and_literal(query, fields));
    filter
}

/// The customer list's keyword filter (name or contact person), served by the search index.
pub(super) fn customer_keyword(keyword: &str) -> Document {
    let query = SearchQuery::new(keyword);
    if query.as_str().is_empty() {
        return Document::new();
    }
    gram_and_literal(&query, &["search.name", "search.contactPerson"])
}

/// The customers a search finds; their order is [`customer_search_order`].
pub(super) fn customer_search_query(provider: &Id, query: &SearchQuery) -> Document {
    provider_gram_and_literal(provider, query, &["search.name", "search.contactPerson", "search.phoneTail"])
}

pub(super) fn customer_search_order() -> Document {
    doc! { "updatedAt": -1, "id": 1 }
}

/// Whether a query is answered by the ticket's grams alone: one or two characters are their own
/// only gram.
fn grams_alone_decide(query: &SearchQuery) -> bool {
    query.as_str().chars().count() <= 2
}

/// The tickets a search finds, given the ids of those with a matching reply (used for queries
/// of three characters or more only); their order is [`ticket_search_order`].
pub(super) fn ticket_search_query(provider: &Id, query: &SearchQuery, replied: &[String]) -> Document {
    let mut filter = doc! { "serviceProviderId": provider.as_str() };
    if let Some(gram) = lead_gram(query) {
        filter.insert("search.grams", gram);
    }
    if !grams_alone_decide(query) {
        filter.insert("$or", vec![doc! { "search.texts": literal(query) }, doc! { "id": { "$in": replied } }]);
    }
    filter
}

pub(super) fn ticket_search_order() -> Document {
    doc! { "updatedAt": -1, "id": 1 }
}

/// The provider's replies that contain the query.
pub(super) fn reply_search_query(provider: &Id, query: &SearchQuery) -> Document {
    provider_gram_and_literal(provider, query, &["search.content"])
}

/// The chat messages a search finds; their order is [`chat_search_order`].
pub(super) fn chat_search_query(provider: &Id, query: &SearchQuery) -> Document {
    provider_gram_and_literal(provider, query, &["search.content"])
}

pub(super) fn chat_search_order() -> Document {
    doc! { "timestamp": -1, "id": 1 }
}

/// A hit before its matched text is known: what the merge of the kinds orders by, and the document.
struct Candidate {
    kind: SearchKind,
    id: String,
    customer_id: String,
    at: Timestamp,
    document: Document,
}

impl MongoStore {
    /// The first `limit` documents of `filter` in `sort`, projected, and their count up to one
    /// past [`SEARCH_HIT_LIMIT`].
    async fn search_kind(
        &self,
        collection: &Collection<Document>,
        filter: Document,
        sort: Document,
        projection: Document,
        limit: i64,
    ) -> mongodb::error::Result<(Vec<Document>, u64)> {
        let count = collection.count_documents(filter.clone()).limit(SEARCH_HIT_LIMIT + 1);
        let find =
            async { collect(collection.find(filter).sort(sort).projection(projection).limit(limit).await?).await };
        let (total, documents) = tokio::try_join!(count, find)?;
        Ok((documents, total))
    }

    async fn ticket_candidates(
        &self,
        provider: &Id,
        query: &SearchQuery,
        limit: i64,
    ) -> mongodb::error::Result<(Vec<Document>, u64)> {
        let mut replied = Vec::new();
        if !grams_alone_decide(query) {
            let replies = self
                .ticket_history
                .find(reply_search_query(provider, query))
                .projection(doc! { "_id": 0, "ticketId": 1 })
                .limit(i64::try_from(SEARCH_HIT_LIMIT + 1).unwrap_or(i64::MAX))
                .await?;
            let mut seen = HashSet::new();
            for reply in collect(replies).await? {
                if let Ok(ticket) = reply.get_str("ticketId") {
                    if seen.insert(ticket.to_owned()) {
                        replied.push(ticket.to_owned());
                    }
                }
            }
        }
        let projection = doc! { "_id": 0, "id": 1, "customerId": 1, "title": 1, "content": 1, "updatedAt": 1, "processingHistory": 1 };
        let filter = ticket_search_query(provider, query, &replied);
        self.search_kind(&self.tickets, filter, ticket_search_order(), projection, limit).await
    }

    /// The matched text of each hit of the page, in the order each kind lists its texts.
    async fn matched_texts(&self, query: &SearchQuery, page: &[Candidate]) -> AppResult<Vec<String>> {
        fn fields(c: &Candidate) -> Fields<'_> {
            Fields::new(&c.document, c.kind.as_str())
        }
        let found = |texts: Vec<String>| texts.into_iter().find(|text| query.matches(text));
        let needs_replies: Vec<Id> = page
            .iter()
            .filter(|c| c.kind == SearchKind::Ticket)
            .filter(|c| {
                let f = fields(c);
                found(vec![f.text("title").unwrap_or_default(), f.text("content").unwrap_or_default()]).is_none()
            })
            .map(|c| Id::from_stored(c.id.clone()))
            .collect();
        let mut histories =
            if needs_replies.is_empty() { HashMap::new() } else { self.op(self.histories(&needs_replies)).await? };
        let mut texts = Vec::with_capacity(page.len());
        for candidate in page {
            let f = fields(candidate);
            let text = match candidate.kind {
                SearchKind::Customer => {
                    let tail = phone_tail(&f.text("phone").unwrap_or_default());
                    found(vec![f.text("name").unwrap_or_default(), f.text("contactPerson").unwrap_or_default(), tail])
                }
                SearchKind::Ticket => {
                    let own = vec![f.text("title").unwrap_or_default(), f.text("content").unwrap_or_default()];
                    let embedded = embedded_history(&candidate.document).unwrap_or_default();
                    let stored = histories.remove(&candidate.id).unwrap_or_default();
                    let stored = stored.iter().filter_map(|entry| history_from(entry).ok());
                    let replies = embedded.into_iter().chain(stored).filter(is_reply).map(|entry| entry.content);
                    found(own.into_iter().chain(replies).collect())
                }
                SearchKind::Chat => found(vec![f.text("content").unwrap_or_default()]),
            };
            texts.push(text.unwrap_or_default());
        }
        Ok(texts)
    }
}

fn candidates(kind: SearchKind, documents: Vec<Document>) -> AppResult<Vec<Candidate>> {
    let (customer_field, at_field) = match kind {
        SearchKind::Customer => ("id", "updatedAt"),
        SearchKind::Ticket => ("customerId", "updatedAt"),
        SearchKind::Chat => ("customerId", "timestamp"),
    };
    documents
        .into_iter()
        .map(|document| {
            let f = Fields::new(&document, kind.as_str());
            let read = (f.text("id"), f.text(customer_field), f.time(at_field));
            match read {
                (Ok(id), Ok(customer_id), Ok(at)) => Ok(Candidate { kind, id, customer_id, at, document }),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(super::failures::bad_document(e)),
            }
        })
        .collect()
}

#[async_trait]
impl SearchStore for MongoStore {
    async fn search(
        &self,
        provider: &Id,
        query: &SearchQuery,
        kinds: &[SearchKind],
        page: PageRequest,
    ) -> AppResult<Page<SearchHit>> {
        let wanted = |kind| kinds.contains(&kind);
        let shown = (page.offset() + u64::from(page.page_size())).min(SEARCH_HIT_LIMIT);
        let limit = i64::try_from(shown).unwrap_or(i64::MAX);
        let none = || async { Ok((Vec::new(), 0)) };
        let customers = async {
            if !wanted(SearchKind::Customer) {
                return none().await;
            }
            let projection = doc! { "_id": 0, "id": 1, "name": 1, "contactPerson": 1, "phone": 1, "updatedAt": 1 };
            let filter = customer_search_query(provider, query);
            self.search_kind(&self.customers, filter, customer_search_order(), projection, limit).await
        };
        let tickets = async {
            if !wanted(SearchKind::Ticket) {
                return none().await;
            }
            self.ticket_candidates(provider, query, limit).await
        };
        let chat = async {
            if !wanted(SearchKind::Chat) {
                return none().await;
            }
            let projection = doc! { "_id": 0, "id": 1, "customerId": 1, "content": 1, "timestamp": 1 };
            let filter = chat_search_query(provider, query);
            self.search_kind(&self.chat, filter, chat_search_order(), projection, limit).await
        };
        let ((customers, customer_total), (tickets, ticket_total), (messages, chat_total)) =
            self.op(async { tokio::try_join!(customers, tickets, chat) }).await?;
        let mut merged = candidates(SearchKind::Customer, customers)?;
        merged.extend(candidates(SearchKind::Ticket, tickets)?);
        merged.extend(candidates(SearchKind::Chat, messages)?);
        merged.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
        let on_page: Vec<Candidate> = merged
            .into_iter()
            .take(SEARCH_HIT_LIMIT as usize)
            .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
            .take(page.page_size() as usize)
            .collect();
        let texts = self.matched_texts(query, &on_page).await?;
        let items = on_page
            .into_iter()
            .zip(texts)
            .map(|(c, matched_text)| SearchHit {
                kind: c.kind,
                id: Id::from_stored(c.id),
                customer_id: Id::from_stored(c.customer_id),
                matched_text,
                at: c.at,
            })
            .collect();
        Ok(Page { items, total: customer_total + ticket_total + chat_total, request: page })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_looked_up_by_its_most_chinese_gram_and_matched_literally() {
        assert_eq!(lead_gram(&SearchQuery::new("ab商贸")).as_deref(), Some("商贸"));
        assert_eq!(lead_gram(&SearchQuery::new("库")).as_deref(), Some("库"));
        assert_eq!(lead_gram(&SearchQuery::new("")), None);
        let filter = chat_search_query(&Id::from_stored("p".into()), &SearchQuery::new("A.*"));
        assert_eq!(
            filter,
            doc! { "serviceProviderId": "p", "search.grams": "a.", "search.content": { "$regex": "a\\.\\*" } }
        );
    }

    #[test]
    fn the_grams_of_several_texts_are_distinct() {
        assert_eq!(grams_of(["商贸", "贸易"]), vec!["商", "贸", "商贸", "易", "贸易"]);
    }
}
