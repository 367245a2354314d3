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
//! the same rowid, the *key*: the row's time in milliseconds times 2^20 plus a sequence within that
//! millisecond. So `ORDER BY rowid DESC` is newest first straight from the index, and an update (a
//! ticket change, a SaaS sync) deletes the old entry and writes a new one under its new time.
//! Provider and kind are tokens of a `scope` column, so another provider's rows are not candidates
//! at all.
//!
//! A ticket's replies are rows of their own (kind `reply`, pointing at the ticket, scoped by a
//! token of the ticket rather than the provider's), written once in the reply's transaction and
//! never rewritten, so a reply costs what its own text costs and every reply is found however long
//! the ticket. A ticket change re-keys only the ticket's own row (title and content, bounded). A
//! search reads the keys of the rows whose own texts match and the tickets' keys of the replies
//! that match, one per ticket, in key order, up to one past `SEARCH_HIT_LIMIT` (the total is their
//! number: exact up to the limit), so a frequent query costs what a thousand keys cost. Ties within one millisecond are put in id order within
//! a page. A store written before search builds its index when it opens ([`build_missing_index`]).

use super::rows::{parse_time, time_text};
use super::SqliteStore;
use crate::domain::search::{fold, phone_tail, SEARCH_HIT_LIMIT};
use crate::domain::{Id, Page, PageRequest, SearchHit, SearchKind, SearchQuery, Timestamp};
use crate::error::AppResult;
use crate::store::SearchStore;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

/// The sequence numbers one millisecond of the key holds.
const KEY_SEQUENCE_BITS: u32 = 20;

/// The columns of a search hit, read from `search_docs` by its key.
pub(super) const HIT_SQL: &str = "SELECT kind, entity_id, customer_id, at, texts FROM search_docs WHERE key = ?";

/// The keys of the rows of the searched kinds whose own texts match, newest first; the parameters
/// are the MATCH expression ([`match_expression`]) and how many keys at most.
pub(super) const OWN_KEYS_SQL: &str =
    "SELECT rowid FROM search_index WHERE search_index MATCH ? ORDER BY rowid DESC LIMIT ?";

/// How many rows' own texts match: the customer list's exact keyword total (the index's scope
/// already holds the provider and the kind, so no row needs reading); the parameter is the MATCH
/// expression.
pub(super) const MATCH_COUNT_SQL: &str = "SELECT COUNT(*) FROM search_index WHERE search_index MATCH ?";

/// The keys of the tickets one of whose replies matches (one per matching reply, the newest
/// replies first); the parameters are the MATCH expression of the provider's replies
/// ([`reply_match_expression`]) and how many at most.
pub(super) const REPLIED_TICKET_KEYS_SQL: &str = "SELECT ticket.key FROM search_index \
     JOIN search_docs AS reply ON reply.key = search_index.rowid \
     JOIN search_docs AS ticket ON ticket.kind = 'ticket' AND ticket.entity_id = reply.owner_id \
     WHERE search_index MATCH ? ORDER BY search_index.rowid DESC LIMIT ?";

/// The text of a ticket's oldest matching reply; the parameter is [`ticket_replies_expression`].
pub(super) const FIRST_MATCHING_REPLY_SQL: &str = "SELECT ticket_history.content FROM search_index \
     JOIN search_docs ON search_docs.key = search_index.rowid \
     JOIN ticket_history ON ticket_history.id = search_docs.entity_id WHERE search_index MATCH ? \
     ORDER BY search_index.rowid LIMIT 1";

/// How many rows' own texts match the MATCH expression.
pub(super) fn count_matches(c: &Connection, expression: &str) -> rusqlite::Result<u64> {
    let count: i64 = c.prepare_cached(MATCH_COUNT_SQL)?.query_row([expression], |row| row.get(0))?;
    Ok(count.max(0) as u64)
}

/// Which texts of a row a query looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fields {
    /// Every indexed text, the phone number's last digits included.
    All,
    /// Only the texts proper (a customer's name and contact person): the customer list's keyword.
    Texts,
}

