//! The search port on SQLite: an FTS5 index of character n-grams, written in the transaction of
//! the row it indexes.
//!
//! FTS5's tokenizers split words, and Chinese has none, so the index is fed tokens it cannot
//! split: every gram of `domain::search` encoded as ASCII (`b` then the two characters' code points
//! in hex for a bigram, `u` then one for a unigram). A text's bigrams are written in order, so a
//! query of two or more characters is an FTS5 *phrase* of its bigram tokens, which matches exactly
//! where the query is a literal substring (a token `x` between two texts keeps a phrase from
//! running across them); a query of one character is its unigram token. The user's query never
//! reaches the MATCH syntax as text: it is re-encoded token by token, so `"`, `*`, `NEAR(` or
//! `' OR 1=1` are only characters to find.
//!
//! The index is contentless; `search_docs` holds what a hit shows (kind, ids, time, the texts) under
//! the same rowid, the *key*: the hit's time in milliseconds times 2^20 plus a sequence within that
//! millisecond. So `ORDER BY rowid DESC` is newest first straight from the index, a page stops as
//! soon as it is full, and an update (a reply, a SaaS sync) deletes the old entry and writes a new
//! one under its new time. Ties within one millisecond come in write order from the index and are
//! put in id order within a page. Provider and kind are tokens of a `scope` column, so another
//! provider's rows are not candidates at all. A store written before search builds its index when
//! it opens ([`build_missing_index`]).

use super::rows::{parse_time, time_text};
use super::sql::page_values;
use super::SqliteStore;
use crate::domain::search::{fold, phone_tail};
use crate::domain::{Id, Page, PageRequest, SearchHit, SearchKind, SearchQuery, Timestamp};
use crate::error::AppResult;
use crate::store::SearchStore;
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

/// The sequence numbers one millisecond of the key holds.
const KEY_SEQUENCE_BITS: u32 = 20;

/// The columns of a search hit, read from `search_docs` joined to the index.
const HIT_COLUMNS: &str = "search_docs.kind, search_docs.entity_id, search_docs.customer_id, search_docs.at, \
     search_docs.texts";

/// Everything a search reads: the index joined to what its rows show.
pub(super) const SEARCH_TABLES: &str = "search_index JOIN search_docs ON search_docs.key = search_index.rowid";

/// A page of hits; the parameters are the MATCH expression, then [`page_values`].
pub(super) fn search_sql() -> String {
    format!(
        "SELECT {HIT_COLUMNS} FROM {SEARCH_TABLES} WHERE search_index MATCH ? \
         ORDER BY search_index.rowid DESC LIMIT ? OFFSET ?"
    )
}

/// The total of a search; the parameter is the MATCH expression.
pub(super) const SEARCH_COUNT_SQL: &str = "SELECT COUNT(*) FROM search_index WHERE search_index MATCH ?";

/// Which texts of a row a query looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fields {
    /// Every indexed text, the phone number's last digits included.
    All,
    /// Only the texts proper (a customer's name and contact person): the customer list's keyword.
    Texts,
}

/// The MATCH expression of a query over a provider's rows of the given kinds.
pub(super) fn match_expression(provider: &Id, kinds: &[SearchKind], query: &SearchQuery, fields: Fields) -> String {
    let scope = if SearchKind::ALL.iter().all(|kind| kinds.contains(kind)) {
        provider_token(provider)
    } else {
        let tokens: Vec<String> = kinds.iter().map(|kind| kind_token(provider, *kind)).collect();
        format!("({})", tokens.join(" OR "))
    };
    let chars: Vec<char> = query.as_str().chars().collect();
    let (columns, grams) = if chars.len() == 1 {
        let columns = if fields == Fields::All { "text_unigrams tail_unigrams" } else { "text_unigrams" };
        (columns, unigram_token(chars[0]))
    } else {
        let columns = if fields == Fields::All { "text_bigrams tail_bigrams" } else { "text_bigrams" };
        let phrase: Vec<String> = chars.windows(2).map(|pair| bigram_token(pair[0], pair[1])).collect();
        (columns, format!("\"{}\"", phrase.join(" ")))
    };
    format!("{{scope}} : {scope} AND {{{columns}}} : {grams}")
}

fn hex(value: &str) -> String {
    value.bytes().map(|b| format!("{b:02x}")).collect()
}

fn provider_token(provider: &Id) -> String {
    format!("p{}", hex(provider.as_str()))
}

fn kind_token(provider: &Id, kind: SearchKind) -> String {
    format!("k{}z{}", hex(provider.as_str()), kind.as_str())
}

fn unigram_token(c: char) -> String {
    format!("u{:06x}", c as u32)
}

fn bigram_token(a: char, b: char) -> String {
    format!("b{:06x}{:06x}", a as u32, b as u32)
}

