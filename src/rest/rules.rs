//! The rules the server enforces on each REST parameter, for the OpenAPI document.
//!
//! One table, [`RULES`], names the rule of every GraphQL argument a REST endpoint fills: the
//! domain's own limit (a [`TextLimit`], [`Id`], [`MAX_PAGE_SIZE`], the sign-in limits), never a
//! number copied by hand. The JSON Schema of a rule is computed from the same code the service
//! checks run: the character classes of ids, of whitespace and of control characters are read off
//! [`Id::parse`], [`char::is_whitespace`] (what `str::trim` removes) and [`char::is_control`] over
//! every character, so a pattern cannot drift from the check. The catalog refuses to load an
//! endpoint whose text or number parameter has no rule here, so a new endpoint must say its rules.
//! Lengths are in characters, as the checks count them.

use crate::domain::{Id, TextLimit, MAX_ATTACHMENTS, MAX_PAGE_SIZE};
use crate::service::auth::{MAX_PASSWORD_BYTES, MAX_USERNAME_CHARS};
use crate::service::canned_replies::is_short_code_char;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// What the server accepts for one parameter (beyond its GraphQL type, which the shape gives).
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Required text (`service::input::text`): not blank, at most `max_chars` characters.
    Text(TextLimit),
    /// Optional text (`service::input::optional_text`): blank means none, else at most `max_chars`.
    OptionalText(TextLimit),
    /// A search keyword (`service::input::keyword`): as [`Rule::OptionalText`] of
    /// [`TextLimit::KEYWORD`], and no control character once trimmed; `required` when blank is
    /// refused.
    Keyword { required: bool },
    /// The sign-in name: not blank, at most [`MAX_USERNAME_CHARS`] characters.
    Username,
    /// The password: not empty, at most [`MAX_PASSWORD_BYTES`] bytes of UTF-8 (bcrypt's limit).
    Password,
    /// A canned reply's short code: [`Rule::Text`] of [`TextLimit::CANNED_SHORT_CODE`], and only
    /// the characters `is_short_code_char` allows once trimmed.
    ShortCode,
    /// An opaque token: not blank.
    Token,
    /// Free text the server reads as it is (logout's optional token).
    Free,
    /// An entity id ([`Id::parse`]).
    Id,
    /// A list of attachment ids: each an [`Id`], at most [`MAX_ATTACHMENTS`] of them.
    AttachmentIds,
    /// The `Idempotency-Key` header: an id, bare or in double quotes.
    IdempotencyKey,
    /// A page number: 1 up to GraphQL's largest Int.
    Page,
    /// A page size: 1 to [`MAX_PAGE_SIZE`].
    PageSize,
    /// A version number: 0 or more.
    Version,
    /// A chat history cursor: an id that must name a message of the conversation; `before` and
    /// `after` exclude each other and any page but the first (`service::chat`).
    MessageCursor,
    /// An inbox conversation's `cursor` (`<seconds>:<customer id>`); blank means none.
    ConversationCursor,
}