/// The MATCH expression of a query over the own texts of a provider's rows of the given kinds
/// (a ticket's title and content; its replies are rows of their own, [`reply_match_expression`]).
pub(super) fn match_expression(provider: &Id, kinds: &[SearchKind], query: &SearchQuery, fields: Fields) -> String {
    let scope = if SearchKind::ALL.iter().all(|kind| kinds.contains(kind)) {
        provider_token(provider)
    } else {
        let tokens: Vec<String> = kinds.iter().map(|kind| kind_token(provider, kind.as_str())).collect();
        format!("({})", tokens.join(" OR "))
    };
    format!("{{scope}} : {scope} AND {}", grams_expression(query, fields))
}

/// The MATCH expression of a query over the provider's ticket replies.
pub(super) fn reply_match_expression(provider: &Id, query: &SearchQuery) -> String {
    format!("{{scope}} : {} AND {}", kind_token(provider, REPLY), grams_expression(query, Fields::Texts))
}

/// The MATCH expression of a query over one ticket's replies.
pub(super) fn ticket_replies_expression(ticket: &str, query: &SearchQuery) -> String {
    format!("{{scope}} : {} AND {}", ticket_token(ticket), grams_expression(query, Fields::Texts))
}

fn grams_expression(query: &SearchQuery, fields: Fields) -> String {
    let chars: Vec<char> = query.as_str().chars().collect();
    let (columns, grams) = if chars.len() == 1 {
        let columns = if fields == Fields::All { "text_unigrams tail_unigrams" } else { "text_unigrams" };
        (columns, unigram_token(chars[0]))
    } else {
        let columns = if fields == Fields::All { "text_bigrams tail_bigrams" } else { "text_bigrams" };
        let phrase: Vec<String> = chars.windows(2).map(|pair| bigram_token(pair[0], pair[1])).collect();
        (columns, format!("\"{}\"", phrase.join(" ")))
    };
    format!("{{{columns}}} : {grams}")
}

/// The `kind` of a ticket reply's row: not a kind of hit, its ticket is.
const REPLY: &str = "reply";

fn hex(value: &str) -> String {
    value.bytes().map(|b| format!("{b:02x}")).collect()
}

fn provider_token(provider: &Id) -> String {
    format!("p{}", hex(provider.as_str()))
}

fn kind_token(provider: &Id, kind: &str) -> String {
    format!("k{}z{kind}", hex(provider.as_str()))
}

fn ticket_token(ticket: &str) -> String {
    format!("t{}", hex(ticket))
}

fn unigram_token(c: char) -> String {
    let mut token = Vec::with_capacity(7);
    push_unigram(&mut token, c);
    String::from_utf8(token).unwrap_or_default()
}

fn bigram_token(a: char, b: char) -> String {
    let mut token = Vec::with_capacity(13);
    push_bigram(&mut token, a, b);
    String::from_utf8(token).unwrap_or_default()
}

/// A code point as six hex digits, written straight into `out`: a reply of 5,000 characters is
/// 5,000 bigram tokens, and formatting each on its own cost more than indexing it.
fn code_point_digits(c: char) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let v = c as usize;
    [
        HEX[(v >> 20) & 0xf],
        HEX[(v >> 16) & 0xf],
        HEX[(v >> 12) & 0xf],
        HEX[(v >> 8) & 0xf],
        HEX[(v >> 4) & 0xf],
        HEX[v & 0xf],
    ]
}

fn push_unigram(out: &mut Vec<u8>, c: char) {
    out.push(b'u');
    out.extend_from_slice(&code_point_digits(c));
}

fn push_bigram(out: &mut Vec<u8>, a: char, b: char) {
    out.push(b'b');
    out.extend_from_slice(&code_point_digits(a));
    out.extend_from_slice(&code_point_digits(b));
}