/// The bigram tokens of texts, each text's in order, with `x` between texts; and their unigrams.
fn gram_columns(texts: &[String]) -> (String, String) {
    let mut bigrams = Vec::new();
    let mut unigrams = Vec::new();
    for text in texts {
        let chars: Vec<char> = fold(text).chars().collect();
        if !bigrams.is_empty() {
            bigrams.push("x".to_owned());
        }
        bigrams.extend(chars.windows(2).map(|pair| bigram_token(pair[0], pair[1])));
        unigrams.extend(chars.iter().map(|c| unigram_token(*c)));
    }
    (bigrams.join(" "), unigrams.join(" "))
}

/// One row as the index holds it.
struct Document<'a> {
    provider: &'a str,
    kind: SearchKind,
    entity_id: &'a str,
    customer_id: &'a str,
    at: Timestamp,
    /// The texts proper, in the order a hit's `matched_text` is chosen.
    texts: Vec<String>,
    /// A customer's phone number's last digits, matched after the texts.
    tail: Option<String>,
}

/// Writes a row's index entry, replacing the one it had, under a new key for its time.
fn index_document(t: &Connection, document: &Document<'_>) -> rusqlite::Result<()> {
    remove_document(t, document.kind, document.entity_id)?;
    let base = document.at.timestamp_millis().clamp(0, i64::MAX >> KEY_SEQUENCE_BITS) << KEY_SEQUENCE_BITS;
    let last: Option<i64> = t
        .prepare_cached("SELECT MAX(key) FROM search_docs WHERE key >= ? AND key < ?")?
        .query_row([base, base + (1 << KEY_SEQUENCE_BITS)], |row| row.get(0))?;
    let key = last.map_or(base, |last| last + 1);
    let mut shown = document.texts.clone();
    shown.extend(document.tail.clone());
    let texts = serde_json::to_string(&shown).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    t.prepare_cached(
        "INSERT INTO search_docs (key, provider_id, kind, entity_id, customer_id, at, texts) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        key,
        document.provider,
        document.kind.as_str(),
        document.entity_id,
        document.customer_id,
        time_text(&document.at),
        texts
    ])?;
    let provider = Id::from_stored(document.provider.to_owned());
    let scope = format!("{} {}", provider_token(&provider), kind_token(&provider, document.kind));
    let (text_bigrams, text_unigrams) = gram_columns(&document.texts);
    let (tail_bigrams, tail_unigrams) = gram_columns(document.tail.as_slice());
    t.prepare_cached(
        "INSERT INTO search_index (rowid, scope, text_bigrams, text_unigrams, tail_bigrams, tail_unigrams)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![key, scope, text_bigrams, text_unigrams, tail_bigrams, tail_unigrams])?;
    Ok(())
}

fn remove_document(t: &Connection, kind: SearchKind, entity_id: &str) -> rusqlite::Result<()> {
    let old: Option<i64> = t
        .prepare_cached("SELECT key FROM search_docs WHERE kind = ? AND entity_id = ?")?
        .query_row([kind.as_str(), entity_id], |row| row.get(0))
        .optional()?;
    if let Some(old) = old {
        t.prepare_cached("DELETE FROM search_index WHERE rowid = ?")?.execute([old])?;
        t.prepare_cached("DELETE FROM search_docs WHERE key = ?")?.execute([old])?;
    }
    Ok(())
}

/// (Re)indexes a customer as stored: name, contact person, the phone number's last digits.
pub(super) fn index_customer(t: &Connection, id: &str) -> rusqlite::Result<()> {
    let row = t
        .prepare_cached(
            "SELECT service_provider_id, name, contact_person, phone, updated_at FROM customers WHERE id = ?",
        )?
        .query_row([id], |row| {
            Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get::<_, String>(3)?, parse_time(row, 4)?))
        })
        .optional()?;
    let Some((provider, name, contact, phone, at)) = row else { return Ok(()) };
    let document = Document {
        provider: &provider,
        kind: SearchKind::Customer,
        entity_id: id,
        customer_id: id,
        at,
        texts: vec![name, contact],
        tail: Some(phone_tail(&phone)),
    };
    index_document(t, &document)
}

/// The most characters of one ticket's texts indexed: its title, content and replies oldest first
/// until this many. Every change re-indexes the ticket under its new time, so this bounds what a
/// reply costs on a ticket with thousands of long replies; a reply past it is not found.
pub(super) const TICKET_INDEXED_CHARS: usize = 10_000;

/// (Re)indexes a ticket as stored: title, content, then its replies oldest first.
pub(super) fn index_ticket(t: &Connection, id: &str) -> rusqlite::Result<()> {
    let row = t
        .prepare_cached(
            "SELECT service_provider_id, customer_id, title, content, updated_at FROM tickets WHERE id = ?",
        )?
        .query_row([id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get(3)?, parse_time(row, 4)?))
        })
        .optional()?;
    let Some((provider, customer, title, content, at)) = row else { return Ok(()) };
    let mut texts: Vec<String> = vec![title, content];
    let mut indexed: usize = texts.iter().map(|text| text.chars().count()).sum();
    let mut replies = t.prepare_cached(
        "SELECT content FROM ticket_history WHERE ticket_id = ? AND action = 'reply' ORDER BY timestamp, rowid",
    )?;
    let mut rows = replies.query([id])?;
    while let Some(row) = rows.next()? {
        let reply: String = row.get(0)?;
        indexed += reply.chars().count();
        if indexed > TICKET_INDEXED_CHARS {
            break;
        }
        texts.push(reply);
    }
    let document = Document {
        provider: &provider,
        kind: SearchKind::Ticket,
        entity_id: id,
        customer_id: &customer,
        at,
        texts,
        tail: None,
    };
    index_document(t, &document)
}