/// Every argument's rule: (GraphQL root field, argument, rule); `*` is any field.
pub const RULES: &[(&str, &str, Rule)] = &[
    ("*", "page", Rule::Page),
    ("*", "pageSize", Rule::PageSize),
    ("*", "idempotencyKey", Rule::IdempotencyKey),
    ("*", "attachmentIds", Rule::AttachmentIds),
    ("login", "username", Rule::Username),
    ("login", "password", Rule::Password),
    ("logout", "token", Rule::Free),
    ("refreshToken", "refreshToken", Rule::Token),
    ("customers", "keyword", Rule::Keyword { required: false }),
    ("customer", "id", Rule::Id),
    ("usageScore", "customerId", Rule::Id),
    ("tickets", "customerId", Rule::Id),
    ("ticket", "id", Rule::Id),
    ("createTicket", "customerId", Rule::Id),
    ("createTicket", "title", Rule::Text(TextLimit::TICKET_TITLE)),
    ("createTicket", "content", Rule::Text(TextLimit::TICKET_CONTENT)),
    ("replyTicket", "id", Rule::Id),
    ("replyTicket", "content", Rule::Text(TextLimit::REPLY_CONTENT)),
    ("replyTicket", "cannedReplyId", Rule::Id),
    ("resolveTicket", "id", Rule::Id),
    ("resolveTicket", "resolution", Rule::OptionalText(TextLimit::RESOLUTION)),
    ("escalateTicket", "id", Rule::Id),
    ("escalateTicket", "reason", Rule::Text(TextLimit::REASON)),
    ("notification", "id", Rule::Id),
    ("markNotificationRead", "id", Rule::Id),
    ("chatMessages", "customerId", Rule::Id),
    ("chatMessages", "before", Rule::MessageCursor),
    ("chatMessages", "after", Rule::MessageCursor),
    ("sendChatMessage", "customerId", Rule::Id),
    ("sendChatMessage", "content", Rule::Text(TextLimit::CHAT_CONTENT)),
    ("sendChatMessage", "cannedReplyId", Rule::Id),
    ("escalateChat", "customerId", Rule::Id),
    ("escalateChat", "content", Rule::Text(TextLimit::TICKET_CONTENT)),
    ("escalateChat", "reason", Rule::Text(TextLimit::REASON)),
    ("typing", "customerId", Rule::Id),
    ("conversations", "after", Rule::ConversationCursor),
    ("markConversationRead", "customerId", Rule::Id),
    ("markConversationUnread", "customerId", Rule::Id),
    ("search", "query", Rule::Keyword { required: true }),
    ("cannedReply", "id", Rule::Id),
    ("createCannedReply", "shortCode", Rule::ShortCode),
    ("createCannedReply", "title", Rule::Text(TextLimit::CANNED_TITLE)),
    ("createCannedReply", "content", Rule::Text(TextLimit::CANNED_CONTENT)),
    ("updateCannedReply", "id", Rule::Id),
    ("updateCannedReply", "version", Rule::Version),
    ("updateCannedReply", "shortCode", Rule::ShortCode),
    ("updateCannedReply", "title", Rule::Text(TextLimit::CANNED_TITLE)),
    ("updateCannedReply", "content", Rule::Text(TextLimit::CANNED_CONTENT)),
    ("deleteCannedReply", "id", Rule::Id),
];

/// The rule of `argument` of the root field `field`, if the table names one.
pub fn rule_of(field: &str, argument: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(f, a, _)| *f == field && *a == argument)
        .or_else(|| RULES.iter().find(|(f, a, _)| *f == "*" && *a == argument))
        .map(|(_, _, rule)| *rule)
}