/// The bigram tokens of texts, each text's in order, with `x` between texts; and their distinct
/// unigrams (a one-character query is one token, whose positions do not matter, so a character is
/// written once however often it occurs).
fn gram_columns(texts: &[String]) -> (String, String) {
    let mut bigrams = Vec::new();
    let mut unigrams = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for text in texts {
        let chars: Vec<char> = fold(text).chars().collect();
        if !bigrams.is_empty() {
            bigrams.extend_from_slice(b" x");
        }
        for pair in chars.windows(2) {
            if !bigrams.is_empty() {
                bigrams.push(b' ');
            }
            push_bigram(&mut bigrams, pair[0], pair[1]);
        }
        for c in chars.iter().filter(|c| seen.insert(**c)) {
            if !unigrams.is_empty() {
                unigrams.push(b' ');
            }
            push_unigram(&mut unigrams, *c);
        }
    }
    // Only ASCII was written.
    (String::from_utf8(bigrams).unwrap_or_default(), String::from_utf8(unigrams).unwrap_or_default())
}

/// One row as the index holds it.
struct Document<'a> {
    provider: &'a str,
    /// A [`SearchKind`]'s name, or [`REPLY`].
    kind: &'a str,
    entity_id: &'a str,
    /// A reply's ticket.
    owner: Option<&'a str>,
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
    // A reply's text is its history entry's: not written twice.
    let mut shown = if document.owner.is_some() { Vec::new() } else { document.texts.clone() };
    shown.extend(document.tail.clone());
    let texts = serde_json::to_string(&shown).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    t.prepare_cached(
        "INSERT INTO search_docs (key, provider_id, kind, entity_id, owner_id, customer_id, at, texts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        key,
        document.provider,
        document.kind,
        document.entity_id,
        document.owner,
        document.customer_id,
        time_text(&document.at),
        texts
    ])?;
    let provider = Id::from_stored(document.provider.to_owned());
    // A reply's row is found through its ticket, never as a hit of its own: no provider token.
    let scope = match document.owner {
        Some(ticket) => format!("{} {}", kind_token(&provider, REPLY), ticket_token(ticket)),
        None => format!("{} {}", provider_token(&provider), kind_token(&provider, document.kind)),
    };
    let (text_bigrams, text_unigrams) = gram_columns(&document.texts);
    let (tail_bigrams, tail_unigrams) = gram_columns(document.tail.as_slice());
    t.prepare_cached(
        "INSERT INTO search_index (rowid, scope, text_bigrams, text_unigrams, tail_bigrams, tail_unigrams)
         VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![key, scope, text_bigrams, text_unigrams, tail_bigrams, tail_unigrams])?;
    Ok(())
}

fn remove_document(t: &Connection, kind: &str, entity_id: &str) -> rusqlite::Result<()> {
    let old: Option<i64> = t
        .prepare_cached("SELECT key FROM search_docs WHERE kind = ? AND entity_id = ?")?
        .query_row([kind, entity_id], |row| row.get(0))
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
        kind: SearchKind::Customer.as_str(),
        entity_id: id,
        owner: None,
        customer_id: id,
        at,
        texts: vec![name, contact],
        tail: Some(phone_tail(&phone)),
    };
    index_document(t, &document)
}

/// (Re)indexes a ticket's own texts as stored, title and content, under its current time. Its
/// replies are rows of their own ([`index_reply`]), written once: a change re-keys only this row,
/// whose texts are bounded (a title of 100 characters, a content of 5,000).
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
    let document = Document {
        provider: &provider,
        kind: SearchKind::Ticket.as_str(),
        entity_id: id,
        owner: None,
        customer_id: &customer,
        at,
        texts: vec![title, content],
        tail: None,
    };
    index_document(t, &document)
}

