//! Text search that understands Chinese: what is indexed, how a query is folded, and the snippet
//! shown around a hit. Both store adapters index and match with these functions, so a text is
//! found by the same queries on either backend.
//!
//! Unicode word splitting does not segment Chinese (a sentence is one "word"), so the index is of
//! character n-grams instead of words: every character (a unigram) and every pair of adjacent
//! characters (a bigram) of the folded text. A query of one character is looked up by its
//! unigram; a longer query by its bigrams, which narrow the candidates to texts holding every pair;
//! the match is then the query as a literal substring of the folded text, so a hit always
//! contains the query exactly as typed (folded), in order, and nothing is missed that does.
//!
//! Folding is one character to one character (lower case where that is a single character,
//! full-width ASCII forms to ASCII, the ideographic space to a space), so a position in the folded
//! text is the same position in the original, and the snippet cuts the original text.

use super::Id;
use super::Timestamp;

/// What a search looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SearchKind {
    /// A customer's name, contact person and the last digits of the phone number.
    Customer,
    /// A ticket's title and content, and the replies in its history.
    Ticket,
    /// A chat message's content.
    Chat,
}

impl SearchKind {
    pub const ALL: [SearchKind; 3] = [SearchKind::Customer, SearchKind::Ticket, SearchKind::Chat];

    pub fn as_str(self) -> &'static str {
        match self {
            SearchKind::Customer => "customer",
            SearchKind::Ticket => "ticket",
            SearchKind::Chat => "chat",
        }
    }
}

/// How many digits at the end of a phone number a customer is found by: what the masked number
/// shows (`138****5678`), so a search reveals nothing the list does not.
pub const PHONE_DIGITS_INDEXED: usize = 4;

/// A query, folded: 1 to [`super::TextLimit::KEYWORD`] characters, no control character
/// (the service parses it; see `service::input::keyword`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery(String);

impl SearchQuery {
    /// The query of a checked keyword (trimmed, non-empty, bounded, no control characters).
    pub fn new(keyword: &str) -> SearchQuery {
        SearchQuery(fold(keyword))
    }

    /// The folded query, matched as a literal substring of the folded text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The grams every matching text holds: the query itself when it is one character, else its
    /// bigrams in order (repeats kept, so an adapter may use them as a phrase).
    pub fn grams(&self) -> Vec<String> {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() == 1 {
            return vec![self.0.clone()];
        }
        chars.windows(2).map(|pair| pair.iter().collect()).collect()
    }

    /// Whether a text contains the query (both folded).
    pub fn matches(&self, text: &str) -> bool {
        fold(text).contains(&self.0)
    }
}

/// One character folded: lower case where that is one character, full-width ASCII forms to ASCII,
/// the ideographic space to a space.
fn fold_char(c: char) -> char {
    let c = match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    };
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(single), None) => single,
        _ => c,
    }
}

/// A text folded for matching, character for character.
pub fn fold(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

/// The distinct grams of a text: every folded character and every pair of adjacent folded
/// characters, in first-seen order.
pub fn index_grams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().map(fold_char).collect();
    let mut seen = std::collections::HashSet::new();
    let unigrams = chars.iter().map(|c| c.to_string());
    let bigrams = chars.windows(2).map(|pair| pair.iter().collect::<String>());
    unigrams.chain(bigrams).filter(|gram| seen.insert(gram.clone())).collect()
}

/// The part of a customer's phone number that is searchable: its last [`PHONE_DIGITS_INDEXED`]
/// digits (fewer if it has fewer).
pub fn phone_tail(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(PHONE_DIGITS_INDEXED)..].iter().collect()
}

/// How many hits a search counts and pages through. A search is for finding: past this many hits
/// a person narrows the query rather than scroll, and counting every hit of a frequent query costs
/// what reading them does (at a year's data, 登录问题 is in 50,000 of a provider's messages: 32 ms to
/// count on SQLite). The customer list's `keyword` is not a search in this sense: its total stays
/// exact, as the spec's lists are.
pub const SEARCH_HIT_LIMIT: u64 = 1_000;

/// Characters of context shown on each side of the match.
pub const SNIPPET_CONTEXT_CHARS: usize = 20;

/// A short piece of `text` around the first match of `query`, with `…` where it was cut; the
/// start of the text when the query is not in it.
pub fn snippet(text: &str, query: &SearchQuery) -> String {
    let chars: Vec<char> = text.chars().collect();
    let folded: String = chars.iter().copied().map(fold_char).collect();
    let start = folded.find(query.as_str()).map(|byte| folded[..byte].chars().count()).unwrap_or(0);
    let end = start + query.as_str().chars().count();
    let from = start.saturating_sub(SNIPPET_CONTEXT_CHARS);
    let to = (end + SNIPPET_CONTEXT_CHARS).min(chars.len());
    let mut snippet = String::new();
    if from > 0 {
        snippet.push('…');
    }
    snippet.extend(chars[from..to].iter().map(|c| if c.is_control() { ' ' } else { *c }));
    if to < chars.len() {
        snippet.push('…');
    }
    snippet
}

/// One hit of a search: what was found, where, and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub kind: SearchKind,
    /// The customer's, the ticket's or the chat message's id.
    pub id: Id,
    /// The customer the hit belongs to (the customer itself for a customer hit).
    pub customer_id: Id,
    /// The whole text the query was found in: a name, a contact person, a phone number's last
    /// digits, a title, a ticket's content, a reply, a message.
    pub matched_text: String,
    /// The order of the hits, newest first: a customer's or a ticket's `updated_at`, a chat
    /// message's time.
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_of_one_character_is_its_own_gram_and_a_longer_one_its_bigrams() {
        assert_eq!(SearchQuery::new("库").grams(), vec!["库"]);
        assert_eq!(SearchQuery::new("库存表").grams(), vec!["库存", "存表"]);
        assert_eq!(SearchQuery::new("AbA").grams(), vec!["ab", "ba"]);
    }

    #[test]
    fn the_index_holds_every_gram_a_substring_query_asks_for() {
        let text = "杭州云仓商贸有限公司 ＡＢＣ Store";
        let grams = index_grams(text);
        for query in ["商贸", "云仓商贸", "司", "abc", "store", "c s", "仓"] {
            let query = SearchQuery::new(query);
            assert!(query.matches(text), "{query:?}");
            assert!(query.grams().iter().all(|gram| grams.contains(gram)), "{query:?}");
        }
        assert!(!SearchQuery::new("商城").matches(text));
    }

    #[test]
    fn a_snippet_cuts_the_original_text_around_the_first_match() {
        let text = format!("{}库存盘点{}", "前".repeat(30), "后".repeat(30));
        let snippet = snippet(&text, &SearchQuery::new("库存"));
        assert_eq!(snippet, format!("…{}库存盘点{}…", "前".repeat(20), "后".repeat(18)));
        assert_eq!(super::snippet("Ｓtore 库存", &SearchQuery::new("store")), "Ｓtore 库存");
    }

    #[test]
    fn a_phone_is_searchable_by_its_last_four_digits_only() {
        assert_eq!(phone_tail("138-0013-8000"), "8000");
        assert_eq!(phone_tail("12"), "12");
    }
}
