//! A canned reply (a "quick reply"): text a provider saved once and sends again by its short code.
//!
//! Plain data. Its content keeps the placeholders (`{customerName}`, `{contactPerson}`,
//! `{providerName}`) as written; they are filled when a reply is sent, not when it is stored. The
//! limits (how many a provider keeps, how long the content is) are service rules; the store
//! enforces only what one index can guarantee: a short code is unique per provider.

use super::{Id, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedReply {
    pub id: Id,
    pub service_provider_id: Id,
    /// What the provider types to pick the reply (`greeting`, `renewal`); unique per provider.
    pub short_code: String,
    pub title: String,
    /// The reply's text, placeholders unfilled.
    pub content: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by the store on every update; an update names the version it was computed from
    /// (compare-and-set), so two editors cannot silently overwrite each other.
    pub version: u64,
}

/// The placeholders a reply's content may hold, as written in it.
pub const PLACEHOLDERS: [&str; 3] = ["{customerName}", "{contactPerson}", "{providerName}"];

/// What the placeholders stand for when a reply is sent to one customer.
#[derive(Debug, Clone, Copy)]
pub struct Placeholders<'a> {
    pub customer_name: &'a str,
    pub contact_person: &'a str,
    pub provider_name: &'a str,
}

impl Placeholders<'_> {
    fn value_of(&self, placeholder: &str) -> Option<&str> {
        match placeholder {
            "{customerName}" => Some(self.customer_name),
            "{contactPerson}" => Some(self.contact_person),
            "{providerName}" => Some(self.provider_name),
            _ => None,
        }
    }
}

/// The first `{...}` in the content that is none of [`PLACEHOLDERS`], as written (`{name}`). A `{`
/// with no `}` after it is plain text, and so is a `}` alone.
pub fn unknown_placeholder(content: &str) -> Option<&str> {
    let mut rest = content;
    while let Some(open) = rest.find('{') {
        let from_open = &rest[open..];
        let close = from_open.find('}')?;
        let candidate = &from_open[..=close];
        // `{a{customerName}` names `{customerName}`: the innermost `{` opens the placeholder.
        let candidate = &candidate[candidate.rfind('{').unwrap_or(0)..];
        if !PLACEHOLDERS.contains(&candidate) {
            return Some(candidate);
        }
        rest = &from_open[close + 1..];
    }
    None
}

/// The content with every placeholder replaced by its value, in one pass: a value that itself
/// reads like a placeholder (a customer named `{providerName}`) is kept as it is.
pub fn fill(content: &str, values: &Placeholders<'_>) -> String {
    let mut filled = String::with_capacity(content.len() + 32);
    let mut rest = content;
    while let Some(open) = rest.find('{') {
        filled.push_str(&rest[..open]);
        let from_open = &rest[open..];
        let known = PLACEHOLDERS.iter().find(|placeholder| from_open.starts_with(*placeholder));
        match known.and_then(|placeholder| Some((placeholder.len(), values.value_of(placeholder)?))) {
            Some((length, value)) => {
                filled.push_str(value);
                rest = &from_open[length..];
            }
            None => {
                filled.push('{');
                rest = &from_open[1..];
            }
        }
    }
    filled.push_str(rest);
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: Placeholders<'static> =
        Placeholders { customer_name: "客户A", contact_person: "张三", provider_name: "演示服务商A" };

    #[test]
    fn every_placeholder_is_filled_wherever_and_however_often_it_appears() {
        let content = "{customerName}您好，{contactPerson}：我是{providerName}的客服。{customerName}";
        assert_eq!(fill(content, &VALUES), "客户A您好，张三：我是演示服务商A的客服。客户A");
    }

    #[test]
    fn text_without_placeholders_and_stray_braces_are_kept_as_written() {
        assert_eq!(fill("感谢您的耐心等待", &VALUES), "感谢您的耐心等待");
        assert_eq!(fill("{ 价格 } {customer {customerName}}", &VALUES), "{ 价格 } {customer 客户A}");
        assert_eq!(fill("末尾{", &VALUES), "末尾{");
    }

    #[test]
    fn a_value_that_reads_like_a_placeholder_is_not_filled_again() {
        let values = Placeholders { customer_name: "{providerName}", ..VALUES };
        assert_eq!(fill("{customerName}/{providerName}", &values), "{providerName}/演示服务商A");
    }

    #[test]
    fn only_the_three_placeholders_are_known() {
        assert_eq!(unknown_placeholder("您好{customerName}，{contactPerson}，{providerName}"), None);
        assert_eq!(unknown_placeholder("您好{customer}"), Some("{customer}"));
        assert_eq!(unknown_placeholder("{CustomerName}"), Some("{CustomerName}"), "case matters");
        assert_eq!(unknown_placeholder("{customerName}与{价格}"), Some("{价格}"));
        assert_eq!(unknown_placeholder("{x{customerName}"), None, "the innermost brace opens it");
        assert_eq!(unknown_placeholder("没有右括号{customerName"), None);
        assert_eq!(unknown_placeholder("{}"), Some("{}"));
        assert_eq!(unknown_placeholder("只有右括号}"), None);
    }
}