/// (Re)indexes a chat message as stored: its content.
pub(super) fn index_chat_message(t: &Connection, id: &str) -> rusqlite::Result<()> {
    let row = t
        .prepare_cached("SELECT service_provider_id, customer_id, content, timestamp FROM chat_messages WHERE id = ?")?
        .query_row([id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get(2)?, parse_time(row, 3)?))
        })
        .optional()?;
    let Some((provider, customer, content, at)) = row else { return Ok(()) };
    let document = Document {
        provider: &provider,
        kind: SearchKind::Chat,
        entity_id: id,
        customer_id: &customer,
        at,
        texts: vec![content],
        tail: None,
    };
    index_document(t, &document)
}

/// Builds the index of a store written before search (or whose index was dropped): when the index
/// is empty while rows exist, every customer, ticket and message is indexed, in one transaction.
/// Returns how many rows were indexed (0 when there was nothing to do).
pub(super) fn build_missing_index(connection: &mut Connection) -> rusqlite::Result<u64> {
    let indexed: bool = connection.query_row("SELECT EXISTS (SELECT 1 FROM search_docs)", [], |row| row.get(0))?;
    if indexed {
        return Ok(0);
    }
    let t = connection.transaction()?;
    let mut count = 0;
    for (table, index) in [
        ("customers", index_customer as fn(&Connection, &str) -> rusqlite::Result<()>),
        ("tickets", index_ticket),
        ("chat_messages", index_chat_message),
    ] {
        let ids: Vec<String> = t
            .prepare(&format!("SELECT id FROM {table}"))?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ids {
            index(&t, id)?;
        }
        count += ids.len() as u64;
    }
    t.commit()?;
    Ok(count)
}

fn parse_kind(value: &str) -> Option<SearchKind> {
    SearchKind::ALL.into_iter().find(|kind| kind.as_str() == value)
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search(
        &self,
        provider: &Id,
        query: &SearchQuery,
        kinds: &[SearchKind],
        page: PageRequest,
    ) -> AppResult<Page<SearchHit>> {
        if kinds.is_empty() || query.as_str().is_empty() {
            return Ok(Page { items: Vec::new(), total: 0, request: page });
        }
        let expression = match_expression(provider, kinds, query, Fields::All);
        let query = query.clone();
        let (mut items, total) = self
            .read(move |c| {
                let total: i64 = c.prepare_cached(SEARCH_COUNT_SQL)?.query_row([&expression], |row| row.get(0))?;
                let values = std::iter::once(Value::Text(expression)).chain(page_values(page));
                let mut statement = c.prepare_cached(&search_sql())?;
                let mut rows = statement.query(params_from_iter(values))?;
                let mut hits = Vec::new();
                while let Some(row) = rows.next()? {
                    let kind: String = row.get(0)?;
                    let texts: String = row.get(4)?;
                    let texts: Vec<String> = serde_json::from_str(&texts).unwrap_or_default();
                    let matched_text = texts.iter().find(|text| query.matches(text)).cloned().unwrap_or_default();
                    hits.push(SearchHit {
                        kind: parse_kind(&kind).unwrap_or(SearchKind::Chat),
                        id: Id::from_stored(row.get(1)?),
                        customer_id: Id::from_stored(row.get(2)?),
                        matched_text,
                        at: parse_time(row, 3)?,
                    });
                }
                Ok((hits, total.max(0) as u64))
            })
            .await?;
        // The index orders by time to the millisecond; within one, by id as the port says.
        items.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.as_str().cmp(b.id.as_str())));
        Ok(Page { items, total, request: page })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_becomes_tokens_of_hex_code_points_whatever_characters_it_holds() {
        let provider = Id::from_stored("p1".to_owned());
        let all = SearchKind::ALL;
        let expression = match_expression(&provider, &all, &SearchQuery::new("\"*"), Fields::All);
        assert_eq!(expression, "{scope} : p7031 AND {text_bigrams tail_bigrams} : \"b00002200002a\"");
        let one = match_expression(&provider, &[SearchKind::Chat], &SearchQuery::new("库"), Fields::Texts);
        assert_eq!(one, "{scope} : (k7031zchat) AND {text_unigrams} : u005e93");
    }

    #[test]
    fn texts_are_kept_apart_in_the_bigram_column() {
        let (bigrams, unigrams) = gram_columns(&["ab".to_owned(), "c".to_owned(), "de".to_owned()]);
        assert_eq!(bigrams, "b000061000062 x x b000064000065");
        assert_eq!(unigrams.split(' ').count(), 5);
    }
}