impl Rule {
    /// The JSON Schema keywords of the rule, merged into the parameter's schema.
    pub fn schema(self) -> Value {
        let classes = classes();
        let (space, id) = (&classes.space, &classes.id);
        let not_blank = format!("[^{space}]");
        let id_pattern = format!("^[{id}]{{1,{}}}$", Id::MAX_LEN);
        match self {
            Rule::Text(limit) => text(1, limit.max_chars, &not_blank),
            Rule::OptionalText(limit) => json!({ "maxLength": limit.max_chars }),
            Rule::Keyword { required } => {
                let control = &classes.control;
                let inner = format!("[^{space}{control}](?:[^{control}]*[^{space}{control}])?");
                let inner = if required { inner } else { format!("(?:{inner})?") };
                let mut schema = json!({
                    "maxLength": TextLimit::KEYWORD.max_chars,
                    "pattern": format!("^[{space}]*{inner}[{space}]*$"),
                });
                if required {
                    schema["minLength"] = json!(1);
                }
                schema
            }
            Rule::ShortCode => {
                let code = &classes.short_code;
                let pattern = format!("^[{space}]*[{code}]+[{space}]*$");
                text(1, TextLimit::CANNED_SHORT_CODE.max_chars, &pattern)
            }
            Rule::Username => text(1, MAX_USERNAME_CHARS, &not_blank),
            Rule::Password => json!({
                "minLength": 1,
                "maxLength": MAX_PASSWORD_BYTES,
                "description": format!("至多{MAX_PASSWORD_BYTES}个字节（UTF-8编码）"),
            }),
            Rule::Token => json!({ "minLength": 1, "pattern": not_blank }),
            Rule::Free => json!({}),
            Rule::Id => json!({ "minLength": 1, "maxLength": Id::MAX_LEN, "pattern": id_pattern }),
            Rule::AttachmentIds => json!({
                "maxItems": MAX_ATTACHMENTS,
                "items": { "type": "string", "minLength": 1, "maxLength": Id::MAX_LEN, "pattern": id_pattern },
                "description": "POST /api/uploads 返回的 attachmentId，须为本服务商上传的附件",
            }),
            Rule::MessageCursor => json!({
                "minLength": 1,
                "maxLength": Id::MAX_LEN,
                "pattern": id_pattern,
                "description": "须为与该客户会话中的一条消息的ID；before 与 after 不能同时指定，指定时 page 只能为1",
            }),
            Rule::IdempotencyKey => json!({
                "minLength": 1,
                "maxLength": Id::MAX_LEN + 2,
                "pattern": format!("^(?:\"[{id}]{{1,{max}}}\"|[{id}]{{1,{max}}})$", max = Id::MAX_LEN),
            }),
            Rule::Page => json!({ "format": "int32", "minimum": 1, "maximum": i32::MAX }),
            Rule::PageSize => json!({ "format": "int32", "minimum": 1, "maximum": MAX_PAGE_SIZE }),
            Rule::Version => json!({ "format": "int64", "minimum": 0, "maximum": i64::MAX }),
            Rule::ConversationCursor => json!({
                "pattern": format!("^[{space}]*(?:[+-]?[0-9]{{1,12}}:[{id}]{{1,{}}})?[{space}]*$", Id::MAX_LEN),
                "description": "上一页最后一个会话的 cursor；指定时 page 只能为1",
            }),
        }
    }
}

fn text(min: usize, max: usize, pattern: &str) -> Value {
    json!({ "minLength": min, "maxLength": max, "pattern": pattern })
}

/// Regular-expression character classes (without brackets), read off the checks themselves.
struct Classes {
    /// What `str::trim` removes.
    space: String,
    /// What `char::is_control` refuses in a keyword.
    control: String,
    /// What an [`Id`] may hold.
    id: String,
    /// What a canned reply's short code may hold.
    short_code: String,
}

fn classes() -> &'static Classes {
    static CLASSES: OnceLock<Classes> = OnceLock::new();
    CLASSES.get_or_init(|| Classes {
        space: class(char::is_whitespace),
        control: class(char::is_control),
        id: class(|c| Id::parse(c.encode_utf8(&mut [0; 4])).is_some()),
        short_code: class(is_short_code_char),
    })
}

/// The characters `member` accepts as a character class body: ranges of `\uXXXX` escapes,
/// which both ECMA-262 (OpenAPI's dialect) and Python (schemathesis) read.
fn class(member: impl Fn(char) -> bool) -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in (0..=0xFFFFu32).filter_map(char::from_u32).filter(|c| member(*c)) {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == c as u32 => *end = c as u32,
            _ => ranges.push((c as u32, c as u32)),
        }
    }
    let assert_bmp = (0x10000..=0x10FFFFu32).filter_map(char::from_u32).all(|c| !member(c));
    assert!(assert_bmp, "a class with members beyond the BMP needs another escape");
    ranges
        .iter()
        .map(|(start, end)| match start == end {
            true => format!("\\u{start:04X}"),
            false => format!("\\u{start:04X}-\\u{end:04X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_class_is_the_ascii_letters_digits_hyphen_and_underscore() {
        assert_eq!(classes().id, "\\u002D\\u0030-\\u0039\\u0041-\\u005A\\u005F\\u0061-\\u007A");
    }

    #[test]
    fn every_page_size_and_text_limit_comes_from_the_domain() {
        assert_eq!(Rule::PageSize.schema()["maximum"], json!(MAX_PAGE_SIZE));
        assert_eq!(Rule::Text(TextLimit::TICKET_TITLE).schema()["maxLength"], json!(100));
    }
}