/// Indexes a ticket reply as stored (a history entry of action `reply`; any other entry is left
/// out), as a row of its own pointing at its ticket, under the reply's time.
pub(super) fn index_reply(t: &Connection, history_id: &str) -> rusqlite::Result<()> {
    let row = t
        .prepare_cached(
            "SELECT tickets.service_provider_id, tickets.customer_id, ticket_history.ticket_id,
                    ticket_history.content, ticket_history.timestamp
             FROM ticket_history JOIN tickets ON tickets.id = ticket_history.ticket_id
             WHERE ticket_history.id = ? AND ticket_history.action = 'reply'",
        )?
        .query_row([history_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get(3)?,
                parse_time(row, 4)?,
            ))
        })
        .optional()?;
    let Some((provider, customer, ticket, content, at)) = row else { return Ok(()) };
    let document = Document {
        provider: &provider,
        kind: REPLY,
        entity_id: history_id,
        owner: Some(&ticket),
        customer_id: &customer,
        at,
        texts: vec![content],
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
        kind: SearchKind::Chat.as_str(),
        entity_id: id,
        owner: None,
        customer_id: &customer,
        at,
        texts: vec![content],
        tail: None,
    };
    index_document(t, &document)
}

/// Builds the index of a store written before search (or whose index was dropped): when the index
/// is empty while rows exist, every customer, ticket, reply and message is indexed, in one
/// transaction.
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
        ("ticket_history WHERE action = 'reply'", index_reply),
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

/// The keys of the hits, newest first, one per row found, up to one past [`SEARCH_HIT_LIMIT`]:
/// the rows whose own texts match, and the tickets one of whose replies matches (the ticket's own
/// row stands for it, under the ticket's current time), of the newest matching replies.
fn hit_keys(c: &Connection, own: &str, replies: Option<&str>) -> rusqlite::Result<Vec<i64>> {
    let counted = i64::try_from(SEARCH_HIT_LIMIT + 1).unwrap_or(i64::MAX);
    let mut keys: Vec<i64> = c
        .prepare_cached(OWN_KEYS_SQL)?
        .query_map(params![own, counted], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let Some(replies) = replies else { return Ok(keys) };
    let mut replied: Vec<i64> = c
        .prepare_cached(REPLIED_TICKET_KEYS_SQL)?
        .query_map(params![replies, counted], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    // `keys` is newest first: a ticket found by its own texts too is already there.
    replied.retain(|key| keys.binary_search_by(|own| key.cmp(own)).is_err());
    if !replied.is_empty() {
        keys.extend(replied);
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.dedup();
        keys.truncate(counted as usize);
    }
    Ok(keys)
}

/// The hit a key stands for, with the first of its texts that matches: for a ticket whose title
/// and content do not, its oldest matching reply.
fn hit(c: &Connection, key: i64, query: &SearchQuery) -> rusqlite::Result<SearchHit> {
    let (kind, id, customer_id, at, texts) = c.prepare_cached(HIT_SQL)?.query_row([key], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            parse_time(row, 3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    let kind = parse_kind(&kind).unwrap_or(SearchKind::Chat);
    let matching = |texts: &str| {
        let texts: Vec<String> = serde_json::from_str(texts).unwrap_or_default();
        texts.into_iter().find(|text| query.matches(text))
    };
    let mut matched_text = matching(&texts);
    if matched_text.is_none() && kind == SearchKind::Ticket {
        matched_text = c
            .prepare_cached(FIRST_MATCHING_REPLY_SQL)?
            .query_row([ticket_replies_expression(&id, query)], |row| row.get(0))
            .optional()?;
    }
    Ok(SearchHit {
        kind,
        id: Id::from_stored(id),
        customer_id: Id::from_stored(customer_id),
        matched_text: matched_text.unwrap_or_default(),
        at,
    })
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
        let own = match_expression(provider, kinds, query, Fields::All);
        let replies = kinds.contains(&SearchKind::Ticket).then(|| reply_match_expression(provider, query));
        let query = query.clone();
        let (mut items, total) = self
            .read(move |c| {
                let keys = hit_keys(c, &own, replies.as_deref())?;
                let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
                let counted = keys.iter().take(SEARCH_HIT_LIMIT as usize);
                let on_page = counted.skip(offset).take(page.page_size() as usize);
                let mut hits = Vec::new();
                for key in on_page {
                    hits.push(hit(c, *key, &query)?);
                }
                Ok((hits, keys.len() as u64))
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
        let (_, repeated) = gram_columns(&["aba".to_owned(), "b".to_owned()]);
        assert_eq!(repeated, "u000061 u000062", "each character once");
    }
}
